package main

import (
	"strings"
	"testing"
)

// TestTune fills a fresh tuning cache at a small shape (training and batch-1
// inference), then reads it back: the second run times nothing.
func TestTune(t *testing.T) {
	t.Setenv("VKTRAIN_CACHE", t.TempDir())
	args := []string{"tune", "--image-size", "64", "--batch", "2", "--eval-batch", "1", "--budget", "1ms"}
	out, stderr, code := runCmd(t, args...)
	if code != 0 {
		t.Fatalf("tune: code %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{"training at 64, batch 2", "inference at 64, batch 1", "features.3", "backward-weights", "winograd4/", "texel", "tiled", "classifier.1", "timed now"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		// features.0 (11x11 stride 4) has one algorithm, so only its GEMM kernel to choose.
		if strings.HasPrefix(line, "features.0 ") && (strings.Contains(line, "winograd") || !strings.Contains(line, "im2col/tiled")) {
			t.Errorf("features.0: want im2col on both kernels only: %s", line)
		}
	}
	out, stderr, code = runCmd(t, args...)
	if code != 0 || strings.Contains(out, "timed now") || !strings.Contains(out, "cache (") {
		t.Errorf("second tune: code %d, want every pass from the cache:\n%s\n%s", code, out, stderr)
	}
	if _, stderr, code := runCmd(t, "tune", "--eval-batch", "1,x"); code != 1 || !strings.Contains(stderr, "--eval-batch") {
		t.Errorf("bad --eval-batch: code %d, %s", code, stderr)
	}
}
