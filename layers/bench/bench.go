// Package bench benchmarks every kernel of a model's training step at the
// shapes the model uses, the whole step and inference, on one Vulkan device,
// with GPU timestamps; it measures the device's FMA and copy peaks to put each
// figure in proportion, and writes, reads and compares reports (Report, in the
// JSON format of testdata/schema.json, which torch_bench.py also writes).
//
// Kernels are the parts of the step that layers.Network records
// (Network.StepParts): each is recorded alone into its own stream, run once to
// warm up (pipelines compile at first dispatch), then repeated until a time
// budget or a count. The step itself is run the same way, and its per-dispatch
// timestamps are attributed to the parts, and so to layers.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/vk"
)

// Config is what to benchmark and how long.
type Config struct {
	Model     *nn.Model // the model (e.g. train.BuildModel(false))
	ImageSize int       // input height and width after preprocessing
	Resize    int       // preprocessing's resize before the center crop (0: ImageSize*8/7 as the training recipe)
	Batch     int       // training batch and inference throughput batch
	// Budget is the time spent repeating each kernel after its warm-up (at least
	// MinRuns runs); ignored when Count is set.
	Budget time.Duration
	Count  int // exact number of timed runs per kernel; 0: use Budget
	// Variants also times every variant of the kernels that have one (GEMM
	// texel and tiled; SGD follows the GEMM variant).
	Variants bool
	Filter   string // only kernels whose name contains one of these comma-separated substrings
	Seed     uint64 // parameter initialisation and input data
	// ConvAlgo is the algorithm of the convolutions it applies to (as
	// layers.NetworkConfig); --variants times the others too.
	ConvAlgo layers.ConvAlgo
	// Tune, when set, gives each network bench lays out its convolutions'
	// algorithms and its GEMM kernels per pass (a tuner's choices for that
	// network's configuration); the passes it decided are marked Tuned.
	Tune func(cfg layers.NetworkConfig) (Choices, error)
	// Log, when set, receives progress lines.
	Log func(format string, args ...any)
}

// MinRuns is the fewest timed runs per kernel under a time budget.
const MinRuns = 3

// maxRuns caps the timed runs per kernel under a time budget.
const maxRuns = 2000

type bencher struct {
	ctx context.Context
	cfg Config
	rt  *layers.Runtime
	dev *vk.Device
	// tuned are the training network's Tune choices (empty without).
	tuned Choices
}

// Choices are a tuner's picks for one network (layers.NetworkConfig's
// ConvChoices and GEMMChoices).
type Choices struct {
	Conv map[string][3]layers.ConvAlgo
	GEMM map[string][3]layers.GEMMVariant
}

func (b *bencher) logf(format string, args ...any) {
	if b.cfg.Log != nil {
		b.cfg.Log(format, args...)
	}
}

// repeat runs f (once to warm up, then Count times or until the budget) and
// returns the timed runs' durations.
func (b *bencher) repeat(f func() (time.Duration, error)) ([]time.Duration, error) {
	if _, err := f(); err != nil {
		return nil, err
	}
	var out []time.Duration
	start := time.Now()
	for {
		if err := b.ctx.Err(); err != nil {
			return nil, err
		}
		if b.cfg.Count > 0 {
			if len(out) >= b.cfg.Count {
				break
			}
		} else if len(out) >= maxRuns || (len(out) >= MinRuns && time.Since(start) >= b.cfg.Budget) {
			break
		}
		t, err := f()
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

type summary struct{ median, min, max time.Duration }

func stats(ts []time.Duration) summary {
	if len(ts) == 0 {
		return summary{}
	}
	s := slices.Clone(ts)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return summary{median: med, min: s[0], max: s[len(s)-1]}
}

func ms(d time.Duration) float64 { return d.Seconds() * 1e3 }

// Run benchmarks cfg.Model on rt's device (with rt's GEMM variant as the
// device's choice) and returns the report. version is vktrain's version.
func Run(ctx context.Context, rt *layers.Runtime, cfg Config, version string) (*Report, error) {
	if cfg.Model == nil {
		return nil, fmt.Errorf("bench: no model")
	}
	if cfg.ImageSize < 1 || cfg.Batch < 1 {
		return nil, fmt.Errorf("bench: image size %d and batch %d must be positive", cfg.ImageSize, cfg.Batch)
	}
	if cfg.Resize == 0 {
		cfg.Resize = (cfg.ImageSize*8 + 6) / 7
	}
	if cfg.Count <= 0 && cfg.Budget <= 0 {
		cfg.Budget = 2 * time.Second
	}
	b := &bencher{ctx: ctx, cfg: cfg, rt: rt, dev: rt.Dev}
	info := rt.Dev.Info
	rep := &Report{
		Schema: SchemaID, Tool: "vktrain", Version: version, Revision: Revision(), Time: time.Now().UTC().Format(time.RFC3339),
		Device: Device{Name: info.Name, Type: info.Type.String(), Driver: strings.TrimSpace(info.DriverName + " " + info.DriverInfo), APIVersion: info.APIVersion},
		Config: RunSpec{ImageSize: cfg.ImageSize, Batch: cfg.Batch, BudgetS: cfg.Budget.Seconds(), Count: cfg.Count,
			Variants: cfg.Variants, Filter: cfg.Filter, GEMMVariant: rt.Variant.String(), ConvAlgo: cfg.ConvAlgo.String()},
		Kernels: []Kernel{}, Skipped: []Skip{}, Step: Step{Layers: []Layer{}},
	}
	b.logf("measuring the device's peaks")
	var err error
	if rep.Peaks, err = b.measurePeaks(); err != nil {
		return nil, err
	}
	b.logf("peaks: %.1f GFLOP/s FMA, %.1f GB/s copy", rep.Peaks.FMAGFLOPS, rep.Peaks.CopyGBS)
	sd, err := cfg.Model.InitStateDict(cfg.Seed)
	if err != nil {
		return nil, fmt.Errorf("bench: initialising parameters: %w", err)
	}
	if err := b.training(rep, sd); err != nil {
		return nil, err
	}
	if err := b.inference(rep, sd); err != nil {
		return nil, err
	}
	return rep, nil
}

func (b *bencher) input() layers.PreprocessParams {
	return layers.PreprocessParams{SrcH: 32, SrcW: 32, Resize: b.cfg.Resize, Crop: b.cfg.ImageSize,
		Mean: [3]float64{0.485, 0.456, 0.406}, Std: [3]float64{0.229, 0.224, 0.225}}
}

// randomBatch is a batch of random images and labels.
func randomBatch(rng *rand.Rand, batch, recordBytes, classes int, step uint64) layers.Batch {
	bt := layers.Batch{Records: make([]byte, batch*recordBytes), Labels: make([]uint8, batch), Step: step}
	for i := range bt.Records {
		bt.Records[i] = uint8(rng.IntN(256))
	}
	for i := range bt.Labels {
		bt.Labels[i] = uint8(rng.IntN(classes))
	}
	return bt
}

// Revision is vktrain's git revision: the build's vcs.revision, else `git
// rev-parse HEAD` in the working directory, else "unknown".
func Revision() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && s.Value != "" {
				return s.Value
			}
		}
	}
	if out, err := exec.Command("git", "rev-parse", "HEAD").Output(); err == nil {
		if rev := strings.TrimSpace(string(out)); rev != "" {
			return rev
		}
	}
	return "unknown"
}

// Version is vktrain's module version from the build information ("devel"
// for a build from a working tree).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
