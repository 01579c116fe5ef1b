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

// TestGEMMUpdate checks the fused GEMM update (GEMMOptions.Update: C a
// parameter stepped by SGD with the product as its gradient) against the
// float64 product followed by ref.SGDStep, over three submits of one recorded
// stream (the first step's buffer initialisation, then momentum), for every
// torch SGD configuration, the linear weight gradient's shape (A transposed)
// and the plain one, odd M, N not a multiple of 4 (the last vec4 of a row
// partly kept), K from 1 to gemmSmallKMax, and C bound in storage chunks. The
// bound is sgdBounds' with the product's own error, (k+1) eps sum|a||b|.
// Where N is a multiple of 4 it also checks the input gradient computed in the
// same kernel (GEMMUpdate.InputGrad, D = A^T C before each step) against the
// float64 product, within (depth+1) eps sum|a||c|, the depth being the rows
// one workgroup sums plus the slabs added after: shapes with several slabs
// (M > gemmUpdateSlabRows), with several workgroups across (N > 1024, not a
// multiple of it) and with C in storage chunks (each its own run of slabs).
func TestGEMMUpdate(t *testing.T) {
	r := openRuntime(t)
	if r.Variant != GEMMTexel {
		r.Variant = GEMMTexel
		defer func() { r.Variant = GEMMTiled }()
	}
	rng := rand.New(rand.NewPCG(31, 32))
	configs := []struct {
		name string
		cfg  SGDConfig
		buf  bool
	}{
		{"momentum+wd", SGDConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4}, true},
		{"nesterov", SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-3}, true},
		{"dampening", SGDConfig{LR: 0.1, Momentum: 0.7, Dampening: 0.3}, true},
		{"plain", SGDConfig{LR: 0.1}, true},
		{"momentum/nobuf", SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01}, false},
	}
	for _, sz := range []struct {
		m, n, k int
		ta      bool
		limit   int64 // storage limit in bytes (0: the device's)
	}{{7, 22, 4, true, 0}, {13, 70, gemmSmallKMax, false, 0}, {3, 9, 1, true, 0}, {37, 21, 5, true, 600},
		{7, 24, 4, true, 0}, {300, 1036, 3, true, 0}, {261, 20, gemmSmallKMax, false, 0}, {37, 20, 5, true, 600}, {290, 8, 2, true, 2000}} {
		for _, c := range configs {
			t.Run(fmt.Sprintf("%dx%dx%d/ta=%v/limit%d/%s", sz.m, sz.n, sz.k, sz.ta, sz.limit, c.name), func(t *testing.T) {
				if sz.limit > 0 {
					defer func(l int64) { r.storageLimit = l }(r.storageLimit)
					r.storageLimit = sz.limit
				}
				checkGEMMUpdate(t, r, rng, sz.m, sz.n, sz.k, sz.ta, c.cfg, c.buf)
			})
		}
	}
}

func checkGEMMUpdate(t *testing.T, r *Runtime, rng *rand.Rand, m, n, k int, ta bool, cfg SGDConfig, withBuf bool) {
	ld := n + 4 - n%4 // B's and C's rows aligned
	av := randn(rng, m*k)
	am := Mat{LD: k}
	if ta {
		am = Mat{LD: m, Trans: true}
	}
	am.T = tensorWith(t, r, "A", av, m*k)
	bv := randn(rng, k*ld)
	bm := Mat{T: tensorWith(t, r, "B", bv, k*ld), LD: ld}
	param := tensorWith(t, r, "param", randn(rng, m*ld), m*ld)
	var buf *Tensor
	if withBuf {
		buf = tensorWith(t, r, "buf", randn(rng, m*ld), m*ld) // garbage the first step must ignore
	}
	p, err := r.NewSGDParams("sgd", cfg)
	must(t, err)
	t.Cleanup(p.Free)
	cm := Mat{T: param, LD: ld}
	if !r.FusesUpdate(k, bm, cm) {
		t.Fatal("FusesUpdate is false")
	}
	u := &GEMMUpdate{SGD: p, Momentum: buf}
	// The input gradient, where n allows it: D (k x n) in rows of ldd, its
	// padding a sentinel that must survive.
	withD, ldd := n%4 == 0, n+3
	var dT *Tensor
	if withD {
		dT = tensorWith(t, r, "D", filledWith(k*ldd, 7), k*ldd)
		scratch := tensorWith(t, r, "scratch", filledWith(r.UpdateScratchLen(m, n, k, cm), -3), r.UpdateScratchLen(m, n, k, cm))
		u.InputGrad, u.Scratch = Mat{T: dT, LD: ldd}, scratch
		if slabs := r.updateSlabs(m, n, cm); slabs < ceilDiv(m, gemmUpdateSlabRows) {
			t.Fatalf("%d slabs for %d rows", slabs, m)
		}
	}
	s, err := r.Dev.NewStream("update", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, r.GEMM(s, m, n, k, am, bm, cm, GEMMOptions{Alpha: 0.5, Update: u}))
	must(t, p.FinishStep(s))

	// The gradient: 0.5 A B in float64, and its error bound.
	a, b := logical(av, 0, am.LD, m, k, ta), logical(bv, 0, ld, k, n, false)
	grad, gerr := make([]float64, m*ld), make([]float64, m*ld)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s, mag := 0.0, 0.0
			for kk := 0; kk < k; kk++ {
				s += a[i*k+kk] * b[kk*n+j]
				mag += math.Abs(a[i*k+kk] * b[kk*n+j])
			}
			grad[i*ld+j], gerr[i*ld+j] = 0.5*s, 0.5*float64(k+1)*eps32*mag*1.01
		}
	}
	c := sgdRef32(cfg)
	if !withBuf {
		c.Momentum, c.Dampening, c.Nesterov = 0, 0, false
	}
	for step := 0; step < 3; step++ {
		p0 := download(t, param)
		var b0 []float64
		if withBuf {
			b0 = download(t, buf)
		}
		must(t, s.Run())
		if withD {
			checkUpdateInputGrad(t, r, fmt.Sprintf("step%d/input-grad", step), a, p0, download(t, dT), m, n, k, ld, ldd, cm)
		}
		wantP := append([]float64(nil), p0...)
		wantB := append([]float64(nil), b0...)
		var refBuf []float64
		if withBuf {
			refBuf = wantB
		}
		// Only the first n columns of each row are the parameter's: the rest
		// (row padding) must come back untouched.
		g := append([]float64(nil), grad...)
		must(t, ref.SGDStep(c, wantP, g, refBuf, step == 0))
		pb, bb := sgdBoundsGradErr(c, p0, g, gerr, b0, step == 0, withBuf)
		for i := 0; i < m; i++ {
			for j := n; j < ld; j++ {
				wantP[i*ld+j], pb[i*ld+j] = p0[i*ld+j], 0
				if withBuf {
					wantB[i*ld+j], bb[i*ld+j] = b0[i*ld+j], 0
				}
			}
		}
		name := fmt.Sprintf("step%d", step)
		compareBound(t, name+"/param", download(t, param), wantP, pb)
		if withBuf && c.Momentum != 0 {
			compareBound(t, name+"/buf", download(t, buf), wantB, bb)
		}
	}
}

