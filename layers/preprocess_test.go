package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// ppTolerance is the absolute tolerance of preprocessed values against
// ref.Preprocess. The kernel's source coordinates and weights are exact
// integers until one division (a few ulps of a weight in [0, 1]); the blend of
// bytes up to 255 and the normalization add a few float32 roundings of values
// up to about 255/(255*std) = 4.5: about 1e-6 in all.
const ppTolerance = 1e-5

var imagenetMean, imagenetStd = [3]float64{0.485, 0.456, 0.406}, [3]float64{0.229, 0.224, 0.225}

// ppCase preprocesses n random records on the device, submitting one recorded
// stream once per step (with the step state's step set to each), and compares
// each result with ref.Preprocess in the layout p asks for.
func ppCase(t *testing.T, r *Runtime, rng *rand.Rand, name string, p PreprocessParams, n int, seed uint64, steps []uint64, augment bool) {
	t.Helper()
	recs := make([]byte, n*p.RecordBytes())
	for i := range recs {
		recs[i] = byte(rng.IntN(256))
	}
	if len(recs) > 8 {
		recs[0], recs[1], recs[2] = 0, 255, 0 // sharp edges
	}
	b, err := r.NewRecordBuffer("records", p, n)
	must(t, err)
	t.Cleanup(b.Free)
	must(t, WriteRecords(b, p, 0, recs))
	out := zeros(t, r, "input", 3*n*p.Crop*p.Crop)
	var state *StepState
	if augment {
		state, err = r.NewStepState("state")
		must(t, err)
		t.Cleanup(state.Free)
		must(t, state.SetSeed(seed))
	}
	s, err := r.Dev.NewStream("preprocess", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, r.Preprocess(s, p, b.Whole(), n, state, out))
	for _, step := range steps {
		if state != nil {
			must(t, state.SetStep(step))
		}
		must(t, s.Run())
		rp := ref.PreprocessParams{SrcH: p.SrcH, SrcW: p.SrcW, Resize: p.Resize, Crop: p.Crop, Mean: p.Mean, Std: p.Std, Seed: seed, Step: step}
		if augment {
			rp.Pad, rp.Flip = p.Pad, p.Flip
		}
		want, err := ref.Preprocess(rp, recs, n)
		must(t, err)
		if !p.NCHW {
			want = ppToCNHW(want, n, p.Crop*p.Crop)
		}
		bound := make([]float64, len(want))
		for i := range bound {
			bound[i] = ppTolerance
		}
		compareBound(t, fmt.Sprintf("%s/step%d", name, step), download(t, out), want, bound)
	}
}

// ppToCNHW reorders an N x 3 x HW tensor to 3 x N x HW.
func ppToCNHW(v []float64, n, hw int) []float64 {
	out := make([]float64, len(v))
	for i := 0; i < n; i++ {
		for c := 0; c < 3; c++ {
			copy(out[(c*n+i)*hw:(c*n+i+1)*hw], v[(i*3+c)*hw:(i*3+c+1)*hw])
		}
	}
	return out
}

// TestPreprocess compares the kernel with ref.Preprocess: AlexNet's 32->256->224,
// an upscale without crop (32->64), an odd crop (40 -> 37, offset 2 by
// round-half-to-even), a downscale, odd source sizes (records not a whole number
// of words), each in NCHW and CNHW, without and with augmentation over several
// steps.
func TestPreprocess(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(31, 32))
	cifar := func(resize, crop, pad int, flip bool) PreprocessParams {
		return PreprocessParams{SrcH: 32, SrcW: 32, Resize: resize, Crop: crop, Mean: imagenetMean, Std: imagenetStd, Pad: pad, Flip: flip}
	}
	cases := []struct {
		name string
		p    PreprocessParams
		n    int
	}{
		{"32-256-224", cifar(256, 224, 16, true), 3},
		{"32-64", cifar(64, 64, 8, true), 5},
		{"32-40-37", cifar(40, 37, 3, true), 4},
		{"32-20-17", cifar(20, 17, 2, false), 3},
		{"5x7-9-6", PreprocessParams{SrcH: 5, SrcW: 7, Resize: 9, Crop: 6, Mean: [3]float64{0.5, 0.4, 0.3}, Std: [3]float64{0.2, 0.3, 0.25}, Pad: 0, Flip: true}, 3},
	}
	if CenterCropOffset(40, 37) != 2 || CenterCropOffset(256, 224) != 16 || CenterCropOffset(6, 5) != 0 {
		t.Fatal("CenterCropOffset")
	}
	for _, c := range cases {
		for _, nchw := range []bool{false, true} {
			p := c.p
			p.NCHW = nchw
			layout := map[bool]string{false: "cnhw", true: "nchw"}[nchw]
			ppCase(t, r, rng, c.name+"/"+layout+"/plain", p, c.n, 0, []uint64{0}, false)
			ppCase(t, r, rng, c.name+"/"+layout+"/augment", p, c.n, 0x1234_5678_9abc, []uint64{0, 1, 7, 1 << 33}, true)
		}
	}
}

// TestPreprocessChunked lowers the storage limit so that the output (and the
// records) are bound in several aligned parts: per channel and image run for
// CNHW, per image run for NCHW.
func TestPreprocessChunked(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(33, 34))
	defer func(l int64) { r.storageLimit = l }(r.storageLimit)
	r.storageLimit = 3 * 1024 // under two 10x10x3 outputs per binding, one 3x13x13 record
	for _, nchw := range []bool{false, true} {
		p := PreprocessParams{SrcH: 13, SrcW: 13, Resize: 14, Crop: 10, Mean: imagenetMean, Std: imagenetStd, Pad: 2, Flip: true, NCHW: nchw}
		ppCase(t, r, rng, fmt.Sprintf("nchw=%v", nchw), p, 7, 99, []uint64{3, 4}, true)
	}
}

func TestPreprocessErrors(t *testing.T) {
	r := openRuntime(t)
	good := PreprocessParams{SrcH: 4, SrcW: 4, Resize: 4, Crop: 4, Std: [3]float64{1, 1, 1}}
	b, err := r.NewRecordBuffer("records", good, 2)
	must(t, err)
	t.Cleanup(b.Free)
	out := zeros(t, r, "out", 3*2*16)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	bad := []PreprocessParams{good, good, good, good}
	bad[0].Crop = 5
	bad[1].Std[1] = 0
	bad[2].Pad = -1
	bad[3].SrcW = 0
	for i, p := range bad {
		if err := r.Preprocess(s, p, b.Whole(), 2, nil, out); err == nil {
			t.Errorf("params %d accepted", i)
		}
	}
	if err := r.Preprocess(s, good, b.Whole(), 3, nil, out); err == nil {
		t.Error("wrong output size accepted")
	}
	if err := r.Preprocess(s, good, b.Slice(0, 64), 2, nil, out); err == nil {
		t.Error("short records accepted")
	}
	if err := WriteRecords(b, good, 0, make([]byte, 47)); err == nil {
		t.Error("partial record accepted")
	}
}

func TestPackRecords(t *testing.T) {
	w := PackRecords(nil, []byte{1, 2, 3, 4, 5, 6})
	if len(w) != 2 || w[0] != 0x04030201 || w[1] != 0x0605 {
		t.Fatalf("PackRecords = %#x", w)
	}
	if w := PackRecords(w, nil); len(w) != 0 {
		t.Fatal(w)
	}
}
