package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// xentBounds returns float32 error bounds of the kernel's per-row losses, its
// dlogits and its batch-mean loss, derived from the float64 values:
//
//   - x_j = z_j - m is rounded (eps|x_j|) and exp adds at most 3+2|x| ulp
//     (Vulkan's precision), so e_j = exp(x_j) is within eps(6+5|x_j|) e_j;
//   - S = sum e_j carries those plus (C+2) eps S of summation;
//   - loss = (m - z_l) + log(S): eps|m - z_l|, B_S/S, log's 3 ulp (or 2^-21
//     absolute) and eps|loss| for the final add;
//   - dlogits p_j/N with p_j = e_j/S: relative B_S/S, e_j's error, and 7 eps
//     for the division (2.5 ulp), 1/N and the product; eps|g| + eps t_j more
//     where a target t_j != 0 is subtracted (t_j rounded to float32 once, and
//     the subtraction): the label's 1/N, or with label smoothing s every
//     class's ((1-s)[j == label] + s/C)/N.
//
// With label smoothing s the loss is (lw (m - z_l) + uw D) + log(S) (see
// xent.comp): D = sum_j (m - z_j) >= 0 within (C+1) eps D (each difference
// rounded, then summed); lw = 1-s and uw = s/C are rounded to float32, so
// A = lw (m - z_l) is within 3 eps|A| and B = uw D within 2 eps|B| + uw B_D;
// A + B adds eps|A + B|. The log term and the final add are as above. These are
// worst-case bounds, not fitted tolerances: a formula off by even s/C^2 per
// class (such as s/(C-1) for s/C) exceeds them by orders of magnitude.
func xentBounds(n, classes int, z []float64, labels []int32, dz []float64, smoothing float64) (rowLoss, rowBound, gBound []float64, meanBound float64) {
	rowLoss, rowBound = make([]float64, n), make([]float64, n)
	gBound = make([]float64, len(z))
	var sumBound, sumAbs float64
	for i := 0; i < n; i++ {
		row := z[i*classes : (i+1)*classes]
		m := row[0]
		for _, v := range row {
			m = math.Max(m, v)
		}
		var s, bs, dev float64
		for _, v := range row {
			x := v - m
			e := math.Exp(x)
			s += e
			bs += e * eps32 * (6 + 5*math.Abs(x))
			dev += m - v
		}
		bs += float64(classes+2) * eps32 * s
		zl := row[labels[i]]
		logS := math.Log(s)
		loss := m - zl + logS
		rowLoss[i] = loss
		rowBound[i] = 1.01 * (eps32*math.Abs(m-zl) + bs/s + 6*eps32*math.Abs(logS) + math.Pow(2, -21) + eps32*math.Abs(loss))
		if smoothing != 0 {
			uw := smoothing / float64(classes)
			a, b := (1-smoothing)*(m-zl), uw*dev
			loss = a + b + logS
			rowLoss[i] = loss
			rowBound[i] = 1.01 * (3*eps32*a + 2*eps32*b + uw*float64(classes+1)*eps32*dev + eps32*(a+b) +
				bs/s + 6*eps32*math.Abs(logS) + math.Pow(2, -21) + eps32*math.Abs(loss))
		}
		for j, v := range row {
			x := v - m
			p := math.Exp(x) / s
			r := eps32*(6+5*math.Abs(x)) + bs/s + 7*eps32
			b := p / float64(n) * r
			target := smoothing / float64(classes)
			if j == int(labels[i]) {
				target += 1 - smoothing
			}
			if target != 0 {
				b += eps32*math.Abs(dz[i*classes+j]) + eps32*target/float64(n)
			}
			gBound[i*classes+j] = 1.01*b + 1e-37
		}
		sumBound += rowBound[i]
		sumAbs += math.Abs(loss)
	}
	mean := 0.0
	for _, l := range rowLoss {
		mean += l / float64(n)
	}
	meanBound = 1.01 * ((sumBound+float64(n+2)*eps32*sumAbs)/float64(n) + 5*eps32*math.Abs(mean))
	return rowLoss, rowBound, gBound, meanBound
}

