package fetch

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress draws a one-line text progress bar with throughput and ETA,
// redrawn in place with a carriage return, at most once per Interval.
// Its Update method fits Options.Progress:
//
//	p := &fetch.Progress{W: os.Stderr, Label: "cifar-10-binary.tar.gz"}
//	err := fetch.Download(ctx, url, dest, fetch.Options{Progress: p.Update})
//	p.Finish()
//
// Set the fields before the first Update and do not copy a Progress after
// use. Its methods are safe for concurrent use. Write errors are ignored.
type Progress struct {
	W        io.Writer        // where the line goes (a terminal: os.Stderr); nil draws nothing
	Label    string           // printed before the bar
	Interval time.Duration    // least time between redraws; zero means 250ms
	Now      func() time.Time // the clock; nil means time.Now
	BarWidth int              // cells in the bar; zero means 24

	mu        sync.Mutex
	started   bool
	start     time.Time // time of the first Update
	startDone int64     // bytes held at the first Update (a resumed prefix)
	last      time.Time // time of the last redraw
	lastLen   int       // length of the last line drawn
	done      int64
	total     int64
	drawn     bool // the current (done,total) has been drawn
}

func (p *Progress) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Update records that done of total bytes (total -1 if unknown) are held,
// and redraws the line if Interval has passed since the last redraw, or this
// is the first or the final (done == total) update.
func (p *Progress) Update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	first := !p.started
	if first {
		p.started = true
		p.start = now
		p.startDone = done
	}
	if done < p.startDone { // the download restarted from zero
		p.start, p.startDone = now, done
	}
	p.done, p.total = done, total
	p.drawn = false
	interval := p.Interval
	if interval <= 0 {
		interval = 250 * time.Millisecond
	}
	if first || now.Sub(p.last) >= interval || (total >= 0 && done >= total) {
		p.draw(now)
	}
}

// Finish draws the latest state, if not yet drawn, and ends the line.
func (p *Progress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started || p.W == nil {
		return
	}
	if !p.drawn {
		p.draw(p.now())
	}
	_, _ = io.WriteString(p.W, "\n")
	p.lastLen = 0
}

// Line returns the text of the bar for the latest Update, without the
// carriage return and padding that Update writes.
func (p *Progress) Line() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.line(p.now())
}

func (p *Progress) draw(now time.Time) {
	p.last = now
	p.drawn = true
	if p.W == nil {
		return
	}
	s := p.line(now)
	pad := ""
	if n := p.lastLen - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	p.lastLen = len(s)
	_, _ = io.WriteString(p.W, "\r"+s+pad)
}

func (p *Progress) line(now time.Time) string {
	var b strings.Builder
	if p.Label != "" {
		b.WriteString(p.Label)
		b.WriteString(" ")
	}
	elapsed := now.Sub(p.start).Seconds()
	rate := -1.0
	if elapsed > 0 {
		rate = float64(p.done-p.startDone) / elapsed
	}
	if p.total > 0 {
		frac := float64(p.done) / float64(p.total)
		frac = max(0, min(1, frac))
		w := p.BarWidth
		if w <= 0 {
			w = 24
		}
		full := int(frac * float64(w))
		b.WriteString("[")
		b.WriteString(strings.Repeat("#", full))
		b.WriteString(strings.Repeat(".", w-full))
		fmt.Fprintf(&b, "] %3d%% %s/%s", int(frac*100), FormatBytes(p.done), FormatBytes(p.total))
	} else {
		b.WriteString(FormatBytes(p.done))
	}
	if rate >= 0 {
		fmt.Fprintf(&b, " %s/s", FormatBytes(int64(rate)))
	} else {
		b.WriteString(" --/s")
	}
	if p.total > 0 {
		switch {
		case p.done >= p.total:
			fmt.Fprintf(&b, " in %s", formatDuration(now.Sub(p.start)))
		case rate > 0:
			eta := time.Duration(float64(p.total-p.done) / rate * float64(time.Second))
			fmt.Fprintf(&b, " ETA %s", formatDuration(eta))
		default:
			b.WriteString(" ETA --:--")
		}
	}
	return b.String()
}

// FormatBytes renders n bytes with a binary unit: "512 B", "1.5 KiB",
// "162.2 MiB", "3.0 GiB".
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	suffixes := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := -1
	for v >= unit && i < len(suffixes)-1 {
		v /= unit
		i++
	}
	return fmt.Sprintf("%.1f %s", v, suffixes[i])
}

// formatDuration renders d as m:ss, or h:mm:ss from an hour on.
func formatDuration(d time.Duration) string {
	s := int64(d.Round(time.Second) / time.Second)
	if s < 0 {
		s = 0
	}
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
