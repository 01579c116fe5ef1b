#version 450
// gemv: y (1 x M) = x (1 x K) W^T + b, a linear layer's forward at batch 1,
// where a GEMM's 64-column tiles would hold one useful column. Each workgroup
// computes four output features o0..o0+3: its 64 invocations stride over the
// four rows of W in RGBA32F texels, reading each texel of x once for the four,
// one vec4 of partial sums per row, then a 6-level tree in shared memory. K
// must be a multiple of 4 (rows of W are whole texels). BIAS adds b; RELU fuses
// the ReLU after it (NaN kept, as torch.relu). Error: each y is K/64 products
// summed in order per lane, then four lanes and the tree: within (K/64 + 8) eps
// of the sum of its terms' magnitudes.
layout(local_size_x = 64) in;
layout(constant_id = 1) const bool BIAS = true;
layout(constant_id = 2) const bool RELU = false;

layout(push_constant) uniform Push {
    uint K, M;
} p;

layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer W;
layout(std430, binding = 2) readonly buffer Bias { float bias[]; };
layout(std430, binding = 3) writeonly buffer Y { float y[]; };

shared vec4 partial[64];

void main() {
    uint o0 = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 4;
    if (o0 >= p.M) return; // the whole workgroup: o0 is uniform
    uint lid = gl_LocalInvocationID.x;
    uint k4 = p.K / 4;
    // Rows past M read row M-1 again; their sums are not stored.
    int w0 = int(o0 * k4), w1 = int(min(o0 + 1, p.M - 1) * k4);
    int w2 = int(min(o0 + 2, p.M - 1) * k4), w3 = int(min(o0 + 3, p.M - 1) * k4);
    vec4 acc0 = vec4(0), acc1 = vec4(0), acc2 = vec4(0), acc3 = vec4(0);
    for (uint t = lid; t < k4; t += 64) {
        vec4 x = texelFetch(X, int(t));
        acc0 += x * texelFetch(W, w0 + int(t));
        acc1 += x * texelFetch(W, w1 + int(t));
        acc2 += x * texelFetch(W, w2 + int(t));
        acc3 += x * texelFetch(W, w3 + int(t));
    }
    const vec4 one = vec4(1);
    partial[lid] = vec4(dot(acc0, one), dot(acc1, one), dot(acc2, one), dot(acc3, one));
    barrier();
    for (uint w = 32; w > 0; w >>= 1) {
        if (lid < w) partial[lid] += partial[lid + w];
        barrier();
    }
    if (lid < 4 && o0 + lid < p.M) {
        uint o = o0 + lid;
        float v = partial[0][lid];
        if (BIAS) v += bias[o];
        if (RELU && !(v > 0 || isnan(v))) v = 0;
        y[o] = v;
    }
}
