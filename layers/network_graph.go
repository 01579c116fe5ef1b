package layers

import (
	"fmt"

	"vktrain/layers/nn"
)

// leaf is one leaf module to lay out, with its per-sample shapes.
type leaf struct {
	path    string
	mod     nn.Module // nil: the flatten
	in, out []int
}

// netBN is one BatchNorm2d on the device: its arithmetic, parameters and
// gradients, running statistics and the statistics the step normalises by.
type netBN struct {
	b                          BatchNorm
	gamma, beta, dgamma, dbeta *Tensor
	stats                      *Tensor // mean and 1/sqrt(var + eps) per channel
	runMean, runVar            *Tensor
	tracked                    int64 // num_batches_tracked
}

// gradSum is out = a + b on gradients (out may be a or b).
type gradSum struct{ a, b, out *Tensor }

// gradPlan is what the backward pass has made of an activation's gradient so
// far (planBackward): buf, written by a kernel, and pending, gradients that
// ops passed on unchanged (a sum's), not yet added in.
type gradPlan struct {
	buf      *Tensor
	pending  []*Tensor
	resolved bool
}

// addChain lays out leaves in sequence from x and returns the last output.
// A ReLU after a convolution, linear layer, BatchNorm or residual sum is fused
// into it.
func (n *Network) addChain(leaves []leaf, x *Tensor) (*Tensor, error) {
	cur := x
	for i, l := range leaves {
		if _, isReLU := l.mod.(*nn.ReLU); isReLU && len(n.ops) > 0 {
			if prev := n.ops[len(n.ops)-1]; prev.relu && prev.y == cur {
				n.ops = append(n.ops, &netOp{layer: nn.Layer{Path: l.path, Module: l.mod, In: l.in, Out: l.out}, skip: true, x: cur, y: cur})
				continue
			}
		}
		var err error
		if b, ok := l.mod.(*nn.Block); ok {
			cur, err = n.addBlock(l, b, cur)
		} else {
			nextReLU := false
			if i+1 < len(leaves) {
				_, nextReLU = leaves[i+1].mod.(*nn.ReLU)
			}
			cur, err = n.addLeaf(l, cur, nextReLU)
		}
		if err != nil {
			return nil, err
		}
	}
	return cur, nil
}

// addBlock lays out a residual block: its main path and shortcut from x,
// then their sum with the block's final ReLU fused.
func (n *Network) addBlock(l leaf, b *nn.Block, x *Tensor) (*Tensor, error) {
	mainLayers, shortLayers, err := b.Layers(l.path, l.in)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	leaves := func(ls []nn.Layer) []leaf {
		out := make([]leaf, len(ls))
		for i, c := range ls {
			out[i] = leaf{path: c.Path, mod: c.Module, in: c.In, out: c.Out}
		}
		return out
	}
	mainOut, err := n.addChain(leaves(mainLayers), x)
	if err != nil {
		return nil, err
	}
	short := x
	if len(shortLayers) > 0 {
		if short, err = n.addChain(leaves(shortLayers), x); err != nil {
			return nil, err
		}
	}
	op := &netOp{layer: nn.Layer{Path: l.path, Module: b, In: l.in, Out: l.out}, add: true, relu: true, x: mainOut, x2: short}
	if op.y, err = n.alloc(l.path+".out", mainOut.Shape...); err != nil {
		return nil, err
	}
	n.appendOp(op)
	return op.y, nil
}

// appendOp adds op to the forward pass, noting whether its output needs a
// gradient (it trains, or an input needs one).
func (n *Network) appendOp(op *netOp) {
	needs := op.trains || n.needsGrad[op.x]
	if op.x2 != nil {
		needs = needs || n.needsGrad[op.x2]
	}
	n.needsGrad[op.y] = needs
	n.ops = append(n.ops, op)
}

