package nn

import (
	"fmt"
	"strconv"

	"vktrain/train/weights"
)

// Conv2d is torch.nn.Conv2d (padding_mode "zeros"). Its weight has shape
// [OutChannels, InChannels/Groups, KernelSize[0], KernelSize[1]], its bias
// [OutChannels]. Pairs are (height, width).
type Conv2d struct {
	InChannels, OutChannels int
	KernelSize              [2]int
	Stride                  [2]int
	Padding                 [2]int
	Dilation                [2]int
	Groups                  int
	Bias                    bool
}

// NewConv2d returns a square Conv2d with a bias, dilation 1 and one group, as
// nn.Conv2d(in, out, kernel, stride, padding).
func NewConv2d(in, out, kernel, stride, padding int) *Conv2d {
	return &Conv2d{
		InChannels: in, OutChannels: out,
		KernelSize: [2]int{kernel, kernel}, Stride: [2]int{stride, stride},
		Padding: [2]int{padding, padding}, Dilation: [2]int{1, 1},
		Groups: 1, Bias: true,
	}
}

// Type returns "Conv2d".
func (c *Conv2d) Type() string { return "Conv2d" }

// String returns PyTorch's repr, such as
// "Conv2d(3, 64, kernel_size=(11, 11), stride=(4, 4), padding=(2, 2))".
func (c *Conv2d) String() string {
	s := fmt.Sprintf("%d, %d, kernel_size=%s, stride=%s", c.InChannels, c.OutChannels, pyPair(c.KernelSize), pyPair(c.Stride))
	if c.Padding != [2]int{0, 0} {
		s += ", padding=" + pyPair(c.Padding)
	}
	if c.Dilation != [2]int{1, 1} {
		s += ", dilation=" + pyPair(c.Dilation)
	}
	if c.Groups != 1 {
		s += ", groups=" + strconv.Itoa(c.Groups)
	}
	if !c.Bias {
		s += ", bias=False"
	}
	return repr("Conv2d", s, nil)
}

func (c *Conv2d) check() error {
	switch {
	case c.InChannels < 1 || c.OutChannels < 1:
		return fmt.Errorf("channels must be positive, got %d -> %d", c.InChannels, c.OutChannels)
	case c.Groups < 1 || c.InChannels%c.Groups != 0 || c.OutChannels%c.Groups != 0:
		return fmt.Errorf("groups=%d must be positive and divide both %d and %d channels", c.Groups, c.InChannels, c.OutChannels)
	}
	for i := range 2 {
		if c.KernelSize[i] < 1 || c.Stride[i] < 1 || c.Dilation[i] < 1 || c.Padding[i] < 0 {
			return fmt.Errorf("kernel_size %v, stride %v and dilation %v must be positive, padding %v not negative",
				c.KernelSize, c.Stride, c.Dilation, c.Padding)
		}
	}
	return nil
}

// OutShape maps [InChannels, H, W] to [OutChannels, OH, OW].
func (c *Conv2d) OutShape(in []int) ([]int, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	if len(in) != 3 {
		return nil, fmt.Errorf("input %s is not [channels, height, width]", fmtShape(in))
	}
	if in[0] != c.InChannels {
		return nil, fmt.Errorf("input has %d channels, want %d", in[0], c.InChannels)
	}
	out := []int{c.OutChannels, 0, 0}
	for i := range 2 {
		out[i+1] = floorDiv(in[i+1]+2*c.Padding[i]-c.Dilation[i]*(c.KernelSize[i]-1)-1, c.Stride[i]) + 1
	}
	if out[1] < 1 || out[2] < 1 {
		return nil, fmt.Errorf("too small: output would be %dx%d", out[1], out[2])
	}
	return out, nil
}

// ParamSpecs returns weight [out, in/groups, kh, kw] and, with Bias, bias [out].
func (c *Conv2d) ParamSpecs() []weights.Spec {
	g := max(c.Groups, 1)
	specs := []weights.Spec{{Name: "weight", Shape: []int{c.OutChannels, c.InChannels / g, c.KernelSize[0], c.KernelSize[1]}}}
	if c.Bias {
		specs = append(specs, weights.Spec{Name: "bias", Shape: []int{c.OutChannels}})
	}
	return specs
}

