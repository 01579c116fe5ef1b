package layers

import (
	"errors"
	"fmt"
	"math"

	"vktrain/vk"
)

// AdamConfig are the hyper-parameters of torch.optim.Adam, or of AdamW with
// Decoupled (no amsgrad, no maximize).
type AdamConfig struct {
	LR           float64 // learning rate (torch's default 0.001)
	Beta1, Beta2 float64 // moment decay rates (0.9, 0.999)
	Eps          float64 // added to the denominator (1e-8)
	WeightDecay  float64 // Adam: L2 penalty added to the gradient; AdamW: decoupled decay (0.01)
	Decoupled    bool    // AdamW
}

// Validate reports whether the configuration is one torch accepts.
func (c AdamConfig) Validate() error {
	for _, v := range []float64{c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay} {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("adam: hyper-parameters %+v must be finite", c)
		}
	}
	switch {
	case c.LR < 0 || c.Eps < 0 || c.WeightDecay < 0:
		return fmt.Errorf("adam: negative learning rate, eps or weight decay in %+v", c)
	case c.Beta1 < 0 || c.Beta1 >= 1 || c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("adam: betas (%v, %v) must be in [0, 1)", c.Beta1, c.Beta2)
	}
	return nil
}

// Word indices of the AdamParams buffer (shaders/adam.comp).
const (
	adamLRWord = iota
	adamBeta1Word
	adamOneMinusBeta1Word
	adamBeta2Word
	adamOneMinusBeta2Word
	adamEpsWord
	adamDecayWord
	adamStepSizeWord
	adamBC2SqrtWord
	adamDecoupledWord
	adamWords // 10
)

// AdamParams is the optimizer state a recorded step reads from the device: the
// hyper-parameters and the two bias corrections of the step to come, which
// the host rewrites before each submit (SetStep), as torch computes them per
// step in float64.
type AdamParams struct {
	Name string
	cfg  AdamConfig
	step int // the step the buffer is set for (1 for the first)
	buf  *vk.Buffer
}

// NewAdamParams allocates the optimizer state with cfg, set for step 1.
func (r *Runtime) NewAdamParams(name string, cfg AdamConfig) (*AdamParams, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	b, err := r.Dev.NewHostBuffer(4*adamWords, name)
	if err != nil {
		return nil, err
	}
	p := &AdamParams{Name: name, cfg: cfg, buf: b}
	if err := p.SetStep(1); err != nil {
		b.Free()
		return nil, err
	}
	return p, nil
}

// Config returns the hyper-parameters as last set.
func (p *AdamParams) Config() AdamConfig { return p.cfg }

// Step is the step number (from 1) the next submit computes.
func (p *AdamParams) Step() int { return p.step }

// Set writes new hyper-parameters (the step is kept). It must not race with
// a running submission that reads them.
func (p *AdamParams) Set(cfg AdamConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	old := p.cfg
	p.cfg = cfg
	if err := p.SetStep(p.step); err != nil {
		p.cfg = old
		return err
	}
	return nil
}

// SetStep writes the hyper-parameters and bias corrections of step t (from 1):
// step_size = lr / (1 - beta1^t) and sqrt(1 - beta2^t), in float64, rounded once.
func (p *AdamParams) SetStep(t int) error {
	if t < 1 {
		return fmt.Errorf("adam %s: step %d: steps count from 1", p.Name, t)
	}
	c := p.cfg
	f := func(v float64) uint32 { return math.Float32bits(float32(v)) }
	w := []uint32{
		f(c.LR), f(c.Beta1), f(1 - c.Beta1), f(c.Beta2), f(1 - c.Beta2), f(c.Eps), f(c.WeightDecay),
		f(c.LR / (1 - math.Pow(c.Beta1, float64(t)))), f(math.Sqrt(1 - math.Pow(c.Beta2, float64(t)))),
		boolU32(c.Decoupled),
	}
	if err := p.buf.WriteUint32(0, w); err != nil {
		return err
	}
	p.step = t
	return nil
}

// Range is the state as a kernel binding.
func (p *AdamParams) Range() vk.Range { return p.buf.Whole() }

// Free releases the buffer.
func (p *AdamParams) Free() {
	if p != nil {
		p.buf.Free()
	}
}

// Adam records one torch.optim.Adam (or AdamW) update of param in place from
// grad, with the first and second moments m and v (updated in place, zero
// before the first step), reading the hyper-parameters and the step's bias
// corrections from p when the stream runs. The order of operations is torch's
// (see ref.AdamStep). The four tensors must have the same number of elements
// (as for SGD, the buffers' padding to 16 bytes is stepped too). Tensors larger than the device's storage-buffer or texel
// range are updated in several dispatches over aligned sub-ranges.
func (r *Runtime) Adam(s *vk.Stream, p *AdamParams, param, grad, m, v *Tensor) error {
	if p == nil || param == nil || grad == nil || m == nil || v == nil {
		return errors.New("adam: nil state, parameter, gradient or moment")
	}
	ts := []*Tensor{param, grad, m, v}
	for i, t := range ts {
		if t.Len() != param.Len() {
			return fmt.Errorf("adam: parameter %q, gradient %q and moments %q, %q must have the same length", param.Name, grad.Name, m.Name, v.Name)
		}
		for _, u := range ts[i+1:] {
			if t.Buffer() == u.Buffer() {
				return fmt.Errorf("adam: parameter %q, gradient %q and moments %q, %q must be distinct", param.Name, grad.Name, m.Name, v.Name)
			}
		}
	}
	maxBytes := min(r.storageLimit, 16*int64(r.Dev.Info.MaxTexelBufferElements))
	chunks, err := r.sgdChunks(param.Range().Size, maxBytes)
	if err != nil {
		return fmt.Errorf("adam of %q: %w", param.Name, err)
	}
	for _, c := range chunks {
		pr, gr := param.Buffer().Slice(c[0], c[1]), grad.Buffer().Slice(c[0], c[1])
		mr, vr := m.Buffer().Slice(c[0], c[1]), v.Buffer().Slice(c[0], c[1])
		n4 := int(c[1] / 16)
		if err := r.dispatch(s, "adam", nil, r.groups1D(n4, 64), push(nil).u32(n4), p.Range(), pr, mr, vr, gr, pr, mr, vr); err != nil {
			return fmt.Errorf("adam of %q: %w", param.Name, err)
		}
	}
	return nil
}