// xentCase runs SoftmaxCrossEntropy once on z and labels and compares every
// output with ref.SoftmaxCrossEntropy.
func xentCase(t *testing.T, r *Runtime, name string, n, classes int, z []float64, labels []int32, inPlace bool) {
	t.Helper()
	xentSmoothedCase(t, r, name, n, classes, z, labels, inPlace, -1)
}

// xentSmoothedCase is xentCase with label smoothing eps through
// SoftmaxCrossEntropySmoothed and ref.SoftmaxCrossEntropySmoothed (eps < 0:
// the plain SoftmaxCrossEntropy).
func xentSmoothedCase(t *testing.T, r *Runtime, name string, n, classes int, z []float64, labels []int32, inPlace bool, eps float64) {
	t.Helper()
	z = rounded(z)
	logits := tensorWith(t, r, "logits", z, n, classes)
	dz := logits
	if !inPlace {
		dz = zeros(t, r, "dlogits", n, classes)
	}
	lab := xentLabels(t, r, labels)
	stats, err := r.NewLossStats("stats", n+3)
	must(t, err)
	t.Cleanup(stats.Free)
	run(t, r, func(s *vk.Stream) error {
		if eps < 0 {
			return r.SoftmaxCrossEntropy(s, logits, lab.Whole(), dz, stats)
		}
		return r.SoftmaxCrossEntropySmoothed(s, logits, lab.Whole(), dz, stats, eps)
	})

	eps = max(eps, 0)
	loss, wantG, wantPred, correct, err := ref.SoftmaxCrossEntropySmoothed(n, classes, z, labels, eps)
	must(t, err)
	rowLoss, rowBound, gBound, meanBound := xentBounds(n, classes, z, labels, wantG, eps)
	compareBound(t, name+"/dlogits", download(t, dz), wantG, gBound)
	got32, err := stats.SampleLosses(n)
	must(t, err)
	got := make([]float64, n)
	for i, v := range got32 {
		got[i] = float64(v)
	}
	compareBound(t, name+"/row loss", got, rowLoss, rowBound)
	pred, err := stats.Predicted(n)
	must(t, err)
	for i := range pred {
		if int32(pred[i]) != wantPred[i] {
			t.Fatalf("%s: predicted[%d] = %d, want %d", name, i, pred[i], wantPred[i])
		}
	}
	tot, err := stats.Read()
	must(t, err)
	compareBound(t, name+"/batch loss", []float64{tot.BatchLoss, tot.LossSum}, []float64{loss, loss}, []float64{meanBound, meanBound})
	if tot.Steps != 1 || tot.Samples != n || tot.Correct != correct || tot.BatchCorrect != correct || tot.BatchSize != n {
		t.Fatalf("%s: totals %+v, want 1 step, %d samples, %d correct", name, tot, n, correct)
	}
}

func xentLabels(t testing.TB, r *Runtime, labels []int32) *vk.Buffer {
	t.Helper()
	b, err := r.Dev.NewBuffer(int64(4*len(labels)), "labels")
	must(t, err)
	t.Cleanup(b.Free)
	w := make([]uint32, len(labels))
	for i, l := range labels {
		w[i] = uint32(l)
	}
	must(t, b.WriteUint32(0, w))
	return b
}

func randLabels(rng *rand.Rand, n, classes int) []int32 {
	l := make([]int32, n)
	for i := range l {
		l[i] = int32(rng.IntN(classes))
	}
	return l
}

