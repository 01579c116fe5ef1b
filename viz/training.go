package viz

import (
	"errors"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"

	"vktrain/train/metrics"
)

// runTitle names a run in a title: its name, if it has one.
func runTitle(what string, run *metrics.Run) string {
	if run.Name == "" || run.Name == "." || run.Name == string(filepath.Separator) {
		return what
	}
	return what + " — " + run.Name
}

// LossCurve plots the training loss: the running loss of every step record
// as a thin line, the mean training loss of each epoch as points at the
// middle of the epoch, and the test loss as points at the end of each
// epoch. The x axis counts epochs (step / steps per epoch); when the steps
// per epoch are unknown it counts mini-batches instead.
func LossCurve(run *metrics.Run) (*plot.Plot, error) {
	if run == nil {
		return nil, fmt.Errorf("loss curve: %w (nil run)", ErrNoData)
	}
	spe := float64(run.StepsPerEpoch())
	xLabel := "epoch"
	if spe == 0 {
		xLabel = "mini-batch (step)"
	}
	p := newPlot(runTitle("Training loss", run), xLabel, "cross-entropy loss")

	var steps plotter.XYs
	for _, s := range run.Steps {
		if !finite(s.RunningLoss) {
			continue
		}
		x := float64(s.Step)
		if spe > 0 {
			x /= spe
		}
		steps = append(steps, plotter.XY{X: x, Y: s.RunningLoss})
	}
	var trainMean, testLoss plotter.XYs
	for _, e := range run.Epochs {
		var xMid, xEnd float64
		switch {
		case spe > 0:
			xMid, xEnd = float64(e.Epoch)-0.5, float64(e.Epoch)
		case e.Step > 0:
			xEnd = float64(e.Step)
			xMid = xEnd
		default:
			continue
		}
		if finite(e.TrainLoss) && e.TrainLoss > 0 {
			trainMean = append(trainMean, plotter.XY{X: xMid, Y: e.TrainLoss})
		}
		if finite(e.TestLoss) && e.TestLoss > 0 {
			testLoss = append(testLoss, plotter.XY{X: xEnd, Y: e.TestLoss})
		}
	}
	if len(steps)+len(trainMean)+len(testLoss) == 0 {
		return nil, fmt.Errorf("loss curve of %q: %w (no steps or epochs logged yet)", run.Name, ErrNoData)
	}

	if len(steps) > 0 {
		l, s, err := line(steps, seriesColor(0), vg.Points(1.2), nil, len(steps) == 1)
		if err != nil {
			return nil, fmt.Errorf("loss curve: %w", err)
		}
		p.Add(l)
		if s != nil { // a single step: a line through one point shows nothing
			s.Radius = vg.Points(2.5)
			p.Add(s)
		}
		name := "train, running mean"
		if run.Config != nil && run.Config.LogEvery > 0 {
			name += " of " + strconv.Itoa(run.Config.LogEvery) + " batches"
		}
		p.Legend.Add(name, l)
	}
	if len(trainMean) > 0 {
		l, s, err := line(trainMean, seriesColor(1), vg.Points(2), nil, true)
		if err != nil {
			return nil, fmt.Errorf("loss curve: %w", err)
		}
		p.Add(l, s)
		p.Legend.Add("train, epoch mean", l, s)
	}
	if len(testLoss) > 0 {
		l, s, err := line(testLoss, seriesColor(3), vg.Points(2), []vg.Length{vg.Points(6), vg.Points(3)}, true)
		if err != nil {
			return nil, fmt.Errorf("loss curve: %w", err)
		}
		s.Shape = squareGlyph()
		p.Add(l, s)
		p.Legend.Add("test, end of epoch", l, s)
	}
	p.Y.Min = 0
	p.Y.Max *= 1.05
	if spe > 0 {
		p.X.Min = 0
		p.X.Max = math.Max(p.X.Max, 1)
		p.X.Tick.Marker = plot.TickerFunc(integerTicks)
	}
	return p, nil
}

