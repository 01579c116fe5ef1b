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

// TestDropoutConfig: Config.Dropout must lie in [0, 1), is saved in
// config.json (omitted when unset, so older runs keep the model's own 0.5;
// 0 saved as 0) and read back as a resumed run reads it, and sets the
// probability of both of AlexNet's Dropout layers in the model that training
// lays out; a ResNet, which has none, takes only 0.
func TestDropoutConfig(t *testing.T) {
	for _, p := range []float64{-0.1, 1, 1.5, math.NaN(), math.Inf(1)} {
		c := Defaults()
		c.Dropout = &p
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "dropout") {
			t.Errorf("dropout %v: %v", p, err)
		}
	}
	for _, s := range []string{"-0.1", "1", "x", "NaN", ""} {
		if _, err := ParseDropout(s); err == nil {
			t.Errorf("ParseDropout(%q) accepted", s)
		}
	}
	if v, err := ParseDropout("0"); v != 0 || err != nil {
		t.Errorf("ParseDropout(0) = %v, %v", v, err)
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
	if strings.Contains(string(b), "dropout") || strings.Contains(string(b), "data_order") {
		t.Errorf("config.json names dropout or data_order when they are unset:\n%s", b)
	}
	rc, err := ReadConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := BuildModelFor(rc)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(m.String(), "Dropout(p=0.5, inplace=False)"); n != 2 {
		t.Errorf("unset dropout: %d Dropout(p=0.5) layers, want AlexNet's 2:\n%s", n, m)
	}

	zero := 0.0
	c.Dropout, c.DataOrder = &zero, OrderSequential
	if err := writeConfig(dir, c); err != nil {
		t.Fatal(err)
	}
	if rc, err = ReadConfig(dir); err != nil {
		t.Fatal(err)
	}
	if rc.Dropout == nil || *rc.Dropout != 0 || rc.DataOrder != OrderSequential {
		t.Fatalf("config.json's dropout %s and data order %q, want 0 and sequential", dropoutName(rc), rc.DataOrder)
	}
	if m, err = BuildModelFor(rc); err != nil {
		t.Fatal(err)
	}
	if s := m.String(); strings.Count(s, "Dropout(p=0.0, inplace=False)") != 2 || strings.Contains(s, "p=0.5") {
		t.Errorf("dropout 0: the model still drops:\n%s", s)
	}

	r := Defaults()
	r.Model, r.Pretrained, r.Dropout = ModelResNet18, PretrainedNone, &zero
	if _, err := BuildModelFor(r); err != nil {
		t.Errorf("ResNet-18 with dropout 0: %v", err)
	}
	p := 0.3
	r.Dropout = &p
	if _, err := BuildModelFor(r); err == nil || !strings.Contains(err.Error(), "no Dropout") {
		t.Errorf("ResNet-18 with dropout 0.3: %v; want an error saying it has no Dropout layer", err)
	}
}
