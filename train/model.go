package train

import (
	"context"
	"fmt"
	"log/slog"
	"os"
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

// InitialParams are the parameters training starts from: torch-style random
// initialisation from seed for every layer, then, unless pretrained is "none",
// the pretrained ImageNet weights for every layer the surgery kept. The weight
// file is checked against torchvision's 1000-class AlexNet in full (a missing,
// extra or misshapen tensor is an error naming it), as the reference loads it
// before the surgery.
func InitialParams(ctx context.Context, m *nn.Model, cfg Config, log *slog.Logger, progress func(done, total int64)) (*weights.StateDict, error) {
	sd, err := m.InitStateDict(cfg.Seed)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("%s is not torchvision's AlexNet: %w", path, err)
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

func readWeights(path string) (*weights.StateDict, error) {
	if strings.HasSuffix(path, ".safetensors") {
		sd, _, err := weights.ReadSafetensors(path)
		return sd, err
	}
	return weights.ReadPTH(path)
}

// pretrainedFile finds (downloading into the cache if needed) the weight file.
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
	url := cfg.WeightsURL
	if url == "" {
		url = TorchvisionAlexNetURL
	}
	dest := filepath.Join(cache, "weights", filepath.Base(TorchvisionAlexNetURL))
	err = fetch.Download(ctx, url, dest, fetch.Options{
		Checksum: fetch.SHA256("7be5be79"),
		Progress: progress,
		Logger:   log,
		Hint:     fmt.Sprintf("download %s by hand and put it at %s, or pass --pretrained PATH (or --pretrained none to train from scratch)", TorchvisionAlexNetURL, dest),
	})
	if err != nil {
		return "", err
	}
	return dest, nil
}
