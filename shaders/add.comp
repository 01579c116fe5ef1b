#version 450
// add: z = x + y, elementwise, n elements. With TEXEL_READS the operands are read
// as RGBA32F texels (4 elements per invocation), the fast path on lavapipe.
layout(local_size_x = 64) in;
#ifdef TEXEL_READS
layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer Y;
layout(std430, binding = 2) writeonly buffer Z { vec4 z4[]; };
#else
layout(std430, binding = 0) readonly buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer Z { float z[]; };
#endif
layout(push_constant) uniform Push { uint n; } pc;
void main() {
    uint i = gl_GlobalInvocationID.x;
#ifdef TEXEL_READS
    // Buffers are padded to whole texels, so the last texel may be written whole.
    if (4u * i < pc.n) z4[i] = texelFetch(X, int(i)) + texelFetch(Y, int(i));
#else
    if (i < pc.n) z[i] = x[i] + y[i];
#endif
}
