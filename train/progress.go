package train

import (
	"fmt"
	"io"
	"strings"
	"time"

	"vktrain/train/fetch"
)

// progressBar draws one line per epoch, redrawn in place at most once a second:
// steps done, images per second, running loss and the time left.
type progressBar struct {
	w          io.Writer
	label      string
	total      int
	start      time.Time
	last       time.Time
	imgPerStep int
	now        func() time.Time
}

func newProgressBar(w io.Writer, label string, total, imgPerStep int) *progressBar {
	p := &progressBar{w: w, label: label, total: total, imgPerStep: imgPerStep, now: time.Now}
	p.start = p.now()
	return p
}

// update redraws the line for done steps (throttled; the last one always).
func (p *progressBar) update(done int, loss float64) {
	if p == nil || p.w == nil {
		return
	}
	now := p.now()
	if done < p.total && now.Sub(p.last) < time.Second {
		return
	}
	p.last = now
	fmt.Fprint(p.w, "\r"+p.line(done, loss, now))
	if done >= p.total {
		fmt.Fprintln(p.w)
	}
}

func (p *progressBar) line(done int, loss float64, now time.Time) string {
	const width = 24
	frac := 0.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	elapsed := now.Sub(p.start).Seconds()
	rate, eta := 0.0, "?"
	if elapsed > 0 && done > 0 {
		rate = float64(done*p.imgPerStep) / elapsed
		left := float64(p.total-done) / float64(done) * elapsed // seconds
		eta = time.Duration(left * float64(time.Second)).Round(time.Second).String()
	}
	return fmt.Sprintf("%s [%s] %d/%d  %.1f img/s  loss %.3f  ETA %s ", p.label, bar, done, p.total, rate, loss, eta)
}

// fetchProgress is fetch.Progress, finishing its line at the end.
type fetchProgress struct{ p *fetch.Progress }

func newFetchProgress(w io.Writer) *fetchProgress {
	return &fetchProgress{p: &fetch.Progress{W: w, Label: "download"}}
}

// Update draws the download's progress.
func (f *fetchProgress) Update(done, total int64) {
	f.p.Update(done, total)
	if total > 0 && done >= total {
		f.p.Finish()
	}
}
