package ref

import (
	"fmt"
	"math"
)

// SoftmaxCrossEntropy computes the mean softmax cross-entropy of logits
// (batch x classes) against integer labels (length batch, each in
// [0, classes)), as torch.nn.functional.cross_entropy with mean
// reduction. Per row it uses the stable form
// loss_i = m + log(sum_j exp(z_j - m)) - z_label with m = max_j z_j.
//
// It also returns dlogits = (softmax(z) - onehot(label)) / batch, the
// gradient of the mean loss; predicted, the per-row argmax (first maximum
// wins ties); and correct, the number of rows where predicted == label.
func SoftmaxCrossEntropy(batch, classes int, logits []float64, labels []int32) (loss float64, dlogits []float64, predicted []int32, correct int, err error) {
	return SoftmaxCrossEntropySmoothed(batch, classes, logits, labels, 0)
}

// SoftmaxCrossEntropySmoothed is SoftmaxCrossEntropy with label smoothing eps
// in [0, 1], as torch.nn.CrossEntropyLoss(label_smoothing=eps) with mean
// reduction: the target of row i is (1-eps) onehot(label_i) + eps/classes, so
//
//	loss_i = (1-eps) (lse_i - z_label) + eps (lse_i - mean_j z_j)
//	       = (1-eps) (m - z_label) + eps (m - mean_j z_j) + log(sum_j exp(z_j - m))
//
// (lse the log-sum-exp; every term non-negative) and
// dlogits = (softmax(z) - (1-eps) onehot(label) - eps/classes) / batch.
// eps = 0 computes exactly what SoftmaxCrossEntropy always has.
func SoftmaxCrossEntropySmoothed(batch, classes int, logits []float64, labels []int32, eps float64) (loss float64, dlogits []float64, predicted []int32, correct int, err error) {
	if !(eps >= 0 && eps <= 1) {
		return 0, nil, nil, 0, fmt.Errorf("ref: cross-entropy label smoothing %v outside [0, 1]", eps)
	}
	if err := checkAtLeast("cross-entropy", 1, field{"batch", batch}, field{"classes", classes}); err != nil {
		return 0, nil, nil, 0, err
	}
	if err := checkLens(lenCheck{"cross-entropy logits", len(logits), batch * classes},
		lenCheck{"cross-entropy labels", len(labels), batch}); err != nil {
		return 0, nil, nil, 0, err
	}
	dlogits = make([]float64, len(logits))
	predicted = make([]int32, batch)
	for i := 0; i < batch; i++ {
		label := int(labels[i])
		if label < 0 || label >= classes {
			return 0, nil, nil, 0, fmt.Errorf("ref: cross-entropy label[%d] = %d outside [0, %d)", i, label, classes)
		}
		z := logits[i*classes : (i+1)*classes]
		best := 0
		for j, v := range z {
			if v > z[best] {
				best = j
			}
		}
		predicted[i] = int32(best)
		if best == label {
			correct++
		}
		m := z[best]
		sum := 0.0
		for _, v := range z {
			sum += math.Exp(v - m)
		}
		if eps == 0 {
			loss += m + math.Log(sum) - z[label]
		} else {
			dev := 0.0 // sum_j (m - z_j) = classes (m - mean z)
			for _, v := range z {
				dev += m - v
			}
			loss += (1-eps)*(m-z[label]) + eps*dev/float64(classes) + math.Log(sum)
		}
		g := dlogits[i*classes : (i+1)*classes]
		off := eps / float64(classes)
		for j, v := range z {
			g[j] = (math.Exp(v-m)/sum - off) / float64(batch)
		}
		g[label] -= (1 - eps) / float64(batch)
	}
	return loss / float64(batch), dlogits, predicted, correct, nil
}
