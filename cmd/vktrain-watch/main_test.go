package main

import (
	"bufio"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"vktrain/viz/watch/xvfbtest"
)

// childEnv makes the test binary act as vktrain-watch (on the main thread, as
// GLFW needs) with the arguments in childArgs, separated by newlines.
const (
	childEnv  = "VKTRAIN_WATCH_CMD_CHILD"
	childArgs = "VKTRAIN_WATCH_CMD_ARGS"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(run(strings.Split(os.Getenv(childArgs), "\n"), os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func fixtureRun(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("../../viz/testdata/run1/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "metrics.jsonl"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"a", "b"},
		{"--width", "0", "dir"},
		{"--frames", "-1", "dir"},
		{"--no-such-flag", "dir"},
	} {
		var out, errb strings.Builder
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}

func TestOnceWritesPNG(t *testing.T) {
	dir := fixtureRun(t)
	for _, tc := range []struct {
		name string
		args func(png string) []string
		w, h int
	}{
		{"flags first", func(p string) []string { return []string{"--once", p, "--width", "640", "--height", "400", dir} }, 640, 400},
		{"flags after RUN_DIR", func(p string) []string { return []string{dir, "--once", p, "--width", "300", "--height", "500"} }, 300, 500},
		{"missing run", func(p string) []string { return []string{"--once", p, filepath.Join(dir, "nope")} }, 1200, 860},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "frame.png")
			var out, errb strings.Builder
			if code := run(tc.args(path), &out, &errb); code != 0 {
				t.Fatalf("exit %d: %s", code, errb.String())
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			img, err := png.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			if b := img.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Fatalf("PNG is %v, want %dx%d", b.Size(), tc.w, tc.h)
			}
			colours := map[[4]uint32]bool{}
			b := img.Bounds()
			for y := b.Min.Y; y < b.Max.Y; y += 3 {
				for x := b.Min.X; x < b.Max.X; x += 3 {
					r, g, bl, a := img.At(x, y).RGBA()
					colours[[4]uint32{r, g, bl, a}] = true
				}
			}
			if len(colours) < 5 {
				t.Fatalf("PNG has %d colours: blank", len(colours))
			}
		})
	}
}

func child(display string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1", childArgs+"="+strings.Join(args, "\n"), "DISPLAY="+display)
	return cmd
}

// TestFramesFlag runs vktrain-watch --validate --frames 1 in a window.
func TestFramesFlag(t *testing.T) {
	display := xvfbtest.Start(t)
	cmd := child(display, "--validate", "--frames", "1", fixtureRun(t))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("vktrain-watch: %v\n%s%s", err, out, stderr.String())
	}
	if want := "1 frames presented, 0 validation messages"; !strings.Contains(string(out), want) {
		t.Fatalf("output %q lacks %q", out, want)
	}
}

// TestInterruptClosesCleanly stops a running window with SIGINT.
func TestInterruptClosesCleanly(t *testing.T) {
	display := xvfbtest.Start(t)
	cmd := child(display, "-v", "--validate", fixtureRun(t))
	var out strings.Builder
	cmd.Stdout = &out
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	shown := make(chan struct{})
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		once := false
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if !once && strings.Contains(sc.Text(), "frame presented") {
				once = true
				close(shown)
			}
		}
	}()
	select {
	case <-shown:
	case <-time.After(20 * time.Second):
		t.Fatal("no frame presented in 20 s")
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGINT: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10 s after SIGINT")
	}
	if want := "0 validation messages"; !strings.Contains(out.String(), want) {
		t.Fatalf("output %q lacks %q", out.String(), want)
	}
}
