package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/train/fetch"
	"vktrain/train/tune"
)

// Pretrained sources for Config.Pretrained.
const (
	PretrainedTorchvision = "torchvision" // torchvision's ImageNet weights, downloaded into the cache
	PretrainedNone        = "none"        // from scratch, torch's default initialisation
)

// TorchvisionAlexNetURL is where torchvision downloads AlexNet's ImageNet weights;
// the file name's hex part is the start of its sha256 (torchvision's naming rule).
const TorchvisionAlexNetURL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"

// DataSynthetic selects the built-in synthetic data set for Config.Data.
const DataSynthetic = "synthetic"

// Config is one training run. The zero values of the numbers are replaced by
// the reference recipe's (see Defaults).
type Config struct {
	// Model is the network: "alexnet" (the reference; "" in runs written
	// before the field, which ReadConfig reads as "alexnet"), "resnet18" or
	// "resnet50" (see LookupModel).
	Model string `json:"model"`
	// Width is a ResNet's stem width and first stage's planes (the stages
	// double it), 0 meaning torchvision's 64. Narrow ResNets train fast on
	// a CPU (tests use them) but have no pretrained weights. No flag sets it.
	Width          int     `json:"width,omitempty"`
	Pretrained     string  `json:"pretrained"`      // "torchvision", "none" or a .pth/.safetensors path
	FreezeFeatures bool    `json:"freeze_features"` // train only the classifier
	Data           string  `json:"data"`            // "" (CIFAR-10: cache, download), a folder of the official files, or "synthetic"
	ImageSize      int     `json:"image_size"`      // network input side; images are resized to ImageSize*8/7 first (256 for 224)
	Batch          int     `json:"batch"`
	Epochs         int     `json:"epochs"`
	LR             float64 `json:"lr"`
	Momentum       float64 `json:"momentum"`
	WeightDecay    float64 `json:"weight_decay"`
	// Optimizer is "sgd" ("" too: runs written before the field), "adam" or
	// "adamw" (torch.optim.Adam and AdamW: Beta1, Beta2 and Eps, 0 meaning
	// torch's 0.9, 0.999 and 1e-8; Momentum is then unused and WeightDecay is
	// Adam's L2 term or AdamW's decoupled decay).
	Optimizer string  `json:"optimizer,omitempty"`
	Beta1     float64 `json:"beta1,omitempty"`
	Beta2     float64 `json:"beta2,omitempty"`
	Eps       float64 `json:"eps,omitempty"`
	// LRGroups give the parameters whose names start with a prefix a learning
	// rate of their own (torch.optim's parameter groups: a fine-tuned backbone
	// slower than a new head); the schedule scales each alike. A parameter
	// takes the first group that names it, else LR.
	LRGroups []LRGroup `json:"lr_groups,omitempty"`
	Augment  bool      `json:"augment"` // random crop (padding 4) and horizontal flip
	// Dropout is the probability of every nn.Dropout in the model (AlexNet's
	// classifier.0 and classifier.3), in [0, 1); nil (runs written before
	// the field too) keeps the model's own, 0.5 for AlexNet. 0 turns dropout
	// off: with Augment off and DataOrder sequential, nothing in a training
	// step is then random, so that a run can be followed step by step against
	// PyTorch's from the same InitFrom. A model without Dropout layers (a
	// ResNet) takes only 0.
	Dropout *float64 `json:"dropout,omitempty"`
	// DataOrder is the order of the training images in every epoch:
	// "shuffled" ("" too: runs written before the field; a permutation drawn
	// from Seed and the epoch, see EpochOrder) or "sequential" (file order,
	// the same every epoch). See TrainingOrder.
	DataOrder string `json:"data_order,omitempty"`
	// Init is the initialisation of the layers not loaded from weights:
	// "torch" (the default, "" too: the model as torchvision builds it,
	// PyTorch's defaults for AlexNet, ResNet.__init__'s scheme for a ResNet)
	// or "kaiming" (torchvision's VGG scheme; see nn.InitScheme).
	Init string `json:"init"`
	// LabelSmoothing is the training loss's label smoothing eps in [0, 1)
	// (torch.nn.CrossEntropyLoss(label_smoothing=eps)); the test loss stays
	// the plain cross-entropy. 0: none.
	LabelSmoothing float64 `json:"label_smoothing,omitempty"`
	// Conv is the convolutions' algorithm: ConvAuto (Defaults: per pass, the
	// fastest on the device as Tune finds it), or one for every pass where it
	// applies: "winograd4" (F(4x4,3x3), and F(2x2,5x5) for 5x5), "winograd"
	// (F(2x2,RxR)) or "im2col" ("" too, as runs written before the field existed).
	Conv string `json:"conv,omitempty"`
	// ConvChoices are the algorithms an "auto" run picked, per convolution and
	// pass (layers.ConvPass order); written into the run's config.json once
	// tuned, so that a resumed run computes exactly as it began.
	ConvChoices map[string][3]string `json:"conv_choices,omitempty"`
	// GEMMChoices are the GEMM kernels ("texel", "tiled"; "auto": the
	// device's default) an "auto" run picked, per convolution or linear layer
	// and pass (layers.ConvPass order), written beside ConvChoices. Runs
	// written before the field existed used the device's default everywhere.
	GEMMChoices map[string][3]string `json:"gemm_choices,omitempty"`
	// Tune is how "auto" picks: "off" (the built-in choice, as winograd4),
	// "cached" (the default, ""; the device's tuning cache, timing what it
	// lacks) or "full" (time every pass again). Not part of the recipe.
	Tune string `json:"-"`
	// InitFrom is a .pth or .safetensors state dict of the whole modified model
	// (10 classes, PyTorch's names, e.g. saved by PyTorch or vktrain export) that
	// every parameter starts from; Pretrained must then be "none".
	InitFrom string `json:"init_from,omitempty"`
	Seed     uint64 `json:"seed"` // data order, initialisation, dropout, augmentation
	// LRSchedule is "constant" ("" too), "step" or "cosine" (see LRAt), after
	// WarmupEpochs (fractions allowed) of linear warm-up.
	LRSchedule   string  `json:"lr_schedule,omitempty"`
	WarmupEpochs float64 `json:"warmup_epochs,omitempty"`
	LRStepEpochs int     `json:"lr_step_epochs,omitempty"` // "step": epochs between decays (0: a third of the run, at least 1)
	LRGamma      float64 `json:"lr_gamma,omitempty"`       // "step": the decay factor (0: 0.1)
	LogEvery     int     `json:"log_every"`
	TrainLimit   int     `json:"train_limit,omitempty"` // use only the first N training images (0: all)
	TestLimit    int     `json:"test_limit,omitempty"`  // use only the first N test images (0: all)
	Device       string  `json:"device,omitempty"`
	WeightsURL   string  `json:"-"` // where "torchvision" downloads from ("" = official)
	DataURL      string  `json:"-"` // where CIFAR-10 downloads from ("" = official)
	CacheDir     string  `json:"-"` // "" = fetch.CacheDir()
}

