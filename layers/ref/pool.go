package ref

import (
	"fmt"
	"math"
)

// Pool2DParams describes max pooling of an N x C x H x W input with a
// KH x KW window, producing N x C x OutH x OutW. The output size uses
// PyTorch's floor mode (ceil_mode=False) and dilation 1.
type Pool2DParams struct {
	N, C, H, W       int // input batch, channels, height, width
	KH, KW           int // window height and width
	StrideH, StrideW int // strides, >= 1
	PadH, PadW       int // implicit -Inf padding, at most half the window
}

// OutH returns the output height, floor((H + 2*PadH - KH) / StrideH) + 1.
// It is meaningful only for parameters that pass Validate.
func (p Pool2DParams) OutH() int { return (p.H+2*p.PadH-p.KH)/p.StrideH + 1 }

// OutW returns the output width, floor((W + 2*PadW - KW) / StrideW) + 1.
// It is meaningful only for parameters that pass Validate.
func (p Pool2DParams) OutW() int { return (p.W+2*p.PadW-p.KW)/p.StrideW + 1 }

// Validate reports whether the parameters are accepted by PyTorch's
// max_pool2d: positive sizes and strides, padding between 0 and half the
// window (so every window holds at least one input element), and at least
// one output element.
func (p Pool2DParams) Validate() error {
	if err := checkAtLeast("maxpool2d", 1,
		field{"N", p.N}, field{"C", p.C}, field{"H", p.H}, field{"W", p.W},
		field{"KH", p.KH}, field{"KW", p.KW},
		field{"StrideH", p.StrideH}, field{"StrideW", p.StrideW}); err != nil {
		return err
	}
	if err := checkAtLeast("maxpool2d", 0, field{"PadH", p.PadH}, field{"PadW", p.PadW}); err != nil {
		return err
	}
	if 2*p.PadH > p.KH || 2*p.PadW > p.KW {
		return fmt.Errorf("ref: maxpool2d padding %dx%d exceeds half the window %dx%d",
			p.PadH, p.PadW, p.KH, p.KW)
	}
	if p.H+2*p.PadH < p.KH || p.W+2*p.PadW < p.KW {
		return fmt.Errorf("ref: maxpool2d window %dx%d larger than padded input %dx%d",
			p.KH, p.KW, p.H+2*p.PadH, p.W+2*p.PadW)
	}
	return nil
}

// window returns the input rows [h0, h1) and columns [w0, w1) covered by
// output position (oh, ow), clipped to the image.
func (p Pool2DParams) window(oh, ow int) (h0, h1, w0, w1 int) {
	h0 = oh*p.StrideH - p.PadH
	w0 = ow*p.StrideW - p.PadW
	h1 = min(h0+p.KH, p.H)
	w1 = min(w0+p.KW, p.W)
	return max(h0, 0), h1, max(w0, 0), w1
}

// MaxPool2DForward returns the window maxima y (N x C x OutH x OutW) and,
// for each output, argmax: the flat index h*W+w of the chosen element
// inside its H x W input plane, as PyTorch's return_indices gives.
//
// Windows are scanned in row-major order and an element replaces the
// current maximum only if it is strictly greater or NaN, so the first
// maximum wins ties and NaN propagates, exactly as PyTorch's CPU kernel.
// Padding never wins (it acts as -Inf); a window of only -Inf reports its
// first in-image element.
func MaxPool2DForward(p Pool2DParams, x []float64) (y []float64, argmax []int32, err error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	if err := checkLen("maxpool2d x", len(x), p.N*p.C*p.H*p.W); err != nil {
		return nil, nil, err
	}
	oh, ow := p.OutH(), p.OutW()
	y = make([]float64, p.N*p.C*oh*ow)
	argmax = make([]int32, len(y))
	for plane := 0; plane < p.N*p.C; plane++ {
		in := x[plane*p.H*p.W : (plane+1)*p.H*p.W]
		for i := 0; i < oh; i++ {
			for j := 0; j < ow; j++ {
				h0, h1, w0, w1 := p.window(i, j)
				best, bestIdx := math.Inf(-1), h0*p.W+w0
				for h := h0; h < h1; h++ {
					for w := w0; w < w1; w++ {
						if v := in[h*p.W+w]; v > best || math.IsNaN(v) {
							best, bestIdx = v, h*p.W+w
						}
					}
				}
				o := (plane*oh+i)*ow + j
				y[o], argmax[o] = best, int32(bestIdx)
			}
		}
	}
	return y, argmax, nil
}

