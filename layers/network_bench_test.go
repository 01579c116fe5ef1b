package layers

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"vktrain/layers/nn"
	"vktrain/vk"
)

// stepConfigs are the training steps set beside PyTorch's
// (testdata/torch_step_bench.py): the modified AlexNet at 224 (resize 256) with
// batch 4 and 64, and at 64x64 (resize 64, no crop) with batch 64.
var stepConfigs = []struct{ size, resize, batch int }{
	{224, 256, 4},
	{224, 256, 64},
	{64, 64, 64},
}

// modifiedAlexNet is train.BuildModel(false): torchvision's AlexNet with the
// reference's surgery, dropout 0.5 as torchvision builds it.
func modifiedAlexNet(t testing.TB) *nn.Model {
	t.Helper()
	m := nn.AlexNet(1000)
	must(t, m.ReferenceSurgery(10))
	return m
}

// BenchmarkTrainStep times a full training step of the modified AlexNet
// (preprocessing of CIFAR-sized records, forward, loss, backward, SGD lr 0.001
// momentum 0.9) on the default device, one step per Submit+Flush, after one
// warm-up step. It reports the median wall time per step (ms/step) and images/s
// from it, and the GPU time of the step from timestamps (gpu-ms/step, the
// median of the recorded stream's first-to-last timestamp span; the wall time
// adds the submission, the upload of the batch and the readback of the loss).
// With -v it logs the device and the kernels that took the most GPU time.
// make bench-step runs it beside PyTorch; -benchtime=Nx sets the steps.
func BenchmarkTrainStep(b *testing.B) {
	dev, err := vk.Open(vk.Options{PipelineCacheDir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	r := NewRuntime(dev)
	defer r.Close()
	for _, c := range stepConfigs {
		b.Run(fmt.Sprintf("size=%d/batch=%d", c.size, c.batch), func(b *testing.B) {
			net, err := NewNetwork(r, modifiedAlexNet(b), NetworkConfig{
				Batch: c.batch, Input: imageNetInput(c.resize, c.size), Train: true, Seed: 1,
				SGD: SGDConfig{LR: 0.001, Momentum: 0.9}, ConvAlgo: ConvWinograd4, // vktrain train's --conv auto untuned (tuning changes the 3x3 weight gradients on lavapipe by 2%)
			})
			if err != nil {
				b.Fatal(err)
			}
			defer net.Close()
			params, err := modifiedAlexNet(b).InitStateDict(1)
			must(b, err)
			if _, _, err := net.LoadState(params, true); err != nil {
				b.Fatal(err)
			}
			rng := rand.New(rand.NewPCG(1, 2))
			batch := Batch{Records: make([]byte, c.batch*net.Config().Input.RecordBytes()), Labels: make([]uint8, c.batch)}
			for i := range batch.Records {
				batch.Records[i] = byte(rng.IntN(256))
			}
			for i := range batch.Labels {
				batch.Labels[i] = uint8(rng.IntN(10))
			}
			step := func() time.Duration {
				t0 := time.Now()
				if _, err := net.Submit(TrainStep, batch); err != nil {
					b.Fatal(err)
				}
				if _, err := net.Flush(); err != nil {
					b.Fatal(err)
				}
				batch.Step++
				return time.Since(t0)
			}
			step() // warm-up: first touch of every buffer, lazily built pipelines
			var wall, gpu []time.Duration
			b.ResetTimer()
			for b.Loop() {
				wall = append(wall, step())
				gpu = append(gpu, lastStream(net).Total())
			}
			b.StopTimer()
			med := medianDuration(wall)
			b.ReportMetric(float64(med)/1e6, "ms/step")
			b.ReportMetric(float64(medianDuration(gpu))/1e6, "gpu-ms/step")
			b.ReportMetric(float64(c.batch)/med.Seconds(), "images/s")
			b.Logf("device %s, GEMM %s; the last step's GPU time by kernel: %s", dev.Info.Name, r.Variant, topKernels(lastStream(net).Timings(nil), 8))
		})
	}
}

// lastStream is the training stream of the step submitted last (Network.Timings
// gives the first slot's, which may be the step before).
func lastStream(net *Network) *vk.Stream { return net.slots[1-net.next].streams[TrainStep] }

// topKernels sums GPU time by kernel label and lists the n largest with their
// share of the step.
func topKernels(ts []vk.Timing, n int) string {
	by := map[string]time.Duration{}
	var total time.Duration
	for _, t := range ts {
		by[t.Label] += t.Time
		total += t.Time
	}
	labels := slices.Collect(maps.Keys(by))
	slices.SortFunc(labels, func(a, b string) int { return cmp.Compare(by[b], by[a]) })
	var sb strings.Builder
	for i, l := range labels {
		if i == n {
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s %.0f ms (%.0f%%)", l, float64(by[l])/1e6, 100*float64(by[l])/float64(max(total, 1)))
	}
	return sb.String()
}

func medianDuration(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
