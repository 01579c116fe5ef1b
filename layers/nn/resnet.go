package nn

import (
	"fmt"

	"vktrain/train/weights"
)

// BatchNorm2d is torch.nn.BatchNorm2d: per channel, weight and bias (with
// Affine) and the buffers running_mean, running_var and num_batches_tracked
// (with TrackRunningStats).
type BatchNorm2d struct {
	NumFeatures       int
	Eps, Momentum     float64
	Affine            bool
	TrackRunningStats bool
}

// NewBatchNorm2d returns BatchNorm2d(c) with PyTorch's defaults: eps 1e-5,
// momentum 0.1, affine, tracking running statistics.
func NewBatchNorm2d(c int) *BatchNorm2d {
	return &BatchNorm2d{NumFeatures: c, Eps: 1e-5, Momentum: 0.1, Affine: true, TrackRunningStats: true}
}

// Type returns "BatchNorm2d".
func (b *BatchNorm2d) Type() string { return "BatchNorm2d" }

// String returns PyTorch's repr, such as
// "BatchNorm2d(64, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)".
func (b *BatchNorm2d) String() string {
	return repr("BatchNorm2d", fmt.Sprintf("%d, eps=%s, momentum=%s, affine=%s, track_running_stats=%s",
		b.NumFeatures, pyFloat(b.Eps), pyFloat(b.Momentum), pyBool(b.Affine), pyBool(b.TrackRunningStats)), nil)
}

// OutShape keeps [C, H, W], C being NumFeatures.
func (b *BatchNorm2d) OutShape(in []int) ([]int, error) {
	switch {
	case b.NumFeatures < 1:
		return nil, fmt.Errorf("num_features %d must be positive", b.NumFeatures)
	case len(in) != 3:
		return nil, fmt.Errorf("input %s is not [channels, height, width]", fmtShape(in))
	case in[0] != b.NumFeatures:
		return nil, fmt.Errorf("input has %d channels, want %d", in[0], b.NumFeatures)
	}
	return sameShape(in)
}

// ParamSpecs returns weight and bias [C] with Affine.
func (b *BatchNorm2d) ParamSpecs() []weights.Spec {
	if !b.Affine {
		return nil
	}
	return []weights.Spec{{Name: "weight", Shape: []int{b.NumFeatures}}, {Name: "bias", Shape: []int{b.NumFeatures}}}
}

// BufferSpecs returns running_mean and running_var [C] and the scalar
// num_batches_tracked (an int64 in PyTorch's files) with TrackRunningStats.
func (b *BatchNorm2d) BufferSpecs() []weights.Spec {
	if !b.TrackRunningStats {
		return nil
	}
	return []weights.Spec{{Name: "running_mean", Shape: []int{b.NumFeatures}}, {Name: "running_var", Shape: []int{b.NumFeatures}},
		{Name: "num_batches_tracked", Shape: []int{}}}
}

// FLOPs counts a multiply and an add per element (normalisation and affine
// folded into one scale and shift).
func (b *BatchNorm2d) FLOPs(in []int) int64 { return 2 * numel(in) }

// buffered is a module with buffers: state_dict entries that are not
// parameters (BatchNorm's running statistics).
type buffered interface {
	BufferSpecs() []weights.Spec
}

// Block is one of torchvision's residual blocks, BasicBlock (ResNet-18, -34)
// or Bottleneck (ResNet-50 and up): out = relu(main(x) + shortcut(x)), main
// being its convolutions and BatchNorms in order, shortcut the Downsample
// (a 1x1 convolution and a BatchNorm) or x itself. It is a leaf of the model's
// walk: its inner layers do not run in sequence.
type Block struct {
	kind       string  // "BasicBlock" or "Bottleneck"
	children   []Named // in torchvision's registration order (its repr and state_dict)
	main       []Module
	downsample *Sequential // nil: the identity
}

