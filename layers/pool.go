package layers

import (
	"fmt"

	"vktrain/vk"
)

// Pooling works on planes: an H x W image at element p*H*W for plane p, with the
// planes independent. CNHW activations (C x N x H x W) are C*N planes, and so are
// NCHW ones, so the kernels do not depend on the layout around the planes.

// Pool2D is a max-pooling window: size KH x KW, strides, and implicit -Inf
// padding of at most half the window (PyTorch's floor mode, dilation 1).
// AlexNet's is Pool2D{KH: 3, KW: 3, StrideH: 2, StrideW: 2}.
type Pool2D struct {
	KH, KW           int
	StrideH, StrideW int
	PadH, PadW       int
}

// Out returns the output size for an h x w input: floor((h+2*PadH-KH)/StrideH)+1
// and likewise for w.
func (p Pool2D) Out(h, w int) (oh, ow int) {
	return (h+2*p.PadH-p.KH)/p.StrideH + 1, (w+2*p.PadW-p.KW)/p.StrideW + 1
}

// Check reports parameters PyTorch's max_pool2d rejects for an h x w input:
// non-positive sizes or strides, negative padding or padding over half the
// window, or a window larger than the padded input.
func (p Pool2D) Check(h, w int) error {
	if p.KH < 1 || p.KW < 1 || p.StrideH < 1 || p.StrideW < 1 || p.PadH < 0 || p.PadW < 0 || h < 1 || w < 1 {
		return fmt.Errorf("maxpool2d: bad window %+v for a %dx%d input", p, h, w)
	}
	if 2*p.PadH > p.KH || 2*p.PadW > p.KW {
		return fmt.Errorf("maxpool2d: padding %dx%d exceeds half the window %dx%d", p.PadH, p.PadW, p.KH, p.KW)
	}
	if h+2*p.PadH < p.KH || w+2*p.PadW < p.KW {
		return fmt.Errorf("maxpool2d: window %dx%d larger than the padded input %dx%d", p.KH, p.KW, h+2*p.PadH, w+2*p.PadW)
	}
	return nil
}

// MaxPool2DForward records max pooling of planes h x w planes of x into y
// (planes x oh x ow, with oh, ow = p.Out(h, w)) and argmax (same shape as y).
//
// argmax is a float32 tensor holding the flat index h*W+w of each maximum within
// its input plane (PyTorch's return_indices) as a float value: exact, since a
// plane may hold at most 2^24 elements, and a normal float, so the backward reads
// it through a texel buffer (the fast path on lavapipe) with no denormal
// flushing to fear. ArgmaxIndices downloads it as int32. Windows are scanned row-major and only a strictly greater value
// or a NaN replaces the maximum, so the first maximum wins ties and NaN
// propagates, as in ref.MaxPool2DForward; y is exact.
func (r *Runtime) MaxPool2DForward(s *vk.Stream, p Pool2D, planes, h, w int, x, y, argmax *Tensor) error {
	oh, ow, err := r.checkMaxPool(p, planes, h, w, x, y, argmax, "x", "y")
	if err != nil {
		return err
	}
	return r.maxPool(s, true, p, planes, h, w, oh, ow, x, y, argmax)
}

// MaxPool2DBackward records dx (planes x h x w) from dy and the forward's argmax
// (planes x oh x ow each). It is a gather: each input element sums, in row-major
// window order, the dy of the windows whose argmax names it, so it needs no
// atomics and is deterministic. dx is exact where at most one window picked an
// element; otherwise it is a float32 sum of at most ceil(KH/StrideH)*ceil(KW/StrideW)
// terms.
func (r *Runtime) MaxPool2DBackward(s *vk.Stream, p Pool2D, planes, h, w int, dy, argmax, dx *Tensor) error {
	oh, ow, err := r.checkMaxPool(p, planes, h, w, dx, dy, argmax, "dx", "dy")
	if err != nil {
		return err
	}
	return r.maxPool(s, false, p, planes, h, w, oh, ow, dx, dy, argmax)
}

