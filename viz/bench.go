package viz

import (
	"fmt"
	"image/color"
	"math"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
)

// BenchSeries is one series of a kernel benchmark, such as one device or
// one run: a value for each of its kernels, all in one unit.
type BenchSeries struct {
	// Name names the series in the legend, e.g. the device.
	Name string
	// Kernels names the benchmarked kernels.
	Kernels []string
	// Values holds one value per kernel, e.g. milliseconds per dispatch.
	Values []float64
	// Unit is the unit of Values, e.g. "ms" or "GFLOP/s".
	Unit string
}

// Bench chart layout, in points (the unit of vg.Length).
const (
	benchBar    vg.Length = 14            // bar thickness
	benchGap    vg.Length = 10            // between groups
	benchLegend vg.Length = 16            // per legend entry
	benchExtra            = 1.4 * vg.Inch // title, axis and margins
)

// benchKernels returns the kernels of all series, in order of first
// appearance, and checks the series.
func benchKernels(series []BenchSeries) ([]string, error) {
	if len(series) == 0 {
		return nil, fmt.Errorf("bench chart: %w (no series)", ErrNoData)
	}
	var kernels []string
	seen := map[string]bool{}
	for i, s := range series {
		if len(s.Kernels) != len(s.Values) {
			return nil, fmt.Errorf("bench chart: series %q: %d kernels but %d values", s.Name, len(s.Kernels), len(s.Values))
		}
		if s.Unit != series[0].Unit {
			return nil, fmt.Errorf("bench chart: series %q is in %q, series %q in %q", s.Name, s.Unit, series[0].Name, series[0].Unit)
		}
		for j, k := range s.Kernels {
			if v := s.Values[j]; !finite(v) || v < 0 {
				return nil, fmt.Errorf("bench chart: series %d (%q), kernel %q: bad value %v", i, s.Name, k, v)
			}
			if !seen[k] {
				seen[k] = true
				kernels = append(kernels, k)
			}
		}
	}
	if len(kernels) == 0 {
		return nil, fmt.Errorf("bench chart: %w (no kernels)", ErrNoData)
	}
	return kernels, nil
}

// BenchChartSize returns a size for the chart of series that gives every
// bar the same thickness whatever the number of kernels and series.
func BenchChartSize(series []BenchSeries) (w, h vg.Length) {
	kernels, err := benchKernels(series)
	if err != nil {
		return Width, Height
	}
	group := vg.Length(len(series))*benchBar + benchGap
	legend := vg.Length(len(series))*benchLegend + benchGap
	return Width, benchExtra + legend + vg.Length(len(kernels))*group
}

// BenchChart draws a kernel benchmark as grouped horizontal bars: a group
// per kernel (top to bottom in order of first appearance), a bar per
// series within it, each labeled with its value. A kernel that a series
// lacks gets no bar. All series must share one unit. Draw it at
// BenchChartSize for even bars.
func BenchChart(series []BenchSeries) (*plot.Plot, error) {
	kernels, err := benchKernels(series)
	if err != nil {
		return nil, err
	}
	nk, ns := len(kernels), len(series)
	unit := series[0].Unit
	xLabel := "value"
	if unit != "" {
		xLabel = unit
	}
	p := newPlot("Kernel benchmark", xLabel, "")
	// Kernel k sits at y = nk-1-k so that the first kernel is at the top.
	rev := make([]string, nk)
	for k, name := range kernels {
		rev[nk-1-k] = name
	}
	// One group spans 1 unit on the y axis and, at BenchChartSize, group
	// on the canvas; the legend takes the room above the first group.
	group := vg.Length(ns)*benchBar + benchGap
	legend := vg.Length(ns)*benchLegend + benchGap
	barW := benchBar
	hi := 0.0
	for i, s := range series {
		vals := make(plotter.Values, nk)
		have := make([]bool, nk)
		for j, k := range s.Kernels {
			for q, name := range kernels {
				if name == k {
					vals[nk-1-q] = s.Values[j]
					have[nk-1-q] = true
				}
			}
		}
		bars, err := plotter.NewBarChart(vals, barW)
		if err != nil {
			return nil, fmt.Errorf("bench chart: %w", err)
		}
		bars.Horizontal = true
		bars.Color = seriesColor(i)
		bars.LineStyle.Width = 0
		bars.Offset = vg.Length(float64(ns-1)/2-float64(i)) * barW
		p.Add(bars)
		name := s.Name
		if name == "" {
			name = "series " + strconv.Itoa(i+1)
		}
		p.Legend.Add(name, bars)

		var xys plotter.XYs
		var strs []string
		for y, v := range vals {
			if !have[y] {
				continue
			}
			hi = math.Max(hi, v)
			xys = append(xys, plotter.XY{X: v, Y: float64(y)})
			strs = append(strs, formatValue(v))
		}
		if len(xys) > 0 {
			labels, err := newLabels(xys, strs, valueStyle(color.Black, text.XLeft, text.YCenter))
			if err != nil {
				return nil, fmt.Errorf("bench chart: %w", err)
			}
			labels.Offset = vg.Point{X: vg.Points(3), Y: bars.Offset}
			p.Add(labels)
		}
	}
	p.NominalY(rev...)
	p.Y.Min, p.Y.Max = -0.5, float64(nk)-0.5+float64(legend/group)
	p.X.Min = 0
	p.X.Max = math.Max(hi*1.15, 1e-12)
	return p, nil
}

// formatValue writes v with three significant digits.
func formatValue(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
