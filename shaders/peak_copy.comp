#version 450
// peak_copy: the device's copy bandwidth, dst = src, four floats per invocation
// (n4 vec4s in all; the grid may fold into y). With TEXEL_READS the source is read
// as RGBA32F texels, the fast path on lavapipe; otherwise as a vec4 storage
// buffer, the usual path on GPUs.
layout(local_size_x = 64) in;
#ifdef TEXEL_READS
layout(binding = 0) uniform samplerBuffer src;
#else
layout(std430, binding = 0) readonly buffer Src { vec4 src4[]; };
#endif
layout(std430, binding = 1) writeonly buffer Dst { vec4 dst4[]; };
layout(push_constant) uniform Push { uint n4; } p;
void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= p.n4) return;
#ifdef TEXEL_READS
    dst4[i] = texelFetch(src, int(i));
#else
    dst4[i] = src4[i];
#endif
}
