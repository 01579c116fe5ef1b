package weights

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// tinySpecs are the shapes the tiny AlexNet fixture was made with.
func tinySpecs() []Spec {
	return []Spec{
		{"features.0.weight", []int{4, 3, 3, 3}}, {"features.0.bias", []int{4}},
		{"features.3.weight", []int{6, 4, 3, 3}}, {"features.3.bias", []int{6}},
		{"features.6.weight", []int{8, 6, 3, 3}}, {"features.6.bias", []int{8}},
		{"features.8.weight", []int{8, 8, 3, 3}}, {"features.8.bias", []int{8}},
		{"features.10.weight", []int{6, 8, 3, 3}}, {"features.10.bias", []int{6}},
		{"classifier.1.weight", []int{16, 24}}, {"classifier.1.bias", []int{16}},
		{"classifier.4.weight", []int{16, 16}}, {"classifier.4.bias", []int{16}},
		{"classifier.6.weight", []int{10, 16}}, {"classifier.6.bias", []int{10}},
	}
}

func readTiny(t *testing.T) *StateDict {
	t.Helper()
	sd, err := ReadPTH(tinyZip)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestCheck(t *testing.T) {
	sd := readTiny(t)
	specs := tinySpecs()
	// Non-strict: the extra buffer is reported, not an error.
	missing, unexpected, err := sd.Check(specs, false)
	if err != nil || len(missing) != 0 || !slices.Equal(unexpected, []string{"extra.num_batches_tracked"}) {
		t.Fatalf("Check = %v, %v, %v", missing, unexpected, err)
	}
	// Strict: the same is an error.
	if _, _, err := sd.Check(specs, true); err == nil || !strings.Contains(err.Error(), "unexpected: extra.num_batches_tracked") {
		t.Fatalf("strict Check err = %v", err)
	}

	// A replaced classifier: two layers missing from the file side, one misshapen.
	specs = slices.DeleteFunc(specs, func(s Spec) bool { return strings.HasPrefix(s.Name, "classifier.6") })
	specs = append(specs, Spec{"fc.weight", []int{10, 1024}}, Spec{"a.bias", []int{1}})
	specs[0].Shape = []int{64, 3, 11, 11}
	missing, unexpected, err = sd.Check(specs, true)
	if !slices.Equal(missing, []string{"a.bias", "fc.weight"}) {
		t.Errorf("missing = %v", missing)
	}
	wantUnexpected := []string{"classifier.6.bias", "classifier.6.weight", "extra.num_batches_tracked"}
	if !slices.Equal(unexpected, wantUnexpected) {
		t.Errorf("unexpected = %v", unexpected)
	}
	var me *MismatchError
	if !errors.As(err, &me) || len(me.Shapes) != 1 || !slices.Equal(me.Missing, missing) || !slices.Equal(me.Unexpected, unexpected) {
		t.Fatalf("err = %#v", err)
	}
	msg := err.Error()
	for _, s := range []string{tinyZip + ": ", `"features.0.weight" has shape [4 3 3 3] in the file, want [64 3 11 11]`,
		"missing: a.bias, fc.weight", "unexpected: classifier.6.bias, classifier.6.weight, extra.num_batches_tracked"} {
		if !strings.Contains(msg, s) {
			t.Errorf("error %q lacks %q", msg, s)
		}
	}
	// Non-strict still fails on the shape, and only on the shape.
	_, _, err = sd.Check(specs, false)
	if !errors.As(err, &me) || len(me.Shapes) != 1 || me.Missing != nil || me.Unexpected != nil {
		t.Errorf("non-strict err = %v", err)
	}
	if _, _, err := sd.Check([]Spec{{"a", nil}, {"a", nil}}, false); err == nil {
		t.Error("a name wanted twice was accepted")
	}
}

func TestLoadInto(t *testing.T) {
	sd := readTiny(t)
	dst := map[string]*Tensor{}
	for _, s := range tinySpecs() {
		n, _ := numElements(s.Shape)
		dst[s.Name] = &Tensor{Shape: s.Shape, Data: make([]float32, n)}
	}
	dst["new.bias"] = &Tensor{Shape: []int{2}, Data: []float32{5, 5}}

	if _, _, err := sd.LoadInto(dst, true); err == nil {
		t.Fatal("strict LoadInto accepted a missing tensor")
	}
	if dst["features.0.weight"].Data[0] != 0 {
		t.Fatal("a failed LoadInto copied data")
	}
	missing, unexpected, err := sd.LoadInto(dst, false)
	if err != nil || !slices.Equal(missing, []string{"new.bias"}) || len(unexpected) != 1 {
		t.Fatalf("LoadInto = %v, %v, %v", missing, unexpected, err)
	}
	for name, d := range dst {
		if src, ok := sd.Get(name); ok && !slices.Equal(src.Data, d.Data) {
			t.Errorf("%s not copied", name)
		}
	}
	if !slices.Equal(dst["new.bias"].Data, []float32{5, 5}) {
		t.Error("a missing tensor's destination was touched")
	}

	dst["features.0.bias"].Shape = []int{5}
	dst["features.0.bias"].Data = make([]float32, 5)
	if _, _, err := sd.LoadInto(dst, false); err == nil || !strings.Contains(err.Error(), `"features.0.bias" has shape [4] in the file, want [5]`) {
		t.Errorf("misshapen LoadInto err = %v", err)
	}
	dst["features.0.bias"].Data = make([]float32, 3)
	if _, _, err := sd.LoadInto(dst, false); err == nil || !strings.Contains(err.Error(), "destination") {
		t.Errorf("bad destination err = %v", err)
	}
}

func TestAdd(t *testing.T) {
	var sd StateDict
	if err := sd.Add("a", &Tensor{Shape: []int{2}, Data: []float32{1, 2}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		name string
		t    *Tensor
	}{
		{"a", &Tensor{Data: []float32{1}}},
		{"", &Tensor{Data: []float32{1}}},
		{"b", &Tensor{Shape: []int{3}, Data: []float32{1}}},
		{"c", &Tensor{Shape: []int{-1}}},
		{"d", &Tensor{Shape: []int{math.MaxInt, 4}}},
	} {
		if err := sd.Add(bad.name, bad.t); err == nil {
			t.Errorf("Add(%q, %v) accepted", bad.name, bad.t.Shape)
		}
	}
	if sd.Len() != 1 || sd.NumElements() != 2 || (&Tensor{Shape: []int{2, 3}}).NumElements() != 6 {
		t.Error("Len or NumElements wrong")
	}
}

func TestHalfToFloat32(t *testing.T) {
	cases := map[uint16]float32{
		0x0000: 0, 0x3c00: 1, 0xc000: -2, 0x7bff: 65504, 0x0001: 1.0 / (1 << 24),
		0x8001: -1.0 / (1 << 24), 0x03ff: 1023.0 / (1 << 24), 0x0400: 1.0 / (1 << 14), 0x3555: 0.333251953125,
	}
	for h, want := range cases {
		if got := halfToFloat32(h); got != want {
			t.Errorf("halfToFloat32(%#04x) = %v, want %v", h, got, want)
		}
	}
	if !math.IsInf(float64(halfToFloat32(0x7c00)), 1) || !math.IsInf(float64(halfToFloat32(0xfc00)), -1) {
		t.Error("infinities")
	}
	if !math.IsNaN(float64(halfToFloat32(0x7e00))) {
		t.Error("NaN")
	}
	if got := halfToFloat32(0x8000); got != 0 || !math.Signbit(float64(got)) {
		t.Error("negative zero")
	}
}
