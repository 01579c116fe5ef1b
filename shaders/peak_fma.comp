#version 450
// peak_fma: the device's fp32 multiply-add throughput. Each invocation runs
// iters rounds of 8 independent vec4 multiply-adds (a = a * m + c, which the
// compiler may fuse), 64 FLOPs a round, so the loop is bound by arithmetic and
// not by latency; the values converge (|m| < 1), so no infinities or denormals
// appear. One float per invocation is written so nothing is optimised away.
// ROUNDS rounds run per loop iteration (iters must be a multiple of it): lavapipe
// pays a masked write-back (a blend) per loop-carried value per iteration, which
// one round per iteration would measure instead of the arithmetic. Kernels that
// carry accumulators around a loop amortise it the same way (gemm_texel's KSTEPS).
#extension GL_EXT_control_flow_attributes : require
#define ROUNDS 8
layout(local_size_x = 64) in;
layout(std430, binding = 0) writeonly buffer Out { float outv[]; };
layout(push_constant) uniform Push { uint iters; float m; float c; } p;
void main() {
    uint id = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    vec4 m = vec4(p.m), c = vec4(p.c);
    vec4 a[8];
    for (int i = 0; i < 8; i++) a[i] = vec4(float(id & 255u) * 1e-3 + float(i));
    for (uint it = 0u; it < p.iters; it += ROUNDS) {
        [[unroll]] for (int r = 0; r < ROUNDS; r++) {
            a[0] = a[0] * m + c;   a[1] = a[1] * m + c;   a[2] = a[2] * m + c;   a[3] = a[3] * m + c;
            a[4] = a[4] * m + c;   a[5] = a[5] * m + c;   a[6] = a[6] * m + c;   a[7] = a[7] * m + c;
        }
    }
    vec4 s = vec4(0);
    for (int i = 0; i < 8; i++) s += a[i];
    outv[id] = s.x + s.y + s.z + s.w;
}
