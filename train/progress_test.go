package train

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	p := &progressBar{total: 100, imgPerStep: 4, now: time.Now}
	p.start = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	got := p.line(25, 1.5, p.start.Add(10*time.Second))
	// 25 steps of 4 images in 10 s: 10 img/s; 75 steps left at 0.4 s each: 30 s.
	for _, want := range []string{"25/100", "10.0 img/s", "loss 1.500", "ETA 30s", "[======                  ]"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
}

// TestProgressLogLines checks the non-terminal mode: a log line every tenth of the
// epoch or every 30 s, whichever comes first, and one at the end.
func TestProgressLogLines(t *testing.T) {
	for _, c := range []struct {
		name      string
		total     int
		stepEvery time.Duration
		want      []int // steps that get a line
	}{
		{"tenths", 50, time.Second, []int{5, 10, 15, 20, 25, 30, 35, 40, 45, 50}},
		{"30 seconds", 100, 7 * time.Second, []int{5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 85, 90, 95, 100}},
		{"slow steps", 1000, 11 * time.Second, nil}, // every third step (33 s), checked below
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf strings.Builder
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
				ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
					if a.Key == slog.TimeKey {
						return slog.Attr{}
					}
					return a
				}}))
			clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			p := newProgressBar(nil, log, "1/2", c.total, 4)
			p.now = func() time.Time { return clock }
			p.start, p.last = clock, clock
			for done := 1; done <= c.total; done++ {
				clock = clock.Add(c.stepEvery)
				p.update(done, 2.5)
			}
			lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
			var got []int
			for _, l := range lines {
				var step int
				i := strings.Index(l, " step=")
				if i < 0 {
					t.Fatalf("line %q has no step", l)
				}
				if _, err := fmt.Sscanf(l[i:], " step=%d", &step); err != nil {
					t.Fatalf("line %q: %v", l, err)
				}
				got = append(got, step)
				for _, want := range []string{"epoch=1/2", "images_per_s=", "loss=2.500", "eta=", fmt.Sprintf("of=%d", c.total)} {
					if !strings.Contains(l, want) {
						t.Errorf("line %q lacks %q", l, want)
					}
				}
			}
			if c.want == nil {
				// 11 s steps: a line every 3 steps (33 s >= 30 s) until the end.
				for i := 1; i < len(got); i++ {
					if d := got[i] - got[i-1]; d != 3 && got[i] != c.total {
						t.Fatalf("lines at steps %v: want one every 3 steps", got)
					}
				}
				if got[len(got)-1] != c.total {
					t.Errorf("no line at the end: %v", got[len(got)-5:])
				}
				return
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("lines at steps %v, want %v", got, c.want)
			}
		})
	}
}
