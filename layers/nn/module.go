package nn

import (
	"strconv"
	"strings"

	"vktrain/train/weights"
)

// Module is one layer or container of a network, as torch.nn.Module.
type Module interface {
	// String returns the module as PyTorch's repr prints it.
	String() string
	// Type returns PyTorch's class name, such as "Conv2d".
	Type() string
	// OutShape returns the per-sample output shape (no batch dimension) for a
	// per-sample input shape, or an error saying why that input does not fit.
	OutShape(in []int) ([]int, error)
	// ParamSpecs lists the module's parameters in PyTorch's registration order,
	// with names relative to the module ("weight", "bias"; "0.weight" in a
	// Sequential).
	ParamSpecs() []weights.Spec
	// FLOPs returns the forward FLOPs for one sample of shape in, counting a
	// multiply-add as 2. It is meaningful only where OutShape(in) succeeds.
	FLOPs(in []int) int64
}

// Named is a sub-module and the name its parent gives it ("features", "0").
type Named struct {
	Name   string
	Module Module
}

// container is a module made of named sub-modules, such as Sequential.
type container interface {
	Module
	children() []Named
	setChild(name string, m Module) error
}

// repr builds PyTorch's Module.__repr__ from a class name, the extra_repr text
// and the children.
func repr(name, extra string, children []Named) string {
	var lines []string
	if extra != "" {
		lines = strings.Split(extra, "\n")
	}
	nExtra := len(lines)
	for _, c := range children {
		lines = append(lines, "("+c.Name+"): "+addIndent(c.Module.String(), 2))
	}
	var b strings.Builder
	b.WriteString(name + "(")
	if len(lines) > 0 {
		if nExtra == 1 && len(children) == 0 {
			b.WriteString(lines[0])
		} else {
			b.WriteString("\n  " + strings.Join(lines, "\n  ") + "\n")
		}
	}
	b.WriteString(")")
	return b.String()
}

// addIndent is torch.nn.modules.module._addindent: every line but the first
// gets n more spaces.
func addIndent(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) == 1 {
		return s
	}
	pad := strings.Repeat(" ", n)
	for i := 1; i < len(lines); i++ {
		lines[i] = pad + lines[i]
	}
	return strings.Join(lines, "\n")
}

// pyBool prints a bool as Python does.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// pyFloat prints a float64 as Python's repr does for the values a layer takes
// (0.5 -> "0.5", 1 -> "1.0", 1e-05 -> "1e-05").
func pyFloat(f float64) string {
	s := strconv.FormatFloat(f, 'g', -1, 64)
	if !strings.ContainsAny(s, ".eEnN") { // no point, exponent, NaN or Inf
		s += ".0"
	}
	return s
}

// pyPair prints a pair as a Python tuple: "(3, 3)".
func pyPair(p [2]int) string {
	return "(" + strconv.Itoa(p[0]) + ", " + strconv.Itoa(p[1]) + ")"
}

// numel is the product of a shape.
func numel(shape []int) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= int64(d)
	}
	return n
}

// fmtShape prints a shape as "[4, 64, 55, 55]".
func fmtShape(shape []int) string {
	parts := make([]string, len(shape))
	for i, d := range shape {
		parts[i] = strconv.Itoa(d)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
