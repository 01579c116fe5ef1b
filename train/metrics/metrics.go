// Package metrics defines the metrics.jsonl file of a vktrain run directory:
// its record types, an appending Writer and a tolerant reader.
//
// A metrics file holds one JSON object per line. Every object has a "kind"
// field that names its record type:
//
//   - "config": the run's configuration (Config), written once at the start
//     (and again when a run is resumed);
//   - "step": a progress record written every few mini-batches (Step);
//   - "epoch": the summary written at the end of each epoch (Epoch).
//
// Conventions: epochs are numbered from 1; Step.Step is the global mini-batch
// count since the start of the run (the first mini-batch is step 1);
// accuracies are fractions in [0, 1], not percents; losses are mean
// cross-entropy per image. A float that is NaN or infinite (a diverged loss,
// the accuracy of a class with no test images) is written as JSON null and
// read back as NaN. Times are RFC 3339 strings.
//
// Readers ignore unknown fields, so fields can be added without breaking old
// readers; Read skips lines it cannot use (a truncated last line of a file
// that is still being written, malformed JSON, unknown kinds) with a warning.
package metrics

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"
)

// SchemaVersion is the version of the metrics.jsonl schema that this package
// writes into the "schema" field of config records.
const SchemaVersion = 1

// FileName is the conventional name of the metrics file in a run directory.
const FileName = "metrics.jsonl"

// Record kinds: the values of the "kind" field.
const (
	// KindConfig marks a Config record.
	KindConfig = "config"
	// KindStep marks a Step record.
	KindStep = "step"
	// KindEpoch marks an Epoch record.
	KindEpoch = "epoch"
)

// Config is the "config" record: the settings a run was started with.
type Config struct {
	// Schema is the metrics schema version; the Writer fills in
	// SchemaVersion when it is zero.
	Schema int
	// Model names the network, e.g. "alexnet".
	Model string
	// Pretrained tells whether training started from pretrained weights.
	Pretrained bool
	// Dataset names the data set, e.g. "cifar10" or "synthetic".
	Dataset string
	// ImageSize is the side in pixels of the square network input.
	ImageSize int
	// Batch is the mini-batch size.
	Batch int
	// Epochs is the number of epochs the run was asked for.
	Epochs int
	// LR is the learning rate.
	LR float64
	// Momentum is the SGD momentum.
	Momentum float64
	// WeightDecay is the L2 weight decay (0 = none).
	WeightDecay float64
	// Seed is the random seed.
	Seed int64
	// Device names the Vulkan device, e.g. "NVIDIA H100 80GB HBM3".
	Device string
	// Classes lists the class names in label order.
	Classes []string
	// TrainImages and TestImages count the images of each split.
	TrainImages, TestImages int
	// StepsPerEpoch is the number of mini-batches in one epoch; figures
	// use it to place steps on an epoch axis.
	StepsPerEpoch int
	// LogEvery is the number of mini-batches between step records, which is
	// also the window of Step.RunningLoss.
	LogEvery int
	// Time is when the run (or the resumed run) started.
	Time time.Time
	// Extra holds free-form settings that have no field of their own.
	Extra map[string]string
}

// Step is the "step" record: training progress logged every few mini-batches.
type Step struct {
	// Epoch is the current epoch, from 1.
	Epoch int
	// Step is the global mini-batch count since the start of the run.
	Step int
	// Images is the number of training images processed since the start of
	// the run.
	Images int64
	// RunningLoss is the mean training loss over the last LogEvery
	// mini-batches.
	RunningLoss float64
	// TrainAcc is the running training accuracy of the current epoch, a
	// fraction in [0, 1].
	TrainAcc float64
	// LR is the learning rate in use (0 = not recorded).
	LR float64
	// ImagesPerS is the recent training throughput in images per second.
	ImagesPerS float64
	// Time is when the record was written.
	Time time.Time
}

