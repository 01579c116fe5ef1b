package ref

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite shaders/winograd_matrices.glsl from the generated matrices")

// winogradShapes are, for a filter of side r: stride 1, every padding 0..r-1,
// odd and even outputs (a last tile partly outside the output), 1 and 13
// channels, batch 1 and 3.
func winogradShapes(r int) []Conv2DParams {
	P := func(n, c, h, w, k, ph, pw int) Conv2DParams {
		return Conv2DParams{N: n, C: c, H: h, W: w, K: k, R: r, S: r, StrideH: 1, StrideW: 1, PadH: ph, PadW: pw}
	}
	shapes := []Conv2DParams{
		P(1, 3, r+4, r+2, 2, 1, 1),
		P(3, 13, r+3, r+3, 5, 0, 0),
		P(2, 1, r+1, r+6, 3, r-1, 1),
		P(1, 4, r, r, 1, 1, 0),
	}
	if r > 3 {
		shapes = append(shapes, P(1, 2, 9, 11, 3, r/2, r-2)) // AlexNet's 5x5 pads 2
	}
	return shapes
}

// TestWinogradMatchesDirect: every variant's forward, its transposed
// filter-gradient form, and backward data as a forward convolution with the
// flipped, transposed filters and padding R-1-P all equal the direct
// convolution's passes to float64 rounding.
func TestWinogradMatchesDirect(t *testing.T) {
	for _, v := range WinogradVariants {
		for i, p := range winogradShapes(v.R) {
			t.Run(v.String()+"/"+convName(p), func(t *testing.T) {
				r := newRand(uint64(100 + i))
				x := randSlice(r, p.xLen())
				w := randSlice(r, p.wLen())
				b := randSlice(r, p.K)
				dy := randSlice(r, p.yLen())
				compare(t, "forward", must(t)(Conv2DWinograd(p, v, x, w, b, false)), must(t)(Conv2DForward(p, x, w, b)), 1e-12)
				compare(t, "backward filter", must(t)(Conv2DWinogradBackwardFilter(p, v, x, dy, false)), must(t)(Conv2DBackwardFilter(p, x, dy)), 1e-12)
				// dx = conv(dy, w') with K input channels, C outputs, padding R-1-P.
				q := Conv2DParams{N: p.N, C: p.K, H: p.OutH(), W: p.OutW(), K: p.C, R: p.R, S: p.S, StrideH: 1, StrideW: 1,
					PadH: p.R - 1 - p.PadH, PadW: p.S - 1 - p.PadW}
				if q.OutH() != p.H || q.OutW() != p.W {
					t.Fatalf("backward-data geometry %dx%d, want %dx%d", q.OutH(), q.OutW(), p.H, p.W)
				}
				compare(t, "backward data", must(t)(Conv2DWinograd(q, v, dy, FlipTranspose(p, w), nil, false)), must(t)(Conv2DBackwardData(p, dy, w)), 1e-12)
			})
		}
	}
}