// The optimizers (Config.Optimizer).
const (
	OptimizerSGD   = "sgd"
	OptimizerAdam  = "adam"
	OptimizerAdamW = "adamw"
)

// adam is the Adam configuration of c's optimizer, nil for SGD.
func (c Config) adam() *layers.AdamConfig {
	if c.Optimizer != OptimizerAdam && c.Optimizer != OptimizerAdamW {
		return nil
	}
	or := func(v, d float64) float64 {
		if v == 0 {
			return d
		}
		return v
	}
	return &layers.AdamConfig{LR: c.LR, Beta1: or(c.Beta1, 0.9), Beta2: or(c.Beta2, 0.999), Eps: or(c.Eps, 1e-8),
		WeightDecay: c.WeightDecay, Decoupled: c.Optimizer == OptimizerAdamW}
}

// ConvAuto is Config.Conv's choice by measurement (see Tune).
const ConvAuto = "auto"

func validConvAlgo(s string) bool {
	_, err := layers.ParseConvAlgo(s)
	return err == nil
}

// Defaults is the reference recipe: torchvision's pretrained AlexNet, CIFAR-10 at
// 224 (resize 256, center crop 224), batch 4, 10 epochs, SGD lr 0.001 momentum
// 0.9, running loss every 2000 mini-batches.
func Defaults() Config {
	return Config{Model: ModelAlexNet, Pretrained: PretrainedTorchvision, ImageSize: 224, Batch: 4, Epochs: 10, LR: 0.001, Momentum: 0.9, LogEvery: 2000, Seed: 1,
		Conv: ConvAuto}
}

