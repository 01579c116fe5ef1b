package layers

import (
	"fmt"
	"math"

	"vktrain/vk"
)

// LossStats holds, on the device, the running totals of the softmax cross-entropy
// recorded by SoftmaxCrossEntropy, so that a stream recorded once accumulates
// them on every submit and the host reads them every K steps without an extra
// submission. It also holds per-sample scratch: the loss and predicted class of
// each row of the last batch.
//
// Stats buffer layout (LossStatsWords uint32 words; floats as their IEEE bits):
//
//	0 LossSum      float32  sum of the batch-mean losses since the last reset
//	1 LossComp     float32  Kahan compensation of LossSum (subtract it)
//	2 Steps        uint32   batches accumulated
//	3 Samples      uint32   rows accumulated
//	4 Correct      uint32   rows whose argmax equals the label
//	5 BatchLoss    float32  mean loss of the last batch
//	6 BatchCorrect uint32   correct rows of the last batch
//	7 BatchSize    uint32   rows of the last batch
//
// The per-sample buffers hold MaxBatch float32 losses and MaxBatch uint32
// predicted classes.
type LossStats struct {
	Name     string
	MaxBatch int
	stats    *vk.Buffer
	losses   *vk.Buffer // per-row loss of the last batch, float32
	pred     *vk.Buffer // per-row argmax of the last batch, uint32
}

// Word indices of the LossStats buffer.
const (
	LossSumWord      = 0
	LossCompWord     = 1
	LossStepsWord    = 2
	LossSamplesWord  = 3
	LossCorrectWord  = 4
	LossBatchWord    = 5
	LossBatchCorWord = 6
	LossBatchNWord   = 7
	LossStatsWords   = 8
)

// LossTotals are the LossStats words as read by the host.
type LossTotals struct {
	LossSum      float64 // sum of batch-mean losses since the reset
	Steps        int     // batches since the reset
	Samples      int     // rows since the reset
	Correct      int     // correctly classified rows since the reset
	BatchLoss    float64 // mean loss of the last batch
	BatchCorrect int     // correct rows of the last batch
	BatchSize    int     // rows of the last batch
}

// MeanLoss is the mean of the batch losses since the reset (0 before any step).
func (t LossTotals) MeanLoss() float64 {
	if t.Steps == 0 {
		return 0
	}
	return t.LossSum / float64(t.Steps)
}

// Accuracy is the fraction of rows classified correctly since the reset.
func (t LossTotals) Accuracy() float64 {
	if t.Samples == 0 {
		return 0
	}
	return float64(t.Correct) / float64(t.Samples)
}

// NewLossStats allocates zeroed loss statistics for batches of up to maxBatch rows.
func (r *Runtime) NewLossStats(name string, maxBatch int) (*LossStats, error) {
	if maxBatch <= 0 {
		return nil, fmt.Errorf("loss stats %q: max batch %d must be positive", name, maxBatch)
	}
	l := &LossStats{Name: name, MaxBatch: maxBatch}
	var err error
	if l.stats, err = r.Dev.NewHostBuffer(4*LossStatsWords, name); err != nil {
		return nil, err
	}
	if l.losses, err = r.Dev.NewHostBuffer(int64(4*maxBatch), name+".losses"); err != nil {
		l.Free()
		return nil, err
	}
	if l.pred, err = r.Dev.NewHostBuffer(int64(4*maxBatch), name+".predicted"); err != nil {
		l.Free()
		return nil, err
	}
	if err := l.Reset(); err != nil {
		l.Free()
		return nil, err
	}
	return l, nil
}

// Reset zeroes the totals from the host. It must not race with a submission
// that records into them.
func (l *LossStats) Reset() error {
	return l.stats.WriteUint32(0, make([]uint32, LossStatsWords))
}

// RecordReset records zeroing the totals into s (e.g. at the start of an
// evaluation stream).
func (l *LossStats) RecordReset(s *vk.Stream) error {
	return s.Fill(l.stats.Slice(0, 4*LossStatsWords), 0)
}

// Read returns the totals. Call it between submissions (after Wait).
func (l *LossStats) Read() (LossTotals, error) {
	var w [LossStatsWords]uint32
	if err := l.stats.ReadUint32(0, w[:]); err != nil {
		return LossTotals{}, err
	}
	f := func(i int) float64 { return float64(math.Float32frombits(w[i])) }
	return LossTotals{
		LossSum:      f(LossSumWord) - f(LossCompWord),
		Steps:        int(w[LossStepsWord]),
		Samples:      int(w[LossSamplesWord]),
		Correct:      int(w[LossCorrectWord]),
		BatchLoss:    f(LossBatchWord),
		BatchCorrect: int(w[LossBatchCorWord]),
		BatchSize:    int(w[LossBatchNWord]),
	}, nil
}

// Predicted reads the argmax of each of the last batch's n rows.
func (l *LossStats) Predicted(n int) ([]uint32, error) {
	if n < 0 || n > l.MaxBatch {
		return nil, fmt.Errorf("loss stats %q: %d rows outside [0, %d]", l.Name, n, l.MaxBatch)
	}
	v := make([]uint32, n)
	return v, l.pred.ReadUint32(0, v)
}

// SampleLosses reads the loss of each of the last batch's n rows.
func (l *LossStats) SampleLosses(n int) ([]float32, error) {
	if n < 0 || n > l.MaxBatch {
		return nil, fmt.Errorf("loss stats %q: %d rows outside [0, %d]", l.Name, n, l.MaxBatch)
	}
	v := make([]float32, n)
	return v, l.losses.ReadFloat32(0, v)
}

