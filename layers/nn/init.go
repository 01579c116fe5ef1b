package nn

import (
	"fmt"
	"hash/fnv"
	"math"
	"math/rand/v2"

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
// A parameter whose layer has no weight to take fan_in from comes back as zeros.
//
// The distribution is PyTorch's; the values are not torch's bit for bit (torch
// draws from its own generator).
func InitParam(p Param, seed uint64) []float32 {
	vals := make([]float32, p.Numel())
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

// Init returns InitParam's values for every parameter, by state_dict name.
func (m *Model) Init(seed uint64) map[string][]float32 {
	ps := m.Params()
	out := make(map[string][]float32, len(ps))
	for _, p := range ps {
		out[p.Name] = InitParam(p, seed)
	}
	return out
}

// InitStateDict returns InitParam's values for every parameter as a state dict
// in state_dict order, ready for weights.WriteSafetensors and the like.
func (m *Model) InitStateDict(seed uint64) (*weights.StateDict, error) {
	sd := &weights.StateDict{}
	for _, p := range m.Params() {
		t := &weights.Tensor{Shape: append([]int(nil), p.Shape...), Data: InitParam(p, seed)}
		if err := sd.Add(p.Name, t); err != nil {
			return nil, err
		}
	}
	return sd, nil
}

// InitScheme chooses how InitStateDictScheme draws the initial parameters.
type InitScheme string

// Initialisation schemes: PyTorch's default reset_parameters (InitParam), or
// the one torchvision gives VGG and ResNet, which trains deep ReLU networks from
// scratch much faster: convolution weights normal with std sqrt(2/fan_out)
// (kaiming_normal_, mode fan_out), linear weights normal with std 0.01, biases 0.
const (
	InitTorch   InitScheme = "torch"
	InitKaiming InitScheme = "kaiming"
)

// InitParamKaiming returns InitKaiming's values for one parameter, seeded like
// InitParam by seed and the parameter's name.
func InitParamKaiming(p Param, seed uint64) []float32 {
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

// InitStateDictScheme is InitStateDict with a choice of scheme.
func (m *Model) InitStateDictScheme(seed uint64, scheme InitScheme) (*weights.StateDict, error) {
	if scheme == InitTorch || scheme == "" {
		return m.InitStateDict(seed)
	}
	if scheme != InitKaiming {
		return nil, fmt.Errorf("unknown initialisation %q (want %q or %q)", scheme, InitTorch, InitKaiming)
	}
	sd := &weights.StateDict{}
	for _, p := range m.Params() {
		t := &weights.Tensor{Shape: append([]int(nil), p.Shape...), Data: InitParamKaiming(p, seed)}
		if err := sd.Add(p.Name, t); err != nil {
			return nil, err
		}
	}
	return sd, nil
}