// Validate reports a setting that cannot work.
func (c *Config) Validate() error {
	spec, err := c.modelSpec()
	if err != nil {
		return err
	}
	switch {
	case !spec.IsResNet() && c.ImageSize < spec.MinImageSize:
		return fmt.Errorf("image size %d: must be at least %d (AlexNet's last pooling needs a 3x3 map)", c.ImageSize, spec.MinImageSize)
	case c.ImageSize < spec.MinImageSize:
		return fmt.Errorf("image size %d: must be at least %d for %s", c.ImageSize, spec.MinImageSize, spec.Title)
	case c.Init != "" && c.Init != string(nn.InitTorch) && c.Init != string(nn.InitKaiming):
		return fmt.Errorf("init %q: want %q or %q", c.Init, nn.InitTorch, nn.InitKaiming)
	case c.Batch < 1:
		return fmt.Errorf("batch %d: must be at least 1", c.Batch)
	case c.Epochs < 1:
		return fmt.Errorf("epochs %d: must be at least 1", c.Epochs)
	case c.LR <= 0 || c.Momentum < 0 || c.WeightDecay < 0:
		return fmt.Errorf("lr %v, momentum %v, weight decay %v: lr must be positive, the others not negative", c.LR, c.Momentum, c.WeightDecay)
	case c.LogEvery < 1:
		return fmt.Errorf("log every %d: must be at least 1", c.LogEvery)
	case c.Pretrained == "":
		return errors.New("pretrained: say torchvision, none or a file")
	case c.Conv != ConvAuto && !validConvAlgo(c.Conv):
		return fmt.Errorf("conv %q: want %s, %s, %s or %s", c.Conv, ConvAuto, layers.ConvWinograd4, layers.ConvWinograd, layers.ConvIm2col)
	case c.Optimizer != "" && c.Optimizer != OptimizerSGD && c.adam() == nil:
		return fmt.Errorf("optimizer %q: want %s, %s or %s", c.Optimizer, OptimizerSGD, OptimizerAdam, OptimizerAdamW)
	case c.adam() != nil && c.adam().Validate() != nil:
		return c.adam().Validate()
	case c.Tune != "" && c.Tune != string(tune.Off) && c.Tune != string(tune.Cached) && c.Tune != string(tune.Full):
		return fmt.Errorf("tune %q: want %s, %s or %s", c.Tune, tune.Off, tune.Cached, tune.Full)
	case c.Pretrained == PretrainedTorchvision && c.WeightsURL == "" && spec.WeightsURL == "":
		return fmt.Errorf("pretrained torchvision: torchvision has no weights for %s: say none or a file", spec.Title)
	case c.InitFrom != "" && c.Pretrained != PretrainedNone:
		return fmt.Errorf("init from %s replaces every parameter: pretrained must be none, not %q", c.InitFrom, c.Pretrained)
	case c.LRSchedule != "" && c.LRSchedule != ScheduleConstant && c.LRSchedule != ScheduleStep && c.LRSchedule != ScheduleCosine:
		return fmt.Errorf("lr schedule %q: want %s, %s or %s", c.LRSchedule, ScheduleConstant, ScheduleStep, ScheduleCosine)
	case c.WarmupEpochs < 0 || c.WarmupEpochs >= float64(c.Epochs):
		return fmt.Errorf("warm-up of %v epochs: must be at least 0 and shorter than the run's %d epochs", c.WarmupEpochs, c.Epochs)
	case c.badLRGroup() != nil:
		return c.badLRGroup()
	case checkLabelSmoothing(c.LabelSmoothing) != nil:
		return checkLabelSmoothing(c.LabelSmoothing)
	case c.Dropout != nil && checkDropout(*c.Dropout) != nil:
		return checkDropout(*c.Dropout)
	case c.DataOrder != "" && c.DataOrder != OrderShuffled && c.DataOrder != OrderSequential:
		return fmt.Errorf("data order %q: want %s or %s", c.DataOrder, OrderShuffled, OrderSequential)
	case c.LRStepEpochs < 0 || c.LRGamma < 0 || c.LRGamma > 1:
		return fmt.Errorf("lr step every %d epochs by %v: the epochs must not be negative, the factor in [0, 1]", c.LRStepEpochs, c.LRGamma)
	}
	return c.checkBatchNorm(spec)
}

// modelSpec is the ModelSpec of c.Model at c.Width.
func (c *Config) modelSpec() (ModelSpec, error) {
	spec, err := LookupModel(c.Model)
	if err != nil {
		return spec, err
	}
	return spec.withWidth(c.Width)
}

