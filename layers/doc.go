// Package layers holds tensors on a Vulkan device and the operations of a
// convolutional network as compute kernels: convolution (im2col + GEMM), pooling,
// ReLU, linear, dropout, softmax cross-entropy, SGD and input preprocessing, each
// forward and backward, each checked against the float64 references in layers/ref.
//
// Layout. Parameters use PyTorch's layouts (conv weight K x C x R x S, linear
// weight out x in). Activations between convolutions are kept channel-major, CNHW
// (C x N x H x W): a convolution over the whole batch is then one GEMM,
// Y[K, N*OH*OW] = W[K, C*R*S] * col[C*R*S, N*OH*OW], and so are its weight and
// input gradients. Activations of the classifier are N x features, row-major.
//
// Operations record into a vk.Stream: nothing runs until the stream is submitted,
// and a recorded step can be submitted again and again.
package layers
