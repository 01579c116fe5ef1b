package train

import "math"

// Learning-rate schedules for Config.LRSchedule.
const (
	ScheduleConstant = "constant" // lr throughout
	ScheduleStep     = "step"     // lr * gamma^(epochs done / step epochs), as torch.optim.lr_scheduler.StepLR stepped per epoch
	ScheduleCosine   = "cosine"   // lr * (1 + cos(pi t / T)) / 2, as CosineAnnealingLR(T_max = T, eta_min = 0) stepped per step
)

// LRAt is the learning rate of the run's step (0-based, counted over the whole
// run) with stepsPerEpoch steps an epoch. The first W = WarmupEpochs *
// stepsPerEpoch steps (rounded) ramp linearly, step s getting lr * (s+1) / W;
// then the schedule runs: "step" decays by LRGamma every LRStepEpochs epochs of
// the run (warm-up included), "cosine" anneals from lr to 0 over the T steps
// after the warm-up, t counting from 0 at its end. A pure function of the step,
// so that a resumed run follows the same schedule exactly.
func LRAt(cfg Config, step, stepsPerEpoch int) float64 {
	warm := int(math.Round(cfg.WarmupEpochs * float64(stepsPerEpoch)))
	if step < warm {
		return cfg.LR * float64(step+1) / float64(warm)
	}
	switch cfg.LRSchedule {
	case ScheduleStep:
		every := cfg.LRStepEpochs
		if every == 0 {
			every = max(1, cfg.Epochs/3)
		}
		gamma := cfg.LRGamma
		if gamma == 0 {
			gamma = 0.1
		}
		return cfg.LR * math.Pow(gamma, float64(step/stepsPerEpoch/every))
	case ScheduleCosine:
		total := cfg.Epochs*stepsPerEpoch - warm
		if total <= 0 {
			return cfg.LR
		}
		return cfg.LR * (1 + math.Cos(math.Pi*float64(step-warm)/float64(total))) / 2
	}
	return cfg.LR
}
