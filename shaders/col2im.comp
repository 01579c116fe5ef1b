#version 450
// col2im: the input gradient of a convolution from the column gradient of a batch
// chunk, as a gather (no atomics): each element of dx (CNHW) sums the entries of
// dcol[C*R*S, ldcol] that im2col read it into,
//   dx[c, n0+n, ih, iw] = sum over r, s with ih + padH - r = oh*strideH and
//   iw + padW - s = ow*strideW (0 <= oh < OH, 0 <= ow < OW) of
//   dcol[(c*R + r)*S + s, (n*OH + oh)*OW + ow],
// in increasing (r, s) order. A dispatch covers channels c0 <= c < c0+Cn and the
// chunk's G images; dx is bound from the element (c0*N + n0)*H*W, at offset dxOff
// in the binding. dcol is read with texelFetch (R32F).
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer Dcol;
layout(std430, binding = 1) writeonly buffer DX { float dx[]; };
layout(push_constant) uniform Push {
    uint N, H, W;
    uint R, S, strideH, strideW, padH, padW;
    uint OH, OW;
    uint c0, Cn, G;
    uint ldcol, dxOff, total;  // total = Cn*G*H*W
} p;

void main() {
    uint i = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (i >= p.total) return;
    uint iw = i % p.W, t = i / p.W;
    uint ih = t % p.H; t /= p.H;
    uint n = t % p.G, cl = t / p.G;
    uint c = p.c0 + cl;
    int sh = int(p.strideH), sw = int(p.strideW);
    int y = int(ih + p.padH), x = int(iw + p.padW);
    // r runs over [rLo, rHi] with y - r a multiple of strideH and (y - r)/strideH < OH.
    int rLo = max(0, y - (int(p.OH) - 1) * sh);
    rLo += (y - rLo) % sh;
    int rHi = min(int(p.R) - 1, y);
    int sLo = max(0, x - (int(p.OW) - 1) * sw);
    sLo += (x - sLo) % sw;
    int sHi = min(int(p.S) - 1, x);
    int colBase = int(n * p.OH * p.OW);
    float sum = 0.0;
    // oh and ow step down by one as r and s step up by a stride: no division.
    int ldcol = int(p.ldcol), OW = int(p.OW);
    int oh = (y - rLo) / sh, ow0 = (x - sLo) / sw;
    for (int r = rLo; r <= rHi; r += sh, oh--) {
        int at = ((int(c * p.R) + r) * int(p.S) + sLo) * ldcol + colBase + oh * OW + ow0;
        for (int s = sLo; s <= sHi; s += sw) {
            sum += texelFetch(Dcol, at).x;
            at += sw * ldcol - 1; // next s: sw rows down, one output column left
        }
    }
    dx[p.dxOff + cl * p.N * p.H * p.W + n * p.H * p.W + ih * p.W + iw] = sum;
}
