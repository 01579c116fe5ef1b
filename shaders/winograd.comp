#version 450
#extension GL_EXT_control_flow_attributes : require
// winograd: the transforms of Winograd's F(M x M, R x R), M = WINO_M and
// R = WINO_R (layers/winograd.go runs them around a batched GEMM of A² products,
// A = M + R - 1; layers/ref/winograd.go is their float64 reference and writes
// the matrices in winograd_matrices.glsl). Activations are CNHW. A chunk's
// tiles are numbered t = (n*TH + th)*TW + tw for its images n
// (n0 <= n0+n < n0+G); tile (th, tw) covers output rows M th .. M th + M-1 and
// the same columns, and reads the A x A input tile at (M th - padH,
// M tw - padW). Transformed tensors are [A²][rows][ldT] (ldT >= T a multiple
// of 4; columns T..ldT-1 written as 0), or [A²][O][I] for filters. One build
// per stage:
//   FILTER   U[e][o][i] = (G g G^T)[e] for filter g = w[o][i] (K x C x R x R,
//            o = k, i = c), or with FLIP (backward data) g = w[i][o] turned by
//            180 degrees (o = c, i = k)
//   INPUT    V[e][c][t] = (B^T d B)[e], d the A x A input tile of channel c
//   OUTPUT   y[k][n0+n][oh][ow] = (A^T m A) (+ bias[k], ReLU), m = M[.][k][t]
//   DOUTPUT  dM[e][k][t] = (A dy A^T)[e], dy the M x M output-gradient tile
//   DFILTER  dw[k][c] (+)= G^T dU[.][k][c] G
// Every stage is one invocation per (row, tile) or (o, i) pair, INPUT and
// DOUTPUT one per row and four tiles (vec4 stores); reads go through
// R32F texel buffers, writes through storage buffers, at element offsets given
// in the push constants (the transformed tensors share one scratch buffer).
// The matrices are constants and every loop over them is unrolled, so the
// compiler sees each transform as a fixed sum (zeros and ones folded away).
#if defined(INPUT) || defined(DOUTPUT)
layout(local_size_x = 16) in; // 64 tiles: small maps at small batches still fill a workgroup
#else
layout(local_size_x = 64) in;
#endif
layout(constant_id = 0) const bool FLIP = false;
layout(constant_id = 1) const bool BIAS = false;
layout(constant_id = 2) const bool RELU = false;
layout(constant_id = 3) const bool ACCUMULATE = false;

#ifndef WINO_M
#define WINO_M 2
#endif
#ifndef WINO_R
#define WINO_R 3
#endif
#define TM WINO_M
#define TR WINO_R
#define TA (WINO_M + WINO_R - 1)
#include "winograd_matrices.glsl"

layout(binding = 0) uniform samplerBuffer Src;
#if defined(INPUT) || defined(DOUTPUT)
layout(std430, binding = 1) buffer Dst { vec4 dst4[]; };
#else
layout(std430, binding = 1) buffer Dst { float dst[]; };
#endif
#ifdef OUTPUT
layout(std430, binding = 2) readonly buffer BiasBuf { float bias[]; };
#endif
layout(push_constant) uniform Push {
    uint rows;          // channels of the stage's rows (c for INPUT, k for OUTPUT/DOUTPUT; O for filters)
    uint cols;          // tiles T (I for filters)
    uint ldT;           // leading dimension of the transformed tensors (filters: I)
    uint N, H, W;       // the activation tensor read or written: N images of H x W
    uint OH, OW;        // the outputs covered by the tiles (OUTPUT, DOUTPUT: the dy/y size)
    uint TH, TW;        // tiles per image, down and across
    int padH, padW;
    uint n0;            // first image of the chunk
    uint srcOff, dstOff; // element offsets into Src and Dst
    uint plane;         // elements between the A² transformed matrices (rows*ldT, or O*I)
} p;

float src(uint i) { return texelFetch(Src, int(p.srcOff + i)).x; }

