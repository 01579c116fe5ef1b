package viz

import (
	"errors"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"vktrain/train/metrics"
)

// seedRun makes a deterministic synthetic run named name: epochs epochs of
// 40 steps of 64 images, a step record every 5 steps, the loss and the
// accuracy shifted by an amount that depends on seed and framework.
func seedRun(name string, seed, epochs int, slower bool) *metrics.Run {
	const spe, every, batch = 40, 5, 64
	run := &metrics.Run{Name: name, Config: &metrics.Config{
		Batch: batch, Epochs: 3, Seed: int64(seed), TrainImages: spe * batch, StepsPerEpoch: spe, LogEvery: every,
	}}
	off := 0.06 * float64(seed-2)
	rate := 0.9
	if slower {
		rate = 0.6
	}
	for step := every; step <= epochs*spe; step += every {
		t := float64(step) / spe
		loss := 0.7 + 1.6*math.Exp(-rate*t) + off + 0.05*math.Sin(float64(step*(seed+1))/7)
		run.Steps = append(run.Steps, metrics.Step{
			Epoch: (step-1)/spe + 1, Step: step, Images: int64(step * batch), RunningLoss: loss,
		})
	}
	for e := 1; e <= epochs; e++ {
		acc := 0.78 - 0.3*math.Exp(-rate*float64(e)) + 0.012*float64((seed*7+e*3)%5-2)
		run.Epochs = append(run.Epochs, metrics.Epoch{Epoch: e, Step: e * spe, TestAcc: acc})
	}
	return run
}

// seedRuns is the fixture of the grouped comparison: three seeds of
// vktrain and of torch, interleaved as compare_learning.sh writes them,
// torch's third seed stopped after two epochs, and a run of its own.
func seedRuns() []*metrics.Run {
	return []*metrics.Run{
		seedRun("vktrain-seed1", 1, 3, false), seedRun("torch-seed1", 1, 3, true),
		seedRun("vktrain-seed2", 2, 3, false), seedRun("torch-seed2", 2, 3, true),
		seedRun("vktrain-seed3", 3, 3, false), seedRun("torch-seed3", 3, 2, true),
	}
}

