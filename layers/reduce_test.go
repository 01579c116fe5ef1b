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

// TestSlabSum checks the sum of slabs of partial sums against float64 sums in
// slab order, within dotBound(slabs) of the sum of absolute values: one slab,
// many, odd row counts, a sum with padded rows at an offset (the padding and
// the elements before it untouched), more vec4s than one workgroup covers.
func TestSlabSum(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(21, 22))
	for _, c := range []struct{ slabs, rows, cols, ld, off int }{
		{1, 1, 4, 4, 0}, {3, 5, 8, 11, 2}, {33, 4, 9216, 9216, 0}, {7, 13, 260, 263, 5}, {2, 16, 1024, 1024, 0},
	} {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			partV := randn(rng, c.slabs*c.rows*c.cols+3) // one spare texel's worth past the slabs
			part := tensorWith(t, r, "part", partV, len(partV))
			size := c.off + (c.rows-1)*c.ld + c.cols + 2
			out0 := randn(rng, size)
			out := tensorWith(t, r, "out", out0, size)
			run(t, r, func(s *vk.Stream) error {
				return r.SlabSum(s, part, c.slabs, c.rows, c.cols, Mat{T: out, Off: c.off, LD: c.ld})
			})
			want, bound := append([]float64(nil), out0...), make([]float64, size)
			for i := 0; i < c.rows; i++ {
				for j := 0; j < c.cols; j++ {
					sum, mag := 0.0, 0.0
					for sl := 0; sl < c.slabs; sl++ {
						v := partV[(sl*c.rows+i)*c.cols+j]
						sum += v
						mag += math.Abs(v)
					}
					at := c.off + i*c.ld + j
					want[at], bound[at] = sum, dotBound(c.slabs, mag)
				}
			}
			compareBound(t, "sums", download(t, out), want, bound)
		})
	}
	part, out := zeros(t, r, "part", 32), zeros(t, r, "out", 32)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	for _, c := range []struct {
		name              string
		slabs, rows, cols int
		out               Mat
	}{
		{"columns not a multiple of 4", 1, 2, 6, Mat{T: out, LD: 6}},
		{"partial sums too short", 3, 2, 8, Mat{T: out, LD: 8}},
		{"sum too short", 1, 2, 8, Mat{T: out, LD: 8, Off: 20}},
		{"sum aliases the partial sums", 1, 2, 8, Mat{T: part, LD: 8}},
	} {
		if err := r.SlabSum(s, part, c.slabs, c.rows, c.cols, c.out); err == nil {
			t.Errorf("%s: accepted", c.name)
		}
	}
}