// TestSoftmaxCrossEntropy covers batches 1, 3 and 64 over 10 and 1000 classes
// (one invocation per row and one workgroup per row), normal logits, large
// logits (±1000, where a naive softmax overflows), exact ties (first maximum
// wins), labels on the argmax, and dlogits written over the logits; batch 130
// of 10 classes takes the separate reduction dispatch.
func TestSoftmaxCrossEntropy(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	for _, classes := range []int{10, 1000} {
		for _, n := range []int{1, 3, 64, 130} {
			for _, kind := range []string{"normal", "large", "ties"} {
				z := make([]float64, n*classes)
				labels := randLabels(rng, n, classes)
				for i := range z {
					switch kind {
					case "normal":
						z[i] = 3 * rng.NormFloat64()
					case "large":
						z[i] = 2000*rng.Float64() - 1000
					case "ties":
						z[i] = float64(rng.IntN(3)) // many equal maxima per row
					}
				}
				if kind == "ties" && n > 1 {
					// Some rows whose label is the first maximum: correct > 0.
					for i := 0; i < n; i += 2 {
						for j := 0; j < classes; j++ {
							if z[i*classes+j] == 2 {
								labels[i] = int32(j)
								break
							}
						}
					}
				}
				name := fmt.Sprintf("n%d/c%d/%s", n, classes, kind)
				xentCase(t, r, name, n, classes, z, labels, n == 3)
			}
		}
	}
}

// TestSoftmaxCrossEntropySmoothed compares the label-smoothed kernel with the
// float64 reference (itself checked against torch's
// cross_entropy(label_smoothing=eps) and by finite differences, in layers/ref)
// within xentBounds' worst-case float32 bounds: odd batches 1, 3, 7 (in place
// for 3) and 130 (the separate reduction), odd class counts on both paths (one
// invocation per row below 64 classes, a workgroup per row from 64), random
// normal logits (large ±1000 ones for 1001 classes), eps 0, 0.1, 0.37 and 1.
func TestSoftmaxCrossEntropySmoothed(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(15, 16))
	for _, classes := range []int{1, 3, 11, 65, 1001} {
		for _, n := range []int{1, 3, 7, 130} {
			for _, eps := range []float64{0, 0.1, 0.37, 1} {
				if n == 130 && classes != 11 && classes != 1001 {
					continue
				}
				z := make([]float64, n*classes)
				for i := range z {
					z[i] = 3 * rng.NormFloat64()
					if classes == 1001 && i%2 == 1 {
						z[i] = 2000*rng.Float64() - 1000
					}
				}
				labels := randLabels(rng, n, classes)
				name := fmt.Sprintf("n%d/c%d/eps%v", n, classes, eps)
				xentSmoothedCase(t, r, name, n, classes, z, labels, n == 3, eps)
			}
		}
	}
	// eps = 0 is the plain kernel, bit for bit.
	const n, classes = 7, 13
	z := rounded(randn(rng, n*classes))
	labels := randLabels(rng, n, classes)
	var outs [2][]float64
	var losses [2][]float32
	for k := range outs {
		logits := tensorWith(t, r, "logits", z, n, classes)
		dz := zeros(t, r, "dlogits", n, classes)
		lab := xentLabels(t, r, labels)
		stats, err := r.NewLossStats("stats", n)
		must(t, err)
		t.Cleanup(stats.Free)
		run(t, r, func(s *vk.Stream) error {
			if k == 0 {
				return r.SoftmaxCrossEntropy(s, logits, lab.Whole(), dz, stats)
			}
			return r.SoftmaxCrossEntropySmoothed(s, logits, lab.Whole(), dz, stats, 0)
		})
		outs[k] = download(t, dz)
		losses[k], err = stats.SampleLosses(n)
		must(t, err)
	}
	if !slices.Equal(outs[0], outs[1]) || !slices.Equal(losses[0], losses[1]) {
		t.Error("eps 0 differs from SoftmaxCrossEntropy")
	}
}

// TestLossStatsAccumulate submits one recorded stream twice with different
// labels, checks the totals accumulate, then resets them from the host and
// from a recorded fill.
func TestLossStatsAccumulate(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(13, 14))
	for _, sh := range [][2]int{{5, 10}, {100, 10}, {7, 100}} {
		t.Run(fmt.Sprintf("%dx%d", sh[0], sh[1]), func(t *testing.T) { lossStatsAccumulate(t, r, rng, sh[0], sh[1]) })
	}
}

