#version 450
// winograd: the transforms of Winograd's F(2x2, 3x3) (layers/winograd.go runs
// them around a batched GEMM of 16 products; layers/ref/winograd.go is their
// float64 reference). Activations are CNHW. A chunk's tiles are numbered
// t = (n*TH + th)*TW + tw for its images n (n0 <= n0+n < n0+G); tile (th, tw)
// covers outputs rows 2th..2th+1, columns 2tw..2tw+1, and reads the 4x4 input
// tile at (2th - padH, 2tw - padW). Transformed tensors are [16][rows][ldT]
// (ldT >= T a multiple of 4; columns T..ldT-1 written as 0), or [16][O][I] for
// filters. One build per stage:
//   FILTER   U[e][o][i] = (G g G^T)[e] for filter g = w[o][i] (K x C x 3 x 3,
//            o = k, i = c), or with FLIP (backward data) g = w[i][o] turned by
//            180 degrees (o = c, i = k)
//   INPUT    V[e][c][t] = (B^T d B)[e], d the 4x4 input tile of channel c
//   OUTPUT   y[k][n0+n][oh][ow] = (A^T m A) (+ bias[k], ReLU), m = M[.][k][t]
//   DOUTPUT  dM[e][k][t] = (A dy A^T)[e], dy the 2x2 output-gradient tile
//   DFILTER  dw[k][c] (+)= G^T dU[.][k][c] G
// Every stage is one invocation per (row, tile) or (o, i) pair; reads go through
// R32F texel buffers, writes through storage buffers, at element offsets given
// in the push constants (the transformed tensors share one scratch buffer).
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool FLIP = false;
layout(constant_id = 1) const bool BIAS = false;
layout(constant_id = 2) const bool RELU = false;
layout(constant_id = 3) const bool ACCUMULATE = false;

layout(binding = 0) uniform samplerBuffer Src;
layout(std430, binding = 1) buffer Dst { float dst[]; };
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
    uint plane;         // elements between the 16 transformed matrices (rows*ldT, or O*I)
} p;

float src(uint i) { return texelFetch(Src, int(p.srcOff + i)).x; }

