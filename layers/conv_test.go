package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// convCase is one convolution of the tests: ref's parameters, the fused ReLU,
// and the images per chunk (0: the whole batch in one chunk).
type convCase struct {
	p      ref.Conv2DParams
	relu   bool
	chunk  int
	accum  bool
	noGrad bool // no dx, as for conv1
	noBias bool // no bias (DropBias), as in ResNet
}

func (c convCase) String() string {
	p := c.p
	name := fmt.Sprintf("n%d_c%d_%dx%d_k%d_%dx%d_s%d,%d_p%d,%d_relu%v_chunk%d_acc%v", p.N, p.C, p.H, p.W, p.K, p.R, p.S,
		p.StrideH, p.StrideW, p.PadH, p.PadW, c.relu, c.chunk, c.accum)
	if c.noBias {
		name += "_nobias"
	}
	return name
}

func convCases() []convCase {
	P := func(n, c, h, w, k, r, s, st, pad int) ref.Conv2DParams {
		return ref.Conv2DParams{N: n, C: c, H: h, W: w, K: k, R: r, S: s, StrideH: st, StrideW: st, PadH: pad, PadW: pad}
	}
	asym := P(3, 3, 7, 5, 4, 3, 3, 2, 1)
	asym.StrideW, asym.PadW = 1, 0
	return []convCase{
		{p: P(1, 3, 7, 5, 4, 3, 3, 1, 1), relu: true},
		{p: P(3, 13, 7, 5, 5, 1, 1, 1, 0)},
		{p: P(3, 13, 7, 5, 5, 1, 1, 1, 0), chunk: 1, accum: true},
		{p: P(3, 3, 9, 7, 6, 5, 5, 2, 2), relu: true, chunk: 2},
		{p: P(3, 3, 23, 19, 8, 11, 11, 4, 2), relu: true, noGrad: true},          // conv1's shape, small
		{p: P(3, 3, 23, 19, 8, 11, 11, 4, 2), relu: true, chunk: 1, accum: true}, // chunked
		{p: P(2, 13, 7, 5, 3, 3, 3, 2, 0)},
		{p: P(3, 4, 8, 8, 8, 3, 3, 1, 1), relu: true, chunk: 2}, // vector reads of W (C*R*S = 36)
		{p: P(1, 3, 7, 5, 2, 5, 5, 1, 2)},
		{p: asym, relu: true, chunk: 1},
		{p: P(1, 3, 7, 5, 5, 3, 3, 1, 1), relu: true, noBias: true},
		{p: P(3, 5, 9, 7, 6, 3, 3, 2, 1), chunk: 2, accum: true, noBias: true},
	}
}

// TestConv2D checks forward, the ReLU mask, and the bias, weight and input
// gradients against the float64 references, for both GEMM variants, over odd
// shapes, strides, paddings, filter sizes and chunkings, with and without a
// bias.
func TestConv2D(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	variants(t, r, func(t *testing.T) {
		for _, c := range convCases() {
			t.Run(c.String(), func(t *testing.T) { checkConv(t, r, rng, c) })
		}
	})
}

// TestConv2DSplitBindings lowers the storage-buffer limit so that y (in the GEMM),
// the masked dy and dx are each bound in several runs.
func TestConv2DSplitBindings(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(13, 14))
	defer func(l int64) { r.storageLimit = l }(r.storageLimit)
	r.storageLimit = 700 // bytes; the scratch for one image (13*12 floats) still fits
	p := ref.Conv2DParams{N: 3, C: 13, H: 7, W: 5, K: 5, R: 1, S: 1, StrideH: 2, StrideW: 2}
	variants(t, r, func(t *testing.T) {
		checkConv(t, r, rng, convCase{p: p, relu: true, chunk: 1})
	})
}

// Host layout helpers: swap the two outer dimensions of an a x b x hw array.
func swapOuter64(v []float64, a, b, hw int) []float64 {
	out := make([]float64, len(v))
	for i := 0; i < a; i++ {
		for j := 0; j < b; j++ {
			copy(out[(j*a+i)*hw:(j*a+i+1)*hw], v[(i*b+j)*hw:(i*b+j+1)*hw])
		}
	}
	return out
}

