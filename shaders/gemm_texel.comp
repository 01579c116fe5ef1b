#version 450
// gemm_texel: GEMM for CPUs (lavapipe). A and B are read with texelFetch from
// uniform texel buffers, which lavapipe vectorises; no shared memory. Each
// invocation computes an 8x8 block of C; a workgroup of 8 invocations an 8x64 tile.
// With VEC_A (VEC_B) the operand is bound as RGBA32F and read four floats at a time
// along its contiguous dimension (its leading dimension and offset must be
// multiples of 4); otherwise it is bound as R32F and read one float at a time.
// Built four times: gemm_texel stores C one float at a time, gemm_texel_c4 (VEC_C)
// four at a time where C's leading dimension and offset are multiples of 4; the
// _k1 builds (KSTEPS=1) serve K below gemmUnrollMinK (layers/gemm.go).
#extension GL_EXT_control_flow_attributes : require
#ifndef KSTEPS
#define KSTEPS 4
#endif
layout(local_size_x = 8) in;
layout(constant_id = 3) const bool VEC_A = true;
layout(constant_id = 4) const bool VEC_B = true;
// ALIGN_A false: A is read as RGBA32F texels though its rows start anywhere (lda
// or offA not a multiple of 4, as conv1's 363-long filters): two texels and a
// shift per four floats, still fewer fetches than one float at a time.
layout(constant_id = 9) const bool ALIGN_A = true;
// M_FAST swaps the workgroup grid: gl_WorkGroupID.x walks the row tiles and
// .y the column tiles, so that consecutive workgroups (which lavapipe's threads
// take in order of x first) share one 64-column block of B and read it from
// cache, and B (a convolution's im2col matrix) comes from memory once instead
// of once per 8 rows of A (layers/gemm.go, gemmMFastMinK).
layout(constant_id = 11) const bool M_FAST = false;
layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
#include "gemm_common.glsl"

vec4 fetchA4(uint e) { return texelFetch(A, min(int(e >> 2), textureSize(A) - 1)); }
vec4 fetchB4(uint e) { return texelFetch(B, min(int(e >> 2), textureSize(B) - 1)); }
float fetchA1(uint e) { return texelFetch(A, min(int(e), textureSize(A) - 1)).x; }
float fetchB1(uint e) { return texelFetch(B, min(int(e), textureSize(B) - 1)).x; }

vec4 acc[8][2];

// PRE_B: B transposed with aliasing rows, fetched a whole iteration at a time
// by preloadB, as in gemm_texel_sh.comp (fc6's forward at batch 4: 1.0-1.4x).
layout(constant_id = 12) const bool ALIASED_B = false;
const bool PRE_B = ALIASED_B && VEC_B && TRANS_B && KSTEPS == 4;
vec4 bq[32]; // bq[4*j + u]: B(k+4u..k+4u+3, n0+j)
void preloadB(uint n0, uint k) {
    [[unroll]] for (uint j = 0; j < 8; j++) {
        uint e = offB + min(n0 + j, p.N - 1) * p.ldb + k;
        [[unroll]] for (uint u = 0; u < 4; u++) bq[4 * j + u] = fetchB4(e + 4 * u);
    }
}

