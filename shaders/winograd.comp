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
// of 4; columns T..ldT-1 written as 0), or [A²][O][ldT] for filters (ldT >= I
// a multiple of 4; [A²][O][I] for DFILTER's dU). One build per stage:
//   FILTER   U[e][o][i] = (G g G^T)[e] for filter g = w[o][i] (K x C x R x R,
//            o = k, i = c), or with FLIP (backward data) g = w[i][o] turned by
//            180 degrees (o = c, i = k)
//   INPUT    V[e][c][t] = (B^T d B)[e], d the A x A input tile of channel c
//   OUTPUT   y[k][n0+n][oh][ow] = (A^T m A) (+ bias[k], ReLU), m = M[.][k][t]
//   DOUTPUT  dM[e][k][t] = (A dy A^T)[e], dy the M x M output-gradient tile
//   DFILTER  dw[k][c] (+)= G^T dU[.][k][c] G
// Every stage but DFILTER is one invocation per row and four consecutive
// columns (tiles, or input channels for filters), 16 invocations a workgroup;
// DFILTER one per (o, i) pair, 64 a workgroup (layers/winograd.go's
// winoStages). The stages that write a transformed tensor store each
// transformed element of the four columns as one vec4: on lavapipe a storage
// store is a loop over the lanes and components, so one vec4 store costs
// little more than one float's. OUTPUT reads its four columns of M as RGBA32F
// texels (one fetch for four floats); the other reads go through R32F texel
// buffers, writes through storage buffers, at element offsets given in the
// push constants (the transformed tensors share one scratch buffer). The
// matrices are constants and every loop over them is unrolled, so the
// compiler sees each transform as a fixed sum (zeros and ones folded away).
#ifdef DFILTER
layout(local_size_x = 64) in;
#else
layout(local_size_x = 16) in; // 64 columns: small maps at small batches still fill a workgroup
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

layout(binding = 0) uniform samplerBuffer Src; // RGBA32F for OUTPUT, else R32F
#if defined(OUTPUT) || defined(DFILTER)
layout(std430, binding = 1) buffer Dst { float dst[]; };
#else
layout(std430, binding = 1) buffer Dst { vec4 dst4[]; };
#endif
#ifdef OUTPUT
layout(std430, binding = 2) readonly buffer BiasBuf { float bias[]; };
#endif
layout(push_constant) uniform Push {
    uint rows;          // channels of the stage's rows (c for INPUT, k for OUTPUT/DOUTPUT; O for filters)
    uint cols;          // tiles T (I for filters)
    uint ldT;           // leading dimension of the transformed tensors (DFILTER: I)
    uint N, H, W;       // the activation tensor read or written: N images of H x W
    uint OH, OW;        // the outputs covered by the tiles (OUTPUT, DOUTPUT: the dy/y size)
    uint TH, TW;        // tiles per image, down and across
    int padH, padW;
    uint n0;            // first image of the chunk
    uint srcOff, dstOff; // element offsets into Src and Dst
    uint plane;         // elements between the A² transformed matrices (rows*ldT; DFILTER O*I)
} p;

float src(uint i) { return texelFetch(Src, int(p.srcOff + i)).x; }

// tileAt splits tile t of the chunk into its image n and tile row and column.
void tileAt(uint t, out uint n, out uint th, out uint tw) {
    tw = t % p.TW;
    uint q = t / p.TW;
    th = q % p.TH;
    n = q / p.TH;
}

