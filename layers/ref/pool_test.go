package ref

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestMaxPool2DFiniteDifferences(t *testing.T) {
	shapes := []Pool2DParams{
		{N: 2, C: 3, H: 13, W: 13, KH: 3, KW: 3, StrideH: 2, StrideW: 2},
		{N: 1, C: 13, H: 7, W: 5, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1},
		{N: 3, C: 2, H: 7, W: 5, KH: 5, KW: 3, StrideH: 3, StrideW: 1, PadH: 2, PadW: 1},
		{N: 1, C: 3, H: 6, W: 9, KH: 1, KW: 2, StrideH: 1, StrideW: 3},
	}
	for i, p := range shapes {
		t.Run(fmt.Sprintf("n%dc%dh%dw%d_%dx%d_s%dx%d_p%dx%d", p.N, p.C, p.H, p.W, p.KH, p.KW,
			p.StrideH, p.StrideW, p.PadH, p.PadW), func(t *testing.T) {
			r := newRand(100 + uint64(i))
			x := randSlice(r, p.N*p.C*p.H*p.W)
			g := randSlice(r, p.N*p.C*p.OutH()*p.OutW())
			_, argmax, err := MaxPool2DForward(p, x)
			if err != nil {
				t.Fatal(err)
			}
			dx := must(t)(MaxPool2DBackward(p, g, argmax))
			checkFD(t, "dx", x, g, dx, func(v []float64) []float64 {
				y, _, err := MaxPool2DForward(p, v)
				if err != nil {
					t.Fatal(err)
				}
				return y
			})
		})
	}
}

// TestMaxPool2DTiesAndPadding checks first-max-wins on ties, that padding
// never wins, and NaN propagation.
func TestMaxPool2DTiesAndPadding(t *testing.T) {
	p := Pool2DParams{N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, StrideH: 1, StrideW: 1}
	ones := []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}
	y, argmax, err := MaxPool2DForward(p, ones)
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "y", y, []float64{1, 1, 1, 1}, 0)
	if want := []int32{0, 1, 3, 4}; !slices.Equal(argmax, want) {
		t.Errorf("tied argmax = %v, want %v", argmax, want)
	}

	// All-negative input with padding 1: the -Inf padding must lose.
	p = Pool2DParams{N: 1, C: 1, H: 2, W: 2, KH: 3, KW: 3, StrideH: 2, StrideW: 2, PadH: 1, PadW: 1}
	y, argmax, err = MaxPool2DForward(p, []float64{-4, -3, -2, -5})
	if err != nil {
		t.Fatal(err)
	}
	compare(t, "padded y", y, []float64{-2}, 0)
	if argmax[0] != 2 {
		t.Errorf("padded argmax = %d, want 2", argmax[0])
	}

	p = Pool2DParams{N: 1, C: 1, H: 1, W: 3, KH: 1, KW: 3, StrideH: 1, StrideW: 1}
	y, argmax, err = MaxPool2DForward(p, []float64{5, math.NaN(), 7})
	if err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(y[0]) || argmax[0] != 1 {
		t.Errorf("NaN window gives %v at %d, want NaN at 1", y[0], argmax[0])
	}
}

