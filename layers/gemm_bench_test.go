package layers

import (
	"fmt"
	"testing"

	"vktrain/vk"
)

// gemmShape is one GEMM of AlexNet's training step at 224x224 (batch in N or M;
// BenchmarkGEMM runs batch 4 and 64).
type gemmShape struct {
	name    string
	m, n, k int
	ta, tb  bool
}

func alexnetGEMMs(batch int) []gemmShape {
	return []gemmShape{
		{"conv1.fwd", 64, batch * 55 * 55, 363, false, false},
		{"conv2.fwd", 192, batch * 27 * 27, 1600, false, false},
		{"conv3.fwd", 384, batch * 13 * 13, 1728, false, false},
		{"conv4.fwd", 256, batch * 13 * 13, 3456, false, false},
		{"conv5.fwd", 256, batch * 13 * 13, 2304, false, false},
		{"conv2.dgrad", 1600, batch * 27 * 27, 192, true, false},
		{"conv2.wgrad", 192, 1600, batch * 27 * 27, false, true},
		{"fc6.fwd", batch, 4096, 9216, false, true},
		{"fc6.wgrad", 4096, 9216, batch, true, false},
		{"fc6.dgrad", batch, 9216, 4096, false, false},
	}
}

// BenchmarkGEMM times each AlexNet GEMM with GPU timestamps and reports GFLOP/s.
func BenchmarkGEMM(b *testing.B) {
	dev, err := vk.Open(vk.Options{PipelineCacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	r := NewRuntime(dev)
	defer r.Close()
	for _, batch := range []int{4, 64} {
		for _, g := range alexnetGEMMs(batch) {
			b.Run(fmt.Sprintf("%s/b%d/%s", g.name, batch, r.Variant), func(b *testing.B) {
				lda, ldb := g.k, g.n
				if g.ta {
					lda = g.m
				}
				if g.tb {
					ldb = g.k
				}
				a, _ := r.NewTensor("A", g.m*g.k)
				bt, _ := r.NewTensor("B", g.k*g.n)
				c, _ := r.NewTensor("C", g.m*g.n)
				defer a.Free()
				defer bt.Free()
				defer c.Free()
				s, _ := dev.NewStream("gemm", vk.StreamOptions{Timestamps: true})
				defer s.Close()
				if err := r.GEMM(s, g.m, g.n, g.k, Mat{T: a, LD: lda, Trans: g.ta}, Mat{T: bt, LD: ldb, Trans: g.tb}, Mat{T: c, LD: g.n}, GEMMOptions{}); err != nil {
					b.Fatal(err)
				}
				if err := s.Run(); err != nil {
					b.Fatal(err)
				}
				var gpu float64
				for b.Loop() {
					if err := s.Run(); err != nil {
						b.Fatal(err)
					}
					gpu += s.Total().Seconds()
				}
				b.ReportMetric(2*float64(g.m)*float64(g.n)*float64(g.k)*float64(b.N)/gpu/1e9, "GFLOP/s")
			})
		}
	}
}
