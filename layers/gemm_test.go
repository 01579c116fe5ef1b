package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// TestGEMM compares both GEMM variants with the float64 reference over random
// shapes (odd sizes included), every transpose combination, leading dimensions
// and offsets that do and do not allow vector reads, and every epilogue. K
// covers both texel builds (below and above gemmUnrollMinK) and, above it, the
// unrolled loop followed by single steps and a masked remainder (75 = 64+8+3);
// from gemmMFastMinK on, the row-tile-first grid over several row and column
// tiles (27x130x131). From gemmSharedMinM rows on, the texel variant runs
// gemm_texel_sh where the device shares A by subgroup shuffles (16, 17, 27, 33
// and 64 rows: one tile exactly, one row past it, partial tiles; K below and
// above gemmUnrollMinK; each also with A laid out for RGBA32F reads, transposed
// or not), which the test checks it built.
func TestGEMM(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(7, 8))
	body := func(t *testing.T, minM int) {
		cases := 0
		for _, sz := range [][3]int{{1, 1, 1}, {7, 5, 3}, {8, 64, 4}, {13, 70, 9}, {33, 65, 129}, {64, 10, 100}, {3, 130, 17}, {5, 17, 75}, {9, 12, 64}, {27, 130, 131}, {16, 32, 8}, {17, 37, 70}, {20, 36, 260}} {
			for ta := 0; ta < 2; ta++ {
				for tb := 0; tb < 2; tb++ {
					m, n, k := sz[0], sz[1], sz[2]
					if m < minM {
						continue
					}
					o := GEMMOptions{Alpha: []float32{1, 0.5}[rng.IntN(2)], Accumulate: rng.IntN(2) == 0, ReLU: rng.IntN(2) == 0}
					layouts := [][2]int{{[]int{0, 3, 4}[rng.IntN(3)], []int{0, 4, 5}[rng.IntN(3)]}}
					if m >= gemmSharedMinM { // also A's rows (or columns) aligned for RGBA32F reads
						lenA := k
						if ta == 1 {
							lenA = m
						}
						layouts = append(layouts, [2]int{(4 - lenA%4) % 4, 4})
					}
					// B's rows gemmAliasLD apart: the preloading build where it
					// unrolls K (gemm_texel_sh's also for B not transposed).
					if tb == 1 && k <= gemmAliasLD {
						layouts = append(layouts, [2]int{gemmAliasLD - k, 4})
					} else if tb == 0 && m >= gemmSharedMinM && k > 2*gemmUnrollMinK {
						layouts = append(layouts, [2]int{gemmAliasLD - n, 4})
					}
					for _, l := range layouts {
						pad, off := l[0], l[1]
						name := fmt.Sprintf("%dx%dx%d/ta%d/tb%d/pad%d/off%d", m, n, k, ta, tb, pad, off)
						checkGEMM(t, r, rng, name, m, n, k, ta == 1, tb == 1, pad, off, o, rng.IntN(3))
						cases++
					}
				}
			}
		}
		t.Logf("%d cases", cases)
		if r.Variant == GEMMTexel && r.sharesA && !r.built("gemm_texel_sh") {
			t.Errorf("the texel variant on a device with subgroup shuffles built no gemm_texel_sh kernel")
		}
	}
	variants(t, r, func(t *testing.T) { body(t, 0) })
	if r.sharesA { // gemm_texel where gemm_texel_sh would serve, as on devices without shuffles
		saved := r.Variant
		r.sharesA, r.Variant = false, GEMMTexel
		defer func() { r.sharesA, r.Variant = true, saved }()
		t.Run("texel-unshared", func(t *testing.T) { body(t, gemmSharedMinM) })
	}
}

