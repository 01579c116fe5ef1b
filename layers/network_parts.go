package layers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"vktrain/vk"
)

// StepPart is one piece of a network's step: the step is recorded as its parts
// with InStep set, in order, so the step's per-dispatch timings can be attributed
// to them, and each part can also be recorded alone and timed (benchmarks).
type StepPart struct {
	Layer string // layer path ("features.0"), or "input", "loss", "sgd", "flatten"
	Type  string // module type ("Conv2d", "Linear", ...), or "Preprocess", "SoftmaxCrossEntropy", "SGD", "Layout", "Fill"
	Pass  string // "forward", "backward", "backward-data", "backward-weights", "backward-bias", "backward-relu", "update", "reset", "relu-forward" (a fused ReLU alone)
	Shape string // the shapes it works on, for the table
	FLOPs float64
	Bytes float64 // bytes read plus written (an estimate for memory-bound parts)
	// GEMMLike is set where FLOPs measure the part (a GEMM-based pass); otherwise
	// Bytes do.
	GEMMLike bool
	// Variant is set where the part depends on the runtime's GEMM variant (the
	// GEMMs and the SGD update): recording it under another Runtime.Variant
	// times that variant.
	Variant bool
	// InStep is false for a part that the step does not record as such (the
	// standalone ReLU forward of a ReLU that the step fuses into a GEMM).
	InStep bool
	// Conv is the convolution whose Algo[ConvPass()] the part follows (nil for
	// other parts): recording it with another Algo times that algorithm.
	Conv *Conv2D
	// Linear is the linear layer of a linear layer's pass (nil for others).
	Linear *Linear
	// GEMM, where the part's GEMMs follow a per-pass choice of kernel (a
	// convolution's passes; a linear layer's, but for a GEMV forward or a
	// weight gradient fused with its SGD step, which needs the texel kernel),
	// points at that choice (Conv2D.GEMM or Linear.GEMM): recording the part
	// with another value there times that kernel. nil elsewhere.
	GEMM *GEMMVariant
	// Traffic is the fewest bytes the part must move: each operand read once,
	// each result written once (Bytes for memory-bound parts; for a GEMM-based
	// pass its inputs, weights and outputs, whatever the algorithm adds).
	Traffic float64
	// ConvIn is Conv's input height and width, and Batch the images per step
	// (set for convolutions' and linear layers' parts).
	ConvIn [2]int
	Batch  int
	// Record records the part into s with the network's own tensors.
	Record func(s *vk.Stream) error
}

// ConvPass is the convolution pass p is (with ok false for a part that is
// not one of the three passes of p.Conv).
func (p StepPart) ConvPass() (pass ConvPass, ok bool) {
	if p.Conv == nil {
		return 0, false
	}
	pass, err := ParseConvPass(p.Pass)
	return pass, err == nil
}

// RecordWay records the part alone into a new stream on dev (named name, with
// timestamps), ended and ready to run, as computed by convolution algorithm
// algo (a convolution's pass only; ignored for other parts) and GEMM kernel v
// (a part with a per-pass GEMM choice only; ignored for others, GEMMAuto keeping
// the part's own). The part's choices are restored before it returns: what was
// recorded stays in the stream. The caller closes the stream. This is how the
// tuner and the benchmarks time one way of computing a pass.
func (p StepPart) RecordWay(dev *vk.Device, name string, algo ConvAlgo, v GEMMVariant) (*vk.Stream, error) {
	if pass, ok := p.ConvPass(); ok {
		defer func(a [3]ConvAlgo) { p.Conv.Algo = a }(p.Conv.Algo)
		p.Conv.Algo[pass] = algo
	}
	if p.GEMM != nil && v != GEMMAuto {
		defer func(g GEMMVariant) { *p.GEMM = g }(*p.GEMM)
		*p.GEMM = v
	}
	return dev.Record(name, vk.StreamOptions{Timestamps: true}, p.Record)
}

// Runtime is the runtime the network was laid out on.
func (n *Network) Runtime() *Runtime { return n.rt }

// StepParts splits the step of kind (for slot 0's buffers) into parts. The
// parts with InStep set, recorded in order, make up exactly that step's commands.
func (n *Network) StepParts(kind StepKind) ([]StepPart, error) {
	sl := n.slots[0]
	if sl == nil || sl.streams[kind] == nil {
		return nil, errors.New("network: built without that step (NetworkConfig.Train)")
	}
	parts := n.parts(sl, kind)
	for i := range parts {
		if parts[i].Traffic == 0 {
			parts[i].Traffic = parts[i].Bytes
		}
	}
	return parts, nil
}