// checkBatchNorm refuses, as PyTorch does in training ("Expected more than 1
// value per channel when training"), a batch whose smallest BatchNorm input
// has a single value per channel: a ResNet's layer4 at 1x1 (image size 32)
// with batch 1.
func (c *Config) checkBatchNorm(spec ModelSpec) error {
	if !spec.IsResNet() {
		return nil
	}
	layers, err := spec.Torchvision(NumClasses).Layers(3, c.ImageSize, c.ImageSize)
	if err != nil {
		return fmt.Errorf("image size %d: %w", c.ImageSize, err)
	}
	for _, l := range layers {
		switch l.Module.(type) {
		case *nn.Block, *nn.BatchNorm2d: // a block's BatchNorms work at its output's size or larger
		default:
			continue
		}
		if c.Batch*l.Out[1]*l.Out[2] < 2 {
			return fmt.Errorf("batch %d at image size %d: %s's %s gives %dx%d maps, one value per channel for its BatchNorm, which cannot train on that (PyTorch refuses too): use a batch of at least 2 or a larger image size",
				c.Batch, c.ImageSize, spec.Title, l.Path, l.Out[1], l.Out[2])
		}
	}
	return nil
}

// checkLabelSmoothing reports a label smoothing outside [0, 1) (NaN too).
func checkLabelSmoothing(eps float64) error {
	if !(eps >= 0 && eps < 1) {
		return fmt.Errorf("label smoothing %v: must be in [0, 1) (0: none; 1 would ignore the labels)", eps)
	}
	return nil
}

// checkDropout reports a dropout probability outside [0, 1) (NaN too).
func checkDropout(p float64) error {
	if !(p >= 0 && p < 1) {
		return fmt.Errorf("dropout %v: must be in [0, 1) (0: off; 1 would drop everything)", p)
	}
	return nil
}

// ParseDropout reads the --dropout flag: a probability in [0, 1).
func ParseDropout(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("dropout %q: want a probability in [0, 1), e.g. 0 (off) or 0.5", s)
	}
	return v, checkDropout(v)
}

// ParseLabelSmoothing reads the --label-smoothing flag: a number in [0, 1).
func ParseLabelSmoothing(s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("label smoothing %q: want a number in [0, 1), e.g. 0.1", s)
	}
	return v, checkLabelSmoothing(v)
}

// LRGroup is a parameter group's learning rate: Prefix starts the state_dict
// names of its parameters ("features." for AlexNet's convolutions).
type LRGroup struct {
	Prefix string  `json:"prefix"`
	LR     float64 `json:"lr"`
}

// ParseLRGroup reads PREFIX=LR, as the --lr-group flag takes it.
func ParseLRGroup(s string) (LRGroup, error) {
	prefix, lr, ok := strings.Cut(s, "=")
	v, err := strconv.ParseFloat(lr, 64)
	if !ok || prefix == "" || err != nil || !(v >= 0) || math.IsInf(v, 0) {
		return LRGroup{}, fmt.Errorf("lr group %q: want PREFIX=LR with a learning rate >= 0, e.g. features.=0.0001", s)
	}
	return LRGroup{Prefix: prefix, LR: v}, nil
}

// paramGroups are the network's parameter groups: each LRGroup's rate as a
// multiple of LR.
func (c *Config) paramGroups() []layers.ParamGroup {
	var gs []layers.ParamGroup
	for _, g := range c.LRGroups {
		gs = append(gs, layers.ParamGroup{Prefix: g.Prefix, LRScale: g.LR / c.LR})
	}
	return gs
}

// badLRGroup reports the first LRGroup without a prefix, with a negative or
// infinite rate, or whose prefix an earlier group has.
func (c *Config) badLRGroup() error {
	seen := map[string]bool{}
	for _, g := range c.LRGroups {
		if g.Prefix == "" || !(g.LR >= 0) || math.IsInf(g.LR, 0) {
			return fmt.Errorf("lr group %q=%v: want a prefix and a learning rate >= 0", g.Prefix, g.LR)
		}
		if seen[g.Prefix] {
			return fmt.Errorf("lr group %q given twice", g.Prefix)
		}
		seen[g.Prefix] = true
	}
	return nil
}

// ResizeFor is the resize before the center crop: 256 for 224, as torchvision's
// reference transform, and the same ratio for other sizes.
func ResizeFor(imageSize int) int { return (imageSize*8 + 6) / 7 }

func (c *Config) cacheDir() (string, error) {
	if c.CacheDir != "" {
		return c.CacheDir, nil
	}
	return fetch.CacheDir()
}

// configFile is the run directory's copy of the Config.
const configFile = "config.json"

func writeConfig(dir string, c Config) error {
	return fetch.WriteFileAtomic(filepath.Join(dir, configFile), func(w io.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(c)
	})
}

// ReadConfig reads the Config a run directory was started with.
func ReadConfig(dir string) (Config, error) {
	var c Config
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		return c, fmt.Errorf("run %s: %w", dir, err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), err)
	}
	if c.Model == "" {
		c.Model = ModelAlexNet // written before the field existed
	}
	if _, err := c.modelSpec(); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, configFile), err)
	}
	return c, nil
}
