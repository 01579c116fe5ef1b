package ref

import (
	"fmt"
	"testing"
)

// convShapes are the finite-difference shapes: odd sizes, 3 and 13
// channels, batch 1 and 3, strides 1-3, padding 0-2, kernels 1, 3 and 5.
var convShapes = []Conv2DParams{
	{N: 1, C: 3, H: 7, W: 5, K: 2, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
	{N: 3, C: 13, H: 5, W: 7, K: 3, R: 1, S: 1, StrideH: 2, StrideW: 2, PadH: 0, PadW: 0},
	{N: 2, C: 3, H: 7, W: 5, K: 4, R: 5, S: 5, StrideH: 3, StrideW: 3, PadH: 2, PadW: 2},
	{N: 1, C: 2, H: 9, W: 8, K: 3, R: 3, S: 5, StrideH: 2, StrideW: 3, PadH: 0, PadW: 2},
	{N: 3, C: 3, H: 7, W: 5, K: 2, R: 5, S: 3, StrideH: 2, StrideW: 1, PadH: 2, PadW: 1},
}

func TestConv2DFiniteDifferences(t *testing.T) {
	for i, p := range convShapes {
		t.Run(convName(p), func(t *testing.T) {
			r := newRand(uint64(i))
			x := randSlice(r, p.N*p.C*p.H*p.W)
			w := randSlice(r, p.K*p.C*p.R*p.S)
			b := randSlice(r, p.K)
			g := randSlice(r, p.N*p.K*p.OutH()*p.OutW())

			dx := must(t)(Conv2DBackwardData(p, g, w))
			dw := must(t)(Conv2DBackwardFilter(p, x, g))
			db := must(t)(Conv2DBackwardBias(p, g))
			checkFD(t, "dx", x, g, dx, func(v []float64) []float64 { return must(t)(Conv2DForward(p, v, w, b)) })
			checkFD(t, "dw", w, g, dw, func(v []float64) []float64 { return must(t)(Conv2DForward(p, x, v, b)) })
			checkFD(t, "db", b, g, db, func(v []float64) []float64 { return must(t)(Conv2DForward(p, x, w, v)) })
		})
	}
}

// convName names a test shape compactly.
func convName(p Conv2DParams) string {
	return fmt.Sprintf("n%dc%dh%dw%dk%d_%dx%d_s%dx%d_p%dx%d",
		p.N, p.C, p.H, p.W, p.K, p.R, p.S, p.StrideH, p.StrideW, p.PadH, p.PadW)
}

// TestConv2DHand checks a 3x3 image against a 2x2 filter worked out by
// hand; a convolution that flipped the filter would give +4, not -4.
func TestConv2DHand(t *testing.T) {
	x := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}
	w := []float64{1, 0, 0, -1}
	b := []float64{0.5}
	p := Conv2DParams{N: 1, C: 1, H: 3, W: 3, K: 1, R: 2, S: 2, StrideH: 1, StrideW: 1}
	compare(t, "valid", must(t)(Conv2DForward(p, x, w, b)), []float64{-3.5, -3.5, -3.5, -3.5}, 0)

	// Stride 2, pad 1: the windows see x[0][0], x[0][2], x[2][0] and x[1][1]-x[2][2].
	p.StrideH, p.StrideW, p.PadH, p.PadW = 2, 2, 1, 1
	compare(t, "padded", must(t)(Conv2DForward(p, x, w, nil)), []float64{-1, -3, -7, -4}, 0)
}

// TestConv2DNoBias checks that a nil bias (PyTorch's bias=False) adds
// nothing: direct and Winograd forward passes equal the ones given a zero
// bias exactly, and differ from the ones given a non-zero bias.
func TestConv2DNoBias(t *testing.T) {
	p := Conv2DParams{N: 3, C: 5, H: 7, W: 6, K: 3, R: 3, S: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1}
	r := newRand(42)
	x, w, b := randSlice(r, p.xLen()), randSlice(r, p.wLen()), randSlice(r, p.K)
	for name, f := range map[string]func(b []float64) []float64{
		"direct":   func(b []float64) []float64 { return must(t)(Conv2DForward(p, x, w, b)) },
		"winograd": func(b []float64) []float64 { return must(t)(Conv2DWinograd(p, WinogradF2x3, x, w, b, false)) },
	} {
		none, zero, biased := f(nil), f(make([]float64, p.K)), f(b)
		compare(t, name+" nil vs zero bias", none, zero, 0)
		for i := range none {
			if none[i] == biased[i] {
				t.Fatalf("%s: y[%d] is the same with and without the bias", name, i)
			}
		}
	}
}

