package ref

import "testing"

func TestSGDStepHand(t *testing.T) {
	p := SGDParams{LR: 0.5, Momentum: 0.5, Dampening: 0.5, WeightDecay: 0.25}
	param, buf := []float64{4}, []float64{0}
	// Step 1: g = 2 + 1 = 3, buf = 3, param = 4 - 1.5 = 2.5.
	if err := SGDStep(p, param, []float64{2}, buf, true); err != nil {
		t.Fatal(err)
	}
	compare(t, "step 1", []float64{param[0], buf[0]}, []float64{2.5, 3}, 0)
	// Step 2: g = 2 + 0.625 = 2.625, buf = 1.5 + 1.3125 = 2.8125, param = 2.5 - 1.40625.
	if err := SGDStep(p, param, []float64{2}, buf, false); err != nil {
		t.Fatal(err)
	}
	compare(t, "step 2", []float64{param[0], buf[0]}, []float64{1.09375, 2.8125}, 0)

	// Nesterov, step 1: g = 2, buf = 2, g = 2 + 0.5*2 = 3, param = 4 - 1.5.
	param, buf = []float64{4}, []float64{0}
	if err := SGDStep(SGDParams{LR: 0.5, Momentum: 0.5, Nesterov: true}, param, []float64{2}, buf, true); err != nil {
		t.Fatal(err)
	}
	compare(t, "nesterov", []float64{param[0], buf[0]}, []float64{2.5, 2}, 0)

	// No momentum: buf may be nil.
	param = []float64{1}
	if err := SGDStep(SGDParams{LR: 0.25}, param, []float64{2}, nil, true); err != nil {
		t.Fatal(err)
	}
	compare(t, "plain", param, []float64{0.5}, 0)
}

func TestSGDStepRejectsBadInput(t *testing.T) {
	two := []float64{1, 2}
	if SGDStep(SGDParams{LR: 1, Momentum: 0.9}, two, two, []float64{0}, true) == nil {
		t.Error("short buffer accepted")
	}
	if SGDStep(SGDParams{LR: 1}, two, []float64{1}, nil, true) == nil {
		t.Error("short grad accepted")
	}
	if SGDStep(SGDParams{LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}, two, two, []float64{0, 0}, true) == nil {
		t.Error("nesterov with dampening accepted")
	}
	if SGDStep(SGDParams{LR: 1, Nesterov: true}, two, two, nil, true) == nil {
		t.Error("nesterov without momentum accepted")
	}
}

func TestSGDStepGolden(t *testing.T) {
	for _, c := range loadFixture(t, "sgd.json") {
		t.Run(c.Name, func(t *testing.T) {
			p := SGDParams{
				LR: c.float(t, "LR"), Momentum: c.float(t, "Momentum"), Dampening: c.float(t, "Dampening"),
				WeightDecay: c.float(t, "WeightDecay"), Nesterov: c.int(t, "Nesterov") == 1,
			}
			steps := c.int(t, "Steps")
			param := append([]float64(nil), c.data(t, "param0")...)
			n := len(param)
			grads, params, bufs := c.data(t, "grads"), c.data(t, "params"), c.data(t, "bufs")
			buf := make([]float64, n)
			worst := 0.0
			for s := 0; s < steps; s++ {
				if err := SGDStep(p, param, grads[s*n:(s+1)*n], buf, s == 0); err != nil {
					t.Fatal(err)
				}
				worst = max(worst, compare(t, "param", param, params[s*n:(s+1)*n], goldenTol))
				worst = max(worst, compare(t, "buf", buf, bufs[s*n:(s+1)*n], goldenTol))
			}
			t.Logf("worst rel err vs torch over %d steps %.2g (tol %.0g)", steps, worst, goldenTol)
		})
	}
}
