package nn

import (
	"errors"
	"fmt"
	"strings"

	"vktrain/train/weights"
)

// Model is a whole network: a root module whose named children run in order,
// with the activations flattened to [features] (torch.flatten(x, 1)) before one
// of them, as in torchvision's AlexNet.forward. It keeps which parameters are
// frozen.
type Model struct {
	name          string
	children      []Named
	flattenBefore string // the child before which activations are flattened
	input         []int  // nominal per-sample input [C, H, W], used by Replace
	frozen        map[string]bool
}

// AlexNet returns torchvision.models.alexnet(num_classes=numClasses):
//
//	features:   Conv2d(3, 64, 11, stride 4, pad 2), ReLU, MaxPool2d(3, 2),
//	            Conv2d(64, 192, 5, pad 2), ReLU, MaxPool2d(3, 2),
//	            Conv2d(192, 384, 3, pad 1), ReLU, Conv2d(384, 256, 3, pad 1), ReLU,
//	            Conv2d(256, 256, 3, pad 1), ReLU, MaxPool2d(3, 2)
//	avgpool:    AdaptiveAvgPool2d((6, 6)), then flatten
//	classifier: Dropout(0.5), Linear(9216, 4096), ReLU, Dropout(0.5),
//	            Linear(4096, 4096), ReLU, Linear(4096, numClasses)
//
// Its nominal input is 3x224x224. A numClasses below 1 is reported by Validate.
func AlexNet(numClasses int) *Model {
	features := NewSequential(
		NewConv2d(3, 64, 11, 4, 2), NewReLU(true), NewMaxPool2d(3, 2),
		NewConv2d(64, 192, 5, 1, 2), NewReLU(true), NewMaxPool2d(3, 2),
		NewConv2d(192, 384, 3, 1, 1), NewReLU(true),
		NewConv2d(384, 256, 3, 1, 1), NewReLU(true),
		NewConv2d(256, 256, 3, 1, 1), NewReLU(true), NewMaxPool2d(3, 2),
	)
	classifier := NewSequential(
		NewDropout(0.5), NewLinear(256*6*6, 4096), NewReLU(true),
		NewDropout(0.5), NewLinear(4096, 4096), NewReLU(true),
		NewLinear(4096, numClasses),
	)
	return &Model{
		name: "AlexNet",
		children: []Named{
			{Name: "features", Module: features},
			{Name: "avgpool", Module: NewAdaptiveAvgPool2d(6, 6)},
			{Name: "classifier", Module: classifier},
		},
		flattenBefore: "classifier",
		input:         []int{3, 224, 224},
		frozen:        map[string]bool{},
	}
}

// Name returns the model's class name, "AlexNet".
func (m *Model) Name() string { return m.name }

// Input returns the nominal per-sample input shape [C, H, W] (3x224x224 for
// AlexNet), the one Replace checks a new module against.
func (m *Model) Input() []int { return append([]int(nil), m.input...) }

// String returns the model as PyTorch prints it, e.g. print(torchvision.models.alexnet()).
func (m *Model) String() string { return repr(m.name, "", m.children) }

// Children returns the top-level modules in order ("features", "avgpool",
// "classifier" for AlexNet). The modules are the model's own, not copies.
func (m *Model) Children() []Named { return append([]Named(nil), m.children...) }

// Module returns the module at a dotted path such as "classifier.4".
func (m *Model) Module(path string) (Module, error) {
	parent, name, err := m.locate(path)
	if err != nil {
		return nil, err
	}
	for _, c := range m.childrenOf(parent) {
		if c.Name == name {
			return c.Module, nil
		}
	}
	return nil, fmt.Errorf("%s has no module %q", m.name, path) // unreachable: locate checked it
}

// locate finds the container holding path (nil: the model itself) and the
// last path element, checking that the module exists.
func (m *Model) locate(path string) (container, string, error) {
	if path == "" {
		return nil, "", errors.New("empty module path")
	}
	parts := strings.Split(path, ".")
	var parent container
	for i, part := range parts {
		var found Module
		ok := false
		for _, c := range m.childrenOf(parent) {
			if c.Name == part {
				found, ok = c.Module, true
				break
			}
		}
		if !ok {
			where := m.name
			if i > 0 {
				where = strings.Join(parts[:i], ".")
			}
			return nil, "", fmt.Errorf("no module %q in %s (it has %s)", path, where, childNames(m.childrenOf(parent)))
		}
		if i == len(parts)-1 {
			return parent, part, nil
		}
		c, isContainer := found.(container)
		if !isContainer {
			return nil, "", fmt.Errorf("no module %q in %s: %s (%s) has no sub-modules",
				path, m.name, strings.Join(parts[:i+1], "."), typeOf(found))
		}
		parent = c
	}
	return nil, "", fmt.Errorf("no module %q", path) // unreachable
}

