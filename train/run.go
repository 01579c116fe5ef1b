package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/train/cifar10"
	"vktrain/train/metrics"
	"vktrain/train/tune"
	"vktrain/viz"
	"vktrain/vk"
)

// Options are what the caller hands Run besides the Config.
type Options struct {
	RunDir   string       // where config, metrics, checkpoint and figures go
	Resume   bool         // continue the run in RunDir from its checkpoint
	Log      *slog.Logger // nil discards
	Out      io.Writer    // the reference's printed lines (running loss, accuracies); nil: none
	Progress io.Writer    // progress bars (a terminal); nil: none
	// LogProgress, when Progress is nil, reports each epoch's progress as plain
	// log lines through Log (every 30 s or tenth of the epoch), for runs whose
	// output goes to a file or a CI log rather than a terminal.
	LogProgress bool
	Validate    bool // the Vulkan validation layer
	// StopAfterSteps ends the run (with a checkpoint, as on SIGINT) once this many
	// steps are done in total; 0 means no limit. Tests use it to interrupt.
	StopAfterSteps int
}

// Outcome is the end of a run.
type Outcome struct {
	Epochs      []metrics.Epoch // the epochs this call ran
	Interrupted bool            // stopped early (SIGINT or StopAfterSteps), checkpoint written
	Checkpoint  string
	Figures     []string
}

// ErrInterrupted is returned (wrapped) when training stopped at a signal.
var ErrInterrupted = errors.New("training interrupted")

// Data is a training and a test set.
type Data struct {
	Name        string
	Train, Test *cifar10.Dataset
	Classes     []string
}

// LoadData opens the data set cfg asks for.
func LoadData(ctx context.Context, cfg Config, log *slog.Logger, progress func(done, total int64)) (*Data, error) {
	d := &Data{}
	names := cifar10.ClassNames()
	if cfg.Data == DataSynthetic {
		d.Name = DataSynthetic
		names = cifar10.SyntheticClassNames()
		d.Train = cifar10.Synthetic(max(cfg.TrainLimit, 2000), cfg.Seed)
		d.Test = cifar10.Synthetic(max(cfg.TestLimit, 500), cfg.Seed+1_000_003)
	} else {
		d.Name = "cifar10"
		cache, err := cfg.cacheDir()
		if err != nil {
			return nil, err
		}
		opts := cifar10.Options{URL: cfg.DataURL, Logger: log, Progress: progress}
		if d.Train, err = cifar10.Open(ctx, cfg.Data, cache, true, opts); err != nil {
			return nil, err
		}
		if d.Test, err = cifar10.Open(ctx, cfg.Data, cache, false, opts); err != nil {
			return nil, err
		}
	}
	d.Classes = names[:]
	var err error
	if d.Train, err = limit(d.Train, cfg.TrainLimit); err != nil {
		return nil, err
	}
	if d.Test, err = limit(d.Test, cfg.TestLimit); err != nil {
		return nil, err
	}
	return d, nil
}

