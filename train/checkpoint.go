package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"vktrain/train/weights"
)

// CheckpointFile is the checkpoint's name inside a run directory.
const CheckpointFile = "checkpoint.safetensors"

// momentumPrefix names the optimizer's momentum buffers (SGD) or first
// moments (Adam's exp_avg) inside a checkpoint, secondMomentPrefix Adam's
// second moments (exp_avg_sq).
const (
	momentumPrefix     = "optimizer.momentum."
	secondMomentPrefix = "optimizer.exp_avg_sq."
)

// State is where training stands: enough to continue exactly.
type State struct {
	Epoch     int    `json:"epoch"`      // epochs completed
	Step      int    `json:"step"`       // mini-batches completed in total
	Seed      uint64 `json:"seed"`       // the run's seed: data order, dropout, augmentation
	SGDSteps  int    `json:"sgd_steps"`  // optimizer steps taken, SGD's or Adam's (0: moments not yet initialised)
	ModelName string `json:"model_name"` // Config.Model: "alexnet", "resnet18", "resnet50"
}

// Checkpoint is a model's state, the optimizer's momentum and the State.
type Checkpoint struct {
	State State
	// Params is the model's state_dict (layers.Network.StateDict): its
	// parameters and, for a ResNet, BatchNorm's buffers (running_mean,
	// running_var, num_batches_tracked as a float32 scalar), PyTorch's names
	// and order.
	Params   *weights.StateDict
	Momentum *weights.StateDict // same names; may be empty (no optimizer step yet)
	// SecondMoments are Adam's exp_avg_sq (same names); empty under SGD.
	SecondMoments *weights.StateDict
}

// Save writes the checkpoint as safetensors (the state in the metadata), to a
// temporary file renamed over path: a crash mid-write leaves the previous file.
func (c *Checkpoint) Save(path string) error {
	all := &weights.StateDict{}
	for _, name := range c.Params.Names {
		if err := all.Add(name, c.Params.Tensors[name]); err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
	}
	for _, part := range []struct {
		prefix string
		sd     *weights.StateDict
	}{{momentumPrefix, c.Momentum}, {secondMomentPrefix, c.SecondMoments}} {
		if part.sd == nil {
			continue
		}
		for _, name := range part.sd.Names {
			if err := all.Add(part.prefix+name, part.sd.Tensors[name]); err != nil {
				return fmt.Errorf("checkpoint %s: %w", path, err)
			}
		}
	}
	state, err := json.Marshal(c.State)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return weights.WriteSafetensors(path, all, map[string]string{"vktrain.state": string(state), "format": "vktrain-checkpoint-1"})
}

// LoadCheckpoint reads a checkpoint written by Save.
func LoadCheckpoint(path string) (*Checkpoint, error) {
	all, meta, err := weights.ReadSafetensors(path)
	if err != nil {
		return nil, err
	}
	raw, ok := meta["vktrain.state"]
	if !ok {
		return nil, fmt.Errorf("%s: not a vktrain checkpoint (no vktrain.state metadata)", path)
	}
	c := &Checkpoint{Params: &weights.StateDict{Path: path}, Momentum: &weights.StateDict{Path: path}, SecondMoments: &weights.StateDict{Path: path}}
	if err := json.Unmarshal([]byte(raw), &c.State); err != nil {
		return nil, fmt.Errorf("%s: bad vktrain.state metadata: %w", path, err)
	}
	for _, name := range all.Names {
		dst, key := c.Params, name
		if rest, ok := strings.CutPrefix(name, momentumPrefix); ok {
			dst, key = c.Momentum, rest
		} else if rest, ok := strings.CutPrefix(name, secondMomentPrefix); ok {
			dst, key = c.SecondMoments, rest
		}
		if err := dst.Add(key, all.Tensors[name]); err != nil {
			return nil, err
		}
	}
	if c.Params.Len() == 0 {
		return nil, errors.New(path + ": checkpoint holds no parameters")
	}
	return c, nil
}