// NewBasicBlock is torchvision's BasicBlock(in, planes, stride): two 3x3
// convolutions without bias, each followed by a BatchNorm, and a Downsample
// where the stride or the width changes.
func NewBasicBlock(in, planes, stride int) *Block {
	conv1, bn1 := conv(in, planes, 3, stride, 1), NewBatchNorm2d(planes)
	conv2, bn2 := conv(planes, planes, 3, 1, 1), NewBatchNorm2d(planes)
	b := &Block{kind: "BasicBlock", main: []Module{conv1, bn1, conv2, bn2}}
	b.children = []Named{{"conv1", conv1}, {"bn1", bn1}, {"relu", NewReLU(true)}, {"conv2", conv2}, {"bn2", bn2}}
	b.addDownsample(in, planes, stride)
	return b
}

// NewBottleneck is torchvision's Bottleneck(in, planes, stride) (v1.5: the
// stride on the 3x3 convolution): 1x1 to planes, 3x3, 1x1 to 4*planes.
func NewBottleneck(in, planes, stride int) *Block {
	conv1, bn1 := conv(in, planes, 1, 1, 0), NewBatchNorm2d(planes)
	conv2, bn2 := conv(planes, planes, 3, stride, 1), NewBatchNorm2d(planes)
	conv3, bn3 := conv(planes, 4*planes, 1, 1, 0), NewBatchNorm2d(4*planes)
	b := &Block{kind: "Bottleneck", main: []Module{conv1, bn1, conv2, bn2, conv3, bn3}}
	b.children = []Named{{"conv1", conv1}, {"bn1", bn1}, {"conv2", conv2}, {"bn2", bn2}, {"conv3", conv3}, {"bn3", bn3}, {"relu", NewReLU(true)}}
	b.addDownsample(in, 4*planes, stride)
	return b
}

// conv is a square convolution without bias, as every ResNet convolution.
func conv(in, out, kernel, stride, padding int) *Conv2d {
	c := NewConv2d(in, out, kernel, stride, padding)
	c.Bias = false
	return c
}

func (b *Block) addDownsample(in, out, stride int) {
	if stride == 1 && in == out {
		return
	}
	b.downsample = NewSequential(conv(in, out, 1, stride, 0), NewBatchNorm2d(out))
	b.children = append(b.children, Named{"downsample", b.downsample})
}

// MainPath returns the leaves of the block's main path in the order they
// run, named as in the block ("conv1", "bn1", "relu", "conv2", "bn2" for a
// BasicBlock): a ReLU after each BatchNorm but the last, whose output the
// block adds to the shortcut's before its final ReLU.
func (b *Block) MainPath() []Named {
	byModule := map[Module]string{}
	for _, c := range b.children {
		byModule[c.Module] = c.Name
	}
	relu := Named{Name: "relu"}
	for _, c := range b.children {
		if c.Name == "relu" {
			relu.Module = c.Module
		}
	}
	var out []Named
	for i, m := range b.main {
		out = append(out, Named{Name: byModule[m], Module: m})
		if _, isBN := m.(*BatchNorm2d); isBN && i < len(b.main)-1 {
			out = append(out, relu)
		}
	}
	return out
}

// Shortcut returns the Downsample's leaves named as in the block
// ("downsample.0", "downsample.1"), or nil where the shortcut is x itself.
func (b *Block) Shortcut() []Named {
	if b.downsample == nil {
		return nil
	}
	var out []Named
	for _, c := range b.downsample.children() {
		out = append(out, Named{Name: "downsample." + c.Name, Module: c.Module})
	}
	return out
}

// Layers lays the block's main path and shortcut out for a per-sample input
// in, as Model.Layers lays a model out: each leaf with its path (prefix, a
// dot and its name in the block) and the shapes that reach and leave it. The
// shortcut is empty where it is x itself.
func (b *Block) Layers(prefix string, in []int) (main, shortcut []Layer, err error) {
	chain := func(parts []Named) ([]Layer, error) {
		out := make([]Layer, len(parts))
		cur := in
		for i, p := range parts {
			next, err := p.Module.OutShape(cur)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", prefix, p.Name, err)
			}
			out[i] = Layer{Path: prefix + "." + p.Name, Module: p.Module, In: cur, Out: next}
			cur = next
		}
		return out, nil
	}
	if main, err = chain(b.MainPath()); err != nil {
		return nil, nil, err
	}
	if shortcut, err = chain(b.Shortcut()); err != nil {
		return nil, nil, err
	}
	return main, shortcut, nil
}