// FLOPs is 2 * output elements * (InChannels/Groups) * kh * kw.
func (c *Conv2d) FLOPs(in []int) int64 {
	out, err := c.OutShape(in)
	if err != nil {
		return 0
	}
	return 2 * numel(out) * int64(c.InChannels/c.Groups*c.KernelSize[0]*c.KernelSize[1])
}

// ReLU is torch.nn.ReLU.
type ReLU struct {
	Inplace bool
}

// NewReLU returns ReLU(inplace=inplace).
func NewReLU(inplace bool) *ReLU { return &ReLU{Inplace: inplace} }

// Type returns "ReLU".
func (r *ReLU) Type() string { return "ReLU" }

// String returns "ReLU(inplace=True)" or "ReLU()".
func (r *ReLU) String() string {
	if r.Inplace {
		return repr("ReLU", "inplace=True", nil)
	}
	return repr("ReLU", "", nil)
}

// OutShape returns the input shape.
func (r *ReLU) OutShape(in []int) ([]int, error) { return sameShape(in) }

// ParamSpecs returns nil: ReLU has no parameters.
func (r *ReLU) ParamSpecs() []weights.Spec { return nil }

// FLOPs returns 0 (comparisons are not counted).
func (r *ReLU) FLOPs(in []int) int64 { return 0 }

// MaxPool2d is torch.nn.MaxPool2d with square windows (integer arguments, as
// torchvision's AlexNet gives them).
type MaxPool2d struct {
	KernelSize, Stride, Padding, Dilation int
	CeilMode                              bool
}

// NewMaxPool2d returns MaxPool2d(kernel_size=kernel, stride=stride) with
// padding 0, dilation 1 and floor rounding.
func NewMaxPool2d(kernel, stride int) *MaxPool2d {
	return &MaxPool2d{KernelSize: kernel, Stride: stride, Dilation: 1}
}

// Type returns "MaxPool2d".
func (p *MaxPool2d) Type() string { return "MaxPool2d" }

// String returns PyTorch's repr, such as
// "MaxPool2d(kernel_size=3, stride=2, padding=0, dilation=1, ceil_mode=False)".
func (p *MaxPool2d) String() string {
	return repr("MaxPool2d", fmt.Sprintf("kernel_size=%d, stride=%d, padding=%d, dilation=%d, ceil_mode=%s",
		p.KernelSize, p.Stride, p.Padding, p.Dilation, pyBool(p.CeilMode)), nil)
}

// OutShape maps [C, H, W] to [C, OH, OW] with PyTorch's pooling_output_shape.
func (p *MaxPool2d) OutShape(in []int) ([]int, error) {
	switch {
	case p.KernelSize < 1 || p.Stride < 1 || p.Dilation < 1 || p.Padding < 0:
		return nil, fmt.Errorf("kernel_size %d, stride %d and dilation %d must be positive, padding %d not negative",
			p.KernelSize, p.Stride, p.Dilation, p.Padding)
	case p.Padding > p.KernelSize/2:
		return nil, fmt.Errorf("padding %d must be at most half of kernel_size %d", p.Padding, p.KernelSize)
	case len(in) != 3:
		return nil, fmt.Errorf("input %s is not [channels, height, width]", fmtShape(in))
	}
	out := []int{in[0], 0, 0}
	for i := 1; i < 3; i++ {
		round := 0
		if p.CeilMode {
			round = p.Stride - 1
		}
		o := floorDiv(in[i]+2*p.Padding-p.Dilation*(p.KernelSize-1)-1+round, p.Stride) + 1
		if p.CeilMode && (o-1)*p.Stride >= in[i]+p.Padding {
			o-- // the last window would start in the right padding
		}
		out[i] = o
	}
	if out[1] < 1 || out[2] < 1 {
		return nil, fmt.Errorf("too small: output would be %dx%d", out[1], out[2])
	}
	return out, nil
}

// ParamSpecs returns nil: MaxPool2d has no parameters.
func (p *MaxPool2d) ParamSpecs() []weights.Spec { return nil }

// FLOPs returns 0 (comparisons are not counted).
func (p *MaxPool2d) FLOPs(in []int) int64 { return 0 }

