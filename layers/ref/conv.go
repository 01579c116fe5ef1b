package ref

import "fmt"

// Conv2DParams describes a 2-D convolution (cross-correlation, as in
// PyTorch) of an N x C x H x W input with a K x C x R x S filter bank,
// producing an N x K x OutH x OutW output. Padding is with zeros.
type Conv2DParams struct {
	N, C, H, W       int // input batch, channels, height, width
	K, R, S          int // output channels, filter height, filter width
	StrideH, StrideW int // strides, >= 1
	PadH, PadW       int // zero padding on each side, >= 0
}

// OutH returns the output height, floor((H + 2*PadH - R) / StrideH) + 1.
// It is meaningful only for parameters that pass Validate.
func (p Conv2DParams) OutH() int { return (p.H+2*p.PadH-p.R)/p.StrideH + 1 }

// OutW returns the output width, floor((W + 2*PadW - S) / StrideW) + 1.
// It is meaningful only for parameters that pass Validate.
func (p Conv2DParams) OutW() int { return (p.W+2*p.PadW-p.S)/p.StrideW + 1 }

// Validate reports whether the parameters describe a convolution with at
// least one output element.
func (p Conv2DParams) Validate() error {
	if err := checkAtLeast("conv2d", 1,
		field{"N", p.N}, field{"C", p.C}, field{"H", p.H}, field{"W", p.W},
		field{"K", p.K}, field{"R", p.R}, field{"S", p.S},
		field{"StrideH", p.StrideH}, field{"StrideW", p.StrideW}); err != nil {
		return err
	}
	if err := checkAtLeast("conv2d", 0, field{"PadH", p.PadH}, field{"PadW", p.PadW}); err != nil {
		return err
	}
	if p.H+2*p.PadH < p.R || p.W+2*p.PadW < p.S {
		return fmt.Errorf("ref: conv2d filter %dx%d larger than padded input %dx%d",
			p.R, p.S, p.H+2*p.PadH, p.W+2*p.PadW)
	}
	return nil
}

func (p Conv2DParams) xLen() int { return p.N * p.C * p.H * p.W }
func (p Conv2DParams) wLen() int { return p.K * p.C * p.R * p.S }
func (p Conv2DParams) yLen() int { return p.N * p.K * p.OutH() * p.OutW() }

// forEachTap calls f once for every (output, filter tap) pair whose input
// sample lies inside the image, with the flat indices of the input
// element xi, the filter element wi and the output element yi. Padding
// taps are skipped, which is what zero padding means. For a fixed yi the
// taps come in (c, r, s) order.
//
// All three convolution passes are written on top of this one walk, so
// they agree on indexing by construction.
func (p Conv2DParams) forEachTap(f func(xi, wi, yi int)) {
	oh, ow := p.OutH(), p.OutW()
	for n := 0; n < p.N; n++ {
		for k := 0; k < p.K; k++ {
			for y := 0; y < oh; y++ {
				for x := 0; x < ow; x++ {
					yi := index4(n, k, y, x, p.K, oh, ow)
					for c := 0; c < p.C; c++ {
						for r := 0; r < p.R; r++ {
							ih := y*p.StrideH - p.PadH + r
							if ih < 0 || ih >= p.H {
								continue
							}
							for s := 0; s < p.S; s++ {
								iw := x*p.StrideW - p.PadW + s
								if iw < 0 || iw >= p.W {
									continue
								}
								f(index4(n, c, ih, iw, p.C, p.H, p.W), index4(k, c, r, s, p.C, p.R, p.S), yi)
							}
						}
					}
				}
			}
		}
	}
}

// Conv2DForward computes y[n,k,oh,ow] = b[k] + sum_{c,r,s}
// x[n,c,oh*StrideH-PadH+r, ow*StrideW-PadW+s] * w[k,c,r,s], with x
// N x C x H x W, w K x C x R x S and b of length K or nil (no bias).
// The result is N x K x OutH x OutW.
func Conv2DForward(p Conv2DParams, x, w, b []float64) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkLens(lenCheck{"conv2d x", len(x), p.xLen()}, lenCheck{"conv2d w", len(w), p.wLen()}); err != nil {
		return nil, err
	}
	if b != nil {
		if err := checkLen("conv2d b", len(b), p.K); err != nil {
			return nil, err
		}
	}
	y := make([]float64, p.yLen())
	if b != nil {
		plane := p.OutH() * p.OutW()
		for i := range y {
			y[i] = b[(i/plane)%p.K]
		}
	}
	p.forEachTap(func(xi, wi, yi int) { y[yi] += x[xi] * w[wi] })
	return y, nil
}

// Conv2DBackwardData returns dx (N x C x H x W), the gradient of the loss
// with respect to the convolution input, given dy (N x K x OutH x OutW)
// and the filters w (K x C x R x S).
func Conv2DBackwardData(p Conv2DParams, dy, w []float64) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkLens(lenCheck{"conv2d dy", len(dy), p.yLen()}, lenCheck{"conv2d w", len(w), p.wLen()}); err != nil {
		return nil, err
	}
	dx := make([]float64, p.xLen())
	p.forEachTap(func(xi, wi, yi int) { dx[xi] += dy[yi] * w[wi] })
	return dx, nil
}

// Conv2DBackwardFilter returns dw (K x C x R x S), the gradient of the
// loss with respect to the filters, given the input x (N x C x H x W) and
// dy (N x K x OutH x OutW).
func Conv2DBackwardFilter(p Conv2DParams, x, dy []float64) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkLens(lenCheck{"conv2d x", len(x), p.xLen()}, lenCheck{"conv2d dy", len(dy), p.yLen()}); err != nil {
		return nil, err
	}
	dw := make([]float64, p.wLen())
	p.forEachTap(func(xi, wi, yi int) { dw[wi] += x[xi] * dy[yi] })
	return dw, nil
}

// Conv2DBackwardBias returns db (length K), the sum of dy
// (N x K x OutH x OutW) over the batch and spatial dimensions.
func Conv2DBackwardBias(p Conv2DParams, dy []float64) ([]float64, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d dy", len(dy), p.yLen()); err != nil {
		return nil, err
	}
	return sumChannels(p.N, p.K, p.OutH()*p.OutW(), dy), nil
}

// sumChannels sums an n x c x plane tensor over n and plane, giving c
// values.
func sumChannels(n, c, plane int, v []float64) []float64 {
	out := make([]float64, c)
	for i := 0; i < n; i++ {
		for j := 0; j < c; j++ {
			base := (i*c + j) * plane
			for _, e := range v[base : base+plane] {
				out[j] += e
			}
		}
	}
	return out
}