#if defined(FILTER)
// transform returns U[.][o][i] for row o, column i.
void transform(uint o, uint i, out float u[TA * TA]) {
    float g[TR * TR];
    [[unroll]] for (uint e = 0; e < TR * TR; e++) {
        // FLIP: w'[o][i][r][s] = w[i][o][R-1-r][R-1-s], w being (I rows of) O-channel filters.
        g[e] = FLIP ? src((i * p.rows + o) * TR * TR + TR * TR - 1 - e) : src((o * p.cols + i) * TR * TR + e);
    }
    float t[TA * TR]; // G g
    [[unroll]] for (uint a = 0; a < TA; a++) {
        [[unroll]] for (uint s = 0; s < TR; s++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TR; k++) v += G[a * TR + k] * g[k * TR + s];
            t[a * TR + s] = v;
        }
    }
    [[unroll]] for (uint a = 0; a < TA; a++) {
        [[unroll]] for (uint b = 0; b < TA; b++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TR; k++) v += t[a * TR + k] * G[b * TR + k];
            u[a * TA + b] = v;
        }
    }
}
#elif defined(INPUT)
// transform returns V[.][c][t] for row c, tile t.
void transform(uint row, uint jt, out float u[TA * TA]) {
    uint n, th, tw;
    tileAt(jt, n, th, tw);
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
    [[unroll]] for (uint a = 0; a < TA; a++) {
        [[unroll]] for (uint b = 0; b < TA; b++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TA; k++) v += t[a * TA + k] * BT[b * TA + k];
            u[a * TA + b] = v;
        }
    }
}
#elif defined(DOUTPUT)
// transform returns dM[.][k][t] for row k, tile t.
void transform(uint row, uint jt, out float u[TA * TA]) {
    uint n, th, tw;
    tileAt(jt, n, th, tw);
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
    [[unroll]] for (uint a = 0; a < TA; a++) {
        [[unroll]] for (uint b = 0; b < TA; b++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TM; k++) v += t[a * TM + k] * AT[k * TA + b];
            u[a * TA + b] = v;
        }
    }
}
#elif defined(OUTPUT)
// outputTile writes y's M x M outputs of row k, tile jt from its products m.
void outputTile(uint row, uint jt, float m[TA * TA]) {
    float t[TM * TA]; // A^T m
    [[unroll]] for (uint a = 0; a < TM; a++) {
        [[unroll]] for (uint s = 0; s < TA; s++) {
            float v = 0.0;
            [[unroll]] for (uint k = 0; k < TA; k++) v += AT[a * TA + k] * m[k * TA + s];
            t[a * TA + s] = v;
        }
    }
    uint n, th, tw;
    tileAt(jt, n, th, tw);
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
}
#endif

void main() {
    uint row = gl_GlobalInvocationID.y + gl_GlobalInvocationID.z * gl_NumWorkGroups.y;
#if defined(DFILTER)
    // dw[o][i] (+)= G^T du G, du = dU[.][o][i].
    uint j = gl_GlobalInvocationID.x;
    if (row >= p.rows || j >= p.cols) return;
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
#else
    uint j = gl_GlobalInvocationID.x * 4; // the first of four columns (ldT, offsets and planes are multiples of 4)
    if (row >= p.rows || j >= p.ldT) return;
#if defined(OUTPUT)
    vec4 m4[TA * TA]; // M[e][row][j..j+3]
    [[unroll]] for (uint e = 0; e < TA * TA; e++) m4[e] = texelFetch(Src, int((p.srcOff + row * p.ldT + j + e * p.plane) >> 2));
    [[unroll]] for (uint q4 = 0; q4 < 4; q4++) {
        if (j + q4 < p.cols) {
            float m[TA * TA];
            [[unroll]] for (uint e = 0; e < TA * TA; e++) m[e] = m4[e][q4];
            outputTile(row, j + q4, m);
        }
    }
#else
    // Columns past cols are written as 0.
    vec4 res[TA * TA];
    [[unroll]] for (uint q4 = 0; q4 < 4; q4++) {
        float u[TA * TA];
        transform(row, min(j + q4, p.cols - 1), u);
        bool real = j + q4 < p.cols;
        [[unroll]] for (uint e = 0; e < TA * TA; e++) res[e][q4] = real ? u[e] : 0.0;
    }
    uint at4 = (p.dstOff + row * p.ldT + j) >> 2;
    [[unroll]] for (uint e = 0; e < TA * TA; e++) dst4[at4 + e * (p.plane >> 2)] = res[e];
#endif
#endif
}