// parts is the step of kind for slot sl, as parts (see StepPart).
func (n *Network) parts(sl *slot, kind StepKind) []StepPart {
	rt, batch := n.rt, n.cfg.Batch
	train := kind == TrainStep
	in := n.cfg.Input
	var augState *StepState
	if train && in.Augmented() {
		augState = sl.states[0]
	}
	var parts []StepPart
	add := func(p StepPart) {
		parts = append(parts, p)
	}
	add(StepPart{Layer: "loss", Type: "Fill", Pass: "reset", Shape: "stats", InStep: true, Bytes: float64(sl.stats.Range().Size),
		Record: func(s *vk.Stream) error { return sl.stats.RecordReset(s) }})
	add(StepPart{Layer: "input", Type: "Preprocess", Pass: "forward", InStep: true,
		Shape: fmt.Sprintf("%dx3x%dx%d u8 -> %s", batch, in.SrcH, in.SrcW, shapeText(n.input.Shape)),
		Bytes: float64(batch*in.RecordBytes()) + 4*float64(n.input.Len()),
		Record: func(s *vk.Stream) error {
			return rt.Preprocess(s, in, sl.records.Whole(), batch, augState, n.input)
		}})
	for _, op := range n.ops {
		if op.skip {
			continue
		}
		p := n.opPart(op, "forward")
		p.InStep = true
		if op.conv != nil {
			p.GEMM = &op.conv.GEMM[PassForward]
		} else if op.lin != nil && !LinearGEMVForward(op.lin, batch) {
			p.GEMM = &op.lin.GEMM[PassForward]
		}
		p.Record = func(s *vk.Stream) error { return n.forward(s, sl, op, train) }
		add(p)
		if op.relu { // the fused ReLU, alone (not part of the step)
			y := op.y
			add(StepPart{Layer: op.layer.Path, Type: "ReLU", Pass: "relu-forward", Shape: shapeText(y.Shape),
				Bytes: 8 * float64(y.Len()), Record: func(s *vk.Stream) error { return rt.ReLUForward(s, y, y) }})
		}
	}
	add(StepPart{Layer: "loss", Type: "SoftmaxCrossEntropy", Pass: "forward+backward", Shape: shapeText(n.logits.Shape), InStep: true,
		Bytes: 4 * float64(2*n.logits.Len()+batch),
		Record: func(s *vk.Stream) error {
			smoothing := 0.0 // evaluation reports the plain cross-entropy
			if train {
				smoothing = n.cfg.LabelSmoothing
			}
			return rt.SoftmaxCrossEntropySmoothed(s, n.logits, sl.labels.Whole(), n.dlogits, sl.stats, smoothing)
		}})
	if !train {
		return parts
	}
	for i := len(n.ops) - 1; i >= 0; i-- {
		op := n.ops[i]
		if op.skip || op.dy == nil {
			continue
		}
		parts = append(parts, n.sumParts(op, op.pre)...)
		parts = append(parts, n.backwardParts(sl, op, op.dx)...)
		parts = append(parts, n.sumParts(op, op.accum)...)
	}
	var elems int
	var sgdParams []*netParam
	for _, p := range n.params {
		if p.trainable && !p.fused {
			elems += p.value.Len()
			sgdParams = append(sgdParams, p)
		}
	}
	if n.cfg.Adam != nil {
		add(StepPart{Layer: "adam", Type: "Adam", Pass: "update", Shape: fmt.Sprintf("%d tensors, %d parameters", len(sgdParams), elems),
			Bytes: 28 * float64(elems), InStep: true, // read param, grad and both moments, write param and moments
			Record: func(s *vk.Stream) error {
				for _, p := range sgdParams {
					if err := rt.Adam(s, n.groups[p.group].adam, p.value, p.grad, p.momentum, p.sq); err != nil {
						return fmt.Errorf("adam %s: %w", p.name, err)
					}
				}
				return nil
			}})
		return parts
	}
	per := 12.0 // read param and grad, write param
	if n.cfg.SGD.Momentum != 0 {
		per = 20 // and read and write the momentum
	}
	add(StepPart{Layer: "sgd", Type: "SGD", Pass: "update", Shape: fmt.Sprintf("%d tensors, %d parameters", len(sgdParams), elems),
		Bytes: per * float64(elems), Variant: true, InStep: true,
		Record: func(s *vk.Stream) error {
			for _, p := range sgdParams {
				if err := rt.SGD(s, n.groups[p.group].sgd, p.value, p.grad, p.momentum); err != nil {
					return fmt.Errorf("sgd %s: %w", p.name, err)
				}
			}
			for _, g := range n.groups {
				if err := g.sgd.FinishStep(s); err != nil {
					return err
				}
			}
			return nil
		}})
	return parts
}