func TestGoldenCompareGroups(t *testing.T) {
	loss, acc, err := CompareGroups(GroupBySeed(seedRuns()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := RenderRow([]*plot.Plot{loss, acc}, CompareGroupsWidth, CompareGroupsHeight)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "compare_groups", img)
}

// TestGoldenCompareGroupsCatchesChange checks that the golden comparison of
// the grouped figure sees a small change: one seed's test accuracy 0.4
// points higher at one epoch.
func TestGoldenCompareGroupsCatchesChange(t *testing.T) {
	if *regen {
		t.Skip("regenerating")
	}
	want := readGolden(t, "compare_groups")
	runs := seedRuns()
	runs[2].Epochs[1].TestAcc += 0.004
	loss, acc, err := CompareGroups(GroupBySeed(runs))
	if err != nil {
		t.Fatal(err)
	}
	img, err := RenderRow([]*plot.Plot{loss, acc}, CompareGroupsWidth, CompareGroupsHeight)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := imageDiff(img, want, goldenTol)
	if n == 0 {
		t.Fatal("changed figure matches the golden image")
	}
	t.Logf("changed figure differs in %d pixels", n)
}

// readGolden decodes testdata/<name>_golden.png.
func readGolden(t *testing.T, name string) image.Image {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name+"_golden.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestAggregateSeeds(t *testing.T) {
	nan := math.NaN()
	series := []plotter.XYs{
		{{X: 1, Y: 10}, {X: 2, Y: 20}, {X: 2.5, Y: 5}, {X: 3, Y: 30}},
		{{X: 1, Y: 12}, {X: 2, Y: 26}, {X: 3, Y: 33}, {X: 4, Y: nan}},
		{{X: 1, Y: 14}, {X: 2, Y: 23}}, // a seed with fewer epochs
	}
	// Every x, over the seeds that have it.
	got := aggregateSeeds(series, false)
	want := []seedStat{
		{X: 1, Mean: 12, Min: 10, Max: 14, N: 3},
		{X: 2, Mean: 23, Min: 20, Max: 26, N: 3},
		{X: 2.5, Mean: 5, Min: 5, Max: 5, N: 1},
		{X: 3, Mean: 31.5, Min: 30, Max: 33, N: 2},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("any seed:\n got %+v\nwant %+v", got, want)
	}
	// Only the xs that all seeds share.
	got = aggregateSeeds(series, true)
	if !reflect.DeepEqual(got, want[:2]) {
		t.Errorf("shared:\n got %+v\nwant %+v", got, want[:2])
	}
	// Order of input points does not matter; the last of duplicates counts.
	got = aggregateSeeds([]plotter.XYs{{{X: 2, Y: 1}, {X: 1, Y: 7}, {X: 1, Y: 3}}}, true)
	if want := []seedStat{{X: 1, Mean: 3, Min: 3, Max: 3, N: 1}, {X: 2, Mean: 1, Min: 1, Max: 1, N: 1}}; !reflect.DeepEqual(got, want) {
		t.Errorf("one seed: got %+v, want %+v", got, want)
	}
	if got := aggregateSeeds(nil, true); got != nil {
		t.Errorf("no series: %+v", got)
	}
	if got := aggregateSeeds([]plotter.XYs{{{X: 1, Y: 1}}, nil}, true); got != nil {
		t.Errorf("a seed without points shares nothing: %+v", got)
	}
}

// TestCompareData checks what the grouped figure draws of the fixture: the
// loss in epochs at the points all seeds logged, the accuracy over the
// seeds that have each epoch, and the legend.
func TestCompareData(t *testing.T) {
	runs := seedRuns()
	curves, inEpochs := compareData(GroupBySeed(runs))
	if !inEpochs || len(curves) != 2 {
		t.Fatalf("inEpochs %v, %d groups", inEpochs, len(curves))
	}
	vk, torch := curves[0], curves[1]
	if vk.name != "vktrain" || torch.name != "torch" || vk.color != 0 || torch.color != 1 {
		t.Fatalf("groups %q (color %d), %q (color %d)", vk.name, vk.color, torch.name, torch.color)
	}
	// vktrain: 3 epochs of 8 records; torch's third seed stopped after 2.
	if len(vk.loss) != 24 || len(torch.loss) != 16 || vk.lossSeeds != 3 || torch.lossSeeds != 3 {
		t.Fatalf("loss points %d, %d; seeds %d, %d", len(vk.loss), len(torch.loss), vk.lossSeeds, torch.lossSeeds)
	}
	// The end of epoch 1 (step 40, 2560 images) is at x = 1.
	st := vk.loss[7]
	l := []float64{runs[0].Steps[7].RunningLoss, runs[2].Steps[7].RunningLoss, runs[4].Steps[7].RunningLoss}
	if st.X != 1 || st.N != 3 || math.Abs(st.Mean-(l[0]+l[1]+l[2])/3) > 1e-12 ||
		st.Min != min(l[0], l[1], l[2]) || st.Max != max(l[0], l[1], l[2]) {
		t.Errorf("vktrain loss at epoch 1: %+v, want the mean, min and max of %v", st, l)
	}
	if last := torch.loss[len(torch.loss)-1]; last.X != 2 {
		t.Errorf("torch's loss ends at %v, want epoch 2", last.X)
	}
	if len(torch.acc) != 3 || torch.acc[1].N != 3 || torch.acc[2].N != 2 || torch.accSeeds != 3 {
		t.Fatalf("torch accuracy %+v", torch.acc)
	}
	a := []float64{100 * runs[1].Epochs[2].TestAcc, 100 * runs[3].Epochs[2].TestAcc}
	if st := torch.acc[2]; math.Abs(st.Mean-(a[0]+a[1])/2) > 1e-12 || st.Min != min(a[0], a[1]) || st.Max != max(a[0], a[1]) {
		t.Errorf("torch accuracy at epoch 3: %+v, want over %v", st, a)
	}
	for c, want := range map[*groupCurves]string{
		&vk:    "vktrain: 75.2% [73.6, 77.2] at epoch 3, 3 seeds",
		&torch: "torch: 68.6% [66.6, 70.2] at epoch 2, 3 seeds",
	} {
		if got := accuracyLegend(*c); got != want {
			t.Errorf("legend %q, want %q", got, want)
		}
	}
	one := groupCurves{name: "x", acc: []seedStat{{X: 2, Mean: 50, Min: 50, Max: 50, N: 1}}, accSeeds: 1}
	if got, want := accuracyLegend(one), "x: 50.0% at epoch 2, 1 seed"; got != want {
		t.Errorf("legend %q, want %q", got, want)
	}
	one.accSeeds = 2
	if got, want := accuracyLegend(one), "x, 2 seeds (no epoch common to all)"; got != want {
		t.Errorf("legend %q, want %q", got, want)
	}

	// Without images per epoch (no config, no finished epoch), the loss is
	// drawn against training images.
	bare := &metrics.Run{Name: "bare-seed1", Steps: []metrics.Step{{Step: 5, Images: 320, RunningLoss: 2}}}
	curves, inEpochs = compareData(GroupBySeed([]*metrics.Run{runs[0], bare}))
	if inEpochs || len(curves) != 2 || curves[0].loss[0].X != 320 || curves[1].loss[0].X != 320 {
		t.Errorf("without images per epoch: inEpochs %v, %+v", inEpochs, curves)
	}
}

func TestImagesPerEpoch(t *testing.T) {
	run := seedRun("a", 1, 2, false)
	run.Config.StepsPerEpoch, run.Config.TrainImages = 0, 0
	if got := imagesPerEpoch(run); got != 2560 {
		t.Errorf("from the epoch's step record: %v", got)
	}
	run.Epochs = nil
	run.Config.StepsPerEpoch = 39
	if got := imagesPerEpoch(run); got != 39*64 {
		t.Errorf("from steps per epoch and batch: %v", got)
	}
	run.Config.StepsPerEpoch, run.Config.TrainImages = 0, 2500
	if got := imagesPerEpoch(run); got != 2500 {
		t.Errorf("from train images: %v", got)
	}
	run.Config = nil
	if got := imagesPerEpoch(run); got != 0 {
		t.Errorf("unknown: %v", got)
	}
}

func TestGroupBySeed(t *testing.T) {
	var runs []*metrics.Run
	for _, name := range []string{"vktrain-seed1", "torch-seed12", "other", "vktrain-seed2", "other", "-seed3", "a-seedx", "b-seed", "torch-seed3"} {
		runs = append(runs, &metrics.Run{Name: name})
	}
	runs = append(runs, nil)
	var got []string
	for _, g := range GroupBySeed(runs) {
		var names []string
		for _, r := range g.Runs {
			names = append(names, r.Name)
		}
		got = append(got, g.Name+": "+strings.Join(names, " "))
	}
	want := []string{
		"vktrain: vktrain-seed1 vktrain-seed2", "torch: torch-seed12 torch-seed3",
		"other: other", "other: other", "-seed3: -seed3", "a-seedx: a-seedx", "b-seed: b-seed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("groups\n got %q\nwant %q", got, want)
	}
	if g := GroupBySeed(nil); len(g) != 0 {
		t.Errorf("no runs: %v", g)
	}
}

func TestCompareGroupsNoData(t *testing.T) {
	empty, err := metrics.Parse(strings.NewReader(""), "empty-seed1", nil)
	if err != nil {
		t.Fatal(err)
	}
	nanStep := &metrics.Run{Name: "nan-seed1", Steps: []metrics.Step{{Step: 5, Images: 320, RunningLoss: math.NaN()}},
		Epochs: []metrics.Epoch{{Epoch: 1, Step: 5, TestAcc: math.NaN()}}}
	for name, groups := range map[string][]RunGroup{
		"no groups":  nil,
		"no runs":    {{Name: "a"}},
		"nil runs":   {{Name: "a", Runs: []*metrics.Run{nil, nil}}},
		"empty runs": GroupBySeed([]*metrics.Run{empty, empty}),
		"NaNs only":  GroupBySeed([]*metrics.Run{nanStep, empty}),
	} {
		if _, _, err := CompareGroups(groups); !errors.Is(err, ErrNoData) {
			t.Errorf("%s: err = %v, want ErrNoData", name, err)
		}
		path := filepath.Join(t.TempDir(), "compare.png")
		if err := SaveCompareGroups(path, groups); !errors.Is(err, ErrNoData) || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: save: err = %v, want ErrNoData naming the path", name, err)
		}
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s written: %v", name, path, err)
		}
	}

	// Steps but no finished epoch, and a group without data: drawn, the
	// accuracy panel empty.
	run := seedRun("vktrain-seed1", 1, 1, false)
	run.Epochs = nil
	loss, acc, err := CompareGroups(GroupBySeed([]*metrics.Run{run, empty}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RenderRow([]*plot.Plot{loss, acc}, CompareGroupsWidth, CompareGroupsHeight); err != nil {
		t.Error(err)
	}
	if curves, _ := compareData(GroupBySeed([]*metrics.Run{run, empty})); len(curves) != 1 || len(curves[0].loss) != 8 || curves[0].acc != nil {
		t.Errorf("curves %+v, want one group's loss and no accuracy", curves)
	}
	if acc.X.Min != 0.5 || acc.X.Max != 1.5 || acc.Y.Max != 104 {
		t.Errorf("empty accuracy panel spans %v..%v by %v..%v", acc.X.Min, acc.X.Max, acc.Y.Min, acc.Y.Max)
	}
}

func TestSaveCompareGroups(t *testing.T) {
	dir := t.TempDir()
	groups := GroupBySeed(seedRuns())
	for _, name := range []string{"compare.png", "compare.svg"} {
		path := filepath.Join(dir, name)
		if err := SaveCompareGroups(path, groups); err != nil {
			t.Fatal(err)
		}
		if st, err := os.Stat(path); err != nil || st.Size() == 0 || st.Mode().Perm() != 0o644 {
			t.Errorf("%s: %v %v", name, st, err)
		}
	}
	checkPNG(t, filepath.Join(dir, "compare.png"), 1200, 500)
	// Saving again replaces the file.
	if err := SaveCompareGroups(filepath.Join(dir, "compare.png"), groups); err != nil {
		t.Fatal(err)
	}
	noTempFiles(t, dir)
	if err := SaveCompareGroups(filepath.Join(dir, "compare.bmp"), groups); err == nil {
		t.Error("saved a .bmp")
	}

	p := plot.New()
	if _, err := RenderRow(nil, Width, Height); err == nil {
		t.Error("rendered an empty row")
	}
	if _, err := RenderRow([]*plot.Plot{p, nil}, Width, Height); err == nil {
		t.Error("rendered a nil plot")
	}
	if err := SaveRow([]*plot.Plot{nil}, filepath.Join(dir, "x.png"), Width, Height); err == nil {
		t.Error("saved a nil plot")
	}
	// A row of one is the figure Render draws.
	run := readRun(t, "run1")
	acc, err := Accuracy(run)
	if err != nil {
		t.Fatal(err)
	}
	one, err := RenderRow([]*plot.Plot{acc}, Width, Height)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := imageDiff(one, readGolden(t, "accuracy"), 0); n != 0 {
		t.Errorf("a row of one differs from Render in %d pixels", n)
	}
}
