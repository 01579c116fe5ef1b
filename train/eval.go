package train

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"vktrain/layers"
	"vktrain/train/cifar10"
)

// LoadRun reads a finished (or interrupted) run for evaluation, prediction or
// export. pathOrDir is either a run directory (its config.json and
// checkpoint.safetensors are read) or a checkpoint file, whose run's
// config.json must lie next to it. The Config says how to rebuild the network
// (model, image size, surgery, freezing) and which data set the classes come
// from; the checkpoint must hold every state_dict entry of that network
// (parameters, and BatchNorm's buffers for a ResNet).
func LoadRun(pathOrDir string) (Config, *Checkpoint, error) {
	var cfg Config
	if pathOrDir == "" {
		return cfg, nil, errors.New("no checkpoint: pass --checkpoint RUN_DIR or a checkpoint.safetensors file")
	}
	fi, err := os.Stat(pathOrDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cfg, nil, fmt.Errorf("checkpoint %s: no such file or run directory (a run directory is what 'vktrain train --out DIR' writes)", pathOrDir)
		}
		return cfg, nil, fmt.Errorf("checkpoint: %w", err)
	}
	dir, ckPath := pathOrDir, filepath.Join(pathOrDir, CheckpointFile)
	if !fi.IsDir() {
		dir, ckPath = filepath.Dir(pathOrDir), pathOrDir
	} else if _, err := os.Stat(ckPath); errors.Is(err, fs.ErrNotExist) {
		return cfg, nil, fmt.Errorf("run %s has no checkpoint %s yet (one is written after every epoch)", dir, CheckpointFile)
	}
	if cfg, err = ReadConfig(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return cfg, nil, fmt.Errorf("checkpoint %s: no %s next to it: the run's configuration (image size, freezing, data set) is needed to rebuild the network", ckPath, configFile)
		}
		return cfg, nil, err
	}
	if cfg.ImageSize < 32 {
		return cfg, nil, fmt.Errorf("%s: image size %d: must be at least 32", filepath.Join(dir, configFile), cfg.ImageSize)
	}
	ck, err := LoadCheckpoint(ckPath)
	if err != nil {
		return cfg, nil, fmt.Errorf("checkpoint: %w", err)
	}
	spec, err := cfg.modelSpec()
	if err != nil {
		return cfg, nil, err
	}
	if ck.State.ModelName != "" && ck.State.ModelName != spec.Name {
		return cfg, nil, fmt.Errorf("checkpoint %s holds a %s, but its run's %s says %s", ckPath, ck.State.ModelName, filepath.Join(dir, configFile), spec.Name)
	}
	model, err := spec.build(cfg.FreezeFeatures)
	if err != nil {
		return cfg, nil, err
	}
	if _, _, err := ck.Params.Check(model.StateSpecs(), true); err != nil {
		return cfg, nil, fmt.Errorf("checkpoint %s does not hold the experiment's %s: %w", ckPath, spec.Title, err)
	}
	return cfg, ck, nil
}

// ClassesFor returns the class names of cfg's data set by label: the synthetic
// set's for "synthetic", CIFAR-10's otherwise.
func ClassesFor(cfg Config) []string {
	names := cifar10.ClassNames()
	if cfg.Data == DataSynthetic {
		names = cifar10.SyntheticClassNames()
	}
	return names[:]
}

// LoadTestSet opens only the test set cfg names (downloading CIFAR-10 into the
// cache if needed), limited to cfg.TestLimit images when positive, with its
// class names.
func LoadTestSet(ctx context.Context, cfg Config, log *slog.Logger, progress io.Writer) (*cifar10.Dataset, []string, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Data == DataSynthetic {
		// The training half is cheap to draw; LoadData keeps the one recipe.
		cfg.TrainLimit = 0
		d, err := LoadData(ctx, cfg, log, nil)
		if err != nil {
			return nil, nil, err
		}
		return d.Test, d.Classes, nil
	}
	cache, err := cfg.cacheDir()
	if err != nil {
		return nil, nil, err
	}
	test, err := cifar10.Open(ctx, cfg.Data, cache, false, cifar10.Options{URL: cfg.DataURL, Logger: log, Progress: downloadProgress(progress)})
	if err != nil {
		return nil, nil, err
	}
	if test, err = limit(test, cfg.TestLimit); err != nil {
		return nil, nil, err
	}
	return test, ClassesFor(cfg), nil
}

// EvalOptions say where an inference network runs.
type EvalOptions struct {
	Batch    int    // images per step; 0: the run's batch
	Device   string // Vulkan device selector; "" chooses as vk.Open does
	Validate bool   // the Vulkan validation layer
	Tune     string // how an "auto" run's convolutions are chosen for this batch (Config.Tune)
	Log      *slog.Logger
}

