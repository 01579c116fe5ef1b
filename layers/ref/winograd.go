package ref

import "fmt"

// Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray, "Fast Algorithms for
// Convolutional Neural Networks", 2015): a 2x2 output tile of a 3x3
// convolution is Y = A^T [(G g G^T) ⊙ (B^T d B)] A for the 4x4 input tile d
// that covers it, 16 multiplications instead of 36. Over the channels the
// element-wise products become 16 independent matrix products, which is how
// layers runs it. The transforms here are written out in float64 so that the
// GPU kernels (shaders/winograd.comp) have a reference to meet, and so that the
// gradients' transposed transforms can be checked against the direct
// convolution's passes.

// WinogradBT, WinogradG and WinogradAT are F(2x2, 3x3)'s input, filter and output
// transform matrices.
var (
	WinogradBT = [][]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}}
	WinogradG  = [][]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}}
	WinogradAT = [][]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}
)

// sandwich returns L X L^T for X n x n (row-major) and L m x n, as a row-major
// m x m slice; with abs, of the absolute values of every entry.
func sandwich(l [][]float64, x []float64, abs bool) []float64 {
	m, n := len(l), len(l[0])
	t := make([]float64, m*n) // L X
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			for k := 0; k < n; k++ {
				t[i*n+j] += mag(l[i][k], abs) * mag(x[k*n+j], abs)
			}
		}
	}
	out := make([]float64, m*m)
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			for k := 0; k < n; k++ {
				out[i*m+j] += t[i*n+k] * mag(l[j][k], abs)
			}
		}
	}
	return out
}

func transposed(a [][]float64) [][]float64 {
	out := make([][]float64, len(a[0]))
	for j := range out {
		out[j] = make([]float64, len(a))
		for i := range a {
			out[j][i] = a[i][j]
		}
	}
	return out
}

// WinogradFilter returns U = G g G^T (4x4, row-major) for a 3x3 filter g.
// With abs, every matrix entry is taken by its absolute value (the bound's
// magnitude term).
func WinogradFilter(g [9]float64, abs bool) [16]float64 {
	return [16]float64(sandwich(WinogradG, g[:], abs))
}

// WinogradInput returns V = B^T d B (4x4, row-major) for a 4x4 input tile d.
func WinogradInput(d [16]float64, abs bool) [16]float64 {
	return [16]float64(sandwich(WinogradBT, d[:], abs))
}

// WinogradOutput returns Y = A^T m A (2x2, row-major) for a 4x4 tile m.
func WinogradOutput(m [16]float64, abs bool) [4]float64 {
	return [4]float64(sandwich(WinogradAT, m[:], abs))
}

// WinogradOutputGrad returns A dy A^T (4x4), the transposed output transform:
// the gradient of the 16 products from a 2x2 output-gradient tile dy.
func WinogradOutputGrad(dy [4]float64, abs bool) [16]float64 {
	return [16]float64(sandwich(transposed(WinogradAT), dy[:], abs))
}

// WinogradFilterGrad returns G^T du G (3x3), the transposed filter transform:
// the filter gradient from the gradient du of U.
func WinogradFilterGrad(du [16]float64, abs bool) [9]float64 {
	return [9]float64(sandwich(transposed(WinogradG), du[:], abs))
}

func mag(v float64, abs bool) float64 {
	if abs && v < 0 {
		return -v
	}
	return v
}

// winogradCheck accepts the convolutions F(2x2, 3x3) computes: 3x3 filters at
// stride 1.
func winogradCheck(p Conv2DParams) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.R != 3 || p.S != 3 || p.StrideH != 1 || p.StrideW != 1 {
		return fmt.Errorf("ref: winograd F(2x2,3x3) needs a 3x3 filter at stride 1, not %dx%d at %d,%d", p.R, p.S, p.StrideH, p.StrideW)
	}
	return nil
}

// inputTile is the 4x4 tile of image n, channel c of x (N x C x H x W) whose
// top-left corner is (y0, x0), zero outside the image; with abs, magnitudes.
func inputTile(p Conv2DParams, x []float64, n, c, y0, x0 int) [16]float64 {
	var d [16]float64
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			ih, iw := y0+i, x0+j
			if ih >= 0 && ih < p.H && iw >= 0 && iw < p.W {
				d[i*4+j] = x[index4(n, c, ih, iw, p.C, p.H, p.W)]
			}
		}
	}
	return d
}

