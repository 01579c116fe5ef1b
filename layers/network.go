package layers

import (
	"errors"
	"fmt"
	"math"
	"strings"

	"vktrain/layers/nn"
	"vktrain/train/weights"
	"vktrain/vk"
)

// NetworkConfig lays a model out on a device.
type NetworkConfig struct {
	Batch int              // images per step
	Input PreprocessParams // record size, resize, crop, normalization, augmentation (training only)
	SGD   SGDConfig        // optimizer hyper-parameters (training)
	// Adam, when set, makes the optimizer torch.optim.Adam (AdamW with
	// Decoupled) instead of SGD, whose settings are then ignored.
	Adam  *AdamConfig
	Seed  uint64 // dropout and augmentation streams
	Train bool   // also record the training step (backward and SGD)
	// ConvAlgo is the algorithm of the convolutions it applies to: ConvWinograd
	// runs the 3x3 and 5x5 stride-1 ones by F(2x2, RxR), ConvWinograd4 the 3x3
	// ones by F(4x4, 3x3) and the 5x5 by F(2x2, 5x5); the others stay on im2col.
	ConvAlgo ConvAlgo
	// ConvChoices, where it names a convolution's path, gives its algorithm per
	// pass (indexed by ConvPass) instead of ConvAlgo: what the tuner picked
	// (layers/tune). Each must apply to the layer.
	ConvChoices map[string][3]ConvAlgo
	// GEMMChoices, where it names a convolution's or linear layer's path,
	// gives the GEMM kernel of each of its passes (indexed by ConvPass; see
	// Conv2D.GEMM and Linear.GEMM): what the tuner picked. Elsewhere, and
	// for GEMMAuto, the runtime's Variant.
	GEMMChoices map[string][3]GEMMVariant
	// UnfusedSGD computes every weight gradient and steps all parameters in
	// the SGD pass. By default a linear layer's weight where the device can
	// (Runtime.LinearFusesUpdate: lavapipe, batch up to 16) is stepped inside
	// the GEMM that makes its gradient, which is then never stored: Grads
	// leaves it out.
	UnfusedSGD bool
	// ParamGroups give parameters learning rates of their own (torch.optim's
	// parameter groups): a parameter belongs to the first group whose Prefix
	// starts its state_dict name, and to the default group (the run's LR)
	// if none does. Each group has its own optimizer state buffer.
	ParamGroups []ParamGroup
	// LabelSmoothing is the training step's label smoothing eps in [0, 1]
	// (torch.nn.CrossEntropyLoss(label_smoothing=eps)): its loss, gradient and
	// the training loss it reports are the smoothed ones. The evaluation step
	// always reports the plain cross-entropy (as a PyTorch script evaluating
	// with F.cross_entropy), so test losses compare across recipes. 0: none.
	LabelSmoothing float64
	// FrozenBatchNorm runs the BatchNorm layers of the training step as in
	// eval mode (PyTorch's model.eval() while training, or frozen BatchNorm
	// for fine-tuning): they normalise by their running statistics and do
	// not update them; their weight and bias still train unless frozen.
	FrozenBatchNorm bool
}

// ParamGroup is a set of parameters, those whose names start with Prefix
// ("features." for AlexNet's backbone), trained at LRScale times the run's
// learning rate: a schedule scales every group alike, as PyTorch's schedulers
// scale each group's initial lr. LRScale 0 leaves them as they are (weight
// decay and momentum included) while their gradients still flow.
type ParamGroup struct {
	Prefix  string
	LRScale float64
}

// optGroup is one parameter group's optimizer state on the device.
type optGroup struct {
	scale float64
	sgd   *SGDParams
	adam  *AdamParams
}

// StepKind selects which recorded step a submission runs.
type StepKind int

// Step kinds: a training step (forward, loss, backward, SGD) or an evaluation
// step (forward without dropout, loss and predictions).
const (
	TrainStep StepKind = iota
	EvalStep
)

