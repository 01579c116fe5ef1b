// Package weights reads PyTorch state-dict files (.pth, both the zip format that
// torch.save writes since 1.6 and the older "legacy" format) and reads and writes
// safetensors files.
//
// Every tensor is handed out as a dense, row-major (C-contiguous) []float32 whatever
// its dtype in the file: float64, float16 and bfloat16 are converted, and so are
// integer and boolean tensors (such as BatchNorm's num_batches_tracked), which become
// exact float32 values up to 2^24. Tensor.DType records the dtype found in the file.
//
// Pickles are untrusted input. The unpickler accepts only the handful of globals a
// state dict needs (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and its
// relatives, the typed torch.*Storage classes, torch.Size); any other global, such as
// posix.system or builtins.eval, is refused with a *ForbiddenGlobalError, and nothing in
// a pickle is ever executed. Before a pickle reaches the unpickler, its opcode stream is
// checked so that no length field can ask for more bytes than the file holds.
package weights
