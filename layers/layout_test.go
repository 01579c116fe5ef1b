package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vktrain/vk"
)

// TestLayout checks NCHW -> CNHW -> NCHW against a host transpose, exactly, with
// vector (H*W a multiple of 4) and scalar paths, and with the destination bound
// in several runs.
func TestLayout(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(17, 18))
	for _, limit := range []int64{0, 256} {
		for _, sh := range [][4]int{{1, 1, 1, 1}, {3, 13, 7, 5}, {4, 3, 8, 8}, {2, 5, 3, 3}} {
			t.Run(fmt.Sprintf("%v/limit%d", sh, limit), func(t *testing.T) {
				if limit > 0 {
					defer func(l int64) { r.storageLimit = l }(r.storageLimit)
					r.storageLimit = limit
				}
				n, c, h, w := sh[0], sh[1], sh[2], sh[3]
				v := randn(rng, n*c*h*w)
				x := tensorWith(t, r, "x", v, n, c, h, w)
				cn := zeros(t, r, "cnhw", c, n, h, w)
				back := zeros(t, r, "nchw", n, c, h, w)
				run(t, r, func(s *vk.Stream) error {
					if err := r.NCHWToCNHW(s, x, cn); err != nil {
						return err
					}
					return r.CNHWToNCHW(s, cn, back)
				})
				exact := make([]float64, len(v))
				compareBound(t, "cnhw", download(t, cn), swapOuter64(v, n, c, h*w), exact)
				compareBound(t, "round trip", download(t, back), v, exact)
			})
		}
	}
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	a := zeros(t, r, "a", 2, 3, 4, 5)
	if err := r.NCHWToCNHW(s, a, zeros(t, r, "b", 7)); err == nil {
		t.Error("layout into a tensor of another size accepted")
	}
	if err := r.CNHWToNCHW(s, zeros(t, r, "flat", 120), a); err == nil {
		t.Error("layout of a 1-D source accepted")
	}
	if err := r.CNHWToNCHW(s, a, a); err == nil {
		t.Error("layout in place accepted")
	}
}
