package watch

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/vgimg"

	"vktrain/train/metrics"
	"vktrain/viz"
)

// headerHeight is the height in pixels of the status line above the figures.
const headerHeight = 30

// minFigure is the smallest figure size in pixels worth drawing.
const minFigure = 40

// Background is the colour of the window behind the figures.
var Background = color.RGBA{255, 255, 255, 255}

// Snapshot is what the window shows: the metrics file as last read.
type Snapshot struct {
	// Path is the metrics file.
	Path string
	// Run is the parsed file; nil while it is missing or empty.
	Run *metrics.Run
	// Err is why the file could not be read (nil when it is just missing).
	Err error
	// Size and ModTime identify the file version read (zero when missing).
	Size    int64
	ModTime time.Time
}

// MetricsPath returns the metrics file of runDir, which may also name the
// file itself.
func MetricsPath(runDir string) string {
	if st, err := os.Stat(runDir); err == nil && !st.IsDir() {
		return runDir
	}
	return filepath.Join(runDir, metrics.FileName)
}

// Load reads the metrics file of runDir. A missing or empty file gives a
// Snapshot without a Run and without an error.
func Load(runDir string) Snapshot {
	s := Snapshot{Path: MetricsPath(runDir)}
	st, err := os.Stat(s.Path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.Err = fmt.Errorf("watch: %w", err)
		}
		return s
	}
	s.Size, s.ModTime = st.Size(), st.ModTime()
	if st.Size() == 0 {
		return s
	}
	run, err := metrics.Read(s.Path, nil)
	if err != nil {
		s.Err = fmt.Errorf("watch: %w", err)
		return s
	}
	if run.Config == nil && len(run.Steps) == 0 && len(run.Epochs) == 0 {
		return s // nothing usable yet (a first line still being written)
	}
	s.Run = run
	return s
}

// changed reports whether the file on disk differs from the one s was read from.
func (s Snapshot) changed() bool {
	st, err := os.Stat(s.Path)
	if err != nil {
		return !s.ModTime.IsZero() // it was there and is gone
	}
	return st.Size() != s.Size || !st.ModTime().Equal(s.ModTime)
}

// Compose draws the window's picture of s at w by h pixels: a status line,
// the loss curve and the accuracy side by side, and the per-class accuracy of
// the last epoch below (stacked in one column when the window is narrow). A
// figure without data yet is replaced by a note saying so; a missing or
// empty file gives a "waiting for" message.
func Compose(s Snapshot, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, max(w, 1), max(h, 1)))
	draw.Draw(img, img.Rect, image.NewUniform(Background), image.Point{}, draw.Src)
	if s.Run == nil {
		msg := "waiting for " + s.Path
		sub := "(redrawn as soon as the file has a record)"
		if s.Err != nil {
			msg, sub = "cannot read "+s.Path, s.Err.Error()
		}
		drawText(img, img.Rect, []string{msg, sub}, 16, true)
		return img
	}
	header := image.Rect(0, 0, w, min(headerHeight, h))
	drawText(img, header, []string{statusLine(s)}, 10, false)
	body := image.Rect(0, header.Max.Y, w, h)
	if body.Dx() < minFigure || body.Dy() < minFigure {
		return img
	}
	var loss, acc, per image.Rectangle
	if body.Dx() >= 900 || body.Dx() > body.Dy() {
		top := body.Min.Y + body.Dy()/2
		mid := body.Min.X + body.Dx()/2
		loss = image.Rect(body.Min.X, body.Min.Y, mid, top)
		acc = image.Rect(mid, body.Min.Y, body.Max.X, top)
		per = image.Rect(body.Min.X, top, body.Max.X, body.Max.Y)
	} else {
		third := body.Dy() / 3
		loss = image.Rect(body.Min.X, body.Min.Y, body.Max.X, body.Min.Y+third)
		acc = image.Rect(body.Min.X, loss.Max.Y, body.Max.X, loss.Max.Y+third)
		per = image.Rect(body.Min.X, acc.Max.Y, body.Max.X, body.Max.Y)
	}
	figure(img, loss, "Training loss", func() (*plot.Plot, error) { return viz.LossCurve(s.Run) })
	figure(img, acc, "Accuracy", func() (*plot.Plot, error) { return viz.Accuracy(s.Run) })
	figure(img, per, "Test accuracy per class", func() (*plot.Plot, error) { return viz.PerClass(s.Run, -1) })
	return img
}

