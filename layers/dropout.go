package layers

import (
	"fmt"
	"math"

	"vktrain/vk"
)

// DropoutForward records inverted dropout: y = x/(1-p) where the keep mask holds,
// 0 elsewhere (p = 1 drops everything). y may be x.
//
// The mask is ref.DropoutMask(n, p, seed, step) bit for bit: element i takes word
// i&3 of Philox4x32-10(counter (i>>2, 0, step lo, step hi), key (seed lo, seed hi))
// as r and is kept iff float64(r>>8)/2^24 >= p (tested on the GPU as the integer
// r>>8 >= ceil(p*2^24)). Seed and step are read from state when the stream runs,
// not when it is recorded: rewrite them (StepState.SetStep) between submits of
// the same stream. Nothing is stored: DropoutBackward recomputes the mask from the
// same state, so the state must not change between a step's forward and backward.
// Kept values are x times float32(1/(1-p)): within 2 float32 unit roundoffs of
// ref.DropoutForward (exact when 1/(1-p) is a power of two, as for p = 0.5).
//
// state nil means evaluation: dropout is the identity, recorded as a copy of x
// into y (nothing when y is x).
func (r *Runtime) DropoutForward(s *vk.Stream, p float32, state *StepState, x, y *Tensor) error {
	return r.dropout(s, "dropout", p, state, x, y)
}

// DropoutBackward records dx = dy/(1-p) where the forward's mask keeps the
// element, 0 elsewhere, recomputing the mask from state (which must hold the
// forward's seed and step). dx may be dy. state nil means evaluation: dx = dy.
func (r *Runtime) DropoutBackward(s *vk.Stream, p float32, state *StepState, dy, dx *Tensor) error {
	return r.dropout(s, "dropout backward", p, state, dy, dx)
}

func (r *Runtime) dropout(s *vk.Stream, what string, p float32, state *StepState, in, out *Tensor) error {
	if !(p >= 0 && p <= 1) {
		return fmt.Errorf("%s: probability %v outside [0, 1]", what, p)
	}
	if err := sameLen(what, in, out); err != nil {
		return err
	}
	if state == nil {
		if in.Buffer() == out.Buffer() {
			return nil
		}
		return s.Copy(out.Range(), in.Range())
	}
	threshold := uint32(math.Ceil(float64(p) * (1 << 24)))
	scale := float32(0)
	if p < 1 {
		scale = float32(1 / (1 - float64(p)))
	}
	return r.elementwise(s, what, in.Len(), func(first, count int) error {
		a, o := r.spanOf(in, 4, first, count), r.spanOf(out, 4, first, count)
		pc := push(nil).u32(count, a.off/4, o.off/4, first, int(threshold)).f32(scale)
		return r.dispatch(s, "dropout", nil, r.groups1D(count, 64), pc, a.rng, state.Range(), o.rng)
	})
}
