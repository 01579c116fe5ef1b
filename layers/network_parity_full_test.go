package layers

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"vktrain/layers/nn"
	"vktrain/train/weights"
)

// ParityDirEnv names the directory holding the full-size PyTorch fixtures
// (parity_full_weights.pth and parity_full_io.pth, written by
// testdata/gen_parity.py --full). make parity sets it.
const ParityDirEnv = "VKTRAIN_PARITY_DIR"

// fullAlexNet is the model of gen_parity.py --full: torchvision's AlexNet with
// the reference's surgery (classifier.4 -> Linear(4096, 1024), classifier.6 ->
// Linear(1024, 10)) and dropout p = 0, built here as train.BuildModel builds it
// (that package cannot be imported from layers).
func fullAlexNet(t testing.TB) *nn.Model {
	t.Helper()
	m := nn.AlexNet(1000)
	must(t, m.ReferenceSurgery(10))
	must(t, m.Replace("classifier.0", nn.NewDropout(0)))
	must(t, m.Replace("classifier.3", nn.NewDropout(0)))
	must(t, m.Validate(3, 224, 224))
	return m
}

// TestNetworkParityFull runs two SGD steps (lr 0.001, momentum 0.9) of the real
// modified AlexNet at 224 (resize 256, center crop 224), batch 4, and compares
// PyTorch's logits, losses and parameters after the steps at 1e-4 relative to
// each tensor's largest magnitude, logging the worst per tensor. It also checks
// the second step's gradients at 1e-3 of their largest magnitude (the bound of
// TestNetworkParity), a much finer test of the training step than the
// parameters, which two steps at lr 0.001 barely move. Skipped unless
// VKTRAIN_PARITY_DIR names the fixtures' directory (make parity).
//
// Both GEMM variants run, Winograd and im2col; where classifier.1's weight (144 MiB) exceeds the
// device's storage-buffer range (lavapipe's 128 MiB), the tiled variant reads it
// as texels.
func TestNetworkParityFull(t *testing.T) {
	dir := os.Getenv(ParityDirEnv)
	if dir == "" {
		t.Skipf("%s is not set: run make parity (it generates the full-size PyTorch fixtures and sets it)", ParityDirEnv)
	}
	start := time.Now()
	w, err := weights.ReadPTH(filepath.Join(dir, "parity_full_weights.pth"))
	must(t, err)
	io, err := weights.ReadPTH(filepath.Join(dir, "parity_full_io.pth"))
	must(t, err)
	t.Logf("fixtures read in %v", time.Since(start).Round(time.Millisecond))
	r := openRuntime(t)
	// Winograd (the default for features.6, .8 and .10) on both variants, and
	// im2col on the texel one.
	variants(t, r, func(t *testing.T) {
		algos := []ConvAlgo{ConvWinograd4}
		if r.Variant == GEMMTexel {
			algos = append(algos, ConvWinograd, ConvIm2col)
		}
		for _, algo := range algos {
			t.Run(algo.String(), func(t *testing.T) { checkParity(t, r, fullAlexNet(t), imageNetInput(256, 224), w, io, algo, false) })
		}
		if r.Variant == GEMMTexel { // every gradient, classifier.1's 151 MB weight's too
			t.Run("winograd4/unfused", func(t *testing.T) {
				checkParity(t, r, fullAlexNet(t), imageNetInput(256, 224), w, io, ConvWinograd4, true)
			})
		}
	})
}

// TestNetworkParityResNet18 runs two steps of torchvision's ResNet-18 with
// fc -> Linear(512, 10) at 224 (resize 256, center crop 224), batch 2, from
// random weights torchvision made (BatchNorm weights, biases and running
// statistics drawn at random too), and compares with PyTorch's steps in
// float64 (gen_parity.py --resnet18): SGD (lr 0.001, momentum 0.9) in
// training mode (im2col, and F(4x4, 3x3) Winograd) and in eval mode
// (FrozenBatchNorm), and AdamW (eps 1e-3)
// in training mode. Bounds as TestNetworkParityResNet's, except that a
// result beyond them passes within a relative L2 error of kinkTolerance
// (adamKinkTolerance for Adam's gradients): see compareToTorch. Skipped
// unless VKTRAIN_PARITY_DIR names the fixtures' directory (make parity).
func TestNetworkParityResNet18(t *testing.T) {
	dir := os.Getenv(ParityDirEnv)
	if dir == "" {
		t.Skipf("%s is not set: run make parity (it generates the full-size PyTorch fixtures and sets it)", ParityDirEnv)
	}
	read := func(name string) *weights.StateDict {
		sd, err := weights.ReadPTH(filepath.Join(dir, name))
		must(t, err)
		return sd
	}
	w := read("parity_resnet18_weights.pth")
	model := func() *nn.Model {
		m := nn.ResNet18(1000)
		must(t, m.Replace("fc", nn.NewLinear(512, 10)))
		return m
	}
	input := imageNetInput(256, 224)
	sgd := SGDConfig{LR: 0.001, Momentum: 0.9}
	r := openRuntime(t)
	train := read("parity_resnet18_io.pth")
	// The texel GEMM variant only (lavapipe's; the tiled one takes a minute
	// here and runs the narrow ResNets of TestNetworkParityResNet).
	for _, algo := range []ConvAlgo{ConvIm2col, ConvWinograd4} {
		t.Run(algo.String(), func(t *testing.T) {
			checkParityWith(t, r, model(), input, w, train, NetworkConfig{SGD: sgd, ConvAlgo: algo, Batch: 2})
		})
	}
	t.Run("eval-mode", func(t *testing.T) {
		checkParityWith(t, r, model(), input, w, read("parity_resnet18_eval_io.pth"), NetworkConfig{SGD: sgd, ConvAlgo: ConvWinograd4, FrozenBatchNorm: true, Batch: 2})
	})
	t.Run("adamw", func(t *testing.T) {
		adamw := &AdamConfig{LR: 0.001, Beta1: 0.9, Beta2: 0.999, Eps: 1e-3, WeightDecay: 0.01, Decoupled: true} // eps: see gen_parity.py
		checkParityWith(t, r, model(), input, w, read("parity_resnet18_adamw_io.pth"), NetworkConfig{Adam: adamw, ConvAlgo: ConvIm2col, Batch: 2})
	})
}
