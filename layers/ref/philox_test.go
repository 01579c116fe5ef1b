package ref

import (
	"math"
	"testing"
)

// TestPhiloxKnownAnswers uses Random123's kat_vectors for philox4x32_10.
func TestPhiloxKnownAnswers(t *testing.T) {
	cases := []struct {
		ctr  [4]uint32
		key  [2]uint32
		want [4]uint32
	}{
		{[4]uint32{0, 0, 0, 0}, [2]uint32{0, 0},
			[4]uint32{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
		{[4]uint32{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, [2]uint32{0xffffffff, 0xffffffff},
			[4]uint32{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
		{[4]uint32{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, [2]uint32{0xa4093822, 0x299f31d0},
			[4]uint32{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
	}
	for _, c := range cases {
		if got := Philox4x32(c.ctr, c.key); got != c.want {
			t.Errorf("Philox4x32(%08x, %08x) = %08x, want %08x", c.ctr, c.key, got, c.want)
		}
	}
}

// TestDropoutMaskLayout recomputes a few mask bits straight from the
// documented counter layout, with a seed and step that use both halves.
func TestDropoutMaskLayout(t *testing.T) {
	const seed, step, p = 0x0123456789abcdef, 0xfedcba9876543210, 0.5
	mask := DropoutMask(1001, p, seed, step)
	for _, i := range []int{0, 1, 2, 3, 4, 7, 500, 1000} {
		out := Philox4x32([4]uint32{uint32(i >> 2), 0, 0x76543210, 0xfedcba98}, [2]uint32{0x89abcdef, 0x01234567})
		u := float64(out[i&3]>>8) / (1 << 24)
		if mask[i] != (u >= p) {
			t.Errorf("mask[%d] = %v, u = %v", i, mask[i], u)
		}
	}
}

// TestDropoutMaskBoundary checks that an element whose u equals p
// exactly is kept (u >= p), and dropped when p is one ulp larger.
func TestDropoutMaskBoundary(t *testing.T) {
	const i, seed, step = 6, 11, 5
	out := Philox4x32([4]uint32{i >> 2, 0, step, 0}, [2]uint32{seed, 0})
	u := float64(out[i&3]>>8) / (1 << 24)
	if !DropoutMask(i+1, u, seed, step)[i] {
		t.Errorf("element with u == p = %v dropped", u)
	}
	if DropoutMask(i+1, math.Nextafter(u, 1), seed, step)[i] {
		t.Errorf("element with u = %v < p kept", u)
	}
}

func TestDropoutMaskStatistics(t *testing.T) {
	const n = 200000
	for _, p := range []float64{0.1, 0.5, 0.9} {
		kept := 0
		for _, k := range DropoutMask(n, p, 42, 7) {
			if k {
				kept++
			}
		}
		// Binomial: 5 standard deviations is at most 5*sqrt(n/4) = 1118.
		if d := math.Abs(float64(kept) - n*(1-p)); d > 5*math.Sqrt(n*p*(1-p)) {
			t.Errorf("p=%v: kept %d of %d", p, kept, n)
		}
	}
	for _, k := range DropoutMask(1000, 0, 1, 1) {
		if !k {
			t.Fatal("p=0 dropped an element")
		}
	}
	for _, k := range DropoutMask(1000, 1, 1, 1) {
		if k {
			t.Fatal("p=1 kept an element")
		}
	}
	a, b, c := DropoutMask(64, 0.5, 1, 1), DropoutMask(64, 0.5, 1, 2), DropoutMask(64, 0.5, 2, 1)
	same := func(x, y []bool) bool {
		for i := range x {
			if x[i] != y[i] {
				return false
			}
		}
		return true
	}
	if same(a, b) || same(a, c) {
		t.Error("changing step or seed left the mask unchanged")
	}
	if !same(a, DropoutMask(64, 0.5, 1, 1)) {
		t.Error("mask is not deterministic")
	}
}

func TestDropoutForwardBackward(t *testing.T) {
	r := newRand(500)
	const p = 0.3
	x := randSlice(r, 103)
	y, mask := DropoutForward(x, p, 9, 3)
	want := DropoutMask(len(x), p, 9, 3)
	g := randSlice(r, len(x))
	dx, err := DropoutBackward(g, mask, p)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x {
		if mask[i] != want[i] {
			t.Fatalf("mask[%d] differs from DropoutMask", i)
		}
		wy, wdx := 0.0, 0.0
		if mask[i] {
			wy, wdx = x[i]/(1-p), g[i]/(1-p)
		}
		if relErr(y[i], wy) > 1e-15 || relErr(dx[i], wdx) > 1e-15 {
			t.Fatalf("element %d: y %v dx %v, want %v %v", i, y[i], dx[i], wy, wdx)
		}
	}
	if _, err := DropoutBackward(g, mask[1:], p); err == nil {
		t.Error("short mask accepted")
	}
	if _, err := DropoutBackward(g, mask, 1.5); err == nil {
		t.Error("p > 1 accepted")
	}
	defer func() {
		if recover() == nil {
			t.Error("DropoutMask accepted p = -0.1")
		}
	}()
	DropoutMask(4, -0.1, 0, 0)
}
