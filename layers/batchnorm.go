package layers

import (
	"fmt"

	"vktrain/vk"
)

// BatchNorm is torch.nn.BatchNorm2d's arithmetic over C channels of N x S
// values (S = H*W), element (c, n, s) of every operand at c*CStride +
// n*NStride + s: CNHW activations (the convolutions' layout) have CStride =
// N*S and NStride = S, NCHW ones CStride = S and NStride = C*S.
//
// A training-mode step is BatchNormStats (batch statistics, running statistics
// updated), BatchNormForward, then in the backward BatchNormBackward with
// train set. Eval mode, and frozen BatchNorm when fine-tuning, use
// BatchNormEvalStats (the running statistics) and train unset. The statistics
// tensor holds 2*C floats: the mean of channel c at c and 1/sqrt(var+eps) at
// C+c (shaders/batchnorm.comp).
type BatchNorm struct {
	C, N, S          int
	CStride, NStride int
	Eps              float64 // PyTorch's default 1e-5
	Momentum         float64 // PyTorch's default 0.1
	// ReLU fuses the ReLU after it: the forward writes relu(y), and the
	// backward takes dy as 0 where that output is not positive.
	ReLU bool
}

// BatchNormCNHW is the BatchNorm of a C x N x H x W activation.
func BatchNormCNHW(c, n, h, w int, eps, momentum float64) BatchNorm {
	return BatchNorm{C: c, N: n, S: h * w, CStride: n * h * w, NStride: h * w, Eps: eps, Momentum: momentum}
}

// Error bounds, in units of float32's unit roundoff, of the kernels' results
// against exact arithmetic on the same float32 inputs, with L = N*S values per
// channel and the sums taken as 64 runs of L/64 values and a 6-level tree:
//   - the mean: (L/64 + 8) eps * mean(|x|);
//   - invstd: ((L/64 + 12)/2 + 4) eps * invstd relative (the variance's sum
//     of squares to (L/64 + 12) eps relative, halved by the square root, plus
//     inversesqrt's 2 ulp and eps's addition);
//   - each y: its terms' magnitudes |x - mean| * invstd * |gamma| and |beta|
//     times 4 eps plus the propagated errors of mean and invstd;
//   - dgamma, dbeta: (L/64 + 10) eps of the sum of the magnitudes of their terms.
// layers/batchnorm_test.go composes these per element.

// Check reports sizes below 1, strides that overlap channels or samples, a
// negative eps or a momentum outside [0, 1].
func (b BatchNorm) Check() error {
	if b.C < 1 || b.N < 1 || b.S < 1 {
		return fmt.Errorf("batchnorm: bad shape %d channels x %d samples x %d values", b.C, b.N, b.S)
	}
	if b.NStride < b.S || (b.CStride < b.S && b.CStride != 0) {
		return fmt.Errorf("batchnorm: strides %d (channel) and %d (sample) overlap %d values", b.CStride, b.NStride, b.S)
	}
	if !(b.Eps >= 0) || !(b.Momentum >= 0 && b.Momentum <= 1) {
		return fmt.Errorf("batchnorm: eps %g and momentum %g: want eps >= 0 and momentum in [0, 1]", b.Eps, b.Momentum)
	}
	return nil
}

// span is the number of elements an operand must hold: one past the last.
func (b BatchNorm) span() int { return (b.C-1)*b.CStride + (b.N-1)*b.NStride + b.S }

func (b BatchNorm) push() push {
	return push(nil).u32(b.C, b.N, b.S, b.CStride, b.NStride).f32(float32(b.Eps), float32(b.Momentum))
}

