#version 450
// gemm_tiled: GEMM for GPUs. A 16x16 workgroup computes a 64x64 tile of C, each
// invocation 4x4, staging 64x16 slices of A and 16x64 slices of B in shared memory.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 16, local_size_y = 16) in;
layout(std430, binding = 0) readonly buffer Abuf { float A[]; };
layout(std430, binding = 1) readonly buffer Bbuf { float B[]; };
#include "gemm_common.glsl"

const uint TILE = 64, BK = 16;
shared float As[BK][TILE + 1];
shared float Bs[BK][TILE + 1];

float loadA(uint m, uint k) {
    if (m >= p.M || k >= p.K) return 0.0;
    return A[offA + (TRANS_A ? k * p.lda + m : m * p.lda + k)];
}
float loadB(uint k, uint n) {
    if (k >= p.K || n >= p.N) return 0.0;
    return B[offB + (TRANS_B ? n * p.ldb + k : k * p.ldb + n)];
}

void main() {
    batchOffsets();
    uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y;
    uint tid = ty * 16 + tx;
    uint mBase = gl_WorkGroupID.y * TILE, nBase = gl_WorkGroupID.x * TILE;
    float acc[4][4];
    [[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] = 0.0;
    for (uint k0 = 0; k0 < p.K; k0 += BK) {
        // 1024 elements of each slice, 4 per invocation.
        [[unroll]] for (uint e = 0; e < 4; e++) {
            uint idx = tid + 256 * e;
            // A slice: consecutive invocations walk m when TRANS_A (contiguous), else k.
            uint am = TRANS_A ? idx % TILE : idx / BK, ak = TRANS_A ? idx / TILE : idx % BK;
            As[ak][am] = loadA(mBase + am, k0 + ak);
            uint bn = TRANS_B ? idx / BK : idx % TILE, bk = TRANS_B ? idx % BK : idx / TILE;
            Bs[bk][bn] = loadB(k0 + bk, nBase + bn);
        }
        barrier();
        [[unroll]] for (uint kk = 0; kk < BK; kk++) {
            float a[4], b[4];
            [[unroll]] for (uint i = 0; i < 4; i++) a[i] = As[kk][ty + 16 * i];
            [[unroll]] for (uint j = 0; j < 4; j++) b[j] = Bs[kk][tx + 16 * j];
            [[unroll]] for (uint i = 0; i < 4; i++) [[unroll]] for (uint j = 0; j < 4; j++) acc[i][j] += a[i] * b[j];
        }
        barrier();
    }
    [[unroll]] for (uint i = 0; i < 4; i++) {
        uint m = mBase + ty + 16 * i;
        [[unroll]] for (uint j = 0; j < 4; j++) {
            uint n = nBase + tx + 16 * j;
            if (m < p.M && n < p.N) epilogue(m, n, acc[i][j]);
        }
    }
}
