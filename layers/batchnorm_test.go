package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// TestBatchNorm runs a training-mode and an eval-mode step of every kernel
// against the float64 reference (itself checked against PyTorch and finite
// differences in layers/ref) on random shapes, in both layouts: batch 1 and 3,
// channel counts that are not multiples of 4, a 1x1 spatial size, and a
// channel longer than one workgroup's 64 invocations many times over. Every
// result is held to the error bound stated in batchnorm.go, element by element.
// The CNHW cases whose channel length is a multiple of 4 (c6n4h6w6, c3n2h8w2)
// run the four-wide kernels (BatchNorm.vec4).
func TestBatchNorm(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	shapes := [][4]int{{3, 1, 5, 7}, {5, 3, 1, 1}, {2, 3, 13, 11}, {7, 1, 2, 1}, {1, 2, 27, 27}, {13, 3, 3, 3}, {6, 4, 6, 6}, {3, 2, 8, 2}}
	for _, sh := range shapes {
		for _, layout := range []string{"cnhw", "nchw"} {
			for _, train := range []bool{true, false} {
				for _, relu := range []bool{false, true} {
					c, n, h, w := sh[0], sh[1], sh[2], sh[3]
					t.Run(fmt.Sprintf("c%dn%dh%dw%d/%s/train%v/relu%v", c, n, h, w, layout, train, relu), func(t *testing.T) {
						checkBatchNorm(t, r, rng, c, n, h, w, layout == "nchw", train, relu)
					})
				}
			}
		}
	}
}