// convAbs is |v| elementwise; nil (no bias) stays nil.
func convAbs(v []float64) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Abs(x)
	}
	return out
}

func checkConv(t *testing.T, r *Runtime, rng *rand.Rand, cc convCase) {
	p := cc.p
	must(t, p.Validate())
	cv, err := r.NewConv2D("conv", p.C, p.K, p.R, p.S, 1, 0, cc.relu)
	must(t, err)
	defer cv.Free()
	cv.StrideH, cv.StrideW, cv.PadH, cv.PadW = p.StrideH, p.StrideW, p.PadH, p.PadW
	oh, ow := cv.OutSize(p.H, p.W)
	if oh != p.OutH() || ow != p.OutW() {
		t.Fatalf("OutSize = %d, %d, want %d, %d", oh, ow, p.OutH(), p.OutW())
	}
	P, crs := oh*ow, p.C*p.R*p.S
	if cc.chunk > 0 {
		cv.ScratchBudget = int64(4 * crs * roundUp4(cc.chunk*P))
	}
	slen := cv.ScratchLen(p.N, p.H, p.W)
	g := p.N // images per chunk
	if cc.chunk > 0 {
		g = min(cc.chunk, p.N)
	}
	if want := crs * roundUp4(g*P); slen != want {
		t.Fatalf("ScratchLen = %d, want %d", slen, want)
	}

	// Host data in PyTorch's layouts (NCHW), uploaded as CNHW.
	xv, wv, bv := randn(rng, p.N*p.C*p.H*p.W), randn(rng, p.K*crs), randn(rng, p.K)
	dyv := randn(rng, p.N*p.K*P) // CNHW
	x := tensorWith(t, r, "x", swapOuter64(xv, p.N, p.C, p.H*p.W), p.C, p.N, p.H, p.W)
	must(t, cv.Weight.Upload(to32(wv)))
	must(t, cv.Bias.Upload(to32(bv)))
	var held []float64 // the bias a layer without one held before DropBias
	if cc.noBias {
		cv.DropBias()
		if cv.Bias != nil || cv.BiasGrad != nil {
			t.Fatal("DropBias left a bias or its gradient")
		}
		held, bv = bv, nil
	}
	gw0, gb0 := make([]float64, len(wv)), make([]float64, p.K)
	if cc.accum {
		gw0 = randn(rng, len(wv))
		must(t, cv.WeightGrad.Upload(to32(gw0)))
		if !cc.noBias {
			gb0 = randn(rng, p.K)
			must(t, cv.BiasGrad.Upload(to32(gb0)))
		}
	}
	y := zeros(t, r, "y", p.K, p.N, oh, ow)
	dy := tensorWith(t, r, "dy", dyv, p.K, p.N, oh, ow)
	var dx *Tensor
	if !cc.noGrad {
		dx = zeros(t, r, "dx", p.C, p.N, p.H, p.W)
	}
	scratch := zeros(t, r, "scratch", slen)
	run(t, r, func(s *vk.Stream) error {
		if err := r.Conv2DForward(s, cv, x, y, scratch); err != nil {
			return err
		}
		return r.Conv2DBackward(s, cv, x, y, dy, dx, scratch, cc.accum)
	})

	// Forward: |error| <= dotBound(C*R*S, sum |x w| + |b|) (no b without a bias).
	want, err := ref.Conv2DForward(p, xv, wv, bv)
	must(t, err)
	mag, err := ref.Conv2DForward(p, convAbs(xv), convAbs(wv), convAbs(bv))
	must(t, err)
	want, mag = swapOuter64(want, p.N, p.K, P), swapOuter64(mag, p.N, p.K, P)
	bound := make([]float64, len(want))
	for i := range want {
		if cc.relu {
			want[i] = math.Max(want[i], 0)
		}
		bound[i] = dotBound(crs, mag[i])
	}
	yv := download(t, y)
	compareBound(t, "y", yv, want, bound)
	if held != nil {
		checkNoBiasAdded(t, p, xv, wv, held, yv, bound, cc.relu)
	}

	// The ReLU mask is applied to dy in place, exactly, with the device's y.
	dym := append([]float64(nil), dyv...)
	if cc.relu {
		for i := range dym {
			if !(yv[i] > 0) {
				dym[i] = 0
			}
		}
	}
	compareBound(t, "masked dy", download(t, dy), dym, make([]float64, len(dym)))
	dyN := swapOuter64(dym, p.K, p.N, P) // NCHW for the references

	// Bias gradient: a sum of N*OH*OW terms (plus the old value); none without a bias.
	if !cc.noBias {
		gb, err := ref.Conv2DBackwardBias(p, dyN)
		must(t, err)
		gbMag, err := ref.Conv2DBackwardBias(p, convAbs(dyN))
		must(t, err)
		bound = make([]float64, p.K)
		for i := range gb {
			gb[i] += gb0[i]
			bound[i] = dotBound(p.N*P, gbMag[i]+math.Abs(gb0[i]))
		}
		compareBound(t, "bias grad", download(t, cv.BiasGrad), gb, bound)
	}

	// Weight gradient: a dot product of length N*OH*OW (plus the old value).
	gw, err := ref.Conv2DBackwardFilter(p, xv, dyN)
	must(t, err)
	gwMag, err := ref.Conv2DBackwardFilter(p, convAbs(xv), convAbs(dyN))
	must(t, err)
	bound = make([]float64, len(gw))
	for i := range gw {
		gw[i] += gw0[i]
		bound[i] = dotBound(p.N*P, gwMag[i]+math.Abs(gw0[i]))
	}
	compareBound(t, "weight grad", download(t, cv.WeightGrad), gw, bound)

	if dx == nil {
		return
	}
	// Input gradient: a GEMM of length K, then col2im sums up to R*S of those:
	// within dotBound(K*R*S) of the sum of |dy w|.
	gx, err := ref.Conv2DBackwardData(p, dyN, wv)
	must(t, err)
	gxMag, err := ref.Conv2DBackwardData(p, convAbs(dyN), convAbs(wv))
	must(t, err)
	gx, gxMag = swapOuter64(gx, p.N, p.C, p.H*p.W), swapOuter64(gxMag, p.N, p.C, p.H*p.W)
	bound = make([]float64, len(gx))
	for i := range gx {
		bound[i] = dotBound(p.K*p.R*p.S, gxMag[i])
	}
	compareBound(t, "dx", download(t, dx), gx, bound)
}

