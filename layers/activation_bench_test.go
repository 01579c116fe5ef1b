package layers

import (
	"fmt"
	"testing"

	"vktrain/vk"
)

// BenchmarkActivation times ReLU and dropout, forward and backward, on the
// classifier's 4 x 4096 activations (batch 4) and, for bandwidth, on conv1's
// output (64 x 4 x 55 x 55). GB/s counts the bytes each kernel must read and
// write once.
func BenchmarkActivation(b *testing.B) {
	r := benchRuntime(b)
	st, err := r.NewStepState("state")
	if err != nil {
		b.Fatal(err)
	}
	defer st.Free()
	for _, shape := range [][]int{{4, 4096}, {64, 4, 55, 55}} {
		x := benchTensor(b, r, "x", shape...)
		y := benchTensor(b, r, "y", shape...)
		dx := benchTensor(b, r, "dx", shape...)
		n := x.Len()
		name := fmt.Sprint(shape)
		b.Run("relu.fwd/"+name, func(b *testing.B) {
			benchStream(b, r, 8*n, func(s *vk.Stream) error { return r.ReLUForward(s, x, y) })
		})
		b.Run("relu.bwd/"+name, func(b *testing.B) {
			benchStream(b, r, 12*n, func(s *vk.Stream) error { return r.ReLUBackward(s, y, x, dx) })
		})
		b.Run("dropout.fwd/"+name, func(b *testing.B) {
			benchStream(b, r, 8*n, func(s *vk.Stream) error { return r.DropoutForward(s, 0.5, st, x, y) })
		})
		b.Run("dropout.bwd/"+name, func(b *testing.B) {
			benchStream(b, r, 8*n, func(s *vk.Stream) error { return r.DropoutBackward(s, 0.5, st, y, dx) })
		})
	}
}
