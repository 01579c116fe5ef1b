package ref

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Winograd's minimal filtering F(m x m, r x r) (Lavin and Gray, "Fast Algorithms
// for Convolutional Neural Networks", 2015): an m x m output tile of an r x r
// convolution is Y = A^T [(G g G^T) ⊙ (B^T d B)] A for the a x a input tile d
// that covers it (a = m + r - 1), a² multiplications instead of m²r². Over the
// channels the element-wise products become a² independent matrix products,
// which is how layers runs it. The transforms here are written out in float64
// so that the GPU kernels (shaders/winograd.comp, whose constants
// WinogradMatricesGLSL writes) have a reference to meet, and so that the
// gradients' transposed transforms can be checked against the direct
// convolution's passes.

// WinogradVariant is F(M x M, R x R): M x M output tiles of an R x R filter.
type WinogradVariant struct{ M, R int }

// The variants vktrain runs.
var (
	WinogradF2x3 = WinogradVariant{M: 2, R: 3} // 16 products per 4 outputs: 2.25x fewer multiplications
	WinogradF4x3 = WinogradVariant{M: 4, R: 3} // 36 per 16: 4x fewer
	WinogradF2x5 = WinogradVariant{M: 2, R: 5} // 36 per 4: 2.78x fewer
)

// WinogradVariants lists them.
var WinogradVariants = []WinogradVariant{WinogradF2x3, WinogradF4x3, WinogradF2x5}

// Alpha is the input tile's side, M + R - 1.
func (v WinogradVariant) Alpha() int { return v.M + v.R - 1 }

func (v WinogradVariant) String() string { return fmt.Sprintf("F(%dx%d,%dx%d)", v.M, v.M, v.R, v.R) }

// Points are the finite interpolation points of the variant's Toom-Cook
// construction (infinity is the last): 0, 1, -1 for a 4x4 tile; for 6x6,
// 0, ±1, 2, -1/2 rather than Lavin and Gray's 0, ±1, ±2: mixing a point with
// its reciprocal keeps the transforms' entries balanced, and in float32 it
// measured 1.6x lower rms and 2.5x lower worst error on random tiles of 64
// channels, for F(4x4,3x3) and F(2x2,5x5) alike (Barabasz et al., "Error
// Analysis and Improving the Accuracy of Winograd Convolution for Deep
// Neural Networks", 2020, make the same observation).
func (v WinogradVariant) Points() []float64 {
	if v.Alpha() == 4 {
		return []float64{0, 1, -1}
	}
	return []float64{0, 1, -1, 2, -0.5}
}

// Matrices returns the variant's input, filter and output transforms B^T
// (a x a), G (a x R) and A^T (M x a), by Toom-Cook: the linear convolution of
// polynomials of degrees R-1 and M-1 is evaluated at the points and at
// infinity, multiplied and interpolated, and correlation is its transpose. G
// carries the Lagrange denominators (by magnitude; their signs go to B^T).
func (v WinogradVariant) Matrices() (bt, g, at [][]float64) {
	return v.matricesAt(v.Points())
}

// matricesAt is Matrices for the finite points pts (Alpha()-1 of them).
func (v WinogradVariant) matricesAt(pts []float64) (bt, g, at [][]float64) {
	a := v.Alpha()
	bt, g, at = grid(a, a), grid(a, v.R), grid(v.M, a)
	for j, pj := range pts {
		f := 1.0 // prod over l != j of (pj - pl)
		poly := []float64{1}
		for l, pl := range pts {
			if l != j {
				f *= pj - pl
				poly = polyMulLinear(poly, pl)
			}
		}
		sign := 1.0
		if f < 0 {
			sign = -1
		}
		for k := 0; k < v.R; k++ {
			g[j][k] = math.Pow(pj, float64(k)) / math.Abs(f)
		}
		for n, c := range poly {
			bt[j][n] = sign*c + 0 // + 0: no negative zeros
		}
		for i := 0; i < v.M; i++ {
			at[i][j] = math.Pow(pj, float64(i))
		}
	}
	// Infinity: the product of the leading coefficients, interpolated by the
	// polynomial that vanishes at every finite point.
	poly := []float64{1}
	for _, pl := range pts {
		poly = polyMulLinear(poly, pl)
	}
	copy(bt[a-1], poly)
	g[a-1][v.R-1] = 1
	at[v.M-1][a-1] = 1
	return bt, g, at
}

// polyMulLinear returns the coefficients (ascending) of p(x) (x - root).
func polyMulLinear(p []float64, root float64) []float64 {
	out := make([]float64, len(p)+1)
	for i, c := range p {
		out[i+1] += c
		out[i] -= root * c
	}
	return out
}

