package watch

import (
	"bufio"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"vktrain/train/metrics"
	"vktrain/viz/watch/xvfbtest"
)

// The window tests run the window loop in a child process (this test binary
// started again with childEnv set), because GLFW must own the main OS thread
// and may not start twice in one process. The child talks JSON lines on
// stdout (one per presented frame, then a summary) and takes commands on
// stdin ("close", "resize W H").

const childEnv = "VKTRAIN_WATCH_TEST_CHILD"

func init() {
	// The child's window loop runs on the main goroutine: keep it on the main
	// OS thread, as GLFW requires.
	runtime.LockOSThread()
}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(child())
	}
	os.Exit(m.Run())
}

// event is one line the child writes.
type event struct {
	N        int    `json:"n,omitempty"`
	Reason   string `json:"reason,omitempty"`
	X        int    `json:"x"`
	Y        int    `json:"y"`
	W        int    `json:"w,omitempty"`
	H        int    `json:"h,omitempty"`
	Epochs   int    `json:"epochs"`
	PNG      string `json:"png,omitempty"`
	Format   string `json:"format,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Frames   int    `json:"frames,omitempty"`
	Messages []string
	Err      string `json:"err,omitempty"`
}

// child runs the window on the main thread with the settings in the
// environment and reports frames on stdout.
func child() int {
	out := json.NewEncoder(os.Stdout)
	dump := os.Getenv("WATCH_DUMP")
	reqs := make(chan Request, 4)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch {
			case len(f) == 1 && f[0] == "close":
				reqs <- Request{Close: true}
			case len(f) == 3 && f[0] == "resize":
				w, _ := strconv.Atoi(f[1])
				h, _ := strconv.Atoi(f[2])
				reqs <- Request{Resize: image.Pt(w, h)}
			}
			Wake()
		}
	}()
	frames, _ := strconv.Atoi(os.Getenv("WATCH_FRAMES"))
	opts := Options{
		RunDir: os.Getenv("WATCH_RUN"), Validate: true, Width: 800, Height: 600,
		Poll: 100 * time.Millisecond, Requests: reqs, Frames: frames,
		OnFrame: func(f Frame) {
			name := filepath.Join(dump, fmt.Sprintf("frame-%d.png", f.N))
			fh, err := os.Create(name)
			if err == nil {
				err = png.Encode(fh, f.Image)
				if cerr := fh.Close(); err == nil {
					err = cerr
				}
			}
			e := event{N: f.N, Reason: f.Reason, X: f.WindowPos.X, Y: f.WindowPos.Y, W: f.Extent.X, H: f.Extent.Y,
				Epochs: f.Epochs, PNG: name, Format: f.Format}
			if err != nil {
				e.Err = err.Error()
			}
			_ = out.Encode(e)
		},
	}
	res, err := Run(opts)
	e := event{Done: true}
	if res != nil {
		e.Frames = res.Frames
		for _, m := range res.Messages {
			e.Messages = append(e.Messages, m.String())
		}
	}
	if err != nil {
		e.Err = err.Error()
	}
	_ = out.Encode(e)
	if err != nil {
		return 1
	}
	return 0
}

// screenshot dumps the X screen with xwd.
func screenshot(t *testing.T, display string) *image.RGBA {
	t.Helper()
	bin, err := exec.LookPath("xwd")
	if err != nil {
		t.Skip("xwd not installed (apt-get install x11-apps): skipping the window test")
	}
	out, err := exec.Command(bin, "-root", "-silent", "-display", display).Output()
	if err != nil {
		t.Fatalf("xwd: %v", err)
	}
	img, err := readXWD(out)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func readPNG(t *testing.T, path string) *image.RGBA {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	rgba, ok := img.(*image.RGBA)
	if !ok {
		b := img.Bounds()
		rgba = image.NewRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				rgba.Set(x, y, img.At(x, y))
			}
		}
	}
	return rgba
}

// mismatch counts the pixels of want that differ (by more than 2 in a
// channel) from the screen at pos, and the pixels off the screen.
func mismatch(screen, want *image.RGBA, pos image.Point) int {
	n := 0
	b := want.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := image.Pt(pos.X+x-b.Min.X, pos.Y+y-b.Min.Y)
			if !p.In(screen.Rect) {
				n++
				continue
			}
			s := screen.RGBAAt(p.X, p.Y)
			w := want.RGBAAt(x, y)
			if absDiff(s.R, w.R) > 2 || absDiff(s.G, w.G) > 2 || absDiff(s.B, w.B) > 2 {
				n++
			}
		}
	}
	return n
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

// distinctColours counts the different colours of img, up to limit.
func distinctColours(img *image.RGBA, limit int) int {
	seen := map[[3]uint8]bool{}
	for i := 0; i+3 < len(img.Pix) && len(seen) < limit; i += 4 {
		seen[[3]uint8{img.Pix[i], img.Pix[i+1], img.Pix[i+2]}] = true
	}
	return len(seen)
}

var classes = []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"}

// writeEpoch appends the steps and the record of epoch e to the metrics file.
func writeEpoch(t *testing.T, path string, e int, config bool) {
	t.Helper()
	w, err := metrics.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if config {
		must(t, w.WriteConfig(metrics.Config{Model: "alexnet", Dataset: "cifar10", ImageSize: 224, Batch: 64, Epochs: 3,
			LR: 0.01, Momentum: 0.9, Classes: classes, StepsPerEpoch: 40, LogEvery: 10, Time: time.Unix(1.7e9, 0)}))
	}
	for s := 1; s <= 4; s++ {
		step := (e-1)*40 + 10*s
		must(t, w.WriteStep(metrics.Step{Epoch: e, Step: step, RunningLoss: 2.2 * math.Exp(-float64(step)/60), TrainAcc: 0.2 + 0.002*float64(step),
			ImagesPerS: 64, Time: time.Unix(1.7e9+int64(step), 0)}))
	}
	per := make([]float64, len(classes))
	for i := range per {
		per[i] = math.Min(1, 0.3+0.2*float64(e)+0.03*float64(i))
	}
	must(t, w.WriteEpoch(metrics.Epoch{Epoch: e, Step: 40 * e, TrainLoss: 2 / float64(e), TrainAcc: 0.3 * float64(e), TestLoss: 1.8 / float64(e),
		TestAcc: 0.35 * float64(e), PerClassAcc: per, Time: time.Unix(1.7e9+int64(40*e), 0)}))
	must(t, w.Close())
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// watcher is a running child process showing a window.
type watcher struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan event
	last   event
	frames []event
}

func startWatcher(t *testing.T, display, runDir string, frames int) *watcher {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", "DISPLAY="+display, "WATCH_RUN="+runDir, "WATCH_DUMP="+t.TempDir(),
		"WATCH_FRAMES="+strconv.Itoa(frames))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	must(t, err)
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	w := &watcher{t: t, cmd: cmd, stdin: stdin, events: make(chan event, 64)}
	go func() {
		defer close(w.events)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var e event
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				continue // not ours (e.g. a driver's chatter)
			}
			w.events <- e
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("watcher stderr:\n%s", stderr.String())
		}
	})
	return w
}

// next waits for an event that ok accepts, failing after timeout.
func (w *watcher) next(what string, timeout time.Duration, ok func(event) bool) event {
	w.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e, open := <-w.events:
			if !open {
				w.t.Fatalf("watcher exited while waiting for %s", what)
			}
			if e.Err != "" {
				w.t.Fatalf("watcher: %s", e.Err)
			}
			if !e.Done {
				w.frames = append(w.frames, e)
			}
			w.last = e
			if ok(e) {
				return e
			}
			if e.Done {
				w.t.Fatalf("watcher finished while waiting for %s", what)
			}
		case <-deadline:
			w.t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

func (w *watcher) send(cmd string) {
	w.t.Helper()
	if _, err := io.WriteString(w.stdin, cmd+"\n"); err != nil {
		w.t.Fatalf("sending %q: %v", cmd, err)
	}
}

// settle waits until no frame came for a moment, so that the screen holds the
// last one.
func (w *watcher) settle() {
	for {
		select {
		case e, open := <-w.events:
			if !open {
				return
			}
			if !e.Done {
				w.frames = append(w.frames, e)
			}
			w.last = e
		case <-time.After(300 * time.Millisecond):
			return
		}
	}
}

// checkShown compares the screen with the picture of frame f: every pixel of
// the window's area must match.
func checkShown(t *testing.T, display string, f event) (*image.RGBA, *image.RGBA) {
	t.Helper()
	want := readPNG(t, f.PNG)
	if want.Rect.Dx() != f.W || want.Rect.Dy() != f.H {
		t.Fatalf("frame %d: picture %v for a %dx%d swapchain", f.N, want.Rect.Size(), f.W, f.H)
	}
	if n := distinctColours(want, 50); n < 20 {
		t.Fatalf("frame %d has only %d colours: not the figures", f.N, n)
	}
	screen := screenshot(t, display)
	if dir := os.Getenv("VKTRAIN_WATCH_SCREENSHOTS"); dir != "" { // keep them for a look
		name := filepath.Join(dir, fmt.Sprintf("%s-frame%d.png", t.Name(), f.N))
		if fh, err := os.Create(name); err == nil {
			_ = png.Encode(fh, screen)
			fh.Close()
		}
	}
	if n := mismatch(screen, want, image.Pt(f.X, f.Y)); n != 0 {
		path := filepath.Join(t.TempDir(), "screen.png")
		if fh, err := os.Create(path); err == nil {
			_ = png.Encode(fh, screen)
			fh.Close()
		}
		t.Fatalf("frame %d (%s): %d of %d window pixels at %d,%d differ from the presented picture (screen saved as %s)",
			f.N, f.Reason, n, f.W*f.H, f.X, f.Y, path)
	}
	return screen, want
}

// TestWindowShowsFiguresAndRedraws opens the window on a fresh Xvfb, checks
// that the screen shows exactly the presented figures, that appending an
// epoch to metrics.jsonl redraws them, that a resize recreates the swapchain,
// and that closing is clean (no validation messages, exit status 0).
func TestWindowShowsFiguresAndRedraws(t *testing.T) {
	display := xvfbtest.Start(t)
	runDir := t.TempDir()
	path := filepath.Join(runDir, metrics.FileName)
	writeEpoch(t, path, 1, true)
	w := startWatcher(t, display, runDir, 0)

	f1 := w.next("first frame", 20*time.Second, func(e event) bool { return e.N >= 1 })
	if f1.Reason != ReasonFirst || f1.Epochs != 1 || f1.W != 800 || f1.H != 600 {
		t.Fatalf("first frame %+v, want reason %q, 1 epoch, 800x600", f1, ReasonFirst)
	}
	w.settle()
	screen1, pic1 := checkShown(t, display, f1)
	t.Logf("frame 1 shown at %d,%d in %s", f1.X, f1.Y, f1.Format)

	// Training goes on in "another process": the file grows.
	writeEpoch(t, path, 2, false)
	f2 := w.next("redraw after the append", 10*time.Second, func(e event) bool { return e.Reason == ReasonMetrics && e.Epochs == 2 })
	w.settle()
	screen2, pic2 := checkShown(t, display, f2)
	// The check can tell pictures apart: the new figures differ from the old,
	// and the screen no longer shows the old ones.
	if n := mismatch(pic1, pic2, image.Point{}); n < 1000 {
		t.Fatalf("frames 1 and 2 differ in only %d pixels: no redraw with the new epoch", n)
	}
	if n := mismatch(screen2, pic1, image.Pt(f1.X, f1.Y)); n < 1000 {
		t.Fatalf("the screen still matches frame 1 (only %d pixels differ)", n)
	}
	if n := mismatch(screen1, pic2, image.Pt(f2.X, f2.Y)); n < 1000 {
		t.Fatalf("the first screenshot matches frame 2 (only %d pixels differ)", n)
	}

	// A resize recreates the swapchain and draws at the new size.
	w.send("resize 640 480")
	f3 := w.next("redraw after the resize", 10*time.Second, func(e event) bool { return e.W == 640 && e.H == 480 })
	w.settle()
	checkShown(t, display, f3)

	w.send("close")
	done := w.next("the window to close", 10*time.Second, func(e event) bool { return e.Done })
	if done.Frames != len(w.frames) {
		t.Errorf("summary says %d frames, %d reported", done.Frames, len(w.frames))
	}
	for _, m := range done.Messages {
		t.Errorf("validation: %s", m)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("watcher exit: %v", err)
	}
}

// TestWindowWaitsForMetrics starts on a run directory without metrics.jsonl:
// the window says it is waiting, then shows the figures once the file appears.
func TestWindowWaitsForMetrics(t *testing.T) {
	display := xvfbtest.Start(t)
	runDir := t.TempDir()
	w := startWatcher(t, display, runDir, 0)
	f1 := w.next("first frame", 20*time.Second, func(e event) bool { return e.N >= 1 })
	if f1.Epochs != 0 {
		t.Fatalf("first frame shows %d epochs of a missing file", f1.Epochs)
	}
	w.settle()
	pic := readPNG(t, f1.PNG)
	if n := distinctColours(pic, 50); n < 2 {
		t.Fatalf("the waiting frame is blank")
	}
	screen := screenshot(t, display)
	if n := mismatch(screen, pic, image.Pt(f1.X, f1.Y)); n != 0 {
		t.Fatalf("%d pixels of the waiting message differ on screen", n)
	}
	writeEpoch(t, filepath.Join(runDir, metrics.FileName), 1, true)
	f2 := w.next("figures after the file appeared", 10*time.Second, func(e event) bool { return e.Epochs == 1 })
	if f2.Reason != ReasonMetrics {
		t.Errorf("frame reason %q, want %q", f2.Reason, ReasonMetrics)
	}
	w.settle()
	checkShown(t, display, f2)
	w.send("close")
	done := w.next("the window to close", 10*time.Second, func(e event) bool { return e.Done })
	for _, m := range done.Messages {
		t.Errorf("validation: %s", m)
	}
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("watcher exit: %v", err)
	}
}

// TestWindowStopsAfterFrames checks Options.Frames: the loop ends by itself,
// cleanly, after that many frames.
func TestWindowStopsAfterFrames(t *testing.T) {
	display := xvfbtest.Start(t)
	runDir := t.TempDir()
	writeEpoch(t, filepath.Join(runDir, metrics.FileName), 1, true)
	w := startWatcher(t, display, runDir, 1)
	done := w.next("the loop to stop after 1 frame", 20*time.Second, func(e event) bool { return e.Done })
	if done.Frames != 1 || len(w.frames) != 1 || len(done.Messages) > 0 {
		t.Fatalf("summary %+v after %d frame events, want 1 frame and no validation messages", done, len(w.frames))
	}
	if err := w.cmd.Wait(); err != nil {
		t.Errorf("watcher exit: %v", err)
	}
}