void main() {
#if defined(INPUT) || defined(DOUTPUT)
    uint j = gl_GlobalInvocationID.x * 4; // the first of four tiles
#else
    uint j = gl_GlobalInvocationID.x;     // tile, or input channel for filters
#endif
    uint row = gl_GlobalInvocationID.y + gl_GlobalInvocationID.z * gl_NumWorkGroups.y;
    if (row >= p.rows || j >= p.ldT) return;
#if defined(FILTER)
    // Row o, column i of the filter transform; the weight tensor is K x C x R x R.
    if (j >= p.cols) return;
    float g[TR * TR];
    [[unroll]] for (uint e = 0; e < TR * TR; e++) {
        // FLIP: w'[o][i][r][s] = w[i][o][R-1-r][R-1-s], w being (I rows of) O-channel filters.
        g[e] = FLIP ? src((j * p.rows + row) * TR * TR + TR * TR - 1 - e) : src((row * p.cols + j) * TR * TR + e);
    }
    float t[TA * TR]; // G g
    [[unroll]] for (uint a = 0; a < TA; a++) {
        [[unroll]] for (uint s = 0; s < TR; s++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TR; k++) v += G[a * TR + k] * g[k * TR + s];
            t[a * TR + s] = v;
        }
    }
    uint at = p.dstOff + row * p.cols + j;
    [[unroll]] for (uint a = 0; a < TA; a++) {
        [[unroll]] for (uint b = 0; b < TA; b++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TR; k++) v += t[a * TR + k] * G[b * TR + k];
            dst[at + (a * TA + b) * p.plane] = v;
        }
    }
#elif defined(INPUT)
    // Four consecutive tiles j..j+3 per invocation (j a multiple of 4), stored as
    // one vec4 per transformed element: on lavapipe a storage store is a loop
    // over the lanes, so one vec4 store costs little more than one float's.
    // Columns past T are written as 0.
    uint at4 = (p.dstOff + row * p.ldT + j) >> 2; // offV, ldT and the plane are multiples of 4
    vec4 res[TA * TA];
    [[unroll]] for (uint q4 = 0; q4 < 4; q4++) {
        uint jt = min(j + q4, p.cols - 1);
        uint tw = jt % p.TW, q = jt / p.TW;
        uint th = q % p.TH, n = q / p.TH;
        int y0 = int(TM * th) - p.padH, x0 = int(TM * tw) - p.padW;
        uint base = (row * p.N + p.n0 + n) * p.H * p.W;
        float d[TA * TA];
        [[unroll]] for (int r = 0; r < TA; r++) {
            [[unroll]] for (int s = 0; s < TA; s++) {
                int ih = y0 + r, iw = x0 + s;
                bool inside = ih >= 0 && ih < int(p.H) && iw >= 0 && iw < int(p.W);
                float v = src(inside ? base + uint(ih) * p.W + uint(iw) : 0u);
                d[r * TA + s] = inside ? v : 0.0;
            }
        }
        float t[TA * TA]; // B^T d
        [[unroll]] for (uint a = 0; a < TA; a++) {
            [[unroll]] for (uint s = 0; s < TA; s++) {
                float v = 0.0;
                [[unroll]] for (uint k = 0; k < TA; k++) v += BT[a * TA + k] * d[k * TA + s];
                t[a * TA + s] = v;
            }
        }
        bool real = j + q4 < p.cols;
        [[unroll]] for (uint a = 0; a < TA; a++) {
            [[unroll]] for (uint b = 0; b < TA; b++) {
                float v = 0.0;
                [[unroll]] for (uint k = 0; k < TA; k++) v += t[a * TA + k] * BT[b * TA + k];
                res[a * TA + b][q4] = real ? v : 0.0;
            }
        }
    }
    [[unroll]] for (uint e = 0; e < TA * TA; e++) dst4[at4 + e * (p.plane >> 2)] = res[e];
