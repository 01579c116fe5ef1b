package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// seedSteps are (seed, step) pairs, several above 2^32 in either word.
var seedSteps = [][2]uint64{{0, 0}, {1, 2}, {42, 1 << 32}, {0x123456789, 0xABCDEF0123}, {math.MaxUint64, math.MaxUint64 - 1}}

// checkDropout compares a downloaded dropout output of in with the reference:
// the kept pattern (out != 0, in having no zeros) bit for bit against
// ref.DropoutMask, the values within 2 unit roundoffs.
func checkDropout(t *testing.T, what string, got, in []float64, p float64, seed, step uint64) {
	t.Helper()
	want, mask := ref.DropoutForward(in, p, seed, step)
	for i := range got {
		if (got[i] != 0) != mask[i] {
			t.Fatalf("%s: seed %#x step %#x p %v: element %d kept = %v, ref %v", what, seed, step, p, i, got[i] != 0, mask[i])
		}
	}
	bound := make([]float64, len(want))
	for i, w := range want {
		bound[i] = 2 * eps32 * math.Abs(w)
	}
	compareBound(t, what, got, want, bound)
}

// TestDropout checks forward and backward masks bit for bit against
// ref.DropoutMask for several seeds, steps (above 2^32 too) and probabilities,
// lengths not a multiple of 4, and split bindings.
func TestDropout(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(7, 9))
	st, err := r.NewStepState("state")
	must(t, err)
	defer st.Free()
	check := func(t *testing.T, n int, p float32, seed, step uint64) {
		xv := randn(rng, n)
		dyv := randn(rng, n)
		x := tensorWith(t, r, "x", xv, n)
		dy := tensorWith(t, r, "dy", dyv, n)
		y := zeros(t, r, "y", n)
		dx := zeros(t, r, "dx", n)
		must(t, st.SetSeed(seed))
		must(t, st.SetStep(step))
		run(t, r, func(s *vk.Stream) error {
			if err := r.DropoutForward(s, p, st, x, y); err != nil {
				return err
			}
			return r.DropoutBackward(s, p, st, dy, dx)
		})
		checkDropout(t, "y", download(t, y), xv, float64(p), seed, step)
		checkDropout(t, "dx", download(t, dx), dyv, float64(p), seed, step)
	}
	for _, ss := range seedSteps {
		for _, p := range []float32{0.5, 0.1, 0.9, 0, 1, 0.3} {
			t.Run(fmt.Sprintf("seed%#x/step%#x/p%v", ss[0], ss[1], p), func(t *testing.T) { check(t, 4099, p, ss[0], ss[1]) })
		}
	}
	t.Run("small", func(t *testing.T) {
		for n := 1; n <= 9; n++ {
			check(t, n, 0.5, 3, 4)
		}
	})
	t.Run("split", func(t *testing.T) {
		saved := r.storageLimit
		defer func() { r.storageLimit = saved }()
		r.storageLimit = 256
		check(t, 1001, 0.5, 0x1234567890, 77)
	})
}

// TestDropoutReplay records a forward and backward once and submits the same
// stream for several steps and seeds, rewriting only the state between submits:
// each run must match the reference mask of the state it ran with.
func TestDropoutReplay(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(11, 12))
	st, err := r.NewStepState("state")
	must(t, err)
	defer st.Free()
	const n, p = 4 * 4096, 0.5
	xv := randn(rng, n)
	x := tensorWith(t, r, "x", xv, 4, 4096)
	y := zeros(t, r, "y", 4, 4096)
	dx := zeros(t, r, "dx", 4, 4096)
	s, err := r.Dev.NewStream("replay", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, r.DropoutForward(s, p, st, x, y))
	must(t, r.DropoutBackward(s, p, st, x, dx))
	var prev []float64
	for _, ss := range append(seedSteps, [2]uint64{1, 1}, [2]uint64{1, 2}, [2]uint64{1, 3}) {
		must(t, st.SetSeed(ss[0]))
		must(t, st.SetStep(ss[1]))
		if st.Seed() != ss[0] || st.Step() != ss[1] {
			t.Fatalf("state reads back seed %#x step %#x, set %#x %#x", st.Seed(), st.Step(), ss[0], ss[1])
		}
		must(t, s.Run())
		got := download(t, y)
		checkDropout(t, "y", got, xv, p, ss[0], ss[1])
		checkDropout(t, "dx", download(t, dx), xv, p, ss[0], ss[1])
		if prev != nil {
			same := true
			for i := range got {
				same = same && got[i] == prev[i]
			}
			if same {
				t.Fatalf("seed %#x step %#x: mask unchanged from the previous state", ss[0], ss[1])
			}
		}
		prev = got
	}
}

// TestDropoutEval checks that a nil state is the identity, in place or not, and
// that bad probabilities and lengths are errors.
func TestDropoutEval(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(13, 14))
	xv := randn(rng, 1001)
	x := tensorWith(t, r, "x", xv, 1001)
	y := zeros(t, r, "y", 1001)
	run(t, r, func(s *vk.Stream) error {
		if err := r.DropoutForward(s, 0.5, nil, x, y); err != nil {
			return err
		}
		return r.DropoutBackward(s, 0.5, nil, x, x)
	})
	exact(t, "y", download(t, y), xv)
	exact(t, "x", download(t, x), xv)
	st, err := r.NewStepState("state")
	must(t, err)
	defer st.Free()
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	short := zeros(t, r, "short", 1000)
	for name, err := range map[string]error{
		"p < 0":   r.DropoutForward(s, -0.1, st, x, y),
		"p > 1":   r.DropoutForward(s, 1.5, st, x, y),
		"p NaN":   r.DropoutBackward(s, float32(math.NaN()), st, x, y),
		"lengths": r.DropoutForward(s, 0.5, st, x, short),
		"nil":     r.ReLUForward(s, nil, y),
		"relu":    r.ReLUBackward(s, x, y, short),
	} {
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestStepState checks the words' layout and bounds.
func TestStepState(t *testing.T) {
	r := openRuntime(t)
	st, err := r.NewStepState("state")
	must(t, err)
	defer st.Free()
	must(t, st.SetStep(0x0102030405060708))
	must(t, st.SetSeed(0x1112131415161718))
	must(t, st.SetWord(4, 99))
	if err := st.SetWord(StateWords, 1); err == nil {
		t.Error("SetWord out of range: no error")
	}
	got := make([]uint32, StateWords)
	must(t, st.buf.ReadUint32(0, got))
	want := []uint32{0x05060708, 0x01020304, 0x15161718, 0x11121314, 99}
	for i, w := range want {
		if got[i] != w || st.Word(i) != w {
			t.Errorf("word %d = %#x (host %#x), want %#x", i, got[i], st.Word(i), w)
		}
	}
}
