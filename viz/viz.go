// Package viz draws the figures of a vktrain run with gonum/plot: the loss
// curve, the accuracy per epoch, the per-class accuracy, the confusion
// matrix, a comparison of runs (run by run, or grouped over seeds with
// their mean and spread), a grid of sample images and the kernel benchmark
// chart, and saves them as PNG files.
//
// Figures are built from a *metrics.Run. A figure whose data are not there
// yet (no epoch finished) returns an error that wraps ErrNoData. Drawing is
// deterministic: the same data give the same pixels on the same platform.
package viz

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// ErrNoData is wrapped by the errors of figures that have nothing to draw
// yet, such as the accuracy of a run without a finished epoch.
var ErrNoData = errors.New("viz: no data to plot")

// DPI is the resolution of the PNG files that Save writes.
const DPI = 100

// Default figure sizes.
const (
	// Width is the width of the run figures.
	Width = 8 * vg.Inch
	// Height is the height of the loss, accuracy and per-class figures.
	Height = 5 * vg.Inch
	// ConfusionHeight is the height of the confusion matrix figure.
	ConfusionHeight = 7 * vg.Inch
)

// Font sizes.
const (
	titleSize  = 14
	labelSize  = 12
	tickSize   = 11
	legendSize = 11
	valueSize  = 10
)

// sansFont is the typeface of every text in the figures.
func sansFont(size vg.Length) font.Font {
	return font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
}

// seriesColor returns the i-th color of a fixed qualitative palette
// (Tableau 10).
func seriesColor(i int) color.RGBA {
	pal := [...]color.RGBA{
		{31, 119, 180, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {214, 39, 40, 255},
		{148, 103, 189, 255}, {140, 86, 75, 255}, {227, 119, 194, 255}, {127, 127, 127, 255},
		{188, 189, 34, 255}, {23, 190, 207, 255},
	}
	return pal[((i%len(pal))+len(pal))%len(pal)]
}

// newPlot returns a plot with the package's fonts, title and axis labels,
// a light grid and the legend at the top right.
func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font = sansFont(titleSize)
	p.Title.Padding = vg.Points(10)
	for _, ax := range []*plot.Axis{&p.X, &p.Y} {
		ax.Label.TextStyle.Font = sansFont(labelSize)
		ax.Tick.Label.Font = sansFont(tickSize)
		ax.Label.Padding = vg.Points(4)
	}
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.TextStyle.Font = sansFont(legendSize)
	p.Legend.Top = true
	p.Legend.ThumbnailWidth = vg.Points(24)
	p.Legend.Padding = vg.Points(2)
	p.Legend.XOffs = -vg.Points(8)
	p.Legend.YOffs = -vg.Points(4)
	g := plotter.NewGrid()
	g.Vertical.Color = color.Gray{Y: 225}
	g.Horizontal.Color = color.Gray{Y: 225}
	p.Add(g)
	return p
}

// valueStyle is the style of a number written into a figure.
func valueStyle(c color.Color, xa text.XAlignment, ya text.YAlignment) text.Style {
	return text.Style{
		Color:   c,
		Font:    sansFont(valueSize),
		XAlign:  xa,
		YAlign:  ya,
		Handler: plot.DefaultTextHandler,
	}
}

// newLabels returns Labels writing strs at xys, all in style sty.
func newLabels(xys plotter.XYs, strs []string, sty text.Style) (*plotter.Labels, error) {
	l, err := plotter.NewLabels(plotter.XYLabels{XYs: xys, Labels: strs})
	if err != nil {
		return nil, err
	}
	for i := range l.TextStyle {
		l.TextStyle[i] = sty
	}
	return l, nil
}

// boxedLabels are Labels drawn over a white box each, so that they stay
// legible where they cross a line.
type boxedLabels struct {
	*plotter.Labels
}

// Plot implements plot.Plotter.
func (l boxedLabels) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	pad := vg.Points(1.5)
	for i, s := range l.Labels.Labels {
		pt := vg.Point{X: trX(l.XYs[i].X), Y: trY(l.XYs[i].Y)}
		if !c.Contains(pt) {
			continue
		}
		r := l.TextStyle[i].Rectangle(s).Add(pt.Add(l.Offset))
		r.Min.Y = max(r.Min.Y, pt.Y+vg.Points(0.5)) // keep off the bar or point below
		c.FillPolygon(color.White, []vg.Point{
			{X: r.Min.X - pad, Y: r.Min.Y}, {X: r.Max.X + pad, Y: r.Min.Y},
			{X: r.Max.X + pad, Y: r.Max.Y}, {X: r.Min.X - pad, Y: r.Max.Y},
		})
	}
	l.Labels.Plot(c, p)
}

// line returns a solid line of the given color and width (points) through
// xys, with optional glyphs at the points.
func line(xys plotter.XYs, c color.Color, width vg.Length, dashes []vg.Length, glyphs bool) (*plotter.Line, *plotter.Scatter, error) {
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, nil, err
	}
	l.Color = c
	l.Width = width
	l.Dashes = dashes
	if !glyphs {
		return l, nil, nil
	}
	s, err := plotter.NewScatter(xys)
	if err != nil {
		return nil, nil, err
	}
	s.Color = c
	s.Shape = draw.CircleGlyph{}
	s.Radius = vg.Points(3.5)
	return l, s, nil
}

