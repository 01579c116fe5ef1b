#version 450
// im2col: unfolds a batch chunk of a CNHW input into the convolution's column
// matrix, col[C*R*S, ldcol], row (c*R + r)*S + s, column (n*OH + oh)*OW + ow for
// images n0 <= n0+n < n0+G:
//   col[row, col] = x[c, n0+n, oh*strideH - padH + r, ow*strideW - padW + s] (0 outside).
// Columns G*OH*OW <= j < ldcol (ldcol a multiple of 4) are written as 0. Each
// invocation writes 16 consecutive columns of one row as four vec4s, dividing
// once and stepping (ow, oh, n) from there; x is read with texelFetch (R32F) and
// no branches. Grid: x covers ldcol/16 in groups of 64, y (and z, when the rows
// exceed the device's limit in y) the rows.
#extension GL_EXT_control_flow_attributes : require
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer X;
layout(std430, binding = 1) writeonly buffer Col { vec4 col[]; };
layout(push_constant) uniform Push {
    uint C, N, H, W;
    uint R, S, strideH, strideW, padH, padW;
    uint OH, OW;
    uint n0, G;    // first image of the chunk, images in it
    uint ldcol4;   // ldcol / 4
    uint rows;     // C*R*S
} p;

void main() {
    uint row = gl_WorkGroupID.y + gl_WorkGroupID.z * gl_NumWorkGroups.y;
    uint j4 = 4 * gl_GlobalInvocationID.x; // first vec4 of the four
    if (row >= p.rows || j4 >= p.ldcol4) return;
    uint s = row % p.S, t = row / p.S;
    uint r = t % p.R, c = t / p.R;
    uint P = p.OH * p.OW, cols = p.G * P;
    int base = int((c * p.N + p.n0) * p.H);
    uint j = 4 * j4;
    uint n = j / P, q = j - n * P;
    uint oh = q / p.OW, ow = q - oh * p.OW;
    int H = int(p.H), W = int(p.W);
    int ih = int(oh * p.strideH + r) - int(p.padH);
    int iw0 = int(s) - int(p.padW);
    vec4 v[4];
    [[unroll]] for (uint e = 0; e < 16; e++) {
        int iw = int(ow * p.strideW) + iw0;
        bool inside = j + e < cols && ih >= 0 && ih < H && iw >= 0 && iw < W;
        int at = inside ? (base + int(n) * H + ih) * W + iw : 0;
        float x = texelFetch(X, at).x;
        v[e >> 2][e & 3] = inside ? x : 0.0;
        // Step to the next column.
        ow++;
        if (ow == p.OW) {
            ow = 0;
            oh++;
            ih += int(p.strideH);
            if (oh == p.OH) {
                oh = 0;
                n++;
                ih = int(r) - int(p.padH);
            }
        }
    }
    col[row * p.ldcol4 + j4] = v[0];
    [[unroll]] for (uint k = 1; k < 4; k++)
        if (j4 + k < p.ldcol4) col[row * p.ldcol4 + j4 + k] = v[k];
}
