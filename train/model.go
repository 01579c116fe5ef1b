package train

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"vktrain/layers/nn"
	"vktrain/train/fetch"
	"vktrain/train/weights"
)

// NumClasses is CIFAR-10's class count, the model's outputs after the surgery.
const NumClasses = 10

// The models Config.Model (--model) names.
const (
	ModelAlexNet  = "alexnet"
	ModelResNet18 = "resnet18"
	ModelResNet50 = "resnet50"
)

// ModelNames lists Config.Model's choices, the default first.
func ModelNames() []string { return []string{ModelAlexNet, ModelResNet18, ModelResNet50} }

// TorchvisionResNet18URL and TorchvisionResNet50URL are where torchvision
// downloads the ResNets' ImageNet weights (IMAGENET1K_V1); as for AlexNet,
// the file name's hex part is the start of the file's sha256.
const (
	TorchvisionResNet18URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
	TorchvisionResNet50URL = "https://download.pytorch.org/models/resnet50-0676ba61.pth"
)

// ModelSpec is one of Config.Model's choices: torchvision's model, its
// pretrained weights and the experiment's surgery.
type ModelSpec struct {
	Name  string // Config.Model: "alexnet", "resnet18", "resnet50"
	Title string // as nn.Recognize names it: "AlexNet", "ResNet-18"
	// WeightsURL is where torchvision downloads the ImageNet weights.
	WeightsURL string
	// Replaced are the modules the surgery replaces: their pretrained
	// tensors are dropped and they keep a fresh initialisation.
	Replaced []string
	// Head is what --freeze-features leaves trainable: "classifier" for
	// AlexNet (its features are frozen), "fc" for a ResNet (everything
	// else is frozen, BatchNorm's weights and biases included).
	Head string
	// MinImageSize is the smallest Config.ImageSize the model takes.
	MinImageSize int
	// resnet is the ResNet's shape (nil: AlexNet). Width and Classes are
	// torchvision's 64 and 1000.
	resnet *nn.ResNetConfig
}

// LookupModel returns the ModelSpec of a Config.Model name ("" is AlexNet,
// as in runs written before the field existed).
func LookupModel(name string) (ModelSpec, error) {
	switch name {
	case ModelAlexNet, "":
		return ModelSpec{Name: ModelAlexNet, Title: "AlexNet", WeightsURL: TorchvisionAlexNetURL,
			Replaced: []string{"classifier.4", "classifier.6"}, Head: "classifier", MinImageSize: 64}, nil
	case ModelResNet18:
		return resnetSpec(ModelResNet18, "ResNet-18", TorchvisionResNet18URL, nn.ResNetConfig{Blocks: [4]int{2, 2, 2, 2}, Width: 64, Classes: 1000}), nil
	case ModelResNet50:
		return resnetSpec(ModelResNet50, "ResNet-50", TorchvisionResNet50URL, nn.ResNetConfig{Blocks: [4]int{3, 4, 6, 3}, Bottleneck: true, Width: 64, Classes: 1000}), nil
	}
	return ModelSpec{}, fmt.Errorf("model %q: want %s", name, strings.Join(ModelNames(), ", "))
}

// resnetSpec is a ResNet's ModelSpec. A ResNet takes images of 32 pixels
// (CIFAR-10's own size: layer4 then works on 1x1 maps) and up.
func resnetSpec(name, title, url string, c nn.ResNetConfig) ModelSpec {
	return ModelSpec{Name: name, Title: title, WeightsURL: url, Replaced: []string{"fc"}, Head: "fc", MinImageSize: 32, resnet: &c}
}

// withWidth is s with a ResNet's Width (Config.Width) in place of
// torchvision's 64; 0 keeps s. Only a ResNet has a width, and only
// torchvision's has pretrained weights.
func (s ModelSpec) withWidth(width int) (ModelSpec, error) {
	switch {
	case width == 0:
		return s, nil
	case s.resnet == nil:
		return s, fmt.Errorf("width %d: only a ResNet's width can change, not %s's", width, s.Title)
	case width < 1:
		return s, fmt.Errorf("width %d: must be positive (0: torchvision's %d)", width, s.resnet.Width)
	case width == s.resnet.Width:
		return s, nil
	}
	c := *s.resnet
	c.Width = width
	s.resnet = &c
	s.Title = fmt.Sprintf("%s (width %d)", s.Title, width)
	s.WeightsURL = "" // torchvision has none
	return s, nil
}