func checkGEMM(t *testing.T, r *Runtime, rng *rand.Rand, name string, m, n, k int, ta, tb bool, pad, off int, o GEMMOptions, biasMode int) {
	t.Helper()
	// Operand storage: rows x cols with leading dimension cols+pad, after off elements.
	mk := func(rows, cols int) ([]float64, Mat, int) {
		ld := cols + pad
		size := off + rows*ld
		return randn(rng, size), Mat{Off: off, LD: ld}, size
	}
	ar, ac := m, k
	if ta {
		ar, ac = k, m
	}
	br, bc := k, n
	if tb {
		br, bc = n, k
	}
	av, am, as := mk(ar, ac)
	bv, bm, bs := mk(br, bc)
	cv, cm, cs := mk(m, n)
	am.Trans, bm.Trans = ta, tb
	am.T = tensorWith(t, r, "A", av, as)
	bm.T = tensorWith(t, r, "B", bv, bs)
	cm.T = tensorWith(t, r, "C", cv, cs)
	var biasV []float64
	if biasMode > 0 {
		o.BiasPerRow = biasMode == 1
		nb := n
		if o.BiasPerRow {
			nb = m
		}
		biasV = randn(rng, nb+2)
		o.Bias, o.BiasOff = tensorWith(t, r, "bias", biasV, nb+2), 2
	}
	run(t, r, func(s *vk.Stream) error { return r.GEMM(s, m, n, k, am, bm, cm, o) })
	got := download(t, cm.T)

	// Reference: gather the logical operands, multiply in float64.
	a, b := logical(av, off, am.LD, m, k, ta), logical(bv, off, bm.LD, k, n, tb)
	prod := make([]float64, m*n)
	must(t, ref.GEMM(false, false, m, n, k, 1, a, b, 0, prod))
	absA, absB := make([]float64, len(a)), make([]float64, len(b))
	for i := range a {
		absA[i] = math.Abs(a[i])
	}
	for i := range b {
		absB[i] = math.Abs(b[i])
	}
	absProd := make([]float64, m*n)
	must(t, ref.GEMM(false, false, m, n, k, 1, absA, absB, 0, absProd))
	alpha := float64(o.Alpha)
	if alpha == 0 {
		alpha = 1 // as GEMMOptions documents
	}
	want := append([]float64(nil), cv...) // untouched outside the m x n block
	bound := make([]float64, len(cv))
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			at := off + i*cm.LD + j
			v, mag := alpha*prod[i*n+j], alpha*absProd[i*n+j]
			if o.Accumulate {
				v += cv[at]
				mag += math.Abs(cv[at])
			}
			if o.Bias != nil {
				bi := j
				if o.BiasPerRow {
					bi = i
				}
				v += biasV[2+bi]
				mag += math.Abs(biasV[2+bi])
			}
			if o.ReLU {
				v = math.Max(v, 0)
			}
			want[at], bound[at] = v, dotBound(k, mag)
		}
	}
	compareBound(t, name, got, want, bound)
}

// TestGEMMSplitC binds C in row chunks, as for fc6's weight gradient, by lowering
// the storage limit so that small matrices need several chunks.
// TestGEMMSmallK covers gemm_smallk (texel variant, K <= gemmSmallKMax, B not
// transposed, B and C rows aligned to 4): the linear weight gradients' shape
// (A transposed) and the plain one, odd M, N not a multiple of 4 (the last vec4
// of a row partly kept), K from 1 to the limit, with alpha, accumulation, bias
// and ReLU.
func TestGEMMSmallK(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	variants(t, r, func(t *testing.T) {
		for _, sz := range [][3]int{{7, 22, 1}, {13, 22, 4}, {3, 70, 7}, {9, 34, gemmSmallKMax}} {
			for _, ta := range []bool{false, true} {
				for _, off := range []int{0, 4} {
					m, n, k := sz[0], sz[1], sz[2]
					o := GEMMOptions{Alpha: []float32{1, 0.5}[rng.IntN(2)], Accumulate: rng.IntN(2) == 0, ReLU: rng.IntN(2) == 0}
					pad := 4 - n%4 // B's and C's rows (n + pad long) start aligned
					name := fmt.Sprintf("%dx%dx%d/ta=%v/off%d", m, n, k, ta, off)
					checkGEMM(t, r, rng, name, m, n, k, ta, false, pad, off, o, rng.IntN(3))
				}
			}
		}
	})
}

func TestGEMMSplitC(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(9, 10))
	defer func(l int64) { r.storageLimit = l }(r.storageLimit)
	r.storageLimit = 600 // bytes: a few rows of C per chunk
	variants(t, r, func(t *testing.T) {
		for _, sz := range [][3]int{{37, 21, 5}, {16, 40, 8}} {
			for _, ta := range []bool{false, true} {
				name := fmt.Sprintf("%dx%dx%d/ta=%v", sz[0], sz[1], sz[2], ta)
				checkGEMM(t, r, rng, name, sz[0], sz[1], sz[2], ta, false, 1, 3, GEMMOptions{Accumulate: true}, 1)
			}
		}
	})
}