func grid(rows, cols int) [][]float64 {
	out := make([][]float64, rows)
	for i := range out {
		out[i] = make([]float64, cols)
	}
	return out
}

// WinogradMatricesGLSL is shaders/winograd_matrices.glsl: the matrices of every
// variant as float32 constants, selected by WINO_M and WINO_R, row-major.
func WinogradMatricesGLSL() string {
	var b strings.Builder
	b.WriteString("// Winograd transform matrices, row-major, for shaders/winograd.comp. Generated from\n")
	b.WriteString("// layers/ref (WinogradVariant.Matrices, by Toom-Cook); do not edit: run\n")
	b.WriteString("// go test ./layers/ref -run TestWinogradMatricesFile -update\n")
	for i, v := range WinogradVariants {
		kw := "#elif"
		if i == 0 {
			kw = "#if"
		}
		fmt.Fprintf(&b, "%s WINO_M == %d && WINO_R == %d // %s, points %v and infinity\n", kw, v.M, v.R, v, v.Points())
		bt, g, at := v.Matrices()
		glslMatrix(&b, "BT", bt)
		glslMatrix(&b, "G", g)
		glslMatrix(&b, "AT", at)
	}
	b.WriteString("#else\n#error \"no Winograd matrices for this WINO_M and WINO_R\"\n#endif\n")
	return b.String()
}

func glslMatrix(b *strings.Builder, name string, m [][]float64) {
	rows := make([]string, len(m))
	for i, row := range m {
		vals := make([]string, len(row))
		for j, x := range row {
			s := strconv.FormatFloat(float64(float32(x)), 'g', -1, 32)
			if !strings.ContainsAny(s, ".e") {
				s += ".0"
			}
			vals[j] = s
		}
		rows[i] = strings.Join(vals, ", ")
	}
	n := len(m) * len(m[0])
	fmt.Fprintf(b, "const float %s[%d] = float[%d](\n    %s);\n", name, n, n, strings.Join(rows, ",\n    "))
}

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

// winogradTransforms are a variant's five transforms on row-major tiles. With
// abs, every matrix entry and input is taken by its absolute value (the error
// bound's magnitude term).
type winogradTransforms struct {
	v          WinogradVariant
	bt, g, at  [][]float64
	btT, gT, a [][]float64
}

func newWinogradTransforms(v WinogradVariant) winogradTransforms {
	bt, g, at := v.Matrices()
	return winogradTransforms{v: v, bt: bt, g: g, at: at, btT: transposed(bt), gT: transposed(g), a: transposed(at)}
}

// filter is U = G g G^T (a x a) for an R x R filter g.
func (w winogradTransforms) filter(g []float64, abs bool) []float64 { return sandwich(w.g, g, abs) }

// input is V = B^T d B (a x a) for an a x a input tile d.
func (w winogradTransforms) input(d []float64, abs bool) []float64 { return sandwich(w.bt, d, abs) }

// output is Y = A^T m A (M x M) for an a x a tile m.
func (w winogradTransforms) output(m []float64, abs bool) []float64 { return sandwich(w.at, m, abs) }

// outputGrad is A dy A^T (a x a), the transposed output transform: the gradient
// of the a² products from an M x M output-gradient tile dy.
func (w winogradTransforms) outputGrad(dy []float64, abs bool) []float64 {
	return sandwich(w.a, dy, abs)
}

// filterGrad is G^T du G (R x R), the transposed filter transform: the filter
// gradient from the gradient du of U.
func (w winogradTransforms) filterGrad(du []float64, abs bool) []float64 {
	return sandwich(w.gT, du, abs)
}

// WinogradFilter returns U = G g G^T (a x a, row-major) for an R x R filter g.
func WinogradFilter(v WinogradVariant, g []float64, abs bool) []float64 {
	return newWinogradTransforms(v).filter(g, abs)
}

// WinogradInput returns V = B^T d B (a x a, row-major) for an a x a input tile d.
func WinogradInput(v WinogradVariant, d []float64, abs bool) []float64 {
	return newWinogradTransforms(v).input(d, abs)
}

// WinogradOutput returns Y = A^T m A (M x M, row-major) for an a x a tile m.
func WinogradOutput(v WinogradVariant, m []float64, abs bool) []float64 {
	return newWinogradTransforms(v).output(m, abs)
}

func mag(v float64, abs bool) float64 {
	if abs && v < 0 {
		return -v
	}
	return v
}

// winogradCheck accepts the convolutions v computes: R x R filters at stride 1.
func winogradCheck(p Conv2DParams, v WinogradVariant) error {
	if err := p.Validate(); err != nil {
		return err
	}
	known := false
	for _, k := range WinogradVariants {
		known = known || k == v
	}
	if !known {
		return fmt.Errorf("ref: winograd %v is not one of %v", v, WinogradVariants)
	}
	if p.R != v.R || p.S != v.R || p.StrideH != 1 || p.StrideW != 1 {
		return fmt.Errorf("ref: winograd %v needs a %dx%d filter at stride 1, not %dx%d at %d,%d", v, v.R, v.R, p.R, p.S, p.StrideH, p.StrideW)
	}
	return nil
}

