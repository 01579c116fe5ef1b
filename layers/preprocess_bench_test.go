package layers

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"vktrain/vk"
)

// BenchmarkPreprocess times CIFAR records to AlexNet's input (32 -> 256 -> 224,
// CNHW) with crop-shift and flip augmentation, at batch 4 and 64.
func BenchmarkPreprocess(b *testing.B) {
	r := stepBenchRuntime(b)
	p := PreprocessParams{SrcH: 32, SrcW: 32, Resize: 256, Crop: 224, Mean: [3]float64{0.485, 0.456, 0.406}, Std: [3]float64{0.229, 0.224, 0.225}, Pad: 16, Flip: true}
	for _, n := range []int{4, 64} {
		b.Run(fmt.Sprintf("b%d", n), func(b *testing.B) {
			recs := make([]byte, n*p.RecordBytes())
			rng := rand.New(rand.NewPCG(3, 4))
			for i := range recs {
				recs[i] = byte(rng.IntN(256))
			}
			buf, err := r.NewRecordBuffer("records", p, n)
			if err != nil {
				b.Fatal(err)
			}
			defer buf.Free()
			if err := WriteRecords(buf, p, 0, recs); err != nil {
				b.Fatal(err)
			}
			st, err := r.NewStepState("state")
			if err != nil {
				b.Fatal(err)
			}
			defer st.Free()
			out, err := r.NewTensor("input", 3, n, p.Crop, p.Crop)
			if err != nil {
				b.Fatal(err)
			}
			defer out.Free()
			t := stepBench(b, r, func(s *vk.Stream) error { return r.Preprocess(s, p, buf.Whole(), n, st, out) })
			b.ReportMetric(float64(n)/t, "images/s")
			b.ReportMetric(t*1e3, "gpu-ms/batch")
		})
	}
}
