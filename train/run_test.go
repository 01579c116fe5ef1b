package train

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/train/cifar10"
	"vktrain/train/weights"
)

// tinyConfig is a run small enough for tests: the synthetic set at 64x64.
func tinyConfig() Config {
	c := Defaults()
	c.Pretrained = PretrainedNone
	c.Data = DataSynthetic
	c.ImageSize = 64
	c.Batch = 4
	c.Epochs = 2
	c.LR = 0.01
	c.LogEvery = 2
	c.TrainLimit = 24 // 6 steps per epoch
	c.TestLimit = 10  // a partial last evaluation batch
	c.Seed = 7
	return c
}

func runOpts(t *testing.T, dir string) Options {
	return Options{RunDir: dir, Validate: true, Out: &bytes.Buffer{}}
}

// checkResume runs cfg without interruption and again interrupted mid-epoch,
// at an epoch boundary and mid-epoch again, resuming each time, and requires
// the final state_dict (parameters and buffers) and optimizer state
// (momentum, or Adam's two moments) to be equal bit for bit. It returns the interrupted run's directory.
func checkResume(t *testing.T, cfg Config) string {
	t.Helper()
	whole := t.TempDir()
	res, err := Run(context.Background(), cfg, runOpts(t, whole))
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Epochs) != 2 || res.Interrupted {
		t.Fatalf("uninterrupted run: %d epochs, interrupted %v", len(res.Epochs), res.Interrupted)
	}
	if _, err := Run(context.Background(), cfg, runOpts(t, whole)); err == nil || !strings.Contains(err.Error(), "already holds a run") {
		t.Errorf("a second run into the same directory: %v", err)
	}
	split := t.TempDir()
	for _, stop := range []int{4, 6, 9} { // mid-epoch, at the boundary, mid-epoch again
		o := runOpts(t, split)
		o.StopAfterSteps = stop
		o.Resume = stop != 4
		res, err := Run(context.Background(), cfg, o)
		if err != nil {
			t.Fatalf("stop at %d: %v", stop, err)
		}
		if !res.Interrupted {
			t.Fatalf("stop at %d: not interrupted", stop)
		}
	}
	o := runOpts(t, split)
	o.Resume = true
	if _, err := Run(context.Background(), cfg, o); err != nil {
		t.Fatal(err)
	}
	a, err := LoadCheckpoint(filepath.Join(whole, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadCheckpoint(filepath.Join(split, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	if a.State != b.State {
		t.Errorf("state %+v, resumed %+v", a.State, b.State)
	}
	if !slices.Equal(a.Params.Names, b.Params.Names) || !slices.Equal(a.Momentum.Names, b.Momentum.Names) || a.Momentum.Len() == 0 {
		t.Fatalf("state %v and momentum %v, resumed %v and %v", a.Params.Names, a.Momentum.Names, b.Params.Names, b.Momentum.Names)
	}
	for _, name := range a.Params.Names { // parameters and buffers (a ResNet's running statistics)
		if !slices.Equal(a.Params.Tensors[name].Data, b.Params.Tensors[name].Data) {
			t.Errorf("state_dict entry %s differs after resuming", name)
		}
	}
	for _, name := range a.Momentum.Names {
		if !slices.Equal(a.Momentum.Tensors[name].Data, b.Momentum.Tensors[name].Data) {
			t.Errorf("momentum %s differs after resuming", name)
		}
		if cfg.adam() != nil {
			sa, ok := a.SecondMoments.Get(name)
			sb, okb := b.SecondMoments.Get(name)
			if !ok || !okb || !slices.Equal(sa.Data, sb.Data) {
				t.Errorf("second moment %s differs after resuming (or is missing: %v, %v)", name, ok, okb)
			}
		}
	}
	return split
}

// TestResumeAdamW is TestResumeEqualsUninterrupted under torch.optim.AdamW:
// the first and second moments and the step count (the bias corrections)
// are checkpointed and resumed exactly.
func TestResumeAdamW(t *testing.T) {
	cfg := tinyConfig()
	cfg.Optimizer, cfg.LR, cfg.WeightDecay = OptimizerAdamW, 1e-3, 0.01
	checkResume(t, cfg)
}

// TestResumeEqualsUninterrupted interrupts a run mid-epoch (and once more at an
// epoch boundary), resumes it, and requires the final parameters and momentum to
// equal, bit for bit, those of the same run without interruption. The run has a
// warm-up (3 steps), a cosine schedule and a parameter group of its own rate,
// so the resumed parts must pick the schedule up where it was, for each group;
// and label smoothing, which the resumed parts must take from config.json.
func TestResumeEqualsUninterrupted(t *testing.T) {
	cfg := tinyConfig()
	cfg.LRSchedule, cfg.WarmupEpochs = ScheduleCosine, 0.5
	cfg.LabelSmoothing = 0.1
	cfg.LRGroups = []LRGroup{{Prefix: "features.", LR: 0.002}} // a slower backbone, scheduled alike
	split := checkResume(t, cfg)
	for _, f := range []string{"config.json", "metrics.jsonl", "samples.png", "predictions.png", "loss.png", "accuracy.png", "per_class.png", "confusion.png"} {
		if _, err := os.Stat(filepath.Join(split, f)); err != nil {
			t.Errorf("run directory lacks %s: %v", f, err)
		}
	}
	// The tuned algorithms are part of the run: every convolution's, in its config.
	rc, err := ReadConfig(split)
	if err != nil {
		t.Fatal(err)
	}
	if rc.LabelSmoothing != 0.1 {
		t.Errorf("config.json's label smoothing %v, want 0.1", rc.LabelSmoothing)
	}
	if len(rc.ConvChoices) != 5 || rc.ConvChoices["features.0"] != [3]string{"im2col", "im2col", "im2col"} {
		t.Errorf("config.json's conv choices %v, want all five convolutions (features.0 by im2col)", rc.ConvChoices)
	}
	// And the GEMM kernels: every convolution's and linear layer's forward
	// (a GEMM at batch 4).
	for _, layer := range []string{"features.0", "features.3", "classifier.1", "classifier.6"} {
		g, ok := rc.GEMMChoices[layer]
		if !ok {
			t.Errorf("config.json's GEMM choices %v lack %s", rc.GEMMChoices, layer)
			continue
		}
		pass := layers.PassForward
		if g[pass] != "texel" && g[pass] != "tiled" {
			t.Errorf("%s: GEMM choices %v, want its %s's texel or tiled", layer, g, pass)
		}
	}
	// A resumed run takes them from there: a bad one is an error naming it.
	original, err := os.ReadFile(filepath.Join(split, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		edit func(rc *Config)
		want string
	}{
		{func(rc *Config) { rc.ConvChoices["features.6"] = [3]string{"fft", "im2col", "im2col"} }, "fft"},
		{func(rc *Config) { rc.GEMMChoices["features.6"] = [3]string{"texel", "shared", "texel"} }, "shared"},
	} {
		if err := os.WriteFile(filepath.Join(split, "config.json"), original, 0o644); err != nil {
			t.Fatal(err)
		}
		rc, err := ReadConfig(split)
		if err != nil {
			t.Fatal(err)
		}
		bad.edit(&rc)
		if err := writeConfig(split, rc); err != nil {
			t.Fatal(err)
		}
		o := runOpts(t, split)
		o.Resume = true
		if _, err := Run(context.Background(), cfg, o); err == nil || !strings.Contains(err.Error(), "features.6") || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("resuming with a bad choice (%s): %v", bad.want, err)
		}
	}
}

// TestNaNLossStops: a learning rate that diverges stops training with an error
// naming the step, and leaves no checkpoint written after it.
func TestNaNLossStops(t *testing.T) {
	cfg := tinyConfig()
	cfg.LR = 1e12
	cfg.Epochs = 1
	cfg.TrainLimit = 200
	dir := t.TempDir()
	_, err := Run(context.Background(), cfg, runOpts(t, dir))
	if err == nil || !strings.Contains(err.Error(), "step ") || !strings.Contains(err.Error(), "loss is") {
		t.Fatalf("diverging run: err = %v; want the step and the bad loss named", err)
	}
	if _, statErr := os.Stat(filepath.Join(dir, CheckpointFile)); !os.IsNotExist(statErr) {
		t.Errorf("a checkpoint was written after the loss went bad: %v", statErr)
	}
}

// TestInterruptWritesCheckpoint: a cancelled context (SIGINT in the CLI) ends
// the run with ErrInterrupted and a checkpoint that resumes.
// TestInterruptWritesCheckpoint: a run interrupted at its first step stops
// with ErrInterrupted and leaves a checkpoint to resume from; interrupted
// while the tuner times the convolutions (an empty tuning cache), before
// anything trained, it says so and wraps the context's error. (The first
// case used to depend on the user's tuning cache: with an empty one it
// stopped in the tuner.)
func TestInterruptWritesCheckpoint(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cfg := tinyConfig()
	cfg.Tune = "off"
	dir := t.TempDir()
	_, err := Run(ctx, cfg, runOpts(t, dir))
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled run: %v", err)
	}
	if _, err := LoadCheckpoint(filepath.Join(dir, CheckpointFile)); err != nil {
		t.Fatalf("no checkpoint after the interruption: %v", err)
	}

	cfg = tinyConfig()
	cfg.CacheDir = t.TempDir() // nothing tuned: the tuner times first
	_, err = Run(ctx, cfg, runOpts(t, t.TempDir()))
	if err == nil || !errors.Is(err, context.Canceled) || errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "timing the convolutions") {
		t.Fatalf("run cancelled while tuning: %v", err)
	}
}

func TestBadDataNamesFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "data_batch_1.bin"), make([]byte, 3073*2+5), 0o644); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "test_batch.bin"), make([]byte, 3073), 0o644)
	cfg := tinyConfig()
	cfg.Data = dir
	_, err := Run(context.Background(), cfg, runOpts(t, t.TempDir()))
	if err == nil || !strings.Contains(err.Error(), "data_batch_1.bin") {
		t.Fatalf("truncated batch file: %v", err)
	}
}

