#version 450
// dropout: inverted dropout, out = in * scale where the element is kept, else 0,
// four elements (one RGBA32F texel) per invocation. The same kernel serves forward
// (in = x) and backward (in = dy): the keep mask is recomputed from the step state,
// so nothing is stored between the two.
//
// Mask (ref.DropoutMask): element e takes word e&3 of
//   Philox4x32-10(counter (e>>2, 0, step lo, step hi), key (seed lo, seed hi))
// as r and is kept iff (r >> 8) >= threshold, where threshold = ceil(p * 2^24):
// the same test as float(r>>8)/2^24 >= p, in integers.
// Seed and step come from the StepState buffer (words 0-3: step lo, step hi, seed
// lo, seed hi), which the host rewrites between submits of a recorded stream.
#include "philox.glsl"
layout(local_size_x = 64) in;

layout(push_constant) uniform Push {
    uint texels;     // texels in this dispatch
    uint inOff, outOff; // texel offsets within the bindings
    uint base;       // global texel index (Philox counter word) of texel 0
    uint threshold;  // ceil(p * 2^24)
    float scale;     // 1/(1-p), 0 when p = 1
} p;

layout(binding = 0) uniform samplerBuffer In;
layout(std430, binding = 1) readonly buffer State { uint words[]; } state;
layout(std430, binding = 2) writeonly buffer Out { vec4 out4[]; };

void main() {
    uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * gl_WorkGroupSize.x) + gl_GlobalInvocationID.x;
    if (i >= p.texels) return;
    uvec2 step = uvec2(state.words[0], state.words[1]);
    uvec2 seed = uvec2(state.words[2], state.words[3]);
    uvec4 r = philox_stream(p.base + i, 0u, step, seed);
    bvec4 keep = greaterThanEqual(r >> 8u, uvec4(p.threshold));
    vec4 v = texelFetch(In, int(p.inOff + i)) * p.scale;
    out4[p.outOff + i] = mix(vec4(0), v, keep);
}
