package layers

import (
	"fmt"

	"vktrain/vk"
)

// Linear is a fully connected layer, y = x W^T + b, with PyTorch's weight layout
// (out x in). Inputs and outputs are N x features, row-major.
type Linear struct {
	In, Out int
	ReLU    bool // fused into the forward GEMM's epilogue
	// GEMM is the matrix-multiply kernel of each pass, indexed by ConvPass
	// (forward, backward-data, backward-weights with the bias gradient):
	// GEMMAuto (the default) runs the runtime's Variant. A forward pass run as
	// a GEMV (batch 1) has no GEMM; a fused update needs the texel kernel.
	GEMM       [3]GEMMVariant
	Weight     *Tensor
	Bias       *Tensor // nil without bias
	WeightGrad *Tensor
	BiasGrad   *Tensor
}

// NewLinear allocates a linear layer's parameters and gradients (zero-filled).
func (r *Runtime) NewLinear(name string, in, out int, bias, relu bool) (*Linear, error) {
	l := &Linear{In: in, Out: out, ReLU: relu}
	var err error
	if l.Weight, err = r.NewTensor(name+".weight", out, in); err != nil {
		return nil, err
	}
	if l.WeightGrad, err = r.NewTensor(name+".weight.grad", out, in); err != nil {
		l.Free()
		return nil, err
	}
	if bias {
		if l.Bias, err = r.NewTensor(name+".bias", out); err != nil {
			l.Free()
			return nil, err
		}
		if l.BiasGrad, err = r.NewTensor(name+".bias.grad", out); err != nil {
			l.Free()
			return nil, err
		}
	}
	return l, nil
}

// Free releases the layer's tensors.
func (l *Linear) Free() {
	for _, t := range []*Tensor{l.Weight, l.Bias, l.WeightGrad, l.BiasGrad} {
		t.Free()
	}
}

func (l *Linear) check(what string, t *Tensor, n, features int) error {
	if t == nil || t.Len() != n*features {
		return fmt.Errorf("linear %dx%d: %s must hold %d x %d values", l.In, l.Out, what, n, features)
	}
	return nil
}

// LinearForward records y (n x Out) = x (n x In) W^T + b, with ReLU if the
// layer fuses it. At batch 1 with In a multiple of 4 it runs as a GEMV
// (shaders/gemv.comp: four output features per workgroup, W read once as
// texels; on lavapipe 1.2-1.6x faster than the GEMM for classifier.1 at batch
// 1, and 2x slower at batch 4, where the GEMM stays); otherwise as a GEMM.
func (r *Runtime) LinearForward(s *vk.Stream, l *Linear, n int, x, y *Tensor) error {
	if err := l.check("x", x, n, l.In); err != nil {
		return err
	}
	if err := l.check("y", y, n, l.Out); err != nil {
		return err
	}
	if LinearGEMVForward(l, n) {
		bias := l.Bias
		if bias == nil {
			bias = y // bound, not read
		}
		wgs := ceilDiv(l.Out, 4)
		groups := [3]uint32{uint32(min(wgs, 65535)), uint32(ceilDiv(wgs, 65535)), 1}
		return r.dispatch(s, "gemv", map[uint32]uint32{1: boolU32(l.Bias != nil), 2: boolU32(l.ReLU)}, groups,
			push(nil).u32(l.In, l.Out), x.Range(), l.Weight.Range(), bias.Range(), y.Range())
	}
	return r.GEMM(s, n, l.Out, l.In,
		Mat{T: x, LD: l.In}, Mat{T: l.Weight, LD: l.In, Trans: true}, Mat{T: y, LD: l.Out},
		GEMMOptions{Bias: l.Bias, ReLU: l.ReLU, Variant: l.GEMM[PassForward]})
}

// LinearBackwardData records dx (n x In) = dy (n x Out) W. With a fused ReLU, dy
// must already be masked by the output (ReLUBackward).
func (r *Runtime) LinearBackwardData(s *vk.Stream, l *Linear, n int, dy, dx *Tensor) error {
	if err := l.check("dy", dy, n, l.Out); err != nil {
		return err
	}
	if err := l.check("dx", dx, n, l.In); err != nil {
		return err
	}
	return r.GEMM(s, n, l.In, l.Out, Mat{T: dy, LD: l.Out}, Mat{T: l.Weight, LD: l.In}, Mat{T: dx, LD: l.In}, GEMMOptions{Variant: l.GEMM[PassBackwardData]})
}