// step adds A(m0..m0+7, k..k+3) * B(k..k+3, n0..n0+7); kmask zeroes k >= K.
// u < 4 is step u of an iteration whose B preloadB fetched (where PRE_B); u = 4
// fetches everything.
void step(uint m0, uint n0, uint k, vec4 kmask, uint u) {
    vec4 a[8];
    if (VEC_A && !TRANS_A && ALIGN_A) {
        [[unroll]] for (uint i = 0; i < 8; i++)
            a[i] = fetchA4(offA + min(m0 + i, p.M - 1) * p.lda + k);
    } else if (VEC_A && !TRANS_A) {
        [[unroll]] for (uint i = 0; i < 8; i++) {
            uint e = offA + min(m0 + i, p.M - 1) * p.lda + k;
            vec4 lo = fetchA4(e), hi = fetchA4(e + 4);
            uint s = e & 3;
            a[i] = s == 0 ? lo : s == 1 ? vec4(lo.yzw, hi.x) : s == 2 ? vec4(lo.zw, hi.xy) : vec4(lo.w, hi.xyz);
        }
    } else if (VEC_A && TRANS_A) {
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            uint row = offA + min(k + kk, p.K - 1) * p.lda + m0;
            vec4 lo = fetchA4(row), hi = fetchA4(row + 4);
            [[unroll]] for (uint i = 0; i < 4; i++) { a[i][kk] = lo[i]; a[i + 4][kk] = hi[i]; }
        }
    } else {
        [[unroll]] for (uint i = 0; i < 8; i++) {
            uint m = min(m0 + i, p.M - 1);
            [[unroll]] for (uint kk = 0; kk < 4; kk++) {
                uint kc = min(k + kk, p.K - 1);
                a[i][kk] = fetchA1(offA + (TRANS_A ? kc * p.lda + m : m * p.lda + kc));
            }
        }
    }
    [[unroll]] for (uint i = 0; i < 8; i++) a[i] *= kmask;

    vec4 b[4][2];
    if (VEC_B && TRANS_B) {
        [[unroll]] for (uint j = 0; j < 8; j++) {
            vec4 t = PRE_B && u < 4 ? bq[4 * j + u] : fetchB4(offB + min(n0 + j, p.N - 1) * p.ldb + k);
            [[unroll]] for (uint kk = 0; kk < 4; kk++) b[kk][j >> 2][j & 3] = t[kk];
        }
    } else if (VEC_B && !TRANS_B) {
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            uint row = offB + min(k + kk, p.K - 1) * p.ldb + n0;
            b[kk][0] = fetchB4(row);
            b[kk][1] = fetchB4(row + 4);
        }
    } else {
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            uint kc = min(k + kk, p.K - 1);
            [[unroll]] for (uint j = 0; j < 8; j++) {
                uint n = min(n0 + j, p.N - 1);
                b[kk][j >> 2][j & 3] = fetchB1(offB + (TRANS_B ? n * p.ldb + kc : kc * p.ldb + n));
            }
        }
    }
    [[unroll]] for (uint kk = 0; kk < 4; kk++) {
        [[unroll]] for (uint i = 0; i < 8; i++) {
            acc[i][0] += a[i][kk] * b[kk][0];
            acc[i][1] += a[i][kk] * b[kk][1];
        }
    }
}

void main() {
    batchOffsets();
    uvec2 tile = M_FAST ? gl_WorkGroupID.yx : gl_WorkGroupID.xy;
    uint n0 = tile.x * 64 + gl_LocalInvocationID.x * 8;
    uint m0 = tile.y * 8;
    [[unroll]] for (uint i = 0; i < 8; i++) { acc[i][0] = vec4(0); acc[i][1] = vec4(0); }
    // KSTEPS steps of four k per loop iteration: lavapipe writes every value carried
    // around a loop back through the execution mask once per iteration (a blend per
    // accumulator component), so more work per iteration amortises that cost.
    // Measured on lavapipe (Intel Xeon host): 1 -> 4 steps gave 1.1-1.5x on the
    // convolution GEMMs; 8 steps no better than 4; 4 rows per invocation worse.
    // The mere presence of the unrolled loop made small-K GEMMs (the linear layers'
    // weight gradients, K = batch) 0.7x as fast, so those use a KSTEPS=1 build.
    uint k = 0;
#if KSTEPS > 1
    for (; k + 4 * KSTEPS <= p.K; k += 4 * KSTEPS) {
        if (PRE_B) preloadB(n0, k);
        [[unroll]] for (uint u = 0; u < KSTEPS; u++) step(m0, n0, k + 4 * u, vec4(1), KSTEPS == 4 ? u : 4);
    }
#endif
    for (; k + 4 <= p.K; k += 4) step(m0, n0, k, vec4(1), 4);
    if (k < p.K) step(m0, n0, k, vec4(lessThan(uvec4(k) + uvec4(0, 1, 2, 3), uvec4(p.K))), 4);
    for (uint i = 0; i < 8; i++) {
        if (m0 + i >= p.M) break;
#ifdef VEC_C
        if (n0 < p.N) epilogue4(m0 + i, n0, acc[i][0]);
        if (n0 + 4 < p.N) epilogue4(m0 + i, n0 + 4, acc[i][1]);
#else
        for (uint j = 0; j < 8; j++) {
            if (n0 + j >= p.N) break;
            epilogue(m0 + i, n0 + j, acc[i][j >> 2][j & 3]);
        }
#endif
    }
}
