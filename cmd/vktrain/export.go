package main

import (
	"context"
	"fmt"
	"path/filepath"

	"vktrain/train"
)

// runExport writes a run's trained model state (parameters, and a ResNet's
// BatchNorm buffers; no optimizer state) as a safetensors file with PyTorch's
// state_dict names.
func runExport(ctx context.Context, e *env, args []string) error {
	fs := newFlagSet("export", e)
	ckpt := fs.String("checkpoint", "", "run directory (config.json and checkpoint.safetensors) or checkpoint file; also the first argument")
	out := fs.String("out", "", "the safetensors file to write (default: model.safetensors in the run directory)")
	path, err := checkpointOnly(fs, args, ckpt)
	if err != nil {
		return err
	}
	cfg, ck, err := train.LoadRun(path)
	if err != nil {
		return err
	}
	dest := *out
	if dest == "" {
		dest = filepath.Join(filepath.Dir(ck.Params.Path), "model.safetensors")
	}
	spec, err := train.LookupModel(cfg.Model)
	if err != nil {
		return err
	}
	if err := train.Export(cfg, ck, dest); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "exported %d tensors (%d values, %s at %dx%d, epoch %d) to %s\n",
		ck.Params.Len(), ck.Params.NumElements(), spec.Title, cfg.ImageSize, cfg.ImageSize, ck.State.Epoch, dest)
	return nil
}