// Batch is the host data of one step.
type Batch struct {
	Records []byte  // Batch records of Input.RecordBytes() each
	Labels  []uint8 // Batch labels
	Step    uint64  // the global step number: dropout and augmentation streams
	// LR, if positive, is the learning rate of this training step (a schedule's);
	// it is written to the device once the step before has finished, since both
	// slots read the same optimizer state. 0 keeps the current one.
	LR float64
}

// Result is what a step sends back: its loss, correct count and predictions.
type Result struct {
	Kind      StepKind
	Step      uint64
	Loss      float64 // mean loss over the batch
	Correct   int
	Predicted []uint32 // argmax per image
	Labels    []uint8
}

// Network is a model laid out on a device for one batch size: parameters,
// gradients and momentum, activations, and steps recorded once and replayed.
// Two slots, each with its own input buffers, let the host fill the next batch
// while the device works on the current one.
type Network struct {
	rt     *Runtime
	model  *nn.Model
	cfg    NetworkConfig
	ops    []*netOp
	params []*netParam
	byName map[string]*netParam
	// groups[0] is the default parameter group, then NetworkConfig.ParamGroups':
	// each with SGD's state, or Adam's with NetworkConfig.Adam.
	groups []*optGroup
	// optSteps counts the optimizer steps submitted (Adam's bias corrections
	// need the step number; SetOptimizerSteps restores it).
	optSteps int

	input   *Tensor // preprocessed batch, CNHW
	logits  *Tensor
	dlogits *Tensor
	scratch *Tensor   // the passes' scratch: convolutions' columns or transforms, fused linear updates' partial sums
	owned   []*Tensor // activations and gradients to free
	classes int

	// Laying out (build): which parameters train, which activations need a
	// gradient, the largest scratch a pass needs, the dropout layers so far.
	trainable  map[string]bool
	needsGrad  map[*Tensor]bool
	scratchLen int
	drops      int
	// buffers are the state_dict entries that are not parameters
	// (BatchNorm's running statistics), in state_dict order.
	buffers []*netBuffer

	slots   [2]*slot
	next    int   // the slot the next submission uses
	pending []int // submitted slots in order
	last    *slot // the slot whose step finished last
	freed   []interface{ Free() }
}

// slot is one of the two input buffers with the streams that read them.
type slot struct {
	records *vk.Buffer
	labels  *vk.Buffer
	states  []*StepState // [0]: preprocess; then one per dropout layer
	stats   *LossStats
	streams [2]*vk.Stream // by StepKind; nil when not recorded
	batch   Batch
	kind    StepKind
	labelW  []uint32
}

// netOp is one operation of the forward pass on the device: a layer, or a
// residual block's sum. The ops run in order; each reads activations made by
// ops before it (x, and x2 for a sum), so the model is a graph whose
// activations may feed several ops.
type netOp struct {
	layer   nn.Layer
	conv    *Conv2D
	lin     *Linear
	bn      *netBN
	add     bool // a residual sum, y = x + x2 (relu(x + x2) with relu)
	pool    Pool2D
	relu    bool // a ReLU fused into this conv, linear or sum (the next layer is that ReLU)
	skip    bool // a ReLU fused into the previous op
	dropout float32
	dropIdx int // index of its StepState in a slot's states

	x, y   *Tensor // input and output activations (CNHW for maps, N x F after the flatten)
	x2     *Tensor // a sum's second operand (the block's shortcut)
	argmax *Tensor
	planes int
	inH    int
	inW    int
	outH   int
	outW   int
	trains bool      // has trainable parameters
	fused  *netParam // the weight its backward pass steps (LinearBackwardUpdate); nil: the SGD pass does
	// The backward pass (planBackward): dy is the gradient of y (nil where
	// the backward pass does not reach), dx where the op writes the gradient
	// of x (nil: not needed), dsum a sum-with-ReLU's gradient of the sum
	// (which is that of both operands); pre runs before the op's backward
	// kernels, accum after them: the sums of gradients of activations that
	// feed several ops.
	dy, dx, dsum *Tensor
	pre, accum   []gradSum
}

// netBuffer is a state_dict entry that is not a parameter: a BatchNorm's
// running mean or variance on the device, or its num_batches_tracked (kept
// on the host).
type netBuffer struct {
	name    string
	shape   []int
	value   *Tensor // nil for num_batches_tracked
	tracked *int64  // num_batches_tracked
}

