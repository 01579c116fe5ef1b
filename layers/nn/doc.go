// Package nn describes networks the way torch.nn does, without any device: module
// types with PyTorch's field names and printed form (Conv2d, ReLU, MaxPool2d,
// AdaptiveAvgPool2d, Dropout, Linear, Sequential), torchvision's AlexNet built from
// them, parameters named and shaped as in PyTorch's state_dict, layer surgery
// (Replace) with shape checking (Validate), freezing, PyTorch-style initialization,
// and a summary of output shapes, parameter counts and FLOPs.
//
// Shapes. Module methods see one sample: a per-sample shape leaves out the batch
// dimension, so a convolution's input is [C, H, W] and a linear layer's [features].
// Output sizes follow PyTorch's formulas, floor division included:
//
//	conv:    out = floor((in + 2*padding - dilation*(kernel-1) - 1) / stride) + 1
//	maxpool: the same, rounded up instead with ceil_mode (and never starting a
//	         window in the right padding)
//
// FLOPs. A multiply-add counts 2 FLOPs. Only convolutions and linear layers count;
// bias additions, ReLU, pooling and dropout count 0. The backward pass of a
// convolution or linear layer costs its forward FLOPs once for the weight gradient
// (when its parameters are trainable) and once for the input gradient (when some
// layer before it has trainable parameters, so that the gradient must flow on):
// with nothing frozen, the first convolution needs no input gradient. For the
// reference experiment's AlexNet (classifier.4 = Linear(4096, 1024), classifier.6 =
// Linear(1024, 10)) at 224x224 this gives 1.395 GFLOP forward and 4.045 GFLOP
// forward + backward per image, 44,428,106 trainable parameters.
//
// The golden files under testdata were printed by torch 1.13 / torchvision 0.14
// (testdata/gen_golden.py); the tests hold String, the state_dict names and shapes,
// and the output shapes to them.
package nn
