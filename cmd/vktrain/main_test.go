package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsage(t *testing.T) {
	_, stderr, code := runCmd(t)
	if code != 2 || !strings.Contains(stderr, "devices") {
		t.Fatalf("no args: code %d, stderr %q", code, stderr)
	}
	if _, stderr, code := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(stderr, `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: code %d, stderr %q", code, stderr)
	}
}

func TestDevicesListsAndChooses(t *testing.T) {
	out, stderr, code := runCmd(t, "devices")
	if code != 0 {
		t.Fatalf("devices: code %d: %s", code, stderr)
	}
	for _, want := range []string{"type", "driver", "subgroup size", "shared memory", "storage buffer", "chosen: 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("devices output lacks %q:\n%s", want, out)
		}
	}
	if _, stderr, code := runCmd(t, "devices", "--device", "no-such-gpu"); code != 1 || !strings.Contains(stderr, "no Vulkan device matches") {
		t.Errorf("bad --device: code %d, stderr %q", code, stderr)
	}
}

func TestSmoke(t *testing.T) {
	out, stderr, code := runCmd(t, "smoke", "--validate", "-n", "1000")
	if code != 0 || !strings.Contains(out, "all kernels correct") {
		t.Fatalf("smoke: code %d\n%s\n%s", code, out, stderr)
	}
}

func TestPlot(t *testing.T) {
	src, err := os.ReadFile("../../viz/testdata/run1/metrics.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	a, b := t.TempDir(), t.TempDir()
	for _, d := range []string{a, b} {
		if err := os.WriteFile(filepath.Join(d, "metrics.jsonl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, stderr, code := runCmd(t, "plot", a, b)
	if code != 0 {
		t.Fatalf("plot: code %d: %s", code, stderr)
	}
	for _, f := range []string{filepath.Join(a, "loss.png"), filepath.Join(a, "per_class.png"), filepath.Join(b, "confusion.png"), filepath.Join(a, "compare.png")} {
		if _, err := os.Stat(f); err != nil || !strings.Contains(out, f) {
			t.Errorf("%s not written or not reported: %v\n%s", f, err, out)
		}
	}
	checkPNGSize(t, filepath.Join(a, "compare.png"), 800, 500) // per run: no seeds to group

	// Runs named NAME-seedN: compare.png in --out, the grouped two-panel figure.
	root, out2 := t.TempDir(), t.TempDir()
	var dirs []string
	for _, name := range []string{"vktrain-seed1", "torch-seed1", "vktrain-seed2", "torch-seed2"} {
		d := filepath.Join(root, name)
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "metrics.jsonl"), src, 0o644); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, d)
	}
	out, stderr, code = runCmd(t, append([]string{"plot", "--out", out2}, dirs...)...)
	if f := filepath.Join(out2, "compare.png"); code != 0 || !strings.Contains(out, f) {
		t.Fatalf("plot seeds: code %d, %s not reported: %s\n%s", code, f, stderr, out)
	}
	checkPNGSize(t, filepath.Join(out2, "compare.png"), 1200, 500)

	if _, _, code := runCmd(t, "plot"); code != 1 {
		t.Errorf("plot without a directory: code %d", code)
	}
}

// checkPNGSize checks that path is a PNG image of w by h pixels.
func checkPNGSize(t *testing.T, path string, w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg, err := png.DecodeConfig(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if cfg.Width != w || cfg.Height != h {
		t.Errorf("%s is %dx%d, want %dx%d", path, cfg.Width, cfg.Height, w, h)
	}
}
