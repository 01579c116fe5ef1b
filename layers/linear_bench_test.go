package layers

import (
	"fmt"
	"testing"

	"vktrain/vk"
)

// BenchmarkLinearBackward times the backward pass of AlexNet's two large linear
// layers (fc6 9216 -> 4096, fc7 4096 -> 1024) at the reference batch of 4 and
// at the largest batch it fuses, as the training step records it where the
// runtime fuses the weight's SGD step (Runtime.LinearFusesUpdate): the input
// gradient, then the weight gradient stepping the weight and its momentum. It
// reports the GPU time and the weight traffic (the weight read twice, once
// for the input gradient and once for its step, and written once; the
// momentum read and written: 20 bytes a weight), to compare with the device's
// copy peak (vktrain bench).
func BenchmarkLinearBackward(b *testing.B) {
	r := stepBenchRuntime(b)
	for _, batch := range []int{4, gemmSmallKMax} {
		for _, sh := range []struct {
			name    string
			in, out int
		}{{"fc6", 9216, 4096}, {"fc7", 4096, 1024}} {
			b.Run(fmt.Sprintf("%s/b%d", sh.name, batch), func(b *testing.B) {
				l, err := r.NewLinear(sh.name, sh.in, sh.out, true, true)
				if err != nil {
					b.Fatal(err)
				}
				defer l.Free()
				if !r.LinearFusesUpdate(l, batch) {
					b.Skipf("the runtime does not fuse %s's update at batch %d", sh.name, batch)
				}
				p, err := r.NewSGDParams("sgd", SGDConfig{LR: 0.001, Momentum: 0.9})
				if err != nil {
					b.Fatal(err)
				}
				defer p.Free()
				x, dy := benchTensor(b, r, "x", batch, sh.in), benchTensor(b, r, "dy", batch, sh.out)
				dx, mom := benchTensor(b, r, "dx", batch, sh.in), benchTensor(b, r, "momentum", sh.out, sh.in)
				t := stepBench(b, r, func(s *vk.Stream) error {
					if err := r.LinearBackwardData(s, l, batch, dy, dx); err != nil {
						return err
					}
					if err := r.LinearBackwardUpdate(s, l, batch, x, dy, p, mom); err != nil {
						return err
					}
					return p.FinishStep(s)
				})
				b.ReportMetric(t*1e3, "gpu-ms/op")
				b.ReportMetric(20*float64(sh.in*sh.out)/t/1e9, "GB/s")
			})
		}
	}
}