func (r *Runtime) checkMaxPool(p Pool2D, planes, h, w int, in, out, argmax *Tensor, inName, outName string) (oh, ow int, err error) {
	if err := p.Check(h, w); err != nil {
		return 0, 0, err
	}
	if planes < 1 {
		return 0, 0, fmt.Errorf("maxpool2d: %d planes", planes)
	}
	if h*w > 1<<24 {
		return 0, 0, fmt.Errorf("maxpool2d: %dx%d planes exceed 2^24 elements (argmax is float-coded)", h, w)
	}
	oh, ow = p.Out(h, w)
	if err := wantElems("maxpool2d", inName, in, planes*h*w); err != nil {
		return 0, 0, err
	}
	if err := wantElems("maxpool2d", outName, out, planes*oh*ow); err != nil {
		return 0, 0, err
	}
	if err := wantElems("maxpool2d", "argmax", argmax, planes*oh*ow); err != nil {
		return 0, 0, err
	}
	return oh, ow, nil
}

// maxPool records the forward (full = x, pooled = y) or the backward (full = dx,
// pooled = dy); full is planes x h x w and pooled planes x oh x ow.
func (r *Runtime) maxPool(s *vk.Stream, fwd bool, p Pool2D, planes, h, w, oh, ow int, full, pooled, argmax *Tensor) error {
	runs, err := r.planeRuns("maxpool2d", planes, max(h*w, oh*ow))
	if err != nil {
		return err
	}
	spec := map[uint32]uint32{1: uint32(p.KH), 2: uint32(p.KW), 3: uint32(p.StrideH), 4: uint32(p.StrideW), 5: uint32(p.PadH), 6: uint32(p.PadW)}
	for _, run := range runs {
		in := r.spanOf(full, h*w, run[0], run[1])
		out := r.spanOf(pooled, oh*ow, run[0], run[1])
		am := r.spanOf(argmax, oh*ow, run[0], run[1])
		module, args := "maxpool_fwd", []vk.Range{in.rng.AsR32F(), out.rng, am.rng}
		gx, gy := ow, oh
		if !fwd {
			module, args = "maxpool_bwd", []vk.Range{out.rng.AsR32F(), am.rng.AsR32F(), in.rng}
			// One invocation per StrideH x StrideW input block (see maxpool.comp).
			gx, gy = (w-1+p.PadW)/p.StrideW+1, (h-1+p.PadH)/p.StrideH+1
		}
		groups := poolGroups(spec, gx, gy, run[1])
		pc := push(nil).u32(h, w, oh, ow, in.off, out.off, am.off, run[1])
		if err := r.dispatch(s, module, spec, groups, pc, args...); err != nil {
			return err
		}
	}
	return nil
}

// ArgmaxIndices downloads a MaxPool2DForward argmax tensor as int32 indices.
func ArgmaxIndices(argmax *Tensor) ([]int32, error) {
	f, err := argmax.Download()
	if err != nil {
		return nil, err
	}
	v := make([]int32, len(f))
	for i, x := range f {
		v[i] = int32(x)
	}
	return v, nil
}

// AdaptiveAvgPool2DForward records adaptive average pooling of planes h x w
// planes of x into y (planes x oh x ow) with PyTorch's bins: output row i averages
// input rows [floor(i*h/oh), ceil((i+1)*h/oh)), columns likewise. Any sizes work,
// h < oh included (1x1 -> 6x6 copies); equal sizes are a copy. Each output is the float32 sum of its k
// inputs, row-major, divided by k: within (k+3) float32 unit roundoffs of
// sum|x|/k of the exact mean.
func (r *Runtime) AdaptiveAvgPool2DForward(s *vk.Stream, planes, h, w, oh, ow int, x, y *Tensor) error {
	if err := checkAdaptive(planes, h, w, oh, ow, x, y, "x", "y"); err != nil {
		return err
	}
	return r.adaptive(s, true, planes, h, w, oh, ow, x, y)
}

