package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/vk"
)

func model(t *testing.T) *nn.Model {
	t.Helper()
	m := nn.AlexNet(1000)
	if err := m.ReferenceSurgery(10); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRun benchmarks the model at 64x64, batch 2, one timed run per kernel,
// with both GEMM variants for a few kernels: the report must validate against
// the schema, its figures be positive and finite, the step be attributed to
// layers, and the table, chart and comparison be written. No timed assertions.
func TestRun(t *testing.T) {
	dev, err := vk.Open(vk.Options{PipelineCacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	rt := layers.NewRuntime(dev)
	defer rt.Close()
	rep, err := Run(context.Background(), rt, Config{Model: model(t), ImageSize: 64, Batch: 2, Count: 1, Seed: 3}, "test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "bench.json")
	if err := rep.WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkJSON(t, b)

	// Every kernel family at the model's shapes.
	names := map[string]bool{}
	for _, k := range rep.Kernels {
		names[k.Name] = true
		for _, v := range []float64{k.MedianMS, k.MinMS, k.MaxMS, k.PctPeak} {
			if !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: bad figure %v", k.Name, v)
			}
		}
		if k.InStep && !(k.StepMS > 0 && k.Share > 0) {
			t.Errorf("%s: in the step but not attributed (%v ms, %v%%)", k.Name, k.StepMS, k.Share)
		}
	}
	for _, want := range []string{
		"input forward", "features.0 forward", "features.0 backward-weights", "features.0 backward-bias",
		"features.3 backward-data", "features.2 forward", "features.2 backward", "avgpool forward", "avgpool backward",
		"features.0 relu-forward", "classifier.1 backward-relu", "classifier.0 forward", "classifier.0 backward",
		"classifier.1 forward", "classifier.1 backward-weights",
		"loss forward+backward", "sgd update", "flatten forward", "flatten backward",
	} {
		if !names[want] {
			t.Errorf("no kernel %q", want)
		}
	}
	// A linear weight fused with its SGD step computes its input gradient in
	// the same kernel: no backward-data of its own.
	if fused := rt.LinearFusesUpdate(&layers.Linear{In: 9216, Out: 4096}, 2); names["classifier.1 backward-data"] == fused {
		t.Errorf("classifier.1 backward-data benchmarked: %v, but the update fused: %v", names["classifier.1 backward-data"], fused)
	}
	if names["features.0 backward-data"] {
		t.Error("conv1 needs no input gradient, yet it was benchmarked")
	}
	if len(rep.Step.Layers) == 0 {
		t.Error("the step was not attributed to layers")
	}
	sum := 0.0
	for _, l := range rep.Step.Layers {
		sum += l.Share
	}
	if math.Abs(sum-100) > 1 {
		t.Errorf("layer shares sum to %.2f%%", sum)
	}

	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"peaks: FMA", "features.3 backward-weights", "GFLOP/s", "GB/s", "training step by layer", "images/s", "inference: batch 1"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q", want)
		}
	}
	if err := SaveChart(filepath.Join(dir, "bench.png"), rep); err != nil {
		t.Fatal(err)
	}

	// A comparison with a run twice as slow.
	old, err := ReadReport(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range old.Kernels {
		old.Kernels[i].MedianMS *= 2
	}
	for i := range old.Step.Layers {
		old.Step.Layers[i].TotalMS *= 3
	}
	old.Step.MedianMS *= 2
	old.Step.ImagesPerS /= 2
	// A kernel the new run no longer has (fused away) and one the old run lacked.
	old.Kernels = append(old.Kernels, Kernel{Name: "classifier.1 gone", Layer: "classifier.1", MedianMS: 5, Chosen: true})
	cur := *rep
	cur.Kernels = append([]Kernel(nil), rep.Kernels...)
	cur.Kernels = append(cur.Kernels, Kernel{Name: "classifier.1 arrived", Layer: "classifier.1", MedianMS: 1, Chosen: true})
	var cmp bytes.Buffer
	if err := Compare(&cmp, old, &cur); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"features.3 forward", "2.00x", "faster", "training step", "inference batch 1",
		"only in the old run: classifier.1 gone", "only in the new run: classifier.1 arrived",
		"by layer (GPU time inside the recorded step)", "3.00x"} {
		if !strings.Contains(cmp.String(), want) {
			t.Errorf("comparison lacks %q:\n%s", want, cmp.String())
		}
	}
	// Without the step's attribution, by each run's own kernels: the old
	// run's classifier.1 counts its extra kernel.
	old.Step.Layers, cur.Step.Layers = nil, nil
	cmp.Reset()
	if err := Compare(&cmp, old, &cur); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmp.String(), "by layer (each run's chosen kernels of the layer)") {
		t.Errorf("comparison without the step's layers:\n%s", cmp.String())
	}
	_, _, times := layerTimes(old, &cur)
	var oldSum, curSum float64
	for _, k := range old.Kernels {
		if k.Chosen && k.Layer == "classifier.1" {
			oldSum += k.MedianMS
		}
	}
	for _, k := range cur.Kernels {
		if k.Chosen && k.Layer == "classifier.1" {
			curSum += k.MedianMS
		}
	}
	if got := times["classifier.1"]; got != [2]float64{oldSum, curSum} {
		t.Errorf("classifier.1 by its kernels: %v, want %v", got, [2]float64{oldSum, curSum})
	}
}

