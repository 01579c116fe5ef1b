package train

import (
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
