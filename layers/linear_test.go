package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

func absAll(v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = math.Abs(x)
	}
	return out
}

// TestLinear checks forward (with and without fused ReLU), the input gradient and
// the weight and bias gradients against layers/ref on odd sizes, both GEMM variants
// (and the GEMV of batch 1).
// Bound per element: dotBound over the products' absolute values (float32 sums).
func TestLinear(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	variants(t, r, func(t *testing.T) {
		// n 1 with in a multiple of 4: the forward runs as a GEMV (37 and 3
		// outputs: a last workgroup of one and of three features).
		for _, c := range []struct{ n, in, out int }{{1, 1, 1}, {3, 13, 10}, {4, 64, 7}, {5, 100, 33}, {1, 1028, 37}, {1, 4, 3}, {2, 260, 65}} {
			for _, relu := range []bool{false, true} {
				name := fmt.Sprintf("n%d/in%d/out%d/relu=%v", c.n, c.in, c.out, relu)
				l, err := r.NewLinear("fc", c.in, c.out, true, relu)
				must(t, err)
				w, b := randn(rng, c.out*c.in), randn(rng, c.out)
				x, dy := randn(rng, c.n*c.in), randn(rng, c.n*c.out)
				must(t, l.Weight.Upload(to32(w)))
				must(t, l.Bias.Upload(to32(b)))
				xt := tensorWith(t, r, "x", x, c.n, c.in)
				dyt := tensorWith(t, r, "dy", dy, c.n, c.out)
				yt := zeros(t, r, "y", c.n, c.out)
				dxt := zeros(t, r, "dx", c.n, c.in)
				run(t, r, func(s *vk.Stream) error {
					if err := r.LinearForward(s, l, c.n, xt, yt); err != nil {
						return err
					}
					if err := r.LinearBackwardData(s, l, c.n, dyt, dxt); err != nil {
						return err
					}
					return r.LinearBackwardWeights(s, l, c.n, xt, dyt, false)
				})
				wantY, _ := ref.LinearForward(c.n, c.in, c.out, x, w, b)
				magY, _ := ref.LinearForward(c.n, c.in, c.out, absAll(x), absAll(w), absAll(b))
				boundY := make([]float64, len(wantY))
				for i := range wantY {
					if relu {
						wantY[i] = math.Max(wantY[i], 0)
					}
					boundY[i] = dotBound(c.in, magY[i])
				}
				compareBound(t, name+"/y", download(t, yt), wantY, boundY)

				wantDx, _ := ref.LinearBackwardData(c.n, c.in, c.out, dy, w)
				magDx, _ := ref.LinearBackwardData(c.n, c.in, c.out, absAll(dy), absAll(w))
				compareBound(t, name+"/dx", download(t, dxt), wantDx, scale(magDx, func(m float64) float64 { return dotBound(c.out, m) }))

				wantDw, _ := ref.LinearBackwardWeight(c.n, c.in, c.out, x, dy)
				magDw, _ := ref.LinearBackwardWeight(c.n, c.in, c.out, absAll(x), absAll(dy))
				compareBound(t, name+"/dw", download(t, l.WeightGrad), wantDw, scale(magDw, func(m float64) float64 { return dotBound(c.n, m) }))

				wantDb, _ := ref.LinearBackwardBias(c.n, c.out, dy)
				magDb, _ := ref.LinearBackwardBias(c.n, c.out, absAll(dy))
				compareBound(t, name+"/db", download(t, l.BiasGrad), wantDb, scale(magDb, func(m float64) float64 { return dotBound(c.n, m) }))
				l.Free()
			}
		}
	})
}

func scale(v []float64, f func(float64) float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = f(x)
	}
	return out
}

func TestLinearShapeErrors(t *testing.T) {
	r := openRuntime(t)
	l, err := r.NewLinear("fc", 4, 3, true, false)
	must(t, err)
	defer l.Free()
	x, y := zeros(t, r, "x", 2, 4), zeros(t, r, "y", 2, 4)
	s, _ := r.Dev.NewStream("errors", vk.StreamOptions{})
	defer s.Close()
	if err := r.LinearForward(s, l, 2, x, y); err == nil {
		t.Error("y of the wrong size accepted")
	}
}

// TestLinearNoBiasGEMV: a layer without bias at batch 1 (the GEMV) adds
// nothing, with and without its fused ReLU.
func TestLinearNoBiasGEMV(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(3, 4))
	const n, in, out = 1, 36, 5
	for _, relu := range []bool{false, true} {
		l, err := r.NewLinear("fc", in, out, false, relu)
		must(t, err)
		t.Cleanup(l.Free)
		w, x := randn(rng, out*in), randn(rng, n*in)
		must(t, l.Weight.Upload(to32(w)))
		y := zeros(t, r, "y", n, out)
		run(t, r, func(s *vk.Stream) error { return r.LinearForward(s, l, n, tensorWith(t, r, "x", x, n, in), y) })
		want, _ := ref.LinearForward(n, in, out, x, w, make([]float64, out))
		mag, _ := ref.LinearForward(n, in, out, absAll(x), absAll(w), make([]float64, out))
		bound := make([]float64, len(want))
		for i := range want {
			if relu {
				want[i] = math.Max(want[i], 0)
			}
			bound[i] = dotBound(in, mag[i])
		}
		compareBound(t, fmt.Sprintf("relu=%v/y", relu), download(t, y), want, bound)
	}
}
