package main

import (
	"context"
	"fmt"
	"time"

	"vktrain/layers"
	"vktrain/layers/bench"
	"vktrain/train"
	"vktrain/train/tune"
)

// runBench benchmarks every kernel of the model's (--model) training step at its
// shapes, the whole step and inference on the chosen device (see package
// layers/bench), printing a table and optionally writing JSON, a chart, and a
// comparison with an earlier report (vktrain's or torch_bench.py's).
func runBench(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("bench", e)
	var df deviceFlags
	df.register(fs)
	modelName := train.ModelAlexNet
	registerModelFlag(fs, &modelName)
	size := fs.Int("image-size", 224, "network input side (images are resized to size*8/7, then center-cropped)")
	batch := fs.Int("batch", 4, "training batch, and the inference throughput batch")
	budget := fs.Duration("budget", 2*time.Second, "time spent repeating each kernel after its warm-up (at least 3 runs)")
	count := fs.Int("count", 0, "exact number of timed runs per kernel (overrides --budget)")
	jsonPath := fs.String("json", "", "write the report as JSON to this file")
	pngPath := fs.String("png", "", "write a chart of the kernels' median times to this PNG")
	compare := fs.String("compare", "", "an earlier report (vktrain bench --json, or torch_bench.py): print speedups per kernel, layer and for the whole step")
	variants := fs.Bool("variants", false, "also time every variant of the kernels that have one (GEMM texel and tiled; convolutions by every algorithm that applies; * marks the tuner's pick)")
	conv := fs.String("conv", train.Defaults().Conv, convFlagUsage)
	tuneMode := fs.String("tune", "cached", tuneFlagUsage)
	kernels := fs.String("kernels", "", "only kernels whose name contains one of these comma-separated substrings (the step and inference always run)")
	seed := fs.Uint64("seed", 1, "seed of the parameters and input data")
	freeze := fs.Bool("freeze-features", false, "freeze all but the new classifier, as train --freeze-features")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	case *size < 32:
		return fmt.Errorf("--image-size %d: must be at least 32", *size)
	case *batch < 1:
		return fmt.Errorf("--batch %d: must be positive", *batch)
	case *count < 0 || (*count == 0 && *budget <= 0):
		return fmt.Errorf("--count %d, --budget %v: give a positive count or budget", *count, *budget)
	}
	if _, err := train.LookupModel(modelName); err != nil {
		return err
	}
	algo, err := layers.ParseConvAlgo(*conv)
	if *conv == train.ConvAuto {
		algo, err = layers.ConvWinograd4, nil // where nothing is tuned
	}
	if err != nil {
		return err
	}
	mode, err := tune.ParseMode(*tuneMode)
	if err != nil {
		return err
	}
	var old *bench.Report
	if *compare != "" {
		if old, err = bench.ReadReport(*compare); err != nil {
			return err
		}
	}
	model, dev, rt, err := openModelRuntime(df, e, modelName, *freeze)
	if err != nil {
		return err
	}
	defer dev.Close()
	defer rt.Close()
	cfg := bench.Config{
		Model: model, ImageSize: *size, Resize: train.ResizeFor(*size), Batch: *batch,
		Budget: *budget, Count: *count, Variants: *variants, Filter: *kernels, Seed: *seed, ConvAlgo: algo,
		Log: func(format string, args ...any) { e.log.Info(fmt.Sprintf(format, args...)) },
	}
	if *conv == train.ConvAuto && mode != tune.Off {
		cache, err := tune.OpenCache("", dev, e.log)
		if err != nil {
			return err
		}
		cfg.Tune = func(ncfg layers.NetworkConfig) (bench.Choices, error) {
			res, err := tune.Choose(ctx, rt, model, ncfg, cache, tune.Options{Mode: mode, Log: e.log, Progress: tuneBar(e)})
			if err != nil {
				return bench.Choices{}, err
			}
			return bench.Choices{Conv: res.Choices, GEMM: res.GEMM}, nil
		}
	}
	e.log.Info("benchmarking", "model", modelName, "device", dev.Info.Name, "image-size", *size, "batch", *batch, "gemm", rt.Variant, "conv", *conv, "tune", mode)
	rep, err := bench.Run(ctx, rt, cfg, bench.Version())
	if err != nil {
		return err
	}
	if err := rep.WriteTable(e.stdout); err != nil {
		return err
	}
	if *jsonPath != "" {
		if err := rep.WriteJSON(*jsonPath); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", *jsonPath)
	}
	if *pngPath != "" {
		reports := []*bench.Report{rep}
		if old != nil {
			reports = []*bench.Report{old, rep}
		}
		if err := bench.SaveChart(*pngPath, reports...); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "wrote %s\n", *pngPath)
	}
	if old != nil {
		fmt.Fprintln(e.stdout)
		return bench.Compare(e.stdout, old, rep)
	}
	return nil
}