func (m *Model) childrenOf(c container) []Named {
	if c == nil {
		return m.children
	}
	return c.children()
}

func childNames(children []Named) string {
	names := make([]string, len(children))
	for i, c := range children {
		names[i] = c.Name
	}
	if len(names) == 0 {
		return "no sub-modules"
	}
	return strings.Join(names, ", ")
}

func typeOf(m Module) string {
	if m == nil {
		return "nil module"
	}
	return m.Type()
}

// Replace puts mod at path (such as "classifier.4"), as PyTorch's
// model.classifier[4] = mod. The path must name an existing module. The new
// module must accept the shape that reaches it at the model's nominal input
// (Input); if the layers before it do not fit together, that check waits for
// Validate. The layers after it are not checked, so that a chain of replacements
// can pass through a misfit (replacing classifier.4 with Linear(4096, 1024)
// leaves classifier.6 expecting 4096 features until it is replaced too): call
// Validate once all replacements are made. The new module's parameters are
// trainable, as new PyTorch modules are. On error the model is unchanged.
func (m *Model) Replace(path string, mod Module) error {
	if mod == nil {
		return fmt.Errorf("replace %s: no module given", path)
	}
	parent, name, err := m.locate(path)
	if err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	w := walker{cur: m.input, prev: "input", stopAt: path}
	if err := w.model(m); err == nil && w.stopped {
		if err := w.visit(path, mod, false); err != nil {
			return fmt.Errorf("replace: %w", err)
		}
	}
	if parent == nil {
		for i := range m.children {
			if m.children[i].Name == name {
				m.children[i].Module = mod
			}
		}
	} else if err := parent.setChild(name, mod); err != nil {
		return fmt.Errorf("replace %s: %w", path, err)
	}
	for p := range m.frozen {
		if strings.HasPrefix(p, path+".") {
			delete(m.frozen, p)
		}
	}
	return nil
}

// ReferenceSurgery makes the reference experiment's changes: classifier.4
// becomes Linear(4096, 1024) and classifier.6 Linear(1024, numClasses); then it
// validates the model at its nominal input.
func (m *Model) ReferenceSurgery(numClasses int) error {
	if err := m.Replace("classifier.4", NewLinear(4096, 1024)); err != nil {
		return err
	}
	if err := m.Replace("classifier.6", NewLinear(1024, numClasses)); err != nil {
		return err
	}
	return m.Validate(m.input[0], m.input[1], m.input[2])
}

// ShapeError says which layer does not accept the shape that reaches it.
type ShapeError struct {
	Path   string // the layer, such as "classifier.6"
	Module Module // the layer itself
	In     []int  // the per-sample shape that reaches it
	From   string // the layer that produced In, or "input"
	Err    error  // what the layer says about In
}

// Error names the layer, its input and where the input came from.
func (e *ShapeError) Error() string {
	return fmt.Sprintf("layer %s %s does not fit its input %s (from %s): %v", e.Path, e.Module, fmtShape(e.In), e.From, e.Err)
}

// Unwrap returns the layer's own error.
func (e *ShapeError) Unwrap() error { return e.Err }

// Validate checks that every layer accepts the output of the one before it for
// a per-sample input of c x h x w, returning a *ShapeError naming the first
// layer that does not.
func (m *Model) Validate(c, h, w int) error {
	_, err := m.walk(c, h, w)
	return err
}

// step is one leaf (or the flatten) in the order a forward pass runs.
type step struct {
	path    string
	mod     Module // nil for the flatten
	in, out []int  // per sample
}

// flattenPath is the path shown for torch.flatten(x, 1) in a walk.
const flattenPath = "(flatten)"

// walk runs a per-sample input through the model.
func (m *Model) walk(c, h, w int) ([]step, error) {
	if c < 1 || h < 1 || w < 1 {
		return nil, fmt.Errorf("input %dx%dx%d: sizes must be positive", c, h, w)
	}
	wk := walker{cur: []int{c, h, w}, prev: "input"}
	if err := wk.model(m); err != nil {
		return nil, err
	}
	return wk.steps, nil
}

// walker carries a shape through the leaves, optionally stopping at a path
// (to find the shape that reaches it).
type walker struct {
	steps   []step
	cur     []int
	prev    string
	stopAt  string
	stopped bool
}

func (w *walker) model(m *Model) error {
	for _, c := range m.children {
		if c.Name == m.flattenBefore && !w.stopped {
			out := []int{int(numel(w.cur))}
			w.steps = append(w.steps, step{path: flattenPath, in: w.cur, out: out})
			w.cur, w.prev = out, flattenPath
		}
		if err := w.visit(c.Name, c.Module, true); err != nil {
			return err
		}
	}
	return nil
}

