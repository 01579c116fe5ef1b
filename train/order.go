package train

import "math/rand/v2"

// EpochOrder is the order in which epoch (counted from 1) visits n training
// images: a permutation drawn from (seed, epoch) alone, so a resumed run visits
// the images in exactly the order an uninterrupted run would.
func EpochOrder(n int, seed uint64, epoch int) []int {
	rng := rand.New(rand.NewPCG(seed, uint64(epoch)))
	return rng.Perm(n)
}