// opPart describes op's pass (without Record).
func (n *Network) opPart(op *netOp, pass string) StepPart {
	batch := n.cfg.Batch
	p := StepPart{Layer: op.layer.Path, Pass: pass, Shape: shapeText(op.x.Shape) + " -> " + shapeText(op.y.Shape)}
	switch {
	case op.conv != nil:
		c := op.conv
		p.Type, p.GEMMLike, p.Variant, p.Conv = "Conv2d", true, true, c
		p.Traffic = 4 * float64(op.x.Len()+c.Weight.Len()+op.y.Len())
		p.ConvIn, p.Batch = [2]int{op.inH, op.inW}, batch
		p.FLOPs = 2 * float64(c.K) * float64(c.crs()) * float64(batch*op.outH*op.outW)
		p.Shape = fmt.Sprintf("%s -> %s, %dx%d/%d", shapeText(op.x.Shape), shapeText(op.y.Shape), c.R, c.S, c.StrideH)
	case op.lin != nil:
		p.Type, p.GEMMLike, p.Variant, p.Linear, p.Batch = "Linear", true, true, op.lin, batch
		p.Traffic = 4 * float64(op.x.Len()+op.lin.Weight.Len()+op.y.Len())
		p.FLOPs = 2 * float64(batch) * float64(op.lin.In) * float64(op.lin.Out)
	case op.add:
		p.Type, p.Shape = "Add", shapeText(op.y.Shape)
		if op.relu {
			p.Type = "Add+ReLU"
		}
		p.Bytes = 12 * float64(op.y.Len())
	case op.bn != nil:
		p.Type = "BatchNorm2d"
		if op.relu {
			p.Type = "BatchNorm2d+ReLU"
		}
		p.Bytes = 4 * float64(3*op.x.Len()+op.y.Len()) // two statistics passes over x, then x read and y written
	case op.argmax != nil:
		p.Type = "MaxPool2d"
		p.Bytes = 4*float64(op.x.Len()) + 8*float64(op.y.Len())
	case op.layer.Module == nil:
		p.Layer, p.Type = "flatten", "Layout"
		p.Bytes = 8 * float64(op.x.Len())
	default:
		p.Type = op.layer.Module.Type()
		p.Bytes = 4 * float64(op.x.Len()+op.y.Len())
	}
	return p
}

// sumParts records gradient sums (a gradient used twice) as parts of op's
// backward pass.
func (n *Network) sumParts(op *netOp, sums []gradSum) []StepPart {
	var out []StepPart
	for _, g := range sums {
		out = append(out, StepPart{Layer: op.layer.Path, Type: "Add", Pass: "backward-accumulate", Shape: shapeText(g.out.Shape),
			Bytes: 12 * float64(g.out.Len()), InStep: true,
			Record: func(s *vk.Stream) error { return n.rt.ResidualAdd(s, g.a, g.b, g.out, false) }})
	}
	return out
}

