package fetch

import (
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock                   { return &fakeClock{t: time.Unix(1_700_000_000, 0)} }
func lastLine(s string) string               { i := strings.LastIndex(s, "\r"); return s[i+1:] }
func redraws(s string) int                   { return strings.Count(s, "\r") }
func trimPad(s string) string                { return strings.TrimRight(s, " ") }
func mib(n float64) int64                    { return int64(n * (1 << 20)) }
func expectLine(t *testing.T, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("line\n got %q\nwant %q", got, want)
	}
}

func TestProgressBarThrottleRateETA(t *testing.T) {
	var out strings.Builder
	clk := newClock()
	p := &Progress{W: &out, Label: "data", Now: clk.now, BarWidth: 10, Interval: time.Second}

	p.Update(0, mib(100)) // first update always draws
	expectLine(t, lastLine(out.String()), "data [..........]   0% 0 B/100.0 MiB --/s ETA --:--")

	clk.advance(500 * time.Millisecond)
	p.Update(mib(5), mib(100)) // throttled
	if redraws(out.String()) != 1 {
		t.Fatalf("redrawn within the interval: %q", out.String())
	}
	clk.advance(1500 * time.Millisecond) // 2 s in, 20 MiB: 10 MiB/s, 80 MiB left: 8 s
	p.Update(mib(20), mib(100))
	expectLine(t, trimPad(lastLine(out.String())), "data [##........]  20% 20.0 MiB/100.0 MiB 10.0 MiB/s ETA 0:08")

	clk.advance(100 * time.Millisecond)
	p.Update(mib(21), mib(100)) // throttled, but Finish draws it
	if redraws(out.String()) != 2 {
		t.Fatalf("want 2 redraws, got %d", redraws(out.String()))
	}
	clk.advance(7900 * time.Millisecond)
	p.Update(mib(100), mib(100)) // final update draws despite the throttle
	expectLine(t, trimPad(lastLine(out.String())), "data [##########] 100% 100.0 MiB/100.0 MiB 10.0 MiB/s in 0:10")
	p.Finish()
	if !strings.HasSuffix(out.String(), "\n") {
		t.Error("Finish did not end the line")
	}
}

func TestProgressResumedAndUnknownTotal(t *testing.T) {
	var out strings.Builder
	clk := newClock()
	p := &Progress{W: &out, Now: clk.now}
	// Resumed at 50 MiB: the rate counts only new bytes.
	p.Update(mib(50), -1)
	clk.advance(4 * time.Second)
	p.Update(mib(58), -1)
	expectLine(t, trimPad(lastLine(out.String())), "58.0 MiB 2.0 MiB/s")
	// A shorter line is padded to erase the longer one before it.
	clk.advance(time.Second)
	p.Update(10, -1) // restart from scratch
	l := lastLine(out.String())
	if !strings.HasPrefix(l, "10 B --/s") || len(l) != len("58.0 MiB 2.0 MiB/s") {
		t.Errorf("restart line %q", l)
	}
	p.Finish()
	if got := p.Line(); got != "10 B --/s" {
		t.Errorf("Line() = %q", got)
	}
}

func TestProgressNilWriterAndFinishBeforeUpdate(t *testing.T) {
	p := &Progress{}
	p.Finish()
	p.Update(1, 2)
	p.Finish()
}

func TestFormatters(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 170052171: "162.2 MiB", 3 << 30: "3.0 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q want %q", n, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0:00", 59 * time.Second: "0:59", 61 * time.Second: "1:01", 3723 * time.Second: "1:02:03", -time.Second: "0:00"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q want %q", d, got, want)
		}
	}
}
