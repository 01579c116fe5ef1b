package main

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"vktrain/train"
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

// TestTrainDropoutAndOrderFlags: --dropout outside [0, 1) and an unknown
// --data-order are refused, naming the flag or the setting; --dropout 0 and
// --data-order sequential reach the run's config.json and the printed model.
func TestTrainDropoutAndOrderFlags(t *testing.T) {
	for _, v := range []string{"1", "-0.1", "NaN", "abc"} {
		_, stderr, code := runCmd(t, "train", "--data", "synthetic", "--dropout", v, "--out", filepath.Join(t.TempDir(), "run"))
		if code == 0 || !strings.Contains(stderr, "-dropout") || !strings.Contains(stderr, "[0, 1)") {
			t.Errorf("--dropout %s: code %d, stderr:\n%s", v, code, stderr)
		}
	}
	_, stderr, code := runCmd(t, "train", "--data", "synthetic", "--pretrained", "none", "--data-order", "random", "--out", filepath.Join(t.TempDir(), "run"))
	if code == 0 || !strings.Contains(stderr, `data order "random"`) {
		t.Errorf("--data-order random: code %d, stderr:\n%s", code, stderr)
	}
	dir := filepath.Join(t.TempDir(), "run")
	out, stderr, code := runCmd(t, "train", "--data", "synthetic", "--pretrained", "none", "--image-size", "64", "--batch", "2",
		"--epochs", "1", "--train-limit", "4", "--test-limit", "2", "--conv", "im2col", "--quiet",
		"--dropout", "0", "--data-order", "sequential", "--out", dir)
	if code != 0 {
		t.Fatalf("train: code %d\n%s", code, stderr)
	}
	if n := strings.Count(out, "Dropout(p=0.0, inplace=False)"); n != 2 {
		t.Errorf("the printed model after the surgery has %d Dropout(p=0.0), want 2:\n%s", n, out)
	}
	cfg, err := train.ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Dropout == nil || *cfg.Dropout != 0 || cfg.DataOrder != train.OrderSequential {
		got := "unset"
		if cfg.Dropout != nil {
			got = fmt.Sprint(*cfg.Dropout)
		}
		t.Errorf("config.json: dropout %s, data order %q; want 0 and sequential", got, cfg.DataOrder)
	}
}
