package layers

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"vktrain/vk"
)

// alexnetConv is one of AlexNet's convolutions at a 224x224 input.
type alexnetConv struct {
	name                      string
	c, k, kernel, stride, pad int
	h                         int // input height and width
}

var alexnetConvs = []alexnetConv{
	{"conv1", 3, 64, 11, 4, 2, 224},
	{"conv2", 64, 192, 5, 1, 2, 27},
	{"conv3", 192, 384, 3, 1, 1, 13},
	{"conv4", 384, 256, 3, 1, 1, 13},
	{"conv5", 256, 256, 3, 1, 1, 13},
}

// BenchmarkConv times AlexNet's five convolutions at 224x224, batch 4
// (VKTRAIN_BENCH_BATCH to change it), with every algorithm that applies: forward
// (im2col + GEMM with bias and ReLU), backward data (GEMM + col2im) and backward
// weights (im2col + GEMM), with GPU timestamps, reporting GFLOP/s for
// 2*K*C*R*S*OH*OW*N FLOPs per pass, and the bias pass (ReLU mask + row sums) in
// GPU milliseconds.
func BenchmarkConv(b *testing.B) {
	dev, err := vk.Open(vk.Options{PipelineCacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	r := NewRuntime(dev)
	defer r.Close()
	batch := 4
	if v := os.Getenv("VKTRAIN_BENCH_BATCH"); v != "" {
		batch, _ = strconv.Atoi(v)
	}
	for _, l := range alexnetConvs {
		cv, err := r.NewConv2D(l.name, l.c, l.k, l.kernel, l.kernel, l.stride, l.pad, true)
		if err != nil {
			b.Fatal(err)
		}
		oh, ow := cv.OutSize(l.h, l.h)
		x, _ := r.NewTensor("x", l.c, batch, l.h, l.h)
		y, _ := r.NewTensor("y", l.k, batch, oh, ow)
		dy, _ := r.NewTensor("dy", l.k, batch, oh, ow)
		dx, _ := r.NewTensor("dx", l.c, batch, l.h, l.h)
		flops := 2 * float64(l.k*l.c*l.kernel*l.kernel*oh*ow*batch)
		for _, algo := range ConvAlgos {
			if !cv.AlgoApplies(algo) {
				continue
			}
			cv.SetAlgo(algo)
			scratch, err := r.NewTensor("scratch", cv.ScratchLen(batch, l.h, l.h))
			if err != nil {
				b.Fatal(err)
			}
			for _, pass := range []struct {
				name string
				rec  func(s *vk.Stream) error
			}{
				{"fwd", func(s *vk.Stream) error { return r.Conv2DForward(s, cv, x, y, scratch) }},
				{"bwd-data", func(s *vk.Stream) error { return r.Conv2DBackwardData(s, cv, dy, dx, scratch) }},
				{"bwd-weights", func(s *vk.Stream) error { return r.Conv2DBackwardWeights(s, cv, x, dy, scratch, false) }},
				{"bwd-bias", func(s *vk.Stream) error { return r.Conv2DBackwardBias(s, cv, y, dy, false) }},
			} {
				if pass.name == "bwd-bias" && algo != ConvIm2col {
					continue // the same kernel whatever the algorithm
				}
				b.Run(fmt.Sprintf("%s/%s/b%d/%s/%s", l.name, pass.name, batch, r.Variant, algo), func(b *testing.B) {
					sec := stepBench(b, r, pass.rec)
					b.ReportMetric(sec*1e3, "gpu-ms/op")
					if pass.name != "bwd-bias" {
						b.ReportMetric(flops/sec/1e9, "GFLOP/s") // direct-convolution FLOPs: Winograd's effective rate
					}
				})
			}
			scratch.Free()
		}
		for _, t := range []*Tensor{x, y, dy, dx} {
			t.Free()
		}
		cv.Free()
	}
}
