package layers

import (
	"fmt"
	"math"

	"vktrain/vk"
)

// NCHWToCNHW records dst = src with its two outer dimensions swapped: src is
// N x C x H x W (its shape must say so), dst any tensor of as many elements, which
// receives the C x N x H x W layout the convolutions use.
func (r *Runtime) NCHWToCNHW(s *vk.Stream, src, dst *Tensor) error {
	if err := checkLayout("NCHWToCNHW", src, dst); err != nil {
		return err
	}
	n, c := src.Shape[0], src.Shape[1]
	return r.swapOuter(s, src, dst, c, n, src.Shape[2]*src.Shape[3])
}

// CNHWToNCHW records dst = src with its two outer dimensions swapped: src is
// C x N x H x W (its shape must say so), dst any tensor of as many elements, which
// receives the N x C x H x W layout.
func (r *Runtime) CNHWToNCHW(s *vk.Stream, src, dst *Tensor) error {
	if err := checkLayout("CNHWToNCHW", src, dst); err != nil {
		return err
	}
	c, n := src.Shape[0], src.Shape[1]
	return r.swapOuter(s, src, dst, n, c, src.Shape[2]*src.Shape[3])
}

func checkLayout(op string, src, dst *Tensor) error {
	if src == nil || dst == nil {
		return fmt.Errorf("%s: nil tensor", op)
	}
	if len(src.Shape) != 4 {
		return fmt.Errorf("%s: source %q has shape %v, want 4 dimensions", op, src.Name, src.Shape)
	}
	if dst.Len() != src.Len() {
		return fmt.Errorf("%s: destination %q %v has %d elements, source %q %v has %d", op, dst.Name, dst.Shape, dst.Len(), src.Name, src.Shape, src.Len())
	}
	if src.Buffer() == dst.Buffer() {
		return fmt.Errorf("%s: source and destination share buffer %q", op, src.Name)
	}
	return nil
}

// swapOuter records dst[a, b, hw] = src[b, a, hw] for an a x b x hw destination,
// binding dst in parts where it exceeds the device's storage-buffer range.
func (r *Runtime) swapOuter(s *vk.Stream, src, dst *Tensor, a, b, hw int) error {
	total := a * b * hw
	module, quantum, in := "layout", 1, src.Range().AsR32F()
	if hw%4 == 0 {
		module, quantum, in = "layout_vec4", 4, src.Range()
	}
	// Whole quanta of the destination as "rows" of a matrix: each binding then
	// starts at a quantum boundary.
	for _, ch := range r.rowChunks(Mat{T: dst, LD: quantum}, total/quantum, quantum, math.MaxInt) {
		pc := push(nil).u32(a, b, hw, ch.row*quantum, ch.rows*quantum, ch.off)
		if err := r.dispatch(s, module, nil, r.groups1D(ch.rows, 64), pc, in, ch.rng); err != nil {
			return fmt.Errorf("layout %q -> %q: %w", src.Name, dst.Name, err)
		}
	}
	return nil
}
