package viz

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"vktrain/train/metrics"
)

// Size of the figure that SaveCompareGroups writes: two panels of 6 by 5
// inches.
const (
	// CompareGroupsWidth is the width of the seed-grouped comparison.
	CompareGroupsWidth = 12 * vg.Inch
	// CompareGroupsHeight is the height of the seed-grouped comparison.
	CompareGroupsHeight = Height
)

// panelGap is the space between the panels of a row of plots.
const panelGap = 28 // points

// bandAlpha is the opacity of the min-max band of a group.
const bandAlpha = 60

// RunGroup is a set of runs of the same setup that differ only in their
// seed, such as runs/compare/vktrain-seed1, -seed2 and -seed3.
type RunGroup struct {
	// Name names the group in the legend, e.g. "vktrain".
	Name string
	// Runs holds the group's runs, one per seed.
	Runs []*metrics.Run
}

// seedBase returns name without a trailing "-seed<digits>" and whether it
// had one (with something before it).
func seedBase(name string) (string, bool) {
	i := strings.LastIndex(name, "-seed")
	if i <= 0 {
		return name, false
	}
	digits := name[i+len("-seed"):]
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return name, false
	}
	return name[:i], true
}

// GroupBySeed groups runs by their names without a trailing "-seed<digits>"
// (vktrain-seed1 and vktrain-seed2 make the group "vktrain"), in the order
// in which each group first appears. A run whose name has no such suffix is
// a group of its own; nil runs are left out.
func GroupBySeed(runs []*metrics.Run) []RunGroup {
	var groups []RunGroup
	index := map[string]int{}
	for _, run := range runs {
		if run == nil {
			continue
		}
		base, ok := seedBase(run.Name)
		if ok {
			if i, seen := index[base]; seen {
				groups[i].Runs = append(groups[i].Runs, run)
				continue
			}
			index[base] = len(groups)
		}
		groups = append(groups, RunGroup{Name: base, Runs: []*metrics.Run{run}})
	}
	return groups
}

// seedStat sums up the values of several seeds at one x.
type seedStat struct {
	X, Mean, Min, Max float64
	// N is the number of seeds with a value at X.
	N int
}