// Type returns "BasicBlock" or "Bottleneck".
func (b *Block) Type() string { return b.kind }

// String returns PyTorch's repr of the block.
func (b *Block) String() string { return repr(b.kind, "", b.children) }

// Children returns the block's modules in torchvision's order.
func (b *Block) Children() []Named { return append([]Named(nil), b.children...) }

// OutShape runs in through the main path and the shortcut, which must agree.
func (b *Block) OutShape(in []int) ([]int, error) {
	out, err := chain(b.main, in)
	if err != nil {
		return nil, err
	}
	short := in
	if b.downsample != nil {
		if short, err = b.downsample.OutShape(in); err != nil {
			return nil, fmt.Errorf("downsample: %w", err)
		}
	}
	if fmtShape(short) != fmtShape(out) {
		return nil, fmt.Errorf("the main path gives %s, the shortcut %s", fmtShape(out), fmtShape(short))
	}
	return out, nil
}

// chain is the shape after running in through mods in order.
func chain(mods []Module, in []int) ([]int, error) {
	cur := in
	for _, m := range mods {
		out, err := m.OutShape(cur)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Type(), err)
		}
		cur = out
	}
	return cur, nil
}

// ParamSpecs lists the children's parameters with their names ("conv1.weight",
// "downsample.0.weight").
func (b *Block) ParamSpecs() []weights.Spec { return prefixSpecs(b.children) }

// BufferSpecs lists the BatchNorms' buffers ("bn1.running_mean").
func (b *Block) BufferSpecs() []weights.Spec {
	return bufferSpecs(b.children)
}

// FLOPs sums the main path, the shortcut and the addition.
func (b *Block) FLOPs(in []int) int64 {
	var f int64
	cur := in
	for _, m := range b.main {
		f += m.FLOPs(cur)
		cur, _ = m.OutShape(cur)
	}
	if b.downsample != nil {
		f += b.downsample.FLOPs(in)
	}
	return f + numel(cur)
}

// bufferSpecs lists the buffers among children's state_dict entries.
func bufferSpecs(children []Named) []weights.Spec {
	var specs []weights.Spec
	for _, s := range stateSpecs(children) {
		if !s.param {
			specs = append(specs, s.Spec)
		}
	}
	return specs
}

// stateSpec is one state_dict entry of a module tree, parameter or buffer.
type stateSpec struct {
	weights.Spec
	param bool
}

// stateSpecs lists the entries of children in PyTorch's state_dict order:
// module by module, each module's parameters and then its buffers.
func stateSpecs(children []Named) []stateSpec {
	var out []stateSpec
	var visit func(prefix string, m Module)
	visit = func(prefix string, m Module) {
		switch c := m.(type) {
		case *Block:
			for _, ch := range c.children {
				visit(prefix+ch.Name+".", ch.Module)
			}
			return
		case container:
			for _, ch := range c.children() {
				visit(prefix+ch.Name+".", ch.Module)
			}
			return
		}
		for _, s := range m.ParamSpecs() {
			out = append(out, stateSpec{weights.Spec{Name: prefix + s.Name, Shape: s.Shape}, true})
		}
		if b, ok := m.(buffered); ok {
			for _, s := range b.BufferSpecs() {
				out = append(out, stateSpec{weights.Spec{Name: prefix + s.Name, Shape: s.Shape}, false})
			}
		}
	}
	for _, ch := range children {
		visit(ch.Name+".", ch.Module)
	}
	return out
}

// ResNet18 returns torchvision.models.resnet18(num_classes=numClasses):
// conv1 (7x7 stride 2, no bias), bn1, relu, maxpool (3x3 stride 2 padding 1),
// layer1-4 of two BasicBlocks each (64, 128, 256, 512 wide, the last three
// starting at stride 2), avgpool AdaptiveAvgPool2d((1, 1)), then flatten, fc.
func ResNet18(numClasses int) *Model {
	return NewResNet(ResNetConfig{Blocks: [4]int{2, 2, 2, 2}, Width: 64, Classes: numClasses})
}