// checkNoBiasAdded checks that y, computed without a bias, is told apart from
// the output with the bias b the layer held before DropBias: somewhere the
// biased reference lies outside y's error bound, so a pass that still added b
// would have failed the comparison with the bias-free reference.
func checkNoBiasAdded(t *testing.T, p ref.Conv2DParams, xv, wv, b, yv, bound []float64, relu bool) {
	t.Helper()
	biased, err := ref.Conv2DForward(p, xv, wv, b)
	must(t, err)
	biased = swapOuter64(biased, p.N, p.K, p.OutH()*p.OutW())
	for i, v := range biased {
		if relu {
			v = math.Max(v, 0)
		}
		if math.Abs(v-yv[i]) > bound[i] {
			return
		}
	}
	t.Fatal("y without a bias also matches the output with the dropped bias: the test cannot tell them apart")
}

// TestConv2DMaskReLU checks the mask-only pass of frozen layers, and that data
// gradients from a masked dy match Conv2DBackward's.
func TestConv2DMaskReLU(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(15, 16))
	cv, err := r.NewConv2D("conv", 3, 4, 3, 3, 1, 1, true)
	must(t, err)
	defer cv.Free()
	yv, dyv := randn(rng, 4*2*6*5), randn(rng, 4*2*6*5)
	y := tensorWith(t, r, "y", yv, 4, 2, 6, 5)
	dy := tensorWith(t, r, "dy", dyv, 4, 2, 6, 5)
	run(t, r, func(s *vk.Stream) error { return r.Conv2DMaskReLU(s, cv, y, dy) })
	for i := range dyv {
		if !(yv[i] > 0) {
			dyv[i] = 0
		}
	}
	compareBound(t, "masked dy", download(t, dy), dyv, make([]float64, len(dyv)))
}

