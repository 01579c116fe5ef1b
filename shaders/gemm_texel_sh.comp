#version 450
// gemm_texel_sh: the texel GEMM (gemm_texel.comp) with A shared across the
// subgroup. A workgroup of 8 invocations (one subgroup of at least 8) computes
// a 16x32 tile of C, each invocation 16 rows by 4 columns. All 8 need the same
// 16 rows of A, so each fetches two texels of them and subgroupShuffle hands
// them round; B's columns are each invocation's own. Per four depths an
// invocation fetches 6 texels (2 of A, 4 of B) for 256 multiply-adds, where
// gemm_texel fetches 16: on lavapipe a texel fetch is about 40 instructions and
// a shuffle by a constant lane one vector permute.
#extension GL_EXT_control_flow_attributes : require
#extension GL_KHR_shader_subgroup_shuffle : require
#ifndef KSTEPS
#define KSTEPS 4
#endif
// NR groups of 8 rows per tile. Measured on lavapipe (AMD EPYC Zen 4 host,
// BenchmarkGEMM at batch 64, two interleaved rounds): NR 1, 3 and 4 (32, 96 and
// 128 accumulators, the latter spilling) ran 0.6-1.0x as fast as NR 2.
#ifndef NR
#define NR 2
#endif
#define ROWS (8 * NR)
layout(local_size_x = 8) in;
layout(constant_id = 3) const bool VEC_A = true;
layout(constant_id = 4) const bool VEC_B = true;
layout(constant_id = 9) const bool ALIGN_A = true;
layout(constant_id = 11) const bool M_FAST = false;
layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
#include "gemm_common.glsl"

vec4 fetchA4(uint e) { return texelFetch(A, min(int(e >> 2), textureSize(A) - 1)); }
vec4 fetchB4(uint e) { return texelFetch(B, min(int(e >> 2), textureSize(B) - 1)); }
float fetchA1(uint e) { return texelFetch(A, min(int(e), textureSize(A) - 1)).x; }
float fetchB1(uint e) { return texelFetch(B, min(int(e), textureSize(B) - 1)).x; }

// rowA returns A(m, k..k+3) (m clamped to the last row) for A not read as
// aligned RGBA32F rows of depth.
vec4 rowA(uint m, uint k) {
    uint e = offA + min(m, p.M - 1) * p.lda + k;
    if (VEC_A && !TRANS_A) { // rows start anywhere: two texels and a shift
        vec4 lo = fetchA4(e), hi = fetchA4(e + 4);
        uint s = e & 3;
        return s == 0 ? lo : s == 1 ? vec4(lo.yzw, hi.x) : s == 2 ? vec4(lo.zw, hi.xy) : vec4(lo.w, hi.xyz);
    }
    vec4 r;
    [[unroll]] for (uint kk = 0; kk < 4; kk++) {
        uint kc = min(k + kk, p.K - 1), mc = min(m, p.M - 1);
        r[kk] = fetchA1(offA + (TRANS_A ? kc * p.lda + mc : mc * p.lda + kc));
    }
    return r;
}

vec4 acc[ROWS];

// PRE_B: B's rows a multiple of 1024 floats apart (layers/gemm.go sets it).
// Transposed (read along its depth: fc6's 9216-wide weights in the forward pass),
// a step fetching 4 depths of each of the tile's 32 rows of B touches 32
// lines that share one cache set (4 KiB aliasing) and evict each other
// before the next step reads them again, so preloadB fetches a whole
// iteration (16 depths, one 64-byte line of each row) row after row. Measured
// on lavapipe (AMD EPYC Zen 4 host, BenchmarkGEMM, fc6's forward at batch 64):
// 1.6-1.8x. The same for A read along its depth (16 rows of A, as fc6's input
// gradient) measured 0.65-0.95x, and preloading B whose rows do not alias
// (convolutions' weight gradients) 0.5-1.0x: neither is done.
// B not transposed (read along its columns) with such rows aliases the same
// way: a step's 4 depths are 4 rows of B one set apart, an iteration's 16
// rows share a set. preloadB then fetches the iteration's 16 rows (4 columns
// each) before the steps use them. Measured on lavapipe (Intel Xeon host,
// fc6's input gradient at batch 64: M = 64, N = 9216, K = 4096, B the weight,
// three interleaved rounds): 128-140 ms against 149-161 ms (1.07-1.25x);
// fc7's (N = 4096, K = 1024) within the host's noise.
layout(constant_id = 12) const bool ALIASED_B = false;
const bool PRE_B = ALIASED_B && VEC_B && KSTEPS == 4;
vec4 bq[16]; // TRANS_B: bq[4*j + u] = B(k+4u..k+4u+3, n0+j); else bq[4*u + kk] = B(k+4u+kk, n0..n0+3)
void preloadB(uint n0, uint k) {
    if (TRANS_B) {
        [[unroll]] for (uint j = 0; j < 4; j++) {
            uint e = offB + min(n0 + j, p.N - 1) * p.ldb + k;
            [[unroll]] for (uint u = 0; u < 4; u++) bq[4 * j + u] = fetchB4(e + 4 * u);
        }
    } else {
        [[unroll]] for (uint q = 0; q < 16; q++) bq[q] = fetchB4(offB + min(k + q, p.K - 1) * p.ldb + n0);
    }
}

