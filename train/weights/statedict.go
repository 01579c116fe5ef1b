package weights

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Tensor is a dense, row-major float32 tensor.
type Tensor struct {
	// Shape lists the dimensions; an empty Shape is a scalar with one element.
	Shape []int
	// Data holds the elements in row-major order; len(Data) is the product of Shape.
	Data []float32
	// DType is the element type the tensor had in the file it was read from
	// (Data is float32 regardless). Empty for tensors built in memory.
	DType DType
}

// NumElements returns the number of elements the shape describes.
func (t *Tensor) NumElements() int {
	n, err := numElements(t.Shape)
	if err != nil {
		return 0
	}
	return n
}

// StateDict is a set of named tensors, in the order the file lists them.
// The zero value is an empty state dict ready for Add.
type StateDict struct {
	// Names lists the tensor names in file order.
	Names []string
	// Tensors maps every name in Names to its tensor.
	Tensors map[string]*Tensor
	// Path is the file the tensors were read from, used in error messages;
	// empty for state dicts built in memory.
	Path string
}

// Get returns the tensor called name and whether it exists.
func (sd *StateDict) Get(name string) (*Tensor, bool) {
	t, ok := sd.Tensors[name]
	return t, ok
}

// Len returns the number of tensors.
func (sd *StateDict) Len() int { return len(sd.Names) }

// NumElements returns the total number of elements over all tensors.
func (sd *StateDict) NumElements() int {
	n := 0
	for _, t := range sd.Tensors {
		n += len(t.Data)
	}
	return n
}

// Add appends a tensor under a new name. It refuses an empty or duplicate name
// and a tensor whose data length does not match its shape.
func (sd *StateDict) Add(name string, t *Tensor) error {
	if name == "" {
		return fmt.Errorf("%sempty tensor name", sd.where())
	}
	if _, dup := sd.Tensors[name]; dup {
		return fmt.Errorf("%sduplicate tensor %q", sd.where(), name)
	}
	n, err := numElements(t.Shape)
	if err != nil {
		return fmt.Errorf("%stensor %q: %w", sd.where(), name, err)
	}
	if n != len(t.Data) {
		return fmt.Errorf("%stensor %q has shape %v (%d elements) but %d values",
			sd.where(), name, t.Shape, n, len(t.Data))
	}
	if sd.Tensors == nil {
		sd.Tensors = make(map[string]*Tensor)
	}
	sd.Names = append(sd.Names, name)
	sd.Tensors[name] = t
	return nil
}

// where returns "path: " for error messages, or "" when the state dict has no file.
func (sd *StateDict) where() string {
	if sd.Path == "" {
		return ""
	}
	return sd.Path + ": "
}

// Spec names a tensor a model expects and its shape.
type Spec struct {
	Name  string
	Shape []int
}

// ShapeMismatch records a tensor whose shape in the file differs from the expected one.
type ShapeMismatch struct {
	Name string
	Got  []int // shape in the file
	Want []int // expected shape
}

// MismatchError reports everything that keeps a state dict from matching a model:
// shape mismatches always, missing and unexpected names in strict mode. Every list
// is sorted by name.
type MismatchError struct {
	Path       string // file the state dict came from, if any
	Missing    []string
	Unexpected []string
	Shapes     []ShapeMismatch
}

// Error lists every problem, one per line after the first.
func (e *MismatchError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString("state dict does not match the model")
	for _, m := range e.Shapes {
		fmt.Fprintf(&b, "\n  tensor %q has shape %v in the file, want %v", m.Name, m.Got, m.Want)
	}
	if len(e.Missing) > 0 {
		fmt.Fprintf(&b, "\n  missing: %s", strings.Join(e.Missing, ", "))
	}
	if len(e.Unexpected) > 0 {
		fmt.Fprintf(&b, "\n  unexpected: %s", strings.Join(e.Unexpected, ", "))
	}
	return b.String()
}

// Check compares the state dict with the tensors a model wants. It returns the
// wanted names the state dict lacks and the names it has that nobody wants, both
// sorted. A shape mismatch is always an error (a *MismatchError naming every such
// tensor with both shapes); in strict mode missing or unexpected names are too, all
// reported in the same error.
func (sd *StateDict) Check(want []Spec, strict bool) (missing, unexpected []string, err error) {
	wanted := make(map[string]bool, len(want))
	var shapes []ShapeMismatch
	for _, w := range want {
		if wanted[w.Name] {
			return nil, nil, fmt.Errorf("%sCheck: %q is wanted twice", sd.where(), w.Name)
		}
		wanted[w.Name] = true
		t, ok := sd.Tensors[w.Name]
		switch {
		case !ok:
			missing = append(missing, w.Name)
		case !slices.Equal(t.Shape, w.Shape):
			shapes = append(shapes, ShapeMismatch{Name: w.Name, Got: t.Shape, Want: w.Shape})
		}
	}
	for _, name := range sd.Names {
		if !wanted[name] {
			unexpected = append(unexpected, name)
		}
	}
	sort.Strings(missing)
	sort.Strings(unexpected)
	sort.Slice(shapes, func(i, j int) bool { return shapes[i].Name < shapes[j].Name })

	e := &MismatchError{Path: sd.Path, Shapes: shapes}
	if strict {
		e.Missing, e.Unexpected = missing, unexpected
	}
	if len(e.Shapes)+len(e.Missing)+len(e.Unexpected) > 0 {
		err = e
	}
	return missing, unexpected, err
}

// LoadInto copies tensors by name into the caller's tensors, whose Shape says what
// is expected and whose Data (already allocated, len = product of Shape) receives
// the values. It checks everything first, as Check does, and copies nothing if
// there is an error; in non-strict mode the tensors the file lacks keep their
// contents and the names are returned.
func (sd *StateDict) LoadInto(dst map[string]*Tensor, strict bool) (missing, unexpected []string, err error) {
	want := make([]Spec, 0, len(dst))
	for name, t := range dst {
		n, err := numElements(t.Shape)
		if err != nil || n != len(t.Data) {
			return nil, nil, fmt.Errorf("%sLoadInto: destination %q has shape %v but %d values",
				sd.where(), name, t.Shape, len(t.Data))
		}
		want = append(want, Spec{Name: name, Shape: t.Shape})
	}
	missing, unexpected, err = sd.Check(want, strict)
	if err != nil {
		return missing, unexpected, err
	}
	for name, t := range dst {
		if src, ok := sd.Tensors[name]; ok {
			copy(t.Data, src.Data)
		}
	}
	return missing, unexpected, nil
}
