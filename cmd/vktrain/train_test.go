package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTrainLogsProgress runs vktrain train with stderr going to a buffer (as to a
// file or a CI log): no progress bar is drawn, and plain progress lines come
// through the log instead (here a tenth of the 10-step epoch each), the last one
// at the end of the epoch; the expected training time is printed after the first
// steps. With --quiet there are no progress lines.
func TestTrainLogsProgress(t *testing.T) {
	args := []string{"train", "--data", "synthetic", "--pretrained", "none", "--image-size", "64", "--batch", "2",
		"--epochs", "1", "--train-limit", "20", "--test-limit", "4", "--log-every", "5"}
	out, stderr, code := runCmd(t, append(args, "--out", filepath.Join(t.TempDir(), "run"))...)
	if code != 0 {
		t.Fatalf("train: code %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "\r") || strings.Contains(stderr, "[====") {
		t.Errorf("a progress bar was drawn into a non-terminal:\n%s", stderr)
	}
	lines := regexp.MustCompile(`msg=training epoch=1/1 step=(\d+) of=10 images_per_s=[0-9.]+ loss=[0-9.]+ eta=\S+`).FindAllStringSubmatch(stderr, -1)
	if len(lines) != 10 || lines[len(lines)-1][1] != "10" {
		t.Errorf("%d progress lines (want one per step of the 10, the last at step 10):\n%s", len(lines), stderr)
	}
	if !regexp.MustCompile(`Expected training time: about \S+ for 2 more steps at [0-9.]+ images/s \(measured over steps 3-8\)`).MatchString(out) {
		t.Errorf("no expected training time in\n%s", out)
	}
	_, stderr, code = runCmd(t, append(args, "--quiet", "--out", filepath.Join(t.TempDir(), "run"))...)
	if code != 0 {
		t.Fatalf("train --quiet: code %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "msg=training epoch=") {
		t.Errorf("--quiet still logged progress:\n%s", stderr)
	}
}

// TestTrainLabelSmoothingFlag: --label-smoothing outside [0, 1) is refused
// while the flags are parsed, before anything is built, naming the flag.
func TestTrainLabelSmoothingFlag(t *testing.T) {
	for _, v := range []string{"1", "-0.1", "1.5", "NaN", "abc"} {
		_, stderr, code := runCmd(t, "train", "--data", "synthetic", "--label-smoothing", v, "--out", filepath.Join(t.TempDir(), "run"))
		if code == 0 || !strings.Contains(stderr, "-label-smoothing") || !strings.Contains(stderr, "[0, 1)") {
			t.Errorf("--label-smoothing %s: code %d, stderr:\n%s", v, code, stderr)
		}
	}
}
