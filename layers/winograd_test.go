package layers

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// winogradBound is the error bound of a Winograd result by v whose products
// sum depth terms: float32 roundings of its magnitude term (the same algorithm
// on the absolute values of every input and transform entry), one per term
// along the deepest path: depth for the products' sum, 2a+2 for each a-wide
// transform (input, output; two sums of a terms and the rounding of the
// fractional constants), 2 max(m, r)+2 for the narrow one (filter, or the
// gradient's output transform), and 2 for the final bias and scaling.
func winogradBound(v winoVariant, depth int, mag float64) float64 {
	return float64(depth+4*v.alpha()+2*max(v.m, v.r)+8) * eps32 * mag * 1.01
}

// TestConv2DWinograd checks the Winograd passes of every compiled variant
// (forward with and without bias, with and without ReLU, backward weights with and without accumulation,
// backward data) against the direct float64 convolution within winogradBound,
// for both GEMM variants, over odd sizes (a last tile partly outside the
// output), paddings 0 to R-1, 1 and 13 channels, batch 1 and 3, and chunked
// scratch.
func TestConv2DWinograd(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, algo := range []ConvAlgo{ConvWinograd, ConvWinograd4} {
		for _, rs := range []int{3, 5} {
			P := func(n, c, h, w, k, pad int) ref.Conv2DParams {
				return ref.Conv2DParams{N: n, C: c, H: h, W: w, K: k, R: rs, S: rs, StrideH: 1, StrideW: 1, PadH: pad, PadW: pad}
			}
			probe := Conv2D{R: rs, S: rs, StrideH: 1, StrideW: 1}
			v, ok := probe.winoVariant(algo)
			if !ok {
				continue
			}
			cases := []convCase{
				{p: P(1, 3, 7, 5, 4, 1), relu: true},
				{p: P(3, 13, 6, 6, 5, 0)},
				{p: P(2, 1, 4, 9, 3, rs-1), relu: true},
				{p: P(3, 4, 8, 8, 8, 1), relu: true, chunk: 1, accum: true},
				{p: P(1, 5, rs, rs, 2, 1), accum: true},
				{p: P(3, 7, 13, 13, 6, rs/2), relu: true, chunk: 2}, // AlexNet's 13x13 maps, small
				{p: P(1, 3, 7, 5, 5, 1), relu: true, noBias: true},
				{p: P(3, 6, 9, 7, 3, rs/2), chunk: 2, accum: true, noBias: true},
			}
			if rs == 5 {
				cases = append(cases, convCase{p: P(2, 6, 27, 27, 9, 2), relu: true}) // features.3's 27x27, narrow
			}
			t.Run(v.String(), func(t *testing.T) {
				variants(t, r, func(t *testing.T) {
					worst := 0.0
					for _, c := range cases {
						t.Run(c.String(), func(t *testing.T) { worst = max(worst, checkWinograd(t, r, rng, algo, v, c)) })
					}
					t.Logf("worst error: %.3f of the bound", worst)
				})
			})
		}
	}
}

