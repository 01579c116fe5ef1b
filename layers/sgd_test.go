package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// sgdRef32 is the configuration the device holds, as ref.SGDParams: every
// hyper-parameter rounded to float32 once, 1-dampening included (as torch's
// alpha; 1 - float32(1-d) is exact in float64).
func sgdRef32(c SGDConfig) ref.SGDParams {
	f := func(v float64) float64 { return float64(float32(v)) }
	return ref.SGDParams{LR: f(c.LR), Momentum: f(c.Momentum), Dampening: 1 - f(1-c.Dampening), WeightDecay: f(c.WeightDecay), Nesterov: c.Nesterov}
}

// sgdBounds returns the float32 error bounds of one device step from param p,
// gradient gr and momentum buffer b (float32 values), following the kernel's
// operations, each add or multiply rounding once (a fused multiply-add rounds
// less):
//
//	g1 = gr + wd p                   e1 = eps(|gr| + 2|wd p|)
//	b' = m b + a g1 (first: g1)      e2 = eps(2|m b| + 2|a g1|) + |a| e1  (first: e1)
//	g2 = g1 + m b' (Nesterov) or b'  e3 = e1 + m e2 + eps(2|m b'| + |g1|)  or e2
//	p' = p - lr g2                   e4 = lr e3 + eps(|p| + 2|lr g2|)
func sgdBounds(c ref.SGDParams, p, gr, b []float64, first, hasBuf bool) (pb, bb []float64) {
	return sgdBoundsGradErr(c, p, gr, nil, b, first, hasBuf)
}

// sgdBoundsGradErr is sgdBounds for a gradient gr itself computed with error
// up to ge[i] (nil: exact), as a fused GEMM update's is: the error enters at g1.
func sgdBoundsGradErr(c ref.SGDParams, p, gr, ge, b []float64, first, hasBuf bool) (pb, bb []float64) {
	pb, bb = make([]float64, len(p)), make([]float64, len(p))
	for i := range p {
		g1, e1 := gr[i], 0.0
		if ge != nil {
			e1 = ge[i]
		}
		if c.WeightDecay != 0 {
			g1 = gr[i] + c.WeightDecay*p[i]
			e1 += eps32 * (math.Abs(gr[i]) + 2*math.Abs(c.WeightDecay*p[i]))
		}
		g2, e3 := g1, e1
		if hasBuf && c.Momentum != 0 {
			a := 1 - c.Dampening
			nb, e2 := g1, e1
			if !first {
				nb = c.Momentum*b[i] + a*g1
				e2 = eps32*(2*math.Abs(c.Momentum*b[i])+2*math.Abs(a*g1)) + math.Abs(a)*e1
			}
			bb[i] = 1.01*e2 + 1e-45
			g2, e3 = nb, e2
			if c.Nesterov {
				g2 = g1 + c.Momentum*nb
				e3 = e1 + c.Momentum*e2 + eps32*(2*math.Abs(c.Momentum*nb)+math.Abs(g1))
			}
		}
		pb[i] = 1.01*(c.LR*e3+eps32*(math.Abs(p[i])+2*math.Abs(c.LR*g2))) + 1e-45
	}
	return pb, bb
}

// sgdRun records SGD over one parameter (length n) with cfg, submits the stream
// `steps` times and checks each step against ref.SGDStep started from the
// device's state before the step. Before step `lrAt` it changes the learning rate
// and before step `restartAt` it restarts the optimizer, without re-recording.
func sgdRun(t *testing.T, r *Runtime, rng *rand.Rand, n int, cfg SGDConfig, withBuf bool, steps, lrAt, restartAt int) {
	t.Helper()
	param := tensorWith(t, r, "param", randn(rng, n), n)
	grad := zeros(t, r, "grad", n)
	var buf *Tensor
	if withBuf {
		buf = zeros(t, r, "buf", n)
		must(t, buf.Upload(to32(randn(rng, n)))) // garbage the first step must ignore
	}
	p, err := r.NewSGDParams("sgd", cfg)
	must(t, err)
	t.Cleanup(p.Free)
	s, err := r.Dev.NewStream("sgd", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, r.SGD(s, p, param, grad, buf))
	must(t, p.FinishStep(s))

	first := true
	for step := 0; step < steps; step++ {
		if step == lrAt {
			cfg.LR *= 0.37
			must(t, p.SetLR(cfg.LR))
		}
		if step == restartAt {
			must(t, p.Restart())
			first = true
		}
		if f, err := p.First(); err != nil || f != first {
			t.Fatalf("step %d: first flag %v (%v), want %v", step, f, err, first)
		}
		g := randn(rng, n)
		for i := range g {
			g[i] = float64(float32(g[i] * 0.1))
		}
		must(t, grad.Upload(to32(g)))
		p0 := download(t, param)
		var b0 []float64
		if withBuf {
			b0 = download(t, buf)
		}
		must(t, s.Run())

		c := sgdRef32(cfg)
		wantP := append([]float64(nil), p0...)
		wantB := append([]float64(nil), b0...)
		refBuf := wantB
		if !withBuf {
			c.Momentum, c.Dampening, c.Nesterov = 0, 0, false
			refBuf = nil
		}
		must(t, ref.SGDStep(c, wantP, g, refBuf, first))
		pb, bb := sgdBounds(c, p0, g, b0, first, withBuf)
		name := fmt.Sprintf("step%d", step)
		compareBound(t, name+"/param", download(t, param), wantP, pb)
		if withBuf && c.Momentum != 0 {
			compareBound(t, name+"/buf", download(t, buf), wantB, bb)
		}
		first = false
	}
}