// inputTile is the a x a tile of image n, channel c of x (N x C x H x W) whose
// top-left corner is (y0, x0), zero outside the image.
func inputTile(p Conv2DParams, a int, x []float64, n, c, y0, x0 int) []float64 {
	d := make([]float64, a*a)
	for i := 0; i < a; i++ {
		for j := 0; j < a; j++ {
			ih, iw := y0+i, x0+j
			if ih >= 0 && ih < p.H && iw >= 0 && iw < p.W {
				d[i*a+j] = x[index4(n, c, ih, iw, p.C, p.H, p.W)]
			}
		}
	}
	return d
}

// Conv2DWinograd computes Conv2DForward by the variant v for an R x R filter at
// stride 1 (any padding): output tile (th, tw) of image n covers rows
// M th .. M th + M-1 and the same columns, and reads the input tile at
// (M th - PadH, M tw - PadW). With abs it returns instead the bound's magnitude
// term: the same algorithm on the absolute values of every input, filter and
// transform entry.
func Conv2DWinograd(p Conv2DParams, v WinogradVariant, x, w, b []float64, abs bool) ([]float64, error) {
	if err := winogradCheck(p, v); err != nil {
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
	tr, a, m, rr := newWinogradTransforms(v), v.Alpha(), v.M, v.R*v.R
	oh, ow := p.OutH(), p.OutW()
	u := make([][]float64, p.K*p.C)
	for i := range u {
		u[i] = tr.filter(w[i*rr:(i+1)*rr], abs)
	}
	y := make([]float64, p.yLen())
	vt := make([][]float64, p.C)
	for n := 0; n < p.N; n++ {
		for th := 0; th < (oh+m-1)/m; th++ {
			for tw := 0; tw < (ow+m-1)/m; tw++ {
				for c := 0; c < p.C; c++ {
					vt[c] = tr.input(inputTile(p, a, x, n, c, m*th-p.PadH, m*tw-p.PadW), abs)
				}
				for k := 0; k < p.K; k++ {
					prod := make([]float64, a*a)
					for c := 0; c < p.C; c++ {
						for e := range prod {
							prod[e] += u[k*p.C+c][e] * vt[c][e]
						}
					}
					out := tr.output(prod, abs)
					for i := 0; i < m; i++ {
						for j := 0; j < m; j++ {
							if m*th+i < oh && m*tw+j < ow {
								bias := 0.0
								if b != nil {
									bias = mag(b[k], abs)
								}
								y[index4(n, k, m*th+i, m*tw+j, p.K, oh, ow)] = out[i*m+j] + bias
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
// dy_t being the M x M output-gradient tile (zero past the output's edge). With
// abs, the bound's magnitude term, as for Conv2DWinograd.
func Conv2DWinogradBackwardFilter(p Conv2DParams, v WinogradVariant, x, dy []float64, abs bool) ([]float64, error) {
	if err := winogradCheck(p, v); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d winograd backward filter x", len(x), p.xLen()); err != nil {
		return nil, err
	}
	if err := checkLen("conv2d winograd backward filter dy", len(dy), p.yLen()); err != nil {
		return nil, err
	}
	tr, a, m, rr := newWinogradTransforms(v), v.Alpha(), v.M, v.R*v.R
	oh, ow := p.OutH(), p.OutW()
	du := make([][]float64, p.K*p.C)
	for i := range du {
		du[i] = make([]float64, a*a)
	}
	for n := 0; n < p.N; n++ {
		for th := 0; th < (oh+m-1)/m; th++ {
			for tw := 0; tw < (ow+m-1)/m; tw++ {
				for k := 0; k < p.K; k++ {
					t := make([]float64, m*m)
					for i := 0; i < m; i++ {
						for j := 0; j < m; j++ {
							if m*th+i < oh && m*tw+j < ow {
								t[i*m+j] = dy[index4(n, k, m*th+i, m*tw+j, p.K, oh, ow)]
							}
						}
					}
					dm := tr.outputGrad(t, abs)
					for c := 0; c < p.C; c++ {
						vt := tr.input(inputTile(p, a, x, n, c, m*th-p.PadH, m*tw-p.PadW), abs)
						for e := range dm {
							du[k*p.C+c][e] += dm[e] * vt[e]
						}
					}
				}
			}
		}
	}
	dw := make([]float64, p.wLen())
	for i := range du {
		copy(dw[i*rr:], tr.filterGrad(du[i], abs))
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
