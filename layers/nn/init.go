package nn

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"strings"

	"vktrain/train/weights"
)

// InitBound returns the half-width of the uniform range PyTorch's
// reset_parameters uses for Conv2d and Linear: weights come from
// kaiming_uniform_(a=sqrt(5)), whose bound is gain*sqrt(3/fan_in) with
// gain = sqrt(2/(1+5)), that is 1/sqrt(fan_in); biases from U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)) with the weight's fan_in. fanIn is the weight's shape[1]
// times its receptive field (in_channels/groups*kh*kw for a convolution,
// in_features for a linear layer).
func InitBound(fanIn int) float64 {
	if fanIn < 1 {
		return 0
	}
	gain := math.Sqrt(2.0 / (1 + 5))
	return gain * math.Sqrt(3.0/float64(fanIn))
}

// FanIn returns the fan_in PyTorch computes for the parameter's layer: from the
// layer's "weight" of two or more dimensions, shape[1] times the product of
// shape[2:]. It returns 0 when the layer has no such weight.
func (p Param) FanIn() int {
	if p.Module == nil {
		return 0
	}
	for _, s := range p.Module.ParamSpecs() {
		if s.Name == "weight" && len(s.Shape) >= 2 {
			return int(numel(s.Shape[1:]))
		}
	}
	return 0
}

// InitParam returns PyTorch-style initial values for one parameter (see
// InitBound), drawn uniformly from [-bound, bound) with a PCG generator seeded by
// seed and the parameter's name: the same seed and name give the same values
// whatever the rest of the model is, so a replaced layer can be initialized alone.
// A BatchNorm2d's weight is 1 and its bias 0 (its reset_parameters). A
// parameter whose layer has no weight to take fan_in from comes back as zeros.
//
// The distribution is PyTorch's; the values are not torch's bit for bit (torch
// draws from its own generator).
func InitParam(p Param, seed uint64) []float32 {
	vals := make([]float32, p.Numel())
	if _, ok := p.Module.(*BatchNorm2d); ok {
		if p.Local == "weight" {
			for i := range vals {
				vals[i] = 1
			}
		}
		return vals
	}
	bound := InitBound(p.FanIn())
	if bound == 0 {
		return vals
	}
	h := fnv.New64a()
	h.Write([]byte(p.Name))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	for i := range vals {
		vals[i] = float32(bound * (2*rng.Float64() - 1))
	}
	return vals
}

// InitStateDict is InitStateDictScheme(seed, InitTorch): the model's whole
// initial state as torchvision builds it.
func (m *Model) InitStateDict(seed uint64) (*weights.StateDict, error) {
	return m.InitStateDictScheme(seed, InitTorch)
}

// InitScheme chooses how InitStateDictScheme draws the initial parameters.
type InitScheme string

// Initialisation schemes. InitTorch is the model as torchvision builds it:
// PyTorch's default reset_parameters (InitParam) for AlexNet, and for a
// ResNet what ResNet.__init__ does on top: convolution weights normal with
// std sqrt(2/fan_out) (kaiming_normal_, mode fan_out). InitKaiming is the
// scheme torchvision gives VGG, which trains deep ReLU networks from scratch
// much faster: convolution weights as a ResNet's, linear weights normal with
// std 0.01, biases 0. BatchNorm weights are 1 and biases 0 in both.
const (
	InitTorch   InitScheme = "torch"
	InitKaiming InitScheme = "kaiming"
)

// InitParamKaiming returns InitKaiming's values for one parameter, seeded like
// InitParam by seed and the parameter's name (a BatchNorm2d's as InitParam's).
func InitParamKaiming(p Param, seed uint64) []float32 {
	if _, ok := p.Module.(*BatchNorm2d); ok {
		return InitParam(p, seed)
	}
	vals := make([]float32, p.Numel())
	if p.Local != "weight" || len(p.Shape) < 2 {
		return vals // biases start at zero
	}
	std := 0.01
	if len(p.Shape) == 4 { // a convolution: fan_out = out_channels * kh * kw
		std = math.Sqrt(2 / float64(p.Shape[0]*p.Shape[2]*p.Shape[3]))
	}
	h := fnv.New64a()
	h.Write([]byte(p.Name))
	rng := rand.New(rand.NewPCG(seed, h.Sum64()))
	for i := range vals {
		vals[i] = float32(std * rng.NormFloat64())
	}
	return vals
}

// InitStateDictScheme returns the model's initial state by scheme, every
// entry of StateSpecs in state_dict order: the parameters drawn from seed
// (each from a generator seeded by seed and its name), the buffers as a new
// BatchNorm2d's (running_mean 0, running_var 1, num_batches_tracked 0).
func (m *Model) InitStateDictScheme(seed uint64, scheme InitScheme) (*weights.StateDict, error) {
	if scheme == "" {
		scheme = InitTorch
	}
	if scheme != InitTorch && scheme != InitKaiming {
		return nil, fmt.Errorf("unknown initialisation %q (want %q or %q)", scheme, InitTorch, InitKaiming)
	}
	params := map[string][]float32{}
	for _, p := range m.Params() {
		_, isConv := p.Module.(*Conv2d)
		switch {
		case scheme == InitKaiming, isConv && p.Local == "weight" && m.name == "ResNet":
			params[p.Name] = InitParamKaiming(p, seed)
		default:
			params[p.Name] = InitParam(p, seed)
		}
	}
	sd := &weights.StateDict{}
	for _, s := range m.StateSpecs() {
		v, ok := params[s.Name]
		if !ok { // a buffer
			v = make([]float32, max(1, int(numel(s.Shape))))
			if strings.HasSuffix(s.Name, ".running_var") {
				for i := range v {
					v[i] = 1
				}
			}
		}
		if err := sd.Add(s.Name, &weights.Tensor{Shape: append([]int{}, s.Shape...), Data: v}); err != nil {
			return nil, err
		}
	}
	return sd, nil
}
