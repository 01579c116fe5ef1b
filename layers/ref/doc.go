// Package ref holds float64 CPU reference implementations of every GPU
// kernel vktrain runs: convolution, pooling, activations, dropout, linear
// layers, GEMM, softmax cross-entropy, SGD, the Philox random number
// generator and image preprocessing.
//
// The references favour clarity over speed: straightforward loops in
// float64, no shared or global state. Tensors are flat row-major slices;
// images are NCHW. Semantics follow PyTorch 1.13 / torchvision 0.14, and
// the package tests compare against fixtures produced by
// testdata/gen_fixtures.py with PyTorch in float64.
//
// Functions validate shapes and slice lengths and return an error on any
// mismatch; they never modify their inputs unless documented (SGDStep,
// GEMM's C).
package ref