// addLeaf lays out one leaf module reading x (nextReLU: a ReLU follows, to
// fuse into a convolution, linear layer or BatchNorm) and returns its output.
func (n *Network) addLeaf(l leaf, x *Tensor, nextReLU bool) (*Tensor, error) {
	batch := n.cfg.Batch
	op := &netOp{layer: nn.Layer{Path: l.path, Module: l.mod, In: l.in, Out: l.out}, x: x}
	var err error
	switch m := l.mod.(type) {
	case *nn.Conv2d:
		if m.Groups > 1 || m.Dilation != [2]int{1, 1} || m.Stride[0] != m.Stride[1] || m.Padding[0] != m.Padding[1] {
			return nil, fmt.Errorf("network: %s %s: only square stride and padding, no groups or dilation", l.path, m)
		}
		op.relu = nextReLU
		if op.conv, err = n.rt.NewConv2D(l.path, m.InChannels, m.OutChannels, m.KernelSize[0], m.KernelSize[1], m.Stride[0], m.Padding[0], op.relu); err != nil {
			return nil, err
		}
		n.freed = append(n.freed, op.conv)
		if !m.Bias {
			op.conv.DropBias()
		}
		op.conv.SetAlgo(op.conv.ChooseAlgo(n.cfg.ConvAlgo, l.out[1], l.out[2]))
		if choice, ok := n.cfg.ConvChoices[l.path]; ok {
			for pass, a := range choice {
				if !op.conv.AlgoApplies(a) {
					return nil, fmt.Errorf("network: %s %s: %s does not apply to its %s pass", l.path, m, a, ConvPass(pass))
				}
			}
			op.conv.Algo = choice
		}
		op.conv.GEMM = n.cfg.GEMMChoices[l.path]
		op.inH, op.inW, op.outH, op.outW = l.in[1], l.in[2], l.out[1], l.out[2]
		op.y, err = n.alloc(l.path+".out", l.out[0], batch, l.out[1], l.out[2])
		n.scratchLen = max(n.scratchLen, op.conv.AnyAlgoScratchLen(batch, op.inH, op.inW))
		op.trains = n.addWeightBias(l.path, op.conv.Weight, op.conv.WeightGrad, op.conv.Bias, op.conv.BiasGrad)
	case *nn.Linear:
		op.relu = nextReLU
		if op.lin, err = n.rt.NewLinear(l.path, m.InFeatures, m.OutFeatures, m.Bias, op.relu); err != nil {
			return nil, err
		}
		n.freed = append(n.freed, op.lin)
		op.lin.GEMM = n.cfg.GEMMChoices[l.path]
		if n.cfg.Train && n.cfg.Adam == nil && !n.cfg.UnfusedSGD { // the fused update's partial input gradients
			n.scratchLen = max(n.scratchLen, n.rt.LinearUpdateScratchLen(op.lin, batch))
		}
		op.y, err = n.alloc(l.path+".out", batch, m.OutFeatures)
		op.trains = n.addWeightBias(l.path, op.lin.Weight, op.lin.WeightGrad, op.lin.Bias, op.lin.BiasGrad)
	case *nn.BatchNorm2d:
		op.relu = nextReLU
		if err := n.addBatchNorm(op, m); err != nil {
			return nil, err
		}
	case *nn.ReLU:
		op.y, err = n.alloc(l.path+".out", x.Shape...)
	case *nn.MaxPool2d:
		if m.CeilMode || m.Dilation != 1 {
			return nil, fmt.Errorf("network: %s %s: ceil_mode and dilation are not supported", l.path, m)
		}
		op.pool = Pool2D{KH: m.KernelSize, KW: m.KernelSize, StrideH: m.Stride, StrideW: m.Stride, PadH: m.Padding, PadW: m.Padding}
		op.planes, op.inH, op.inW, op.outH, op.outW = l.in[0]*batch, l.in[1], l.in[2], l.out[1], l.out[2]
		if op.y, err = n.alloc(l.path+".out", l.out[0], batch, l.out[1], l.out[2]); err == nil {
			op.argmax, err = n.alloc(l.path+".argmax", l.out[0], batch, l.out[1], l.out[2])
		}
	case *nn.AdaptiveAvgPool2d:
		op.planes, op.inH, op.inW, op.outH, op.outW = l.in[0]*batch, l.in[1], l.in[2], l.out[1], l.out[2]
		op.y, err = n.alloc(l.path+".out", l.out[0], batch, l.out[1], l.out[2])
	case *nn.Dropout:
		n.drops++
		op.dropout, op.dropIdx = float32(m.P), n.drops
		op.y, err = n.alloc(l.path+".out", x.Shape...)
	case nil: // the flatten: C x N x H x W -> N x (C*H*W)
		var t *Tensor
		if t, err = n.alloc("flatten.out", batch, x.Shape[0], x.Shape[2], x.Shape[3]); err == nil {
			op.y, err = t.Reshape(batch, l.out[0])
		}
	default:
		return nil, fmt.Errorf("network: %s: layer type %s is not supported", l.path, l.mod.Type())
	}
	if err != nil {
		return nil, err
	}
	n.appendOp(op)
	return op.y, nil
}

