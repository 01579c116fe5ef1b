package ref

import (
	"fmt"
	"math"
)

// ReLUForward returns max(x, 0) elementwise in a new slice. NaN stays NaN,
// as in torch.relu.
func ReLUForward(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		if v > 0 || math.IsNaN(v) {
			y[i] = v
		}
	}
	return y
}

// ReLUBackward returns dx = dy where y > 0 and 0 elsewhere, given the
// forward output y, as PyTorch's threshold_backward does.
func ReLUBackward(y, dy []float64) ([]float64, error) {
	if err := checkLen("relu dy", len(dy), len(y)); err != nil {
		return nil, err
	}
	dx := make([]float64, len(y))
	for i, v := range y {
		if v > 0 {
			dx[i] = dy[i]
		}
	}
	return dx, nil
}

// checkDropoutP panics unless 0 <= p <= 1; an invalid probability is a
// programmer error.
func checkDropoutP(p float64) {
	if !(p >= 0 && p <= 1) {
		panic(fmt.Sprintf("ref: dropout probability %v outside [0, 1]", p))
	}
}

// DropoutMask returns the keep mask of n elements for drop probability p.
// Element i takes word i&3 of
//
//	Philox4x32([i>>2, 0, uint32(step), uint32(step>>32)], [uint32(seed), uint32(seed>>32)])
//
// as r, forms u = float64(r>>8) / 2^24 in [0, 1), and is kept iff u >= p.
// So p = 0 keeps everything and p = 1 drops everything. It panics if n < 0
// or p is outside [0, 1] (programmer error).
func DropoutMask(n int, p float64, seed, step uint64) []bool {
	checkDropoutP(p)
	if n < 0 {
		panic(fmt.Sprintf("ref: dropout length %d < 0", n))
	}
	mask := make([]bool, n)
	var block [4]uint32
	for i := range mask {
		if i&3 == 0 {
			block = philoxStream(uint32(i>>2), 0, seed, step)
		}
		u := float64(block[i&3]>>8) / (1 << 24)
		mask[i] = u >= p
	}
	return mask
}

// dropoutScale returns 1/(1-p), the factor applied to kept elements, or 0
// when p = 1 and nothing is kept.
func dropoutScale(p float64) float64 {
	if p >= 1 {
		return 0
	}
	return 1 / (1 - p)
}

// DropoutForward applies inverted dropout: y = x/(1-p) where the mask
// from DropoutMask(len(x), p, seed, step) keeps the element, 0 elsewhere.
// It returns y and the mask. It panics if p is outside [0, 1].
func DropoutForward(x []float64, p float64, seed, step uint64) ([]float64, []bool) {
	mask := DropoutMask(len(x), p, seed, step)
	scale := dropoutScale(p)
	y := make([]float64, len(x))
	for i, v := range x {
		if mask[i] {
			y[i] = v * scale
		}
	}
	return y, mask
}

// DropoutBackward returns dx = dy/(1-p) where mask keeps the element and 0
// elsewhere. It returns an error if the lengths differ or p is outside
// [0, 1].
func DropoutBackward(dy []float64, mask []bool, p float64) ([]float64, error) {
	if !(p >= 0 && p <= 1) {
		return nil, fmt.Errorf("ref: dropout probability %v outside [0, 1]", p)
	}
	if err := checkLen("dropout mask", len(mask), len(dy)); err != nil {
		return nil, err
	}
	scale := dropoutScale(p)
	dx := make([]float64, len(dy))
	for i, g := range dy {
		if mask[i] {
			dx[i] = g * scale
		}
	}
	return dx, nil
}

// ResidualAdd returns a + b elementwise, or relu(a + b) with relu (a residual
// block's sum and final ReLU). Its backward passes the gradient of the sum,
// the output gradient masked where the output is not positive with relu
// (ReLUBackward), to both operands unchanged.
func ResidualAdd(a, b []float64, relu bool) ([]float64, error) {
	if err := checkLen("residual add b", len(b), len(a)); err != nil {
		return nil, err
	}
	s := make([]float64, len(a))
	for i := range a {
		s[i] = a[i] + b[i]
	}
	if relu {
		return ReLUForward(s), nil
	}
	return s, nil
}