// visit walks one module; with stop, reaching stopAt ends the walk there.
func (w *walker) visit(path string, mod Module, stop bool) error {
	if w.stopped && stop {
		return nil
	}
	if stop && path == w.stopAt {
		w.stopped = true
		return nil
	}
	if mod == nil {
		return &ShapeError{Path: path, Module: mod, In: w.cur, From: w.prev, Err: errors.New("no module")}
	}
	if c, ok := mod.(container); ok {
		for _, ch := range c.children() {
			if err := w.visit(path+"."+ch.Name, ch.Module, stop); err != nil {
				return err
			}
		}
		return nil
	}
	out, err := mod.OutShape(w.cur)
	if err != nil {
		return &ShapeError{Path: path, Module: mod, In: w.cur, From: w.prev, Err: err}
	}
	w.steps = append(w.steps, step{path: path, mod: mod, in: w.cur, out: out})
	w.cur, w.prev = out, path
	return nil
}

// Param is one parameter tensor of the model.
type Param struct {
	Name      string // state_dict name, such as "features.0.weight"
	Shape     []int  // PyTorch's shape, such as [64, 3, 11, 11]
	Trainable bool   // false once frozen (requires_grad False)
	Module    Module // the layer that owns it (a residual block's own layer: its Conv2d or BatchNorm2d)
	Path      string // the layer's path, such as "features.0" or "layer1.0.conv1"
	Local     string // the name within the layer, such as "weight"
}

// Numel returns the number of elements.
func (p Param) Numel() int64 { return numel(p.Shape) }

// Params returns every parameter in state_dict order (the order PyTorch
// registers them: module by module, weight before bias).
func (m *Model) Params() []Param {
	var ps []Param
	var visit func(path string, mod Module)
	visit = func(path string, mod Module) {
		if mod == nil {
			return
		}
		if c, ok := mod.(container); ok {
			for _, ch := range c.children() {
				visit(path+"."+ch.Name, ch.Module)
			}
			return
		}
		if b, ok := mod.(*Block); ok { // its parameters belong to its own layers
			for _, ch := range b.children {
				visit(path+"."+ch.Name, ch.Module)
			}
			return
		}
		for _, s := range mod.ParamSpecs() {
			name := path + "." + s.Name
			ps = append(ps, Param{Name: name, Shape: s.Shape, Trainable: !m.frozen[name], Module: mod, Path: path, Local: s.Name})
		}
	}
	for _, c := range m.children {
		visit(c.Name, c.Module)
	}
	return ps
}

// Specs returns the names and shapes of Params, for weights.StateDict.Check.
func (m *Model) Specs() []weights.Spec {
	ps := m.Params()
	specs := make([]weights.Spec, len(ps))
	for i, p := range ps {
		specs[i] = weights.Spec{Name: p.Name, Shape: append([]int(nil), p.Shape...)}
	}
	return specs
}

// Freeze marks the parameters under prefix as not trainable (a module path such
// as "features" or "classifier.1", or a full parameter name; "" is every
// parameter) and returns how many tensors it matched.
func (m *Model) Freeze(prefix string) int { return m.setFrozen(prefix, true) }

// Unfreeze marks the parameters under prefix as trainable again and returns how
// many tensors it matched.
func (m *Model) Unfreeze(prefix string) int { return m.setFrozen(prefix, false) }

func (m *Model) setFrozen(prefix string, frozen bool) int {
	if m.frozen == nil {
		m.frozen = map[string]bool{}
	}
	n := 0
	for _, p := range m.Params() {
		if prefix == "" || p.Name == prefix || strings.HasPrefix(p.Name, prefix+".") {
			if frozen {
				m.frozen[p.Name] = true
			} else {
				delete(m.frozen, p.Name)
			}
			n++
		}
	}
	return n
}

// Layer is one step of a forward pass: a leaf module, or the flatten between the
// pooling and the classifier (Module nil, Path "(flatten)"). Shapes are per sample.
type Layer struct {
	Path    string
	Module  Module
	In, Out []int
}

// Layers lists the forward pass's steps in order for a c x h x w input, with the
// shapes that reach and leave each: what an executor lays out on a device.
func (m *Model) Layers(c, h, w int) ([]Layer, error) {
	steps, err := m.walk(c, h, w)
	if err != nil {
		return nil, err
	}
	out := make([]Layer, len(steps))
	for i, s := range steps {
		out[i] = Layer{Path: s.path, Module: s.mod, In: s.in, Out: s.out}
	}
	return out, nil
}