// Conv2DWinograd computes Conv2DForward by F(2x2, 3x3) for a 3x3 filter at
// stride 1 (any padding): output tile (th, tw) of image n covers rows 2th, 2th+1
// and columns 2tw, 2tw+1 and reads the input tile at (2th - PadH, 2tw - PadW).
// With abs it returns instead the bound's magnitude term: the same algorithm on
// the absolute values of every input, filter and transform entry.
func Conv2DWinograd(p Conv2DParams, x, w, b []float64, abs bool) ([]float64, error) {
	if err := winogradCheck(p); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d winograd x", len(x), p.xLen()); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d winograd w", len(w), p.wLen()); err != nil {
		return nil, err
	}
	if b != nil {
		if err := checkLen("conv2d winograd b", len(b), p.K); err != nil {
			return nil, err
		}
	}
	oh, ow := p.OutH(), p.OutW()
	u := make([][16]float64, p.K*p.C)
	for k := 0; k < p.K; k++ {
		for c := 0; c < p.C; c++ {
			var g [9]float64
			copy(g[:], w[(k*p.C+c)*9:(k*p.C+c+1)*9])
			u[k*p.C+c] = WinogradFilter(g, abs)
		}
	}
	y := make([]float64, p.yLen())
	v := make([][16]float64, p.C)
	for n := 0; n < p.N; n++ {
		for th := 0; th < (oh+1)/2; th++ {
			for tw := 0; tw < (ow+1)/2; tw++ {
				for c := 0; c < p.C; c++ {
					v[c] = WinogradInput(inputTile(p, x, n, c, 2*th-p.PadH, 2*tw-p.PadW), abs)
				}
				for k := 0; k < p.K; k++ {
					var m [16]float64
					for c := 0; c < p.C; c++ {
						for e := range m {
							m[e] += u[k*p.C+c][e] * v[c][e]
						}
					}
					out := WinogradOutput(m, abs)
					for i := 0; i < 2; i++ {
						for j := 0; j < 2; j++ {
							if 2*th+i < oh && 2*tw+j < ow {
								bias := 0.0
								if b != nil {
									bias = mag(b[k], abs)
								}
								y[index4(n, k, 2*th+i, 2*tw+j, p.K, oh, ow)] = out[i*2+j] + bias
							}
						}
					}
				}
			}
		}
	}
	return y, nil
}

// Conv2DWinogradBackwardFilter computes Conv2DBackwardFilter by the transposed
// transforms: dW[k,c] = G^T [sum over tiles of (A dy_t A^T) ⊙ (B^T d_t B)] G,
// dy_t being the 2x2 output-gradient tile (zero past the output's edge). With
// abs, the bound's magnitude term, as for Conv2DWinograd.
func Conv2DWinogradBackwardFilter(p Conv2DParams, x, dy []float64, abs bool) ([]float64, error) {
	if err := winogradCheck(p); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d winograd backward filter x", len(x), p.xLen()); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d winograd backward filter dy", len(dy), p.yLen()); err != nil {
		return nil, err
	}
	oh, ow := p.OutH(), p.OutW()
	du := make([][16]float64, p.K*p.C)
	for n := 0; n < p.N; n++ {
		for th := 0; th < (oh+1)/2; th++ {
			for tw := 0; tw < (ow+1)/2; tw++ {
				for k := 0; k < p.K; k++ {
					var t [4]float64
					for i := 0; i < 2; i++ {
						for j := 0; j < 2; j++ {
							if 2*th+i < oh && 2*tw+j < ow {
								t[i*2+j] = dy[index4(n, k, 2*th+i, 2*tw+j, p.K, oh, ow)]
							}
						}
					}
					dm := WinogradOutputGrad(t, abs)
					for c := 0; c < p.C; c++ {
						v := WinogradInput(inputTile(p, x, n, c, 2*th-p.PadH, 2*tw-p.PadW), abs)
						for e := range dm {
							du[k*p.C+c][e] += dm[e] * v[e]
						}
					}
				}
			}
		}
	}
	dw := make([]float64, p.wLen())
	for i := range du {
		g := WinogradFilterGrad(du[i], abs)
		copy(dw[i*9:], g[:])
	}
	return dw, nil
}

// FlipTranspose returns the filter bank of the backward-data convolution: for w
// K x C x R x S, w'[c,k,r,s] = w[k,c,R-1-r,S-1-s] (C x K x R x S). The input
// gradient of a stride-1 convolution with padding P is the forward convolution
// of dy with w' and padding R-1-P.
func FlipTranspose(p Conv2DParams, w []float64) []float64 {
	out := make([]float64, len(w))
	for k := 0; k < p.K; k++ {
		for c := 0; c < p.C; c++ {
			for r := 0; r < p.R; r++ {
				for s := 0; s < p.S; s++ {
					out[index4(c, k, r, s, p.K, p.R, p.S)] = w[index4(k, c, p.R-1-r, p.S-1-s, p.C, p.R, p.S)]
				}
			}
		}
	}
	return out
}