// Epoch is the "epoch" record: the summary of one finished epoch.
type Epoch struct {
	// Epoch is the epoch number, from 1.
	Epoch int
	// Step is the global mini-batch count at the end of the epoch.
	Step int
	// TrainLoss is the mean training loss over the epoch.
	TrainLoss float64
	// TrainAcc is the training accuracy over the epoch, in [0, 1].
	TrainAcc float64
	// TestLoss is the mean loss on the test set.
	TestLoss float64
	// TestAcc is the accuracy on the test set, in [0, 1].
	TestAcc float64
	// PerClassAcc is the test accuracy of each class, in [0, 1]; NaN for a
	// class without test images.
	PerClassAcc []float64
	// Confusion counts test images: Confusion[true][predicted].
	Confusion [][]int64
	// EpochSeconds is the wall time of the epoch (training and evaluation).
	EpochSeconds float64
	// ImagesPerS is the training throughput of the epoch in images per
	// second.
	ImagesPerS float64
	// Time is when the record was written.
	Time time.Time
}

// jfloat is a float64 on the wire: NaN and ±Inf are written as null (JSON has
// no such numbers) and null is read back as NaN.
type jfloat float64

// MarshalJSON implements json.Marshaler.
func (f jfloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (f *jfloat) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*f = jfloat(math.NaN())
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = jfloat(v)
	return nil
}

func toJ(v []float64) []jfloat {
	if v == nil {
		return nil
	}
	out := make([]jfloat, len(v))
	for i, x := range v {
		out[i] = jfloat(x)
	}
	return out
}

func fromJ(v []jfloat) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// The wire forms: the JSON layout of each record, "kind" first.

type configWire struct {
	Kind          string            `json:"kind"`
	Schema        int               `json:"schema"`
	Model         string            `json:"model"`
	Pretrained    bool              `json:"pretrained"`
	Dataset       string            `json:"dataset,omitempty"`
	ImageSize     int               `json:"image_size"`
	Batch         int               `json:"batch"`
	Epochs        int               `json:"epochs"`
	LR            jfloat            `json:"lr"`
	Momentum      jfloat            `json:"momentum"`
	WeightDecay   jfloat            `json:"weight_decay"`
	Seed          int64             `json:"seed"`
	Device        string            `json:"device"`
	Classes       []string          `json:"classes"`
	TrainImages   int               `json:"train_images"`
	TestImages    int               `json:"test_images"`
	StepsPerEpoch int               `json:"steps_per_epoch"`
	LogEvery      int               `json:"log_every"`
	Time          time.Time         `json:"time"`
	Extra         map[string]string `json:"extra,omitempty"`
}

type stepWire struct {
	Kind        string    `json:"kind"`
	Epoch       int       `json:"epoch"`
	Step        int       `json:"step"`
	Images      int64     `json:"images"`
	RunningLoss jfloat    `json:"running_loss"`
	TrainAcc    jfloat    `json:"train_acc"`
	LR          jfloat    `json:"lr,omitempty"`
	ImagesPerS  jfloat    `json:"images_per_s"`
	Time        time.Time `json:"time"`
}

type epochWire struct {
	Kind         string    `json:"kind"`
	Epoch        int       `json:"epoch"`
	Step         int       `json:"step"`
	TrainLoss    jfloat    `json:"train_loss"`
	TrainAcc     jfloat    `json:"train_acc"`
	TestLoss     jfloat    `json:"test_loss"`
	TestAcc      jfloat    `json:"test_acc"`
	PerClassAcc  []jfloat  `json:"per_class_acc"`
	Confusion    [][]int64 `json:"confusion"`
	EpochSeconds jfloat    `json:"epoch_seconds"`
	ImagesPerS   jfloat    `json:"images_per_s"`
	Time         time.Time `json:"time"`
}