// addWeightBias adds a layer's weight and its bias (none where bias is nil)
// as parameters and reports whether they train.
func (n *Network) addWeightBias(path string, weight, weightGrad, bias, biasGrad *Tensor) bool {
	trains := n.trainable[path+".weight"]
	n.addParam(path+".weight", weight, weightGrad, trains)
	if bias != nil {
		n.addParam(path+".bias", bias, biasGrad, trains)
	}
	return trains
}

// addBatchNorm lays out a BatchNorm2d on op's CNHW input: gamma 1, beta 0,
// running mean 0 and variance 1 (PyTorch's initial values) until loaded.
func (n *Network) addBatchNorm(op *netOp, m *nn.BatchNorm2d) error {
	path := op.layer.Path
	if !m.Affine || !m.TrackRunningStats {
		return fmt.Errorf("network: %s %s: only affine BatchNorm tracking running statistics", path, m)
	}
	sh := op.x.Shape
	bn := &netBN{b: BatchNormCNHW(sh[0], sh[1], sh[2], sh[3], m.Eps, m.Momentum)}
	bn.b.ReLU = op.relu
	c := m.NumFeatures
	for _, t := range []struct {
		dst  **Tensor
		name string
		len  int
		fill float32
	}{
		{&bn.gamma, ".weight", c, 1}, {&bn.beta, ".bias", c, 0}, {&bn.dgamma, ".weight.grad", c, 0}, {&bn.dbeta, ".bias.grad", c, 0},
		{&bn.stats, ".stats", 2 * c, 0}, {&bn.runMean, ".running_mean", c, 0}, {&bn.runVar, ".running_var", c, 1},
	} {
		var err error
		if *t.dst, err = n.alloc(path+t.name, t.len); err != nil {
			return err
		}
		if t.fill != 0 {
			v := make([]float32, t.len)
			for i := range v {
				v[i] = t.fill
			}
			if err := (*t.dst).Upload(v); err != nil {
				return err
			}
		}
	}
	op.bn = bn
	op.trains = n.trainable[path+".weight"]
	n.addParam(path+".weight", bn.gamma, bn.dgamma, op.trains)
	n.addParam(path+".bias", bn.beta, bn.dbeta, op.trains)
	n.buffers = append(n.buffers,
		&netBuffer{name: path + ".running_mean", shape: []int{c}, value: bn.runMean},
		&netBuffer{name: path + ".running_var", shape: []int{c}, value: bn.runVar},
		&netBuffer{name: path + ".num_batches_tracked", shape: []int{}, tracked: &bn.tracked})
	var err error
	op.y, err = n.alloc(path+".out", sh...)
	return err
}

// gradPool hands out the buffers of activation gradients by shape and takes
// them back once no op still to run in the backward pass reads them, so that
// gradients are allocated by liveness: a buffer serves every gradient of its
// shape whose lifetimes do not overlap.
type gradPool struct {
	n      *Network
	free   map[string][]*Tensor
	refs   map[*Tensor]int
	pooled map[*Tensor]bool
	made   int
}

// get returns a free buffer of shape (a new one if none is), held once.
func (g *gradPool) get(shape []int) (*Tensor, error) {
	key := shapeText(shape)
	if free := g.free[key]; len(free) > 0 {
		t := free[len(free)-1]
		g.free[key] = free[:len(free)-1]
		g.refs[t] = 1
		return t, nil
	}
	g.made++
	t, err := g.n.alloc(fmt.Sprintf("grad.%d.%s", g.made, key), shape...)
	if err != nil {
		return nil, err
	}
	g.pooled[t], g.refs[t] = true, 1
	return t, nil
}

// hold counts one more reader of t.
func (g *gradPool) hold(t *Tensor) { g.refs[t]++ }

// drop counts one reader fewer, freeing t for reuse after the last.
func (g *gradPool) drop(t *Tensor) {
	if !g.pooled[t] {
		return
	}
	if g.refs[t]--; g.refs[t] == 0 {
		key := shapeText(t.Shape)
		g.free[key] = append(g.free[key], t)
	}
}