func TestGEMMErrors(t *testing.T) {
	r := openRuntime(t)
	x := zeros(t, r, "x", 12)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	for _, c := range []struct {
		m, n, k int
		a, b, c Mat
	}{
		{4, 4, 4, Mat{T: x, LD: 4}, Mat{T: x, LD: 4}, Mat{T: x, LD: 4}},              // A does not fit
		{2, 2, 2, Mat{T: x, LD: 1}, Mat{T: x, LD: 2}, Mat{T: x, LD: 2}},              // ld < cols
		{2, 2, 2, Mat{T: x, LD: 2}, Mat{T: x, LD: 2}, Mat{T: x, LD: 2, Trans: true}}, // C transposed
		{0, 2, 2, Mat{T: x, LD: 2}, Mat{T: x, LD: 2}, Mat{T: x, LD: 2}},
	} {
		if err := r.GEMM(s, c.m, c.n, c.k, c.a, c.b, c.c, GEMMOptions{}); err == nil {
			t.Errorf("gemm %dx%dx%d %+v %+v %+v accepted", c.m, c.n, c.k, c.a, c.b, c.c)
		}
	}
}

// TestGEMMBatched records batches of products in one dispatch (gl_WorkGroupID.z)
// with strides that do and do not keep vector alignment, both variants, every
// transpose, and compares each product with the float64 reference; the elements
// between the products' C blocks must stay as they were.
func TestGEMMBatched(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	variants(t, r, func(t *testing.T) {
		for _, c := range []struct{ m, n, k, batch, pad int }{{5, 9, 7, 3, 0}, {16, 12, 75, 16, 3}, {1, 1, 1, 2, 1}, {8, 64, 20, 4, 4}, {17, 70, 130, 3, 1}} {
			for tr := 0; tr < 4; tr++ {
				ta, tb := tr&1 == 1, tr&2 == 2
				ar, ac, br, bc := c.m, c.k, c.k, c.n
				if ta {
					ar, ac = ac, ar
				}
				if tb {
					br, bc = bc, br
				}
				// Product z's operands start z strides in; a stride of rows*ld + pad.
				strideA, strideB, strideC := ar*ac+c.pad, br*bc+c.pad, c.m*c.n+c.pad
				av := randn(rng, c.batch*strideA)
				bv := randn(rng, c.batch*strideB)
				cv := randn(rng, c.batch*strideC)
				am := Mat{T: tensorWith(t, r, "A", av, len(av)), LD: ac, Trans: ta}
				bm := Mat{T: tensorWith(t, r, "B", bv, len(bv)), LD: bc, Trans: tb}
				cm := Mat{T: tensorWith(t, r, "C", cv, len(cv)), LD: c.n}
				o := GEMMOptions{Batch: c.batch, StrideA: strideA, StrideB: strideB, StrideC: strideC}
				run(t, r, func(s *vk.Stream) error { return r.GEMM(s, c.m, c.n, c.k, am, bm, cm, o) })
				got := download(t, cm.T)
				want := append([]float64(nil), cv...)
				bound := make([]float64, len(cv))
				for z := 0; z < c.batch; z++ {
					a, b := logical(av, z*strideA, ac, c.m, c.k, ta), logical(bv, z*strideB, bc, c.k, c.n, tb)
					prod, mag := make([]float64, c.m*c.n), make([]float64, c.m*c.n)
					must(t, ref.GEMM(false, false, c.m, c.n, c.k, 1, a, b, 0, prod))
					for i := range a {
						a[i] = math.Abs(a[i])
					}
					for i := range b {
						b[i] = math.Abs(b[i])
					}
					must(t, ref.GEMM(false, false, c.m, c.n, c.k, 1, a, b, 0, mag))
					for i := range prod {
						want[z*strideC+i], bound[z*strideC+i] = prod[i], dotBound(c.k, mag[i])
					}
				}
				compareBound(t, fmt.Sprintf("%dx%dx%d batch %d pad %d ta %v tb %v", c.m, c.n, c.k, c.batch, c.pad, ta, tb), got, want, bound)
			}
		}
	})
}

