package main

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"vktrain/layers"
	"vktrain/layers/nn"
	"vktrain/train"
	"vktrain/train/tune"
	"vktrain/vk"
)

// runTune fills the device's tuning cache ahead of a run: it times every
// way (convolution algorithm and GEMM kernel) of every GEMM-based pass of the
// training network (and of the
// inference network at each --eval-batch) at the given shape, and prints the
// winners with their times.
func runTune(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("tune", e)
	var df deviceFlags
	df.register(fs)
	modelName := train.ModelAlexNet
	registerModelFlag(fs, &modelName)
	size := fs.Int("image-size", 224, "network input side (images are resized to size*8/7, then center-cropped)")
	batch := fs.Int("batch", 4, "training batch")
	evalBatches := fs.String("eval-batch", "", "also tune inference at these comma-separated batches (e.g. 1,64)")
	freeze := fs.Bool("freeze-features", false, "freeze all but the new classifier, as train --freeze-features")
	full := fs.Bool("full", false, "time every pass again, even where the cache has it (--tune full)")
	budget := fs.Duration("budget", tune.DefaultBudget, "time spent repeating each way of computing each pass (at least 3 runs)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	spec, err := train.LookupModel(modelName)
	if err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *size < spec.MinImageSize:
		return fmt.Errorf("--image-size %d: must be at least %d for %s", *size, spec.MinImageSize, spec.Title)
	case *batch < 1:
		return fmt.Errorf("--batch %d: must be positive", *batch)
	}
	var batches []int
	for _, f := range strings.Split(*evalBatches, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		var n int
		if _, err := fmt.Sscan(f, &n); err != nil || n < 1 {
			return fmt.Errorf("--eval-batch %q: want positive numbers separated by commas", *evalBatches)
		}
		batches = append(batches, n)
	}
	model, dev, rt, err := openModelRuntime(df, e, modelName, *freeze)
	if err != nil {
		return err
	}
	defer dev.Close()
	defer rt.Close()
	cache, err := tune.OpenCache("", dev, e.log)
	if err != nil {
		return err
	}
	mode := tune.Cached
	if *full {
		mode = tune.Full
	}
	cfg := train.Defaults()
	cfg.Model, cfg.ImageSize, cfg.Batch = modelName, *size, *batch
	type job struct {
		batch int
		train bool
	}
	jobs := []job{{*batch, true}}
	for _, n := range batches {
		jobs = append(jobs, job{n, false})
	}
	fmt.Fprintf(e.stdout, "tuning on %s; cache %s\n", dev.Info.Name, cache.Path())
	for _, j := range jobs {
		c := cfg
		c.Batch = j.batch
		ncfg := train.NetworkConfigFor(c, j.train)
		ncfg.ConvAlgo = layers.ConvWinograd4
		start := time.Now()
		res, err := tune.Choose(ctx, rt, model, ncfg, cache, tune.Options{Mode: mode, Budget: *budget, Log: e.log, Progress: tuneBar(e)})
		if err != nil {
			return err
		}
		what := "training"
		if !j.train {
			what = "inference"
		}
		fmt.Fprintf(e.stdout, "\n%s at %d, batch %d (%.1f s):\n", what, *size, j.batch, time.Since(start).Seconds())
		if err := writeChoices(e, res); err != nil {
			return err
		}
	}
	return nil
}

// openModelRuntime builds the experiment's network for the model name (all
// but its new classifier frozen with freeze) and opens the flags' device with
// a runtime on it; the caller closes the runtime, then the device.
func openModelRuntime(df deviceFlags, e *env, name string, freeze bool) (*nn.Model, *vk.Device, *layers.Runtime, error) {
	model, err := train.BuildModel(name, freeze)
	if err != nil {
		return nil, nil, nil, err
	}
	dev, err := vk.Open(vk.Options{Device: df.device, Validate: df.validate, Logger: e.log})
	if err != nil {
		return nil, nil, nil, err
	}
	return model, dev, layers.NewRuntime(dev), nil
}

// writeChoices prints each tuned pass: its winner (a convolution's
// "algorithm/kernel", a linear layer's kernel) and every way's time, fastest
// first.
func writeChoices(e *env, res *tune.Result) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "layer\tpass\tchosen\ttimes (ms, GPU median)\tfrom\t")
	for _, d := range res.Decisions {
		ways := slices.Sorted(maps.Keys(d.Entry.TimesMS))
		slices.SortStableFunc(ways, func(a, b string) int { return cmp.Compare(d.Entry.TimesMS[a], d.Entry.TimesMS[b]) })
		times := make([]string, len(ways))
		for i, w := range ways {
			times[i] = fmt.Sprintf("%s %.3f", w, d.Entry.TimesMS[w])
		}
		from := "timed now"
		if d.Cached {
			from = "cache (" + d.Entry.Tuned.Format(time.DateOnly) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t\n", d.Layer, d.Pass, d.Entry.WayName(), strings.Join(times, ", "), from)
	}
	return tw.Flush()
}

// tuneBar is the tuner's progress bar on a terminal, nil elsewhere.
func tuneBar(e *env) func(done, total int, what string) {
	if !isTerminal(e.stderr) {
		return nil
	}
	return train.TuneProgress(e.stderr)
}
