package train

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"vktrain/train/cifar10"
	"vktrain/train/metrics"
)

// sharedCIFAR is the real CIFAR-10 subset beside the repository (10,000 training
// and 1,000 test images), or VKTRAIN_CIFAR_DIR.
func sharedCIFAR(t *testing.T) string {
	dir := os.Getenv("VKTRAIN_CIFAR_DIR")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "data", "cifar-10-batches-bin")
	}
	if _, err := os.Stat(filepath.Join(dir, "data_batch_1.bin")); err != nil {
		t.Skipf("real CIFAR-10 subset not found at %s (set VKTRAIN_CIFAR_DIR): %v", dir, err)
	}
	return dir
}

// memorizeImages is how many real images TestRealCIFARMemorizes learns by heart.
const memorizeImages = 16

// TestRealCIFARMemorizes trains AlexNet from scratch (the kaiming scheme) at
// 64x64 on 16 real CIFAR-10 training images, each repeated 10 times in the
// training file (batch 16, lr 0.01, 8 epochs of 10 steps), and evaluates on the
// same 16 images after every epoch. The network must learn them by heart: the
// epoch's mean training loss must fall from about 2.3 (chance: ln 10) below 1.3,
// and at some epoch at least half of the images must be classified right (the
// most frequent class among them is 4 of 16). It goes through the real files,
// the data order, preprocessing, every kernel forward and backward, SGD and the
// evaluation, so a gradient of the wrong sign, labels paired with the wrong
// images or an update that does not land all leave it at chance. The best epoch
// rather than the last is checked because from scratch at this learning rate the
// loss can spike for an epoch (measured, seeds 1-3: best accuracy 75-93%, lowest
// epoch loss 0.39-0.84; about 50 s on an Intel Xeon host; with the labels of
// each batch rotated by one image it stayed at 25% and 2.0).
func TestRealCIFARMemorizes(t *testing.T) {
	src := sharedCIFAR(t)
	raw, err := os.ReadFile(filepath.Join(src, "data_batch_1.bin"))
	if err != nil {
		t.Fatal(err)
	}
	first := raw[:memorizeImages*cifar10.RecordBytes]
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data_batch_1.bin"), bytes.Repeat(first, 10), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), first, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := Defaults()
	cfg.Data, cfg.Pretrained, cfg.Init = dir, PretrainedNone, "kaiming"
	cfg.ImageSize, cfg.Batch, cfg.Epochs, cfg.LR, cfg.LogEvery, cfg.Seed = 64, 16, 8, 0.01, 10, 2
	res, err := Run(context.Background(), cfg, runOpts(t, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	bestAcc, lowLoss := 0.0, math.Inf(1)
	for _, ep := range res.Epochs {
		t.Logf("epoch %d: training loss %.3f, accuracy on the %d images %.0f%%", ep.Epoch, ep.TrainLoss, memorizeImages, 100*ep.TestAcc)
		bestAcc, lowLoss = max(bestAcc, ep.TestAcc), min(lowLoss, ep.TrainLoss)
	}
	if lowLoss >= 1.3 {
		t.Errorf("lowest epoch training loss %.3f: the network did not learn the %d images; want below 1.3 (chance 2.30)", lowLoss, memorizeImages)
	}
	if bestAcc < 0.5 {
		t.Errorf("best accuracy on the %d learnt images %.0f%%; want at least 50%%", memorizeImages, 100*bestAcc)
	}
}

// TestSyntheticLearns trains AlexNet from scratch (the kaiming scheme) on the
// built-in synthetic set for one epoch of 3,000 images at 64x64, the recipe of
// make demo, and requires it to learn: the running loss of some 75-step window
// in the epoch's second half must have fallen from chance (ln 10 = 2.30) below
// 2.15; a network that does not learn stays at 2.28-2.30 in every window. One
// epoch ends where learning has just begun (the loss starts falling after
// about 150-250 steps), and at lr 0.01 the trajectory is chaotic: a change of
// algorithm (all within their error bounds), which the tuner makes by the
// host's timings, moves where it ends. Measured, last and lowest second-half
// windows: im2col 1.84 and 1.84, F(2x2,3x3) everywhere 1.88, F(4x4,3x3) 2.03,
// the tuned mix on the Intel Xeon host 2.20 and 2.02 (a spike in the last
// window), on the simulated slow host 2.07 and 2.03; earlier builds 1.86-1.99.
// The test accuracy after that one epoch follows the loss it ends at (a loss
// of 2.03 is an average probability of 13% for the right class): 14-43%
// measured (chance 10%), so it is logged, not bounded; TestRealCIFARMemorizes
// bounds the accuracy of a network that has learnt.
// The one test here that takes minutes: about 2 on an Intel Xeon host, 10 on
// one five times slower.
func TestSyntheticLearns(t *testing.T) {
	if testing.Short() {
		t.Skip("the demo recipe: a training run of minutes (375 steps)")
	}
	cfg := Defaults()
	cfg.Data, cfg.Pretrained, cfg.Init = DataSynthetic, PretrainedNone, "kaiming"
	cfg.ImageSize, cfg.Batch, cfg.Epochs, cfg.LR, cfg.LogEvery = 64, 8, 1, 0.01, 75
	cfg.TrainLimit, cfg.TestLimit = 3000, 500
	dir := t.TempDir()
	res, err := Run(context.Background(), cfg, runOpts(t, dir))
	if err != nil {
		t.Fatal(err)
	}
	run, err := metrics.Read(filepath.Join(dir, metrics.FileName), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range run.Steps {
		t.Logf("steps to %d: running loss %.3f", st.Step, st.RunningLoss)
	}
	acc := res.Epochs[0].TestAcc
	t.Logf("synthetic test accuracy after one epoch of %d images: %.1f%%", cfg.TrainLimit, 100*acc)
	lowest := math.Inf(1)
	for _, st := range run.Steps {
		if 2*st.Step > 375 {
			lowest = math.Min(lowest, st.RunningLoss)
		}
	}
	if lowest >= 2.15 {
		t.Errorf("running loss over the epoch's second half %v (lowest %.3f): the network did not learn the synthetic set; want a window below 2.15 (chance 2.30)", run.Steps, lowest)
	}
}