// integerTicks marks whole numbers (epochs) on an axis, at a step of 1, 2,
// 5, 10, ... that keeps the count of ticks at most 12.
func integerTicks(lo, hi float64) []plot.Tick {
	if math.IsNaN(lo) || math.IsNaN(hi) || math.IsInf(lo, 0) || math.IsInf(hi, 0) || hi < lo {
		return nil
	}
	step := 1.0
	for i := 0; (hi-lo)/step > 12 && i < 60; i++ {
		switch m := step / math.Pow(10, math.Floor(math.Log10(step))); {
		case m < 1.5:
			step *= 2
		case m < 3:
			step = step / 2 * 5
		default:
			step *= 2
		}
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}

// percentTicks marks 0, 10 or 20, ..., 100 between lo and hi.
func percentTicks(lo, hi float64) []plot.Tick {
	step := 20.0
	if hi-lo <= 50 {
		step = 10
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= math.Min(hi, 100)+1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', -1, 64)})
	}
	return ticks
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// Render draws p at w by h and returns it as an image at DPI dots per inch.
func Render(p *plot.Plot, w, h vg.Length) (image.Image, error) {
	if p == nil {
		return nil, errors.New("viz: render: nil plot")
	}
	return renderWith(w, h, func(c vg.CanvasSizer) { drawWithMargin(p, c) })
}

// renderWith runs draw on an image canvas of w by h at DPI dots per inch and
// returns the image; a panic in draw becomes an error.
func renderWith(w, h vg.Length, drawFn func(vg.CanvasSizer)) (img image.Image, err error) {
	if w <= 0 || h <= 0 || w > 100*vg.Inch || h > 100*vg.Inch {
		return nil, fmt.Errorf("viz: render: bad size %v x %v", w, h)
	}
	defer func() {
		if r := recover(); r != nil {
			img, err = nil, fmt.Errorf("viz: render: plot panicked: %v", r)
		}
	}()
	c := vgimg.NewWith(vgimg.UseWH(w, h), vgimg.UseDPI(DPI))
	drawFn(c)
	return c.Image(), nil
}

// drawWithMargin draws p on c, keeping a small margin at the top and right
// where gonum/plot would draw up to the edge.
func drawWithMargin(p *plot.Plot, c vg.CanvasSizer) {
	dc := draw.New(c)
	if p.BackgroundColor != nil { // the background under the margin
		dc.SetColor(p.BackgroundColor)
		dc.Fill(dc.Rectangle.Path())
	}
	p.Draw(draw.Crop(dc, 0, -vg.Points(12), 0, -vg.Points(4)))
}

// Save draws p at w by h and writes it to path atomically (a temporary file
// in the same directory, then a rename). A ".png" path gets a PNG at DPI
// dots per inch; ".svg", ".pdf" and ".eps" paths get vector files.
func Save(p *plot.Plot, path string, w, h vg.Length) error {
	if p == nil {
		return fmt.Errorf("viz: save %s: nil plot", path)
	}
	return saveWith(path, w, h, func(c vg.CanvasSizer) { drawWithMargin(p, c) })
}

// saveWith runs draw on a canvas of w by h in the format of path's extension,
// as Save describes, and writes the result to path atomically.
func saveWith(path string, w, h vg.Length, drawFn func(vg.CanvasSizer)) error {
	var buf bytes.Buffer
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png":
		img, err := renderWith(w, h, drawFn)
		if err != nil {
			return fmt.Errorf("%w (%s)", err, path)
		}
		if err := png.Encode(&buf, img); err != nil {
			return fmt.Errorf("viz: encode %s: %w", path, err)
		}
	case ".svg", ".pdf", ".eps":
		if err := writeVector(drawFn, w, h, ext[1:], &buf); err != nil {
			return fmt.Errorf("viz: save %s: %w", path, err)
		}
	default:
		return fmt.Errorf("viz: save %s: unsupported format %q", path, ext)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeVector runs draw on a vector canvas of the given format and writes
// the result into out.
func writeVector(drawFn func(vg.CanvasSizer), w, h vg.Length, format string, out io.Writer) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("plot panicked: %v", r)
		}
	}()
	c, err := draw.NewFormattedCanvas(w, h, format)
	if err != nil {
		return err
	}
	drawFn(c)
	_, err = c.WriteTo(out)
	return err
}

// SavePNG writes img as a PNG file at path atomically.
func SavePNG(img image.Image, path string) error {
	if img == nil {
		return fmt.Errorf("viz: save %s: nil image", path)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("viz: encode %s: %w", path, err)
	}
	return writeFileAtomic(path, buf.Bytes())
}

// writeFileAtomic writes data to a temporary file next to path, syncs it
// and renames it to path, so readers see either the old or the new file.
func writeFileAtomic(path string, data []byte) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".tmp*")
	if err != nil {
		return fmt.Errorf("viz: write %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) error {
		_ = f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("viz: write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("viz: write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("viz: write %s: %w", path, err)
	}
	return nil
}

// squareGlyph is the glyph of a second series.
func squareGlyph() draw.GlyphDrawer { return draw.BoxGlyph{} }
