#version 450
// gemm_smallk: GEMM for a small K on CPUs (lavapipe): the linear layers' weight
// gradients dW = dy^T x, whose K is the batch. There the texel kernel's 8x8
// blocks spend their time storing C (a scatter per row across the invocations,
// for only 4 k of arithmetic per result); here each invocation computes four
// consecutive results of one row, C(m, n..n+3), so neighbouring invocations
// store neighbouring vec4s and A(m, k), the same for a whole workgroup, is one
// broadcast fetch. B is read as RGBA32F texels along n (not transposed, ldb and
// offB multiples of 4); A as R32F, either way round; C as vec4 (ldc and offC
// multiples of 4). Row blocks are gl_WorkGroupID.y, the batch of products
// gl_WorkGroupID.z, as for the other GEMMs (gemm_common.glsl).
#extension GL_EXT_control_flow_attributes : require
#define VEC_C 1
#ifndef INPUT_GRAD
layout(local_size_x = 64) in;
#endif
layout(binding = 0) uniform samplerBuffer A;
layout(binding = 1) uniform samplerBuffer B;
#include "gemm_common.glsl"

// aAt is A(m, k), read as R32F either way round.
float aAt(uint m, uint k) {
    return texelFetch(A, int(offA + (TRANS_A ? k * p.lda + m : m * p.lda + k))).x;
}

#ifdef SGD_UPDATE
// gemm_smallk_sgd: C is not stored: it is a parameter's gradient, and the
// parameter (bound where C would be) takes torch.optim.SGD's step with it at
// once, exactly as shaders/sgd.comp computes it, reading the same
// hyper-parameter buffer (layers.SGDParams) and momentum buffer; the gradient
// is never written nor read back. The parameter and momentum are read as
// RGBA32F texels (bindings 6 and 7, the same ranges as 2 and 5: vectorised on
// lavapipe, where storage vec4 reads across invocations are gathers) and
// written as storage vec4s; each vec4 is read and written by one invocation
// only.
layout(constant_id = 10) const bool HAS_BUF = true;
layout(std430, binding = 4) readonly buffer Hyper {
    float lr, momentum, dampc, wd;
    uint nesterov, first;
} h;
layout(std430, binding = 5) buffer Buf { vec4 mbuf[]; };
layout(binding = 6) uniform samplerBuffer ParamIn;
layout(binding = 7) uniform samplerBuffer BufIn;

// The hyper-parameters, read once per invocation by loadHyper before any
// store: lavapipe reloads a storage buffer's values after every store (it
// cannot tell the buffers apart), one lane at a time; hoisted, the SGD step
// measured 1.3-1.9x as fast (BenchmarkSGD, AMD EPYC host).
float hLR, hMom, hDampc, hWD;
bool hFirst, hNesterov;
void loadHyper() {
    hLR = h.lr;
    hMom = h.momentum;
    hDampc = h.dampc;
    hWD = h.wd;
    hFirst = h.first != 0u;
    hNesterov = h.nesterov != 0u;
}

// update4 steps C(m, n..n+3), whose value is x, with the gradient alpha * acc.
void update4(uint m, uint n, vec4 x, vec4 acc) {
    uint at = (offC + m * p.ldc + n) >> 2;
    vec4 g = p.alpha * acc;
    float wd = hWD;
    if (wd != 0.0) g = g + wd * x;
    float mom = hMom;
    vec4 b = vec4(0);
    bool hasBuf = HAS_BUF && mom != 0.0;
    if (hasBuf) {
        vec4 old = texelFetch(BufIn, int(at));
        b = hFirst ? g : old * mom + g * hDampc;
        g = hNesterov ? g + b * mom : b;
        if (n + 4 > p.N) {
            for (uint c = 0; c < 4; c++) if (n + c >= p.N) b[c] = old[c];
        }
        mbuf[at] = b;
    }
    vec4 y = x - hLR * g;
    if (n + 4 > p.N) {
        for (uint c = 0; c < 4; c++) if (n + c >= p.N) y[c] = x[c];
    }
    C4[at] = y;
}

// paramAt is C(m, n..n+3) before its step.
vec4 paramAt(uint m, uint n) {
    return texelFetch(ParamIn, int((offC + m * p.ldc + n) >> 2));
}
#endif

