package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// poolCase is planes = c*n planes of h x w.
type poolCase struct{ c, n, h, w int }

var poolWindows = []Pool2D{
	{KH: 3, KW: 3, StrideH: 2, StrideW: 2},
	{KH: 2, KW: 2, StrideH: 2, StrideW: 2},
	{KH: 3, KW: 3, StrideH: 1, StrideW: 1, PadH: 1, PadW: 1},
	{KH: 3, KW: 2, StrideH: 2, StrideW: 1, PadH: 1, PadW: 0},
}

// TestMaxPool2D compares forward (y and argmax exactly) and backward with
// ref.MaxPool2D* over odd shapes, batch 1 and 3, every window of poolWindows, with
// normal, integer-valued (ties) and NaN-holding inputs, and with bindings split
// into plane runs.
func TestMaxPool2D(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(1, 2))
	shapes := []poolCase{{13, 1, 7, 5}, {13, 3, 7, 5}, {3, 3, 13, 13}, {2, 1, 8, 8}, {1, 3, 5, 7}, {2, 1, 27, 27}}
	for _, p := range poolWindows {
		for _, sh := range shapes {
			for _, kind := range []string{"randn", "ties", "nan"} {
				name := fmt.Sprintf("k%dx%d_s%dx%d_p%dx%d/%dx%dx%dx%d/%s", p.KH, p.KW, p.StrideH, p.StrideW, p.PadH, p.PadW, sh.c, sh.n, sh.h, sh.w, kind)
				t.Run(name, func(t *testing.T) { checkMaxPool(t, r, rng, p, sh, kind) })
			}
		}
	}
	t.Run("split", func(t *testing.T) {
		saved := r.storageLimit
		defer func() { r.storageLimit = saved }()
		r.storageLimit = 1024 // 13x13 planes: 676 bytes, so one plane per run, unaligned starts
		checkMaxPool(t, r, rng, poolWindows[0], poolCase{5, 3, 13, 13}, "randn")
		checkMaxPool(t, r, rng, poolWindows[2], poolCase{3, 3, 7, 5}, "ties")
	})
}

func poolInput(rng *rand.Rand, n int, kind string) []float64 {
	x := randn(rng, n)
	switch kind {
	case "ties":
		for i := range x {
			x[i] = float64(rng.IntN(5) - 2)
		}
	case "nan":
		for range max(1, n/50) {
			x[rng.IntN(n)] = math.NaN()
		}
	}
	return x
}

func checkMaxPool(t *testing.T, r *Runtime, rng *rand.Rand, p Pool2D, sh poolCase, kind string) {
	rp := ref.Pool2DParams{N: sh.n, C: sh.c, H: sh.h, W: sh.w, KH: p.KH, KW: p.KW, StrideH: p.StrideH, StrideW: p.StrideW, PadH: p.PadH, PadW: p.PadW}
	planes := sh.c * sh.n
	oh, ow := p.Out(sh.h, sh.w)
	if oh != rp.OutH() || ow != rp.OutW() {
		t.Fatalf("Out(%d, %d) = %d, %d; ref %d, %d", sh.h, sh.w, oh, ow, rp.OutH(), rp.OutW())
	}
	xv := poolInput(rng, planes*sh.h*sh.w, kind)
	dyv := randn(rng, planes*oh*ow)
	if kind == "ties" {
		for i := range dyv {
			dyv[i] = float64(rng.IntN(9) - 4)
		}
	}
	x := tensorWith(t, r, "x", xv, sh.c, sh.n, sh.h, sh.w)
	dy := tensorWith(t, r, "dy", dyv, sh.c, sh.n, oh, ow)
	y := zeros(t, r, "y", sh.c, sh.n, oh, ow)
	am := zeros(t, r, "argmax", sh.c, sh.n, oh, ow)
	dx := zeros(t, r, "dx", sh.c, sh.n, sh.h, sh.w)
	run(t, r, func(s *vk.Stream) error {
		if err := r.MaxPool2DForward(s, p, planes, sh.h, sh.w, x, y, am); err != nil {
			return err
		}
		return r.MaxPool2DBackward(s, p, planes, sh.h, sh.w, dy, am, dx)
	})
	wantY, wantA, err := ref.MaxPool2DForward(rp, xv)
	must(t, err)
	gotY := download(t, y)
	gotA, err := ArgmaxIndices(am)
	must(t, err)
	for i := range wantY {
		if !sameFloat(gotY[i], wantY[i]) || gotA[i] != wantA[i] {
			t.Fatalf("y[%d] = %v (argmax %d), want %v (argmax %d)", i, gotY[i], gotA[i], wantY[i], wantA[i])
		}
	}
	wantDX, err := ref.MaxPool2DBackward(rp, dyv, wantA)
	must(t, err)
	// dx sums at most k dy values in float32: within k unit roundoffs of their
	// absolute sum (0 for integer-valued dy, which sum exactly).
	absDY := make([]float64, len(dyv))
	for i, v := range dyv {
		absDY[i] = math.Abs(v)
	}
	absSum, err := ref.MaxPool2DBackward(rp, absDY, wantA)
	must(t, err)
	k := float64(ceilDiv(p.KH, p.StrideH) * ceilDiv(p.KW, p.StrideW))
	bound := make([]float64, len(absSum))
	for i, a := range absSum {
		if kind != "ties" {
			bound[i] = k * eps32 * a
		}
	}
	compareBound(t, "dx", download(t, dx), wantDX, bound)
}

