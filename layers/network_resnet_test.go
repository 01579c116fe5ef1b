package layers

import (
	"testing"

	"vktrain/layers/nn"
	"vktrain/train/weights"
	"vktrain/vk"
)

// narrowResNet is gen_parity.py --resnet's model with BasicBlocks
// (layer1 of two, so that an identity shortcut feeds another block) or with
// Bottlenecks (one per stage): torchvision's ResNet 4 channels wide at the stem.
func narrowResNet(bottleneck bool) *nn.Model {
	blocks := [4]int{2, 1, 1, 1}
	if bottleneck {
		blocks = [4]int{1, 1, 1, 1}
	}
	return nn.NewResNet(nn.ResNetConfig{Blocks: blocks, Bottleneck: bottleneck, Width: 4, Classes: 10})
}

// TestNetworkParityResNet runs two steps of narrow ResNets at 64x64, batch 4,
// and compares with PyTorch (testdata/gen_parity.py --resnet, computed in
// float64): residual sums whose gradients add up (identity and downsample
// shortcuts), BatchNorm in training mode (batch statistics, running
// statistics updated, num_batches_tracked counted) and in eval mode
// (NetworkConfig.FrozenBatchNorm: model.eval() while training), under SGD
// and AdamW, every convolution algorithm on both GEMM variants. Bounds as
// TestNetworkParity's:
// logits, loss and the whole state_dict after the steps (buffers included)
// 1e-4 of each tensor's largest value, the second step's gradients 1e-3.
func TestNetworkParityResNet(t *testing.T) {
	read := func(name string) *weights.StateDict {
		sd, err := weights.ReadPTH("testdata/" + name)
		must(t, err)
		return sd
	}
	r := openRuntimeWith(t, vk.Options{})
	sgd := SGDConfig{LR: 0.001, Momentum: 0.9}
	adamw := &AdamConfig{LR: 0.001, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}
	for _, c := range []struct {
		name       string
		bottleneck bool
	}{{"parity_resnet", false}, {"parity_bottleneck", true}} {
		w := read(c.name + "_weights.pth")
		train, eval := read(c.name+"_io.pth"), read(c.name+"_eval_io.pth")
		t.Run(c.name, func(t *testing.T) {
			variants(t, r, func(t *testing.T) {
				for _, algo := range ConvAlgos {
					t.Run(algo.String(), func(t *testing.T) {
						checkParityWith(t, r, narrowResNet(c.bottleneck), imageNetInput(64, 64), w, train, NetworkConfig{SGD: sgd, ConvAlgo: algo})
					})
				}
			})
			t.Run("eval-mode", func(t *testing.T) {
				checkParityWith(t, r, narrowResNet(c.bottleneck), imageNetInput(64, 64), w, eval, NetworkConfig{SGD: sgd, FrozenBatchNorm: true})
			})
			if !c.bottleneck {
				t.Run("adamw", func(t *testing.T) {
					checkParityWith(t, r, narrowResNet(false), imageNetInput(64, 64), w, read(c.name+"_adamw_io.pth"),
						NetworkConfig{Adam: adamw, ConvAlgo: ConvIm2col})
				})
			}
		})
	}
}
