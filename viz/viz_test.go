package viz

import (
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"vktrain/train/metrics"
)

// copyRun copies testdata/<name>/metrics.jsonl into a new run directory
// and appends extra to it.
func copyRun(t *testing.T, name, extra string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name, metrics.FileName))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, metrics.FileName), append(b, extra...), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func checkPNG(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if s := img.Bounds().Size(); s.X != w || s.Y != h {
		t.Errorf("%s is %v, want %dx%d", path, s, w, h)
	}
}

func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

func TestSaveAllTruncatedLastLine(t *testing.T) {
	dir := copyRun(t, "run1", `{"kind":"step","epoch":5,"step":170,"running_lo`)
	run, err := metrics.Read(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Warnings) != 1 || !errors.Is(run.Warnings[0], metrics.ErrTruncated) {
		t.Fatalf("warnings %v, want one truncated line", run.Warnings)
	}
	paths, err := SaveAll(dir, run)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"loss.png", "accuracy.png", "per_class.png", "confusion.png"}
	if len(paths) != len(want) {
		t.Fatalf("wrote %v, want %v", paths, want)
	}
	for i, p := range paths {
		if filepath.Base(p) != want[i] || filepath.Dir(p) != dir {
			t.Errorf("path %d = %s, want %s in %s", i, p, want[i], dir)
		}
		h := 500
		if want[i] == "confusion.png" {
			h = 700
		}
		checkPNG(t, p, 800, h)
	}
	noTempFiles(t, dir)

	// Saving again replaces the files.
	if _, err := SaveAll(dir, run); err != nil {
		t.Fatal(err)
	}
	noTempFiles(t, dir)
}

func TestNoEpochsYet(t *testing.T) {
	// The config and the first steps of epoch 1 only: lines 1 to 5.
	b, err := os.ReadFile(filepath.Join("testdata", "run1", metrics.FileName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, metrics.FileName), []byte(strings.Join(lines[:5], "")), 0o644); err != nil {
		t.Fatal(err)
	}
	run, err := metrics.Read(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Steps) != 4 || len(run.Epochs) != 0 {
		t.Fatalf("%d steps, %d epochs; want 4, 0", len(run.Steps), len(run.Epochs))
	}
	if _, err := LossCurve(run); err != nil {
		t.Errorf("loss curve of steps only: %v", err)
	}
	for name, f := range map[string]func() (*plot.Plot, error){
		"accuracy":  func() (*plot.Plot, error) { return Accuracy(run) },
		"per class": func() (*plot.Plot, error) { return PerClass(run, -1) },
		"confusion": func() (*plot.Plot, error) { return Confusion(run, -1) },
		"compare":   func() (*plot.Plot, error) { return Compare([]*metrics.Run{run, nil}) },
	} {
		if _, err := f(); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "no epoch finished yet") &&
			!strings.Contains(err.Error(), "no run has a finished epoch") {
			t.Errorf("%s: err = %v, want ErrNoData saying no epoch finished", name, err)
		}
	}
	paths, err := SaveAll(dir, run)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 1 || filepath.Base(paths[0]) != "loss.png" {
		t.Errorf("SaveAll wrote %v, want only loss.png", paths)
	}

	// Nothing at all yet: nothing written, no error.
	empty, err := metrics.Parse(strings.NewReader(""), "empty", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LossCurve(empty); !errors.Is(err, ErrNoData) {
		t.Errorf("loss curve of empty run: %v", err)
	}
	paths, err = SaveAll(t.TempDir(), empty)
	if err != nil || len(paths) != 0 {
		t.Errorf("SaveAll of empty run: %v, %v", paths, err)
	}
	if _, err := SaveAll(dir, nil); err == nil {
		t.Error("SaveAll(nil run) succeeded")
	}
}

func TestMissingEpoch(t *testing.T) {
	run := readRun(t, "run1")
	if _, err := PerClass(run, 9); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), "epoch 9") {
		t.Errorf("PerClass(9): %v", err)
	}
	if _, err := Confusion(run, 2); err != nil {
		t.Errorf("Confusion(2): %v", err)
	}
}

