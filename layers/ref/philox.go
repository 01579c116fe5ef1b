package ref

// Philox4x32-10 constants (Salmon et al., "Parallel random numbers: as
// easy as 1, 2, 3", SC 2011; Random123's philox.h).
const (
	philoxM0 = 0xD2511F53 // round multiplier for counter word 0
	philoxM1 = 0xCD9E8D57 // round multiplier for counter word 2
	philoxW0 = 0x9E3779B9 // key schedule increment, golden ratio
	philoxW1 = 0xBB67AE85 // key schedule increment, sqrt(3)-1
)

// mulHiLo returns the high and low 32-bit halves of the 64-bit product a*b.
func mulHiLo(a, b uint32) (hi, lo uint32) {
	p := uint64(a) * uint64(b)
	return uint32(p >> 32), uint32(p)
}

// Philox4x32 returns the Philox4x32-10 block for counter and key: ten
// rounds, the key bumped by (W0, W1) between rounds. It matches Random123's
// philox4x32(ctr, key) and the GLSL port bit for bit.
func Philox4x32(counter [4]uint32, key [2]uint32) [4]uint32 {
	c, k := counter, key
	for round := 0; round < 10; round++ {
		if round > 0 {
			k[0] += philoxW0
			k[1] += philoxW1
		}
		hi0, lo0 := mulHiLo(philoxM0, c[0])
		hi1, lo1 := mulHiLo(philoxM1, c[2])
		c = [4]uint32{hi1 ^ c[1] ^ k[0], lo1, hi0 ^ c[3] ^ k[1], lo0}
	}
	return c
}

// philoxStream returns Philox4x32 of counter (word, tag, step low, step
// high) under the key formed from seed's low and high halves, the counter
// layout that dropout and augmentation share.
func philoxStream(word, tag uint32, seed, step uint64) [4]uint32 {
	return Philox4x32(
		[4]uint32{word, tag, uint32(step), uint32(step >> 32)},
		[2]uint32{uint32(seed), uint32(seed >> 32)})
}
