package train

import (
	"fmt"
	"math/rand/v2"
)

// The training images' orders (Config.DataOrder, --data-order).
const (
	OrderShuffled   = "shuffled"   // a fresh permutation every epoch (EpochOrder)
	OrderSequential = "sequential" // file order, every epoch
)

// EpochOrder is the order in which epoch (counted from 1) visits n training
// images: a permutation drawn from (seed, epoch) alone, so a resumed run visits
// the images in exactly the order an uninterrupted run would.
func EpochOrder(n int, seed uint64, epoch int) []int {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)))
	return rng.Perm(n)
}

// TrainingOrder is the order in which epoch (counted from 1) of a run under
// cfg visits n training images: EpochOrder(n, cfg.Seed, epoch) for
// cfg.DataOrder "shuffled" (or ""), 0, 1, ..., n-1 (the files' order, as
// PyTorch's DataLoader with shuffle=False) for "sequential".
func TrainingOrder(cfg Config, n, epoch int) ([]int, error) {
	switch cfg.DataOrder {
	case OrderShuffled, "":
		return EpochOrder(n, cfg.Seed, epoch), nil
	case OrderSequential:
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order, nil
	}
	return nil, fmt.Errorf("data order %q: want %s or %s", cfg.DataOrder, OrderShuffled, OrderSequential)
}