func limit(d *cifar10.Dataset, n int) (*cifar10.Dataset, error) {
	if n <= 0 || n >= d.Len() {
		return d, nil
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return d.Subset(idx)
}

// session is an open device with the experiment's network on it.
type session struct {
	dev *vk.Device
	rt  *layers.Runtime
	net *layers.Network
	// choices are the tuned convolution algorithms (nil when not tuned).
	choices map[string][3]layers.ConvAlgo
	// gemmChoices are the tuned GEMM kernels (nil when not tuned).
	gemmChoices map[string][3]layers.GEMMVariant
}

func (s *session) close() {
	if s.net != nil {
		s.net.Close()
	}
	if s.rt != nil {
		s.rt.Close()
	}
	if s.dev != nil {
		s.dev.Close()
	}
}

// inputParams is the preprocessing for cfg (augmentation only when training).
func inputParams(cfg Config, train bool) layers.PreprocessParams {
	p := layers.PreprocessParams{SrcH: 32, SrcW: 32, Resize: ResizeFor(cfg.ImageSize), Crop: cfg.ImageSize,
		Mean: [3]float64{0.485, 0.456, 0.406}, Std: [3]float64{0.229, 0.224, 0.225}}
	if train && cfg.Augment {
		p.Pad, p.Flip = 4*cfg.ImageSize/32, true
	}
	return p
}

// openSession opens cfg's device and lays m out on it (for training or
// evaluation), its convolutions' algorithms chosen by chooseConv; tuning's
// progress goes to progress (nil: none).
func openSession(ctx context.Context, m *nn.Model, cfg Config, train, validate bool, log *slog.Logger, progress io.Writer) (*session, error) {
	s := &session{}
	var err error
	if s.dev, err = vk.Open(vk.Options{Device: cfg.Device, Validate: validate, Logger: log}); err != nil {
		return nil, err
	}
	s.rt = layers.NewRuntime(s.dev)
	ncfg := NetworkConfigFor(cfg, train)
	if err := chooseConv(ctx, s, m, cfg, &ncfg, log, progress); err != nil {
		s.close()
		return nil, err
	}
	var err2 error
	if s.net, err2 = layers.NewNetwork(s.rt, m, ncfg); err2 != nil {
		s.close()
		return nil, err2
	}
	s.choices, s.gemmChoices = ncfg.ConvChoices, ncfg.GEMMChoices
	return s, nil
}

// optimizerName is cfg's optimizer as the metrics record it.
func optimizerName(cfg Config) string {
	if cfg.Optimizer == "" {
		return OptimizerSGD
	}
	return cfg.Optimizer
}

// dataOrderName is cfg's data order as the metrics record it.
func dataOrderName(cfg Config) string {
	if cfg.DataOrder == "" {
		return OrderShuffled
	}
	return cfg.DataOrder
}

// dropoutName is cfg's dropout probability as the metrics record it:
// "default" where the model keeps its own.
func dropoutName(cfg Config) string {
	if cfg.Dropout == nil {
		return "default"
	}
	return fmt.Sprint(*cfg.Dropout)
}

// NetworkConfigFor is the network layout of cfg's recipe, for training or
// evaluation (its ConvAlgo and ConvChoices left to the caller).
func NetworkConfigFor(cfg Config, train bool) layers.NetworkConfig {
	return layers.NetworkConfig{
		Batch: cfg.Batch, Input: inputParams(cfg, train), Train: train, Seed: cfg.Seed,
		SGD:  layers.SGDConfig{LR: cfg.LR, Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay},
		Adam: cfg.adam(), ParamGroups: cfg.paramGroups(), LabelSmoothing: cfg.LabelSmoothing,
	}
}

// chooseConv sets ncfg's convolution algorithms as cfg.Conv says: one
// algorithm for all, or for "auto" the run's own choices when it has them
// (a resumed training run), else the tuner's (cfg.Tune).
func chooseConv(ctx context.Context, s *session, m *nn.Model, cfg Config, ncfg *layers.NetworkConfig, log *slog.Logger, progress io.Writer) error {
	if cfg.Conv != ConvAuto {
		algo, err := layers.ParseConvAlgo(cfg.Conv)
		ncfg.ConvAlgo = algo
		return err
	}
	ncfg.ConvAlgo = layers.ConvWinograd4 // the built-in choice where nothing is tuned
	if ncfg.Train && len(cfg.ConvChoices) > 0 {
		choices, err := ParseConvChoices(cfg.ConvChoices)
		if err != nil {
			return err
		}
		ncfg.ConvChoices = choices
		ncfg.GEMMChoices, err = ParseGEMMChoices(cfg.GEMMChoices)
		return err
	}
	mode, err := tune.ParseMode(cfg.Tune)
	if err != nil || mode == tune.Off {
		return err
	}
	cache, err := tune.OpenCache(cfg.CacheDir, s.dev, log)
	if err != nil {
		return err
	}
	start := time.Now()
	bar := TuneProgress(progress)
	res, err := tune.Choose(ctx, s.rt, m, *ncfg, cache, tune.Options{Mode: mode, Log: log, Progress: bar})
	if err != nil && ctx.Err() != nil {
		// Nothing trained yet, so no checkpoint: not ErrInterrupted, which
		// promises one to resume from.
		return fmt.Errorf("interrupted while timing the convolutions, before training started: %w", err)
	}
	if err != nil {
		return err
	}
	log.Info("convolution algorithms", "tune", mode, "cache", cache.Path(), "seconds", time.Since(start).Round(time.Millisecond).Seconds(),
		"choices", FormatConvChoices(res.Choices), "gemm", FormatGEMMChoices(res.GEMM))
	ncfg.ConvChoices, ncfg.GEMMChoices = res.Choices, res.GEMM
	return nil
}

// ParseConvChoices reads Config.ConvChoices.
func ParseConvChoices(in map[string][3]string) (map[string][3]layers.ConvAlgo, error) {
	out, err := parseChoices("conv choices", in, layers.ParseConvAlgo)
	if out == nil && err == nil {
		out = map[string][3]layers.ConvAlgo{}
	}
	return out, err
}

// FormatConvChoices is ParseConvChoices's inverse.
func FormatConvChoices(in map[string][3]layers.ConvAlgo) map[string][3]string {
	return formatChoices(in)
}

// ParseGEMMChoices reads Config.GEMMChoices (nil for none).
func ParseGEMMChoices(in map[string][3]string) (map[string][3]layers.GEMMVariant, error) {
	return parseChoices("gemm choices", in, layers.ParseGEMMVariant)
}

// FormatGEMMChoices is ParseGEMMChoices's inverse.
func FormatGEMMChoices(in map[string][3]layers.GEMMVariant) map[string][3]string {
	return formatChoices(in)
}

// parseChoices reads per-layer, per-pass choices by name with parse (nil
// for none); an error names what, the layer and the bad name.
func parseChoices[T any](what string, in map[string][3]string, parse func(string) (T, error)) (map[string][3]T, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(map[string][3]T, len(in))
	for layer, names := range in {
		var c [3]T
		for i, name := range names {
			v, err := parse(name)
			if err != nil {
				return nil, fmt.Errorf("%s of %s: %w", what, layer, err)
			}
			c[i] = v
		}
		out[layer] = c
	}
	return out, nil
}

// formatChoices is parseChoices's inverse (nil for none).
func formatChoices[T fmt.Stringer](in map[string][3]T) map[string][3]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string][3]string, len(in))
	for layer, c := range in {
		out[layer] = [3]string{c[0].String(), c[1].String(), c[2].String()}
	}
	return out
}