// backwardParts splits op's backward pass into its passes, in order.
func (n *Network) backwardParts(sl *slot, op *netOp, dx *Tensor) []StepPart {
	rt, batch := n.rt, n.cfg.Batch
	var out []StepPart
	// add appends a GEMM-based pass whose kernel choice is gemm (nil: none).
	add := func(pass string, flops float64, gemm *GEMMVariant, rec func(s *vk.Stream) error) {
		p := n.opPart(op, pass)
		p.InStep, p.Record, p.GEMM = true, rec, gemm
		if flops > 0 {
			p.FLOPs = flops
		}
		out = append(out, p)
	}
	memory := func(pass string, bytes float64, rec func(s *vk.Stream) error) {
		p := n.opPart(op, pass)
		p.InStep, p.Record = true, rec
		p.GEMMLike, p.Variant, p.FLOPs, p.Bytes, p.Traffic, p.Conv, p.Linear = false, false, 0, bytes, bytes, nil, nil
		out = append(out, p)
	}
	switch {
	case op.add:
		if op.relu {
			memory("backward-relu", 12*float64(op.y.Len()), func(s *vk.Stream) error { return rt.ReLUBackward(s, op.y, op.dy, op.dsum) })
		}
	case op.bn != nil:
		bn := op.bn
		p := n.opPart(op, "backward")
		p.InStep, p.Bytes = true, 4*float64(3*op.x.Len()+2*op.dy.Len())
		p.Record = func(s *vk.Stream) error {
			return rt.BatchNormBackward(s, bn.b, !n.cfg.FrozenBatchNorm, op.x, op.y, op.dy, bn.stats, bn.gamma, bn.dgamma, bn.dbeta, dx)
		}
		out = append(out, p)
	case op.conv != nil:
		c := op.conv
		if op.trains && (c.Bias != nil || c.ReLU) {
			memory("backward-bias", 12*float64(op.y.Len()), func(s *vk.Stream) error {
				return rt.Conv2DBackwardBias(s, c, op.y, op.dy, false)
			})
		}
		if op.trains {
			add("backward-weights", 0, &c.GEMM[PassBackwardWeights], func(s *vk.Stream) error {
				return rt.Conv2DBackwardWeights(s, c, op.x, op.dy, n.scratch, false)
			})
		} else if c.ReLU {
			memory("backward-relu", 12*float64(op.y.Len()), func(s *vk.Stream) error { return rt.Conv2DMaskReLU(s, c, op.y, op.dy) })
		}
		if dx != nil {
			add("backward-data", 0, &c.GEMM[PassBackwardData], func(s *vk.Stream) error { return rt.Conv2DBackwardData(s, c, op.dy, dx, n.scratch) })
		}
	case op.lin != nil:
		l := op.lin
		if op.relu {
			memory("backward-relu", 12*float64(op.y.Len()), func(s *vk.Stream) error { return rt.ReLUBackward(s, op.y, op.dy, op.dy) })
		}
		flops := 2 * float64(batch) * float64(l.In) * float64(l.Out)
		if l.Bias != nil {
			flops += 2 * float64(batch) * float64(l.Out)
		}
		if op.trains && op.fused == nil {
			add("backward-weights", flops, &l.GEMM[PassBackwardWeights], func(s *vk.Stream) error { return rt.LinearBackwardWeights(s, l, batch, op.x, op.dy, false) })
		}
		if p := op.fused; p != nil {
			// The input gradient in the same kernel, from the weight before its step.
			fused := flops
			if dx != nil {
				fused += 2 * float64(batch) * float64(l.In) * float64(l.Out)
			}
			add("backward-weights", fused, nil, func(s *vk.Stream) error {
				return rt.LinearBackwardUpdate(s, l, batch, op.x, op.dy, n.groups[p.group].sgd, p.momentum, dx, n.scratch)
			})
			part := &out[len(out)-1]
			part.Traffic += 4 * 3 * float64(l.Weight.Len()) // the weight written, its momentum read and written
			part.Shape += ", SGD step fused"
			if dx != nil {
				part.Shape += ", and the input gradient"
			}
		} else if dx != nil {
			add("backward-data", 0, &l.GEMM[PassBackwardData], func(s *vk.Stream) error { return rt.LinearBackwardData(s, l, batch, op.dy, dx) })
		}
	default:
		if dx == nil {
			return nil
		}
		p := n.opPart(op, "backward")
		p.InStep = true
		if op.argmax != nil {
			p.Bytes = 8*float64(op.y.Len()) + 4*float64(op.x.Len())
		}
		p.Record = func(s *vk.Stream) error { return n.backward(s, sl, op, dx) }
		out = append(out, p)
	}
	return out
}

// RunStepTimed submits one step of kind with b, waits for it (no other step may
// be outstanding) and returns its per-command GPU timings and GPU total.
func (n *Network) RunStepTimed(kind StepKind, b Batch) ([]vk.Timing, time.Duration, error) {
	if len(n.pending) != 0 {
		return nil, 0, errors.New("network: RunStepTimed with steps outstanding (Flush first)")
	}
	if _, err := n.Submit(kind, b); err != nil {
		return nil, 0, err
	}
	ran := n.slots[n.pending[0]]
	if _, err := n.Flush(); err != nil {
		return nil, 0, err
	}
	s := ran.streams[kind]
	return s.Timings(nil), s.Total(), nil
}

func shapeText(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = fmt.Sprint(d)
	}
	return strings.Join(parts, "x")
}
