package layers

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"vktrain/layers/ref"
	"vktrain/vk"
)

// adamBounds returns the float32 error bounds of one device step of Adam (or
// AdamW) from param x, gradient g and moments m0, v0 (float32 values), to first
// order in eps, each add, multiply, divide and square root rounding once and
// every hyper-parameter rounded once from float64 (1-beta as torch's own
// float32 alpha; step_size and sqrt(1-beta2^t) from float64):
//
//	x1 = x (1 - lr wd) (AdamW)        ex = 5 eps |x|
//	g1 = g + wd x (Adam)              eg = eps (|g| + 3 |wd x|)
//	m = b1 m0 + (1-b1) g1             em = eps (3 |b1 m0| + 5 |(1-b1) g1|) + (1-b1) eg
//	v = b2 v0 + (1-b2) g1 g1          ev = 6 eps v + 2 (1-b2) |g1| eg
//	d = sqrt(v) / c2 + e              ed = (sqrt(v)/c2) (ev/2v + 3 eps) + eps d
//	u = s m / d                       eu = |u| (4 eps + ed/d) + s em / d
//	p = x1 - u                        ep = ex + eu + eps (|x1| + |u|)
func adamBounds(c AdamConfig, step int, x, g, m0, v0 []float64) (pb, mb, vb []float64) {
	pb, mb, vb = make([]float64, len(x)), make([]float64, len(x)), make([]float64, len(x))
	s := c.LR / (1 - math.Pow(c.Beta1, float64(step)))
	c2 := math.Sqrt(1 - math.Pow(c.Beta2, float64(step)))
	for i := range x {
		x1, ex := x[i], 0.0
		g1, eg := g[i], 0.0
		if c.Decoupled {
			x1 = x[i] * (1 - c.LR*c.WeightDecay)
			ex = 5 * eps32 * math.Abs(x[i])
		} else if c.WeightDecay != 0 {
			g1 = g[i] + c.WeightDecay*x[i]
			eg = eps32 * (math.Abs(g[i]) + 3*math.Abs(c.WeightDecay*x[i]))
		}
		m := c.Beta1*m0[i] + (1-c.Beta1)*g1
		em := eps32*(3*math.Abs(c.Beta1*m0[i])+5*math.Abs((1-c.Beta1)*g1)) + (1-c.Beta1)*eg
		v := c.Beta2*v0[i] + (1-c.Beta2)*g1*g1
		ev := 6*eps32*v + 2*(1-c.Beta2)*math.Abs(g1)*eg
		sq := math.Sqrt(v) / c2
		d := sq + c.Eps
		relV := 0.0
		if v > 0 {
			relV = ev / (2 * v)
		}
		ed := sq*(relV+3*eps32) + eps32*d
		u := s * m / d
		eu := math.Abs(u)*(4*eps32+ed/d) + s*em/d
		pb[i] = 1.01*(ex+eu+eps32*(math.Abs(x1)+math.Abs(u))) + 1e-45
		mb[i] = 1.01*em + 1e-45
		vb[i] = 1.01*ev + 1e-45
	}
	return pb, mb, vb
}

// TestAdam checks several steps of Adam and AdamW, recorded once and submitted
// with SetStep between submits, against ref.AdamStep started from the device's
// state before each step, within adamBounds: torch's defaults, a weight decay
// each way, large betas' complements and learning rate, an odd length, and
// (chunked) bindings in several aligned sub-ranges.
func TestAdam(t *testing.T) {
	r := openRuntime(t)
	rng := rand.New(rand.NewPCG(41, 42))
	for _, c := range []struct {
		name  string
		cfg   AdamConfig
		limit int64
	}{
		{"adam", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, 0},
		{"adam+wd", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, 0},
		{"adamw", AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}, 0},
		{"betas0.5,0.9/lr0.1", AdamConfig{LR: 0.1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, WeightDecay: 0.1, Decoupled: true}, 0},
		{"adamw/chunked", AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.05, Decoupled: true}, 1000},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.limit > 0 {
				defer func(l int64) { r.storageLimit = l }(r.storageLimit)
				r.storageLimit = c.limit
			}
			adamRun(t, r, rng, 1003, c.cfg, 4)
		})
	}
}

func adamRun(t *testing.T, r *Runtime, rng *rand.Rand, n int, cfg AdamConfig, steps int) {
	t.Helper()
	param := tensorWith(t, r, "param", randn(rng, n), n)
	grad, m, v := zeros(t, r, "grad", n), zeros(t, r, "exp_avg", n), zeros(t, r, "exp_avg_sq", n)
	p, err := r.NewAdamParams("adam", cfg)
	must(t, err)
	t.Cleanup(p.Free)
	s, err := r.Dev.NewStream("adam", vk.StreamOptions{})
	must(t, err)
	defer s.Close()
	must(t, r.Adam(s, p, param, grad, m, v))
	for step := 1; step <= steps; step++ {
		must(t, p.SetStep(step))
		g := randn(rng, n)
		for i := range g {
			g[i] = float64(float32(g[i] * 0.1))
		}
		if step == 3 {
			g[0], g[1] = 0, 1e-20 // a moment near zero: eps in the denominator matters
		}
		must(t, grad.Upload(to32(g)))
		x0, m0, v0 := download(t, param), download(t, m), download(t, v)
		must(t, s.Run())
		wantP, wantM, wantV := append([]float64(nil), x0...), append([]float64(nil), m0...), append([]float64(nil), v0...)
		rc := ref.AdamParams{LR: cfg.LR, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: cfg.WeightDecay, Decoupled: cfg.Decoupled}
		must(t, ref.AdamStep(rc, wantP, g, wantM, wantV, step))
		pb, mb, vb := adamBounds(cfg, step, x0, g, m0, v0)
		name := fmt.Sprintf("step%d", step)
		compareBound(t, name+"/param", download(t, param), wantP, pb)
		compareBound(t, name+"/exp_avg", download(t, m), wantM, mb)
		compareBound(t, name+"/exp_avg_sq", download(t, v), wantV, vb)
	}
}

// TestAdamConfigErrors: configurations torch refuses are refused.
func TestAdamConfigErrors(t *testing.T) {
	for _, c := range []AdamConfig{{LR: -1, Beta1: 0.9, Beta2: 0.999}, {LR: 1e-3, Beta1: 1, Beta2: 0.999}, {LR: 1e-3, Beta1: 0.9, Beta2: math.NaN()}} {
		if err := c.Validate(); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
