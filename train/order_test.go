package train

import (
	"slices"
	"testing"
)

// TestTrainingOrder: with --data-order sequential every epoch visits the
// training images in file order, whatever the seed; "shuffled" (and "", as
// runs written before the setting read) is EpochOrder's permutation, which
// changes with the epoch; another order is an error.
func TestTrainingOrder(t *testing.T) {
	cfg := Defaults()
	cfg.Seed = 7
	cfg.DataOrder = OrderSequential
	for _, epoch := range []int{1, 2, 5} {
		got, err := TrainingOrder(cfg, 10, epoch)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}; !slices.Equal(got, want) {
			t.Errorf("sequential, epoch %d: %v, want the file order %v", epoch, got, want)
		}
	}
	for _, order := range []string{OrderShuffled, ""} {
		cfg.DataOrder = order
		got, err := TrainingOrder(cfg, 100, 3)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, EpochOrder(100, 7, 3)) {
			t.Errorf("data order %q: not EpochOrder's permutation", order)
		}
		if slices.IsSorted(got) {
			t.Errorf("data order %q: the file order, not shuffled", order)
		}
	}
	cfg.DataOrder = "random"
	if _, err := TrainingOrder(cfg, 10, 1); err == nil {
		t.Error(`data order "random" accepted`)
	}
	if err := cfg.Validate(); err == nil {
		t.Error(`Validate accepted data order "random"`)
	}
}