// aggregateSeeds returns the mean, minimum and maximum over series (one
// per seed) at each x, in increasing x; values that are not finite are
// ignored, and of several values of one series at the same x the last
// counts. With shared, only the xs at which every series has a value are
// kept; otherwise every x at which any series has one, summed up over the
// series that have it.
func aggregateSeeds(series []plotter.XYs, shared bool) []seedStat {
	if len(series) == 0 {
		return nil
	}
	vals := map[float64][]float64{} // x -> one value per series, NaN = none
	for i, s := range series {
		for _, p := range s {
			if !finite(p.X) || !finite(p.Y) {
				continue
			}
			v, ok := vals[p.X]
			if !ok {
				v = make([]float64, len(series))
				for k := range v {
					v[k] = math.NaN()
				}
				vals[p.X] = v
			}
			v[i] = p.Y
		}
	}
	xs := make([]float64, 0, len(vals))
	for x := range vals {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	var out []seedStat
	for _, x := range xs {
		st := seedStat{X: x, Min: math.Inf(1), Max: math.Inf(-1)}
		sum := 0.0
		for _, v := range vals[x] {
			if math.IsNaN(v) {
				continue
			}
			sum += v
			st.N++
			st.Min = math.Min(st.Min, v)
			st.Max = math.Max(st.Max, v)
		}
		if shared && st.N < len(series) {
			continue
		}
		st.Mean = sum / float64(st.N)
		out = append(out, st)
	}
	return out
}

// imagesPerEpoch returns the number of training images in one epoch of
// run: the images of the step record at the end of its first epoch record,
// else the config's steps per epoch times its batch, else the config's
// training images; 0 when unknown.
func imagesPerEpoch(run *metrics.Run) float64 {
	if len(run.Epochs) > 0 {
		if e := run.Epochs[0]; e.Epoch > 0 && e.Step > 0 {
			for _, s := range run.Steps {
				if s.Step == e.Step && s.Images > 0 {
					return float64(s.Images) / float64(e.Epoch)
				}
			}
		}
	}
	if c := run.Config; c != nil {
		if c.StepsPerEpoch > 0 && c.Batch > 0 {
			return float64(c.StepsPerEpoch) * float64(c.Batch)
		}
		if c.TrainImages > 0 {
			return float64(c.TrainImages)
		}
	}
	return 0
}

// lossPoints returns the running loss of run's step records against the
// training images seen; steps without an image count get step times batch
// where the batch is known, else are left out, as are non-finite losses.
func lossPoints(run *metrics.Run) plotter.XYs {
	var xys plotter.XYs
	for _, s := range run.Steps {
		if !finite(s.RunningLoss) {
			continue
		}
		images := float64(s.Images)
		if s.Images <= 0 {
			if run.Config == nil || run.Config.Batch <= 0 || s.Step <= 0 {
				continue
			}
			images = float64(s.Step) * float64(run.Config.Batch)
		}
		xys = append(xys, plotter.XY{X: images, Y: s.RunningLoss})
	}
	return xys
}

// accuracyPoints returns run's test accuracy (%) against the epoch.
func accuracyPoints(run *metrics.Run) plotter.XYs {
	var xys plotter.XYs
	for _, e := range run.Epochs {
		if finite(e.TestAcc) {
			xys = append(xys, plotter.XY{X: float64(e.Epoch), Y: 100 * e.TestAcc})
		}
	}
	return xys
}

// groupCurves is what the comparison draws of one group.
type groupCurves struct {
	name  string
	color int // index into seriesColor
	// loss holds the running loss at the points all lossSeeds share, x
	// in epochs (or images, see compareData).
	loss      []seedStat
	lossSeeds int
	// acc holds the test accuracy (%) per epoch over the accSeeds runs
	// that have it.
	acc      []seedStat
	accSeeds int
}

// compareData sums up each group over its seeds. Runs without step records
// are left out of the loss, runs without a finished epoch out of the
// accuracy. The loss x axis counts epochs when every run drawn there has a
// known number of images per epoch (inEpochs), else training images.
// Groups keep the color of their position in groups.
func compareData(groups []RunGroup) (curves []groupCurves, inEpochs bool) {
	inEpochs = true
	for _, g := range groups {
		for _, run := range g.Runs {
			if run != nil && len(lossPoints(run)) > 0 && imagesPerEpoch(run) == 0 {
				inEpochs = false
			}
		}
	}
	for i, g := range groups {
		var loss, acc []plotter.XYs
		for _, run := range g.Runs {
			if run == nil {
				continue
			}
			if l := lossPoints(run); len(l) > 0 {
				if inEpochs {
					ipe := imagesPerEpoch(run)
					for k := range l {
						l[k].X /= ipe
					}
				}
				loss = append(loss, l)
			}
			if a := accuracyPoints(run); len(a) > 0 {
				acc = append(acc, a)
			}
		}
		c := groupCurves{name: g.Name, color: i, lossSeeds: len(loss), accSeeds: len(acc)}
		if c.name == "" {
			c.name = "group " + strconv.Itoa(i+1)
		}
		c.loss = aggregateSeeds(loss, true)
		c.acc = aggregateSeeds(acc, false)
		if len(c.loss) == 0 {
			c.lossSeeds = 0
		}
		if len(c.loss)+len(c.acc) > 0 {
			curves = append(curves, c)
		}
	}
	return curves, inEpochs
}

// seedCount writes "1 seed" or "n seeds".
func seedCount(n int) string {
	if n == 1 {
		return "1 seed"
	}
	return strconv.Itoa(n) + " seeds"
}

// accuracyLegend names a group in the accuracy panel with the mean and the
// min-max over seeds of the test accuracy at the last epoch that all its
// seeds (of the accuracy panel) have.
func accuracyLegend(c groupCurves) string {
	for i := len(c.acc) - 1; i >= 0; i-- {
		st := c.acc[i]
		if st.N < c.accSeeds {
			continue
		}
		if st.N == 1 {
			return fmt.Sprintf("%s: %.1f%% at epoch %g, 1 seed", c.name, st.Mean, st.X)
		}
		return fmt.Sprintf("%s: %.1f%% [%.1f, %.1f] at epoch %g, %s", c.name, st.Mean, st.Min, st.Max, st.X, seedCount(st.N))
	}
	return c.name + ", " + seedCount(c.accSeeds) + " (no epoch common to all)"
}

// bandColor is c with the opacity of a band.
func bandColor(c color.RGBA) color.NRGBA {
	return color.NRGBA{R: c.R, G: c.G, B: c.B, A: bandAlpha}
}

// seedBand returns a filled polygon from the minimum to the maximum of
// stats in the color of group i, or nil when there is no spread to show.
func seedBand(stats []seedStat, i int) (*plotter.Polygon, error) {
	if len(stats) < 2 || !slices.ContainsFunc(stats, func(s seedStat) bool { return s.Max > s.Min }) {
		return nil, nil
	}
	ring := make(plotter.XYs, 0, 2*len(stats))
	for _, s := range stats {
		ring = append(ring, plotter.XY{X: s.X, Y: s.Max})
	}
	for k := len(stats) - 1; k >= 0; k-- {
		ring = append(ring, plotter.XY{X: stats[k].X, Y: stats[k].Min})
	}
	poly, err := plotter.NewPolygon(ring)
	if err != nil {
		return nil, err
	}
	poly.Color = bandColor(seriesColor(i))
	poly.LineStyle.Width = 0
	return poly, nil
}

// meanLine returns the line through the means of stats in the color of
// group i, with glyphs (alternately circles and squares) if glyphs is set
// or there is a single point.
func meanLine(stats []seedStat, i int, width vg.Length, glyphs bool) (*plotter.Line, *plotter.Scatter, error) {
	xys := make(plotter.XYs, len(stats))
	for k, s := range stats {
		xys[k] = plotter.XY{X: s.X, Y: s.Mean}
	}
	l, s, err := line(xys, seriesColor(i), width, nil, glyphs || len(xys) == 1)
	if err != nil {
		return nil, nil, err
	}
	if s != nil && i%2 == 1 {
		s.Shape = squareGlyph()
	}
	return l, s, nil
}

// noDataNote writes msg in the middle of an empty panel whose axes span
// [x0, x1] by [y0, y1].
func noDataNote(p *plot.Plot, msg string, x0, x1, y0, y1 float64) error {
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = x0, x1, y0, y1
	l, err := newLabels(plotter.XYs{{X: (x0 + x1) / 2, Y: (y0 + y1) / 2}}, []string{msg},
		valueStyle(color.Gray{Y: 100}, text.XCenter, text.YCenter))
	if err != nil {
		return err
	}
	p.Add(l)
	return nil
}

// lossPanel draws the running training loss of curves: per group the mean
// over its seeds as a line and their min-max as a band.
func lossPanel(curves []groupCurves, inEpochs bool) (*plot.Plot, error) {
	xLabel := "epoch"
	if !inEpochs {
		xLabel = "training images"
	}
	p := newPlot("Training loss: mean and min–max over seeds", xLabel, "training loss (running mean)")
	drawn := 0
	for _, c := range curves {
		if len(c.loss) == 0 {
			continue
		}
		band, err := seedBand(c.loss, c.color)
		if err != nil {
			return nil, err
		}
		l, s, err := meanLine(c.loss, c.color, vg.Points(1.6), false)
		if err != nil {
			return nil, err
		}
		thumbs := []plot.Thumbnailer{l}
		if band != nil {
			p.Add(band)
			thumbs = []plot.Thumbnailer{band, l}
		}
		p.Add(l)
		if s != nil {
			s.Radius = vg.Points(2.5)
			p.Add(s)
			thumbs = append(thumbs, s)
		}
		p.Legend.Add(c.name+", "+seedCount(c.lossSeeds), thumbs...)
		drawn++
	}
	if drawn == 0 {
		if err := noDataNote(p, "no training steps logged yet", 0, 1, 0, 1); err != nil {
			return nil, err
		}
		return p, nil
	}
	// Keep the top right free for the legend: a share of the height per
	// entry above the curves in the right half.
	p.X.Min = 0
	hiRight := 0.0
	for _, c := range curves {
		for _, st := range c.loss {
			if st.X >= p.X.Max/2 {
				hiRight = math.Max(hiRight, st.Max)
			}
		}
	}
	p.Y.Min = 0
	p.Y.Max = math.Max(p.Y.Max*1.05, hiRight/(1-legendShare(drawn)))
	if inEpochs {
		p.X.Max = math.Max(math.Ceil(p.X.Max-1e-9), 1) // to the end of the epoch
		p.X.Tick.Marker = plot.TickerFunc(integerTicks)
	}
	return p, nil
}

// accuracyPanel draws the test accuracy per epoch of curves: per group the
// mean over the seeds that have the epoch as a line with points, and their
// min-max as a band and as error bars.
func accuracyPanel(curves []groupCurves) (*plot.Plot, error) {
	p := newPlot("Test accuracy: mean and min–max over seeds", "epoch", "test accuracy (%)")
	p.Legend.Top = false
	lo, first, last, n := 100.0, math.Inf(1), math.Inf(-1), 0
	for _, c := range curves {
		if len(c.acc) == 0 {
			continue
		}
		band, err := seedBand(c.acc, c.color)
		if err != nil {
			return nil, err
		}
		l, s, err := meanLine(c.acc, c.color, vg.Points(2), true)
		if err != nil {
			return nil, err
		}
		thumbs := []plot.Thumbnailer{l, s}
		if band != nil {
			p.Add(band)
			thumbs = []plot.Thumbnailer{band, l, s}
		}
		if slices.ContainsFunc(c.acc, func(s seedStat) bool { return s.Max > s.Min }) {
			bars, err := plotter.NewYErrorBars(seedErrors(c.acc))
			if err != nil {
				return nil, err
			}
			bars.Color = seriesColor(c.color)
			bars.Width = vg.Points(1.2)
			bars.CapWidth = vg.Points(7)
			p.Add(bars)
		}
		p.Add(l, s)
		p.Legend.Add(accuracyLegend(c), thumbs...)
		for _, st := range c.acc {
			lo = math.Min(lo, st.Min)
			first = math.Min(first, st.X)
			last = math.Max(last, st.X)
		}
		n++
	}
	if n == 0 {
		return p, noDataNote(p, "no epoch finished yet", 0.5, 1.5, 0, 104)
	}
	p.X.Min = math.Min(p.X.Min, first) - 0.5
	p.X.Max += 0.5
	p.X.Tick.Marker = plot.TickerFunc(integerTicks)
	// Keep the bottom free for the legend.
	const yMax = 104
	free := legendShare(n)
	p.Y.Min = math.Max(0, math.Floor((lo-free/(1-free)*(yMax-lo))/10)*10)
	p.Y.Max = yMax
	p.Y.Tick.Marker = plot.TickerFunc(percentTicks)
	// Accuracies near 0 leave no room below them: put the legend at the
	// top if the right half of the panel has room there.
	loRight, hiRight := math.Inf(1), math.Inf(-1)
	for _, c := range curves {
		for _, st := range c.acc {
			if st.X >= (first+last)/2 {
				loRight, hiRight = math.Min(loRight, st.Min), math.Max(hiRight, st.Max)
			}
		}
	}
	span := yMax - p.Y.Min
	if (loRight-p.Y.Min)/span < free && (yMax-hiRight)/span >= free {
		p.Legend.Top = true
	}
	return p, nil
}

// legendShare is the share of a panel's height to keep free for a legend
// of n entries.
func legendShare(n int) float64 { return min(0.05+0.055*float64(n), 0.6) }

// seedErrors is a plotter.YErrorer and plotter.XYer of the means of stats
// with error bars from the minimum to the maximum.
type seedErrors []seedStat

// Len, XY and YError implement plotter.XYer and plotter.YErrorer.
func (s seedErrors) Len() int                    { return len(s) }
func (s seedErrors) XY(i int) (float64, float64) { return s[i].X, s[i].Mean }
func (s seedErrors) YError(i int) (float64, float64) {
	return s[i].Mean - s[i].Min, s[i].Max - s[i].Mean
}

// CompareGroups draws runs of several setups over several seeds each as two
// panels: the running training loss against epochs (per group, the mean
// over its seeds at the points that all of them logged, and the min-max
// band) and the test accuracy per epoch (the mean over the seeds that have
// the epoch, with the min-max as a band and error bars). The legend gives
// each group's mean and [min, max] test accuracy at the last epoch all its
// seeds have; a group has the same color in both panels. Runs and groups
// without data are left out; when nothing is left the error wraps
// ErrNoData. The two plots are drawn side by side by RenderRow or SaveRow.
func CompareGroups(groups []RunGroup) (loss, accuracy *plot.Plot, err error) {
	curves, inEpochs := compareData(groups)
	if len(curves) == 0 {
		return nil, nil, fmt.Errorf("compare groups: %w (no run has a logged step or a finished epoch)", ErrNoData)
	}
	if loss, err = lossPanel(curves, inEpochs); err != nil {
		return nil, nil, fmt.Errorf("compare groups: %w", err)
	}
	if accuracy, err = accuracyPanel(curves); err != nil {
		return nil, nil, fmt.Errorf("compare groups: %w", err)
	}
	return loss, accuracy, nil
}

// SaveCompareGroups draws the CompareGroups figure of groups, its two
// panels side by side at CompareGroupsWidth by CompareGroupsHeight, and
// writes it to path atomically, in the format of path's extension as Save
// does.
func SaveCompareGroups(path string, groups []RunGroup) error {
	loss, acc, err := CompareGroups(groups)
	if err != nil {
		return fmt.Errorf("viz: %s: %w", path, err)
	}
	return SaveRow([]*plot.Plot{loss, acc}, path, CompareGroupsWidth, CompareGroupsHeight)
}

// checkRow reports an empty row or a nil plot in it.
func checkRow(plots []*plot.Plot) error {
	if len(plots) == 0 {
		return errors.New("no plots")
	}
	if slices.Contains(plots, nil) {
		return errors.New("nil plot")
	}
	return nil
}

// drawRow draws plots side by side in equal columns on c, their data areas
// aligned, with the margin that drawWithMargin keeps; a single plot is
// drawn as drawWithMargin draws it.
func drawRow(plots []*plot.Plot, c vg.CanvasSizer) {
	if len(plots) == 1 {
		drawWithMargin(plots[0], c)
		return
	}
	dc := draw.New(c)
	if bg := plots[0].BackgroundColor; bg != nil {
		dc.SetColor(bg)
		dc.Fill(dc.Rectangle.Path())
	}
	area := draw.Crop(dc, 0, -vg.Points(12), 0, -vg.Points(4))
	tiles := draw.Tiles{Rows: 1, Cols: len(plots), PadX: vg.Points(panelGap)}
	canvases := plot.Align([][]*plot.Plot{plots}, tiles, area)
	for i, p := range plots {
		p.Draw(canvases[0][i])
	}
}

// RenderRow draws plots side by side in equal columns, their data areas
// aligned, at w by h in all, and returns the image at DPI dots per inch.
func RenderRow(plots []*plot.Plot, w, h vg.Length) (image.Image, error) {
	if err := checkRow(plots); err != nil {
		return nil, fmt.Errorf("viz: render: %w", err)
	}
	return renderWith(w, h, func(c vg.CanvasSizer) { drawRow(plots, c) })
}

// SaveRow draws plots side by side as RenderRow does and writes the figure
// to path atomically, in the format of path's extension as Save does.
func SaveRow(plots []*plot.Plot, path string, w, h vg.Length) error {
	if err := checkRow(plots); err != nil {
		return fmt.Errorf("viz: save %s: %w", path, err)
	}
	return saveWith(path, w, h, func(c vg.CanvasSizer) { drawRow(plots, c) })
}
