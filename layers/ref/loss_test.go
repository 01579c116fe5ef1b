package ref

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func TestSoftmaxCrossEntropyHand(t *testing.T) {
	// Row 0: equal logits, loss log 2. Row 1: logits (0, ln 3), label 1:
	// softmax (1/4, 3/4), loss -ln(3/4); predicted 1, correct.
	logits := []float64{0, 0, 0, math.Log(3)}
	loss, d, pred, correct, err := SoftmaxCrossEntropy(2, 2, logits, []int32{1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := (math.Log(2) - math.Log(0.75)) / 2; relErr(loss, want) > 1e-15 {
		t.Errorf("loss = %v, want %v", loss, want)
	}
	compare(t, "dlogits", d, []float64{0.25, -0.25, 0.125, -0.125}, 1e-15)
	if !slices.Equal(pred, []int32{0, 1}) || correct != 1 {
		t.Errorf("predicted %v correct %d, want [0 1] and 1 (first max wins the tie)", pred, correct)
	}
}

func TestSoftmaxCrossEntropyFiniteDifferences(t *testing.T) {
	const batch, classes = 3, 13
	r := newRand(600)
	logits := randSlice(r, batch*classes)
	for i := range logits {
		logits[i] *= 3
	}
	labels := []int32{0, 12, 5}
	_, d, _, _, err := SoftmaxCrossEntropy(batch, classes, logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	checkFD(t, "dlogits", logits, []float64{1}, d, func(v []float64) []float64 {
		loss, _, _, _, err := SoftmaxCrossEntropy(batch, classes, v, labels)
		if err != nil {
			t.Fatal(err)
		}
		return []float64{loss}
	})
}

func TestSoftmaxCrossEntropyStable(t *testing.T) {
	loss, d, _, _, err := SoftmaxCrossEntropy(1, 3, []float64{1e300, -1e300, 0}, []int32{1})
	if err != nil {
		t.Fatal(err)
	}
	if math.IsNaN(loss) || math.IsInf(loss, 0) || loss != 2e300 {
		t.Errorf("loss = %v, want 2e300", loss)
	}
	compare(t, "dlogits", d, []float64{1, -1, 0}, 0)
}

func TestSoftmaxCrossEntropyRejectsBadInput(t *testing.T) {
	if _, _, _, _, err := SoftmaxCrossEntropy(1, 2, []float64{0, 0}, []int32{2}); err == nil {
		t.Error("label 2 of 2 classes accepted")
	}
	if _, _, _, _, err := SoftmaxCrossEntropy(1, 2, []float64{0, 0}, []int32{-1}); err == nil {
		t.Error("label -1 accepted")
	}
	if _, _, _, _, err := SoftmaxCrossEntropy(2, 2, []float64{0, 0, 0}, []int32{0, 1}); err == nil {
		t.Error("short logits accepted")
	}
	if _, _, _, _, err := SoftmaxCrossEntropy(2, 2, []float64{0, 0, 0, 0}, []int32{0}); err == nil {
		t.Error("short labels accepted")
	}
}

func TestSoftmaxCrossEntropyGolden(t *testing.T) {
	// cross_entropy_smoothed.json: torch's label_smoothing=eps, its own cases
	// (the LabelSmoothing parameter; 0 where absent).
	cases := append(loadFixture(t, "cross_entropy.json"), loadFixture(t, "cross_entropy_smoothed.json")...)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			batch, classes, eps := c.int(t, "Batch"), c.int(t, "Classes"), c.Params["LabelSmoothing"]
			loss, d, pred, correct, err := SoftmaxCrossEntropySmoothed(batch, classes, c.data(t, "logits"), c.int32s(t, "labels"), eps)
			if err != nil {
				t.Fatal(err)
			}
			worst := compare(t, "loss", []float64{loss}, []float64{c.float(t, "Loss")}, goldenTol)
			worst = max(worst, compare(t, "dlogits", d, c.data(t, "dlogits"), goldenTol))
			if want := c.int32s(t, "predicted"); !slices.Equal(pred, want) {
				t.Errorf("predicted %v, torch argmax %v", pred, want)
			}
			if want := c.int(t, "Correct"); correct != want {
				t.Errorf("correct %d, want %d", correct, want)
			}
			t.Logf("eps %v: worst rel err vs torch %.2g (tol %.0g)", eps, worst, goldenTol)
		})
	}
}