// netParam is one parameter with its gradient and momentum.
type netParam struct {
	name      string
	shape     []int
	value     *Tensor
	grad      *Tensor
	momentum  *Tensor // SGD's momentum buffer, or Adam's first moment (exp_avg)
	sq        *Tensor // Adam's second moment (exp_avg_sq); nil under SGD
	trainable bool
	fused     bool // stepped in its layer's backward pass, its gradient never stored
	group     int  // index in Network.groups
}

// NewNetwork lays out model (which must validate at the configured input size)
// and records its steps.
func NewNetwork(rt *Runtime, model *nn.Model, cfg NetworkConfig) (*Network, error) {
	if cfg.Batch < 1 {
		return nil, fmt.Errorf("network: batch %d must be positive", cfg.Batch)
	}
	if err := cfg.Input.Validate(); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if !(cfg.LabelSmoothing >= 0 && cfg.LabelSmoothing <= 1) {
		return nil, fmt.Errorf("network: label smoothing %v outside [0, 1]", cfg.LabelSmoothing)
	}
	if cfg.Train {
		if err := cfg.SGD.Validate(); err != nil {
			return nil, fmt.Errorf("network: %w", err)
		}
		for _, g := range cfg.ParamGroups {
			if g.Prefix == "" || !(g.LRScale >= 0) || math.IsInf(g.LRScale, 0) {
				return nil, fmt.Errorf("network: parameter group %q with learning-rate scale %g: want a prefix and a finite scale >= 0", g.Prefix, g.LRScale)
			}
		}
	}
	cfg.Input.NCHW = false
	n := &Network{rt: rt, model: model, cfg: cfg, byName: map[string]*netParam{}}
	if err := n.build(); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

func (n *Network) alloc(name string, shape ...int) (*Tensor, error) {
	t, err := n.rt.NewTensor(name, shape...)
	if err == nil {
		n.owned = append(n.owned, t)
	}
	return t, err
}

func (n *Network) build() error {
	crop := n.cfg.Input.Crop
	layers, err := n.model.Layers(3, crop, crop)
	if err != nil {
		return fmt.Errorf("network: %w", err)
	}
	n.trainable, n.needsGrad = map[string]bool{}, map[*Tensor]bool{}
	for _, p := range n.model.Params() {
		n.trainable[p.Name] = p.Trainable
	}
	if n.input, err = n.alloc("input", 3, n.cfg.Batch, crop, crop); err != nil {
		return err
	}
	leaves := make([]leaf, len(layers))
	for i, l := range layers {
		leaves[i] = leaf{path: l.Path, mod: l.Module, in: l.In, out: l.Out}
	}
	cur, err := n.addChain(leaves, n.input)
	if err != nil {
		return err
	}
	batch := n.cfg.Batch
	if len(cur.Shape) != 2 || cur.Shape[0] != batch {
		return fmt.Errorf("network: the model's output %v is not batch x classes", cur.Shape)
	}
	n.logits, n.classes = cur, cur.Shape[1]
	if n.dlogits, err = n.alloc("logits.grad", batch, n.classes); err != nil {
		return err
	}
	if n.scratchLen > 0 {
		if n.scratch, err = n.alloc("scratch", n.scratchLen); err != nil {
			return err
		}
	}
	if n.cfg.Train {
		if err := n.newGroups(); err != nil {
			return err
		}
		if err := n.allocBackward(); err != nil {
			return err
		}
		for _, op := range n.ops {
			if op.lin != nil && op.trains && n.cfg.Adam == nil && !n.cfg.UnfusedSGD && n.rt.LinearFusesUpdate(op.lin, batch) {
				op.fused = n.byName[op.layer.Path+".weight"]
				op.fused.fused = true
			}
		}
	}
	for i := range n.slots {
		if n.slots[i], err = n.newSlot(i, n.drops); err != nil {
			return err
		}
	}
	return nil
}

func (n *Network) addParam(name string, value, grad *Tensor, trainable bool) {
	p := &netParam{name: name, shape: value.Shape, value: value, grad: grad, trainable: trainable}
	for i, g := range n.cfg.ParamGroups {
		if strings.HasPrefix(name, g.Prefix) {
			p.group = i + 1
			break
		}
	}
	n.params = append(n.params, p)
	n.byName[name] = p
}

// allocBackward allocates the gradients of activations the backward pass
// reaches and the momentum of trainable parameters.
func (n *Network) allocBackward() error {
	if err := n.planBackward(); err != nil {
		return err
	}
	var err error
	for _, p := range n.params {
		if p.trainable && (n.cfg.SGD.Momentum != 0 || n.cfg.Adam != nil) {
			if p.momentum, err = n.alloc(p.name+".momentum", p.shape...); err != nil {
				return err
			}
		}
		if p.trainable && n.cfg.Adam != nil {
			if p.sq, err = n.alloc(p.name+".exp_avg_sq", p.shape...); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *Network) newSlot(i, drops int) (*slot, error) {
	sl := &slot{labelW: make([]uint32, n.cfg.Batch)}
	rt := n.rt
	var err error
	if sl.records, err = rt.NewRecordBuffer(fmt.Sprintf("records.%d", i), n.cfg.Input, n.cfg.Batch); err != nil {
		return nil, err
	}
	n.freed = append(n.freed, sl.records)
	if sl.labels, err = rt.Dev.NewHostBuffer(int64(4*n.cfg.Batch), fmt.Sprintf("labels.%d", i)); err != nil {
		return nil, err
	}
	n.freed = append(n.freed, sl.labels)
	for d := 0; d <= drops; d++ {
		st, err := rt.NewStepState(fmt.Sprintf("state.%d.%d", i, d))
		if err != nil {
			return nil, err
		}
		n.freed = append(n.freed, st)
		// Each dropout layer (and the augmentation) draws its own Philox stream.
		if err := st.SetSeed(n.cfg.Seed ^ uint64(d)*0x9E3779B97F4A7C15); err != nil {
			return nil, err
		}
		sl.states = append(sl.states, st)
	}
	if sl.stats, err = rt.NewLossStats(fmt.Sprintf("loss.%d", i), n.cfg.Batch); err != nil {
		return nil, err
	}
	n.freed = append(n.freed, sl.stats)
	if sl.streams[EvalStep], err = n.record(sl, EvalStep); err != nil {
		return nil, err
	}
	if n.cfg.Train {
		if sl.streams[TrainStep], err = n.record(sl, TrainStep); err != nil {
			return nil, err
		}
	}
	return sl, nil
}

// record records one step into a new stream.
func (n *Network) record(sl *slot, kind StepKind) (*vk.Stream, error) {
	name := "eval"
	if kind == TrainStep {
		name = "train"
	}
	return n.rt.Dev.Record(name, vk.StreamOptions{Timestamps: true}, func(s *vk.Stream) error {
		if err := n.recordInto(s, sl, kind); err != nil {
			return fmt.Errorf("recording the %s step: %w", name, err)
		}
		return nil
	})
}

func (n *Network) recordInto(s *vk.Stream, sl *slot, kind StepKind) error {
	for _, p := range n.parts(sl, kind) {
		if !p.InStep {
			continue
		}
		if err := p.Record(s); err != nil {
			return fmt.Errorf("%s %s: %w", p.Layer, p.Pass, err)
		}
	}
	return nil
}

func (n *Network) forward(s *vk.Stream, sl *slot, op *netOp, train bool) error {
	rt, batch := n.rt, n.cfg.Batch
	switch {
	case op.skip:
		return nil
	case op.conv != nil:
		return rt.Conv2DForward(s, op.conv, op.x, op.y, n.scratch)
	case op.lin != nil:
		return rt.LinearForward(s, op.lin, batch, op.x, op.y)
	case op.add:
		return rt.ResidualAdd(s, op.x, op.x2, op.y, op.relu)
	case op.bn != nil:
		bn := op.bn
		var err error
		if train && !n.cfg.FrozenBatchNorm {
			err = rt.BatchNormStats(s, bn.b, op.x, bn.stats, bn.runMean, bn.runVar)
		} else {
			err = rt.BatchNormEvalStats(s, bn.b, bn.stats, bn.runMean, bn.runVar)
		}
		if err != nil {
			return err
		}
		return rt.BatchNormForward(s, bn.b, op.x, bn.stats, bn.gamma, bn.beta, op.y)
	case op.argmax != nil:
		return rt.MaxPool2DForward(s, op.pool, op.planes, op.inH, op.inW, op.x, op.y, op.argmax)
	case op.layer.Module == nil:
		return rt.CNHWToNCHW(s, op.x, op.y)
	}
	switch op.layer.Module.(type) {
	case *nn.AdaptiveAvgPool2d:
		return rt.AdaptiveAvgPool2DForward(s, op.planes, op.inH, op.inW, op.outH, op.outW, op.x, op.y)
	case *nn.ReLU:
		return rt.ReLUForward(s, op.x, op.y)
	case *nn.Dropout:
		var st *StepState
		if train {
			st = sl.states[op.dropIdx]
		}
		return rt.DropoutForward(s, op.dropout, st, op.x, op.y)
	}
	return fmt.Errorf("no forward for %s", op.layer.Module.Type())
}

// backward records the gradient of op's input, dx, from op.dy for a layer
// without parameters (the passes of conv and linear layers are separate parts).
func (n *Network) backward(s *vk.Stream, sl *slot, op *netOp, dx *Tensor) error {
	rt, batch := n.rt, n.cfg.Batch
	switch {
	case op.argmax != nil:
		return rt.MaxPool2DBackward(s, op.pool, op.planes, op.inH, op.inW, op.dy, op.argmax, dx)
	case op.layer.Module == nil:
		nchw, err := op.dy.Reshape(batch, op.x.Shape[0], op.x.Shape[2], op.x.Shape[3])
		if err != nil {
			return err
		}
		return rt.NCHWToCNHW(s, nchw, dx)
	}
	switch op.layer.Module.(type) {
	case *nn.AdaptiveAvgPool2d:
		return rt.AdaptiveAvgPool2DBackward(s, op.planes, op.inH, op.inW, op.outH, op.outW, op.dy, dx)
	case *nn.ReLU:
		return rt.ReLUBackward(s, op.y, op.dy, dx)
	case *nn.Dropout:
		return rt.DropoutBackward(s, op.dropout, sl.states[op.dropIdx], op.dy, dx)
	}
	return fmt.Errorf("no backward for %s", op.layer.Module.Type())
}

// Classes is the number of outputs.
func (n *Network) Classes() int { return n.classes }

// Config is the network's configuration.
func (n *Network) Config() NetworkConfig { return n.cfg }

// Submit writes b into the free slot while the device may still run the other
// slot's step, then waits for that step, reads its result and submits this one:
// the result of a step comes back from the next Submit (or Flush), one step late,
// and the host prepares each batch while the device computes the previous one.
func (n *Network) Submit(kind StepKind, b Batch) (*Result, error) {
	sl := n.slots[n.next]
	if sl.streams[kind] == nil {
		return nil, errors.New("network: built without the training step (NetworkConfig.Train)")
	}
	if err := n.fill(sl, kind, b); err != nil {
		return nil, err
	}
	var done *Result
	if len(n.pending) > 0 {
		var err error
		if done, err = n.finish(); err != nil {
			return nil, err
		}
	}
	if kind == TrainStep {
		if err := n.prepareOptimizer(b.LR); err != nil {
			return nil, err
		}
	}
	if err := sl.streams[kind].Submit(); err != nil {
		return nil, err
	}
	if kind == TrainStep {
		n.optSteps++
		if !n.cfg.FrozenBatchNorm {
			for _, b := range n.buffers {
				if b.tracked != nil {
					*b.tracked++
				}
			}
		}
	}
	n.pending = append(n.pending, n.next)
	n.next = 1 - n.next
	return done, nil
}

// Flush waits for the outstanding submission and returns its result (nil if none).
func (n *Network) Flush() (*Result, error) {
	if len(n.pending) == 0 {
		return nil, nil
	}
	return n.finish()
}

func (n *Network) fill(sl *slot, kind StepKind, b Batch) error {
	rb := n.cfg.Input.RecordBytes()
	if len(b.Records) != n.cfg.Batch*rb || len(b.Labels) != n.cfg.Batch {
		return fmt.Errorf("network: batch of %d bytes and %d labels, want %d records of %d bytes and %d labels",
			len(b.Records), len(b.Labels), n.cfg.Batch, rb, n.cfg.Batch)
	}
	for i, l := range b.Labels {
		if int(l) >= n.classes {
			return fmt.Errorf("network: label %d of image %d is not below the model's %d classes", l, i, n.classes)
		}
		sl.labelW[i] = uint32(l)
	}
	if err := WriteRecords(sl.records, n.cfg.Input, 0, b.Records); err != nil {
		return err
	}
	if err := sl.labels.WriteUint32(0, sl.labelW); err != nil {
		return err
	}
	for _, st := range sl.states {
		if err := st.SetStep(b.Step); err != nil {
			return err
		}
	}
	sl.batch, sl.kind = b, kind
	return nil
}

// finish waits for the oldest outstanding submission and reads its result.
func (n *Network) finish() (*Result, error) {
	i := n.pending[0]
	n.pending = n.pending[1:]
	sl := n.slots[i]
	if err := sl.streams[sl.kind].Wait(); err != nil {
		return nil, err
	}
	n.last = sl
	t, err := sl.stats.Read()
	if err != nil {
		return nil, err
	}
	pred, err := sl.stats.Predicted(n.cfg.Batch)
	if err != nil {
		return nil, err
	}
	res := &Result{Kind: sl.kind, Step: sl.batch.Step, Loss: t.BatchLoss, Correct: t.BatchCorrect, Predicted: pred, Labels: sl.batch.Labels}
	if sl.kind == TrainStep && (math.IsNaN(res.Loss) || math.IsInf(res.Loss, 0)) {
		return res, fmt.Errorf("step %d: loss is %v", res.Step, res.Loss)
	}
	return res, nil
}

// Timings returns the GPU time of each command of the last finished step, in
// recording order, with its kind (nil before any step has finished).
func (n *Network) Timings() (StepKind, []vk.Timing) {
	if n.last == nil {
		return 0, nil
	}
	return n.last.kind, n.last.streams[n.last.kind].Timings(nil)
}

// ParamSpecs lists the parameters in state_dict order with their shapes.
func (n *Network) ParamSpecs() []weights.Spec {
	out := make([]weights.Spec, len(n.params))
	for i, p := range n.params {
		out[i] = weights.Spec{Name: p.name, Shape: p.shape}
	}
	return out
}

// StateSpecs lists the network's state_dict entries, parameters and buffers
// (BatchNorm's running statistics), in PyTorch's order with their shapes.
func (n *Network) StateSpecs() []weights.Spec { return n.model.StateSpecs() }

// LoadState uploads parameters and buffers by name with shape checks (a
// state_dict, such as torchvision's .pth files hold). With strict, missing and
// unexpected names are an error; otherwise entries the file lacks keep their
// values and extra tensors are ignored (returned for reporting).
func (n *Network) LoadState(sd *weights.StateDict, strict bool) (missing, unexpected []string, err error) {
	missing, unexpected, err = sd.Check(n.StateSpecs(), strict)
	if err != nil {
		return missing, unexpected, err
	}
	for _, p := range n.params {
		t, ok := sd.Get(p.name)
		if !ok {
			continue
		}
		if err := p.value.Upload(t.Data); err != nil {
			return missing, unexpected, fmt.Errorf("%s: %w", p.name, err)
		}
	}
	for _, b := range n.buffers {
		t, ok := sd.Get(b.name)
		if !ok {
			continue
		}
		if b.tracked != nil {
			v := float64(t.Data[0])
			if !(v >= 0 && v == math.Trunc(v)) {
				return missing, unexpected, fmt.Errorf("%s: %s is %v, want a count", sd.Path, b.name, v)
			}
			*b.tracked = int64(v)
			continue
		}
		if err := b.value.Upload(t.Data); err != nil {
			return missing, unexpected, fmt.Errorf("%s: %w", b.name, err)
		}
	}
	return missing, unexpected, nil
}

// StateDict downloads the parameters and buffers in state_dict order (what
// torch.save(model.state_dict()) would write; num_batches_tracked as a
// float32 scalar).
func (n *Network) StateDict() (*weights.StateDict, error) {
	params, err := n.Params()
	if err != nil {
		return nil, err
	}
	if len(n.buffers) == 0 {
		return params, nil
	}
	bufs := map[string]*weights.Tensor{}
	for _, b := range n.buffers {
		t := &weights.Tensor{Shape: append([]int{}, b.shape...)}
		if b.tracked != nil {
			t.Data = []float32{float32(*b.tracked)}
		} else if t.Data, err = b.value.Download(); err != nil {
			return nil, err
		}
		bufs[b.name] = t
	}
	sd := &weights.StateDict{}
	for _, spec := range n.StateSpecs() {
		t, ok := params.Get(spec.Name)
		if !ok {
			t = bufs[spec.Name]
		}
		if err := sd.Add(spec.Name, t); err != nil {
			return nil, err
		}
	}
	return sd, nil
}

// LoadMomentum uploads the optimizer's momentum buffers (SGD) or first moments
// (Adam's exp_avg) by name (a checkpoint's); under SGD the next step then
// blends into them rather than starting afresh (for Adam, SetOptimizerSteps
// restores the step number).
func (n *Network) LoadMomentum(sd *weights.StateDict) error {
	for _, p := range n.params {
		if p.momentum == nil {
			continue
		}
		t, ok := sd.Get(p.name)
		if !ok {
			return fmt.Errorf("%s: no momentum for %s", sd.Path, p.name)
		}
		if err := p.momentum.Upload(t.Data); err != nil {
			return fmt.Errorf("momentum %s: %w", p.name, err)
		}
	}
	return n.setFirstStep(false)
}

// newGroups allocates every parameter group's optimizer state, its learning
// rate scaled.
func (n *Network) newGroups() error {
	scales := []float64{1}
	members := make([]int, len(n.cfg.ParamGroups)+1)
	for _, p := range n.params {
		members[p.group]++
	}
	for i, g := range n.cfg.ParamGroups {
		if members[i+1] == 0 {
			return fmt.Errorf("network: parameter group %q names no parameter (the names are as in the state_dict, e.g. %q)", g.Prefix, n.params[0].name)
		}
		scales = append(scales, g.LRScale)
	}
	for i, scale := range scales {
		g := &optGroup{scale: scale}
		n.groups = append(n.groups, g)
		name := fmt.Sprintf("group%d", i)
		var err error
		if n.cfg.Adam != nil {
			c := *n.cfg.Adam
			c.LR *= scale
			g.adam, err = n.rt.NewAdamParams("adam."+name, c)
		} else {
			c := n.cfg.SGD
			c.LR *= scale
			g.sgd, err = n.rt.NewSGDParams("sgd."+name, c)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// setFirstStep sets SGD's first-step flag of every group (the next step
// initialises the momentum buffers).
func (n *Network) setFirstStep(first bool) error {
	for _, g := range n.groups {
		if g.sgd != nil {
			if err := g.sgd.buf.WriteUint32(SGDFirstWord, []uint32{boolU32(first)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Params downloads the parameters (state_dict names and order; StateDict
// adds the buffers).
func (n *Network) Params() (*weights.StateDict, error) {
	return n.download(func(p *netParam) *Tensor { return p.value })
}

// Momentum downloads the momentum buffers of the trainable parameters.
func (n *Network) Momentum() (*weights.StateDict, error) {
	return n.download(func(p *netParam) *Tensor { return p.momentum })
}

// Grads downloads the gradients of the trainable parameters from the last step
// (not those of fused weights: see NetworkConfig.UnfusedSGD).
func (n *Network) Grads() (*weights.StateDict, error) {
	return n.download(func(p *netParam) *Tensor {
		if !p.trainable || p.fused {
			return nil
		}
		return p.grad
	})
}

func (n *Network) download(pick func(*netParam) *Tensor) (*weights.StateDict, error) {
	sd := &weights.StateDict{}
	for _, p := range n.params {
		t := pick(p)
		if t == nil {
			continue
		}
		v, err := t.Download()
		if err != nil {
			return nil, err
		}
		if err := sd.Add(p.name, &weights.Tensor{Shape: append([]int(nil), p.shape...), Data: v}); err != nil {
			return nil, err
		}
	}
	return sd, nil
}

// prepareOptimizer sets the optimizer for the training step about to be
// submitted (no step may be running): the learning rate lr where positive,
// and Adam's step number.
func (n *Network) prepareOptimizer(lr float64) error {
	for _, g := range n.groups {
		if lr > 0 {
			if err := g.setLR(lr * g.scale); err != nil {
				return err
			}
		}
		if g.adam != nil {
			if err := g.adam.SetStep(n.optSteps + 1); err != nil {
				return err
			}
		}
	}
	return nil
}

// setLR writes the group's learning rate where it changed.
func (g *optGroup) setLR(lr float64) error {
	if g.adam != nil {
		c := g.adam.Config()
		if c.LR == lr {
			return nil
		}
		c.LR = lr
		return g.adam.Set(c)
	}
	if g.sgd.Config().LR == lr {
		return nil
	}
	return g.sgd.SetLR(lr)
}

// SetLR changes the learning rate from the next step on (every parameter
// group's, by its scale).
func (n *Network) SetLR(lr float64) error {
	if len(n.groups) == 0 {
		return errors.New("network: no optimizer (built without training)")
	}
	for _, g := range n.groups {
		if err := g.setLR(lr * g.scale); err != nil {
			return err
		}
	}
	return nil
}

// OptimizerSteps is the number of training steps submitted since the network
// was built or SetOptimizerSteps.
func (n *Network) OptimizerSteps() int { return n.optSteps }

// SetOptimizerSteps says that steps optimizer steps have been taken already
// (a resumed run, whose moments LoadMomentum and LoadSecondMoments restored):
// Adam's next bias corrections are those of step steps+1; SGD's next step
// initialises its momentum only when steps is 0.
func (n *Network) SetOptimizerSteps(steps int) error {
	if steps < 0 {
		return fmt.Errorf("network: %d optimizer steps", steps)
	}
	if len(n.pending) > 0 {
		return errors.New("network: SetOptimizerSteps with steps outstanding (Flush first)")
	}
	n.optSteps = steps
	return n.setFirstStep(steps == 0)
}

// SecondMoments downloads Adam's second moments (exp_avg_sq) of the trainable
// parameters (none under SGD).
func (n *Network) SecondMoments() (*weights.StateDict, error) {
	return n.download(func(p *netParam) *Tensor { return p.sq })
}

// LoadSecondMoments uploads Adam's second moments (the names of Params).
func (n *Network) LoadSecondMoments(sd *weights.StateDict) error {
	for _, p := range n.params {
		if p.sq == nil {
			continue
		}
		t, ok := sd.Get(p.name)
		if !ok {
			return fmt.Errorf("%s: no second moment (exp_avg_sq) for %s", sd.Path, p.name)
		}
		if err := p.sq.Upload(t.Data); err != nil {
			return fmt.Errorf("exp_avg_sq %s: %w", p.name, err)
		}
	}
	return nil
}

// Close waits for outstanding work and releases everything the network made.
func (n *Network) Close() {
	for len(n.pending) > 0 {
		n.finish()
	}
	for _, sl := range n.slots {
		if sl != nil {
			for _, s := range sl.streams {
				if s != nil {
					s.Close()
				}
			}
		}
	}
	for _, f := range n.freed {
		f.Free()
	}
	for _, g := range n.groups {
		g.sgd.Free()
		g.adam.Free()
	}
	n.groups = nil
	for _, t := range n.owned {
		t.Free()
	}
	n.freed, n.owned = nil, nil
}
