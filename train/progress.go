package train

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"vktrain/train/fetch"
)

// progressBar shows an epoch's progress: steps done, images per second, running
// loss and the time left. On a terminal (w set) it is one line redrawn in place at
// most once a second; elsewhere (log set, as when stderr goes to a file or CI) it
// is a plain log line every logEvery or every tenth of the epoch, whichever comes
// first, and one at the end, as tqdm does in a non-interactive run.
type progressBar struct {
	w          io.Writer
	log        *slog.Logger
	label      string
	total      int
	start      time.Time
	last       time.Time
	lastDone   int // steps done at the last log line
	imgPerStep int
	logEvery   time.Duration
	now        func() time.Time
}

// progressLogInterval is the longest a non-terminal run goes without a progress line.
const progressLogInterval = 30 * time.Second

func newProgressBar(w io.Writer, log *slog.Logger, label string, total, imgPerStep int) *progressBar {
	p := &progressBar{w: w, log: log, label: label, total: total, imgPerStep: imgPerStep,
		logEvery: progressLogInterval, now: time.Now}
	p.start = p.now()
	p.last = p.start
	return p
}

// update reports done steps (throttled; the last one always).
func (p *progressBar) update(done int, loss float64) {
	if p == nil {
		return
	}
	switch {
	case p.w != nil:
		now := p.now()
		if done < p.total && now.Sub(p.last) < time.Second {
			return
		}
		p.last = now
		fmt.Fprint(p.w, "\r"+p.line(done, loss, now))
		if done >= p.total {
			fmt.Fprintln(p.w)
		}
	case p.log != nil:
		now := p.now()
		tenth := max(1, p.total/10)
		if done < p.total && done-p.lastDone < tenth && now.Sub(p.last) < p.logEvery {
			return
		}
		p.last, p.lastDone = now, done
		rate, eta := p.rate(done, now)
		p.log.Info("training", "epoch", p.label, "step", done, "of", p.total,
			"images_per_s", fmt.Sprintf("%.1f", rate), "loss", fmt.Sprintf("%.3f", loss), "eta", eta)
	}
}

// rate is the images per second so far and the estimated time left.
func (p *progressBar) rate(done int, now time.Time) (float64, string) {
	elapsed := now.Sub(p.start).Seconds()
	if elapsed <= 0 || done <= 0 {
		return 0, "?"
	}
	left := float64(p.total-done) / float64(done) * elapsed // seconds
	return float64(done*p.imgPerStep) / elapsed, time.Duration(left * float64(time.Second)).Round(time.Second).String()
}

func (p *progressBar) line(done int, loss float64, now time.Time) string {
	const width = 24
	frac := 0.0
	if p.total > 0 {
		frac = float64(done) / float64(p.total)
	}
	fill := int(frac * width)
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", width-fill)
	rate, eta := p.rate(done, now)
	return fmt.Sprintf("epoch %s [%s] %d/%d  %.1f img/s  loss %.3f  ETA %s ", p.label, bar, done, p.total, rate, loss, eta)
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

// TuneProgress draws the tuner's progress on w (a terminal) as one line redrawn
// in place: algorithms timed of all, and the one being timed; nil w, no bar.
func TuneProgress(w io.Writer) func(done, total int, what string) {
	if w == nil {
		return nil
	}
	return func(done, total int, what string) {
		const width = 20
		filled := width * done / max(total, 1)
		bar := strings.Repeat("#", filled) + strings.Repeat(" ", width-filled)
		fmt.Fprintf(w, "\rtuning convolutions [%s] %d/%d %-40s", bar, done, total, what)
		if done >= total {
			fmt.Fprintln(w)
		}
	}
}