// AdaptiveAvgPool2d is torch.nn.AdaptiveAvgPool2d with a (height, width) output
// size: any input of at least 1x1 comes out at OutputSize (a 1x1 input is copied
// to every output cell).
type AdaptiveAvgPool2d struct {
	OutputSize [2]int
}

// NewAdaptiveAvgPool2d returns AdaptiveAvgPool2d(output_size=(h, w)).
func NewAdaptiveAvgPool2d(h, w int) *AdaptiveAvgPool2d {
	return &AdaptiveAvgPool2d{OutputSize: [2]int{h, w}}
}

// Type returns "AdaptiveAvgPool2d".
func (p *AdaptiveAvgPool2d) Type() string { return "AdaptiveAvgPool2d" }

// String returns PyTorch's repr, such as "AdaptiveAvgPool2d(output_size=(6, 6))".
func (p *AdaptiveAvgPool2d) String() string {
	return repr("AdaptiveAvgPool2d", "output_size="+pyPair(p.OutputSize), nil)
}

// OutShape maps [C, H, W] to [C, OutputSize[0], OutputSize[1]].
func (p *AdaptiveAvgPool2d) OutShape(in []int) ([]int, error) {
	switch {
	case p.OutputSize[0] < 1 || p.OutputSize[1] < 1:
		return nil, fmt.Errorf("output_size %s must be positive", pyPair(p.OutputSize))
	case len(in) != 3:
		return nil, fmt.Errorf("input %s is not [channels, height, width]", fmtShape(in))
	case in[0] < 1 || in[1] < 1 || in[2] < 1:
		return nil, fmt.Errorf("input %s is empty", fmtShape(in))
	}
	return []int{in[0], p.OutputSize[0], p.OutputSize[1]}, nil
}

// ParamSpecs returns nil: AdaptiveAvgPool2d has no parameters.
func (p *AdaptiveAvgPool2d) ParamSpecs() []weights.Spec { return nil }

// FLOPs returns 0 (pooling is not counted).
func (p *AdaptiveAvgPool2d) FLOPs(in []int) int64 { return 0 }

// Dropout is torch.nn.Dropout: in training, each element is zeroed with
// probability P and the rest scaled by 1/(1-P).
type Dropout struct {
	P       float64
	Inplace bool
}

// NewDropout returns Dropout(p=p, inplace=False).
func NewDropout(p float64) *Dropout { return &Dropout{P: p} }

// Type returns "Dropout".
func (d *Dropout) Type() string { return "Dropout" }

// String returns PyTorch's repr, such as "Dropout(p=0.5, inplace=False)".
func (d *Dropout) String() string {
	return repr("Dropout", "p="+pyFloat(d.P)+", inplace="+pyBool(d.Inplace), nil)
}

// OutShape returns the input shape.
func (d *Dropout) OutShape(in []int) ([]int, error) {
	if !(d.P >= 0 && d.P <= 1) {
		return nil, fmt.Errorf("dropout probability %v is not between 0 and 1", d.P)
	}
	return sameShape(in)
}

// ParamSpecs returns nil: Dropout has no parameters.
func (d *Dropout) ParamSpecs() []weights.Spec { return nil }

// FLOPs returns 0 (the mask multiply is not counted).
func (d *Dropout) FLOPs(in []int) int64 { return 0 }

// Linear is torch.nn.Linear: y = x W^T + b with W of shape [OutFeatures,
// InFeatures]. Like PyTorch it acts on the last dimension of its input.
type Linear struct {
	InFeatures, OutFeatures int
	Bias                    bool
}

// NewLinear returns Linear(in_features=in, out_features=out, bias=True).
func NewLinear(in, out int) *Linear { return &Linear{InFeatures: in, OutFeatures: out, Bias: true} }

// Type returns "Linear".
func (l *Linear) Type() string { return "Linear" }

// String returns PyTorch's repr, such as
// "Linear(in_features=9216, out_features=4096, bias=True)".
func (l *Linear) String() string {
	return repr("Linear", fmt.Sprintf("in_features=%d, out_features=%d, bias=%s", l.InFeatures, l.OutFeatures, pyBool(l.Bias)), nil)
}