// Accuracy plots the training accuracy (the running accuracy over each
// epoch) and the test accuracy at the end of each epoch, in percent. The
// test accuracy of each epoch is written next to its point (of the last
// epoch only, for more than 10 epochs).
func Accuracy(run *metrics.Run) (*plot.Plot, error) {
	if run == nil || len(run.Epochs) == 0 {
		return nil, fmt.Errorf("accuracy: %w (no epoch finished yet)", ErrNoData)
	}
	var train, test plotter.XYs
	lo := 100.0
	for _, e := range run.Epochs {
		x := float64(e.Epoch)
		if finite(e.TrainAcc) {
			train = append(train, plotter.XY{X: x, Y: 100 * e.TrainAcc})
			lo = math.Min(lo, 100*e.TrainAcc)
		}
		if finite(e.TestAcc) {
			test = append(test, plotter.XY{X: x, Y: 100 * e.TestAcc})
			lo = math.Min(lo, 100*e.TestAcc)
		}
	}
	if len(train)+len(test) == 0 {
		return nil, fmt.Errorf("accuracy of %q: %w (no finite accuracies)", run.Name, ErrNoData)
	}
	p := newPlot(runTitle("Accuracy", run), "epoch", "accuracy (%)")
	p.Legend.Top = false
	if len(train) > 0 {
		l, s, err := line(train, seriesColor(0), vg.Points(2), nil, true)
		if err != nil {
			return nil, fmt.Errorf("accuracy: %w", err)
		}
		p.Add(l, s)
		p.Legend.Add("train (running, epoch mean)", l, s)
	}
	if len(test) > 0 {
		l, s, err := line(test, seriesColor(3), vg.Points(2), nil, true)
		if err != nil {
			return nil, fmt.Errorf("accuracy: %w", err)
		}
		s.Shape = squareGlyph()
		p.Add(l, s)
		p.Legend.Add("test", l, s)
		lab := test
		if len(lab) > 10 {
			lab = lab[len(lab)-1:]
		}
		strs := make([]string, len(lab))
		for i, xy := range lab {
			strs[i] = strconv.FormatFloat(xy.Y, 'f', 1, 64)
		}
		labels, err := newLabels(lab, strs, valueStyle(color.Black, text.XCenter, text.YBottom))
		if err != nil {
			return nil, fmt.Errorf("accuracy: %w", err)
		}
		labels.Offset = vg.Point{Y: vg.Points(6)}
		p.Add(labels)
	}
	p.X.Min = math.Min(p.X.Min, float64(run.Epochs[0].Epoch)) - 0.5
	p.X.Max += 0.5
	p.X.Tick.Marker = plot.TickerFunc(integerTicks)
	p.Y.Min = 0
	if lo >= 40 {
		p.Y.Min = math.Floor(lo/10)*10 - 10
	}
	p.Y.Max = 104
	p.Y.Tick.Marker = plot.TickerFunc(percentTicks)
	return p, nil
}

// epochFor returns the record of epoch n (-1 = the last) with what says
// which figure needs it.
func epochFor(run *metrics.Run, n int, what string) (*metrics.Epoch, error) {
	if run == nil {
		return nil, fmt.Errorf("%s: %w (nil run)", what, ErrNoData)
	}
	e, ok := run.Epoch(n)
	if !ok {
		if n < 0 {
			return nil, fmt.Errorf("%s of %q: %w (no epoch finished yet)", what, run.Name, ErrNoData)
		}
		return nil, fmt.Errorf("%s of %q: %w (no record of epoch %d)", what, run.Name, ErrNoData, n)
	}
	return e, nil
}

