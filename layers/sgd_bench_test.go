package layers

import (
	"testing"

	"vktrain/vk"
)

// alexnetParamShapes are the parameter tensors of the reference experiment's
// AlexNet (classifier.4 = Linear(4096, 1024), classifier.6 = Linear(1024, 10)):
// 44,428,106 parameters, fc6's 151 MB weight among them.
var alexnetParamShapes = [][]int{
	{64, 3, 11, 11}, {64}, {192, 64, 5, 5}, {192}, {384, 192, 3, 3}, {384},
	{256, 384, 3, 3}, {256}, {256, 256, 3, 3}, {256},
	{4096, 9216}, {4096}, {1024, 4096}, {1024}, {10, 1024}, {10},
}

// BenchmarkSGD times one SGD step (momentum 0.9, weight decay 5e-4) over all of
// AlexNet's parameters, recorded as one stream, and reports the memory traffic
// (param, grad and buffer read, param and buffer written: 20 bytes a parameter).
func BenchmarkSGD(b *testing.B) {
	r := stepBenchRuntime(b)
	for _, v := range []GEMMVariant{GEMMTexel, GEMMTiled} {
		b.Run(map[GEMMVariant]string{GEMMTexel: "texel-reads", GEMMTiled: "storage-reads"}[v], func(b *testing.B) {
			saved := r.Variant
			r.Variant = v
			defer func() { r.Variant = saved }()
			p, err := r.NewSGDParams("sgd", SGDConfig{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4})
			if err != nil {
				b.Fatal(err)
			}
			defer p.Free()
			var ts []*Tensor
			defer func() {
				for _, t := range ts {
					t.Free()
				}
			}()
			total := 0
			t := stepBench(b, r, func(s *vk.Stream) error {
				for _, sh := range alexnetParamShapes {
					var three [3]*Tensor
					for i := range three {
						x, err := r.NewTensor("t", sh...)
						if err != nil {
							return err
						}
						ts = append(ts, x)
						three[i] = x
					}
					total += three[0].Len()
					if err := r.SGD(s, p, three[0], three[1], three[2]); err != nil {
						return err
					}
				}
				return p.FinishStep(s)
			})
			if total != 44428106 {
				b.Fatalf("%d parameters", total)
			}
			b.ReportMetric(t*1e3, "gpu-ms/step")
			b.ReportMetric(20*float64(total)/t/1e9, "GB/s")
		})
	}
}
