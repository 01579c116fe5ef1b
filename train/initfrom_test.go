package train

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vktrain/layers/nn"
	"vktrain/train/weights"
)

// TestInitFrom: --init-from starts every parameter from a state dict of the
// modified model (here one initialised from another seed and written as
// safetensors), exactly; a file of another model is refused, naming the file
// and the tensor; and it cannot be combined with pretrained weights.
func TestInitFrom(t *testing.T) {
	m, err := BuildModel(ModelAlexNet, false)
	if err != nil {
		t.Fatal(err)
	}
	want, err := m.InitStateDictScheme(99, nn.InitTorch)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "start.safetensors")
	if err := weights.WriteSafetensors(file, want, nil); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Pretrained, cfg.InitFrom = PretrainedNone, file
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	got, err := InitialParams(context.Background(), m, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Names, want.Names) {
		t.Fatalf("names %v, want %v", got.Names, want.Names)
	}
	for _, name := range want.Names {
		if !slices.Equal(got.Tensors[name].Data, want.Tensors[name].Data) {
			t.Errorf("%s differs from the file's", name)
		}
	}

	cfg.InitFrom = filepath.Join("..", "layers", "testdata", "parity_small_weights.pth") // the narrow AlexNet
	_, err = InitialParams(context.Background(), m, cfg, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "parity_small_weights.pth") || !strings.Contains(err.Error(), "features.0.weight") {
		t.Errorf("a narrow AlexNet's weights: %v; want an error naming the file and the first misfit tensor", err)
	}

	cfg.Pretrained = PretrainedTorchvision
	if err := cfg.Validate(); err == nil {
		t.Error("--init-from with --pretrained torchvision accepted")
	}
}
