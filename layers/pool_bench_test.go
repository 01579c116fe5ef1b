package layers

import (
	"fmt"
	"testing"

	"vktrain/vk"
)

// benchStream records one operation into a timed stream and reports its GPU time
// per run (us/op) and the bytes it must move per second (GB/s).
func benchStream(b *testing.B, r *Runtime, bytes int, record func(s *vk.Stream) error) {
	b.Helper()
	s, err := r.Dev.NewStream(b.Name(), vk.StreamOptions{Timestamps: true})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := record(s); err != nil {
		b.Fatal(err)
	}
	if err := s.Run(); err != nil { // compiles the pipelines
		b.Fatal(err)
	}
	var gpu float64
	for b.Loop() {
		if err := s.Run(); err != nil {
			b.Fatal(err)
		}
		gpu += s.Total().Seconds()
	}
	b.ReportMetric(gpu/float64(b.N)*1e6, "gpu-us/op")
	b.ReportMetric(float64(bytes)*float64(b.N)/gpu/1e9, "GB/s")
}

func benchRuntime(b *testing.B) *Runtime {
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

func benchTensor(b *testing.B, r *Runtime, name string, shape ...int) *Tensor {
	t, err := r.NewTensor(name, shape...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(t.Free)
	return t
}

// BenchmarkPool times AlexNet's pooling at 224x224, batch 4 (CNHW planes): the
// three 3/2 max pools and the adaptive average pool 6x6 -> 6x6, forward and
// backward. GB/s counts the bytes each kernel must read and write once.
func BenchmarkPool(b *testing.B) {
	r := benchRuntime(b)
	const batch = 4
	p := Pool2D{KH: 3, KW: 3, StrideH: 2, StrideW: 2}
	for _, sh := range [][3]int{{64, 55, 55}, {192, 27, 27}, {256, 13, 13}} {
		c, h, w := sh[0], sh[1], sh[2]
		planes := c * batch
		oh, ow := p.Out(h, w)
		x := benchTensor(b, r, "x", c, batch, h, w)
		y := benchTensor(b, r, "y", c, batch, oh, ow)
		am := benchTensor(b, r, "argmax", c, batch, oh, ow)
		in, out := 4*planes*h*w, 4*planes*oh*ow
		b.Run(fmt.Sprintf("maxpool.fwd/%dx%dx%d/b%d", c, h, w, batch), func(b *testing.B) {
			benchStream(b, r, in+2*out, func(s *vk.Stream) error { return r.MaxPool2DForward(s, p, planes, h, w, x, y, am) })
		})
		b.Run(fmt.Sprintf("maxpool.bwd/%dx%dx%d/b%d", c, h, w, batch), func(b *testing.B) {
			benchStream(b, r, in+2*out, func(s *vk.Stream) error { return r.MaxPool2DBackward(s, p, planes, h, w, y, am, x) })
		})
	}
	for _, sh := range [][3]int{{256, 6, 6}, {256, 13, 13}} {
		c, h, w := sh[0], sh[1], sh[2]
		planes := c * batch
		x := benchTensor(b, r, "x", c, batch, h, w)
		y := benchTensor(b, r, "y", c, batch, 6, 6)
		bytes := 4*planes*h*w + 4*planes*36
		b.Run(fmt.Sprintf("adaptiveavg.fwd/%dx%dx%d_to_6x6/b%d", c, h, w, batch), func(b *testing.B) {
			benchStream(b, r, bytes, func(s *vk.Stream) error { return r.AdaptiveAvgPool2DForward(s, planes, h, w, 6, 6, x, y) })
		})
		b.Run(fmt.Sprintf("adaptiveavg.bwd/%dx%dx%d_to_6x6/b%d", c, h, w, batch), func(b *testing.B) {
			benchStream(b, r, bytes, func(s *vk.Stream) error { return r.AdaptiveAvgPool2DBackward(s, planes, h, w, 6, 6, y, x) })
		})
	}
}
