#version 450
// layout: swaps the two outer dimensions of a tensor with inner blocks of HW
// elements, out[a, b, hw] = in[b, a, hw] for an A x B x HW output: NCHW -> CNHW
// (A = C, B = N) and CNHW -> NCHW (A = N, B = C). A dispatch writes output elements
// first <= e < first+count, bound at element offset outOff. The input is read with
// texelFetch; with VEC4 (module layout_vec4; HW, first and outOff multiples of 4)
// each invocation moves four elements as one RGBA32F texel and a vec4 store.
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer In;
#ifdef VEC4
layout(std430, binding = 1) writeonly buffer Out { vec4 outv[]; };
#else
layout(std430, binding = 1) writeonly buffer Out { float outv[]; };
#endif
layout(push_constant) uniform Push {
    uint A, B, HW, first, count, outOff;
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
#ifdef VEC4
    uint e = 4 * i;
#else
    uint e = i;
#endif
    if (e >= p.count) return;
    uint g = p.first + e;
    uint hw = g % p.HW, t = g / p.HW;
    uint b = t % p.B, a = t / p.B;
    uint src = (b * p.A + a) * p.HW + hw;
#ifdef VEC4
    outv[(p.outOff + e) / 4] = texelFetch(In, int(src / 4));
#else
    outv[p.outOff + e] = texelFetch(In, int(src)).x;
#endif
}
