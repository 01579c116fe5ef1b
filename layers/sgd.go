package layers

import (
	"errors"
	"fmt"
	"math"

	"vktrain/vk"
)

// SGDConfig are the hyper-parameters of torch.optim.SGD.
type SGDConfig struct {
	LR          float64 // learning rate
	Momentum    float64 // momentum factor; 0 disables the momentum buffer
	Dampening   float64 // dampening of the gradient added to the buffer
	WeightDecay float64 // L2 penalty added to the gradient
	Nesterov    bool    // Nesterov momentum; needs Momentum > 0 and Dampening == 0
}

// Validate reports whether the configuration is one torch accepts.
func (c SGDConfig) Validate() error {
	for _, v := range []float64{c.LR, c.Momentum, c.Dampening, c.WeightDecay} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("sgd: hyper-parameters %+v must be finite", c)
		}
	}
	if c.LR < 0 || c.Momentum < 0 || c.WeightDecay < 0 {
		return fmt.Errorf("sgd: negative learning rate, momentum or weight decay in %+v", c)
	}
	if c.Nesterov && (c.Momentum <= 0 || c.Dampening != 0) {
		return errors.New("sgd: nesterov momentum requires a momentum and zero dampening")
	}
	return nil
}

// SGDParams is the optimizer state that a recorded step reads from the device:
// the hyper-parameters, which the host may rewrite between submits (learning-rate
// schedules), and the first-step flag. Like torch, the first step after creation
// (or Restart) sets the momentum buffer to the gradient instead of blending it;
// FinishStep records clearing the flag at the end of the step.
//
// Buffer layout (SGDWords 32-bit words):
//
//	0 SGDLRWord        float32  lr
//	1 SGDMomentumWord  float32  momentum
//	2 SGDDampCWord     float32  1 - dampening (torch's alpha, rounded once from float64)
//	3 SGDDecayWord     float32  weight_decay
//	4 SGDNesterovWord  uint32   1 for Nesterov momentum
//	5 SGDFirstWord     uint32   1 until the first step has run
type SGDParams struct {
	Name string
	cfg  SGDConfig
	buf  *vk.Buffer
}

// Word indices of the SGDParams buffer.
const (
	SGDLRWord       = 0
	SGDMomentumWord = 1
	SGDDampCWord    = 2
	SGDDecayWord    = 3
	SGDNesterovWord = 4
	SGDFirstWord    = 5
	SGDWords        = 8 // words allocated (6 used)
)

// NewSGDParams allocates the optimizer state with cfg and the first-step flag set.
func (r *Runtime) NewSGDParams(name string, cfg SGDConfig) (*SGDParams, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := r.Dev.NewHostBuffer(4*SGDWords, name)
	if err != nil {
		return nil, err
	}
	p := &SGDParams{Name: name, buf: b}
	if err := b.WriteUint32(0, make([]uint32, SGDWords)); err != nil {
		b.Free()
		return nil, err
	}
	if err := p.Set(cfg); err != nil {
		b.Free()
		return nil, err
	}
	if err := p.Restart(); err != nil {
		b.Free()
		return nil, err
	}
	return p, nil
}

// Config returns the hyper-parameters as last set.
func (p *SGDParams) Config() SGDConfig { return p.cfg }

// Set writes new hyper-parameters to the device (the first-step flag is kept).
// It must not race with a running submission that reads them.
func (p *SGDParams) Set(cfg SGDConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	w := []uint32{
		math.Float32bits(float32(cfg.LR)),
		math.Float32bits(float32(cfg.Momentum)),
		math.Float32bits(float32(1 - cfg.Dampening)),
		math.Float32bits(float32(cfg.WeightDecay)),
		boolU32(cfg.Nesterov),
	}
	if err := p.buf.WriteUint32(0, w); err != nil {
		return err
	}
	p.cfg = cfg
	return nil
}

// SetLR changes only the learning rate.
func (p *SGDParams) SetLR(lr float64) error {
	c := p.cfg
	c.LR = lr
	return p.Set(c)
}

// Restart sets the first-step flag: the next step initializes the momentum
// buffers from the gradients, as a fresh torch optimizer does.
func (p *SGDParams) Restart() error {
	return p.buf.WriteUint32(SGDFirstWord, []uint32{1})
}