#ifdef INPUT_GRAD
// gemm_smallk_sgd_dx: besides stepping C, computes D = A^T C (K x N) with C's
// values before the step, from the same reads: with A = dy^T and C a linear
// layer's weight, D is its input gradient dy W, so the weight is read once
// for both its step and its input gradient. Each invocation walks SLAB rows
// of C (its workgroup's slab) for four columns, holding B's K vec4s and D's in
// registers (K = KD, a specialisation constant, so both arrays stay unrolled),
// and stores its slab's partial sums of D, part4[((slab * KD + k) * N + n) / 4]
// with slab = p.offBias (the first slab of this dispatch: C's storage chunks
// are separate dispatches; there is no bias here) + gl_WorkGroupID.y. One
// more pass (slabsum.comp) adds the slabs in order. N is a multiple of 4.
//
// The barrier every STEP rows orders the memory traffic, not the data (no
// invocation reads another's): lavapipe runs a workgroup's invocations eight
// at a time, each group to the end or to the next barrier, so without one
// each eight would walk all SLAB rows down a 128-byte column before the next
// eight started: 4 x SLAB streams (C and its momentum, read and written) for
// the CPU's prefetchers, which track about 32. With it the workgroup moves
// through 8 rows x 4 KiB (256 invocations of a vec4) at a time. Measured on
// lavapipe (Intel Xeon host, fc6 at batch 4, BenchmarkLinearBackward): 140 ms
// for the kernel with 128 rows and no barrier, 94 ms with 16 or 32 rows, 75
// ms with 8 (whose 75 MB of partial sums then took 17.6 ms to add); with the
// barrier every 8 rows 73.5 ms at 128 rows (the partial sums 0.5 ms), within
// the noise of the update alone (gemm_smallk_sgd, 64-73 ms in the same runs);
// every 4 or 16 rows 77 and 84 ms. Workgroups of 128 or 512 invocations
// (2 or 8 KiB of a row per step) measured the same for fc6 and slower for fc7
// (9.0-9.7 ms at 256, 15.0-15.5 at 128, 9.8-10.5 at 512); staging the slab's
// A in shared memory instead of texel fetches measured 1.3-1.6x slower.
layout(local_size_x = 256) in;
layout(constant_id = 13) const uint KD = 4;
layout(constant_id = 14) const uint SLAB = 128;
#define STEP 8
layout(std430, binding = 8) writeonly buffer Part { vec4 part4[]; };

void main() {
    batchOffsets();
    uint n = 4 * gl_GlobalInvocationID.x;
    bool inside = n < p.N;
    uint nc = min(n, p.N - 4);
    vec4 b[KD], d[KD];
    [[unroll]] for (uint k = 0; k < KD; k++) {
        b[k] = texelFetch(B, int((offB + k * p.ldb + nc) >> 2));
        d[k] = vec4(0);
    }
    loadHyper();
    uint m0 = gl_WorkGroupID.y * SLAB, m1 = min(m0 + SLAB, p.M);
    for (uint mb = m0; mb < m1; mb += STEP) {
        if (inside) {
            for (uint m = mb; m < min(mb + STEP, m1); m++) {
                vec4 x = paramAt(m, n);
                vec4 acc = vec4(0);
                [[unroll]] for (uint k = 0; k < KD; k++) {
                    float a = aAt(m, k);
                    acc += a * b[k];
                    d[k] += a * x;
                }
                update4(m, n, x, acc);
            }
        }
        barrier();
    }
    if (!inside) return;
    uint slab = p.offBias + gl_WorkGroupID.y;
    [[unroll]] for (uint k = 0; k < KD; k++) part4[((slab * KD + k) * p.N + n) >> 2] = d[k];
}
#else
// ROWS rows per invocation: B's vec4 fetched once for all of them, and
// lavapipe's per-workgroup cost spread over ROWS times the work. Measured on
// lavapipe (AMD EPYC Zen 4 host, two interleaved rounds, fc6 at batch 4:
// BenchmarkGEMM/fc6.wgrad and BenchmarkLinearBackward): one row per
// invocation ran the plain build 2.3x slower (eight times the workgroups);
// 4 or 16 rows, or rows spread over the workgroup's y (2x4, 1x8, 4x2 rows x
// invocations) measured within the host's noise of 8 or slower, for both
// builds. The SGD build moves 20 bytes a weight at about 9 GB/s of the
// device's 9.9 GB/s copy peak there: memory-bound, not compute-bound.
#define ROWS 8

void main() {
    batchOffsets();
    uint n = 4 * gl_GlobalInvocationID.x;
    uint m0 = gl_WorkGroupID.y * ROWS;
    if (n >= p.N) return;
    vec4 acc[ROWS];
    [[unroll]] for (uint i = 0; i < ROWS; i++) acc[i] = vec4(0);
    for (uint k = 0; k < p.K; k++) {
        vec4 b = texelFetch(B, min(int((offB + k * p.ldb + n) >> 2), textureSize(B) - 1));
        [[unroll]] for (uint i = 0; i < ROWS; i++) {
            uint m = min(m0 + i, p.M - 1);
            acc[i] += aAt(m, k) * b;
        }
    }
#ifdef SGD_UPDATE
    loadHyper();
#endif
    [[unroll]] for (uint i = 0; i < ROWS; i++) {
#ifdef SGD_UPDATE
        if (m0 + i < p.M) update4(m0 + i, n, paramAt(m0 + i, n), acc[i]);
#else
        if (m0 + i < p.M) epilogue4(m0 + i, n, acc[i]);
#endif
    }
}
#endif