// TestScheduleReachesDevice: a step schedule that multiplies the learning rate
// by 1e-30 after the first epoch must leave the parameters exactly where one
// epoch alone left them (the update lr*buf then vanishes against them in
// float32). (With Network.Submit ignoring Batch.LR, every parameter moved.)
func TestScheduleReachesDevice(t *testing.T) {
	params := func(cfg Config) map[string][]float32 {
		t.Helper()
		ck := trainedCheckpoint(t, cfg)
		m := map[string][]float32{}
		for _, name := range ck.Params.Names {
			m[name] = ck.Params.Tensors[name].Data
		}
		return m
	}
	one := tinyConfig()
	one.Epochs = 1
	after1 := params(one)
	decayed := tinyConfig()
	decayed.LRSchedule, decayed.LRStepEpochs, decayed.LRGamma = ScheduleStep, 1, 1e-30
	for name, want := range params(decayed) {
		if !slices.Equal(want, after1[name]) {
			t.Errorf("%s moved in the second epoch although its learning rate was 1e-30 of the first's", name)
		}
	}
}

// TestLRGroups: --lr-group's syntax, and a prefix that names no parameter is
// an error naming it rather than a group silently left empty.
func TestLRGroups(t *testing.T) {
	if g, err := ParseLRGroup("features.=1e-4"); err != nil || g != (LRGroup{Prefix: "features.", LR: 1e-4}) {
		t.Errorf("ParseLRGroup: %+v, %v", g, err)
	}
	for _, bad := range []string{"features.", "=0.1", "features.=-1", "features.=x", "features.=inf"} {
		if _, err := ParseLRGroup(bad); err == nil {
			t.Errorf("ParseLRGroup(%q) accepted", bad)
		}
	}
	cfg := tinyConfig()
	cfg.LRGroups = []LRGroup{{Prefix: "feature.", LR: 0.001}}
	if _, err := Run(context.Background(), cfg, runOpts(t, t.TempDir())); err == nil || !strings.Contains(err.Error(), `"feature."`) {
		t.Errorf("a group naming no parameter: %v", err)
	}
	cfg.LRGroups = []LRGroup{{Prefix: "features.", LR: 0.001}, {Prefix: "features.", LR: 0.01}}
	if err := cfg.Validate(); err == nil {
		t.Error("the same prefix twice accepted")
	}
}