// TestVariants times both GEMM variants of a few kernels, and every
// convolution algorithm: the device's choice is marked, the others named with
// their variant and algorithm (or skipped, with the reason, where one cannot
// bind the operands), the tuner's pick marked Tuned.
func TestVariants(t *testing.T) {
	dev, err := vk.Open(vk.Options{PipelineCacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	rt := layers.NewRuntime(dev)
	defer rt.Close()
	b := &bencher{ctx: context.Background(), cfg: Config{Count: 1, Variants: true, Filter: "features.10 forward,classifier.6 forward,sgd"}, rt: rt, dev: dev}
	b.cfg.Model, b.cfg.ImageSize, b.cfg.Batch, b.cfg.Resize = model(t), 64, 2, 73 // batch 2: classifier.6's forward a GEMM
	// As a tuner would: features.10 by F(2x2,3x3) in every pass.
	b.cfg.Tune = func(layers.NetworkConfig) (Choices, error) {
		return Choices{Conv: map[string][3]layers.ConvAlgo{"features.10": {layers.ConvWinograd, layers.ConvWinograd, layers.ConvWinograd}}}, nil
	}
	sd, err := b.cfg.Model.InitStateDict(1)
	if err != nil {
		t.Fatal(err)
	}
	net, err := b.newNetwork(b.cfg.Batch, true, sd)
	if err != nil {
		t.Fatal(err)
	}
	defer net.Close()
	parts, err := net.StepParts(layers.TrainStep)
	if err != nil {
		t.Fatal(err)
	}
	rep := &Report{Peaks: Peaks{FMAGFLOPS: 1, CopyGBS: 1}}
	if err := b.parts(rep, parts, nil); err != nil {
		t.Fatal(err)
	}
	got := map[string]Kernel{}
	for _, k := range rep.Kernels {
		got[k.Name] = k
	}
	other := layers.GEMMTiled
	if rt.Variant == layers.GEMMTiled {
		other = layers.GEMMTexel
	}
	for _, name := range []string{"features.10 forward", "classifier.6 forward", "sgd update"} {
		k, ok := got[name]
		if !ok || !k.Chosen || k.Variant != rt.Variant.String() {
			t.Errorf("%s: %+v", name, k)
		}
		alt := name + " [" + other.String() + "]"
		if k, ok := got[alt]; !ok || k.Chosen || k.Variant != other.String() || !(k.MedianMS > 0) {
			t.Errorf("%s: %+v", alt, k)
		}
	}
	// Every algorithm that applies, under both GEMM variants; the tuner's pick
	// (the chosen GEMM variant's winograd) alone marked.
	for name, algo := range map[string]string{"features.10 forward": "winograd", "features.10 forward [im2col]": "im2col",
		"features.10 forward [winograd4]": "winograd4", "features.10 forward [" + other.String() + ", winograd4]": "winograd4"} {
		if k := got[name]; k.Algo != algo || k.Tuned != (name == "features.10 forward") {
			t.Errorf("%s: algorithm %q tuned %v, want %q", name, k.Algo, k.Tuned, algo)
		}
	}
	if len(got) != 10 {
		js, _ := json.MarshalIndent(rep.Kernels, "", " ")
		t.Errorf("want 10 kernels, got %d:\n%s", len(got), js)
	}
}
