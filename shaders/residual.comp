#version 450
// residual_add: out = a + b elementwise, or relu(a + b) with the RELU
// specialization constant (a residual block's sum and its final ReLU, one pass).
// Four elements (one RGBA32F texel) per invocation; buffers are padded to whole
// texels, so the last texel is written whole. out may be a or b (an in-place
// accumulation of gradients): each invocation reads its texels before it writes.
// The *Off push constants are texel offsets within each binding (bindings may be
// slices of their tensors).
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool RELU = false;

layout(push_constant) uniform Push {
    uint texels;
    uint aOff, bOff, outOff;
} p;

layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
layout(std430, binding = 2) writeonly buffer Out { vec4 out4[]; };

void main() {
    uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * gl_WorkGroupSize.x) + gl_GlobalInvocationID.x;
    if (i >= p.texels) return;
    vec4 s = texelFetch(A, int(p.aOff + i)) + texelFetch(B, int(p.bOff + i));
    if (RELU) {
        // torch.relu: NaN kept.
        bvec4 keep = bvec4(uvec4(greaterThan(s, vec4(0))) | uvec4(isnan(s)));
        s = mix(vec4(0), s, keep);
    }
    out4[p.outOff + i] = s;
}