// LinearBackwardWeights records the weight gradient dW = dy^T x and the bias
// gradient db = sum over the batch of dy, overwriting them (or adding to them
// with accumulate).
func (r *Runtime) LinearBackwardWeights(s *vk.Stream, l *Linear, n int, x, dy *Tensor, accumulate bool) error {
	return r.linearGradients(s, l, n, x, dy, Mat{T: l.WeightGrad, LD: l.In}, GEMMOptions{Accumulate: accumulate, Variant: l.GEMM[PassBackwardWeights]}, accumulate)
}

// LinearFusesUpdate reports whether LinearBackwardUpdate can step l's weight
// for a batch of n (see Runtime.FusesUpdate: the runtime's variant and the
// layer's weight-gradient choice texel, n up to gemmSmallKMax, rows aligned
// to 4).
func (r *Runtime) LinearFusesUpdate(l *Linear, n int) bool {
	return l.In%4 == 0 && r.FusesUpdate(n, Mat{LD: l.In}, Mat{LD: l.In}) && r.fusesUpdate(l.GEMM[PassBackwardWeights], n, Mat{LD: l.In}, Mat{LD: l.In})
}

// LinearGEMVForward reports whether l's forward pass at a batch of n runs as
// a GEMV (no GEMM, so no GEMM variant to choose).
func LinearGEMVForward(l *Linear, n int) bool { return n == 1 && l.In%4 == 0 }

// LinearBackwardUpdate is LinearBackwardWeights fused with the SGD step of
// the weight: the bias gradient is written as there, but the weight's
// gradient dy^T x goes straight into sgd's step of l.Weight and its momentum
// (nil without), never stored (GEMMOptions.Update). With dx (n x In; nil for
// none) the same kernel also computes the input gradient dy W from the
// weight before its step, as LinearBackwardData would, reading the weight
// once for both (scratch: at least LinearUpdateScratchLen elements). Without
// dx, record it after LinearBackwardData, which reads the weight before the
// step.
func (r *Runtime) LinearBackwardUpdate(s *vk.Stream, l *Linear, n int, x, dy *Tensor, sgd *SGDParams, momentum, dx, scratch *Tensor) error {
	u := &GEMMUpdate{SGD: sgd, Momentum: momentum}
	if dx != nil {
		if err := l.check("dx", dx, n, l.In); err != nil {
			return err
		}
		u.InputGrad, u.Scratch = Mat{T: dx, LD: l.In}, scratch
	}
	return r.linearGradients(s, l, n, x, dy, Mat{T: l.Weight, LD: l.In}, GEMMOptions{Update: u, Variant: l.GEMM[PassBackwardWeights]}, false)
}

// LinearUpdateScratchLen is the scratch, in elements, that LinearBackwardUpdate
// needs to compute l's input gradient at a batch of n (0 where it does not
// fuse the update).
func (r *Runtime) LinearUpdateScratchLen(l *Linear, n int) int {
	if !r.LinearFusesUpdate(l, n) {
		return 0
	}
	return r.UpdateScratchLen(l.Out, l.In, n, Mat{T: l.Weight, LD: l.In})
}

// linearGradients records the weight's gradient dy^T x into w as o says (stored,
// accumulated or stepped), then the bias gradient (accumulated with accumulateBias).
func (r *Runtime) linearGradients(s *vk.Stream, l *Linear, n int, x, dy *Tensor, w Mat, o GEMMOptions, accumulateBias bool) error {
	if err := l.check("x", x, n, l.In); err != nil {
		return err
	}
	if err := l.check("dy", dy, n, l.Out); err != nil {
		return err
	}
	if err := r.GEMM(s, l.Out, l.In, n, Mat{T: dy, LD: l.Out, Trans: true}, Mat{T: x, LD: l.In}, w, o); err != nil {
		return err
	}
	if l.Bias == nil {
		return nil
	}
	ones, err := r.ones(n)
	if err != nil {
		return err
	}
	// db (1 x Out) = ones (1 x n) dy (n x Out).
	return r.GEMM(s, 1, l.Out, n, Mat{T: ones, LD: n}, Mat{T: dy, LD: l.Out}, Mat{T: l.BiasGrad, LD: l.Out}, GEMMOptions{Accumulate: accumulateBias, Variant: o.Variant})
}

// ones returns a tensor of at least n ones, shared by the runtime.
func (r *Runtime) ones(n int) (*Tensor, error) {
	if r.onesT != nil && r.onesT.Len() >= n {
		return r.onesT, nil
	}
	t, err := r.NewTensor("ones", max(n, 64))
	if err != nil {
		return nil, err
	}
	v := make([]float32, t.Len())
	for i := range v {
		v[i] = 1
	}
	if err := t.Upload(v); err != nil {
		t.Free()
		return nil, err
	}
	// The old tensor may be bound in recorded streams: keep it until Close.
	if r.onesT != nil {
		r.retired = append(r.retired, r.onesT)
	}
	r.onesT = t
	return t, nil
}