func TestSoftmaxCrossEntropySmoothedHand(t *testing.T) {
	// Logits (0, ln 3), label 1, eps 0.2: softmax (1/4, 3/4), target
	// (0.8 onehot + 0.1) = (0.1, 0.9), loss -0.1 ln(1/4) - 0.9 ln(3/4)
	// (= 0.8 (-ln 3/4) + 0.2 mean(-ln 1/4, -ln 3/4)), dlogits softmax - target.
	loss, d, pred, correct, err := SoftmaxCrossEntropySmoothed(1, 2, []float64{0, math.Log(3)}, []int32{1}, 0.2)
	if err != nil {
		t.Fatal(err)
	}
	if want := -0.1*math.Log(0.25) - 0.9*math.Log(0.75); relErr(loss, want) > 1e-15 {
		t.Errorf("loss = %v, want %v", loss, want)
	}
	compare(t, "dlogits", d, []float64{0.15, -0.15}, 1e-15)
	if !slices.Equal(pred, []int32{1}) || correct != 1 {
		t.Errorf("predicted %v correct %d, want [1] and 1", pred, correct)
	}
}

// TestSoftmaxCrossEntropySmoothedZero: eps = 0 is SoftmaxCrossEntropy bit for bit.
func TestSoftmaxCrossEntropySmoothedZero(t *testing.T) {
	const batch, classes = 5, 9
	logits := randSlice(newRand(602), batch*classes)
	labels := []int32{0, 8, 3, 3, 7}
	l0, d0, p0, c0, err := SoftmaxCrossEntropy(batch, classes, logits, labels)
	if err != nil {
		t.Fatal(err)
	}
	l1, d1, p1, c1, err := SoftmaxCrossEntropySmoothed(batch, classes, logits, labels, 0)
	if err != nil {
		t.Fatal(err)
	}
	if l0 != l1 || !slices.Equal(d0, d1) || !slices.Equal(p0, p1) || c0 != c1 {
		t.Errorf("eps 0 differs from the plain loss: %v vs %v", l1, l0)
	}
}

func TestSoftmaxCrossEntropySmoothedFiniteDifferences(t *testing.T) {
	r := newRand(601)
	for _, c := range []struct {
		batch, classes int
		eps            float64
	}{{1, 5, 0.1}, {3, 13, 0.1}, {7, 3, 0.3}, {3, 11, 1}} {
		logits := randSlice(r, c.batch*c.classes)
		for i := range logits {
			logits[i] *= 3
		}
		labels := make([]int32, c.batch)
		for i := range labels {
			labels[i] = int32(r.IntN(c.classes))
		}
		_, d, _, _, err := SoftmaxCrossEntropySmoothed(c.batch, c.classes, logits, labels, c.eps)
		if err != nil {
			t.Fatal(err)
		}
		checkFD(t, fmt.Sprintf("%dx%d eps %v dlogits", c.batch, c.classes, c.eps), logits, []float64{1}, d, func(v []float64) []float64 {
			loss, _, _, _, err := SoftmaxCrossEntropySmoothed(c.batch, c.classes, v, labels, c.eps)
			if err != nil {
				t.Fatal(err)
			}
			return []float64{loss}
		})
	}
}

func TestSoftmaxCrossEntropySmoothedRejectsBadEps(t *testing.T) {
	for _, eps := range []float64{-0.1, 1.5, math.NaN(), math.Inf(1)} {
		if _, _, _, _, err := SoftmaxCrossEntropySmoothed(1, 2, []float64{0, 0}, []int32{0}, eps); err == nil {
			t.Errorf("label smoothing %v accepted", eps)
		}
	}
}