// First reads the first-step flag from the device.
func (p *SGDParams) First() (bool, error) {
	var w [1]uint32
	err := p.buf.ReadUint32(SGDFirstWord, w[:])
	return w[0] != 0, err
}

// FinishStep records clearing the first-step flag; record it once per step,
// after every SGD update of the step.
func (p *SGDParams) FinishStep(s *vk.Stream) error {
	return s.Fill(p.buf.Slice(4*SGDFirstWord, 4), 0)
}

// Range is the state as a kernel binding.
func (p *SGDParams) Range() vk.Range { return p.buf.Whole() }

// Free releases the buffer.
func (p *SGDParams) Free() {
	if p != nil {
		p.buf.Free()
	}
}

// SGD records one torch.optim.SGD update of param in place from grad, with
// momentum buffer buf (updated in place; nil for none, when momentum is taken
// as 0), reading the hyper-parameters and first-step flag from p when the
// stream runs. The order of operations is torch's (see ref.SGDStep). The three
// tensors must have the same number of elements. Tensors larger than the
// device's storage-buffer range (fc6's weight on lavapipe) are updated in
// several dispatches over aligned sub-ranges.
func (r *Runtime) SGD(s *vk.Stream, p *SGDParams, param, grad, buf *Tensor) error {
	if p == nil || param == nil || grad == nil {
		return errors.New("sgd: nil state, parameter or gradient")
	}
	if grad.Len() != param.Len() || (buf != nil && buf.Len() != param.Len()) {
		return fmt.Errorf("sgd: parameter %q, gradient %q and momentum buffer must have the same length", param.Name, grad.Name)
	}
	if grad.Buffer() == param.Buffer() || (buf != nil && (buf.Buffer() == param.Buffer() || buf.Buffer() == grad.Buffer())) {
		return fmt.Errorf("sgd: parameter %q, gradient %q and momentum buffer must be distinct", param.Name, grad.Name)
	}
	texel := r.Variant == GEMMTexel
	module := "sgd"
	if texel {
		module = "sgd_texel"
	}
	spec := map[uint32]uint32{0: boolU32(buf != nil)}
	mb := param // bound but never accessed without a momentum buffer
	if buf != nil {
		mb = buf
	}
	maxBytes := r.storageLimit
	if texel {
		maxBytes = min(maxBytes, 16*int64(r.Dev.Info.MaxTexelBufferElements))
	}
	chunks, err := r.sgdChunks(param.Range().Size, maxBytes)
	if err != nil {
		return fmt.Errorf("sgd of %q: %w", param.Name, err)
	}
	for _, c := range chunks {
		pr, gr, br := param.Buffer().Slice(c[0], c[1]), grad.Buffer().Slice(c[0], c[1]), mb.Buffer().Slice(c[0], c[1])
		args := []vk.Range{p.Range(), pr, br, gr}
		if texel {
			args = append(args, pr, br)
		}
		n4 := int(c[1] / 16)
		if err := r.dispatch(s, module, spec, r.groups1D(n4, 64), push(nil).u32(n4), args...); err != nil {
			return fmt.Errorf("sgd of %q: %w", param.Name, err)
		}
	}
	return nil
}

// sgdChunks splits size bytes (a multiple of 16) into [offset, size) ranges of
// at most maxBytes each, every offset a multiple of the device's storage and
// texel offset alignments.
func (r *Runtime) sgdChunks(size, maxBytes int64) ([][2]int64, error) {
	align := int64(16)
	for _, a := range []uint64{r.Dev.Info.MinStorageBufferAlign, r.Dev.Info.MinTexelBufferAlign} {
		if a > 1 {
			x, y := align, int64(a)
			for y != 0 {
				x, y = y, x%y
			}
			align = align / x * int64(a) // least common multiple
		}
	}
	step := maxBytes / align * align
	if step <= 0 {
		return nil, fmt.Errorf("storage range of %d bytes is below the binding alignment %d", maxBytes, align)
	}
	var out [][2]int64
	for off := int64(0); off < size; off += step {
		out = append(out, [2]int64{off, min(step, size-off)})
	}
	return out, nil
}
