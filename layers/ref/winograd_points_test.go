package ref

import (
	"math"
	"testing"
)

// sand32 is sandwich in float32: L X L^T with every sum rounded as the shaders round it.
func sand32(l [][]float64, x []float32) []float32 {
	m, n := len(l), len(l[0])
	t := make([]float32, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float32
			for k := 0; k < n; k++ {
				s += float32(l[i][k]) * x[k*n+j]
			}
			t[i*n+j] = s
		}
	}
	out := make([]float32, m*m)
	for i := 0; i < m; i++ {
		for j := 0; j < m; j++ {
			var s float32
			for k := 0; k < n; k++ {
				s += t[i*n+k] * float32(l[j][k])
			}
			out[i*m+j] = s
		}
	}
	return out
}

// winogradError32 is the rms and worst error, in units of the output's
// standard deviation, of v computed in float32 at the points pts, over random
// single-tile convolutions of c channels (the direct float64 convolution as
// truth).
func winogradError32(v WinogradVariant, pts []float64, c, trials int) (rms, worst float64) {
	bt, g, at := v.matricesAt(pts)
	a := v.Alpha()
	r := newRand(7)
	n := 0
	for tr := 0; tr < trials; tr++ {
		acc := make([]float32, a*a)
		d64, g64 := make([][]float64, c), make([][]float64, c)
		for ch := 0; ch < c; ch++ {
			d64[ch], g64[ch] = randSlice(r, a*a), randSlice(r, v.R*v.R)
			d32, g32 := make([]float32, a*a), make([]float32, v.R*v.R)
			for i := range d32 {
				d32[i] = float32(d64[ch][i])
			}
			for i := range g32 {
				g32[i] = float32(g64[ch][i])
			}
			u, vv := sand32(g, g32), sand32(bt, d32)
			for e := range acc {
				acc[e] += u[e] * vv[e]
			}
		}
		y := sand32(at, acc)
		for i := 0; i < v.M; i++ {
			for j := 0; j < v.M; j++ {
				s := 0.0
				for ch := 0; ch < c; ch++ {
					for p := 0; p < v.R; p++ {
						for q := 0; q < v.R; q++ {
							s += d64[ch][(i+p)*a+j+q] * g64[ch][p*v.R+q]
						}
					}
				}
				e := math.Abs(float64(y[i*v.M+j])-s) / math.Sqrt(float64(c*v.R*v.R))
				worst = math.Max(worst, e)
				rms += e * e
				n++
			}
		}
	}
	return math.Sqrt(rms / float64(n)), worst
}

// TestWinogradPointsAccuracy: the 6x6-tile variants' points (Points) are more
// accurate in float32 than Lavin and Gray's 0, ±1, ±2 (measured 1.6x in rms,
// 2.5x in the worst case; required: 1.3x in rms).
func TestWinogradPointsAccuracy(t *testing.T) {
	for _, v := range []WinogradVariant{WinogradF4x3, WinogradF2x5} {
		rms, worst := winogradError32(v, v.Points(), 64, 200)
		rmsL, worstL := winogradError32(v, []float64{0, 1, -1, 2, -2}, 64, 200)
		t.Logf("%v: points %v rms %.2e worst %.2e; 0,±1,±2 rms %.2e worst %.2e", v, v.Points(), rms, worst, rmsL, worstL)
		if rms*1.3 > rmsL {
			t.Errorf("%v: points %v (rms error %.2e) not 1.3x more accurate than 0,±1,±2 (%.2e)", v, v.Points(), rms, rmsL)
		}
	}
}
