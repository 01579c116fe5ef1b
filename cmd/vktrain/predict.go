package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"vktrain/train"
)

// maxPredictBatch bounds the network's batch for predict: more images go in
// several steps.
const maxPredictBatch = 32

// runPredict classifies PNG and JPEG images with a run's checkpoint and prints
// each one's most probable classes.
func runPredict(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("predict", e)
	ckpt := fs.String("checkpoint", "", "run directory (config.json and checkpoint.safetensors) or checkpoint file")
	top := fs.Int("top", 5, "print the N most probable classes per image")
	asJSON := fs.Bool("json", false, "print the predictions as JSON")
	var df deviceFlags
	df.register(fs)
	tuneMode := fs.String("tune", "cached", tuneFlagUsage)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: vktrain predict --checkpoint RUN_DIR IMAGE...")
		fmt.Fprintln(fs.Output(), "\nEach PNG or JPEG image is cut to its centered square and scaled to 32x32 (Catmull-Rom),")
		fmt.Fprintln(fs.Output(), "then preprocessed exactly as a CIFAR-10 image in training (resize to size*8/7, center crop).")
		fs.PrintDefaults()
	}
	images, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *ckpt == "" {
		return errors.New("no checkpoint: pass --checkpoint RUN_DIR (a directory 'vktrain train' wrote) or a checkpoint.safetensors file")
	}
	if len(images) == 0 {
		return errors.New("no images: vktrain predict --checkpoint RUN_DIR IMAGE...")
	}
	if *top < 1 {
		return fmt.Errorf("--top %d: must be positive", *top)
	}
	cfg, ck, err := train.LoadRun(*ckpt)
	if err != nil {
		return err
	}
	records := make([][]byte, len(images))
	for i, path := range images {
		if records[i], err = train.ReadImageRecord(path); err != nil {
			return err
		}
	}
	m, err := train.OpenForEval(cfg, ck, train.EvalOptions{Batch: min(len(images), maxPredictBatch), Device: df.device, Validate: df.validate, Tune: *tuneMode, Log: e.log})
	if err != nil {
		return err
	}
	defer m.Close()
	probs, err := m.Predict(records)
	if err != nil {
		return err
	}
	type prediction struct {
		Image string        `json:"image"`
		Top   []train.Class `json:"top"`
	}
	preds := make([]prediction, len(images))
	for i, path := range images {
		preds[i] = prediction{Image: path, Top: train.TopK(probs[i], m.Classes, *top)}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(preds)
	}
	for _, p := range preds {
		fmt.Fprintf(e.stdout, "%s:\n", p.Image)
		for k, c := range p.Top {
			fmt.Fprintf(e.stdout, "  %d. %-8s %6.2f %%\n", k+1, c.Name, 100*c.Prob)
		}
	}
	return nil
}
