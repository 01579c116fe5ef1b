package layers

import (
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// specials puts NaN, infinities and signed zeros into v.
func specials(rng *rand.Rand, v []float64) {
	for i, s := range []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.NaN()} {
		if i < len(v) {
			v[rng.IntN(len(v))] = s
		}
	}
}

// TestReLU compares forward (out of place and in place) and backward with the
// reference exactly, NaN, infinities and signed zeros included, over lengths that
// are not multiples of 4, and with bindings split into runs.
func TestReLU(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(5, 6))
	check := func(t *testing.T, n int) {
		xv := randn(rng, n)
		dyv := randn(rng, n)
		specials(rng, xv)
		specials(rng, dyv)
		x := tensorWith(t, r, "x", xv, n)
		xi := tensorWith(t, r, "xi", xv, n)
		dy := tensorWith(t, r, "dy", dyv, n)
		y := zeros(t, r, "y", n)
		dx := zeros(t, r, "dx", n)
		// y as the reference computes it, NaN included, feeds the backward.
		wantY := ref.ReLUForward(xv)
		yIn := tensorWith(t, r, "yin", wantY, n)
		run(t, r, func(s *vk.Stream) error {
			if err := r.ReLUForward(s, x, y); err != nil {
				return err
			}
			if err := r.ReLUForward(s, xi, xi); err != nil {
				return err
			}
			return r.ReLUBackward(s, yIn, dy, dx)
		})
		wantDX, err := ref.ReLUBackward(wantY, dyv)
		must(t, err)
		exact(t, "y", download(t, y), wantY)
		exact(t, "y in place", download(t, xi), wantY)
		exact(t, "dx", download(t, dx), wantDX)
	}
	for _, n := range []int{1, 3, 4, 7, 64, 1001, 4 * 4096} {
		check(t, n)
	}
	t.Run("split", func(t *testing.T) {
		saved := r.storageLimit
		defer func() { r.storageLimit = saved }()
		r.storageLimit = 256
		check(t, 1001)
	})
}

// exact checks got == want elementwise, NaN matching NaN.
func exact(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !sameFloat(got[i], want[i]) {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}
