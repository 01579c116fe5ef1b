package layers

import (
	"fmt"
	"testing"

	"vktrain/vk"
)

// BenchmarkLinearBackward times the backward pass of AlexNet's two large linear
// layers (fc6 9216 -> 4096, fc7 4096 -> 1024) at the reference batch of 4 and
// at the largest batch it fuses, where the runtime fuses the weight's SGD step
// (Runtime.LinearFusesUpdate), two ways: "separate", the input gradient's GEMM
// then the weight gradient stepping the weight and its momentum (the weight
// read twice and written once, the momentum read and written: 20 bytes a
// weight), and "fused", one kernel computing the input gradient from the
// weight it steps (as the training step records it: 16 bytes a weight). It
// reports the GPU time and each way's weight traffic, to compare with the
// device's copy peak (vktrain bench).
func BenchmarkLinearBackward(b *testing.B) {
	r := stepBenchRuntime(b)
	for _, batch := range []int{4, gemmSmallKMax} {
		for _, sh := range []struct {
			name    string
			in, out int
		}{{"fc6", 9216, 4096}, {"fc7", 4096, 1024}} {
			for _, way := range []string{"separate", "fused"} {
				b.Run(fmt.Sprintf("%s/b%d/%s", sh.name, batch, way), func(b *testing.B) {
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
					scratch := benchTensor(b, r, "scratch", r.LinearUpdateScratchLen(l, batch))
					bytes := 20.0
					if way == "fused" {
						bytes = 16
					}
					t := stepBench(b, r, func(s *vk.Stream) error {
						if way == "fused" {
							if err := r.LinearBackwardUpdate(s, l, batch, x, dy, p, mom, dx, scratch); err != nil {
								return err
							}
						} else {
							if err := r.LinearBackwardData(s, l, batch, dy, dx); err != nil {
								return err
							}
							if err := r.LinearBackwardUpdate(s, l, batch, x, dy, p, mom, nil, nil); err != nil {
								return err
							}
						}
						return p.FinishStep(s)
					})
					b.ReportMetric(t*1e3, "gpu-ms/op")
					b.ReportMetric(bytes*float64(sh.in*sh.out)/t/1e9, "GB/s")
				})
			}
		}
	}
}