// checkWinograd runs one case and returns its worst error as a fraction of the bound.
func checkWinograd(t *testing.T, r *Runtime, rng *rand.Rand, algo ConvAlgo, v winoVariant, cc convCase) float64 {
	p := cc.p
	rv := ref.WinogradVariant{M: v.m, R: v.r}
	cv, err := r.NewConv2D("conv", p.C, p.K, p.R, p.S, 1, p.PadH, cc.relu)
	must(t, err)
	defer cv.Free()
	cv.SetAlgo(algo)
	if !cv.AlgoApplies(algo) {
		t.Fatalf("%s does not apply to a %dx%d stride-1 convolution", algo, p.R, p.S)
	}
	oh, ow := cv.OutSize(p.H, p.W)
	P := oh * ow
	if cc.chunk > 0 {
		fwd, data := cv.winoPasses(v, p.N, p.H, p.W, 1<<30)
		cv.ScratchBudget = int64(4 * max(fwd.need(cc.chunk), data.need(cc.chunk)))
	}
	slen := cv.ScratchLen(p.N, p.H, p.W)
	if cc.chunk > 0 {
		if fwd, _ := cv.winoPasses(v, p.N, p.H, p.W, slen); fwd.g != min(cc.chunk, p.N) {
			t.Fatalf("%d images per chunk, want %d", fwd.g, cc.chunk)
		}
	}
	xv, wv, bv := randn(rng, p.N*p.C*p.H*p.W), randn(rng, p.K*p.C*p.R*p.S), randn(rng, p.K)
	dyv := randn(rng, p.N*p.K*P) // CNHW
	x := tensorWith(t, r, "x", swapOuter64(xv, p.N, p.C, p.H*p.W), p.C, p.N, p.H, p.W)
	must(t, cv.Weight.Upload(to32(wv)))
	must(t, cv.Bias.Upload(to32(bv)))
	var held []float64 // the bias a layer without one held before DropBias
	if cc.noBias {
		cv.DropBias()
		held, bv = bv, nil
	}
	gw0 := make([]float64, len(wv))
	if cc.accum {
		gw0 = randn(rng, len(wv))
		must(t, cv.WeightGrad.Upload(to32(gw0)))
	}
	y := zeros(t, r, "y", p.K, p.N, oh, ow)
	dy := tensorWith(t, r, "dy", dyv, p.K, p.N, oh, ow)
	dx := zeros(t, r, "dx", p.C, p.N, p.H, p.W)
	scratch := zeros(t, r, "scratch", slen)
	run(t, r, func(s *vk.Stream) error {
		if err := r.Conv2DForward(s, cv, x, y, scratch); err != nil {
			return err
		}
		if err := r.Conv2DBackwardWeights(s, cv, x, dy, scratch, cc.accum); err != nil {
			return err
		}
		return r.Conv2DBackwardData(s, cv, dy, dx, scratch)
	})
	worst := 0.0
	check := func(name string, got, want, mag []float64, depth int) {
		t.Helper()
		bound := make([]float64, len(want))
		for i := range want {
			bound[i] = winogradBound(v, depth, mag[i])
			if bound[i] > 0 {
				worst = max(worst, math.Abs(got[i]-want[i])/bound[i])
			}
		}
		compareBound(t, name, got, want, bound)
	}

	// Forward, against the direct convolution; the magnitude from Winograd's own.
	want, err := ref.Conv2DForward(p, xv, wv, bv)
	must(t, err)
	mag, err := ref.Conv2DWinograd(p, rv, convAbs(xv), convAbs(wv), convAbs(bv), true)
	must(t, err)
	want, mag = swapOuter64(want, p.N, p.K, P), swapOuter64(mag, p.N, p.K, P)
	for i := range want {
		if cc.relu {
			want[i] = math.Max(want[i], 0)
		}
	}
	yv := download(t, y)
	check("y", yv, want, mag, p.C)
	if held != nil {
		bound := make([]float64, len(mag))
		for i := range mag {
			bound[i] = winogradBound(v, p.C, mag[i])
		}
		checkNoBiasAdded(t, p, xv, wv, held, yv, bound, cc.relu)
	}

	// Weight gradient: sums over every tile of the batch (plus the old value).
	dyN := swapOuter64(dyv, p.K, p.N, P)
	gw, err := ref.Conv2DBackwardFilter(p, xv, dyN)
	must(t, err)
	gwMag, err := ref.Conv2DWinogradBackwardFilter(p, rv, convAbs(xv), convAbs(dyN), true)
	must(t, err)
	for i := range gw {
		gw[i] += gw0[i]
		gwMag[i] += math.Abs(gw0[i])
	}
	check("weight grad", download(t, cv.WeightGrad), gw, gwMag, p.N*ceilDiv(oh, v.m)*ceilDiv(ow, v.m))

	// Input gradient: the forward algorithm over the K channels of dy.
	gx, err := ref.Conv2DBackwardData(p, dyN, wv)
	must(t, err)
	q := ref.Conv2DParams{N: p.N, C: p.K, H: oh, W: ow, K: p.C, R: p.R, S: p.S, StrideH: 1, StrideW: 1, PadH: p.R - 1 - p.PadH, PadW: p.S - 1 - p.PadW}
	gxMag, err := ref.Conv2DWinograd(q, rv, convAbs(dyN), convAbs(ref.FlipTranspose(p, wv)), nil, true)
	must(t, err)
	check("dx", download(t, dx), swapOuter64(gx, p.N, p.C, p.H*p.W), swapOuter64(gxMag, p.N, p.C, p.H*p.W), p.K)
	return worst
}

