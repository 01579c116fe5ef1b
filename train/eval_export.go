package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"vktrain/train/weights"
)

// ExportMetadata is the safetensors metadata of an exported model: what a
// consumer needs to use the weights (model, surgery, classes, input size and
// normalization) and where they came from. The model is cfg.Model's (st's
// where cfg names none it knows).
func ExportMetadata(cfg Config, st State, source string) map[string]string {
	p := inputParams(cfg, false)
	classes := ClassesFor(cfg)
	spec, err := cfg.modelSpec()
	if err != nil {
		spec, _ = LookupModel(st.ModelName)
	}
	meta := map[string]string{
		"format":      "pt",
		"vktrain":     "model-1",
		"model":       spec.Name,
		"surgery":     spec.SurgeryText(NumClasses),
		"num_classes": strconv.Itoa(len(classes)),
		"classes":     strings.Join(classes, ","),
		"dataset":     datasetName(cfg),
		"image_size":  strconv.Itoa(cfg.ImageSize),
		"resize":      strconv.Itoa(p.Resize),
		"mean":        fmt.Sprintf("%g,%g,%g", p.Mean[0], p.Mean[1], p.Mean[2]),
		"std":         fmt.Sprintf("%g,%g,%g", p.Std[0], p.Std[1], p.Std[2]),
		"epoch":       strconv.Itoa(st.Epoch),
		"step":        strconv.Itoa(st.Step),
		"source":      source,
	}
	if cfg.Width != 0 && spec.IsResNet() {
		meta["width"] = strconv.Itoa(cfg.Width)
	}
	return meta
}

// Export writes the checkpoint's model state only (PyTorch state_dict names
// and order: the parameters, and for a ResNet BatchNorm's buffers; no
// optimizer state) to out as safetensors, atomically, with ExportMetadata, so
// that model.load_state_dict takes it. It refuses to write over the
// checkpoint itself.
func Export(cfg Config, ck *Checkpoint, out string) error {
	if out == "" {
		return errors.New("export: no output file")
	}
	if ck == nil || ck.Params == nil {
		return errors.New("export: no checkpoint")
	}
	if a, err := filepath.Abs(out); err == nil {
		if b, err := filepath.Abs(ck.Params.Path); err == nil && a == b {
			return fmt.Errorf("export: %s is the checkpoint itself; choose another --out", out)
		}
	}
	sd := &weights.StateDict{}
	for _, name := range ck.Params.Names {
		if err := sd.Add(name, ck.Params.Tensors[name]); err != nil {
			return fmt.Errorf("export %s: %w", out, err)
		}
	}
	if dir := filepath.Dir(out); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	if err := weights.WriteSafetensors(out, sd, ExportMetadata(cfg, ck.State, ck.Params.Path)); err != nil {
		return fmt.Errorf("export: %w", err)
	}
	return nil
}
