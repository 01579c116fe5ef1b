package ref

import (
	"math"
	"testing"
)

func TestReLU(t *testing.T) {
	x := []float64{-2, -0.5, 0, 0.25, 3}
	y := ReLUForward(x)
	compare(t, "y", y, []float64{0, 0, 0, 0.25, 3}, 0)
	dx, err := ReLUBackward(y, []float64{1, 2, 3, 4, 5})
	if err != nil {
		t.Fatal(err)
	}
	// The gradient at exactly 0 is 0, as in PyTorch.
	compare(t, "dx", dx, []float64{0, 0, 0, 4, 5}, 0)
	if y := ReLUForward([]float64{math.NaN()}); !math.IsNaN(y[0]) {
		t.Errorf("relu(NaN) = %v, want NaN", y[0])
	}
	if _, err := ReLUBackward(y, []float64{1}); err == nil {
		t.Error("short dy accepted")
	}
}

func TestReLUFiniteDifferences(t *testing.T) {
	r := newRand(700)
	x := randSlice(r, 200)
	for i, v := range x {
		if math.Abs(v) < 1e-3 { // keep clear of the kink
			x[i] = 0.5
		}
	}
	g := randSlice(r, len(x))
	dx, err := ReLUBackward(ReLUForward(x), g)
	if err != nil {
		t.Fatal(err)
	}
	checkFD(t, "dx", x, g, dx, ReLUForward)
}