// Model is a trained network on a device for inference only: the evaluation
// step, no gradients, no momentum, no dropout.
type Model struct {
	Config  Config   // the run's configuration
	Classes []string // class names by label
	Batch   int      // images per step
	sess    *session
}

// OpenForEval rebuilds the run's network (same model, image size, surgery
// and freezing as cfg) for inference and loads the checkpoint's state
// (parameters and buffers: a ResNet's BatchNorm normalises by the running
// statistics there).
func OpenForEval(cfg Config, ck *Checkpoint, opts EvalOptions) (*Model, error) {
	if ck == nil || ck.Params == nil {
		return nil, errors.New("open for evaluation: no checkpoint")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Batch > 0 {
		cfg.Batch = opts.Batch
	}
	if cfg.Batch < 1 {
		return nil, fmt.Errorf("batch %d: must be at least 1", cfg.Batch)
	}
	model, err := BuildModelFor(cfg)
	if err != nil {
		return nil, err
	}
	ncfg := cfg
	ncfg.Device, ncfg.Tune = opts.Device, opts.Tune
	sess, err := openSession(context.Background(), model, ncfg, false, opts.Validate, log, nil)
	if err != nil {
		return nil, err
	}
	if _, _, err := sess.net.LoadState(ck.Params, true); err != nil {
		sess.close()
		return nil, fmt.Errorf("checkpoint %s: %w", ck.Params.Path, err)
	}
	log.Debug("model loaded", "device", sess.dev.Info.Name, "image_size", cfg.ImageSize, "batch", cfg.Batch)
	return &Model{Config: cfg, Classes: ClassesFor(cfg), Batch: cfg.Batch, sess: sess}, nil
}

// Close releases the network and the device.
func (m *Model) Close() {
	if m.sess != nil {
		m.sess.close()
		m.sess = nil
	}
}

// Network is the network on the device.
func (m *Model) Network() *layers.Network { return m.sess.net }

// DeviceName is the name of the device the network runs on.
func (m *Model) DeviceName() string { return m.sess.dev.Info.Name }

// Evaluate runs the whole of data through the network as Run evaluates after
// every epoch (see Evaluate).
func (m *Model) Evaluate(data *cifar10.Dataset) (*EvalResult, error) {
	if data.Len() == 0 {
		return nil, errors.New("evaluate: the test set is empty")
	}
	for i, l := range data.Labels {
		if int(l) >= len(m.Classes) {
			return nil, fmt.Errorf("evaluate: label %d of test image %d is not below the model's %d classes", l, i, len(m.Classes))
		}
	}
	return Evaluate(m.sess.net, data, len(m.Classes))
}

// EvalJSON is the machine-readable form of an evaluation (vktrain eval --json).
type EvalJSON struct {
	Checkpoint string           `json:"checkpoint"`
	Epoch      int              `json:"epoch"` // epochs the checkpoint had completed
	Step       int              `json:"step"`
	Dataset    string           `json:"dataset"`
	ImageSize  int              `json:"image_size"`
	Images     int              `json:"images"`
	Loss       float64          `json:"loss"` // mean over batches
	Accuracy   float64          `json:"accuracy"`
	Classes    []string         `json:"classes"`
	PerClass   []Float          `json:"per_class"` // by label; null for a class without images
	ByName     map[string]Float `json:"per_class_by_name"`
	MeanClass  float64          `json:"mean_per_class"` // average over the classes with images
	Confusion  [][]int64        `json:"confusion"`      // [true][predicted]
}

// Float is a float64 that marshals NaN as null.
type Float float64

// MarshalJSON writes the number, or null for NaN and infinities.
func (f Float) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return []byte("null"), nil
	}
	return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
}

// JSON is ev in its machine-readable form.
func (ev *EvalResult) JSON(checkpoint string, cfg Config, st State, classes []string) *EvalJSON {
	j := &EvalJSON{Checkpoint: checkpoint, Epoch: st.Epoch, Step: st.Step, Dataset: datasetName(cfg), ImageSize: cfg.ImageSize,
		Images: ev.Images, Loss: ev.Loss, Accuracy: ev.Accuracy, Classes: classes,
		PerClass: make([]Float, len(ev.PerClass)), ByName: map[string]Float{}, Confusion: ev.Confusion}
	sum, n := 0.0, 0
	for c, acc := range ev.PerClass {
		name := strconv.Itoa(c)
		if c < len(classes) {
			name = classes[c]
		}
		j.PerClass[c], j.ByName[name] = Float(acc), Float(acc)
		if math.IsNaN(acc) {
			continue
		}
		sum += acc
		n++
	}
	if n > 0 {
		j.MeanClass = sum / float64(n)
	}
	return j
}

func datasetName(cfg Config) string {
	switch {
	case cfg.Data == DataSynthetic:
		return DataSynthetic
	case cfg.Data == "":
		return "cifar10"
	default:
		return "cifar10:" + strings.TrimSpace(cfg.Data)
	}
}
