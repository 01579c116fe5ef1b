package viz

import (
	"bytes"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"

	"vktrain/train/metrics"
)

// regen rewrites the golden images: go test ./viz -regen
var regen = flag.Bool("regen", false, "rewrite testdata/*_golden.png from the current figures")

// goldenTol is the largest per-channel difference two pixels may have and
// still count as equal (anti-aliasing may differ in the last bit between
// platforms); any pixel beyond it fails the comparison.
const goldenTol = 2

// imageDiff compares two images pixel by pixel. It returns the number of
// pixels whose channels differ by more than tol, and an image marking them
// in red over a faded copy of want; a size mismatch counts every pixel.
func imageDiff(got, want image.Image, tol uint8) (n int, diff *image.RGBA) {
	gb, wb := got.Bounds(), want.Bounds()
	if gb.Size() != wb.Size() {
		return max(gb.Dx()*gb.Dy(), wb.Dx()*wb.Dy()), nil
	}
	diff = image.NewRGBA(image.Rect(0, 0, wb.Dx(), wb.Dy()))
	for y := range wb.Dy() {
		for x := range wb.Dx() {
			g := color.RGBAModel.Convert(got.At(gb.Min.X+x, gb.Min.Y+y)).(color.RGBA)
			w := color.RGBAModel.Convert(want.At(wb.Min.X+x, wb.Min.Y+y)).(color.RGBA)
			if absDiff(g.R, w.R) > tol || absDiff(g.G, w.G) > tol || absDiff(g.B, w.B) > tol || absDiff(g.A, w.A) > tol {
				n++
				diff.SetRGBA(x, y, color.RGBA{255, 0, 0, 255})
				continue
			}
			gray := uint8((uint16(w.R) + uint16(w.G) + uint16(w.B)) / 3)
			gray = 255 - (255-gray)/4
			diff.SetRGBA(x, y, color.RGBA{gray, gray, gray, 255})
		}
	}
	return n, diff
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

// checkGolden compares img with testdata/<name>_golden.png, or rewrites
// that file under -regen. On a mismatch it keeps the figure and a diff
// image in a temporary directory and names them in the failure.
func checkGolden(t *testing.T, name string, img image.Image) {
	t.Helper()
	path := filepath.Join("testdata", name+"_golden.png")
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if *regen {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v (run go test -regen to create it)", err)
	}
	defer f.Close()
	want, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	n, diff := imageDiff(img, want, goldenTol)
	if n == 0 {
		return
	}
	dir, err := os.MkdirTemp("", "viz-golden-")
	if err != nil {
		t.Fatalf("%s: %d pixels differ", path, n)
	}
	_ = os.WriteFile(filepath.Join(dir, name+"_got.png"), buf.Bytes(), 0o644)
	if diff != nil {
		var db bytes.Buffer
		if png.Encode(&db, diff) == nil {
			_ = os.WriteFile(filepath.Join(dir, name+"_diff.png"), db.Bytes(), 0o644)
		}
	}
	t.Errorf("%s: %d pixels differ (got %v, want %v); figure and diff in %s; go test -regen rewrites the golden",
		path, n, img.Bounds().Size(), want.Bounds().Size(), dir)
}

func readRun(t *testing.T, dir string) *metrics.Run {
	t.Helper()
	run, err := metrics.Read(filepath.Join("testdata", dir), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(run.Warnings) != 0 {
		t.Fatalf("fixture %s: %v", dir, run.Warnings)
	}
	return run
}

func render(t *testing.T, p *plot.Plot, err error, w, h vg.Length) image.Image {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	img, err := Render(p, w, h)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// goldenFigures lists the figures under golden test, drawn from run1 and
// run2.
func goldenFigures(run1, run2 *metrics.Run) []struct {
	name string
	plot func() (*plot.Plot, error)
	w, h vg.Length
} {
	bench := benchFixture()
	bw, bh := BenchChartSize(bench)
	return []struct {
		name string
		plot func() (*plot.Plot, error)
		w, h vg.Length
	}{
		{"loss", func() (*plot.Plot, error) { return LossCurve(run1) }, Width, Height},
		{"accuracy", func() (*plot.Plot, error) { return Accuracy(run1) }, Width, Height},
		{"per_class", func() (*plot.Plot, error) { return PerClass(run1, -1) }, Width, Height},
		{"per_class_epoch1", func() (*plot.Plot, error) { return PerClass(run2, 1) }, Width, Height},
		{"confusion", func() (*plot.Plot, error) { return Confusion(run1, -1) }, Width, ConfusionHeight},
		{"compare", func() (*plot.Plot, error) { return Compare([]*metrics.Run{run1, run2}) }, Width, Height},
		{"bench", func() (*plot.Plot, error) { return BenchChart(bench) }, bw, bh},
	}
}

func benchFixture() []BenchSeries {
	kernels := []string{"gemm 4096x9216", "conv 3x3 (im2col)", "relu", "maxpool 3x3/2", "softmax xent"}
	return []BenchSeries{
		{Name: "NVIDIA H100", Kernels: kernels, Values: []float64{0.412, 0.95, 0.021, 0.034, 0.0087}, Unit: "ms per dispatch"},
		{Name: "llvmpipe", Kernels: kernels, Values: []float64{38.5, 61.2, 1.9, 2.7, 0.31}, Unit: "ms per dispatch"},
		// A series without the conv kernel gets no bar there.
		{Name: "Intel UHD 630", Kernels: []string{"gemm 4096x9216", "relu", "softmax xent"}, Values: []float64{9.8, 0.44, 0.05}, Unit: "ms per dispatch"},
	}
}

func TestGoldenFigures(t *testing.T) {
	run1, run2 := readRun(t, "run1"), readRun(t, "run2")
	for _, f := range goldenFigures(run1, run2) {
		t.Run(f.name, func(t *testing.T) {
			p, err := f.plot()
			checkGolden(t, f.name, render(t, p, err, f.w, f.h))
		})
	}
}

// TestGoldenCatchesChange checks that the comparison is strict enough: a
// figure drawn from slightly changed data (one test accuracy 0.4 points
// higher) must not match the golden image.
func TestGoldenCatchesChange(t *testing.T) {
	if *regen {
		t.Skip("regenerating")
	}
	run1 := readRun(t, "run1")
	want := readGolden(t, "accuracy")
	p, err := Accuracy(run1)
	if n, _ := imageDiff(render(t, p, err, Width, Height), want, goldenTol); n != 0 {
		t.Fatalf("unchanged figure differs from its golden in %d pixels", n)
	}
	run1.Epochs[2].TestAcc += 0.004
	p, err = Accuracy(run1)
	n, _ := imageDiff(render(t, p, err, Width, Height), want, goldenTol)
	if n == 0 {
		t.Fatal("changed figure matches the golden image")
	}
	t.Logf("changed figure differs in %d pixels", n)

	// A different size never matches.
	if n, _ := imageDiff(image.NewRGBA(image.Rect(0, 0, 10, 10)), want, 255); n == 0 {
		t.Error("size mismatch not caught")
	}
}

func TestGoldenSampleGrid(t *testing.T) {
	names := []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}
	images, labels := sampleImages(12)
	preds := make([]int, len(labels))
	for i, l := range labels {
		preds[i] = l
		if i%4 == 1 {
			preds[i] = (l + 3) % 10
		}
	}
	img, err := SampleGrid(images, 32, 32, labels, preds, names, 6)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "samples", img)

	img, err = SampleGrid(images[:5], 32, 32, labels[:5], nil, names, 0)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "samples_nopred", img)
}

// sampleImages makes n deterministic 32x32 planar RGB test patterns.
func sampleImages(n int) ([][]byte, []int) {
	images := make([][]byte, n)
	labels := make([]int, n)
	for i := range images {
		img := make([]byte, 3*32*32)
		for y := range 32 {
			for x := range 32 {
				k := y*32 + x
				img[k] = byte((x*8 + i*40) % 256)
				img[1024+k] = byte((y*8 + i*25) % 256)
				if (x/8+y/8+i)%2 == 0 {
					img[2048+k] = 200
				} else {
					img[2048+k] = byte(i * 20)
				}
			}
		}
		images[i] = img
		labels[i] = (i * 7) % 10
	}
	return images, labels
}

func ExampleSaveAll() {
	run, err := metrics.Read("testdata/run1", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	dir, err := os.MkdirTemp("", "viz-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	paths, err := SaveAll(dir, run)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range paths {
		fmt.Println(filepath.Base(p))
	}
	// Output:
	// loss.png
	// accuracy.png
	// per_class.png
	// confusion.png
}