func lossStatsAccumulate(t *testing.T, r *Runtime, rng *rand.Rand, n, classes int) {
	z := randn(rng, n*classes)
	logits := tensorWith(t, r, "logits", z, n, classes)
	dz := zeros(t, r, "dlogits", n, classes)
	labels := [][]int32{randLabels(rng, n, classes), randLabels(rng, n, classes)}
	lab := xentLabels(t, r, labels[0])
	stats, err := r.NewLossStats("stats", n)
	must(t, err)
	t.Cleanup(stats.Free)
	s, err := r.Dev.NewStream("xent", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, r.SoftmaxCrossEntropy(s, logits, lab.Whole(), dz, stats))

	var sum float64
	var correct int
	for step, l := range labels {
		w := make([]uint32, n)
		for i, v := range l {
			w[i] = uint32(v)
		}
		must(t, lab.WriteUint32(0, w))
		must(t, s.Run())
		loss, _, _, c, err := ref.SoftmaxCrossEntropy(n, classes, z, l)
		must(t, err)
		sum += loss
		correct += c
		tot, err := stats.Read()
		must(t, err)
		_, _, _, mb := xentBounds(n, classes, z, l, make([]float64, n*classes), 0)
		if tot.Steps != step+1 || tot.Samples != n*(step+1) || tot.Correct != correct || tot.BatchCorrect != c ||
			math.Abs(tot.BatchLoss-loss) > mb || math.Abs(tot.LossSum-sum) > 2*(float64(step)+1)*mb {
			t.Fatalf("step %d: totals %+v, want loss sum %v, batch loss %v, %d correct (%d in the batch)", step, tot, sum, loss, correct, c)
		}
		if math.Abs(tot.MeanLoss()-sum/float64(step+1)) > 2*mb || tot.Accuracy() != float64(correct)/float64(n*(step+1)) {
			t.Fatalf("step %d: mean loss %v, accuracy %v", step, tot.MeanLoss(), tot.Accuracy())
		}
	}
	must(t, stats.Reset())
	if tot, err := stats.Read(); err != nil || tot != (LossTotals{}) {
		t.Fatalf("after Reset: %+v, %v", tot, err)
	}
	must(t, s.Run())
	reset, err := r.Dev.NewStream("reset", vk.StreamOptions{})
	must(t, err)
	defer reset.Close()
	must(t, stats.RecordReset(reset))
	must(t, reset.Run())
	if tot, err := stats.Read(); err != nil || tot != (LossTotals{}) {
		t.Fatalf("after RecordReset: %+v, %v", tot, err)
	}
}

func TestSoftmaxCrossEntropyErrors(t *testing.T) {
	r := openRuntime(t)
	logits := zeros(t, r, "logits", 4, 10)
	other := zeros(t, r, "other", 4, 9)
	lab := xentLabels(t, r, make([]int32, 4))
	small, err := r.NewLossStats("small", 3)
	must(t, err)
	t.Cleanup(small.Free)
	stats, err := r.NewLossStats("stats", 4)
	must(t, err)
	t.Cleanup(stats.Free)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	flat, _ := logits.Reshape(40)
	for i, c := range []struct {
		z, dz  *Tensor
		labels vk.Range
		st     *LossStats
	}{
		{logits, other, lab.Whole(), stats},
		{flat, logits, lab.Whole(), stats},
		{logits, logits, lab.Slice(0, 12), stats},
		{logits, logits, lab.Whole(), small},
		{logits, logits, lab.Whole(), nil},
	} {
		if err := r.SoftmaxCrossEntropy(s, c.z, c.labels, c.dz, c.st); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
	for _, eps := range []float64{-0.01, 1.01, math.NaN()} {
		if err := r.SoftmaxCrossEntropySmoothed(s, logits, lab.Whole(), logits, stats, eps); err == nil {
			t.Errorf("label smoothing %v accepted", eps)
		}
	}
	if _, err := r.NewLossStats("none", 0); err == nil {
		t.Error("NewLossStats(0) accepted")
	}
}
