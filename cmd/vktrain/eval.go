package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"vktrain/train"
	"vktrain/train/fetch"
)

// parseInterleaved parses fs's flags wherever they stand among the positional
// arguments (flag stops at the first non-flag) and returns the positional ones.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if len(args) > len(rest) && args[len(args)-len(rest)-1] == "--" { // after "--", all are positional
			return append(pos, rest...), nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// checkpointArg is --checkpoint, or else the one positional argument.
func checkpointArg(flagValue string, pos []string) (string, []string, error) {
	if flagValue != "" {
		return flagValue, pos, nil
	}
	if len(pos) == 0 {
		return "", nil, errors.New("no checkpoint: pass --checkpoint RUN_DIR (a directory 'vktrain train' wrote) or a checkpoint.safetensors file")
	}
	return pos[0], pos[1:], nil
}

// checkpointOnly parses fs's flags among args and returns the checkpoint path
// (--checkpoint, or else the one positional argument); other arguments are an error.
func checkpointOnly(fs *flag.FlagSet, args []string, ckpt *string) (string, error) {
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return "", err
	}
	path, pos, err := checkpointArg(*ckpt, pos)
	if err != nil {
		return "", err
	}
	if len(pos) > 0 {
		return "", fmt.Errorf("unexpected arguments %q", pos)
	}
	return path, nil
}

// runEval evaluates a run's checkpoint on the whole test set and prints the
// accuracies as the reference prints them.
func runEval(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("eval", e)
	ckpt := fs.String("checkpoint", "", "run directory (config.json and checkpoint.safetensors) or checkpoint file; also the first argument")
	data := fs.String("data", "", `test data: a folder of the official CIFAR-10 files or "synthetic" (default: the run's data set)`)
	batch := fs.Int("batch", 0, "images per step (default: the run's batch)")
	testLimit := fs.Int("test-limit", 0, "evaluate only the first N test images (0: the whole test set)")
	jsonOut := fs.String("json", "", "also write accuracy, per-class accuracies and the confusion matrix to this JSON file")
	quiet := fs.Bool("quiet", false, "no download progress")
	var df deviceFlags
	df.register(fs)
	tuneMode := fs.String("tune", "cached", tuneFlagUsage)
	path, err := checkpointOnly(fs, args, ckpt)
	if err != nil {
		return err
	}
	if *batch < 0 || *testLimit < 0 {
		return fmt.Errorf("--batch %d, --test-limit %d: must not be negative", *batch, *testLimit)
	}
	cfg, ck, err := train.LoadRun(path)
	if err != nil {
		return err
	}
	if *data != "" {
		cfg.Data = *data
	}
	cfg.TestLimit = *testLimit
	var progress io.Writer
	if !*quiet {
		progress = e.stderr
	}
	test, classes, err := train.LoadTestSet(ctx, cfg, e.log, progress)
	if err != nil {
		return err
	}
	m, err := train.OpenForEval(cfg, ck, train.EvalOptions{Batch: *batch, Device: df.device, Validate: df.validate, Tune: *tuneMode, Log: e.log})
	if err != nil {
		return err
	}
	defer m.Close()
	e.log.Info("evaluating", "checkpoint", path, "epoch", ck.State.Epoch, "step", ck.State.Step, "images", test.Len(),
		"image_size", cfg.ImageSize, "batch", m.Batch, "device", m.DeviceName())
	ev, err := m.Evaluate(test)
	if err != nil {
		return err
	}
	ev.Print(e.stdout, classes)
	if *jsonOut != "" {
		err := fetch.WriteFileAtomic(*jsonOut, func(w io.Writer) error {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			return enc.Encode(ev.JSON(path, cfg, ck.State, classes))
		})
		if err != nil {
			return fmt.Errorf("--json: %w", err)
		}
		fmt.Fprintf(e.stdout, "results: %s\n", *jsonOut)
	}
	return nil
}