// IsResNet reports whether the model is one of torchvision's ResNets.
func (s ModelSpec) IsResNet() bool { return s.resnet != nil }

// Torchvision returns torchvision's model with classes outputs, before the
// surgery (torchvision.models.alexnet(num_classes=classes), resnet18(...)).
func (s ModelSpec) Torchvision(classes int) *nn.Model {
	if s.resnet == nil {
		return nn.AlexNet(classes)
	}
	c := *s.resnet
	c.Classes = classes
	return nn.NewResNet(c)
}

// Surgery makes the experiment's change to m, torchvision's 1000-class
// model, for classes outputs, and validates the result: AlexNet's reference
// surgery (classifier.4 -> Linear(4096, 1024), classifier.6 ->
// Linear(1024, classes)), or for a ResNet torchvision's fine-tuning recipe
// model.fc = nn.Linear(model.fc.in_features, classes).
func (s ModelSpec) Surgery(m *nn.Model, classes int) error {
	if s.resnet == nil {
		return m.ReferenceSurgery(classes)
	}
	in, err := s.fcInFeatures(m)
	if err != nil {
		return err
	}
	if err := m.Replace("fc", nn.NewLinear(in, classes)); err != nil {
		return err
	}
	shape := m.Input()
	return m.Validate(shape[0], shape[1], shape[2])
}

func (s ModelSpec) fcInFeatures(m *nn.Model) (int, error) {
	fc, err := m.Module("fc")
	if err != nil {
		return 0, err
	}
	lin, ok := fc.(*nn.Linear)
	if !ok {
		return 0, fmt.Errorf("%s: fc is a %s, not a Linear", s.Title, fc.Type())
	}
	return lin.InFeatures, nil
}

// SurgeryText describes the surgery for classes outputs, as the exported
// model's metadata records it: "classifier.4=Linear(4096,1024)
// classifier.6=Linear(1024,10)" or "fc=Linear(512,10)".
func (s ModelSpec) SurgeryText(classes int) string {
	if s.resnet == nil {
		return fmt.Sprintf("classifier.4=Linear(4096,1024) classifier.6=Linear(1024,%d)", classes)
	}
	in, _ := s.fcInFeatures(s.Torchvision(1000))
	return fmt.Sprintf("fc=Linear(%d,%d)", in, classes)
}

// FreezeFeatures marks everything but the model's Head as frozen (not
// trainable): AlexNet's features; every ResNet parameter but fc's. A frozen
// ResNet's BatchNorm layers still normalise by the batch's statistics and
// update their running statistics in training, as in PyTorch after
// requires_grad_(False) in train mode. It returns how many tensors it froze.
func (s ModelSpec) FreezeFeatures(m *nn.Model) int {
	if s.resnet == nil {
		return m.Freeze("features")
	}
	n := m.Freeze("")
	return n - m.Unfreeze(s.Head)
}

// BuildModel is the experiment's network for Config.Model name: torchvision's
// model (1000 classes) after the spec's Surgery to NumClasses outputs, its
// features frozen if asked (see ModelSpec.FreezeFeatures).
func BuildModel(name string, freezeFeatures bool) (*nn.Model, error) {
	spec, err := LookupModel(name)
	if err != nil {
		return nil, err
	}
	return spec.build(freezeFeatures)
}

// BuildModelFor is cfg's network: BuildModel for cfg.Model, a ResNet cfg.Width
// wide where that is set, every Dropout's probability cfg.Dropout where that
// is set (see SetDropout).
func BuildModelFor(cfg Config) (*nn.Model, error) {
	spec, err := cfg.modelSpec()
	if err != nil {
		return nil, err
	}
	m, err := spec.build(cfg.FreezeFeatures)
	if err != nil || cfg.Dropout == nil {
		return m, err
	}
	if _, err := SetDropout(m, *cfg.Dropout); err != nil {
		return nil, fmt.Errorf("%s: %w", spec.Title, err)
	}
	return m, nil
}