// Range is the stats words as a kernel binding.
func (l *LossStats) Range() vk.Range { return l.stats.Whole() }

// Free releases the buffers.
func (l *LossStats) Free() {
	if l == nil {
		return
	}
	l.stats.Free()
	l.losses.Free()
	l.pred.Free()
}

// xentWideClasses is the class count from which a workgroup, rather than one
// invocation, handles each row.
const xentWideClasses = 64

// SoftmaxCrossEntropy records the fused softmax cross-entropy of logits (N x
// classes, row-major) against labels (N uint32 words; each in [0, classes)),
// with mean reduction, as torch.nn.functional.cross_entropy:
//
//	dlogits[i, j] = (softmax(z_i)_j - [j == label_i]) / N
//
// computed stably through log-sum-exp. dlogits (same shape) may be logits itself.
// Each row's loss and argmax (first maximum wins) go to stats' per-sample
// buffers, and a one-workgroup reduction in a fixed order (deterministic, no
// atomics) accumulates the batch's mean loss and correct count into stats: in
// the same kernel when one workgroup holds the whole batch (fewer than 64
// classes and at most 64 rows), else in a second dispatch. One invocation
// handles a row of fewer than 64 classes, a workgroup of 64 a longer row. Labels are
// read from the device when the stream runs: the host rewrites them between
// submits. A label outside [0, classes) is not checked on the device and gives
// undefined results.
func (r *Runtime) SoftmaxCrossEntropy(s *vk.Stream, logits *Tensor, labels vk.Range, dlogits *Tensor, stats *LossStats) error {
	return r.SoftmaxCrossEntropySmoothed(s, logits, labels, dlogits, stats, 0)
}

// SoftmaxCrossEntropySmoothed is SoftmaxCrossEntropy with label smoothing eps
// in [0, 1], as torch.nn.CrossEntropyLoss(label_smoothing=eps) with mean
// reduction: the target of row i is (1-eps) onehot(label_i) + eps/classes, so
//
//	loss_i = (1-eps) (-log p_i[label_i]) + eps mean_j(-log p_i[j])
//	dlogits[i, j] = (softmax(z_i)_j - (1-eps) [j == label_i] - eps/classes) / N
//
// The per-row and batch statistics hold the smoothed loss (what torch's
// loss.item() reports); the argmax and correct counts are unchanged. eps = 0
// runs the plain kernel variant, bit for bit SoftmaxCrossEntropy.
func (r *Runtime) SoftmaxCrossEntropySmoothed(s *vk.Stream, logits *Tensor, labels vk.Range, dlogits *Tensor, stats *LossStats, eps float64) error {
	if !(eps >= 0 && eps <= 1) { // NaN fails too
		return fmt.Errorf("cross-entropy: label smoothing %v outside [0, 1]", eps)
	}
	if logits == nil || dlogits == nil || stats == nil {
		return fmt.Errorf("cross-entropy: nil logits, gradient or stats")
	}
	if len(logits.Shape) != 2 {
		return fmt.Errorf("cross-entropy: logits %q must be N x classes, not %v", logits.Name, logits.Shape)
	}
	n, classes := logits.Shape[0], logits.Shape[1]
	if dlogits.Len() != logits.Len() {
		return fmt.Errorf("cross-entropy: gradient %q has %d elements, logits %q %d", dlogits.Name, dlogits.Len(), logits.Name, logits.Len())
	}
	if n > stats.MaxBatch {
		return fmt.Errorf("cross-entropy: batch %d exceeds loss stats %q's %d rows", n, stats.Name, stats.MaxBatch)
	}
	if labels.Buf == nil || labels.Size < int64(4*n) {
		return fmt.Errorf("cross-entropy: labels range of %d bytes holds fewer than %d uint32 labels", labels.Size, n)
	}
	if lr := logits.Range(); lr.Size > r.storageLimit {
		return fmt.Errorf("cross-entropy: logits %q of %d bytes exceed the device's storage range of %d bytes", logits.Name, lr.Size, r.storageLimit)
	}
	wide := classes >= xentWideClasses
	fused := !wide && n <= 64 // one workgroup holds the batch: it reduces too
	groups := r.groups1D(n, 64)
	if wide {
		groups = r.groups1D(n, 1)
	}
	spec := map[uint32]uint32{0: boolU32(wide), 1: boolU32(fused)}
	if eps != 0 {
		spec[2] = 1 // SMOOTH; eps = 0 keeps the plain variant's pipeline
	}
	// The smoothing weights, each rounded once from float64 (see xent.comp):
	// lw = 1-eps, uw = eps/C, tl = (1-eps+eps/C)/N, toff = eps/(C N).
	fn, fc := float64(n), float64(classes)
	pc := push(nil).u32(n, classes).f32(float32(1/fn), float32(1-eps), float32(eps/fc),
		float32((1-eps+eps/fc)/fn), float32(eps/(fc*fn)))
	if err := r.dispatch(s, "xent", spec, groups, pc, logits.Range(), labels, dlogits.Range(), stats.pred.Whole(), stats.losses.Whole(), stats.stats.Whole()); err != nil {
		return fmt.Errorf("cross-entropy of %q: %w", logits.Name, err)
	}
	if fused {
		return nil
	}
	if err := r.dispatch(s, "xent_reduce", nil, [3]uint32{1, 1, 1}, push(nil).u32(n), stats.losses.Whole(), stats.pred.Whole(), labels, stats.stats.Whole()); err != nil {
		return fmt.Errorf("cross-entropy of %q: %w", logits.Name, err)
	}
	return nil
}