// check validates the operands: activations hold span() elements, per-channel
// tensors C, the statistics 2*C; storage-bound activations must fit the
// device's storage range.
func (r *Runtime) checkBatchNorm(what string, b BatchNorm, acts []*Tensor, stored []*Tensor, perChannel []*Tensor, stats *Tensor) error {
	if err := b.Check(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	for _, t := range append(append([]*Tensor(nil), acts...), perChannel...) {
		if t == nil {
			return fmt.Errorf("%s: an operand is nil", what)
		}
	}
	for _, t := range acts {
		if t.Len() < b.span() {
			return fmt.Errorf("%s: %q has %d elements, the %dx%dx%d operand needs %d", what, t.Name, t.Len(), b.C, b.N, b.S, b.span())
		}
	}
	for _, t := range stored {
		if t.Range().Size > r.storageLimit {
			return fmt.Errorf("%s: %q is %d bytes, past the device's storage-buffer range of %d", what, t.Name, t.Range().Size, r.storageLimit)
		}
	}
	for _, t := range perChannel {
		if t.Len() < b.C {
			return fmt.Errorf("%s: %q has %d elements, want one per channel (%d)", what, t.Name, t.Len(), b.C)
		}
	}
	if stats == nil || stats.Len() < 2*b.C {
		return fmt.Errorf("%s: the statistics tensor must hold 2 x %d channels", what, b.C)
	}
	return nil
}

// BatchNormStats records the batch statistics of x into stats and PyTorch's
// training-mode update of runMean and runVar (momentum towards the batch mean
// and the unbiased variance). Training needs more than one value per channel.
func (r *Runtime) BatchNormStats(s *vk.Stream, b BatchNorm, x, stats, runMean, runVar *Tensor) error {
	if err := r.checkBatchNorm("batchnorm stats", b, []*Tensor{x}, nil, []*Tensor{runMean, runVar}, stats); err != nil {
		return err
	}
	if b.N*b.S < 2 {
		return fmt.Errorf("batchnorm stats: training needs more than 1 value per channel, got %d", b.N*b.S)
	}
	return r.dispatch(s, b.module("batchnorm_stats"), nil, [3]uint32{uint32(b.C), 1, 1}, b.push(),
		b.texels(x), stats.Range(), runMean.Range(), runVar.Range())
}

// BatchNormEvalStats records the eval-mode statistics: the running mean and
// 1/sqrt(running_var + eps).
func (r *Runtime) BatchNormEvalStats(s *vk.Stream, b BatchNorm, stats, runMean, runVar *Tensor) error {
	if err := r.checkBatchNorm("batchnorm eval stats", b, nil, nil, []*Tensor{runMean, runVar}, stats); err != nil {
		return err
	}
	return r.dispatch(s, "batchnorm_eval_stats", nil, r.groups1D(b.C, 64), b.push(), stats.Range(), runMean.Range(), runVar.Range())
}

// BatchNormForward records y = (x - mean) * invstd * gamma + beta with the
// statistics in stats. y may not be x.
func (r *Runtime) BatchNormForward(s *vk.Stream, b BatchNorm, x, stats, gamma, beta, y *Tensor) error {
	if err := r.checkBatchNorm("batchnorm forward", b, []*Tensor{x, y}, []*Tensor{y}, []*Tensor{gamma, beta}, stats); err != nil {
		return err
	}
	if x.Buffer() == y.Buffer() {
		return fmt.Errorf("batchnorm forward: y %q must not be x", y.Name)
	}
	return r.dispatch(s, b.module("batchnorm_apply"), map[uint32]uint32{2: boolU32(b.ReLU)}, b.groups(), b.push(),
		b.texels(x), y.Range(), stats.Range(), gamma.Range(), beta.Range())
}

// BatchNormBackward records dgamma and dbeta (written, not accumulated) and
// dx from the forward's input x, the output gradient dy and the statistics
// the forward used; with b.ReLU also from the forward's output y, which
// masks dy (y is not read otherwise and may be nil). With train the
// statistics were the batch's and dx carries their derivative; without (eval
// mode, frozen BatchNorm) dx = gamma * invstd * dy. dx may not be x or dy.
func (r *Runtime) BatchNormBackward(s *vk.Stream, b BatchNorm, train bool, x, y, dy, stats, gamma, dgamma, dbeta, dx *Tensor) error {
	if !b.ReLU {
		y = x // bound, not read
	}
	if err := r.checkBatchNorm("batchnorm backward", b, []*Tensor{x, y, dy, dx}, []*Tensor{dx}, []*Tensor{gamma, dgamma, dbeta}, stats); err != nil {
		return err
	}
	if dx.Buffer() == x.Buffer() || dx.Buffer() == dy.Buffer() || (b.ReLU && dx.Buffer() == y.Buffer()) {
		return fmt.Errorf("batchnorm backward: dx %q must not be x, y or dy", dx.Name)
	}
	pc := b.push()
	if err := r.dispatch(s, b.module("batchnorm_bwd_reduce"), map[uint32]uint32{2: boolU32(b.ReLU)}, [3]uint32{uint32(b.C), 1, 1}, pc,
		b.texels(x), b.texels(dy), stats.Range(), dgamma.Range(), dbeta.Range(), b.texels(y)); err != nil {
		return err
	}
	return r.dispatch(s, b.module("batchnorm_bwd_data"), map[uint32]uint32{1: boolU32(train), 2: boolU32(b.ReLU)}, b.groups(), pc,
		b.texels(x), b.texels(dy), stats.Range(), gamma.Range(), dgamma.Range(), dbeta.Range(), dx.Range(), b.texels(y))
}

// vec4 reports whether the kernels can take four values per invocation (the
// *_v4 modules): each channel contiguous (NStride = S, as CNHW), its length
// and offset whole texels.
func (b BatchNorm) vec4() bool {
	return b.NStride == b.S && (b.N*b.S)%4 == 0 && b.CStride%4 == 0
}

// module is the kernel of a pass: its four-wide form where vec4 holds.
func (b BatchNorm) module(name string) string {
	if b.vec4() {
		return name + "_v4"
	}
	return name
}

// texels binds an activation as the kernels read it: RGBA32F texels (four
// values) where vec4 holds, R32F (one) otherwise.
func (b BatchNorm) texels(t *Tensor) vk.Range {
	if b.vec4() {
		return t.Range()
	}
	return t.Range().AsR32F()
}

// groups covers a channel's N*S values in x (four per invocation where vec4
// holds) and the channels in y.
func (b BatchNorm) groups() [3]uint32 {
	per := 64
	if b.vec4() {
		per = 256
	}
	return [3]uint32{uint32(ceilDiv(b.N*b.S, per)), uint32(b.C), 1}
}
