package ref

import (
	"fmt"
	"math"
	"testing"
)

// transpose returns the cols x rows transpose of a rows x cols matrix.
func transpose(a []float64, rows, cols int) []float64 {
	out := make([]float64, len(a))
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			out[j*rows+i] = a[i*cols+j]
		}
	}
	return out
}

func TestGEMMHand(t *testing.T) {
	a := []float64{1, 2, 3, 4, 5, 6}    // 2x3
	b := []float64{7, 8, 9, 10, 11, 12} // 3x2
	c := []float64{1, 1, 1, 1}
	if err := GEMM(false, false, 2, 2, 3, 2, a, b, 0.5, c); err != nil {
		t.Fatal(err)
	}
	// a*b = [58 64; 139 154].
	compare(t, "c", c, []float64{116.5, 128.5, 278.5, 308.5}, 0)

	// beta == 0 must not read C, so NaN there does not propagate.
	c = []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()}
	if err := GEMM(false, false, 2, 2, 3, 1, a, b, 0, c); err != nil {
		t.Fatal(err)
	}
	compare(t, "beta=0", c, []float64{58, 64, 139, 154}, 0)
}

// TestGEMMTransposes checks every transpose flag combination against the
// plain product of explicitly transposed operands on odd sizes.
func TestGEMMTransposes(t *testing.T) {
	const m, n, k = 5, 3, 7
	r := newRand(300)
	a, b, c0 := randSlice(r, m*k), randSlice(r, k*n), randSlice(r, m*n)
	want := append([]float64(nil), c0...)
	if err := GEMM(false, false, m, n, k, 1.5, a, b, -0.25, want); err != nil {
		t.Fatal(err)
	}
	// Independent check of the plain product.
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			s := 0.0
			for p := 0; p < k; p++ {
				s += a[i*k+p] * b[p*n+j]
			}
			if e := relErr(want[i*n+j], 1.5*s-0.25*c0[i*n+j]); e > 1e-14 {
				t.Fatalf("c[%d,%d] rel err %g", i, j, e)
			}
		}
	}
	for _, ta := range []bool{false, true} {
		for _, tb := range []bool{false, true} {
			t.Run(fmt.Sprintf("transA=%v,transB=%v", ta, tb), func(t *testing.T) {
				aa, bb := a, b
				if ta {
					aa = transpose(a, m, k)
				}
				if tb {
					bb = transpose(b, k, n)
				}
				c := append([]float64(nil), c0...)
				if err := GEMM(ta, tb, m, n, k, 1.5, aa, bb, -0.25, c); err != nil {
					t.Fatal(err)
				}
				compare(t, "c", c, want, 0)
			})
		}
	}
}

func TestGEMMRejectsBadInput(t *testing.T) {
	if err := GEMM(false, false, 2, 2, 2, 1, make([]float64, 3), make([]float64, 4), 0, make([]float64, 4)); err == nil {
		t.Error("short a accepted")
	}
	if err := GEMM(false, false, 2, 2, 2, 1, make([]float64, 4), make([]float64, 4), 0, make([]float64, 5)); err == nil {
		t.Error("long c accepted")
	}
	if err := GEMM(false, false, -1, 2, 2, 1, nil, make([]float64, 4), 0, nil); err == nil {
		t.Error("negative m accepted")
	}
	if err := GEMM(false, false, 0, 0, 0, 1, nil, nil, 0, nil); err != nil {
		t.Errorf("empty product rejected: %v", err)
	}
}

func TestLinearFiniteDifferences(t *testing.T) {
	for i, s := range [][3]int{{1, 7, 5}, {3, 13, 3}, {4, 1, 9}} {
		batch, in, out := s[0], s[1], s[2]
		t.Run(fmt.Sprintf("b%d_%dto%d", batch, in, out), func(t *testing.T) {
			r := newRand(400 + uint64(i))
			x, w, b := randSlice(r, batch*in), randSlice(r, out*in), randSlice(r, out)
			g := randSlice(r, batch*out)
			dx := must(t)(LinearBackwardData(batch, in, out, g, w))
			dw := must(t)(LinearBackwardWeight(batch, in, out, x, g))
			db := must(t)(LinearBackwardBias(batch, out, g))
			checkFD(t, "dx", x, g, dx, func(v []float64) []float64 { return must(t)(LinearForward(batch, in, out, v, w, b)) })
			checkFD(t, "dw", w, g, dw, func(v []float64) []float64 { return must(t)(LinearForward(batch, in, out, x, v, b)) })
			checkFD(t, "db", b, g, db, func(v []float64) []float64 { return must(t)(LinearForward(batch, in, out, x, w, v)) })
		})
	}
}

func TestLinearHand(t *testing.T) {
	// x = [1 2], w = [[1 0] [0 1] [1 1]] (out x in), b = [0 0 10].
	y := must(t)(LinearForward(1, 2, 3, []float64{1, 2}, []float64{1, 0, 0, 1, 1, 1}, []float64{0, 0, 10}))
	compare(t, "y", y, []float64{1, 2, 13}, 0)
	y = must(t)(LinearForward(1, 2, 3, []float64{1, 2}, []float64{1, 0, 0, 1, 1, 1}, nil))
	compare(t, "y without bias", y, []float64{1, 2, 3}, 0)
	if _, err := LinearForward(1, 2, 3, []float64{1, 2}, make([]float64, 5), nil); err == nil {
		t.Error("short w accepted")
	}
	if _, err := LinearForward(1, 2, 3, []float64{1, 2}, make([]float64, 6), make([]float64, 2)); err == nil {
		t.Error("short bias accepted")
	}
	if _, err := LinearBackwardData(2, 2, 3, make([]float64, 5), make([]float64, 6)); err == nil {
		t.Error("short dy accepted")
	}
	if _, err := LinearBackwardWeight(2, 2, 3, make([]float64, 3), make([]float64, 6)); err == nil {
		t.Error("short x accepted")
	}
	if _, err := LinearBackwardBias(2, 3, make([]float64, 5)); err == nil {
		t.Error("short dy accepted for bias")
	}
}

func TestLinearGolden(t *testing.T) {
	for _, c := range loadFixture(t, "linear.json") {
		t.Run(c.Name, func(t *testing.T) {
			batch, in, out := c.int(t, "Batch"), c.int(t, "In"), c.int(t, "Out")
			x, w, b, dy := c.data(t, "x"), c.data(t, "w"), c.data(t, "b"), c.data(t, "dy")
			worst := compare(t, "y", must(t)(LinearForward(batch, in, out, x, w, b)), c.data(t, "y"), goldenTol)
			worst = max(worst, compare(t, "dx", must(t)(LinearBackwardData(batch, in, out, dy, w)), c.data(t, "dx"), goldenTol))
			worst = max(worst, compare(t, "dw", must(t)(LinearBackwardWeight(batch, in, out, x, dy)), c.data(t, "dw"), goldenTol))
			worst = max(worst, compare(t, "db", must(t)(LinearBackwardBias(batch, out, dy)), c.data(t, "db"), goldenTol))
			t.Logf("worst rel err vs torch %.2g (tol %.0g)", worst, goldenTol)
		})
	}
}