// checkBatchNorm runs one case; with relu the ReLU after the BatchNorm is
// fused, and the reference's backward masks dy by the kernel's own output
// (which the kernel reads), so that a value within rounding of the kink is
// not counted as an error.
func checkBatchNorm(t *testing.T, r *Runtime, rng *rand.Rand, c, n, h, w int, nchw, train, relu bool) {
	p := ref.BatchNormParams{N: n, C: c, H: h, W: w, Eps: 1e-5, Momentum: 0.1}
	b := BatchNormCNHW(c, n, h, w, p.Eps, p.Momentum)
	b.ReLU = relu
	if nchw {
		b.CStride, b.NStride = h*w, c*h*w
	}
	if want := !nchw && (n*h*w)%4 == 0; b.vec4() != want {
		t.Fatalf("four-wide kernels: %v, want %v", b.vec4(), want)
	}
	// Inputs in PyTorch's NCHW order, with an offset mean per channel so
	// that the two-pass variance matters.
	xv := rounded(randn(rng, n*c*h*w))
	for i := range xv {
		xv[i] = float64(float32(xv[i]*1.5 + float64((i/(h*w))%c) - 2))
	}
	dyv := rounded(randn(rng, len(xv)))
	gammaV, betaV := rounded(randn(rng, c)), rounded(randn(rng, c))
	rmV, rvV := rounded(randn(rng, c)), rounded(randn(rng, c))
	for i := range rvV {
		rvV[i] = float64(float32(rvV[i]*rvV[i] + 0.5))
	}
	// gpu places NCHW values at the kernel's layout.
	gpu := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for ni := 0; ni < n; ni++ {
			for ci := 0; ci < c; ci++ {
				for s := 0; s < h*w; s++ {
					out[ci*b.CStride+ni*b.NStride+s] = v[(ni*c+ci)*h*w+s]
				}
			}
		}
		return out
	}
	x := tensorWith(t, r, "x", gpu(xv), len(xv))
	dy := tensorWith(t, r, "dy", gpu(dyv), len(xv))
	gamma, beta := tensorWith(t, r, "gamma", gammaV, c), tensorWith(t, r, "beta", betaV, c)
	rm, rv := tensorWith(t, r, "running_mean", rmV, c), tensorWith(t, r, "running_var", rvV, c)
	stats := zeros(t, r, "stats", 2*c)
	y, dx := zeros(t, r, "y", len(xv)), zeros(t, r, "dx", len(xv))
	dgamma, dbeta := zeros(t, r, "dgamma", c), zeros(t, r, "dbeta", c)
	run(t, r, func(s *vk.Stream) error {
		var err error
		if train {
			err = r.BatchNormStats(s, b, x, stats, rm, rv)
		} else {
			err = r.BatchNormEvalStats(s, b, stats, rm, rv)
		}
		if err != nil {
			return err
		}
		if err := r.BatchNormForward(s, b, x, stats, gamma, beta, y); err != nil {
			return err
		}
		return r.BatchNormBackward(s, b, train, x, y, dy, stats, gamma, dgamma, dbeta, dx)
	})
	gotY := download(t, y)
	// ungpu reads a kernel-layout tensor back in NCHW order.
	ungpu := func(v []float64) []float64 {
		out := make([]float64, n*c*h*w)
		for ni := 0; ni < n; ni++ {
			for ci := 0; ci < c; ci++ {
				for s := 0; s < h*w; s++ {
					out[(ni*c+ci)*h*w+s] = v[ci*b.CStride+ni*b.NStride+s]
				}
			}
		}
		return out
	}
	if relu { // the fused ReLU's backward: dy where the output is positive
		var err error
		dyv, err = ref.ReLUBackward(ungpu(gotY), dyv)
		must(t, err)
	}

	// The reference and the bounds.
	l := n * h * w
	k := float64(ceilDiv(l, 64))
	var st ref.BatchNormStats
	var err error
	wantRM, wantRV := append([]float64(nil), rmV...), append([]float64(nil), rvV...)
	bMean, bInv := make([]float64, c), make([]float64, c) // absolute bound of mean, relative of invstd
	var variance []float64
	if train {
		st, variance, err = ref.BatchNormBatchStats(p, xv)
		must(t, err)
		ref.BatchNormUpdateRunning(p, wantRM, wantRV, st.Mean, variance)
		for ci := range bMean {
			var abs float64
			for ni := 0; ni < n; ni++ {
				for s := 0; s < h*w; s++ {
					abs += math.Abs(xv[(ni*c+ci)*h*w+s])
				}
			}
			bMean[ci] = (k + 8) * eps32 * abs / float64(l)
			bInv[ci] = ((k+12)/2 + 4) * eps32
		}
	} else {
		st, err = ref.BatchNormRunningStats(p, rmV, rvV)
		must(t, err)
		for ci := range bInv {
			bInv[ci] = 4 * eps32
		}
	}
	gotStats := download(t, stats)
	boundMean, boundInv := make([]float64, c), make([]float64, c)
	for ci := range boundMean {
		boundMean[ci] = bMean[ci]
		boundInv[ci] = bInv[ci] * st.InvStd[ci]
	}
	compareBound(t, "mean", gotStats[:c], st.Mean, boundMean)
	compareBound(t, "invstd", gotStats[c:2*c], st.InvStd, boundInv)
	boundRM, boundRV := make([]float64, c), make([]float64, c)
	for ci := range boundRM {
		boundRM[ci] = p.Momentum*bMean[ci] + 3*eps32*(math.Abs(rmV[ci])+math.Abs(st.Mean[ci]))
		boundRV[ci] = 3 * eps32 * rvV[ci]
		if train {
			boundRV[ci] += p.Momentum * variance[ci] * float64(l) / float64(l-1) * ((k + 12 + 4) * eps32)
		}
	}
	compareBound(t, "running_mean", download(t, rm), wantRM, boundRM)
	compareBound(t, "running_var", download(t, rv), wantRV, boundRV)

	wantY, err := ref.BatchNormForward(p, xv, gammaV, betaV, st)
	must(t, err)
	if relu {
		wantY = ref.ReLUForward(wantY)
	}
	wantDX, wantDG, wantDB, err := ref.BatchNormBackward(p, train, xv, dyv, gammaV, st)
	must(t, err)
	boundY, boundDX := make([]float64, len(xv)), make([]float64, len(xv))
	boundDG, boundDB := make([]float64, c), make([]float64, c)
	sumDY, sumDYX := make([]float64, c), make([]float64, c)
	for i := range xv {
		ci := (i / (h * w)) % c
		sumDY[ci] += math.Abs(dyv[i])
		sumDYX[ci] += math.Abs(dyv[i] * (xv[i] - st.Mean[ci]))
	}
	for ci := range boundDB {
		boundDB[ci] = (k + 8) * eps32 * sumDY[ci]
		boundDG[ci] = (k+10)*eps32*sumDYX[ci]*st.InvStd[ci] + bMean[ci]*st.InvStd[ci]*sumDY[ci] + math.Abs(wantDG[ci])*(bInv[ci]+eps32)
	}
	for i := range xv {
		ci := (i / (h * w)) % c
		is, g := st.InvStd[ci], math.Abs(gammaV[ci])
		d := math.Abs(xv[i] - st.Mean[ci])
		tm := d * is * g
		boundY[i] = tm*(bInv[ci]+4*eps32) + bMean[ci]*is*g + (tm+math.Abs(betaV[ci]))*2*eps32
		if !train {
			boundDX[i] = g * is * math.Abs(dyv[i]) * (bInv[ci] + 3*eps32)
			continue
		}
		fl := float64(l)
		xhat, errXhat := d*is, d*is*(bInv[ci]+2*eps32)+bMean[ci]*is
		terms := math.Abs(dyv[i]) + math.Abs(wantDB[ci])/fl + xhat*math.Abs(wantDG[ci])/fl
		boundDX[i] = g * is * (terms*(bInv[ci]+6*eps32) + boundDB[ci]/fl + xhat*boundDG[ci]/fl + math.Abs(wantDG[ci])/fl*errXhat)
	}
	compareBound(t, "y", gotY, gpu(wantY), gpu(boundY))
	compareBound(t, "dgamma", download(t, dgamma), wantDG, boundDG)
	compareBound(t, "dbeta", download(t, dbeta), wantDB, boundDB)
	compareBound(t, "dx", download(t, dx), gpu(wantDX), gpu(boundDX))
}