// ResNet50 returns torchvision.models.resnet50(num_classes=numClasses):
// Bottleneck blocks, 3, 4, 6 and 3 per stage, fc from 2048 features.
func ResNet50(numClasses int) *Model {
	return NewResNet(ResNetConfig{Blocks: [4]int{3, 4, 6, 3}, Bottleneck: true, Width: 64, Classes: numClasses})
}

// ResNetConfig describes a member of torchvision's ResNet family.
type ResNetConfig struct {
	Blocks     [4]int // blocks per stage: {2, 2, 2, 2} for ResNet-18
	Bottleneck bool   // Bottleneck blocks (ResNet-50 and up) instead of BasicBlocks
	// Width is the stem's output channels and the first stage's planes (64 in
	// torchvision; the stages double it). Tests use narrow ResNets.
	Width   int
	Classes int // fc's outputs
}

// NewResNet returns the ResNet c describes, with torchvision's structure and
// state_dict names (torchvision.models.resnet.ResNet with c.Width in place
// of 64).
func NewResNet(c ResNetConfig) *Model {
	block, expansion := NewBasicBlock, 1
	if c.Bottleneck {
		block, expansion = NewBottleneck, 4
	}
	w := c.Width
	pool := NewMaxPool2d(3, 2)
	pool.Padding = 1
	children := []Named{
		{"conv1", conv(3, w, 7, 2, 3)}, {"bn1", NewBatchNorm2d(w)}, {"relu", NewReLU(true)}, {"maxpool", pool},
	}
	in := w
	for i, n := range c.Blocks {
		planes := w << i
		stride := 2
		if i == 0 {
			stride = 1
		}
		var mods []Module
		for j := 0; j < n; j++ {
			mods = append(mods, block(in, planes, stride))
			in, stride = planes*expansion, 1
		}
		children = append(children, Named{fmt.Sprintf("layer%d", i+1), NewSequential(mods...)})
	}
	children = append(children, Named{"avgpool", NewAdaptiveAvgPool2d(1, 1)}, Named{"fc", NewLinear(in, c.Classes)})
	return &Model{name: "ResNet", children: children, flattenBefore: "fc", input: []int{3, 224, 224}, frozen: map[string]bool{}}
}

// StateSpecs returns every state_dict entry of the model, parameters and
// buffers (BatchNorm's running statistics), in PyTorch's order: what a .pth
// file of the model holds.
func (m *Model) StateSpecs() []weights.Spec {
	var specs []weights.Spec
	for _, s := range stateSpecs(m.children) {
		specs = append(specs, s.Spec)
	}
	return specs
}

// Buffers returns the names and shapes of the model's buffers (none for
// AlexNet), in state_dict order.
func (m *Model) Buffers() []weights.Spec {
	return bufferSpecs(m.children)
}

// Recognize names the torchvision model whose state_dict sd is, by its entry
// names: "AlexNet", "ResNet-18" or "ResNet-50", with the classes its last
// layer predicts (and AlexNet's classifier.4 width, 4096 before the reference
// surgery), or "" when it is none of them. Error messages about a weights file
// for the wrong model use it to say what the file looks like.
func Recognize(sd *weights.StateDict) string {
	if sd == nil {
		return ""
	}
	for _, c := range []struct {
		name, last string
		model      *Model
	}{{"AlexNet", "classifier.6.weight", AlexNet(1000)}, {"ResNet-18", "fc.weight", ResNet18(1000)}, {"ResNet-50", "fc.weight", ResNet50(1000)}} {
		specs := c.model.StateSpecs()
		if len(specs) != sd.Len() {
			continue
		}
		same := true
		for _, s := range specs {
			if _, ok := sd.Get(s.Name); !ok {
				same = false
				break
			}
		}
		if !same {
			continue
		}
		last, _ := sd.Get(c.last)
		if len(last.Shape) != 2 {
			return c.name
		}
		desc := fmt.Sprintf("%s (%d classes", c.name, last.Shape[0])
		if mid, ok := sd.Get("classifier.4.weight"); ok && len(mid.Shape) == 2 {
			desc += fmt.Sprintf(", classifier.4 %d wide", mid.Shape[0])
		}
		return desc + ")"
	}
	return ""
}