// SetDropout sets the probability of every nn.Dropout of m to p, in [0, 1),
// as torch's `for d in model.modules(): if isinstance(d, nn.Dropout): d.p = p`
// does, and returns how many it set. A model without Dropout layers takes
// only p = 0 (dropout is off there already); another p is an error rather
// than a setting that changes nothing.
func SetDropout(m *nn.Model, p float64) (int, error) {
	if err := checkDropout(p); err != nil {
		return 0, err
	}
	in := m.Input()
	ls, err := m.Layers(in[0], in[1], in[2])
	if err != nil {
		return 0, fmt.Errorf("dropout: %w", err)
	}
	n := 0
	for _, l := range ls {
		if d, ok := l.Module.(*nn.Dropout); ok {
			d.P = p
			n++
		}
	}
	if n == 0 && p != 0 {
		return 0, fmt.Errorf("dropout %v: the model has no Dropout layer", p)
	}
	return n, nil
}

func (s ModelSpec) build(freezeFeatures bool) (*nn.Model, error) {
	m := s.Torchvision(1000)
	if err := s.Surgery(m, NumClasses); err != nil {
		return nil, err
	}
	if freezeFeatures {
		s.FreezeFeatures(m)
	}
	return m, nil
}

// InitialParams is the state (parameters, and for a ResNet BatchNorm's
// buffers: every entry of m.StateSpecs) training starts from: that of
// cfg.InitFrom where it is set (checked strictly against the model);
// otherwise a random initialisation from the seed (cfg.Init's scheme: for
// AlexNet PyTorch's defaults or torchvision's VGG scheme, for a ResNet
// torchvision's ResNet.__init__ by default: nn.Model.InitStateDictScheme), then, unless
// pretrained is "none", the pretrained ImageNet weights for every entry the
// surgery kept. The weight file is checked against torchvision's
// 1000-class model in full (a missing, extra or misshapen tensor is an error
// naming it; BatchNorm's buffers included), as torchvision loads it before
// the surgery.
func InitialParams(ctx context.Context, m *nn.Model, cfg Config, log *slog.Logger, progress func(done, total int64)) (*weights.StateDict, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	spec, err := cfg.modelSpec()
	if err != nil {
		return nil, err
	}
	sd, err := m.InitStateDictScheme(cfg.Seed, nn.InitScheme(cfg.Init))
	if err != nil {
		return nil, err
	}
	if cfg.InitFrom != "" {
		from, err := readWeights(cfg.InitFrom)
		if err != nil {
			return nil, err
		}
		if _, _, err := from.Check(m.StateSpecs(), true); err != nil {
			return nil, fmt.Errorf("%s is not the modified %d-class %s (--init-from)%s: %w", cfg.InitFrom, NumClasses, spec.Title, lookalike(from), err)
		}
		for _, name := range sd.Names {
			sd.Tensors[name], _ = from.Get(name)
		}
		log.Info("parameters loaded", "file", cfg.InitFrom, "tensors", sd.Len())
		return sd, nil
	}
	if cfg.Pretrained == PretrainedNone {
		return sd, nil
	}
	path, err := pretrainedFile(ctx, cfg, log, progress)
	if err != nil {
		return nil, err
	}
	pre, err := readWeights(path)
	if err != nil {
		return nil, err
	}
	if _, _, err := pre.Check(spec.Torchvision(1000).StateSpecs(), true); err != nil {
		return nil, fmt.Errorf("%s is not torchvision's %s%s: %w", path, spec.Title, lookalike(pre), err)
	}
	kept := 0
	for _, name := range sd.Names {
		if spec.replaced(name) {
			continue // a layer the surgery replaced keeps its fresh initialisation
		}
		t, ok := pre.Get(name)
		if !ok || !slices.Equal(t.Shape, sd.Tensors[name].Shape) {
			return nil, fmt.Errorf("%s: no %s of shape %v for the modified model", path, name, sd.Tensors[name].Shape) // unreachable: checked above
		}
		sd.Tensors[name] = t
		kept++
	}
	log.Info("pretrained weights loaded", "file", path, "tensors", kept, "fresh", sd.Len()-kept)
	return sd, nil
}

