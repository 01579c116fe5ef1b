package layers

import (
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// TestResidualAdd compares the sum, with and without its ReLU, out of place
// and in place (out = a, out = b), with the reference exactly, NaN,
// infinities and signed zeros included, over lengths that are not multiples
// of 4 and with bindings split into runs. Operands are standard normal, so
// every float64 sum is exact and its float32 rounding is the kernel's.
func TestResidualAdd(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(14, 1))
	check := func(t *testing.T, n int) {
		av, bv := randn(rng, n), randn(rng, n)
		specials(rng, av)
		specials(rng, bv)
		for _, relu := range []bool{false, true} {
			a, b := tensorWith(t, r, "a", av, n), tensorWith(t, r, "b", bv, n)
			ia, ib := tensorWith(t, r, "ia", av, n), tensorWith(t, r, "ib", bv, n)
			ja, jb := tensorWith(t, r, "ja", av, n), tensorWith(t, r, "jb", bv, n)
			out := zeros(t, r, "out", n)
			run(t, r, func(s *vk.Stream) error {
				if err := r.ResidualAdd(s, a, b, out, relu); err != nil {
					return err
				}
				if err := r.ResidualAdd(s, ia, ib, ia, relu); err != nil {
					return err
				}
				return r.ResidualAdd(s, ja, jb, jb, relu)
			})
			sum, err := ref.ResidualAdd(av, bv, relu)
			must(t, err)
			want := rounded(sum)
			exact(t, "out", download(t, out), want)
			exact(t, "out = a", download(t, ia), want)
			exact(t, "out = b", download(t, jb), want)
		}
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
	if err := r.ResidualAdd(nil, zeros(t, r, "a", 4), zeros(t, r, "b", 5), zeros(t, r, "c", 4), false); err == nil {
		t.Error("operands of different lengths: no error")
	}
}
