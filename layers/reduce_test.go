package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/vk"
)

// TestRowSum checks strided row sums (conv rows and linear columns, offsets,
// accumulation) and the fused ReLU mask against float64 sums, within
// dotBound(L) of the sum of absolute values.
func TestRowSum(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(19, 20))
	for _, c := range []struct {
		a    RowSum
		size int
	}{
		{RowSum{Rows: 5, L: 37, RowStride: 37, ColStride: 1}, 5 * 37},
		{RowSum{Rows: 3, L: 200, RowStride: 201, ColStride: 1, InOff: 2, OutOff: 1, Accumulate: true}, 3*201 + 2},
		{RowSum{Rows: 70, L: 4, RowStride: 1, ColStride: 70}, 4 * 70},                                    // linear: column sums
		{RowSum{Rows: 9, L: 1, RowStride: 1, ColStride: 9, OutOff: 3, Accumulate: true}, 9},              // batch 1
		{RowSum{Rows: 2, L: 1000, RowStride: 1000, ColStride: 1, InOff: 3, Accumulate: false}, 2003 + 1}, // long rows
	} {
		for _, relu := range []bool{false, true} {
			t.Run(fmt.Sprintf("%+v/relu%v", c.a, relu), func(t *testing.T) {
				a := c.a
				inV, yV, out0 := randn(rng, c.size), randn(rng, c.size), randn(rng, a.OutOff+a.Rows+1)
				in := tensorWith(t, r, "in", inV, c.size)
				y := tensorWith(t, r, "y", yV, c.size)
				out := tensorWith(t, r, "out", out0, len(out0))
				run(t, r, func(s *vk.Stream) error {
					if relu {
						return r.ReLUGradRowSum(s, y, in, out, a)
					}
					return r.RowSum(s, in, out, a)
				})
				masked := append([]float64(nil), inV...)
				want, bound := append([]float64(nil), out0...), make([]float64, len(out0))
				for i := 0; i < a.Rows; i++ {
					sum, mag := 0.0, 0.0
					for j := 0; j < a.L; j++ {
						e := a.InOff + i*a.RowStride + j*a.ColStride
						if relu && !(yV[e] > 0) {
							masked[e] = 0
						}
						sum += masked[e]
						mag += math.Abs(masked[e])
					}
					if a.Accumulate {
						sum += out0[a.OutOff+i]
						mag += math.Abs(out0[a.OutOff+i])
					}
					want[a.OutOff+i], bound[a.OutOff+i] = sum, dotBound(a.L, mag)
				}
				compareBound(t, "sums", download(t, out), want, bound)
				compareBound(t, "masked", download(t, in), masked, make([]float64, len(masked)))
			})
		}
	}
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	in, out := zeros(t, r, "in", 10), zeros(t, r, "out", 2)
	for _, a := range []RowSum{{Rows: 2, L: 6, RowStride: 5, ColStride: 1}, {Rows: 3, L: 1, RowStride: 1}, {Rows: 0, L: 1}} {
		if err := r.RowSum(s, in, out, a); err == nil {
			t.Errorf("%+v accepted", a)
		}
	}
}