// TestConv2D1x1IsGEMM checks that a 1x1 convolution is, per image, the
// product of the K x C filter matrix with the C x HW image matrix.
func TestConv2D1x1IsGEMM(t *testing.T) {
	p := Conv2DParams{N: 2, C: 5, H: 3, W: 4, K: 6, R: 1, S: 1, StrideH: 1, StrideW: 1}
	r := newRand(1)
	x, w := randSlice(r, p.N*p.C*p.H*p.W), randSlice(r, p.K*p.C)
	y := must(t)(Conv2DForward(p, x, w, nil))
	hw := p.H * p.W
	for n := 0; n < p.N; n++ {
		want := make([]float64, p.K*hw)
		if err := GEMM(false, false, p.K, hw, p.C, 1, w, x[n*p.C*hw:(n+1)*p.C*hw], 0, want); err != nil {
			t.Fatal(err)
		}
		compare(t, fmt.Sprintf("image %d", n), y[n*p.K*hw:(n+1)*p.K*hw], want, 1e-14)
	}
}

func TestConv2DOutputSize(t *testing.T) {
	// AlexNet conv1 on 224x224: (224 + 4 - 11)/4 + 1 = 55.
	p := Conv2DParams{N: 1, C: 3, H: 224, W: 227, K: 64, R: 11, S: 11, StrideH: 4, StrideW: 4, PadH: 2, PadW: 2}
	if p.OutH() != 55 || p.OutW() != 56 {
		t.Errorf("out = %dx%d, want 55x56", p.OutH(), p.OutW())
	}
}

func TestConv2DRejectsBadInput(t *testing.T) {
	good := Conv2DParams{N: 1, C: 2, H: 4, W: 4, K: 3, R: 3, S: 3, StrideH: 1, StrideW: 1}
	bad := []Conv2DParams{
		{N: 0, C: 2, H: 4, W: 4, K: 3, R: 3, S: 3, StrideH: 1, StrideW: 1},
		{N: 1, C: 2, H: 4, W: 4, K: 3, R: 3, S: 3, StrideH: 0, StrideW: 1},
		{N: 1, C: 2, H: 4, W: 4, K: 3, R: 3, S: 3, StrideH: 1, StrideW: 1, PadW: -1},
		{N: 1, C: 2, H: 2, W: 4, K: 3, R: 3, S: 3, StrideH: 1, StrideW: 1},
	}
	for _, p := range bad {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want error", p)
		}
	}
	x, w := make([]float64, 32), make([]float64, 54)
	if _, err := Conv2DForward(good, x[:31], w, nil); err == nil {
		t.Error("short x accepted")
	}
	if _, err := Conv2DForward(good, x, w, make([]float64, 2)); err == nil {
		t.Error("short bias accepted")
	}
	if _, err := Conv2DBackwardData(good, make([]float64, 11), w); err == nil {
		t.Error("short dy accepted")
	}
	if _, err := Conv2DBackwardFilter(good, x, make([]float64, 13)); err == nil {
		t.Error("long dy accepted")
	}
	if _, err := Conv2DBackwardBias(good, nil); err == nil {
		t.Error("nil dy accepted")
	}
}

func TestConv2DGolden(t *testing.T) {
	for _, file := range []string{"conv2d_conv1.json", "conv2d_small.json"} {
		for _, c := range loadFixture(t, file) {
			t.Run(c.Name, func(t *testing.T) {
				p := Conv2DParams{
					N: c.int(t, "N"), C: c.int(t, "C"), H: c.int(t, "H"), W: c.int(t, "W"),
					K: c.int(t, "K"), R: c.int(t, "R"), S: c.int(t, "S"),
					StrideH: c.int(t, "StrideH"), StrideW: c.int(t, "StrideW"),
					PadH: c.int(t, "PadH"), PadW: c.int(t, "PadW"),
				}
				x, w, b, dy := c.data(t, "x"), c.data(t, "w"), c.data(t, "b"), c.data(t, "dy")
				worst := compare(t, "y", must(t)(Conv2DForward(p, x, w, b)), c.data(t, "y"), goldenTol)
				worst = max(worst, compare(t, "dx", must(t)(Conv2DBackwardData(p, dy, w)), c.data(t, "dx"), goldenTol))
				worst = max(worst, compare(t, "dw", must(t)(Conv2DBackwardFilter(p, x, dy)), c.data(t, "dw"), goldenTol))
				worst = max(worst, compare(t, "db", must(t)(Conv2DBackwardBias(p, dy)), c.data(t, "db"), goldenTol))
				t.Logf("worst rel err vs torch %.2g (tol %.0g)", worst, goldenTol)
			})
		}
	}
}