// TestSGD checks several steps of each torch configuration against
// ref.SGDStep: the first step's buffer initialization, a learning rate changed
// and a restart between submits of one recorded stream, and both kernel
// variants (texel reads and storage reads).
func TestSGD(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(21, 22))
	configs := []struct {
		name string
		cfg  SGDConfig
		buf  bool
	}{
		{"momentum", SGDConfig{LR: 0.01, Momentum: 0.9}, true},
		{"nesterov+wd", SGDConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}, true},
		{"dampening", SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.5, WeightDecay: 0.01}, true},
		{"dampening0.3", SGDConfig{LR: 0.1, Momentum: 0.7, Dampening: 0.3}, true},
		{"plain", SGDConfig{LR: 0.1}, true},
		{"plain+wd/nobuf", SGDConfig{LR: 0.1, WeightDecay: 0.01}, false},
		{"momentum/nobuf", SGDConfig{LR: 0.1, Momentum: 0.9}, false},
	}
	variants(t, r, func(t *testing.T) {
		for _, c := range configs {
			t.Run(c.name, func(t *testing.T) {
				sgdRun(t, r, rng, 1003, c.cfg, c.buf, 5, 2, 4)
			})
		}
	})
}

// TestSGDChunked forces bindings in several aligned chunks by lowering the
// storage limit, as fc6's 151 MB weight needs on lavapipe.
func TestSGDChunked(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(23, 24))
	defer func(l int64) { r.storageLimit = l }(r.storageLimit)
	r.storageLimit = 1000 // bytes: a 2001-element tensor takes 9 or more chunks
	chunks, err := r.sgdChunks(8016, r.storageLimit)
	must(t, err)
	if len(chunks) < 8 {
		t.Fatalf("%d chunks", len(chunks))
	}
	variants(t, r, func(t *testing.T) {
		sgdRun(t, r, rng, 2001, SGDConfig{LR: 0.05, Momentum: 0.9, WeightDecay: 5e-4, Nesterov: true}, true, 3, 1, -1)
	})
}

// TestSGDMany records one step over several parameters, as a training step
// does: one first-flag clear after all of them.
func TestSGDMany(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(25, 26))
	cfg := SGDConfig{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}
	p, err := r.NewSGDParams("sgd", cfg)
	must(t, err)
	t.Cleanup(p.Free)
	sizes := []int{7, 64, 129}
	var params, grads, bufs []*Tensor
	var gv [][]float64
	s, err := r.Dev.NewStream("sgd", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	for _, n := range sizes {
		gv = append(gv, randn(rng, n))
		params = append(params, tensorWith(t, r, "p", randn(rng, n), n))
		grads = append(grads, tensorWith(t, r, "g", gv[len(gv)-1], n))
		bufs = append(bufs, zeros(t, r, "b", n))
		must(t, r.SGD(s, p, params[len(params)-1], grads[len(grads)-1], bufs[len(bufs)-1]))
	}
	must(t, p.FinishStep(s))
	c := sgdRef32(cfg)
	for step := 0; step < 3; step++ {
		p0, b0 := make([][]float64, len(sizes)), make([][]float64, len(sizes))
		for i := range sizes {
			p0[i], b0[i] = download(t, params[i]), download(t, bufs[i])
		}
		must(t, s.Run())
		for i := range sizes {
			wantP, wantB := append([]float64(nil), p0[i]...), append([]float64(nil), b0[i]...)
			must(t, ref.SGDStep(c, wantP, gv[i], wantB, step == 0))
			pb, bb := sgdBounds(c, p0[i], gv[i], b0[i], step == 0, true)
			compareBound(t, fmt.Sprintf("step%d/p%d", step, i), download(t, params[i]), wantP, pb)
			compareBound(t, fmt.Sprintf("step%d/b%d", step, i), download(t, bufs[i]), wantB, bb)
		}
	}
}