// TestResumeSequentialNoDropout is TestResumeEqualsUninterrupted with
// --dropout 0.25 and --data-order sequential: a resumed part takes both from
// config.json (had either been dropped there, the resumed parts would train
// with dropout 0.5 or shuffled and end elsewhere than the uninterrupted run).
func TestResumeSequentialNoDropout(t *testing.T) {
	cfg := tinyConfig()
	p := 0.25
	cfg.Dropout, cfg.DataOrder = &p, OrderSequential
	split := checkResume(t, cfg)
	rc, err := ReadConfig(split)
	if err != nil {
		t.Fatal(err)
	}
	if rc.Dropout == nil || *rc.Dropout != 0.25 || rc.DataOrder != OrderSequential {
		t.Errorf("config.json's dropout %s and data order %q, want 0.25 and sequential", dropoutName(rc), rc.DataOrder)
	}
}

// writeDataDir writes a CIFAR-10 folder of the synthetic set's first train
// and test images (the synthetic set itself is drawn from the run's seed).
func writeDataDir(t *testing.T, train, test int) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range []struct {
		name string
		d    *cifar10.Dataset
	}{{"data_batch_1.bin", cifar10.Synthetic(train, 3)}, {cifar10.TestFile, cifar10.Synthetic(test, 4)}} {
		var b []byte
		for i := 0; i < f.d.Len(); i++ {
			b = append(append(b, f.d.Labels[i]), f.d.Image(i)...)
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestNothingRandomWithoutDropout: with --init-from, --dropout 0, the
// sequential data order and no augmentation, nothing in training depends on
// the seed any more: runs with seeds 1 and 2 end with the same parameters bit
// for bit (as a run in another framework can then be followed step by step).
// With dropout 0.5 the seed changes the masks, and the parameters.
func TestNothingRandomWithoutDropout(t *testing.T) {
	m, err := BuildModel(ModelAlexNet, false)
	if err != nil {
		t.Fatal(err)
	}
	start, err := m.InitStateDictScheme(99, nn.InitTorch)
	if err != nil {
		t.Fatal(err)
	}
	initFile := filepath.Join(t.TempDir(), "start.safetensors")
	if err := weights.WriteSafetensors(initFile, start, nil); err != nil {
		t.Fatal(err)
	}
	data := writeDataDir(t, 24, 8)
	params := func(seed uint64, dropout float64) *weights.StateDict {
		t.Helper()
		cfg := tinyConfig()
		cfg.Data, cfg.InitFrom, cfg.Epochs, cfg.Seed = data, initFile, 1, seed
		cfg.Dropout, cfg.DataOrder, cfg.Conv = &dropout, OrderSequential, "winograd4" // no tuning: one algorithm for all
		ck := trainedCheckpoint(t, cfg)
		return ck.Params
	}
	differ := func(a, b *weights.StateDict) []string {
		var names []string
		for _, name := range a.Names {
			tb, ok := b.Get(name)
			if !ok || !slices.Equal(a.Tensors[name].Data, tb.Data) {
				names = append(names, name)
			}
		}
		return names
	}
	a, b := params(1, 0), params(2, 0)
	if d := differ(a, b); len(d) > 0 {
		t.Errorf("dropout 0, sequential order: seeds 1 and 2 end with different %v", d)
	}
	if d := differ(a, start); len(d) != len(start.Names) {
		t.Errorf("only %v moved from the start in an epoch", d)
	}
	if d := differ(b, params(2, 0.5)); len(d) == 0 {
		t.Error("dropout 0.5 ends where dropout 0 does: the probability does not reach the network")
	}
}

// trainedCheckpoint runs cfg to its end in a new directory and returns the
// checkpoint it leaves.
func trainedCheckpoint(t *testing.T, cfg Config) *Checkpoint {
	t.Helper()
	dir := t.TempDir()
	if _, err := Run(context.Background(), cfg, runOpts(t, dir)); err != nil {
		t.Fatal(err)
	}
	ck, err := LoadCheckpoint(filepath.Join(dir, CheckpointFile))
	if err != nil {
		t.Fatal(err)
	}
	return ck
}
