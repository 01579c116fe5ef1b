#version 450
// avgpool: adaptive 2-D average pooling of independent H x W planes (plane p at
// element p*H*W) to OH x OW with PyTorch's bins: output row i averages input rows
// [floor(i*H/OH), ceil((i+1)*H/OH)), columns likewise. Bins may overlap, and with
// H < OH several outputs share one input (1x1 -> 6x6).
//
// FORWARD (avgpool_adaptive_fwd): one invocation per output: the float32 sum of its
// bin, row-major, divided by the bin's size.
// BACKWARD (avgpool_adaptive_bwd): a gather, one invocation per input element:
// dx = sum over the bins holding it (row-major) of dy / bin size. No atomics.
//
// Dispatch: x and y over the (output or input) columns and rows of a plane, z over
// planes. x and dy are read through R32F texel buffers; the *Off push constants
// are the element offsets of plane 0 within each binding (bindings may be slices).
// The workgroup's shape is set per dispatch (layers/pool.go, poolGroups): 8x8
// over a plane's positions, with several planes per workgroup (z) where the
// planes are smaller than that, so that small maps (AlexNet's last pools at
// 64x64 input: 1x1 to 3x3 planes) do not run one mostly idle workgroup per plane.
layout(local_size_x_id = 20, local_size_y_id = 21, local_size_z_id = 22) in;

// The output size is a specialization constant: the bins' divisions by it,
// in the inner loops, become multiplications (on lavapipe an integer division
// is a scalar instruction per lane).
layout(constant_id = 23) const uint OH = 6;
layout(constant_id = 24) const uint OW = 6;

layout(push_constant) uniform Push {
    uint H, W;
    uint inOff, outOff; // element offsets of plane 0 in the x/dx and y/dy bindings
    uint planes;
} p;

#ifdef FORWARD
layout(binding = 0) uniform samplerBuffer X;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#else
layout(binding = 0) uniform samplerBuffer DY;
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
#endif

uint binStart(uint i, uint n, uint outN) { return i * n / outN; }
uint binEnd(uint i, uint n, uint outN) { return ((i + 1u) * n + outN - 1u) / outN; }

void main() {
    uint plane = gl_GlobalInvocationID.z;
    if (plane >= p.planes) return;
#ifdef FORWARD
    uint ow = gl_GlobalInvocationID.x, oh = gl_GlobalInvocationID.y;
    if (ow >= OW || oh >= OH) return;
    uint h0 = binStart(oh, p.H, OH), h1 = binEnd(oh, p.H, OH);
    uint w0 = binStart(ow, p.W, OW), w1 = binEnd(ow, p.W, OW);
    int base = int(p.inOff + plane * p.H * p.W);
    float sum = 0.0;
    for (uint h = h0; h < h1; h++) {
        int row = base + int(h * p.W);
        for (uint w = w0; w < w1; w++) sum += texelFetch(X, row + int(w)).x;
    }
    y[p.outOff + (plane * OH + oh) * OW + ow] = sum / float((h1 - h0) * (w1 - w0));
#else
    uint w = gl_GlobalInvocationID.x, h = gl_GlobalInvocationID.y;
    if (w >= p.W || h >= p.H) return;
    // Bin oh holds row h iff floor(h*OH/H) <= oh < ceil((h+1)*OH/H).
    uint oh0 = h * OH / p.H, oh1 = min(((h + 1u) * OH + p.H - 1u) / p.H, OH);
    uint ow0 = w * OW / p.W, ow1 = min(((w + 1u) * OW + p.W - 1u) / p.W, OW);
    int obase = int(p.outOff + plane * OH * OW);
    float sum = 0.0;
    for (uint oh = oh0; oh < oh1; oh++) {
        uint bh = binEnd(oh, p.H, OH) - binStart(oh, p.H, OH);
        for (uint ow = ow0; ow < ow1; ow++) {
            uint bw = binEnd(ow, p.W, OW) - binStart(ow, p.W, OW);
            sum += texelFetch(DY, obase + int(oh * OW + ow)).x / float(bh * bw);
        }
    }
    dx[p.inOff + (plane * p.H + h) * p.W + w] = sum;
#endif
}