// logical gathers the rows x cols operand stored from off with leading
// dimension ld (transposed: stored cols x rows) into a row-major slice.
func logical(v []float64, off, ld, rows, cols int, trans bool) []float64 {
	out := make([]float64, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if trans {
				out[i*cols+j] = v[off+j*ld+i]
			} else {
				out[i*cols+j] = v[off+i*ld+j]
			}
		}
	}
	return out
}

// TestGEMMVariantOption: a product's own choice of kernel (GEMMOptions.Variant)
// overrides the runtime's, and the choices of a convolution's and a linear
// layer's passes (Conv2D.GEMM, Linear.GEMM) reach their GEMMs: each runs, on a
// fresh runtime of the other default, the kernel it names and no other, with
// the reference's result.
func TestGEMMVariantOption(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	compiled := func(r *Runtime) (texel, tiled int) {
		for key := range r.kernels {
			switch {
			case strings.HasPrefix(key, "gemm_tiled"):
				tiled++
			case strings.HasPrefix(key, "gemm_texel") || strings.HasPrefix(key, "gemm_smallk"):
				texel++
			}
		}
		return texel, tiled
	}
	for _, c := range []struct{ runtime, chosen GEMMVariant }{{GEMMTexel, GEMMTiled}, {GEMMTiled, GEMMTexel}} {
		t.Run("runtime "+c.runtime.String()+", chosen "+c.chosen.String(), func(t *testing.T) {
			want := func(r *Runtime, what string) {
				t.Helper()
				texel, tiled := compiled(r)
				if (c.chosen == GEMMTiled) != (tiled > 0 && texel == 0) || (c.chosen == GEMMTexel) != (texel > 0 && tiled == 0) {
					t.Errorf("%s choosing %s compiled %d texel and %d tiled GEMM kernels", what, c.chosen, texel, tiled)
				}
			}
			r := openRuntime(t)
			r.Variant = c.runtime
			checkGEMM(t, r, rng, "13x70x9", 13, 70, 9, false, true, 3, 5, GEMMOptions{Variant: c.chosen}, 1)
			checkGEMM(t, r, rng, "9x12x64", 9, 12, 64, true, false, 0, 0, GEMMOptions{Variant: c.chosen, ReLU: true}, 0)
			want(r, "GEMM")

			r = openRuntime(t)
			r.Variant = c.runtime
			cv, err := r.NewConv2D("conv", 3, 5, 3, 3, 1, 1, false)
			must(t, err)
			defer cv.Free()
			cv.GEMM = [3]GEMMVariant{c.chosen, c.chosen, c.chosen}
			x := tensorWith(t, r, "x", randn(rng, 3*2*6*6), 3, 2, 6, 6)
			y := tensorWith(t, r, "y", make([]float64, 5*2*6*6), 5*2*6*6)
			scratch := tensorWith(t, r, "scratch", make([]float64, cv.ScratchLen(2, 6, 6)), cv.ScratchLen(2, 6, 6))
			run(t, r, func(s *vk.Stream) error { return r.Conv2DForward(s, cv, x, y, scratch) })
			cv.SetAlgo(ConvWinograd)
			wscratch := tensorWith(t, r, "scratch", make([]float64, cv.ScratchLen(2, 6, 6)), cv.ScratchLen(2, 6, 6))
			run(t, r, func(s *vk.Stream) error { return r.Conv2DBackwardData(s, cv, y, x, wscratch) })
			want(r, "Conv2D by im2col and Winograd")

			r = openRuntime(t)
			r.Variant = c.runtime
			l, err := r.NewLinear("fc", 8, 6, true, false)
			must(t, err)
			defer l.Free()
			l.GEMM = [3]GEMMVariant{c.chosen, c.chosen, c.chosen}
			lx := tensorWith(t, r, "x", randn(rng, 4*8), 4*8)
			ly := tensorWith(t, r, "y", make([]float64, 4*6), 4*6)
			run(t, r, func(s *vk.Stream) error {
				if err := r.LinearForward(s, l, 4, lx, ly); err != nil {
					return err
				}
				return r.LinearBackwardWeights(s, l, 4, lx, ly, false)
			})
			want(r, "Linear")
			if fuses := r.LinearFusesUpdate(l, 4); fuses != (c.runtime == GEMMTexel && c.chosen == GEMMTexel) {
				t.Errorf("LinearFusesUpdate %v with the runtime's %s and the weight gradient's %s", fuses, c.runtime, c.chosen)
			}
		})
	}
}