void main() {
    uint j = gl_GlobalInvocationID.x;     // tile, or input channel for filters
    uint row = gl_GlobalInvocationID.y + gl_GlobalInvocationID.z * gl_NumWorkGroups.y;
    if (row >= p.rows || j >= p.ldT) return;
#if defined(FILTER)
    // Row o, column i of the filter transform; the weight tensor is K x C x 3 x 3.
    if (j >= p.cols) return;
    float g[9];
    for (uint e = 0; e < 9; e++) {
        // FLIP: w'[o][i][r][s] = w[i][o][2-r][2-s], w being (I rows of) O-channel filters.
        g[e] = FLIP ? src((j * p.rows + row) * 9 + 8 - e) : src((row * p.cols + j) * 9 + e);
    }
    float t[4][3];
    for (uint s = 0; s < 3; s++) {
        float a = g[s], b = g[3 + s], c = g[6 + s];
        t[0][s] = a;
        t[1][s] = 0.5 * (a + b + c);
        t[2][s] = 0.5 * (a - b + c);
        t[3][s] = c;
    }
    for (uint r = 0; r < 4; r++) {
        float a = t[r][0], b = t[r][1], c = t[r][2];
        uint at = p.dstOff + row * p.cols + j + (4 * r) * p.plane;
        dst[at] = a;
        dst[at + p.plane] = 0.5 * (a + b + c);
        dst[at + 2 * p.plane] = 0.5 * (a - b + c);
        dst[at + 3 * p.plane] = c;
    }
#elif defined(INPUT)
    uint at = p.dstOff + row * p.ldT + j;
    if (j >= p.cols) {
        for (uint e = 0; e < 16; e++) dst[at + e * p.plane] = 0.0;
        return;
    }
    uint tw = j % p.TW, q = j / p.TW;
    uint th = q % p.TH, n = q / p.TH;
    int y0 = int(2 * th) - p.padH, x0 = int(2 * tw) - p.padW;
    uint base = (row * p.N + p.n0 + n) * p.H * p.W;
    float d[4][4];
    for (int r = 0; r < 4; r++) {
        for (int s = 0; s < 4; s++) {
            int ih = y0 + r, iw = x0 + s;
            bool inside = ih >= 0 && ih < int(p.H) && iw >= 0 && iw < int(p.W);
            float v = src(inside ? base + uint(ih) * p.W + uint(iw) : 0u);
            d[r][s] = inside ? v : 0.0;
        }
    }
    // B^T d: rows d0-d2, d1+d2, d2-d1, d1-d3; then the same on the columns.
    float t[4][4];
    for (uint s = 0; s < 4; s++) {
        t[0][s] = d[0][s] - d[2][s];
        t[1][s] = d[1][s] + d[2][s];
        t[2][s] = d[2][s] - d[1][s];
        t[3][s] = d[1][s] - d[3][s];
    }
    for (uint r = 0; r < 4; r++) {
        uint e = at + 4 * r * p.plane;
        dst[e] = t[r][0] - t[r][2];
        dst[e + p.plane] = t[r][1] + t[r][2];
        dst[e + 2 * p.plane] = t[r][2] - t[r][1];
        dst[e + 3 * p.plane] = t[r][1] - t[r][3];
    }
#elif defined(OUTPUT)
    if (j >= p.cols) return;
    float m[16];
    for (uint e = 0; e < 16; e++) m[e] = src(row * p.ldT + j + e * p.plane);
    // A^T m: rows m0+m1+m2, m1-m2-m3; then the same on the columns.
    float t[2][4];
    for (uint s = 0; s < 4; s++) {
        t[0][s] = m[s] + m[4 + s] + m[8 + s];
        t[1][s] = m[4 + s] - m[8 + s] - m[12 + s];
    }
    uint tw = j % p.TW, q = j / p.TW;
    uint th = q % p.TH, n = q / p.TH;
    uint base = p.dstOff + (row * p.N + p.n0 + n) * p.OH * p.OW;
    float b = BIAS ? bias[row] : 0.0;
    for (uint r = 0; r < 2; r++) {
        float y[2];
        y[0] = t[r][0] + t[r][1] + t[r][2] + b;
        y[1] = t[r][1] - t[r][2] - t[r][3] + b;
        uint oh = 2 * th + r;
        for (uint s = 0; s < 2; s++) {
            uint ow = 2 * tw + s;
            if (oh < p.OH && ow < p.OW) dst[base + oh * p.OW + ow] = RELU ? max(y[s], 0.0) : y[s];
        }
    }
#elif defined(DOUTPUT)
    uint at = p.dstOff + row * p.ldT + j;
    if (j >= p.cols) {
        for (uint e = 0; e < 16; e++) dst[at + e * p.plane] = 0.0;
        return;
    }
    uint tw = j % p.TW, q = j / p.TW;
    uint th = q % p.TH, n = q / p.TH;
    uint base = (row * p.N + p.n0 + n) * p.OH * p.OW;
    float g[2][2];
    for (uint r = 0; r < 2; r++) {
        for (uint s = 0; s < 2; s++) {
            uint oh = 2 * th + r, ow = 2 * tw + s;
            bool inside = oh < p.OH && ow < p.OW;
            float v = src(inside ? base + oh * p.OW + ow : 0u);
            g[r][s] = inside ? v : 0.0;
        }
    }
    // A g A^T: A's rows are (1,0), (1,1), (1,-1), (0,-1).
    float t[4][2];
    for (uint s = 0; s < 2; s++) {
        t[0][s] = g[0][s];
        t[1][s] = g[0][s] + g[1][s];
        t[2][s] = g[0][s] - g[1][s];
        t[3][s] = -g[1][s];
    }
    for (uint r = 0; r < 4; r++) {
        uint e = at + 4 * r * p.plane;
        dst[e] = t[r][0];
        dst[e + p.plane] = t[r][0] + t[r][1];
        dst[e + 2 * p.plane] = t[r][0] - t[r][1];
        dst[e + 3 * p.plane] = -t[r][1];
    }
#elif defined(DFILTER)
    // dw[o][i] (+)= G^T du G, du = dU[.][o][i]; G^T's rows are (1,.5,.5,0),
    // (0,.5,-.5,0), (0,.5,.5,1).
    if (j >= p.cols) return;
    float du[16];
    for (uint e = 0; e < 16; e++) du[e] = src(row * p.cols + j + e * p.plane);
    float t[3][4];
    for (uint s = 0; s < 4; s++) {
        float a = du[s], b = du[4 + s], c = du[8 + s], d = du[12 + s];
        t[0][s] = a + 0.5 * (b + c);
        t[1][s] = 0.5 * (b - c);
        t[2][s] = 0.5 * (b + c) + d;
    }
    uint at = p.dstOff + (row * p.cols + j) * 9;
    for (uint r = 0; r < 3; r++) {
        float a = t[r][0], b = t[r][1], c = t[r][2], d = t[r][3];
        float v0 = a + 0.5 * (b + c), v1 = 0.5 * (b - c), v2 = 0.5 * (b + c) + d;
        if (ACCUMULATE) {
            v0 += dst[at + 3 * r];
            v1 += dst[at + 3 * r + 1];
            v2 += dst[at + 3 * r + 2];
        }
        dst[at + 3 * r] = v0;
        dst[at + 3 * r + 1] = v1;
        dst[at + 3 * r + 2] = v2;
    }
#endif
}