// PerClass plots the test accuracy of each class after epoch (-1 = the last
// epoch) as bars labeled with the class names and their values, with the
// mean over the classes as a dashed line whose value is in the legend.
func PerClass(run *metrics.Run, epoch int) (*plot.Plot, error) {
	e, err := epochFor(run, epoch, "per-class accuracy")
	if err != nil {
		return nil, err
	}
	if len(e.PerClassAcc) == 0 {
		return nil, fmt.Errorf("per-class accuracy of %q: %w (epoch %d has none)", run.Name, ErrNoData, e.Epoch)
	}
	names := run.ClassNames()
	if err := e.Validate(len(names)); err != nil {
		return nil, fmt.Errorf("per-class accuracy of %q: %w", run.Name, err)
	}
	vals := make(plotter.Values, len(names))
	var tops plotter.XYs
	var strs []string
	sum, n := 0.0, 0
	for i, a := range e.PerClassAcc {
		if !finite(a) {
			tops = append(tops, plotter.XY{X: float64(i), Y: 0})
			strs = append(strs, "n/a")
			continue
		}
		v := math.Max(0, math.Min(100, 100*a))
		vals[i] = v
		sum += v
		n++
		tops = append(tops, plotter.XY{X: float64(i), Y: v})
		strs = append(strs, strconv.FormatFloat(v, 'f', 1, 64))
	}
	p := newPlot(runTitle(fmt.Sprintf("Test accuracy per class, epoch %d", e.Epoch), run), "class", "accuracy (%)")
	bars, err := plotter.NewBarChart(vals, vg.Points(36))
	if err != nil {
		return nil, fmt.Errorf("per-class accuracy: %w", err)
	}
	bars.Color = seriesColor(0)
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.Legend.Add("test accuracy", bars)
	if n > 0 {
		mean := sum / float64(n)
		ml, _, err := line(plotter.XYs{{X: -0.5, Y: mean}, {X: float64(len(vals)) - 0.5, Y: mean}},
			seriesColor(3), vg.Points(2), []vg.Length{vg.Points(6), vg.Points(3)}, false)
		if err != nil {
			return nil, fmt.Errorf("per-class accuracy: %w", err)
		}
		p.Add(ml)
		p.Legend.Add("mean of classes: "+strconv.FormatFloat(mean, 'f', 1, 64)+"%", ml)
	}
	labels, err := newLabels(tops, strs, valueStyle(color.Black, text.XCenter, text.YBottom))
	if err != nil {
		return nil, fmt.Errorf("per-class accuracy: %w", err)
	}
	labels.Offset = vg.Point{Y: vg.Points(2)}
	p.Add(boxedLabels{labels})
	p.NominalX(names...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = text.XRight
	p.X.Tick.Label.YAlign = text.YCenter
	p.X.Min, p.X.Max = -0.5, float64(len(vals))-0.5
	p.Y.Min, p.Y.Max = 0, 122
	p.Y.Tick.Marker = plot.TickerFunc(percentTicks)
	return p, nil
}

// confusionGrid is the plotter.GridXYZ of a confusion matrix: column c is
// the predicted class c, row r (from the bottom) the true class n-1-r, and
// the value is the share of the true class's images in the cell.
type confusionGrid struct {
	m    [][]int64
	rows []float64 // row sums
}

// Dims, Z, X, Y, Min and Max implement plotter.GridXYZ and fix the range.
func (g confusionGrid) Dims() (c, r int) { return len(g.m), len(g.m) }

func (g confusionGrid) Z(c, r int) float64 {
	t := len(g.m) - 1 - r
	if g.rows[t] == 0 {
		return 0
	}
	return float64(g.m[t][c]) / g.rows[t]
}

func (g confusionGrid) X(c int) float64 { return float64(c) }
func (g confusionGrid) Y(r int) float64 { return float64(r) }
func (g confusionGrid) Min() float64    { return 0 }
func (g confusionGrid) Max() float64    { return 1 }

// blues is a sequential palette of the given number of colors from white
// to dark blue (ColorBrewer's Blues, interpolated).
type blues int

// Colors implements palette.Palette.
func (b blues) Colors() []color.Color {
	stops := [...][3]float64{
		{247, 251, 255}, {222, 235, 247}, {198, 219, 239}, {158, 202, 225}, {107, 174, 214},
		{66, 146, 198}, {33, 113, 181}, {8, 81, 156}, {8, 48, 107},
	}
	n := max(int(b), 2)
	cs := make([]color.Color, n)
	for i := range cs {
		t := float64(i) / float64(n-1) * float64(len(stops)-1)
		k := min(int(t), len(stops)-2)
		f := t - float64(k)
		var c [3]uint8
		for ch := range c {
			c[ch] = uint8(math.Round(stops[k][ch] + (stops[k+1][ch]-stops[k][ch])*f))
		}
		cs[i] = color.RGBA{c[0], c[1], c[2], 255}
	}
	return cs
}

// Confusion draws the confusion matrix of epoch (-1 = the last) as a heat
// map: true classes down the rows, predicted classes across the columns,
// each cell showing its count of test images and shaded by that count's
// share of the true class.
func Confusion(run *metrics.Run, epoch int) (*plot.Plot, error) {
	e, err := epochFor(run, epoch, "confusion matrix")
	if err != nil {
		return nil, err
	}
	if len(e.Confusion) == 0 {
		return nil, fmt.Errorf("confusion matrix of %q: %w (epoch %d has none)", run.Name, ErrNoData, e.Epoch)
	}
	names := run.ClassNames()
	if err := e.Validate(len(names)); err != nil {
		return nil, fmt.Errorf("confusion matrix of %q: %w", run.Name, err)
	}
	n := len(names)
	g := confusionGrid{m: e.Confusion, rows: make([]float64, n)}
	for t, row := range e.Confusion {
		for _, v := range row {
			g.rows[t] += float64(v)
		}
	}
	p := newPlot(runTitle(fmt.Sprintf("Confusion matrix, epoch %d", e.Epoch), run),
		"predicted class (shade: share of the true class)", "true class")
	p.Add(plotter.NewHeatMap(g, blues(256)))

	dark := valueStyle(color.White, text.XCenter, text.YCenter)
	light := valueStyle(color.Black, text.XCenter, text.YCenter)
	var xys plotter.XYs
	var strs []string
	var styles []text.Style
	for r := range n {
		for c := range n {
			xys = append(xys, plotter.XY{X: float64(c), Y: float64(r)})
			strs = append(strs, strconv.FormatInt(e.Confusion[n-1-r][c], 10))
			if g.Z(c, r) > 0.5 {
				styles = append(styles, dark)
			} else {
				styles = append(styles, light)
			}
		}
	}
	labels, err := newLabels(xys, strs, light)
	if err != nil {
		return nil, fmt.Errorf("confusion matrix: %w", err)
	}
	labels.TextStyle = styles
	p.Add(labels)

	rev := make([]string, n)
	for i, s := range names {
		rev[n-1-i] = s
	}
	p.NominalX(names...)
	p.NominalY(rev...)
	p.X.Tick.Label.Rotation = math.Pi / 6
	p.X.Tick.Label.XAlign = text.XRight
	p.X.Tick.Label.YAlign = text.YCenter
	p.X.Padding, p.Y.Padding = vg.Points(6), 0
	p.X.Min, p.X.Max = -0.5, float64(n)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(n)-0.5
	return p, nil
}

// Compare plots the test accuracy per epoch of several runs on one set of
// axes, one line per run, named in the legend by the run names. Runs
// without a finished epoch are left out; if no run has one the error wraps
// ErrNoData.
func Compare(runs []*metrics.Run) (*plot.Plot, error) {
	p := newPlot("Test accuracy by run", "epoch", "test accuracy (%)")
	p.Legend.Top = false
	lo, drawn, first := 100.0, 0, math.Inf(1)
	for i, run := range runs {
		if run == nil {
			continue
		}
		var xys plotter.XYs
		for _, e := range run.Epochs {
			if finite(e.TestAcc) {
				xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: 100 * e.TestAcc})
				lo = math.Min(lo, 100*e.TestAcc)
				first = math.Min(first, float64(e.Epoch))
			}
		}
		if len(xys) == 0 {
			continue
		}
		l, s, err := line(xys, seriesColor(i), vg.Points(2), nil, true)
		if err != nil {
			return nil, fmt.Errorf("compare: %w", err)
		}
		if i%2 == 1 {
			s.Shape = squareGlyph()
		}
		p.Add(l, s)
		name := run.Name
		if name == "" {
			name = "run " + strconv.Itoa(i+1)
		}
		last := xys[len(xys)-1]
		p.Legend.Add(fmt.Sprintf("%s (epoch %g: %.1f%%)", name, last.X, last.Y), l, s)
		drawn++
	}
	if drawn == 0 {
		return nil, fmt.Errorf("compare: %w (no run has a finished epoch)", ErrNoData)
	}
	p.X.Min = math.Min(p.X.Min, first) - 0.5
	p.X.Max += 0.5
	p.X.Tick.Marker = plot.TickerFunc(integerTicks)
	p.Y.Min = 0
	if lo >= 40 {
		p.Y.Min = math.Floor(lo/10)*10 - 10
	}
	p.Y.Max = 102
	p.Y.Tick.Marker = plot.TickerFunc(percentTicks)
	return p, nil
}

