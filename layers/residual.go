package layers

import "vktrain/vk"

// ResidualAdd records out = a + b elementwise, or relu(a + b) with relu (a
// residual block's sum and final ReLU in one pass; the backward of the ReLU
// is ReLUBackward on out, and the sum passes its gradient to both operands).
// out may be a or b, which makes it the in-place accumulation of a gradient
// used twice. The float32 sum is exactly rounded: results equal the float64
// reference's rounded to float32 wherever that sum is exact in float64.
func (r *Runtime) ResidualAdd(s *vk.Stream, a, b, out *Tensor, relu bool) error {
	if err := sameLen("residual add", a, b, out); err != nil {
		return err
	}
	return r.elementwise(s, "residual add", a.Len(), func(first, count int) error {
		sa, sb, so := r.spanOf(a, 4, first, count), r.spanOf(b, 4, first, count), r.spanOf(out, 4, first, count)
		pc := push(nil).u32(count, sa.off/4, sb.off/4, so.off/4)
		return r.dispatch(s, "residual_add", map[uint32]uint32{0: boolU32(relu)}, r.groups1D(count, 64), pc,
			sa.rng, sb.rng, so.rng)
	})
}