#elif defined(OUTPUT)
    if (j >= p.cols) return;
    float m[TA * TA];
    [[unroll]] for (uint e = 0; e < TA * TA; e++) m[e] = src(row * p.ldT + j + e * p.plane);
    float t[TM * TA]; // A^T m
    [[unroll]] for (uint a = 0; a < TM; a++) {
        [[unroll]] for (uint s = 0; s < TA; s++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TA; k++) v += AT[a * TA + k] * m[k * TA + s];
            t[a * TA + s] = v;
        }
    }
    uint tw = j % p.TW, q = j / p.TW;
    uint th = q % p.TH, n = q / p.TH;
    uint base = p.dstOff + (row * p.N + p.n0 + n) * p.OH * p.OW;
    float bv = BIAS ? bias[row] : 0.0;
    [[unroll]] for (uint a = 0; a < TM; a++) {
        [[unroll]] for (uint b = 0; b < TM; b++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TA; k++) v += t[a * TA + k] * AT[b * TA + k];
            v += bv;
            uint oh = TM * th + a, ow = TM * tw + b;
            if (oh < p.OH && ow < p.OW) dst[base + oh * p.OW + ow] = RELU ? max(v, 0.0) : v;
        }
    }
#elif defined(DOUTPUT)
    // Four tiles per invocation, one vec4 store per element, as INPUT.
    uint at4 = (p.dstOff + row * p.ldT + j) >> 2;
    vec4 res[TA * TA];
    [[unroll]] for (uint q4 = 0; q4 < 4; q4++) {
        uint jt = min(j + q4, p.cols - 1);
        uint tw = jt % p.TW, q = jt / p.TW;
        uint th = q % p.TH, n = q / p.TH;
        uint base = (row * p.N + p.n0 + n) * p.OH * p.OW;
        float g[TM * TM];
        [[unroll]] for (uint r = 0; r < TM; r++) {
            [[unroll]] for (uint s = 0; s < TM; s++) {
                uint oh = TM * th + r, ow = TM * tw + s;
                bool inside = oh < p.OH && ow < p.OW;
                float v = src(inside ? base + oh * p.OW + ow : 0u);
                g[r * TM + s] = inside ? v : 0.0;
            }
        }
        float t[TA * TM]; // A g: A is AT transposed
        [[unroll]] for (uint a = 0; a < TA; a++) {
            [[unroll]] for (uint s = 0; s < TM; s++) {
                float v = 0.0;
                [[unroll]] for (uint k = 0; k < TM; k++) v += AT[k * TA + a] * g[k * TM + s];
                t[a * TM + s] = v;
            }
        }
        bool real = j + q4 < p.cols;
        [[unroll]] for (uint a = 0; a < TA; a++) {
            [[unroll]] for (uint b = 0; b < TA; b++) {
                float v = 0.0;
                [[unroll]] for (uint k = 0; k < TM; k++) v += t[a * TM + k] * AT[k * TA + b];
                res[a * TA + b][q4] = real ? v : 0.0;
            }
        }
    }
    [[unroll]] for (uint e = 0; e < TA * TA; e++) dst4[at4 + e * (p.plane >> 2)] = res[e];
#elif defined(DFILTER)
    // dw[o][i] (+)= G^T du G, du = dU[.][o][i].
    if (j >= p.cols) return;
    float du[TA * TA];
    [[unroll]] for (uint e = 0; e < TA * TA; e++) du[e] = src(row * p.cols + j + e * p.plane);
    float t[TR * TA]; // G^T du
    [[unroll]] for (uint a = 0; a < TR; a++) {
        [[unroll]] for (uint s = 0; s < TA; s++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TA; k++) v += G[k * TR + a] * du[k * TA + s];
            t[a * TA + s] = v;
        }
    }
    uint at = p.dstOff + (row * p.cols + j) * TR * TR;
    [[unroll]] for (uint a = 0; a < TR; a++) {
        [[unroll]] for (uint b = 0; b < TR; b++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TA; k++) v += t[a * TA + k] * G[k * TR + b];
            uint e = at + a * TR + b;
            if (ACCUMULATE) v += dst[e];
            dst[e] = v;
        }
    }
#endif
}
