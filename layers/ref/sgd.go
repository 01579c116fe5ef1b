package ref

import "errors"

// SGDParams are the hyper-parameters of torch.optim.SGD.
type SGDParams struct {
	LR          float64 // learning rate
	Momentum    float64 // momentum factor; 0 disables the momentum buffer
	Dampening   float64 // dampening of the gradient added to the buffer
	WeightDecay float64 // L2 penalty added to the gradient
	Nesterov    bool    // Nesterov momentum; needs Momentum > 0 and Dampening == 0
}

// SGDStep performs one torch.optim.SGD update of param in place:
//
//	g = grad + WeightDecay*param
//	if Momentum != 0 {
//		if first { buf = g } else { buf = Momentum*buf + (1-Dampening)*g }
//		if Nesterov { g = g + Momentum*buf } else { g = buf }
//	}
//	param -= LR*g
//
// buf (the momentum buffer, same length as param) is updated in place; it
// is not used, and may be nil, when Momentum == 0. first marks the first
// step, when PyTorch creates the buffer from g. As in PyTorch, Nesterov
// requires Momentum > 0 and Dampening == 0.
func SGDStep(p SGDParams, param, grad, buf []float64, first bool) error {
	if p.Nesterov && (p.Momentum <= 0 || p.Dampening != 0) {
		return errors.New("ref: sgd nesterov momentum requires a momentum and zero dampening")
	}
	if err := checkLen("sgd grad", len(grad), len(param)); err != nil {
		return err
	}
	if p.Momentum != 0 {
		if err := checkLen("sgd buf", len(buf), len(param)); err != nil {
			return err
		}
	}
	for i := range param {
		g := grad[i] + p.WeightDecay*param[i]
		if p.Momentum != 0 {
			if first {
				buf[i] = g
			} else {
				buf[i] = p.Momentum*buf[i] + (1-p.Dampening)*g
			}
			if p.Nesterov {
				g += p.Momentum * buf[i]
			} else {
				g = buf[i]
			}
		}
		param[i] -= p.LR * g
	}
	return nil
}
