package ref

import (
	"fmt"
	"testing"
)

// TestBatchNormFixtures checks the reference against torch.nn.BatchNorm2d
// (testdata/batchnorm2d.json): output, running statistics after the step,
// and the gradients of x, gamma and beta, in training and eval mode.
func TestBatchNormFixtures(t *testing.T) {
	for _, c := range loadFixture(t, "batchnorm2d.json") {
		t.Run(c.Name, func(t *testing.T) {
			p := BatchNormParams{N: c.int(t, "n"), C: c.int(t, "c"), H: c.int(t, "h"), W: c.int(t, "w"),
				Eps: c.float(t, "eps"), Momentum: c.float(t, "momentum")}
			train := c.int(t, "train") == 1
			x, gamma, beta := c.data(t, "x"), c.data(t, "gamma"), c.data(t, "beta")
			runMean, runVar := c.data(t, "running_mean"), c.data(t, "running_var")
			var st BatchNormStats
			var err error
			if train {
				var variance []float64
				st, variance, err = BatchNormBatchStats(p, x)
				if err != nil {
					t.Fatal(err)
				}
				BatchNormUpdateRunning(p, runMean, runVar, st.Mean, variance)
			} else if st, err = BatchNormRunningStats(p, runMean, runVar); err != nil {
				t.Fatal(err)
			}
			compare(t, "running_mean", runMean, c.data(t, "running_mean_after"), 1e-12)
			compare(t, "running_var", runVar, c.data(t, "running_var_after"), 1e-12)
			y := must(t)(BatchNormForward(p, x, gamma, beta, st))
			compare(t, "y", y, c.data(t, "y"), 1e-10)
			dx, dgamma, dbeta, err := BatchNormBackward(p, train, x, c.data(t, "dy"), gamma, st)
			if err != nil {
				t.Fatal(err)
			}
			compare(t, "dx", dx, c.data(t, "dx"), 1e-10)
			compare(t, "dgamma", dgamma, c.data(t, "dgamma"), 1e-10)
			compare(t, "dbeta", dbeta, c.data(t, "dbeta"), 1e-10)
		})
	}
}

// TestBatchNormFiniteDifferences checks BatchNormBackward against central
// differences of BatchNormForward: in training mode the statistics are
// recomputed from the perturbed x, so dx includes their derivative.
func TestBatchNormFiniteDifferences(t *testing.T) {
	shapes := []BatchNormParams{
		{N: 2, C: 3, H: 3, W: 5, Eps: 1e-5, Momentum: 0.1},
		{N: 1, C: 2, H: 1, W: 7, Eps: 1e-3, Momentum: 0.1},
		{N: 3, C: 1, H: 2, W: 2, Eps: 0, Momentum: 1},
	}
	for i, p := range shapes {
		for _, train := range []bool{true, false} {
			t.Run(fmt.Sprintf("n%dc%dh%dw%d_train%v", p.N, p.C, p.H, p.W, train), func(t *testing.T) {
				r := newRand(700 + uint64(i))
				x := randSlice(r, p.N*p.C*p.H*p.W)
				gamma, beta := randSlice(r, p.C), randSlice(r, p.C)
				runMean, runVar := randSlice(r, p.C), randSlice(r, p.C)
				for c := range runVar {
					runVar[c] = runVar[c]*runVar[c] + 0.5
				}
				g := randSlice(r, len(x))
				stats := func(v []float64) BatchNormStats {
					if !train {
						st, err := BatchNormRunningStats(p, runMean, runVar)
						if err != nil {
							t.Fatal(err)
						}
						return st
					}
					st, _, err := BatchNormBatchStats(p, v)
					if err != nil {
						t.Fatal(err)
					}
					return st
				}
				st := stats(x)
				dx, dgamma, dbeta, err := BatchNormBackward(p, train, x, g, gamma, st)
				if err != nil {
					t.Fatal(err)
				}
				checkFD(t, "dx", x, g, dx, func(v []float64) []float64 {
					return must(t)(BatchNormForward(p, v, gamma, beta, stats(v)))
				})
				checkFD(t, "dgamma", gamma, g, dgamma, func(v []float64) []float64 {
					return must(t)(BatchNormForward(p, x, v, beta, st))
				})
				checkFD(t, "dbeta", beta, g, dbeta, func(v []float64) []float64 {
					return must(t)(BatchNormForward(p, x, gamma, v, st))
				})
			})
		}
	}
}

func TestBatchNormErrors(t *testing.T) {
	p := BatchNormParams{N: 1, C: 2, H: 1, W: 1, Eps: 1e-5, Momentum: 0.1}
	if _, _, err := BatchNormBatchStats(p, make([]float64, 2)); err == nil {
		t.Error("training statistics of one value per channel accepted")
	}
	if _, _, err := BatchNormBatchStats(BatchNormParams{N: 1, C: 1, H: 2, W: 1, Momentum: 2}, make([]float64, 2)); err == nil {
		t.Error("momentum 2 accepted")
	}
	if _, err := BatchNormForward(p, make([]float64, 3), make([]float64, 2), make([]float64, 2), BatchNormStats{Mean: make([]float64, 2), InvStd: make([]float64, 2)}); err == nil {
		t.Error("x of the wrong length accepted")
	}
}