// step adds A(m0..m0+15, k..k+3) * B(k..k+3, n0..n0+3); kmask zeroes k >= K.
// u < 4 is step u of an iteration whose B preloadB fetched (where PRE_B); u = 4
// fetches everything.
void step(uint m0, uint n0, uint k, vec4 kmask, uint u) {
    uint l = gl_SubgroupInvocationID;
    vec4 a[ROWS];
    if (VEC_A && TRANS_A) {
        // A(m, k) at A[k*lda + m]: lane l fetches depth k + l%4 of rows
        // m0 + 8*g + 4*(l/4) .. +3 for each group g of 8 rows.
        uint e = offA + min(k + (l & 3), p.K - 1) * p.lda + m0 + (l >> 2) * 4;
        [[unroll]] for (uint g = 0; g < NR; g++) {
            vec4 f = fetchA4(e + 8 * g);
            [[unroll]] for (uint j = 0; j < 8; j++) {
                vec4 t = subgroupShuffle(f, j);
                [[unroll]] for (uint i = 0; i < 4; i++) a[8 * g + 4 * (j >> 2) + i][j & 3] = t[i];
            }
        }
    } else {
        // Lane l fetches rows m0 + 8*g + l.
        [[unroll]] for (uint g = 0; g < NR; g++) {
            vec4 f = VEC_A && ALIGN_A ? fetchA4(offA + min(m0 + 8 * g + l, p.M - 1) * p.lda + k) : rowA(m0 + 8 * g + l, k);
            [[unroll]] for (uint i = 0; i < 8; i++) a[8 * g + i] = subgroupShuffle(f, i);
        }
    }
    [[unroll]] for (uint i = 0; i < ROWS; i++) a[i] *= kmask;

    vec4 b[4];
    if (VEC_B && TRANS_B) {
        [[unroll]] for (uint j = 0; j < 4; j++) {
            vec4 t = PRE_B && u < 4 ? bq[4 * j + u] : fetchB4(offB + min(n0 + j, p.N - 1) * p.ldb + k);
            [[unroll]] for (uint kk = 0; kk < 4; kk++) b[kk][j] = t[kk];
        }
    } else if (VEC_B) {
        [[unroll]] for (uint kk = 0; kk < 4; kk++) b[kk] = PRE_B && u < 4 ? bq[4 * u + kk] : fetchB4(offB + min(k + kk, p.K - 1) * p.ldb + n0);
    } else {
        [[unroll]] for (uint kk = 0; kk < 4; kk++) {
            uint kc = min(k + kk, p.K - 1);
            [[unroll]] for (uint j = 0; j < 4; j++) {
                uint n = min(n0 + j, p.N - 1);
                b[kk][j] = fetchB1(offB + (TRANS_B ? n * p.ldb + kc : kc * p.ldb + n));
            }
        }
    }
    [[unroll]] for (uint kk = 0; kk < 4; kk++) {
        [[unroll]] for (uint i = 0; i < ROWS; i++) acc[i] += a[i][kk] * b[kk];
    }
}

void main() {
    batchOffsets();
    uvec2 tile = M_FAST ? gl_WorkGroupID.yx : gl_WorkGroupID.xy;
    uint n0 = tile.x * 32 + gl_LocalInvocationID.x * 4;
    uint m0 = tile.y * ROWS;
    [[unroll]] for (uint i = 0; i < ROWS; i++) acc[i] = vec4(0);
    uint k = 0;
#if KSTEPS > 1
    for (; k + 4 * KSTEPS <= p.K; k += 4 * KSTEPS) {
        if (PRE_B) preloadB(n0, k);
        [[unroll]] for (uint u = 0; u < KSTEPS; u++) step(m0, n0, k + 4 * u, vec4(1), KSTEPS == 4 ? u : 4);
    }
#endif
    for (; k + 4 <= p.K; k += 4) step(m0, n0, k, vec4(1), 4);
    if (k < p.K) step(m0, n0, k, vec4(lessThan(uvec4(k) + uvec4(0, 1, 2, 3), uvec4(p.K))), 4);
    for (uint i = 0; i < ROWS; i++) {
        if (m0 + i >= p.M) break;
#ifdef VEC_C
        if (n0 < p.N) epilogue4(m0 + i, n0, acc[i]);
#else
        for (uint j = 0; j < 4; j++) {
            if (n0 + j >= p.N) break;
            epilogue(m0 + i, n0 + j, acc[i][j]);
        }
#endif
    }
}