// filledWith is n copies of v.
func filledWith(n int, v float64) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

// checkUpdateInputGrad compares got (k rows of ldd) with D = A^T C for the
// logical m x k matrix a and C's values c (rows of ldc) before the step; the
// padding of got's rows must still hold the sentinel 7.
func checkUpdateInputGrad(t *testing.T, r *Runtime, name string, a, c, got []float64, m, n, k, ldc, ldd int, cm Mat) {
	t.Helper()
	depth := min(m, gemmUpdateSlabRows) + r.updateSlabs(m, n, cm)
	want, bound := make([]float64, k*ldd), make([]float64, k*ldd)
	for kk := 0; kk < k; kk++ {
		for j := 0; j < ldd; j++ {
			at := kk*ldd + j
			if j >= n {
				want[at] = 7
				continue
			}
			s, mag := 0.0, 0.0
			for i := 0; i < m; i++ {
				s += a[i*k+kk] * c[i*ldc+j]
				mag += math.Abs(a[i*k+kk] * c[i*ldc+j])
			}
			want[at], bound[at] = s, float64(depth+1)*eps32*mag*1.01
		}
	}
	compareBound(t, name, got, want, bound)
}

// TestGEMMUpdateErrors: a fused update refuses what it cannot do, by name.
func TestGEMMUpdateErrors(t *testing.T) {
	r := openRuntime(t)
	p, err := r.NewSGDParams("sgd", SGDConfig{LR: 0.1, Momentum: 0.9})
	must(t, err)
	t.Cleanup(p.Free)
	x := zeros(t, r, "x", 64)
	other := zeros(t, r, "other", 32)
	tiny := zeros(t, r, "tiny", 4)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	saved := r.Variant
	defer func() { r.Variant = saved }()
	r.Variant = GEMMTexel
	for _, c := range []struct {
		name string
		k    int
		b    Mat
		o    GEMMOptions
	}{
		{"K too large", 17, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p}}},
		{"B transposed", 4, Mat{T: x, LD: 4, Trans: true}, GEMMOptions{Update: &GEMMUpdate{SGD: p}}},
		{"accumulate", 4, Mat{T: x, LD: 4}, GEMMOptions{Accumulate: true, Update: &GEMMUpdate{SGD: p}}},
		{"momentum shape", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, Momentum: other}}},
		{"input gradient without scratch", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, InputGrad: Mat{T: other, LD: 4}}}},
		{"input gradient scratch too small", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, InputGrad: Mat{T: other, LD: 4}, Scratch: tiny}}},
		{"input gradient too small", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, InputGrad: Mat{T: tiny, LD: 4}, Scratch: other}}},
		{"input gradient aliases scratch", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, InputGrad: Mat{T: other, LD: 4}, Scratch: other}}},
		{"input gradient aliases C", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, InputGrad: Mat{T: x, LD: 4}, Scratch: other}}},
		{"input gradient with n not a multiple of 4", 4, Mat{T: x, LD: 4}, GEMMOptions{Update: &GEMMUpdate{SGD: p, InputGrad: Mat{T: other, LD: 3}, Scratch: other}}},
	} {
		n := 4
		if strings.Contains(c.name, "multiple of 4") {
			n = 3
		}
		err := r.GEMM(s, 2, n, c.k, Mat{T: x, LD: c.k}, c.b, Mat{T: x, LD: 4}, c.o)
		switch {
		case err == nil:
			t.Errorf("%s: accepted", c.name)
		case strings.HasPrefix(c.name, "input gradient") && !strings.Contains(err.Error(), "input gradient"):
			t.Errorf("%s: refused for another reason: %v", c.name, err)
		}
	}
}
