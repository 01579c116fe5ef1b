package train

import (
	"bytes"
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"vktrain/train/metrics"
	"vktrain/train/weights"
)

// TestResumeResNet is TestResumeEqualsUninterrupted for a ResNet (narrow:
// see narrowResNet): the checkpoint holds the network's whole state_dict,
// BatchNorm's running statistics and num_batches_tracked included, and a run
// interrupted and resumed three times ends bit for bit where the
// uninterrupted one does (checkResume compares every entry, the buffers
// too). The finished run then evaluates, from a fresh network, exactly as it
// evaluated itself after its last epoch (the running statistics restored),
// and exports every state_dict entry with the model in the metadata.
func TestResumeResNet(t *testing.T) {
	cfg := narrowResNet()
	dir := checkResume(t, cfg)

	rc, ck, err := LoadRun(dir)
	mustPT(t, err)
	if rc.Model != ModelResNet18 || rc.Width != 8 || ck.State.ModelName != ModelResNet18 {
		t.Errorf("config.json model %q width %d, checkpoint's %q", rc.Model, rc.Width, ck.State.ModelName)
	}
	m, err := BuildModelFor(rc)
	mustPT(t, err)
	if _, _, err := ck.Params.Check(m.StateSpecs(), true); err != nil {
		t.Fatalf("checkpoint is not the model's state_dict: %v", err)
	}
	steps := float32(2 * 6)
	for _, name := range []string{"bn1.num_batches_tracked", "layer2.0.downsample.1.num_batches_tracked", "layer4.1.bn2.num_batches_tracked"} {
		if got := ck.Params.Tensors[name].Data; len(got) != 1 || got[0] != steps {
			t.Errorf("%s = %v, want %v (one per training step)", name, got, steps)
		}
	}
	for _, name := range []string{"bn1.running_mean", "layer3.0.bn2.running_var"} {
		fresh := float32(0)
		if strings.HasSuffix(name, "var") {
			fresh = 1
		}
		if !slices.ContainsFunc(ck.Params.Tensors[name].Data, func(v float32) bool { return v != fresh }) {
			t.Errorf("%s never moved from %v", name, fresh)
		}
	}
	if _, ok := ck.Momentum.Get("bn1.running_mean"); ok || ck.Momentum.Len() != len(m.Specs()) {
		t.Errorf("momentum holds %d tensors (a buffer's too: %v), want the %d parameters'", ck.Momentum.Len(), ok, len(m.Specs()))
	}

	run, err := metrics.Read(dir, nil)
	mustPT(t, err)
	last := run.Epochs[len(run.Epochs)-1]
	test, classes, err := LoadTestSet(context.Background(), rc, nil, nil)
	mustPT(t, err)
	for _, batch := range []int{0, 3} { // the run's own, and one that pads
		em, err := OpenForEval(rc, ck, EvalOptions{Batch: batch, Validate: true})
		mustPT(t, err)
		ev, err := em.Evaluate(test)
		em.Close()
		mustPT(t, err)
		for c := range classes {
			if !slices.Equal(ev.Confusion[c], last.Confusion[c]) {
				t.Errorf("batch %d: confusion row %d %v, the run's own evaluation %v", batch, c, ev.Confusion[c], last.Confusion[c])
			}
		}
		if batch == 0 && ev.Loss != last.TestLoss {
			t.Errorf("test loss %v, the run's own evaluation %v", ev.Loss, last.TestLoss)
		}
	}

	out := filepath.Join(t.TempDir(), "model.safetensors")
	mustPT(t, Export(rc, ck, out))
	sd, meta, err := weights.ReadSafetensors(out)
	mustPT(t, err)
	if _, _, err := sd.Check(m.StateSpecs(), true); err != nil {
		t.Errorf("export is not the model's state_dict: %v", err)
	}
	for _, name := range ck.Params.Names {
		if !slices.Equal(sd.Tensors[name].Data, ck.Params.Tensors[name].Data) {
			t.Errorf("exported %s differs from the checkpoint", name)
		}
	}
	if meta["model"] != ModelResNet18 || meta["width"] != "8" || meta["surgery"] != "fc=Linear(64,10)" || meta["image_size"] != "32" {
		t.Errorf("metadata %v", meta)
	}

	// The checkpoint of one model does not resume or evaluate as another.
	rc.Model = ModelResNet50
	mustPT(t, writeConfig(dir, rc))
	if _, _, err := LoadRun(dir); err == nil || !strings.Contains(err.Error(), "resnet18") || !strings.Contains(err.Error(), "resnet50") {
		t.Errorf("LoadRun of a resnet18 checkpoint as resnet50: %v", err)
	}
	o := runOpts(t, dir)
	o.Resume = true
	if _, err := Run(context.Background(), rc, o); err == nil || !strings.Contains(err.Error(), "resnet50") {
		t.Errorf("resuming a resnet18 checkpoint as resnet50: %v", err)
	}
}

// TestFreezeResNet: --freeze-features trains a ResNet's fc alone (every other
// parameter stays bit for bit at its initial value, and only fc has
// momentum), while BatchNorm still runs in training mode: its running
// statistics move and num_batches_tracked counts the steps, as PyTorch does
// with requires_grad False and model.train().
func TestFreezeResNet(t *testing.T) {
	cfg := narrowResNet()
	cfg.FreezeFeatures, cfg.Epochs, cfg.TrainLimit = true, 1, 4 // two steps
	dir := t.TempDir()
	var printed bytes.Buffer
	o := runOpts(t, dir)
	o.Out = &printed
	if _, err := Run(context.Background(), cfg, o); err != nil {
		t.Fatalf("%v\n%s", err, printed.String())
	}
	ck, err := LoadCheckpoint(filepath.Join(dir, CheckpointFile))
	mustPT(t, err)
	m, err := BuildModelFor(cfg)
	mustPT(t, err)
	start, err := InitialParams(context.Background(), m, cfg, nil, nil)
	mustPT(t, err)
	for _, p := range m.Params() {
		moved := !slices.Equal(ck.Params.Tensors[p.Name].Data, start.Tensors[p.Name].Data)
		if moved != strings.HasPrefix(p.Name, "fc.") {
			t.Errorf("%s: moved %v, want only fc to train", p.Name, moved)
		}
	}
	if !slices.Equal(ck.Momentum.Names, []string{"fc.weight", "fc.bias"}) {
		t.Errorf("momentum of %v, want fc's only", ck.Momentum.Names)
	}
	if got := ck.Params.Tensors["layer1.0.bn1.num_batches_tracked"].Data[0]; got != 2 {
		t.Errorf("num_batches_tracked %v after two steps", got)
	}
	if slices.Equal(ck.Params.Tensors["layer1.0.bn1.running_mean"].Data, start.Tensors["layer1.0.bn1.running_mean"].Data) {
		t.Error("a frozen ResNet's running_mean did not move in training")
	}
}