// TestConv2DErrors checks that bad shapes are refused with errors.
func TestConv2DErrors(t *testing.T) {
	r := openRuntime(t)
	if _, err := r.NewConv2D("bad", 0, 4, 3, 3, 1, 1, false); err == nil {
		t.Error("NewConv2D accepted 0 channels")
	}
	if _, err := r.NewConv2D("bad", 3, 4, 3, 3, 0, 1, false); err == nil {
		t.Error("NewConv2D accepted stride 0")
	}
	cv, err := r.NewConv2D("conv", 3, 4, 3, 3, 1, 0, false)
	must(t, err)
	defer cv.Free()
	if oh, ow := cv.OutSize(2, 5); oh != 0 || ow != 0 {
		t.Errorf("OutSize(2, 5) = %d, %d for a 3x3 filter without padding", oh, ow)
	}
	x := zeros(t, r, "x", 3, 2, 6, 5)
	y := zeros(t, r, "y", 4, 2, 4, 3)
	scratch := zeros(t, r, "scratch", cv.ScratchLen(2, 6, 5))
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	for name, f := range map[string]func() error{
		"channels":    func() error { return r.Conv2DForward(s, cv, zeros(t, r, "x4", 4, 2, 6, 5), y, scratch) },
		"3-D input":   func() error { return r.Conv2DForward(s, cv, zeros(t, r, "x3", 3, 12, 5), y, scratch) },
		"output size": func() error { return r.Conv2DForward(s, cv, x, zeros(t, r, "y2", 4, 2, 4, 4), scratch) },
		"small input": func() error {
			return r.Conv2DForward(s, cv, zeros(t, r, "xs", 3, 2, 2, 2), zeros(t, r, "ys", 4), scratch)
		},
		"scratch":     func() error { return r.Conv2DForward(s, cv, x, y, zeros(t, r, "sc", 10)) },
		"nil scratch": func() error { return r.Conv2DForward(s, cv, x, y, nil) },
		"dy size": func() error {
			return r.Conv2DBackward(s, cv, x, y, zeros(t, r, "dy", 5), nil, scratch, false)
		},
		"dx shape": func() error {
			return r.Conv2DBackwardData(s, cv, zeros(t, r, "dy", 4, 2, 4, 3), zeros(t, r, "dx", 3, 60), scratch)
		},
		"relu without y": func() error {
			cv.ReLU = true
			defer func() { cv.ReLU = false }()
			return r.Conv2DBackward(s, cv, x, nil, zeros(t, r, "dy", 4, 2, 4, 3), nil, scratch, false)
		},
	} {
		if err := f(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// A bias or bias gradient of the wrong length is refused by name, by
	// every algorithm; without a bias (nil) a ReLU layer still needs y.
	wscratch := zeros(t, r, "wscratch", cv.AnyAlgoScratchLen(2, 6, 5))
	dy := zeros(t, r, "dy", 4, 2, 4, 3)
	bias, biasGrad := cv.Bias, cv.BiasGrad
	defer func() { cv.Bias, cv.BiasGrad = bias, biasGrad; cv.SetAlgo(ConvIm2col) }()
	for _, a := range ConvAlgos {
		cv.SetAlgo(a)
		cv.Bias = zeros(t, r, "b3", 3)
		err := r.Conv2DForward(s, cv, x, y, wscratch)
		if err == nil || !strings.Contains(err.Error(), `bias "b3"`) {
			t.Errorf("%s: bias of 3 elements for 4 channels: error %v, want one naming the bias", a, err)
		}
		cv.Bias, cv.BiasGrad = bias, zeros(t, r, "gb5", 5)
		err = r.Conv2DBackward(s, cv, x, y, dy, nil, wscratch, false)
		if err == nil || !strings.Contains(err.Error(), `bias gradient "gb5"`) {
			t.Errorf("%s: bias gradient of 5 elements for 4 channels: error %v, want one naming it", a, err)
		}
		cv.Bias, cv.BiasGrad, cv.ReLU = nil, nil, true
		if err := r.Conv2DBackward(s, cv, x, nil, dy, nil, wscratch, false); err == nil {
			t.Errorf("%s: no bias, relu without y: accepted", a)
		}
		cv.ReLU = false
	}
}