// TestBadData checks that malformed records give errors, or figures that
// leave the bad values out, and never a panic.
func TestBadData(t *testing.T) {
	in := `{"kind":"config","classes":["a","b","c"],"steps_per_epoch":0}
{"kind":"step","epoch":1,"step":5,"running_loss":null,"train_acc":null}
{"kind":"step","epoch":1,"step":10,"running_loss":1.5}
{"kind":"epoch","epoch":1,"step":10,"train_loss":null,"test_acc":0.5,"train_acc":null,"per_class_acc":[0.5,null,0.25],"confusion":[[1,1,0],[0,0,0],[1,2,1]]}
{"kind":"epoch","epoch":2,"step":20,"test_acc":0.6,"per_class_acc":[0.5,0.5],"confusion":[[1,1],[0,0,0],[1,2,-1]]}
`
	run, err := metrics.Parse(strings.NewReader(in), "bad", nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() (*plot.Plot, error){
		"loss":      func() (*plot.Plot, error) { return LossCurve(run) },
		"accuracy":  func() (*plot.Plot, error) { return Accuracy(run) },
		"per class": func() (*plot.Plot, error) { return PerClass(run, 1) },
		"confusion": func() (*plot.Plot, error) { return Confusion(run, 1) },
		"compare":   func() (*plot.Plot, error) { return Compare([]*metrics.Run{run}) },
	} {
		p, err := f()
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if _, err := Render(p, Width, Height); err != nil {
			t.Errorf("%s: render: %v", name, err)
		}
	}
	if _, err := PerClass(run, 2); err == nil || errors.Is(err, ErrNoData) {
		t.Errorf("per class of a 2-value epoch for 3 classes: %v", err)
	}
	if _, err := Confusion(run, 2); err == nil || errors.Is(err, ErrNoData) {
		t.Errorf("ragged confusion matrix: %v", err)
	}
	paths, err := SaveAll(t.TempDir(), run)
	if err == nil || len(paths) != 2 {
		t.Errorf("SaveAll with a bad last epoch: %v, %v; want loss and accuracy and an error", paths, err)
	}
	if _, err := LossCurve(nil); !errors.Is(err, ErrNoData) {
		t.Errorf("LossCurve(nil): %v", err)
	}
	if _, err := PerClass(nil, -1); !errors.Is(err, ErrNoData) {
		t.Errorf("PerClass(nil): %v", err)
	}
}

func TestBenchChartErrors(t *testing.T) {
	if _, err := BenchChart(nil); !errors.Is(err, ErrNoData) {
		t.Errorf("no series: %v", err)
	}
	cases := map[string][]BenchSeries{
		"length": {{Name: "a", Kernels: []string{"x", "y"}, Values: []float64{1}}},
		"unit":   {{Name: "a", Kernels: []string{"x"}, Values: []float64{1}, Unit: "ms"}, {Name: "b", Kernels: []string{"x"}, Values: []float64{1}, Unit: "us"}},
		"nan":    {{Name: "a", Kernels: []string{"x"}, Values: []float64{math.NaN()}}},
		"neg":    {{Name: "a", Kernels: []string{"x"}, Values: []float64{-1}}},
	}
	for name, s := range cases {
		if _, err := BenchChart(s); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	s := []BenchSeries{{Name: "a", Kernels: []string{"x"}, Values: []float64{0}}}
	p, err := BenchChart(s)
	if err != nil {
		t.Fatal(err)
	}
	w, h := BenchChartSize(s)
	if _, err := Render(p, w, h); err != nil {
		t.Error(err)
	}
}

func TestSampleGridErrors(t *testing.T) {
	imgs, labels := sampleImages(3)
	names := []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}
	cases := map[string]func() error{
		"none":       func() error { _, err := SampleGrid(nil, 32, 32, nil, nil, names, 2); return err },
		"size":       func() error { _, err := SampleGrid(imgs, 16, 32, labels, nil, names, 2); return err },
		"zero size":  func() error { _, err := SampleGrid(imgs, 0, 0, labels, nil, names, 2); return err },
		"labels":     func() error { _, err := SampleGrid(imgs, 32, 32, labels[:2], nil, names, 2); return err },
		"preds":      func() error { _, err := SampleGrid(imgs, 32, 32, labels, []int{1}, names, 2); return err },
		"label >= n": func() error { _, err := SampleGrid(imgs, 32, 32, []int{0, 1, 10}, nil, names, 2); return err },
		"pred < 0":   func() error { _, err := SampleGrid(imgs, 32, 32, labels, []int{0, -1, 2}, names, 2); return err },
	}
	for name, f := range cases {
		if err := f(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	// No class names: labels are numbers; many columns are capped.
	img, err := SampleGrid(imgs, 32, 32, labels, nil, nil, 100)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 3*96 || b.Dy() < 96 {
		t.Errorf("grid of 3 is %v", b)
	}
	path := filepath.Join(t.TempDir(), "grid.png")
	if err := SavePNG(img, path); err != nil {
		t.Fatal(err)
	}
	checkPNG(t, path, img.Bounds().Dx(), img.Bounds().Dy())
}

func TestSave(t *testing.T) {
	run := readRun(t, "run1")
	p, err := Accuracy(run)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"a.png", "a.svg", "a.pdf"} {
		path := filepath.Join(dir, name)
		if err := Save(p, path, Width, Height); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v", name, st, err)
		}
	}
	checkPNG(t, filepath.Join(dir, "a.png"), 800, 500)
	if err := Save(p, filepath.Join(dir, "a.bmp"), Width, Height); err == nil {
		t.Error("saved a .bmp")
	}
	if err := Save(p, filepath.Join(dir, "a.png"), 0, Height); err == nil {
		t.Error("saved a zero-width figure")
	}
	if err := Save(nil, filepath.Join(dir, "b.png"), Width, Height); err == nil {
		t.Error("saved a nil plot")
	}
	err = Save(p, filepath.Join(dir, "no", "such", "dir.png"), Width, Height)
	if err == nil || !strings.Contains(err.Error(), "dir.png") {
		t.Errorf("save into a missing directory: %v", err)
	}
	noTempFiles(t, dir)
}

func TestIntegerTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi float64
		first  float64
		step   float64
	}{
		{0.5, 4.5, 1, 1}, {0, 30, 0, 5}, {0, 90, 0, 10}, {0, 200, 0, 20}, {1, 1000, 100, 100},
	} {
		ticks := integerTicks(c.lo, c.hi)
		if len(ticks) < 2 || len(ticks) > 13 || ticks[0].Value != c.first || ticks[1].Value-ticks[0].Value != c.step {
			t.Errorf("integerTicks(%v, %v) = %v", c.lo, c.hi, ticks)
		}
	}
	if ticks := integerTicks(math.NaN(), 1); ticks != nil {
		t.Errorf("NaN range: %v", ticks)
	}
}

func TestRenderRecoversPanics(t *testing.T) {
	p := plot.New()
	p.Add(panicker{})
	if _, err := Render(p, Width, Height); err == nil || !strings.Contains(err.Error(), "panicked") {
		t.Errorf("err = %v", err)
	}
	if _, err := Render(p, vg.Length(-1), Height); err == nil {
		t.Error("negative size rendered")
	}
}

type panicker struct{}

func (panicker) Plot(draw.Canvas, *plot.Plot) { panic("boom") }