// MaxPool2DBackward returns dx (N x C x H x W): each dy element is added
// to the input element its argmax names (overlapping windows accumulate).
func MaxPool2DBackward(p Pool2DParams, dy []float64, argmax []int32) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	outPlane := p.OutH() * p.OutW()
	if err := checkLen("maxpool2d dy", len(dy), p.N*p.C*outPlane); err != nil {
		return nil, err
	}
	if err := checkLen("maxpool2d argmax", len(argmax), len(dy)); err != nil {
		return nil, err
	}
	inPlane := p.H * p.W
	dx := make([]float64, p.N*p.C*inPlane)
	for o, a := range argmax {
		if a < 0 || int(a) >= inPlane {
			return nil, fmt.Errorf("ref: maxpool2d argmax[%d] = %d outside plane of %d", o, a, inPlane)
		}
		dx[(o/outPlane)*inPlane+int(a)] += dy[o]
	}
	return dx, nil
}

// adaptiveBin returns PyTorch's adaptive pooling bin [start, end) of
// output index i when in input elements are pooled to out outputs:
// start = floor(i*in/out), end = ceil((i+1)*in/out). Bins may overlap, and
// when in < out several outputs share one input.
func adaptiveBin(i, in, out int) (start, end int) {
	return i * in / out, ((i+1)*in + out - 1) / out
}

// checkAdaptive validates the sizes of an adaptive pooling call.
func checkAdaptive(n, c, h, w, oh, ow int) error {
	return checkAtLeast("adaptiveavgpool2d", 1,
		field{"n", n}, field{"c", c}, field{"h", h}, field{"w", w}, field{"oh", oh}, field{"ow", ow})
}

// AdaptiveAvgPool2DForward averages an n x c x h x w input over PyTorch's
// adaptive bins to n x c x oh x ow: output row i covers input rows
// [floor(i*h/oh), ceil((i+1)*h/oh)), and columns likewise, so 13 -> 6 uses
// [0,3) [2,5) [4,7) [6,9) [8,11) [10,13). It works for any sizes,
// including upsampling such as 1x1 -> 6x6.
func AdaptiveAvgPool2DForward(n, c, h, w, oh, ow int, x []float64) ([]float64, error) {
	if err := checkAdaptive(n, c, h, w, oh, ow); err != nil {
		return nil, err
	}
	if err := checkLen("adaptiveavgpool2d x", len(x), n*c*h*w); err != nil {
		return nil, err
	}
	y := make([]float64, n*c*oh*ow)
	for plane := 0; plane < n*c; plane++ {
		for i := 0; i < oh; i++ {
			h0, h1 := adaptiveBin(i, h, oh)
			for j := 0; j < ow; j++ {
				w0, w1 := adaptiveBin(j, w, ow)
				sum := 0.0
				for hh := h0; hh < h1; hh++ {
					for ww := w0; ww < w1; ww++ {
						sum += x[(plane*h+hh)*w+ww]
					}
				}
				y[(plane*oh+i)*ow+j] = sum / float64((h1-h0)*(w1-w0))
			}
		}
	}
	return y, nil
}

// AdaptiveAvgPool2DBackward returns dx (n x c x h x w): each dy element
// (n x c x oh x ow) is spread evenly over its bin, and overlapping bins
// accumulate.
func AdaptiveAvgPool2DBackward(n, c, h, w, oh, ow int, dy []float64) ([]float64, error) {
	if err := checkAdaptive(n, c, h, w, oh, ow); err != nil {
		return nil, err
	}
	if err := checkLen("adaptiveavgpool2d dy", len(dy), n*c*oh*ow); err != nil {
		return nil, err
	}
	dx := make([]float64, n*c*h*w)
	for plane := 0; plane < n*c; plane++ {
		for i := 0; i < oh; i++ {
			h0, h1 := adaptiveBin(i, h, oh)
			for j := 0; j < ow; j++ {
				w0, w1 := adaptiveBin(j, w, ow)
				g := dy[(plane*oh+i)*ow+j] / float64((h1-h0)*(w1-w0))
				for hh := h0; hh < h1; hh++ {
					for ww := w0; ww < w1; ww++ {
						dx[(plane*h+hh)*w+ww] += g
					}
				}
			}
		}
	}
	return dx, nil
}