// AdaptiveAvgPool2DBackward records dx (planes x h x w) from dy (planes x oh x
// ow): a gather, each input element summing dy/k over the m bins (of k elements
// each) that hold it, in row-major bin order; no atomics. Within (m+3) float32 unit
// roundoffs of sum|dy/k|.
func (r *Runtime) AdaptiveAvgPool2DBackward(s *vk.Stream, planes, h, w, oh, ow int, dy, dx *Tensor) error {
	if err := checkAdaptive(planes, h, w, oh, ow, dx, dy, "dx", "dy"); err != nil {
		return err
	}
	return r.adaptive(s, false, planes, h, w, oh, ow, dx, dy)
}

func checkAdaptive(planes, h, w, oh, ow int, in, out *Tensor, inName, outName string) error {
	if planes < 1 || h < 1 || w < 1 || oh < 1 || ow < 1 {
		return fmt.Errorf("adaptiveavgpool2d: bad sizes: %d planes of %dx%d to %dx%d", planes, h, w, oh, ow)
	}
	if err := wantElems("adaptiveavgpool2d", inName, in, planes*h*w); err != nil {
		return err
	}
	return wantElems("adaptiveavgpool2d", outName, out, planes*oh*ow)
}

// adaptive records the forward (full = x, pooled = y) or the backward (full =
// dx, pooled = dy); full is planes x h x w and pooled planes x oh x ow. Equal
// sizes make every bin one element: then both directions are a copy.
func (r *Runtime) adaptive(s *vk.Stream, fwd bool, planes, h, w, oh, ow int, full, pooled *Tensor) error {
	if h == oh && w == ow {
		if fwd {
			return s.Copy(pooled.Range(), full.Range())
		}
		return s.Copy(full.Range(), pooled.Range())
	}
	runs, err := r.planeRuns("adaptiveavgpool2d", planes, max(h*w, oh*ow))
	if err != nil {
		return err
	}
	for _, run := range runs {
		in := r.spanOf(full, h*w, run[0], run[1])
		out := r.spanOf(pooled, oh*ow, run[0], run[1])
		module, args := "avgpool_adaptive_fwd", []vk.Range{in.rng.AsR32F(), out.rng}
		gx, gy := ow, oh
		if !fwd {
			module, args = "avgpool_adaptive_bwd", []vk.Range{out.rng.AsR32F(), in.rng}
			gx, gy = w, h
		}
		spec := map[uint32]uint32{23: uint32(oh), 24: uint32(ow)}
		groups := poolGroups(spec, gx, gy, run[1])
		pc := push(nil).u32(h, w, in.off, out.off, run[1])
		if err := r.dispatch(s, module, spec, groups, pc, args...); err != nil {
			return err
		}
	}
	return nil
}

// Specialization IDs of the pooling kernels' workgroup shape.
const (
	specLocalX = 20
	specLocalY = 21
	specLocalZ = 22
)

// poolGroups shapes a pooling dispatch over gx x gy positions of each of
// planes planes into spec's workgroup size: up to 8x8 positions and as many
// planes as fill 64 invocations, so that small planes share a workgroup.
// Measured on lavapipe (AMD EPYC host, 64x64 input, batch 64): one 8x8
// workgroup per 1x1 plane made the adaptive pool's backward 19 ms.
func poolGroups(spec map[uint32]uint32, gx, gy, planes int) [3]uint32 {
	lx, ly := min(gx, 8), min(gy, 8)
	lz := max(1, 64/(lx*ly))
	spec[specLocalX], spec[specLocalY], spec[specLocalZ] = uint32(lx), uint32(ly), uint32(lz)
	return [3]uint32{uint32(ceilDiv(gx, lx)), uint32(ceilDiv(gy, ly)), uint32(ceilDiv(planes, lz))}
}