// OutShape maps [..., InFeatures] to [..., OutFeatures].
func (l *Linear) OutShape(in []int) ([]int, error) {
	switch {
	case l.InFeatures < 1 || l.OutFeatures < 1:
		return nil, fmt.Errorf("features must be positive, got %d -> %d", l.InFeatures, l.OutFeatures)
	case len(in) == 0:
		return nil, fmt.Errorf("input is a scalar, want [%d] features", l.InFeatures)
	case in[len(in)-1] != l.InFeatures:
		if len(in) == 1 {
			return nil, fmt.Errorf("input has %d features, want %d", in[0], l.InFeatures)
		}
		return nil, fmt.Errorf("input %s has %d features in its last dimension, want %d", fmtShape(in), in[len(in)-1], l.InFeatures)
	}
	out := append([]int(nil), in...)
	out[len(out)-1] = l.OutFeatures
	return out, nil
}

// ParamSpecs returns weight [out, in] and, with Bias, bias [out].
func (l *Linear) ParamSpecs() []weights.Spec {
	specs := []weights.Spec{{Name: "weight", Shape: []int{l.OutFeatures, l.InFeatures}}}
	if l.Bias {
		specs = append(specs, weights.Spec{Name: "bias", Shape: []int{l.OutFeatures}})
	}
	return specs
}

// FLOPs is 2 * output elements * InFeatures.
func (l *Linear) FLOPs(in []int) int64 {
	out, err := l.OutShape(in)
	if err != nil {
		return 0
	}
	return 2 * numel(out) * int64(l.InFeatures)
}

// Sequential is torch.nn.Sequential: its modules run in order and are named
// "0", "1", ... in paths and parameter names.
type Sequential struct {
	Modules []Module
}

// NewSequential returns a Sequential of the modules, in order.
func NewSequential(mods ...Module) *Sequential { return &Sequential{Modules: mods} }

// Type returns "Sequential".
func (s *Sequential) Type() string { return "Sequential" }

// String returns PyTorch's repr: "Sequential(" and one "(i): module" line per
// module, indented.
func (s *Sequential) String() string { return repr("Sequential", "", s.children()) }

// OutShape runs the shape through every module in turn.
func (s *Sequential) OutShape(in []int) ([]int, error) {
	for i, m := range s.Modules {
		if m == nil {
			return nil, fmt.Errorf("(%d): no module", i)
		}
		out, err := m.OutShape(in)
		if err != nil {
			return nil, fmt.Errorf("(%d) %s: %w", i, m, err)
		}
		in = out
	}
	return in, nil
}

// ParamSpecs returns the modules' parameters with their index prefixed
// ("0.weight").
func (s *Sequential) ParamSpecs() []weights.Spec { return prefixSpecs(s.children()) }

// FLOPs sums the modules' FLOPs along the shape.
func (s *Sequential) FLOPs(in []int) int64 {
	var n int64
	for _, m := range s.Modules {
		if m == nil {
			return n
		}
		n += m.FLOPs(in)
		out, err := m.OutShape(in)
		if err != nil {
			return n
		}
		in = out
	}
	return n
}

func (s *Sequential) children() []Named {
	c := make([]Named, len(s.Modules))
	for i, m := range s.Modules {
		c[i] = Named{Name: strconv.Itoa(i), Module: m}
	}
	return c
}

func (s *Sequential) setChild(name string, m Module) error {
	i, err := strconv.Atoi(name)
	if err != nil || i < 0 || i >= len(s.Modules) || strconv.Itoa(i) != name {
		return fmt.Errorf("Sequential has no module %q (it has 0 to %d)", name, len(s.Modules)-1)
	}
	s.Modules[i] = m
	return nil
}

// prefixSpecs gathers the children's parameters under "name.".
func prefixSpecs(children []Named) []weights.Spec {
	var specs []weights.Spec
	for _, c := range children {
		if c.Module == nil {
			continue
		}
		for _, p := range c.Module.ParamSpecs() {
			specs = append(specs, weights.Spec{Name: c.Name + "." + p.Name, Shape: p.Shape})
		}
	}
	return specs
}

func sameShape(in []int) ([]int, error) { return append([]int(nil), in...), nil }

// floorDiv divides rounding toward negative infinity, as PyTorch's div_rtn.
func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}
