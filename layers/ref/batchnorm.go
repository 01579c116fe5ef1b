package ref

import (
	"fmt"
	"math"
)

// BatchNormParams describes torch.nn.BatchNorm2d over an N x C x H x W input
// (NCHW): per channel, the N*H*W values are normalised by a mean and variance
// and then scaled by gamma and shifted by beta.
type BatchNormParams struct {
	N, C, H, W int
	Eps        float64 // added to the variance (PyTorch's default 1e-5)
	Momentum   float64 // running = (1-Momentum)*running + Momentum*batch (PyTorch's default 0.1)
}

// count is the number of values per channel, N*H*W.
func (p BatchNormParams) count() int { return p.N * p.H * p.W }

// Validate reports sizes below 1 and a negative eps or a momentum outside [0, 1].
func (p BatchNormParams) Validate() error {
	if err := checkAtLeast("batchnorm2d", 1, field{"N", p.N}, field{"C", p.C}, field{"H", p.H}, field{"W", p.W}); err != nil {
		return err
	}
	if !(p.Eps >= 0) || !(p.Momentum >= 0 && p.Momentum <= 1) {
		return fmt.Errorf("ref: batchnorm2d eps %g and momentum %g: want eps >= 0 and momentum in [0, 1]", p.Eps, p.Momentum)
	}
	return nil
}

// BatchNormStats are per-channel statistics: the mean and 1/sqrt(var+eps)
// that normalise a channel (the batch's in training mode, the running ones in
// eval mode).
type BatchNormStats struct {
	Mean, InvStd []float64
}

// at returns the index of element (n, c, i) of an NCHW tensor, i in [0, H*W).
func (p BatchNormParams) at(n, c, i int) int { return (n*p.C+c)*p.H*p.W + i }

// BatchNormBatchStats returns the batch statistics of x (training mode) and
// the biased variance of each channel, as torch.nn.functional.batch_norm
// normalises with. Training needs more than one value per channel, as in
// PyTorch.
func BatchNormBatchStats(p BatchNormParams, x []float64) (st BatchNormStats, variance []float64, err error) {
	if err := p.Validate(); err != nil {
		return st, nil, err
	}
	if err := checkLen("batchnorm2d x", len(x), p.N*p.C*p.H*p.W); err != nil {
		return st, nil, err
	}
	l := p.count()
	if l < 2 {
		return st, nil, fmt.Errorf("ref: batchnorm2d in training mode needs more than 1 value per channel, got %d", l)
	}
	st = BatchNormStats{Mean: make([]float64, p.C), InvStd: make([]float64, p.C)}
	variance = make([]float64, p.C)
	hw := p.H * p.W
	for c := 0; c < p.C; c++ {
		var sum float64
		for n := 0; n < p.N; n++ {
			for i := 0; i < hw; i++ {
				sum += x[p.at(n, c, i)]
			}
		}
		mean := sum / float64(l)
		var sq float64
		for n := 0; n < p.N; n++ {
			for i := 0; i < hw; i++ {
				d := x[p.at(n, c, i)] - mean
				sq += d * d
			}
		}
		st.Mean[c], variance[c] = mean, sq/float64(l)
		st.InvStd[c] = 1 / math.Sqrt(variance[c]+p.Eps)
	}
	return st, variance, nil
}

// BatchNormRunningStats returns the statistics eval mode normalises with:
// the running mean and 1/sqrt(running_var+eps).
func BatchNormRunningStats(p BatchNormParams, runMean, runVar []float64) (BatchNormStats, error) {
	if err := p.Validate(); err != nil {
		return BatchNormStats{}, err
	}
	if err := checkLen("batchnorm2d running_mean", len(runMean), p.C); err != nil {
		return BatchNormStats{}, err
	}
	if err := checkLen("batchnorm2d running_var", len(runVar), p.C); err != nil {
		return BatchNormStats{}, err
	}
	st := BatchNormStats{Mean: append([]float64(nil), runMean...), InvStd: make([]float64, p.C)}
	for c, v := range runVar {
		st.InvStd[c] = 1 / math.Sqrt(v+p.Eps)
	}
	return st, nil
}