func TestSGDErrors(t *testing.T) {
	r := openRuntime(t)
	for _, c := range []SGDConfig{
		{LR: 0.1, Nesterov: true},
		{LR: 0.1, Momentum: 0.9, Dampening: 0.1, Nesterov: true},
		{LR: math.NaN()},
		{LR: -1},
	} {
		if _, err := r.NewSGDParams("bad", c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	p, err := r.NewSGDParams("sgd", SGDConfig{LR: 0.1})
	must(t, err)
	t.Cleanup(p.Free)
	if err := p.Set(SGDConfig{LR: 0.1, Nesterov: true}); err == nil {
		t.Error("Set accepted nesterov without momentum")
	}
	a, b, c := zeros(t, r, "a", 8), zeros(t, r, "b", 8), zeros(t, r, "c", 9)
	s, err := r.Dev.NewStream("errors", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	for i, x := range [][3]*Tensor{{a, c, b}, {a, b, c}, {a, a, b}, {a, b, a}, {a, nil, b}} {
		if err := r.SGD(s, p, x[0], x[1], x[2]); err == nil {
			t.Errorf("case %d accepted", i)
		}
	}
}

// TestSGDFullSizeFC6 updates a tensor of fc6's weight size (4096 x 9216, 151 MB:
// more than lavapipe's 128 MiB storage range) with validation on, and checks
// the elements around every chunk boundary and at both ends.
func TestSGDFullSizeFC6(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 450 MB")
	}
	r := openRuntime(t)
	const n = 4096 * 9216
	cfg := SGDConfig{LR: 0.01, Momentum: 0.9, WeightDecay: 5e-4}
	val := func(i, k int) float32 { return float32((i*k)%1999-999) / 1000 }
	mk := func(name string, k int) *Tensor {
		x := zeros(t, r, name, 4096, 9216)
		v := make([]float32, n)
		for i := range v {
			v[i] = val(i, k)
		}
		must(t, x.Upload(v))
		return x
	}
	param, grad, buf := mk("param", 7), mk("grad", 13), mk("buf", 3)
	p, err := r.NewSGDParams("sgd", cfg)
	must(t, err)
	t.Cleanup(p.Free)
	must(t, p.Restart())
	must(t, p.Set(cfg))
	must(t, p.buf.WriteUint32(SGDFirstWord, []uint32{0})) // use the buffer's values
	chunks, err := r.sgdChunks(param.Range().Size, r.storageLimit)
	must(t, err)
	if len(chunks) < 2 {
		t.Fatalf("%d chunks: the storage limit %d does not split fc6", len(chunks), r.storageLimit)
	}
	run(t, r, func(s *vk.Stream) error { return r.SGD(s, p, param, grad, buf) })
	gotP, gotB := download(t, param), download(t, buf)
	var idx []int
	for _, c := range chunks {
		e := int(c[0] / 4)
		for d := -5; d < 5; d++ {
			if e+d >= 0 && e+d < n {
				idx = append(idx, e+d)
			}
		}
	}
	idx = append(idx, n-3, n-2, n-1)
	c := sgdRef32(cfg)
	for _, i := range idx {
		p0, g0, b0 := []float64{float64(val(i, 7))}, []float64{float64(val(i, 13))}, []float64{float64(val(i, 3))}
		wp, wb := append([]float64(nil), p0...), append([]float64(nil), b0...)
		must(t, ref.SGDStep(c, wp, g0, wb, false))
		pb, bb := sgdBounds(c, p0, g0, b0, false, true)
		if math.Abs(gotP[i]-wp[0]) > pb[0] || math.Abs(gotB[i]-wb[0]) > bb[0] {
			t.Fatalf("element %d: param %v buf %v, want %v %v", i, gotP[i], gotB[i], wp[0], wb[0])
		}
	}
	t.Logf("%d chunks, %d elements checked", len(chunks), len(idx))
}