// MarshalJSON implements json.Marshaler: the record as one JSON object with
// "kind": "config".
func (c Config) MarshalJSON() ([]byte, error) {
	w := configWire{
		Kind: KindConfig, Schema: c.Schema, Model: c.Model, Pretrained: c.Pretrained,
		Dataset: c.Dataset, ImageSize: c.ImageSize, Batch: c.Batch, Epochs: c.Epochs,
		LR: jfloat(c.LR), Momentum: jfloat(c.Momentum), WeightDecay: jfloat(c.WeightDecay),
		Seed: c.Seed, Device: c.Device, Classes: c.Classes,
		TrainImages: c.TrainImages, TestImages: c.TestImages,
		StepsPerEpoch: c.StepsPerEpoch, LogEvery: c.LogEvery, Time: c.Time, Extra: c.Extra,
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler. It ignores the "kind" field and
// unknown fields.
func (c *Config) UnmarshalJSON(b []byte) error {
	var w configWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*c = Config{
		Schema: w.Schema, Model: w.Model, Pretrained: w.Pretrained, Dataset: w.Dataset,
		ImageSize: w.ImageSize, Batch: w.Batch, Epochs: w.Epochs,
		LR: float64(w.LR), Momentum: float64(w.Momentum), WeightDecay: float64(w.WeightDecay),
		Seed: w.Seed, Device: w.Device, Classes: w.Classes,
		TrainImages: w.TrainImages, TestImages: w.TestImages,
		StepsPerEpoch: w.StepsPerEpoch, LogEvery: w.LogEvery, Time: w.Time, Extra: w.Extra,
	}
	return nil
}

// MarshalJSON implements json.Marshaler: the record as one JSON object with
// "kind": "step".
func (s Step) MarshalJSON() ([]byte, error) {
	return json.Marshal(stepWire{
		Kind: KindStep, Epoch: s.Epoch, Step: s.Step, Images: s.Images,
		RunningLoss: jfloat(s.RunningLoss), TrainAcc: jfloat(s.TrainAcc), LR: jfloat(s.LR),
		ImagesPerS: jfloat(s.ImagesPerS), Time: s.Time,
	})
}

// UnmarshalJSON implements json.Unmarshaler. It ignores the "kind" field and
// unknown fields.
func (s *Step) UnmarshalJSON(b []byte) error {
	var w stepWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Step{
		Epoch: w.Epoch, Step: w.Step, Images: w.Images,
		RunningLoss: float64(w.RunningLoss), TrainAcc: float64(w.TrainAcc), LR: float64(w.LR),
		ImagesPerS: float64(w.ImagesPerS), Time: w.Time,
	}
	return nil
}

// MarshalJSON implements json.Marshaler: the record as one JSON object with
// "kind": "epoch".
func (e Epoch) MarshalJSON() ([]byte, error) {
	return json.Marshal(epochWire{
		Kind: KindEpoch, Epoch: e.Epoch, Step: e.Step,
		TrainLoss: jfloat(e.TrainLoss), TrainAcc: jfloat(e.TrainAcc),
		TestLoss: jfloat(e.TestLoss), TestAcc: jfloat(e.TestAcc),
		PerClassAcc: toJ(e.PerClassAcc), Confusion: e.Confusion,
		EpochSeconds: jfloat(e.EpochSeconds), ImagesPerS: jfloat(e.ImagesPerS), Time: e.Time,
	})
}

// UnmarshalJSON implements json.Unmarshaler. It ignores the "kind" field and
// unknown fields.
func (e *Epoch) UnmarshalJSON(b []byte) error {
	var w epochWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*e = Epoch{
		Epoch: w.Epoch, Step: w.Step,
		TrainLoss: float64(w.TrainLoss), TrainAcc: float64(w.TrainAcc),
		TestLoss: float64(w.TestLoss), TestAcc: float64(w.TestAcc),
		PerClassAcc: fromJ(w.PerClassAcc), Confusion: w.Confusion,
		EpochSeconds: float64(w.EpochSeconds), ImagesPerS: float64(w.ImagesPerS), Time: w.Time,
	}
	return nil
}

// Validate reports whether the per-class accuracies and the confusion
// matrix of e have the shapes that n classes call for: n values, and n rows
// of n non-negative counts. A nil PerClassAcc or Confusion is valid (not
// recorded).
func (e *Epoch) Validate(n int) error {
	if e.PerClassAcc != nil && len(e.PerClassAcc) != n {
		return fmt.Errorf("epoch %d: %d per-class accuracies for %d classes", e.Epoch, len(e.PerClassAcc), n)
	}
	if e.Confusion == nil {
		return nil
	}
	if len(e.Confusion) != n {
		return fmt.Errorf("epoch %d: confusion matrix has %d rows for %d classes", e.Epoch, len(e.Confusion), n)
	}
	for i, row := range e.Confusion {
		if len(row) != n {
			return fmt.Errorf("epoch %d: confusion row %d has %d columns for %d classes", e.Epoch, i, len(row), n)
		}
		for j, v := range row {
			if v < 0 {
				return fmt.Errorf("epoch %d: confusion[%d][%d] = %d is negative", e.Epoch, i, j, v)
			}
		}
	}
	return nil
}