// sameFloat is equality with NaN equal to NaN.
func sameFloat(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }

// TestAdaptiveAvgPool2D compares forward and backward with the reference, for
// upsampling (1x1 -> 6x6), AlexNet's 13x13 -> 6x6 and 6x6 -> 6x6, and odd sizes,
// with bindings split into plane runs too.
//
// Bounds: forward (k+3) unit roundoffs of sum|x|/k over a bin of k elements
// (k-1 for the sum, the rest for the division); backward (m+3) unit roundoffs of
// sum|dy/k| over the m bins holding an element.
func TestAdaptiveAvgPool2D(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(3, 4))
	cases := [][4]int{{1, 1, 6, 6}, {13, 13, 6, 6}, {5, 7, 6, 6}, {6, 6, 6, 6}, {7, 5, 3, 2}, {2, 3, 5, 4}, {27, 27, 6, 6}, {7, 7, 1, 1}, {3, 5, 1, 1}} // the last two: global average pooling (ResNet's AdaptiveAvgPool2d(1))
	for _, c := range cases {
		for _, n := range []int{1, 3} {
			t.Run(fmt.Sprintf("%dx%d_to_%dx%d/c13n%d", c[0], c[1], c[2], c[3], n), func(t *testing.T) {
				checkAdaptivePool(t, r, rng, 13, n, c[0], c[1], c[2], c[3])
			})
		}
	}
	t.Run("split", func(t *testing.T) {
		saved := r.storageLimit
		defer func() { r.storageLimit = saved }()
		r.storageLimit = 1024
		checkAdaptivePool(t, r, rng, 5, 3, 13, 13, 6, 6)
		checkAdaptivePool(t, r, rng, 5, 3, 1, 1, 6, 6)
	})
}

func checkAdaptivePool(t *testing.T, r *Runtime, rng *rand.Rand, c, n, h, w, oh, ow int) {
	planes := c * n
	xv := randn(rng, planes*h*w)
	dyv := randn(rng, planes*oh*ow)
	x := tensorWith(t, r, "x", xv, c, n, h, w)
	dy := tensorWith(t, r, "dy", dyv, c, n, oh, ow)
	y := zeros(t, r, "y", c, n, oh, ow)
	dx := zeros(t, r, "dx", c, n, h, w)
	run(t, r, func(s *vk.Stream) error {
		if err := r.AdaptiveAvgPool2DForward(s, planes, h, w, oh, ow, x, y); err != nil {
			return err
		}
		return r.AdaptiveAvgPool2DBackward(s, planes, h, w, oh, ow, dy, dx)
	})
	abs := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = math.Abs(x)
		}
		return out
	}
	wantY, err := ref.AdaptiveAvgPool2DForward(n, c, h, w, oh, ow, xv)
	must(t, err)
	absY, err := ref.AdaptiveAvgPool2DForward(n, c, h, w, oh, ow, abs(xv))
	must(t, err)
	k := float64((ceilDiv(h, oh) + 1) * (ceilDiv(w, ow) + 1)) // most elements in a bin
	for i := range absY {
		absY[i] *= (k + 3) * eps32
	}
	compareBound(t, "y", download(t, y), wantY, absY)
	wantDX, err := ref.AdaptiveAvgPool2DBackward(n, c, h, w, oh, ow, dyv)
	must(t, err)
	absDX, err := ref.AdaptiveAvgPool2DBackward(n, c, h, w, oh, ow, abs(dyv))
	must(t, err)
	m := float64((ceilDiv(oh, h) + 1) * (ceilDiv(ow, w) + 1)) // most bins holding an element
	for i := range absDX {
		absDX[i] *= (m + 3) * eps32
	}
	compareBound(t, "dx", download(t, dx), wantDX, absDX)
}

// TestPoolErrors checks that bad shapes are errors, not panics or dispatches.
func TestPoolErrors(t *testing.T) {
	r := openRuntime(t)
	x := zeros(t, r, "x", 2, 7, 5)
	y := zeros(t, r, "y", 2, 3, 2)
	am := zeros(t, r, "argmax", 2, 3, 2)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	p := poolWindows[0]
	for name, err := range map[string]error{
		"planes 0":      r.MaxPool2DForward(s, p, 0, 7, 5, x, y, am),
		"x length":      r.MaxPool2DForward(s, p, 2, 7, 6, x, y, am),
		"nil argmax":    r.MaxPool2DForward(s, p, 2, 7, 5, x, y, nil),
		"pad > half":    r.MaxPool2DForward(s, Pool2D{KH: 2, KW: 2, StrideH: 1, StrideW: 1, PadH: 2, PadW: 0}, 2, 7, 5, x, y, am),
		"stride 0":      r.MaxPool2DBackward(s, Pool2D{KH: 2, KW: 2}, 2, 7, 5, y, am, x),
		"window > in":   r.MaxPool2DForward(s, Pool2D{KH: 9, KW: 3, StrideH: 1, StrideW: 1}, 2, 7, 5, x, y, am),
		"adaptive size": r.AdaptiveAvgPool2DForward(s, 2, 7, 5, 3, 3, x, y),
		"adaptive 0":    r.AdaptiveAvgPool2DBackward(s, 2, 7, 5, 0, 2, y, x),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