// figure draws the plot that mk makes into r of img, or a note saying why
// there is none.
func figure(img *image.RGBA, r image.Rectangle, name string, mk func() (*plot.Plot, error)) {
	if r.Dx() < minFigure || r.Dy() < minFigure {
		return
	}
	p, err := mk()
	var pic image.Image
	if err == nil {
		pic, err = viz.Render(p, pixels(r.Dx()), pixels(r.Dy()))
	}
	if err != nil {
		note := "error: " + err.Error()
		if errors.Is(err, viz.ErrNoData) {
			note = "no data yet"
			if i := strings.Index(err.Error(), "("); i >= 0 {
				note = strings.TrimSuffix(err.Error()[i+1:], ")")
			}
		}
		inner := r.Inset(8)
		draw.Draw(img, inner, image.NewUniform(color.RGBA{244, 244, 244, 255}), image.Point{}, draw.Src)
		drawText(img, inner, []string{name, note}, 14, true)
		return
	}
	draw.Draw(img, r, pic, pic.Bounds().Min, draw.Src)
}

// pixels converts a size in pixels to a length at viz.DPI.
func pixels(n int) vg.Length { return vg.Length(n) * vg.Inch / viz.DPI }

// statusLine describes the run in one line.
func statusLine(s Snapshot) string {
	r := s.Run
	parts := []string{"vktrain-watch: " + r.Name}
	if r.Config != nil {
		c := r.Config
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("%s %s", c.Model, c.Dataset)))
	}
	epochs := "?"
	if r.Config != nil && r.Config.Epochs > 0 {
		epochs = fmt.Sprint(r.Config.Epochs)
	}
	parts = append(parts, fmt.Sprintf("epoch %d/%s done", len(r.Epochs), epochs))
	if n := len(r.Steps); n > 0 {
		st := r.Steps[n-1]
		parts = append(parts, fmt.Sprintf("step %d, loss %.3f", st.Step, st.RunningLoss))
		if st.ImagesPerS > 0 {
			parts = append(parts, fmt.Sprintf("%.0f img/s", st.ImagesPerS))
		}
	}
	if n := len(r.Epochs); n > 0 && !math.IsNaN(r.Epochs[n-1].TestAcc) {
		parts = append(parts, fmt.Sprintf("test acc %.1f%%", 100*r.Epochs[n-1].TestAcc))
	}
	if !s.ModTime.IsZero() {
		parts = append(parts, "updated "+s.ModTime.Format("15:04:05"))
	}
	return strings.Join(parts, "  |  ")
}

// drawText writes lines into r of img in the figures' font: centred in r when
// centre is set, else left-aligned and vertically centred.
func drawText(img *image.RGBA, r image.Rectangle, lines []string, size vg.Length, centre bool) {
	if r.Dx() < 4 || r.Dy() < 4 || len(lines) == 0 {
		return
	}
	c := vgimg.NewWith(vgimg.UseWH(pixels(r.Dx()), pixels(r.Dy())), vgimg.UseDPI(viz.DPI), vgimg.UseBackgroundColor(color.Transparent))
	face := font.DefaultCache.Lookup(font.Font{Typeface: "Liberation", Variant: "Sans"}, size)
	w, h := pixels(r.Dx()), pixels(r.Dy())
	lineH := size * 1.4
	y := h/2 + lineH*vg.Length(len(lines))/2 - size
	c.SetColor(color.RGBA{40, 40, 40, 255})
	for _, l := range lines {
		x := vg.Points(8)
		if centre {
			x = max(vg.Points(4), (w-face.Width(l))/2)
		}
		c.FillString(face, vg.Point{X: x, Y: y}, l)
		y -= lineH
	}
	pic := c.Image()
	draw.Draw(img, r, pic, pic.Bounds().Min, draw.Over)
}
