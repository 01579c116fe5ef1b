package layers

import (
	"fmt"

	"vktrain/vk"
)

// Chunked bindings for the pooling and elementwise kernels.
//
// Their outputs are storage buffers, and one storage binding is limited to the
// device's maxStorageBufferRange (128 MiB on lavapipe: conv1's activations at
// batch 256 are larger). The kernels therefore work on runs of "items" (planes of
// a pooling op, RGBA32F texels of an elementwise op): each run binds, for every
// tensor, the aligned byte range holding its items, and tells the kernel the
// element offset of the run's first item within that binding. When every tensor
// fits, there is one run and each binding covers its whole tensor.

// span is one tensor's binding for a run of items, and the element offset of the
// run's first item within it.
type span struct {
	rng vk.Range
	off int
}

// bindAlign is the byte alignment of a chunk's binding offsets: 16 (whole RGBA32F
// texels) and the device's storage and texel offset alignments.
func (r *Runtime) bindAlign() int64 {
	a := int64(16)
	for _, b := range []uint64{r.Dev.Info.MinStorageBufferAlign, r.Dev.Info.MinTexelBufferAlign} {
		if b > 1 {
			a = lcm(a, int64(b))
		}
	}
	return a
}

func lcm(a, b int64) int64 {
	x, y := a, b
	for y != 0 {
		x, y = y, x%y
	}
	return a / x * b
}

// spanOf is the binding of items [first, first+count) of t, each unit elements.
func (r *Runtime) spanOf(t *Tensor, unit, first, count int) span {
	whole := t.Range()
	align := r.bindAlign()
	b0 := int64(4) * int64(first) * int64(unit)
	start := b0 / align * align
	end := (int64(4)*int64(first+count)*int64(unit) + 15) &^ 15
	end = min(end, whole.Size)
	return span{rng: t.Buffer().Slice(start, end-start), off: int((b0 - start) / 4)}
}

// itemRuns splits items items into runs [first, first+count) whose bindings fit
// the storage range, where maxUnit is the largest item size (in elements) among
// the tensors bound.
func (r *Runtime) itemRuns(what string, items, maxUnit int) ([][2]int, error) {
	return r.runs(what, items, maxUnit, items)
}

// planeRuns is itemRuns for kernels dispatched with one z workgroup per plane:
// runs are also at most the device's workgroup count in z.
func (r *Runtime) planeRuns(what string, planes, maxUnit int) ([][2]int, error) {
	return r.runs(what, planes, maxUnit, int(r.Dev.Info.MaxWorkgroupCount[2]))
}

func (r *Runtime) runs(what string, items, maxUnit, most int) ([][2]int, error) {
	limit := r.storageLimit
	if int64(4)*int64(items)*int64(maxUnit)+15 <= limit && items <= most {
		return [][2]int{{0, items}}, nil
	}
	per := (limit - r.bindAlign() - 16) / (4 * int64(maxUnit))
	if per < 1 {
		return nil, fmt.Errorf("%s: one item of %d elements exceeds the device's storage range of %d bytes", what, maxUnit, limit)
	}
	per = min(per, int64(most))
	var runs [][2]int
	for first := 0; first < items; first += int(per) {
		runs = append(runs, [2]int{first, min(int(per), items-first)})
	}
	return runs, nil
}

// wantElems reports a tensor that is nil or does not hold exactly n elements.
func wantElems(what, name string, t *Tensor, n int) error {
	if t == nil {
		return fmt.Errorf("%s: %s is nil", what, name)
	}
	if t.Len() != n {
		return fmt.Errorf("%s: %s %q %v has %d elements, want %d", what, name, t.Name, t.Shape, t.Len(), n)
	}
	return nil
}