// BatchNormUpdateRunning applies PyTorch's running-statistics update of a
// training-mode step in place: running_mean and running_var move by Momentum
// towards the batch mean and the batch's unbiased variance (biased * L/(L-1)).
func BatchNormUpdateRunning(p BatchNormParams, runMean, runVar, batchMean, batchVar []float64) {
	l := float64(p.count())
	for c := range runMean {
		runMean[c] = (1-p.Momentum)*runMean[c] + p.Momentum*batchMean[c]
		runVar[c] = (1-p.Momentum)*runVar[c] + p.Momentum*batchVar[c]*l/(l-1)
	}
}

// BatchNormForward returns y = (x - mean) * invstd * gamma + beta per channel.
func BatchNormForward(p BatchNormParams, x, gamma, beta []float64, st BatchNormStats) ([]float64, error) {
	if err := p.checkTensors(x, gamma, beta, st); err != nil {
		return nil, err
	}
	y := make([]float64, len(x))
	hw := p.H * p.W
	for n := 0; n < p.N; n++ {
		for c := 0; c < p.C; c++ {
			for i := 0; i < hw; i++ {
				e := p.at(n, c, i)
				y[e] = (x[e]-st.Mean[c])*st.InvStd[c]*gamma[c] + beta[c]
			}
		}
	}
	return y, nil
}

// BatchNormBackward returns the gradients of BatchNormForward's output dy
// with respect to x, gamma and beta. In training mode (train) the statistics
// are the batch's, functions of x, and dx carries their derivative:
//
//	dx = gamma*invstd * (dy - mean(dy) - xhat*mean(dy*xhat)),  xhat = (x-mean)*invstd
//
// In eval mode (and for frozen BatchNorm) they are constants: dx = gamma*invstd*dy.
// dgamma = sum(dy*xhat) and dbeta = sum(dy) per channel in both modes.
func BatchNormBackward(p BatchNormParams, train bool, x, dy, gamma []float64, st BatchNormStats) (dx, dgamma, dbeta []float64, err error) {
	if err := p.checkTensors(x, gamma, gamma, st); err != nil {
		return nil, nil, nil, err
	}
	if err := checkLen("batchnorm2d dy", len(dy), len(x)); err != nil {
		return nil, nil, nil, err
	}
	hw, l := p.H*p.W, float64(p.count())
	dgamma, dbeta = make([]float64, p.C), make([]float64, p.C)
	for n := 0; n < p.N; n++ {
		for c := 0; c < p.C; c++ {
			for i := 0; i < hw; i++ {
				e := p.at(n, c, i)
				dbeta[c] += dy[e]
				dgamma[c] += dy[e] * (x[e] - st.Mean[c]) * st.InvStd[c]
			}
		}
	}
	dx = make([]float64, len(x))
	for n := 0; n < p.N; n++ {
		for c := 0; c < p.C; c++ {
			k := gamma[c] * st.InvStd[c]
			for i := 0; i < hw; i++ {
				e := p.at(n, c, i)
				if train {
					xhat := (x[e] - st.Mean[c]) * st.InvStd[c]
					dx[e] = k * (dy[e] - dbeta[c]/l - xhat*dgamma[c]/l)
				} else {
					dx[e] = k * dy[e]
				}
			}
		}
	}
	return dx, dgamma, dbeta, nil
}

func (p BatchNormParams) checkTensors(x, gamma, beta []float64, st BatchNormStats) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := checkLen("batchnorm2d x", len(x), p.N*p.C*p.H*p.W); err != nil {
		return err
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"gamma", len(gamma)}, {"beta", len(beta)}, {"mean", len(st.Mean)}, {"invstd", len(st.InvStd)}} {
		if err := checkLen("batchnorm2d "+v.name, v.n, p.C); err != nil {
			return err
		}
	}
	return nil
}
