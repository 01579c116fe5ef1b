package train

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"vktrain/train/weights"
)

func TestEpochOrderDeterministic(t *testing.T) {
	a, b := EpochOrder(100, 7, 3), EpochOrder(100, 7, 3)
	if !slices.Equal(a, b) {
		t.Fatal("same seed and epoch gave different orders")
	}
	if slices.Equal(a, EpochOrder(100, 7, 4)) || slices.Equal(a, EpochOrder(100, 8, 3)) {
		t.Fatal("order does not change with epoch or seed")
	}
	sorted := slices.Sorted(slices.Values(a))
	for i, v := range sorted {
		if v != i {
			t.Fatalf("not a permutation: %v", a)
		}
	}
}

func sampleCheckpoint() *Checkpoint {
	p := &weights.StateDict{}
	p.Add("fc.weight", &weights.Tensor{Shape: []int{2, 3}, Data: []float32{1, 2, 3, 4, 5, 6}})
	p.Add("fc.bias", &weights.Tensor{Shape: []int{2}, Data: []float32{-1, 1}})
	m := &weights.StateDict{}
	m.Add("fc.weight", &weights.Tensor{Shape: []int{2, 3}, Data: []float32{.1, .2, .3, .4, .5, .6}})
	return &Checkpoint{State: State{Epoch: 2, Step: 500, Seed: 42, SGDSteps: 500, ModelName: "alexnet"}, Params: p, Momentum: m}
}

func TestCheckpointRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "run", CheckpointFile)
	c := sampleCheckpoint()
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != c.State {
		t.Errorf("state %+v, want %+v", got.State, c.State)
	}
	for _, sd := range []struct{ got, want *weights.StateDict }{{got.Params, c.Params}, {got.Momentum, c.Momentum}} {
		if !slices.Equal(sd.got.Names, sd.want.Names) {
			t.Fatalf("names %v, want %v", sd.got.Names, sd.want.Names)
		}
		for _, n := range sd.want.Names {
			if !reflect.DeepEqual(sd.got.Tensors[n].Data, sd.want.Tensors[n].Data) {
				t.Errorf("%s differs", n)
			}
		}
	}
}

// TestCheckpointSurvivesKill kills (SIGKILL) a process in the middle of saving
// large checkpoints over an existing one; the file left behind must load.
func TestCheckpointSurvivesKill(t *testing.T) {
	if path := os.Getenv("VKTRAIN_TEST_SAVE_LOOP"); path != "" {
		big := sampleCheckpoint()
		big.Params.Tensors["big"] = &weights.Tensor{Shape: []int{8 << 20}, Data: make([]float32, 8<<20)}
		big.Params.Names = append(big.Params.Names, "big")
		for {
			if err := big.Save(path); err != nil {
				os.Exit(3)
			}
		}
	}
	path := filepath.Join(t.TempDir(), CheckpointFile)
	if err := sampleCheckpoint().Save(path); err != nil {
		t.Fatal(err)
	}
	for _, delay := range []time.Duration{50 * time.Millisecond, 170 * time.Millisecond, 400 * time.Millisecond} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCheckpointSurvivesKill$")
		cmd.Env = append(os.Environ(), "VKTRAIN_TEST_SAVE_LOOP="+path)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		cmd.Process.Kill() // SIGKILL
		cmd.Wait()
		if _, err := LoadCheckpoint(path); err != nil {
			t.Fatalf("after kill -9 at %v: %v", delay, err)
		}
	}
}

func TestLoadCheckpointErrors(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain.safetensors")
	sd := &weights.StateDict{}
	sd.Add("x", &weights.Tensor{Shape: []int{1}, Data: []float32{1}})
	if err := weights.WriteSafetensors(plain, sd, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadCheckpoint(plain); err == nil {
		t.Error("a plain safetensors file loaded as a checkpoint")
	}
	if _, err := LoadCheckpoint(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file loaded")
	}
}
