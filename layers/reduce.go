package layers

import (
	"fmt"
	"math"

	"vktrain/vk"
)

// RowSum describes strided row sums over a tensor's elements,
// Out[OutOff + i] (+)= sum_{j < L} In[InOff + i*RowStride + j*ColStride] for
// i < Rows. A convolution's bias gradient sums the rows of its K x (N*OH*OW)
// output gradient (RowStride N*OH*OW, ColStride 1); a linear layer's sums the
// columns of its N x out output gradient (Rows out, L N, RowStride 1, ColStride out).
type RowSum struct {
	Rows, L              int
	RowStride, ColStride int
	InOff, OutOff        int  // in elements
	Accumulate           bool // add to Out instead of overwriting it
}

// extent is the number of elements from a row's first summed element to its last, plus one.
func (a RowSum) extent() int { return (a.L-1)*a.ColStride + 1 }

// check validates a against in (read from InOff) and out (written from OutOff;
// nil for none).
func (a RowSum) check(op string, in, out *Tensor) error {
	if a.Rows <= 0 || a.L <= 0 || a.RowStride < 0 || a.ColStride < 0 || a.InOff < 0 || a.OutOff < 0 {
		return fmt.Errorf("%s: bad sizes %+v", op, a)
	}
	if in == nil {
		return fmt.Errorf("%s: nil input", op)
	}
	if last := a.InOff + (a.Rows-1)*a.RowStride + a.extent(); last > in.Len() {
		return fmt.Errorf("%s: %+v reads up to element %d of %q, which has %d", op, a, last, in.Name, in.Len())
	}
	if out != nil && a.OutOff+a.Rows > out.Len() {
		return fmt.Errorf("%s: %d sums from offset %d do not fit %q of %d elements", op, a.Rows, a.OutOff, out.Name, out.Len())
	}
	return nil
}

// RowSum records the row sums a describes, of in into out.
func (r *Runtime) RowSum(s *vk.Stream, in, out *Tensor, a RowSum) error {
	if err := a.check("rowsum", in, out); err != nil {
		return err
	}
	spec := map[uint32]uint32{0: boolU32(a.Accumulate), 1: 1}
	pc := push(nil).u32(a.Rows, a.L, a.RowStride, a.ColStride, a.InOff, 0, a.OutOff)
	if err := r.dispatch(s, "rowsum", spec, r.groups1D(a.Rows, 1), pc, in.Range().AsR32F(), out.Range()); err != nil {
		return fmt.Errorf("rowsum of %q into %q: %w", in.Name, out.Name, err)
	}
	return nil
}

// ReLUGradRowSum records the backward pass of a ReLU whose output is y, fused
// with row sums: dy is masked in place, dy[e] = dy[e] * (y[e] > 0), over the
// elements a describes (y and dy share indexing; a.InOff applies to both), and
// out receives the row sums of the masked dy as RowSum does. out may be nil: dy is
// then only masked.
func (r *Runtime) ReLUGradRowSum(s *vk.Stream, y, dy, out *Tensor, a RowSum) error {
	if err := a.check("relu-grad rowsum", dy, out); err != nil {
		return err
	}
	if y == nil {
		return fmt.Errorf("relu-grad rowsum: nil ReLU output")
	}
	if y.Len() != dy.Len() || y.Buffer() == dy.Buffer() {
		return fmt.Errorf("relu-grad rowsum: output %q (%d elements) and its gradient %q (%d) must be distinct tensors of one size", y.Name, y.Len(), dy.Name, dy.Len())
	}
	sum := out != nil
	if !sum {
		var err error
		if out, err = r.convDummy(); err != nil {
			return err
		}
		a.OutOff, a.Accumulate = 0, false
	}
	spec := map[uint32]uint32{0: boolU32(a.Accumulate), 1: boolU32(sum)}
	// dy is written, so it is bound as storage: in runs of rows where it exceeds
	// the device's storage-buffer range.
	for _, ch := range r.rowChunks(Mat{T: dy, Off: a.InOff, LD: a.RowStride}, a.Rows, a.extent(), math.MaxInt) {
		outOff := a.OutOff
		if sum {
			outOff += ch.row
		}
		pc := push(nil).u32(ch.rows, a.L, a.RowStride, a.ColStride, ch.off, a.InOff+ch.row*a.RowStride, outOff)
		if err := r.dispatch(s, "rowsum_relu", spec, r.groups1D(ch.rows, 1), pc, ch.rng, y.Range().AsR32F(), out.Range()); err != nil {
			return fmt.Errorf("relu-grad rowsum of %q: %w", dy.Name, err)
		}
	}
	return nil
}

// convDummy is a small tensor bound where a kernel's optional output is unused.
func (r *Runtime) convDummy() (*Tensor, error) {
	if r.dummy == nil {
		var err error
		if r.dummy, err = r.NewTensor("dummy", 4); err != nil {
			return nil, err
		}
	}
	return r.dummy, nil
}

// SlabSum records out (rows x cols, rows out.LD apart from out.Off) = the sum,
// in slab order, of the slabs rows x cols matrices stored one after another
// at the start of part (shaders/slabsum.comp): the partial sums a kernel
// split over slabs of its reduction writes (a fused update's input
// gradient). cols must be a multiple of 4.
func (r *Runtime) SlabSum(s *vk.Stream, part *Tensor, slabs, rows, cols int, out Mat) error {
	if slabs <= 0 || rows <= 0 || cols <= 0 || cols%4 != 0 {
		return fmt.Errorf("slabsum: bad sizes: %d slabs of %d x %d (columns a multiple of 4)", slabs, rows, cols)
	}
	if part == nil || part.Len() < slabs*rows*cols {
		return fmt.Errorf("slabsum: %d slabs of %d x %d do not fit the partial sums' tensor", slabs, rows, cols)
	}
	if out.Trans {
		return fmt.Errorf("slabsum: the sum %q cannot be transposed", out.T.Name)
	}
	if err := checkMat("sum", out, rows, cols); err != nil {
		return fmt.Errorf("slabsum: %w", err)
	}
	if out.T.Buffer() == part.Buffer() {
		return fmt.Errorf("slabsum: the sum %q must be distinct from the partial sums %q", out.T.Name, part.Name)
	}
	pc := push(nil).u32(slabs, rows, cols, out.LD, out.Off)
	if err := r.dispatch(s, "slabsum", nil, r.groups1D(rows*cols/4, 64), pc, part.Range(), out.T.Range()); err != nil {
		return fmt.Errorf("slabsum of %q into %q: %w", part.Name, out.T.Name, err)
	}
	return nil
}