// Run trains as cfg says, writing everything into opts.RunDir: config.json,
// metrics.jsonl, the sample grid, a checkpoint after every epoch and at an
// interruption, and the figures. With opts.Resume it continues that run exactly
// where its checkpoint left it (the Config then comes from the run directory).
func Run(ctx context.Context, cfg Config, opts Options) (*Outcome, error) {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	out := opts.Out
	if out == nil {
		out = io.Discard
	}
	dir := opts.RunDir
	if dir == "" {
		return nil, errors.New("no run directory")
	}
	ckPath := filepath.Join(dir, CheckpointFile)
	var ck *Checkpoint
	if opts.Resume {
		var err error
		if cfg, err = ReadConfig(dir); err != nil {
			return nil, err
		}
		if ck, err = LoadCheckpoint(ckPath); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if ck.State.ModelName != "" && ck.State.ModelName != cfg.Model {
			return nil, fmt.Errorf("resume: %s holds a %s, but %s says %s", ckPath, ck.State.ModelName, filepath.Join(dir, configFile), cfg.Model)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Model == "" {
		cfg.Model = ModelAlexNet
	}
	if !opts.Resume {
		for _, f := range []string{CheckpointFile, metrics.FileName} {
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				return nil, fmt.Errorf("%s already holds a run (%s): continue it with --resume, or choose another --out", dir, f)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if !opts.Resume {
		if err := writeConfig(dir, cfg); err != nil {
			return nil, err
		}
	}
	dl := downloadProgress(opts.Progress)
	data, err := LoadData(ctx, cfg, log, dl)
	if err != nil {
		return nil, err
	}
	if data.Train.Len() < cfg.Batch || data.Test.Len() == 0 {
		return nil, fmt.Errorf("data: %d training images for batches of %d and %d test images", data.Train.Len(), cfg.Batch, data.Test.Len())
	}
	model, err := BuildModelFor(cfg)
	if err != nil {
		return nil, err
	}
	sess, err := openSession(ctx, model, cfg, true, opts.Validate, log, opts.Progress)
	if err != nil {
		return nil, err
	}
	defer sess.close()
	if cfg.Conv == ConvAuto && len(cfg.ConvChoices) == 0 && len(sess.choices) > 0 {
		cfg.ConvChoices, cfg.GEMMChoices = FormatConvChoices(sess.choices), FormatGEMMChoices(sess.gemmChoices)
		if err := writeConfig(dir, cfg); err != nil {
			return nil, err
		}
	}
	net := sess.net
	var state State
	if ck != nil {
		if _, _, err := net.LoadState(ck.Params, true); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if ck.State.SGDSteps > 0 {
			if err := net.LoadMomentum(ck.Momentum); err != nil {
				return nil, fmt.Errorf("resume: %w", err)
			}
			if cfg.adam() != nil {
				if err := net.LoadSecondMoments(ck.SecondMoments); err != nil {
					return nil, fmt.Errorf("resume: %w", err)
				}
			}
		}
		if err := net.SetOptimizerSteps(ck.State.SGDSteps); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		state = ck.State
		log.Info("resuming", "run", dir, "epoch", state.Epoch, "step", state.Step)
	} else {
		params, err := InitialParams(ctx, model, cfg, log, dl)
		if err != nil {
			return nil, err
		}
		if _, _, err := net.LoadState(params, true); err != nil {
			return nil, err
		}
		state = State{Seed: cfg.Seed, ModelName: cfg.Model}
		if err := writeSampleGrid(filepath.Join(dir, "samples.png"), data, cfg.Seed); err != nil {
			log.Warn("sample grid not written", "err", err)
		}
	}
	mw, err := metrics.OpenFile(filepath.Join(dir, metrics.FileName))
	if err != nil {
		return nil, err
	}
	defer mw.Close()
	stepsPerEpoch := data.Train.Len() / cfg.Batch
	if err := mw.WriteConfig(metrics.Config{
		Model: cfg.Model, Pretrained: cfg.Pretrained != PretrainedNone, Dataset: data.Name, ImageSize: cfg.ImageSize,
		Batch: cfg.Batch, Epochs: cfg.Epochs, LR: cfg.LR, Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay,
		Seed: int64(cfg.Seed), Device: sess.dev.Info.Name, Classes: data.Classes, TrainImages: data.Train.Len(),
		TestImages: data.Test.Len(), StepsPerEpoch: stepsPerEpoch, LogEvery: cfg.LogEvery, Time: time.Now(),
		Extra: map[string]string{"pretrained_source": cfg.Pretrained, "resumed": fmt.Sprint(opts.Resume),
			"lr_schedule": cfg.LRSchedule, "warmup_epochs": fmt.Sprint(cfg.WarmupEpochs), "optimizer": optimizerName(cfg),
			"label_smoothing": fmt.Sprint(cfg.LabelSmoothing), "data_order": dataOrderName(cfg), "dropout": dropoutName(cfg)},
	}); err != nil {
		return nil, err
	}
	log.Info("training", "model", cfg.Model, "device", sess.dev.Info.Name, "train", data.Train.Len(), "test", data.Test.Len(),
		"batch", cfg.Batch, "steps_per_epoch", stepsPerEpoch, "epochs", cfg.Epochs, "image_size", cfg.ImageSize)

	t := &trainer{cfg: cfg, opts: opts, net: net, data: data, mw: mw, out: out, log: log, state: state,
		stepsPerEpoch: stepsPerEpoch, ckPath: ckPath, dir: dir}
	return t.run(ctx)
}

// trainer is the state of Run's epoch loop.
type trainer struct {
	cfg           Config
	opts          Options
	net           *layers.Network
	data          *Data
	mw            *metrics.Writer
	out           io.Writer
	log           *slog.Logger
	state         State
	stepsPerEpoch int
	ckPath, dir   string
	calib         calibration
}

// calibration times the first steps of a run to say, before the run is far in,
// how long its training will take on this device.
type calibration struct {
	results int       // steps finished by this process
	start   time.Time // when result calibFrom came back
	done    bool
}

// The estimate times results calibFrom+1 .. calibTo: the first ones include
// compiling the pipelines and filling the double buffer.
const calibFrom, calibTo = 2, 8

// observe counts a finished step and, once calibrated, prints and logs the
// expected training time of the whole run (evaluation comes on top).
func (t *trainer) observe() {
	c := &t.calib
	if c.done {
		return
	}
	c.results++
	switch c.results {
	case calibFrom:
		c.start = time.Now()
	case calibTo:
		c.done = true
		per := time.Since(c.start) / (calibTo - calibFrom)
		left := t.cfg.Epochs*t.stepsPerEpoch - t.state.Step
		ips := float64(t.cfg.Batch) / per.Seconds()
		eta := (time.Duration(left) * per).Round(time.Second)
		fmt.Fprintf(t.out, "Expected training time: about %s for %d more steps at %.1f images/s (measured over steps %d-%d), plus evaluating %d test images after each epoch\n",
			eta, left, ips, calibFrom+1, calibTo, t.data.Test.Len())
		t.log.Info("calibrated", "images_per_s", fmt.Sprintf("%.1f", ips), "steps_left", left, "expected", eta.String())
	}
}

func (t *trainer) run(ctx context.Context) (*Outcome, error) {
	outcome := &Outcome{Checkpoint: t.ckPath}
	for epoch := t.state.Epoch + 1; epoch <= t.cfg.Epochs; epoch++ {
		ep, stopped, err := t.epoch(ctx, epoch)
		if err != nil {
			return outcome, err
		}
		if stopped {
			outcome.Interrupted = true
			if err := t.checkpoint(); err != nil {
				return outcome, err
			}
			fmt.Fprintf(t.out, "Interrupted at epoch %d, step %d: checkpoint %s\n", epoch, t.state.Step, t.ckPath)
			if ctx.Err() != nil {
				return outcome, fmt.Errorf("%w at step %d (checkpoint %s)", ErrInterrupted, t.state.Step, t.ckPath)
			}
			return outcome, nil
		}
		outcome.Epochs = append(outcome.Epochs, *ep)
		t.state.Epoch = epoch
		if err := t.checkpoint(); err != nil {
			return outcome, err
		}
		if figs, err := t.figures(); err != nil {
			t.log.Warn("figures not drawn", "err", err)
		} else {
			outcome.Figures = figs
		}
	}
	fmt.Fprintln(t.out, "Finished Training")
	return outcome, nil
}

// checkpoint saves the network's state (parameters and buffers), the
// optimizer's moments and where training stands.
func (t *trainer) checkpoint() error {
	params, err := t.net.StateDict()
	if err != nil {
		return err
	}
	mom, err := t.net.Momentum()
	if err != nil {
		return err
	}
	sq, err := t.net.SecondMoments()
	if err != nil {
		return err
	}
	c := &Checkpoint{State: t.state, Params: params, Momentum: mom, SecondMoments: sq}
	if err := c.Save(t.ckPath); err != nil {
		return err
	}
	t.log.Debug("checkpoint written", "path", t.ckPath, "epoch", t.state.Epoch, "step", t.state.Step)
	return nil
}

func (t *trainer) figures() ([]string, error) {
	run, err := metrics.Read(t.dir, t.log)
	if err != nil {
		return nil, err
	}
	return viz.SaveAll(t.dir, run)
}

// epoch trains one epoch (from where the state says, on resume), then evaluates.
// stopped reports an interruption (the state then says where).
func (t *trainer) epoch(ctx context.Context, epoch int) (*metrics.Epoch, bool, error) {
	cfg, batch := t.cfg, t.cfg.Batch
	order, err := TrainingOrder(cfg, t.data.Train.Len(), epoch)
	if err != nil {
		return nil, false, err
	}
	first := t.state.Step - (epoch-1)*t.stepsPerEpoch // steps of this epoch already done (resume)
	first = max(0, first)
	start := time.Now()
	var progressLog *slog.Logger
	if t.opts.LogProgress {
		progressLog = t.log
	}
	bar := newProgressBar(t.opts.Progress, progressLog, fmt.Sprintf("%d/%d", epoch, cfg.Epochs), t.stepsPerEpoch, batch)
	records := make([]byte, batch*cifar10.ImageBytes)
	labels := make([]uint8, batch)
	var (
		runLoss             float64
		runSteps            int
		epLoss              float64
		epSteps, epCorrect  int
		windowStart         = time.Now()
		windowImages        int
		stopped             bool
		submitted, received int
	)
	account := func(res *layers.Result) error {
		if res == nil {
			return nil
		}
		received++
		runLoss += res.Loss
		runSteps++
		epLoss += res.Loss
		epSteps++
		epCorrect += res.Correct
		t.state.Step++
		t.state.SGDSteps++
		t.observe()
		done := int(res.Step) - (epoch-1)*t.stepsPerEpoch + 1
		bar.update(done, res.Loss)
		if t.state.Step%cfg.LogEvery == 0 {
			// As the reference: print(f'[{epoch}, {i + 1:5d}] loss: {running_loss / 2000:.3f}')
			fmt.Fprintf(t.out, "[%d, %5d] loss: %.3f\n", epoch, done, runLoss/float64(runSteps))
			ips := float64(windowImages) / time.Since(windowStart).Seconds()
			if err := t.mw.WriteStep(metrics.Step{Epoch: epoch, Step: t.state.Step, Images: int64(t.state.Step * batch),
				RunningLoss: runLoss / float64(runSteps), TrainAcc: float64(epCorrect) / float64(epSteps*batch),
				LR: LRAt(cfg, int(res.Step), t.stepsPerEpoch), ImagesPerS: ips, Time: time.Now()}); err != nil {
				return err
			}
			runLoss, runSteps, windowStart, windowImages = 0, 0, time.Now(), 0
		}
		return nil
	}
	for i := first; i < t.stepsPerEpoch; i++ {
		if ctx.Err() != nil || (t.opts.StopAfterSteps > 0 && (epoch-1)*t.stepsPerEpoch+i >= t.opts.StopAfterSteps) {
			stopped = true
			break
		}
		for j := 0; j < batch; j++ {
			k := order[i*batch+j]
			copy(records[j*cifar10.ImageBytes:], t.data.Train.Image(k))
			labels[j] = t.data.Train.Labels[k]
		}
		step := uint64((epoch-1)*t.stepsPerEpoch + i)
		lr := LRAt(cfg, int(step), t.stepsPerEpoch)
		res, err := t.net.Submit(layers.TrainStep, layers.Batch{Records: records, Labels: labels, Step: step, LR: lr})
		if err != nil {
			return nil, false, t.stepError(err)
		}
		submitted++
		windowImages += batch
		if err := account(res); err != nil {
			return nil, false, err
		}
	}
	for received < submitted {
		res, err := t.net.Flush()
		if err != nil {
			return nil, false, t.stepError(err)
		}
		if err := account(res); err != nil {
			return nil, false, err
		}
	}
	if stopped {
		return nil, true, nil
	}
	trainSeconds := time.Since(start).Seconds()
	ev, err := Evaluate(t.net, t.data.Test, len(t.data.Classes))
	if err != nil {
		return nil, false, err
	}
	ev.Print(t.out, t.data.Classes)
	if err := writePredictionGrid(filepath.Join(t.dir, "predictions.png"), t.data, ev.Predicted); err != nil {
		t.log.Warn("predictions grid not written", "err", err)
	}
	ep := &metrics.Epoch{Epoch: epoch, Step: t.state.Step, TestLoss: ev.Loss, TestAcc: ev.Accuracy,
		PerClassAcc: ev.PerClass, Confusion: ev.Confusion, EpochSeconds: time.Since(start).Seconds(),
		ImagesPerS: float64((t.stepsPerEpoch-first)*batch) / trainSeconds, Time: time.Now()}
	if epSteps > 0 {
		ep.TrainLoss, ep.TrainAcc = epLoss/float64(epSteps), float64(epCorrect)/float64(epSteps*batch)
	}
	t.log.Info("epoch done", "epoch", epoch, "train_loss", ep.TrainLoss, "test_acc", ev.Accuracy, "images_per_s", ep.ImagesPerS)
	return ep, false, t.mw.WriteEpoch(*ep)
}

// stepError names the failing step; a NaN loss keeps the last good checkpoint
// (none is written after it).
func (t *trainer) stepError(err error) error {
	return fmt.Errorf("training stopped: %w; the last good checkpoint (if any) is %s", err, t.ckPath)
}

// EvalResult is the outcome of evaluating a test set.
type EvalResult struct {
	Images    int
	Loss      float64 // mean over batches
	Accuracy  float64
	PerClass  []float64 // NaN for a class without images
	Confusion [][]int64 // [true][predicted]
	Predicted []int     // the predicted class of the first images (up to sampleCount)
}

// sampleCount is how many predictions Evaluate keeps for the predictions grid.
const sampleCount = 16

// Evaluate runs the network (dropout off) over every image of data: the last
// partial batch is padded with repeats of its last image, which are not counted.
func Evaluate(net *layers.Network, data *cifar10.Dataset, classes int) (*EvalResult, error) {
	batch := net.Config().Batch
	ev := &EvalResult{Confusion: make([][]int64, classes)}
	for i := range ev.Confusion {
		ev.Confusion[i] = make([]int64, classes)
	}
	records := make([]byte, batch*cifar10.ImageBytes)
	labels := make([]uint8, batch)
	valid := map[uint64]int{} // step -> images counted
	var lossSum float64
	var batches int
	account := func(res *layers.Result) {
		if res == nil {
			return
		}
		n := valid[res.Step]
		for j := 0; j < n; j++ {
			ev.Confusion[res.Labels[j]][res.Predicted[j]]++
			if int(res.Step)*batch+j < sampleCount {
				ev.Predicted = append(ev.Predicted, int(res.Predicted[j]))
			}
		}
		lossSum += res.Loss
		batches++
		ev.Images += n
	}
	for b := 0; b*batch < data.Len(); b++ {
		n := min(batch, data.Len()-b*batch)
		for j := 0; j < batch; j++ {
			k := b*batch + min(j, n-1)
			copy(records[j*cifar10.ImageBytes:], data.Image(k))
			labels[j] = data.Labels[k]
		}
		valid[uint64(b)] = n
		// Labels are copied: the result refers to them after the next fill.
		res, err := net.Submit(layers.EvalStep, layers.Batch{Records: records, Labels: append([]uint8(nil), labels...), Step: uint64(b)})
		if err != nil {
			return nil, err
		}
		account(res)
	}
	for ev.Images < data.Len() {
		res, err := net.Flush()
		if err != nil {
			return nil, err
		}
		if res == nil {
			break
		}
		account(res)
	}
	correct := int64(0)
	ev.PerClass = make([]float64, classes)
	for c := range ev.Confusion {
		var total int64
		for _, v := range ev.Confusion[c] {
			total += v
		}
		correct += ev.Confusion[c][c]
		ev.PerClass[c] = math.NaN()
		if total > 0 {
			ev.PerClass[c] = float64(ev.Confusion[c][c]) / float64(total)
		}
	}
	ev.Accuracy = float64(correct) / float64(max(ev.Images, 1))
	ev.Loss = lossSum / float64(max(batches, 1))
	return ev, nil
}

// Print writes the accuracies as the reference prints them.
func (ev *EvalResult) Print(w io.Writer, classes []string) {
	fmt.Fprintf(w, "Accuracy of the network on the %d test images: %d %%\n", ev.Images, int(100*ev.Accuracy))
	sum, n := 0.0, 0
	for c, acc := range ev.PerClass {
		if math.IsNaN(acc) {
			fmt.Fprintf(w, "Accuracy for class: %-5s is n/a (no images)\n", classes[c])
			continue
		}
		fmt.Fprintf(w, "Accuracy for class: %-5s is %.1f %%\n", classes[c], 100*acc)
		sum += acc
		n++
	}
	if n > 0 {
		fmt.Fprintf(w, "Average of the per-class accuracies: %.1f %%\n", 100*sum/float64(n))
	}
}

func writeSampleGrid(path string, data *Data, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 99))
	n := min(16, data.Train.Len())
	images := make([][]byte, n)
	labels := make([]int, n)
	for i := range images {
		k := rng.IntN(data.Train.Len())
		images[i], labels[i] = data.Train.Image(k), int(data.Train.Labels[k])
	}
	img, err := viz.SampleGrid(images, 32, 32, labels, nil, data.Classes, 8)
	if err != nil {
		return err
	}
	return viz.SavePNG(img, path)
}

// writePredictionGrid draws the first test images with their true and predicted
// classes, the wrong ones marked.
func writePredictionGrid(path string, data *Data, predicted []int) error {
	n := len(predicted)
	images := make([][]byte, n)
	labels := make([]int, n)
	for i := range images {
		images[i], labels[i] = data.Test.Image(i), int(data.Test.Labels[i])
	}
	img, err := viz.SampleGrid(images, 32, 32, labels, predicted, data.Classes, 8)
	if err != nil {
		return err
	}
	return viz.SavePNG(img, path)
}

func downloadProgress(w io.Writer) func(done, total int64) {
	if w == nil {
		return nil
	}
	var p *fetchProgress
	return func(done, total int64) {
		if p == nil {
			p = newFetchProgress(w)
		}
		p.Update(done, total)
	}
}
