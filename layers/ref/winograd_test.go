package ref

import "testing"

// winogradShapes: 3x3 at stride 1, padding 0-2, odd and even outputs (a last
// tile half outside the output), 1 and 13 channels, batch 1 and 3.
var winogradShapes = []Conv2DParams{
	{N: 1, C: 3, H: 7, W: 5, K: 2, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
	{N: 3, C: 13, H: 6, W: 6, K: 5, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 0, PadW: 0},
	{N: 2, C: 1, H: 4, W: 9, K: 3, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 2, PadW: 1},
	{N: 1, C: 4, H: 3, W: 3, K: 1, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 0},
}

// TestWinogradMatchesDirect: F(2x2,3x3) forward, its transposed filter-gradient
// form, and backward data as a forward convolution with the flipped, transposed
// filters and padding 2-P all equal the direct convolution's passes to float64
// rounding.
func TestWinogradMatchesDirect(t *testing.T) {
	for i, p := range winogradShapes {
		t.Run(convName(p), func(t *testing.T) {
			r := newRand(uint64(100 + i))
			x := randSlice(r, p.xLen())
			w := randSlice(r, p.wLen())
			b := randSlice(r, p.K)
			dy := randSlice(r, p.yLen())
			compare(t, "forward", must(t)(Conv2DWinograd(p, x, w, b, false)), must(t)(Conv2DForward(p, x, w, b)), 1e-13)
			compare(t, "backward filter", must(t)(Conv2DWinogradBackwardFilter(p, x, dy, false)), must(t)(Conv2DBackwardFilter(p, x, dy)), 1e-13)
			// dx = conv(dy, w') with K input channels, C outputs, padding 2-P.
			q := Conv2DParams{N: p.N, C: p.K, H: p.OutH(), W: p.OutW(), K: p.C, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 2 - p.PadH, PadW: 2 - p.PadW}
			if q.OutH() != p.H || q.OutW() != p.W {
				t.Fatalf("backward-data geometry %dx%d, want %dx%d", q.OutH(), q.OutW(), p.H, p.W)
			}
			compare(t, "backward data", must(t)(Conv2DWinograd(q, dy, FlipTranspose(p, w), nil, false)), must(t)(Conv2DBackwardData(p, dy, w)), 1e-13)
		})
	}
}

// TestWinogradTransformsHand checks the transforms on tiles worked by hand.
func TestWinogradTransformsHand(t *testing.T) {
	// A filter of ones: U = G 1 G^T has rows (1, 1.5, .5, 1) scaled by the same.
	u := WinogradFilter([9]float64{1, 1, 1, 1, 1, 1, 1, 1, 1}, false)
	col := []float64{1, 1.5, 0.5, 1}
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			if u[i*4+j] != col[i]*col[j] {
				t.Errorf("U[%d][%d] = %v, want %v", i, j, u[i*4+j], col[i]*col[j])
			}
		}
	}
	// The sum of a tile whose only 1 is at (1,1): B^T picks rows 1-3 of column 1.
	var d [16]float64
	d[5] = 1
	v := WinogradInput(d, false)
	want := [16]float64{0, 0, 0, 0, 0, 1, -1, 1, 0, -1, 1, -1, 0, 1, -1, 1}
	if v != want {
		t.Errorf("B^T d B = %v, want %v", v, want)
	}
	if y := WinogradOutput([16]float64{1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0}, false); y != [4]float64{9, 0, 0, 0} {
		t.Errorf("A^T m A = %v, want [9 0 0 0]", y)
	}
	if _, err := Conv2DWinograd(Conv2DParams{N: 1, C: 1, H: 5, W: 5, K: 1, R: 3, S: 3, StrideH: 2, StrideW: 2}, make([]float64, 25), make([]float64, 9), nil, false); err == nil {
		t.Error("stride 2 accepted")
	}
}