// TestConv2DWinogradErrors: shapes Winograd cannot compute are refused by name.
func TestConv2DWinogradErrors(t *testing.T) {
	r := openRuntime(t)
	for _, c := range []struct {
		algo           ConvAlgo
		k, stride, pad int
	}{{ConvWinograd, 7, 1, 3}, {ConvWinograd, 3, 2, 1}, {ConvWinograd, 3, 1, 3}, {ConvWinograd4, 5, 1, 2}, {ConvWinograd, 5, 1, 5}} {
		cv, err := r.NewConv2D("conv", 2, 2, c.k, c.k, c.stride, c.pad, false)
		must(t, err)
		cv.SetAlgo(c.algo)
		x := zeros(t, r, "x", 2, 1, 11, 11)
		oh, ow := cv.OutSize(11, 11)
		y := zeros(t, r, "y", 2, 1, oh, ow)
		scratch := zeros(t, r, "scratch", 1<<16)
		s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
		must(t, err)
		err = r.Conv2DForward(s, cv, x, y, scratch)
		s.Close()
		cv.Free()
		if err == nil {
			t.Errorf("%s %dx%d stride %d pad %d: accepted", c.algo, c.k, c.k, c.stride, c.pad)
		} else if !strings.Contains(err.Error(), "winograd") {
			t.Errorf("error %q does not say winograd", err)
		}
	}
}

// TestChooseAlgo: a network's algorithm falls back per layer to one that
// applies, and F(4x4, 3x3) to F(2x2, 3x3) on outputs smaller than its tiles.
func TestChooseAlgo(t *testing.T) {
	for _, c := range []struct {
		k, stride, pad int
		ask, want      ConvAlgo
		outH, outW     int
	}{
		{k: 3, stride: 1, pad: 1, ask: ConvWinograd4, want: ConvWinograd, outH: 2, outW: 7},
		{k: 3, stride: 1, pad: 1, ask: ConvWinograd4, want: ConvWinograd, outH: 7, outW: 3},
		{k: 3, stride: 1, pad: 1, ask: ConvWinograd4, want: ConvWinograd4, outH: 4, outW: 4},
		{k: 3, stride: 2, pad: 1, ask: ConvWinograd4, want: ConvIm2col, outH: 2, outW: 2},
		{k: 3, stride: 1, pad: 1, ask: ConvWinograd, want: ConvWinograd}, {k: 5, stride: 1, pad: 2, ask: ConvWinograd, want: ConvWinograd}, {k: 11, stride: 4, pad: 2, ask: ConvWinograd, want: ConvIm2col},
		{k: 3, stride: 1, pad: 1, ask: ConvWinograd4, want: ConvWinograd4}, {k: 5, stride: 1, pad: 2, ask: ConvWinograd4, want: ConvWinograd}, {k: 3, stride: 2, pad: 1, ask: ConvWinograd4, want: ConvIm2col},
		{k: 3, stride: 1, pad: 1, ask: ConvIm2col, want: ConvIm2col}, {k: 3, stride: 1, pad: 3, ask: ConvWinograd4, want: ConvIm2col}, {k: 5, stride: 1, pad: 4, ask: ConvWinograd4, want: ConvWinograd},
	} {
		cv := Conv2D{R: c.k, S: c.k, StrideH: c.stride, StrideW: c.stride, PadH: c.pad, PadW: c.pad}
		if c.outH == 0 {
			c.outH, c.outW = 13, 13
		}
		if got := cv.ChooseAlgo(c.ask, c.outH, c.outW); got != c.want {
			t.Errorf("%dx%d stride %d pad %d output %dx%d asked %s: got %s, want %s", c.k, c.k, c.stride, c.pad, c.outH, c.outW, c.ask, got, c.want)
		}
	}
}