// TestWinogradMatricesPublished compares the construction with the matrices
// Lavin and Gray print for F(2x2,3x3) and F(4x4,3x3) (at their points 0, ±1,
// ±2; vktrain's own 6x6 points differ, see Points). A Toom-Cook
// construction is unique up to one sign per interpolation point (row j of B^T
// and G, column j of A^T: their product must be +1).
func TestWinogradMatricesPublished(t *testing.T) {
	cases := []struct {
		v         WinogradVariant
		points    []float64
		bt, g, at [][]float64
	}{
		{WinogradF2x3, []float64{0, 1, -1},
			[][]float64{{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}},
			[][]float64{{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}},
			[][]float64{{1, 1, 1, 0}, {0, 1, -1, -1}}},
		{WinogradF4x3, []float64{0, 1, -1, 2, -2},
			[][]float64{{4, 0, -5, 0, 1, 0}, {0, -4, -4, 1, 1, 0}, {0, 4, -4, -1, 1, 0},
				{0, -2, -1, 2, 1, 0}, {0, 2, -1, -2, 1, 0}, {0, 4, 0, -5, 0, 1}},
			[][]float64{{1.0 / 4, 0, 0}, {-1.0 / 6, -1.0 / 6, -1.0 / 6}, {-1.0 / 6, 1.0 / 6, -1.0 / 6},
				{1.0 / 24, 1.0 / 12, 1.0 / 6}, {1.0 / 24, -1.0 / 12, 1.0 / 6}, {0, 0, 1}},
			[][]float64{{1, 1, 1, 1, 1, 0}, {0, 1, -1, 2, -2, 0}, {0, 1, 1, 4, 4, 0}, {0, 1, -1, 8, -8, 1}}},
	}
	const tol = 1e-15
	near := func(a, b float64) bool { return a-b < tol && b-a < tol }
	for _, c := range cases {
		bt, g, at := c.v.matricesAt(c.points)
		for j := range bt {
			var sb, sg, sa float64 = 1, 1, 1
			if !near(bt[j][firstNonzero(c.bt[j])], c.bt[j][firstNonzero(c.bt[j])]) {
				sb = -1
			}
			if !near(g[j][firstNonzero(c.g[j])], c.g[j][firstNonzero(c.g[j])]) {
				sg = -1
			}
			col := make([]float64, len(at))
			for i := range at {
				col[i] = c.at[i][j]
			}
			if k := firstNonzero(col); !near(at[k][j], c.at[k][j]) {
				sa = -1
			}
			if sb*sg*sa != 1 {
				t.Errorf("%v point %d: signs of B^T, G, A^T %v %v %v multiply to -1", c.v, j, sb, sg, sa)
			}
			for n := range bt[j] {
				if !near(bt[j][n], sb*c.bt[j][n]) {
					t.Errorf("%v: B^T[%d][%d] = %v, want %v", c.v, j, n, bt[j][n], sb*c.bt[j][n])
				}
			}
			for k := range g[j] {
				if !near(g[j][k], sg*c.g[j][k]) {
					t.Errorf("%v: G[%d][%d] = %v, want %v", c.v, j, k, g[j][k], sg*c.g[j][k])
				}
			}
			for i := range at {
				if !near(at[i][j], sa*c.at[i][j]) {
					t.Errorf("%v: A^T[%d][%d] = %v, want %v", c.v, i, j, at[i][j], sa*c.at[i][j])
				}
			}
		}
	}
}

func firstNonzero(v []float64) int {
	for i, x := range v {
		if x != 0 {
			return i
		}
	}
	return 0
}

// TestWinogradMatricesFile: the shaders' constants are the generated matrices
// (go test ./layers/ref -run TestWinogradMatricesFile -update rewrites them).
func TestWinogradMatricesFile(t *testing.T) {
	const path = "../../shaders/winograd_matrices.glsl"
	want := WinogradMatricesGLSL()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from WinogradMatricesGLSL(): rerun with -update, then make shaders", path)
	}
}

// TestWinogradTransformsHand checks F(2x2,3x3)'s transforms on tiles worked by hand.
func TestWinogradTransformsHand(t *testing.T) {
	// A filter of ones: U = G 1 G^T has rows (1, 1.5, .5, 1) scaled by the same.
	u := WinogradFilter(WinogradF2x3, []float64{1, 1, 1, 1, 1, 1, 1, 1, 1}, false)
	col := []float64{1, 1.5, 0.5, 1}
	for i := 0; i < 4; i++ {
		for j := 0; j < 4; j++ {
			if u[i*4+j] != col[i]*col[j] {
				t.Errorf("U[%d][%d] = %v, want %v", i, j, u[i*4+j], col[i]*col[j])
			}
		}
	}
	// A tile whose only 1 is at (1,1): B^T picks column 1 of rows 1-3, signed.
	d := make([]float64, 16)
	d[5] = 1
	v := WinogradInput(WinogradF2x3, d, false)
	want := []float64{0, 0, 0, 0, 0, 1, -1, -1, 0, -1, 1, 1, 0, -1, 1, 1}
	for i := range want {
		if v[i] != want[i] {
			t.Fatalf("B^T d B = %v, want %v", v, want)
		}
	}
	y := WinogradOutput(WinogradF2x3, []float64{1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 0, 0}, false)
	if y[0] != 9 || y[1] != 0 || y[2] != 0 || y[3] != 0 {
		t.Errorf("A^T m A = %v, want [9 0 0 0]", y)
	}
	if _, err := Conv2DWinograd(Conv2DParams{N: 1, C: 1, H: 5, W: 5, K: 1, R: 3, S: 3, StrideH: 2, StrideW: 2}, WinogradF2x3, make([]float64, 25), make([]float64, 9), nil, false); err == nil {
		t.Error("stride 2 accepted")
	}
	if _, err := Conv2DWinograd(Conv2DParams{N: 1, C: 1, H: 5, W: 5, K: 1, R: 5, S: 5, StrideH: 1, StrideW: 1}, WinogradF2x3, make([]float64, 25), make([]float64, 25), nil, false); err == nil {
		t.Error("a 5x5 filter accepted by F(2x2,3x3)")
	}
}
