package layers

import (
	"fmt"

	"vktrain/vk"
)

// Tensor is float32 data on the device with a shape. Several tensors may view
// one buffer (Reshape); the one that allocated it frees it.
type Tensor struct {
	Name  string
	Shape []int
	buf   *vk.Buffer
	owner bool
}

// NewTensor allocates a zero-filled tensor.
func (r *Runtime) NewTensor(name string, shape ...int) (*Tensor, error) {
	n := 1
	for _, d := range shape {
		if d <= 0 {
			return nil, fmt.Errorf("tensor %q: bad shape %v", name, shape)
		}
		n *= d
	}
	b, err := r.Dev.NewBuffer(int64(4*n), name)
	if err != nil {
		return nil, err
	}
	if m := b.Mapped(); m != nil {
		clear(m)
	} else if err := b.Write(0, make([]byte, 4*n)); err != nil {
		b.Free()
		return nil, err
	}
	return &Tensor{Name: name, Shape: append([]int(nil), shape...), buf: b, owner: true}, nil
}

// Len is the number of elements.
func (t *Tensor) Len() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Buffer is the device buffer holding the tensor.
func (t *Tensor) Buffer() *vk.Buffer { return t.buf }

// Range is the whole buffer as a kernel binding (padded to whole RGBA32F texels).
func (t *Tensor) Range() vk.Range { return t.buf.Whole() }

// Reshape returns a view with another shape and the same number of elements
// (Flatten is a Reshape): no copy.
func (t *Tensor) Reshape(shape ...int) (*Tensor, error) {
	v := &Tensor{Name: t.Name, Shape: append([]int(nil), shape...), buf: t.buf}
	if v.Len() != t.Len() {
		return nil, fmt.Errorf("tensor %q: cannot view %v (%d elements) as %v", t.Name, t.Shape, t.Len(), shape)
	}
	return v, nil
}

// Upload copies v (exactly Len elements) to the device.
func (t *Tensor) Upload(v []float32) error {
	if len(v) != t.Len() {
		return fmt.Errorf("tensor %q %v: upload of %d values, want %d", t.Name, t.Shape, len(v), t.Len())
	}
	return t.buf.WriteFloat32(0, v)
}

// Download copies the tensor to the host.
func (t *Tensor) Download() ([]float32, error) {
	v := make([]float32, t.Len())
	return v, t.buf.ReadFloat32(0, v)
}

// Free releases the tensor's buffer if it owns it.
func (t *Tensor) Free() {
	if t != nil && t.owner {
		t.buf.Free()
	}
}