// TestBatchNormErrors: bad shapes and operands are errors, not dispatches.
func TestBatchNormErrors(t *testing.T) {
	r := openRuntime(t)
	b := BatchNormCNHW(3, 2, 2, 2, 1e-5, 0.1)
	x, y := zeros(t, r, "x", 24), zeros(t, r, "y", 24)
	short, stats := zeros(t, r, "short", 23), zeros(t, r, "stats", 6)
	g := zeros(t, r, "g", 3)
	s, err := r.Dev.NewStream(t.Name(), vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	for name, err := range map[string]error{
		"short x":        r.BatchNormForward(s, b, short, stats, g, g, y),
		"y is x":         r.BatchNormForward(s, b, x, stats, g, g, x),
		"short stats":    r.BatchNormForward(s, b, x, g, g, g, y),
		"one value":      r.BatchNormStats(s, BatchNormCNHW(3, 1, 1, 1, 1e-5, 0.1), x, stats, g, g),
		"momentum 2":     r.BatchNormStats(s, BatchNormCNHW(3, 2, 2, 2, 1e-5, 2), x, stats, g, g),
		"nil gamma":      r.BatchNormForward(s, b, x, stats, nil, g, y),
		"dx is dy":       r.BatchNormBackward(s, b, true, x, nil, y, stats, g, g, g, y),
		"short gamma":    r.BatchNormForward(s, BatchNormCNHW(4, 2, 1, 3, 1e-5, 0.1), x, zeros(t, r, "s8", 8), g, g, y),
		"overlap stride": r.BatchNormForward(s, BatchNorm{C: 3, N: 2, S: 4, CStride: 8, NStride: 2}, x, stats, g, g, y),
	} {
		if err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}