// planBackward decides, op by op in reverse, where each gradient lives. An
// activation read by one op gets its gradient from that op's backward
// kernel; a sum passes its output's gradient on to both operands unchanged
// (no copy); an activation read by several ops gets the first kernel's
// output, and each later contribution is written to a temporary and added
// in (gradSum), as autograd accumulates .grad. Buffers come from a gradPool:
// a gradient's buffer is reused once the op that made the activation has
// read it.
func (n *Network) planBackward() error {
	pool := &gradPool{n: n, free: map[string][]*Tensor{}, refs: map[*Tensor]int{}, pooled: map[*Tensor]bool{}}
	plans := map[*Tensor]*gradPlan{n.logits: {buf: n.dlogits}}
	for i := len(n.ops) - 1; i >= 0; i-- {
		op := n.ops[i]
		wantX := n.needsGrad[op.x]
		wantX2 := op.x2 != nil && n.needsGrad[op.x2]
		if op.skip || (!op.trains && !wantX && !wantX2) {
			continue
		}
		done, err := n.resolveGrad(plans, pool, op)
		if err != nil {
			return err
		}
		if op.add {
			src := op.dy
			if op.relu {
				if op.dsum, err = pool.get(op.y.Shape); err != nil {
					return err
				}
				done = append(done, op.dsum)
				src = op.dsum
			}
			for _, in := range []*Tensor{op.x, op.x2} {
				if n.needsGrad[in] {
					p := planOf(plans, in)
					p.pending = append(p.pending, src)
					pool.hold(src)
				}
			}
		} else if wantX {
			p := planOf(plans, op.x)
			switch {
			case p.buf == nil && len(p.pending) == 0:
				p.buf, err = pool.get(op.x.Shape)
				op.dx = p.buf
			case p.buf == nil:
				if p.buf, err = pool.get(op.x.Shape); err == nil {
					op.dx, err = pool.get(op.x.Shape)
				}
				op.accum = append(op.accum, gradSum{a: op.dx, b: p.pending[0], out: p.buf})
				done = append(done, op.dx, p.pending[0])
				p.pending = p.pending[1:]
			default:
				op.dx, err = pool.get(op.x.Shape)
				op.accum = append(op.accum, gradSum{a: p.buf, b: op.dx, out: p.buf})
				done = append(done, op.dx)
			}
		} else if op.bn != nil { // its kernel writes dx even where nothing before needs it
			op.dx, err = pool.get(op.x.Shape)
			done = append(done, op.dx)
		}
		if err != nil {
			return err
		}
		for _, t := range done {
			pool.drop(t)
		}
	}
	return nil
}

func planOf(plans map[*Tensor]*gradPlan, t *Tensor) *gradPlan {
	p := plans[t]
	if p == nil {
		p = &gradPlan{}
		plans[t] = p
	}
	return p
}

// resolveGrad sets op.dy from what op's consumers contributed (every one of
// them is later in the forward pass, so all have been planned), adding any
// pending gradients in before op's backward (op.pre). It returns the
// buffers op's backward is the last to read.
func (n *Network) resolveGrad(plans map[*Tensor]*gradPlan, pool *gradPool, op *netOp) ([]*Tensor, error) {
	p := plans[op.y]
	if p == nil || (p.buf == nil && len(p.pending) == 0) {
		return nil, fmt.Errorf("network: %s: no gradient reaches its output", op.layer.Path)
	}
	if p.resolved {
		return nil, fmt.Errorf("network: %s: its output's gradient was read before it was complete", op.layer.Path)
	}
	p.resolved = true
	if p.buf == nil && len(p.pending) == 1 {
		// The gradient another op passed on, shared: ops that mask their dy
		// in place (a fused ReLU's backward) would change it for the others.
		if (op.conv != nil || op.lin != nil) && op.relu {
			return nil, fmt.Errorf("network: %s: a convolution or linear layer with a fused ReLU feeding a residual sum is not supported", op.layer.Path)
		}
		op.dy = p.pending[0]
		return []*Tensor{op.dy}, nil
	}
	pending := p.pending
	done := append([]*Tensor(nil), pending...)
	if p.buf == nil {
		var err error
		if p.buf, err = pool.get(op.y.Shape); err != nil {
			return nil, err
		}
		op.pre = append(op.pre, gradSum{a: pending[0], b: pending[1], out: p.buf})
		pending = pending[2:]
	}
	for _, g := range pending {
		op.pre = append(op.pre, gradSum{a: p.buf, b: g, out: p.buf})
	}
	op.dy = p.buf
	return append(done, op.dy), nil
}
