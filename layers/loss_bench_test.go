package layers

import (
	"math/rand/v2"
	"testing"

	"vktrain/vk"
)

// stepBenchRuntime opens the default device without validation for benchmarks.
func stepBenchRuntime(b *testing.B) *Runtime {
	b.Helper()
	dev, err := vk.Open(vk.Options{PipelineCacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	r := NewRuntime(dev)
	b.Cleanup(func() {
		r.Close()
		dev.Close()
	})
	return r
}

// stepBench runs a stream recorded by record once to warm up, then once per
// iteration, and returns the mean GPU time per run in seconds (timestamps).
// The last run's time per dispatch is logged (shown with -test.v).
func stepBench(b *testing.B, r *Runtime, record func(s *vk.Stream) error) float64 {
	b.Helper()
	s, err := r.Dev.NewStream(b.Name(), vk.StreamOptions{Timestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := record(s); err != nil {
		b.Fatal(err)
	}
	if err := s.Run(); err != nil {
		b.Fatal(err)
	}
	var gpu float64
	var timings []vk.Timing
	n := 0
	for b.Loop() {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
		gpu += s.Total().Seconds()
		timings = s.Timings(timings)
		n++
	}
	for _, t := range timings {
		b.Logf("%-12s %8.3f ms", t.Label, t.Time.Seconds()*1e3)
	}
	return gpu / float64(n)
}

// BenchmarkSoftmaxCrossEntropy times the loss at AlexNet-on-CIFAR's shape, batch
// 64 x 10 classes (the per-row kernel and the batch reduction), and at 64 x 1000.
func BenchmarkSoftmaxCrossEntropy(b *testing.B) {
	r := stepBenchRuntime(b)
	for _, sh := range [][2]int{{64, 10}, {64, 1000}} {
		n, classes := sh[0], sh[1]
		b.Run(map[int]string{10: "64x10", 1000: "64x1000"}[classes], func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 2))
			logits, _ := r.NewTensor("logits", n, classes)
			dz, _ := r.NewTensor("dlogits", n, classes)
			defer logits.Free()
			defer dz.Free()
			z := make([]float32, n*classes)
			for i := range z {
				z[i] = float32(rng.NormFloat64())
			}
			logits.Upload(z)
			lab, _ := r.Dev.NewBuffer(int64(4*n), "labels")
			defer lab.Free()
			stats, err := r.NewLossStats("stats", n)
			if err != nil {
				b.Fatal(err)
			}
			defer stats.Free()
			t := stepBench(b, r, func(s *vk.Stream) error { return r.SoftmaxCrossEntropy(s, logits, lab.Whole(), dz, stats) })
			b.ReportMetric(t*1e6, "gpu-us/step")
		})
	}
}
