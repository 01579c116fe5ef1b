package ref

import (
	"errors"
	"math"
)

// AdamParams are the hyper-parameters of torch.optim.Adam (Decoupled false)
// and torch.optim.AdamW (Decoupled true), without amsgrad.
type AdamParams struct {
	LR, Beta1, Beta2, Eps float64
	WeightDecay           float64
	Decoupled             bool // AdamW: the decay scales the parameter instead of joining the gradient
}

// AdamStep performs update number step (1 for the first) of torch 1.13's
// _single_tensor_adam / _single_tensor_adamw on param in place, with the
// first and second moments m and v (updated in place):
//
//	AdamW: param *= 1 - LR*WeightDecay;  Adam: g = grad + WeightDecay*param
//	m = Beta1*m + (1-Beta1)*g
//	v = Beta2*v + (1-Beta2)*g*g
//	param -= LR/(1-Beta1^step) * m / (sqrt(v)/sqrt(1-Beta2^step) + Eps)
func AdamStep(p AdamParams, param, grad, m, v []float64, step int) error {
	if step < 1 {
		return errors.New("ref: adam steps count from 1")
	}
	for _, n := range []struct {
		name string
		got  int
	}{{"adam grad", len(grad)}, {"adam exp_avg", len(m)}, {"adam exp_avg_sq", len(v)}} {
		if err := checkLen(n.name, n.got, len(param)); err != nil {
			return err
		}
	}
	stepSize := p.LR / (1 - math.Pow(p.Beta1, float64(step)))
	bc2Sqrt := math.Sqrt(1 - math.Pow(p.Beta2, float64(step)))
	for i := range param {
		g := grad[i]
		if p.Decoupled {
			param[i] *= 1 - p.LR*p.WeightDecay
		} else {
			g += p.WeightDecay * param[i]
		}
		m[i] = p.Beta1*m[i] + (1-p.Beta1)*g
		v[i] = p.Beta2*v[i] + (1-p.Beta2)*g*g
		param[i] -= stepSize * m[i] / (math.Sqrt(v[i])/bc2Sqrt + p.Eps)
	}
	return nil
}