// replaced reports whether the state_dict entry name belongs to a module the
// surgery replaced.
func (s ModelSpec) replaced(name string) bool {
	for _, p := range s.Replaced {
		if strings.HasPrefix(name, p+".") {
			return true
		}
	}
	return false
}

// lookalike says which known model a state dict that failed a check is,
// where it is one: " (it looks like ResNet-18 (1000 classes))".
func lookalike(sd *weights.StateDict) string {
	if name := nn.Recognize(sd); name != "" {
		return " (it looks like " + name + ")"
	}
	return ""
}

func readWeights(path string) (*weights.StateDict, error) {
	if strings.HasSuffix(path, ".safetensors") {
		sd, _, err := weights.ReadSafetensors(path)
		return sd, err
	}
	return weights.ReadPTH(path)
}

// pretrainedFile finds (downloading into the cache if needed) the weight file.
// For "torchvision" it downloads cfg.WeightsURL (default the model's
// ModelSpec.WeightsURL, e.g. TorchvisionAlexNetURL)
// into <cache>/weights/<the URL's file name>, checking that the file's sha256
// starts with the hex digits the name carries (torchvision's rule, see
// hashPrefixFromName), so that any server's file, a test's included, is
// verified by its own name.
func pretrainedFile(ctx context.Context, cfg Config, log *slog.Logger, progress func(done, total int64)) (string, error) {
	if cfg.Pretrained != PretrainedTorchvision {
		if _, err := os.Stat(cfg.Pretrained); err != nil {
			return "", fmt.Errorf("pretrained weights: %w", err)
		}
		return cfg.Pretrained, nil
	}
	cache, err := cfg.cacheDir()
	if err != nil {
		return "", err
	}
	src := cfg.WeightsURL
	if src == "" {
		spec, err := cfg.modelSpec()
		if err != nil {
			return "", err
		}
		if src = spec.WeightsURL; src == "" {
			return "", fmt.Errorf("pretrained weights: torchvision has none for %s: use --pretrained none or a file", spec.Title)
		}
	}
	name, err := urlFileName(src)
	if err != nil {
		return "", fmt.Errorf("pretrained weights: %w", err)
	}
	prefix, err := hashPrefixFromName(name)
	if err != nil {
		return "", fmt.Errorf("pretrained weights: %s: %w", src, err)
	}
	dest := filepath.Join(cache, "weights", name)
	err = fetch.Download(ctx, src, dest, fetch.Options{
		Checksum: fetch.SHA256(prefix),
		Progress: progress,
		Logger:   log,
		Hint:     "(or pass --pretrained PATH, or --pretrained none to train from scratch)",
	})
	if err != nil {
		return "", err
	}
	return dest, nil
}

// urlFileName is the last element of a URL's path: the name the file is cached
// under.
func urlFileName(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	name := path.Base(u.Path)
	if name == "." || name == "/" || name == "" || strings.HasPrefix(name, ".") {
		return "", fmt.Errorf("%s: the URL names no file", rawURL)
	}
	return name, nil
}

// hashPrefixFromName is the start of a weight file's sha256 as torchvision puts
// it in the file name: the hex digits after the last '-', up to the extension
// (alexnet-owt-7be5be79.pth -> 7be5be79, x-0123abcd.tar.gz -> 0123abcd). torch.hub takes the first "-HEX."
// match and accepts an empty one, checking nothing; here the part must be 8 to
// 64 lowercase hex digits (the shortest prefix fetch accepts), or the name is
// refused, so that a download is never left unverified.
func hashPrefixFromName(name string) (string, error) {
	i := strings.LastIndexByte(name, '-')
	hex, _, _ := strings.Cut(name[i+1:], ".") // up to the extension (.pth, .tar.gz, ...)
	ok := i >= 0 && len(hex) >= 8 && len(hex) <= 64
	for _, c := range hex {
		ok = ok && (c >= '0' && c <= '9' || c >= 'a' && c <= 'f')
	}
	if !ok {
		return "", fmt.Errorf("file name %q carries no sha256 prefix: torchvision names weight files NAME-HASH.EXT with HASH the first 8 or more lowercase hex digits of the file's sha256", name)
	}
	return hex, nil
}
