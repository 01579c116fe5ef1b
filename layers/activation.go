package layers

import (
	"fmt"

	"vktrain/vk"
)

// The elementwise kernels (ReLU, dropout) read RGBA32F texels and write vec4s,
// four elements per invocation. Tensors are padded to whole texels, so a tensor
// whose length is not a multiple of 4 gets its padding written too. Tensors larger
// than the device's storage range are processed in runs of texels.

// ReLUForward records y = max(x, 0) elementwise, NaN kept as in torch.relu; y may
// be x (in place). Exact. (After a convolution or linear layer, ReLU is usually
// fused into the GEMM epilogue instead.)
func (r *Runtime) ReLUForward(s *vk.Stream, x, y *Tensor) error {
	if err := sameLen("relu", x, y); err != nil {
		return err
	}
	return r.elementwise(s, "relu", x.Len(), func(first, count int) error {
		a, o := r.spanOf(x, 4, first, count), r.spanOf(y, 4, first, count)
		pc := push(nil).u32(count, a.off/4, 0, o.off/4)
		return r.dispatch(s, "relu_fwd", nil, r.groups1D(count, 64), pc, a.rng, o.rng)
	})
}

// ReLUBackward records dx = dy where the forward output y > 0, 0 elsewhere (a
// select: a NaN y gives 0, as ref.ReLUBackward). dx may be dy. Exact.
func (r *Runtime) ReLUBackward(s *vk.Stream, y, dy, dx *Tensor) error {
	if err := sameLen("relu backward", y, dy, dx); err != nil {
		return err
	}
	return r.elementwise(s, "relu backward", y.Len(), func(first, count int) error {
		a, b, o := r.spanOf(y, 4, first, count), r.spanOf(dy, 4, first, count), r.spanOf(dx, 4, first, count)
		pc := push(nil).u32(count, a.off/4, b.off/4, o.off/4)
		return r.dispatch(s, "relu_bwd", nil, r.groups1D(count, 64), pc, a.rng, b.rng, o.rng)
	})
}

// elementwise calls record for each run [first, first+count) of the texels of an
// n-element operation, runs whose bindings fit the storage range.
func (r *Runtime) elementwise(s *vk.Stream, what string, n int, record func(first, count int) error) error {
	runs, err := r.itemRuns(what, ceilDiv(n, 4), 4)
	if err != nil {
		return err
	}
	for _, run := range runs {
		if err := record(run[0], run[1]); err != nil {
			return err
		}
	}
	return nil
}

// sameLen reports a nil tensor or tensors of different lengths.
func sameLen(what string, ts ...*Tensor) error {
	for i, t := range ts {
		if t == nil {
			return fmt.Errorf("%s: operand %d is nil", what, i)
		}
		if t.Len() != ts[0].Len() {
			return fmt.Errorf("%s: %q %v has %d elements, %q %v has %d", what, ts[0].Name, ts[0].Shape, ts[0].Len(), t.Name, t.Shape, t.Len())
		}
	}
	return nil
}
