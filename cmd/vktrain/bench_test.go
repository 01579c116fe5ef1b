package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vktrain/layers/bench"
)

// TestBench runs `vktrain bench` at a tiny size and count with a kernel filter,
// writing JSON and a chart and comparing with an earlier (made-up) report.
func TestBench(t *testing.T) {
	dir := t.TempDir()
	old := &bench.Report{Schema: bench.SchemaID, Tool: "pytorch", Device: bench.Device{Name: "old"},
		Kernels: []bench.Kernel{{Name: "features.8 forward", Layer: "features.8", Chosen: true, MedianMS: 1000}},
		Step:    bench.Step{Batch: 2, MedianMS: 1e5, ImagesPerS: 0.02}, Inference: bench.Infer{Batch1MS: 1e4, Batch: 2, BatchMS: 1e4}}
	oldPath := filepath.Join(dir, "old.json")
	if err := old.WriteJSON(oldPath); err != nil {
		t.Fatal(err)
	}
	js, png := filepath.Join(dir, "b.json"), filepath.Join(dir, "b.png")
	out, stderr, code := runCmd(t, "bench", "--image-size", "64", "--batch", "2", "--count", "1", "--kernels", "features.8 forward,loss",
		"--json", js, "--png", png, "--compare", oldPath)
	if code != 0 {
		t.Fatalf("bench: code %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"peaks: FMA", "features.8 forward", "loss forward+backward", "training step, batch 2", "speedup", "faster", "training images/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := bench.ReadReport(js); err != nil {
		t.Error(err)
	}
	if st, err := os.Stat(png); err != nil || st.Size() == 0 {
		t.Errorf("chart: %v", err)
	}
	if _, stderr, code := runCmd(t, "bench", "--batch", "0"); code != 1 || !strings.Contains(stderr, "--batch") {
		t.Errorf("bad --batch: code %d, %s", code, stderr)
	}
	if _, stderr, code := runCmd(t, "bench", "--compare", filepath.Join(dir, "missing.json")); code != 1 || !strings.Contains(stderr, "missing.json") {
		t.Errorf("missing --compare file: code %d, %s", code, stderr)
	}
}
