#version 450
// relu: elementwise, four elements (one RGBA32F texel) per invocation; buffers are
// padded to whole texels, so the last texel is written whole.
// FORWARD (relu_fwd): y = x where x > 0 or x is NaN, else 0 (torch.relu; y may be x).
// BACKWARD (relu_bwd): dx = dy where y > 0, else 0 (threshold_backward; a select,
// so a NaN dy where y <= 0 gives 0).
// The *Off push constants are texel offsets within each binding (bindings may be
// slices of their tensors).
layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
    uint texels;
    uint aOff, bOff, outOff;
} p;

#ifdef FORWARD
layout(binding = 0) uniform samplerBuffer X;
layout(std430, binding = 1) writeonly buffer Out { vec4 out4[]; };
#else
layout(binding = 0) uniform samplerBuffer Yf;
layout(binding = 1) uniform samplerBuffer DY;
layout(std430, binding = 2) writeonly buffer Out { vec4 out4[]; };
#endif

void main() {
    uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * gl_WorkGroupSize.x) + gl_GlobalInvocationID.x;
    if (i >= p.texels) return;
#ifdef FORWARD
    vec4 x = texelFetch(X, int(p.aOff + i));
    bvec4 keep = bvec4(uvec4(greaterThan(x, vec4(0))) | uvec4(isnan(x)));
    out4[p.outOff + i] = mix(vec4(0), x, keep);
#else
    vec4 y = texelFetch(Yf, int(p.aOff + i));
    vec4 dy = texelFetch(DY, int(p.bOff + i));
    out4[p.outOff + i] = mix(vec4(0), dy, greaterThan(y, vec4(0)));
#endif
}