// TestMaxPool2DBackwardAccumulates checks that overlapping windows that
// pick the same element add their gradients.
func TestMaxPool2DBackwardAccumulates(t *testing.T) {
	p := Pool2DParams{N: 1, C: 1, H: 1, W: 5, KH: 1, KW: 3, StrideH: 1, StrideW: 1}
	_, argmax, err := MaxPool2DForward(p, []float64{0, 1, 9, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	dx := must(t)(MaxPool2DBackward(p, []float64{1, 10, 100}, argmax))
	compare(t, "dx", dx, []float64{0, 0, 111, 0, 0}, 0)
}

func TestMaxPool2DRejectsBadInput(t *testing.T) {
	for _, p := range []Pool2DParams{
		{N: 1, C: 1, H: 4, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 2},
		{N: 1, C: 1, H: 4, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 0},
		{N: 1, C: 1, H: 1, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1},
		{N: 1, C: 0, H: 4, W: 4, KH: 3, KW: 3, StrideH: 1, StrideW: 1},
	} {
		if p.Validate() == nil {
			t.Errorf("Validate(%+v) = nil, want error", p)
		}
	}
	p := Pool2DParams{N: 1, C: 1, H: 3, W: 3, KH: 2, KW: 2, StrideH: 1, StrideW: 1}
	if _, _, err := MaxPool2DForward(p, make([]float64, 8)); err == nil {
		t.Error("short x accepted")
	}
	if _, err := MaxPool2DBackward(p, make([]float64, 4), []int32{0, 1, 2, 9}); err == nil {
		t.Error("argmax outside the plane accepted")
	}
	if _, err := MaxPool2DBackward(p, make([]float64, 4), []int32{0, 1, 2}); err == nil {
		t.Error("short argmax accepted")
	}
}

func TestMaxPool2DGolden(t *testing.T) {
	for _, c := range loadFixture(t, "maxpool2d.json") {
		t.Run(c.Name, func(t *testing.T) {
			p := Pool2DParams{
				N: c.int(t, "N"), C: c.int(t, "C"), H: c.int(t, "H"), W: c.int(t, "W"),
				KH: c.int(t, "KH"), KW: c.int(t, "KW"), StrideH: c.int(t, "StrideH"), StrideW: c.int(t, "StrideW"),
				PadH: c.int(t, "PadH"), PadW: c.int(t, "PadW"),
			}
			y, argmax, err := MaxPool2DForward(p, c.data(t, "x"))
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "y", y, c.data(t, "y"), 0)
			want := c.int32s(t, "argmax")
			for i := range want {
				if argmax[i] != want[i] {
					t.Fatalf("argmax[%d] = %d, torch %d", i, argmax[i], want[i])
				}
			}
			compare(t, "dx", must(t)(MaxPool2DBackward(p, c.data(t, "dy"), want)), c.data(t, "dx"), 0)
		})
	}
}

// TestAdaptiveBins lists PyTorch's bins for the sizes AlexNet meets.
func TestAdaptiveBins(t *testing.T) {
	cases := []struct {
		in, out int
		want    [][2]int
	}{
		{13, 6, [][2]int{{0, 3}, {2, 5}, {4, 7}, {6, 9}, {8, 11}, {10, 13}}},
		{1, 6, [][2]int{{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}, {0, 1}}},
		{5, 6, [][2]int{{0, 1}, {0, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 5}}},
		{7, 6, [][2]int{{0, 2}, {1, 3}, {2, 4}, {3, 5}, {4, 6}, {5, 7}}},
		{6, 6, [][2]int{{0, 1}, {1, 2}, {2, 3}, {3, 4}, {4, 5}, {5, 6}}},
		{12, 6, [][2]int{{0, 2}, {2, 4}, {4, 6}, {6, 8}, {8, 10}, {10, 12}}},
	}
	for _, c := range cases {
		for i, w := range c.want {
			if s, e := adaptiveBin(i, c.in, c.out); s != w[0] || e != w[1] {
				t.Errorf("bin %d of %d->%d = [%d,%d), want [%d,%d)", i, c.in, c.out, s, e, w[0], w[1])
			}
		}
	}
}

func TestAdaptiveAvgPool2DHand(t *testing.T) {
	// 1x3 -> 1x2: bins [0,2) and [1,3).
	y := must(t)(AdaptiveAvgPool2DForward(1, 1, 1, 3, 1, 2, []float64{1, 2, 6}))
	compare(t, "y", y, []float64{1.5, 4}, 0)
	dx := must(t)(AdaptiveAvgPool2DBackward(1, 1, 1, 3, 1, 2, []float64{2, 4}))
	compare(t, "dx", dx, []float64{1, 3, 2}, 0)
	// 1x1 -> 2x2 copies; backward sums.
	compare(t, "up y", must(t)(AdaptiveAvgPool2DForward(1, 1, 1, 1, 2, 2, []float64{7})), []float64{7, 7, 7, 7}, 0)
	compare(t, "up dx", must(t)(AdaptiveAvgPool2DBackward(1, 1, 1, 1, 2, 2, []float64{1, 2, 3, 4})), []float64{10}, 0)
	if _, err := AdaptiveAvgPool2DForward(1, 1, 2, 2, 0, 1, make([]float64, 4)); err == nil {
		t.Error("zero output size accepted")
	}
	if _, err := AdaptiveAvgPool2DBackward(1, 1, 2, 2, 1, 1, make([]float64, 2)); err == nil {
		t.Error("long dy accepted")
	}
}

func TestAdaptiveAvgPool2DFiniteDifferences(t *testing.T) {
	for i, s := range [][6]int{{2, 3, 13, 13, 6, 6}, {1, 3, 1, 1, 6, 6}, {3, 2, 5, 7, 6, 6}, {1, 13, 7, 5, 3, 2}} {
		n, c, h, w, oh, ow := s[0], s[1], s[2], s[3], s[4], s[5]
		t.Run(fmt.Sprintf("n%dc%d_%dx%d_to_%dx%d", n, c, h, w, oh, ow), func(t *testing.T) {
			r := newRand(200 + uint64(i))
			x, g := randSlice(r, n*c*h*w), randSlice(r, n*c*oh*ow)
			dx := must(t)(AdaptiveAvgPool2DBackward(n, c, h, w, oh, ow, g))
			checkFD(t, "dx", x, g, dx, func(v []float64) []float64 {
				return must(t)(AdaptiveAvgPool2DForward(n, c, h, w, oh, ow, v))
			})
		})
	}
}

func TestAdaptiveAvgPool2DGolden(t *testing.T) {
	for _, c := range loadFixture(t, "adaptive_avgpool2d.json") {
		t.Run(c.Name, func(t *testing.T) {
			n, ch, h, w := c.int(t, "N"), c.int(t, "C"), c.int(t, "H"), c.int(t, "W")
			oh, ow := c.int(t, "OH"), c.int(t, "OW")
			worst := compare(t, "y", must(t)(AdaptiveAvgPool2DForward(n, ch, h, w, oh, ow, c.data(t, "x"))), c.data(t, "y"), goldenTol)
			worst = max(worst, compare(t, "dx", must(t)(AdaptiveAvgPool2DBackward(n, ch, h, w, oh, ow, c.data(t, "dy"))), c.data(t, "dx"), goldenTol))
			t.Logf("worst rel err vs torch %.2g (tol %.0g)", worst, goldenTol)
		})
	}
}