// SaveAll writes the figures of run that have data into runDir as
// loss.png, accuracy.png, per_class.png (last epoch) and confusion.png
// (last epoch), each atomically, and returns the paths written. Figures
// without data are skipped; other failures are joined into the error, after
// the remaining figures have been tried.
func SaveAll(runDir string, run *metrics.Run) ([]string, error) {
	if run == nil {
		return nil, errors.New("viz: save figures: nil run")
	}
	figs := []struct {
		name string
		h    vg.Length
		make func() (*plot.Plot, error)
	}{
		{"loss.png", Height, func() (*plot.Plot, error) { return LossCurve(run) }},
		{"accuracy.png", Height, func() (*plot.Plot, error) { return Accuracy(run) }},
		{"per_class.png", Height, func() (*plot.Plot, error) { return PerClass(run, -1) }},
		{"confusion.png", ConfusionHeight, func() (*plot.Plot, error) { return Confusion(run, -1) }},
	}
	var paths []string
	var errs []error
	for _, f := range figs {
		p, err := f.make()
		if errors.Is(err, ErrNoData) {
			continue
		}
		path := filepath.Join(runDir, f.name)
		if err != nil {
			errs = append(errs, fmt.Errorf("viz: %s: %w", path, err))
			continue
		}
		if err := Save(p, path, Width, f.h); err != nil {
			errs = append(errs, err)
			continue
		}
		paths = append(paths, path)
	}
	return paths, errors.Join(errs...)
}
