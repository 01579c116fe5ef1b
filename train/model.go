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

// BuildModel is the experiment's network: torchvision's AlexNet with the
// reference's surgery (classifier.4 -> Linear(4096, 1024), classifier.6 ->
// Linear(1024, 10)), the features frozen if asked.
func BuildModel(freezeFeatures bool) (*nn.Model, error) {
	m := nn.AlexNet(1000)
	if err := m.ReferenceSurgery(NumClasses); err != nil {
		return nil, err
	}
	if freezeFeatures {
		m.Freeze("features")
	}
	return m, nil
}

// InitialParams are the parameters training starts from: those of
// cfg.InitFrom where it is set (checked strictly against the model); otherwise
// torch-style random initialisation from seed for every layer, then, unless
// pretrained is "none",
// the pretrained ImageNet weights for every layer the surgery kept. The weight
// file is checked against torchvision's 1000-class AlexNet in full (a missing,
// extra or misshapen tensor is an error naming it), as the reference loads it
// before the surgery.
func InitialParams(ctx context.Context, m *nn.Model, cfg Config, log *slog.Logger, progress func(done, total int64)) (*weights.StateDict, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
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
		if _, _, err := from.Check(m.Specs(), true); err != nil {
			return nil, fmt.Errorf("%s is not the modified %d-class AlexNet (--init-from)%s: %w", cfg.InitFrom, NumClasses, lookalike(from), err)
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
	if _, _, err := pre.Check(nn.AlexNet(1000).Specs(), true); err != nil {
		return nil, fmt.Errorf("%s is not torchvision's AlexNet%s: %w", path, lookalike(pre), err)
	}
	kept := 0
	for _, name := range sd.Names {
		t, ok := pre.Get(name)
		if !ok || !slices.Equal(t.Shape, sd.Tensors[name].Shape) {
			continue // a layer the surgery replaced keeps its fresh initialisation
		}
		sd.Tensors[name] = t
		kept++
	}
	log.Info("pretrained weights loaded", "file", path, "tensors", kept, "fresh", sd.Len()-kept)
	return sd, nil
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
// For "torchvision" it downloads cfg.WeightsURL (default TorchvisionAlexNetURL)
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
		src = TorchvisionAlexNetURL
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
