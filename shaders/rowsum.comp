#version 450
// rowsum: strided row sums, out[outOff + i] (+)= sum_{j < L} in[inOff + i*rowStride + j*colStride]
// for i < rows: the bias gradient of a convolution (rows of a CNHW gradient,
// colStride 1) or of a linear layer (column sums of an N x out gradient,
// rowStride 1, colStride out). One workgroup per row (folded into y when rows
// exceed the device's limit in x); its 64 invocations sum interleaved elements and
// combine them in a fixed tree, so results are deterministic.
//
// With RELU_MASK (module rowsum_relu) the input is a ReLU's output gradient,
// masked in place first: in[e] = in[e] * (y[yOff + e - inOff] > 0), and the sums are
// of the masked values; SUM = false then only masks.
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool ACCUMULATE = false;
layout(constant_id = 1) const bool SUM = true;
#ifdef RELU_MASK
layout(std430, binding = 0) buffer In { float dy[]; };
layout(binding = 1) uniform samplerBuffer Y;
layout(std430, binding = 2) buffer Out { float outv[]; };
#else
layout(binding = 0) uniform samplerBuffer In;
layout(std430, binding = 1) buffer Out { float outv[]; };
#endif
layout(push_constant) uniform Push {
    uint rows, L, rowStride, colStride, inOff, yOff, outOff;
} p;

shared float part[64];

void main() {
    uint row = gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x;
    if (row >= p.rows) return; // uniform per workgroup
    uint lane = gl_LocalInvocationID.x;
    float sum = 0.0;
    for (uint j = lane; j < p.L; j += 64) {
        uint e = row * p.rowStride + j * p.colStride;
#ifdef RELU_MASK
        float g = dy[p.inOff + e];
        g = texelFetch(Y, int(p.yOff + e)).x > 0.0 ? g : 0.0;
        dy[p.inOff + e] = g;
        sum += g;
#else
        sum += texelFetch(In, int(p.inOff + e)).x;
#endif
    }
    if (!SUM) return;
    part[lane] = sum;
    barrier();
    for (uint w = 32; w > 0; w >>= 1) {
        if (lane < w) part[lane] += part[lane + w];
        barrier();
    }
    if (lane == 0) {
        float v = part[0];
        if (ACCUMULATE) v += outv[p.outOff + row];
        outv[p.outOff + row] = v;
    }
}
