package train

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLabelSmoothingConfig: Config.LabelSmoothing must lie in [0, 1), is
// saved in config.json (omitted at 0, so older runs read as 0) and read back
// as a resumed run reads it, and reaches the network of training and
// evaluation alike (the network applies it to the training step only).
func TestLabelSmoothingConfig(t *testing.T) {
	for _, eps := range []float64{-0.1, 1, 1.5, math.NaN(), math.Inf(1)} {
		c := Defaults()
		c.LabelSmoothing = eps
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "label smoothing") {
			t.Errorf("label smoothing %v: %v", eps, err)
		}
	}
	for _, eps := range []float64{0, 0.1, 0.999} {
		c := Defaults()
		c.LabelSmoothing = eps
		if err := c.Validate(); err != nil {
			t.Errorf("label smoothing %v: %v", eps, err)
		}
	}
	for _, s := range []string{"-0.1", "1", "x", "NaN", ""} {
		if _, err := ParseLabelSmoothing(s); err == nil {
			t.Errorf("ParseLabelSmoothing(%q) accepted", s)
		}
	}
	if v, err := ParseLabelSmoothing("0.1"); v != 0.1 || err != nil {
		t.Errorf("ParseLabelSmoothing(0.1) = %v, %v", v, err)
	}

	dir := t.TempDir()
	c := Defaults()
	if err := writeConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, configFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "label_smoothing") {
		t.Errorf("config.json names label_smoothing at 0:\n%s", b)
	}
	c.LabelSmoothing = 0.1
	if err := writeConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	rc, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rc.LabelSmoothing != 0.1 {
		t.Errorf("config.json's label smoothing %v, want 0.1", rc.LabelSmoothing)
	}
	for _, train := range []bool{true, false} {
		if got := NetworkConfigFor(rc, train).LabelSmoothing; got != 0.1 {
			t.Errorf("network (train %v) label smoothing %v, want 0.1", train, got)
		}
	}
}
