#version 450
// preprocess: uint8 image records (3 planes R, G, B of srcH x srcW bytes each,
// records back to back, packed four bytes per uint, little-endian) to normalized
// float network input, as ref.Preprocess: bilinear resize to resize x resize
// (align_corners=False, PyTorch's source index rule), center crop crop x crop at
// offset cropOff, optional seeded augmentation (crop shift, horizontal flip) and
// v * scale[c] + bias[c], scale = 1/(255 std), bias = -mean/std.
//
// The source coordinate src = (d + 0.5) * in / out - 0.5 is computed exactly in
// integers: num = (2d + 1) * in - out, i0 = num / (2 out), weight of i0 + 1 =
// (num % (2 out)) / (2 out); num <= 0 clamps to index 0.
//
// Augmentation (AUGMENT flag): image i draws r = philox_stream(i, 1, step, seed)
// with step and seed from the StepState buffer (words 0-3: step lo, step hi, seed
// lo, seed hi): dy = r.x % (2 pad + 1) - pad, dx = r.y % (2 pad + 1) - pad, flip
// when FLIP is set and r.z is odd. Samples outside the resized image read 0.
//
// One invocation computes up to SEG = 8 consecutive outputs of one row; a dispatch
// covers images [i0, i0 + nb) and channels [c0, c0 + nc). Output element (i, c, y, x) is
// at ((c * N + i) * crop + y) * crop + x (CNHW) or ((i * 3 + c) * crop + y) * crop + x
// (NCHW) of the whole output, less outShift (the first element of the binding);
// record byte b is in word (b >> 2) - recShift.
#include "philox.glsl"
layout(local_size_x = 64) in;

const uint AUGMENT = 1u, FLIP = 2u, NCHW = 4u;
const uint SEG = 8u;

layout(std430, binding = 0) readonly buffer Records { uint rec[]; };
layout(std430, binding = 1) readonly buffer State { uint words[]; } state;
layout(std430, binding = 2) writeonly buffer Out { float o[]; };
layout(push_constant) uniform Push {
    uint srcH, srcW, resize, crop, cropOff, pad, flags;
    uint N, i0, nb, c0, nc, outShift, recShift;
    float scale[3];
    float bias[3];
} p;

// tap returns the lower source index and the weight of the upper one for output
// coordinate d along an axis resampled from in to out samples. The quotient is
// estimated in floats and corrected in integers (integer division does not
// vectorise on CPUs).
void tap(uint d, uint in_, uint out_, out uint lo, out float w1) {
    int num = int((2u * d + 1u) * in_) - int(out_);
    if (num <= 0) { lo = 0u; w1 = 0.0; return; }
    uint den = 2u * out_;
    uint q = uint(float(num) / float(den));
    if (q * den > uint(num)) q--;
    if ((q + 1u) * den <= uint(num)) q++;
    lo = min(q, in_ - 1u);
    w1 = float(uint(num) - q * den) / float(den);
}

float pix(uint b) {
    uint w = rec[(b >> 2) - p.recShift];
    return float((w >> ((b & 3u) * 8u)) & 0xFFu);
}

void main() {
    uint gid = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
    uint segs = (p.crop + SEG - 1u) / SEG;
    if (gid >= p.nb * p.nc * p.crop * segs) return;
    uint seg = gid % segs;
    uint t = gid / segs;
    uint y = t % p.crop;
    t /= p.crop;
    uint c = p.c0 + t % p.nc;
    uint i = p.i0 + t / p.nc;

    int dy = 0, dx = 0;
    bool flip = false;
    if ((p.flags & AUGMENT) != 0u) {
        uvec4 r = philox_stream(i, 1u, uvec2(state.words[0], state.words[1]), uvec2(state.words[2], state.words[3]));
        uint span = 2u * p.pad + 1u;
        dy = int(r.x % span) - int(p.pad);
        dx = int(r.y % span) - int(p.pad);
        flip = (p.flags & FLIP) != 0u && (r.z & 1u) == 1u;
    }

    uint outRow = (p.flags & NCHW) != 0u ? (i * 3u + c) * p.crop + y : (c * p.N + i) * p.crop + y;
    uint outBase = outRow * p.crop - p.outShift;
    float sc = p.scale[c], bi = p.bias[c];
    uint x0 = seg * SEG, x1 = min(x0 + SEG, p.crop);

    int ry = int(p.cropOff) + dy + int(y);
    if (ry < 0 || ry >= int(p.resize)) {
        for (uint x = x0; x < x1; x++) o[outBase + x] = bi;
        return;
    }
    uint h0;
    float hw1;
    tap(uint(ry), p.srcH, p.resize, h0, hw1);
    uint h1 = min(h0 + 1u, p.srcH - 1u);
    float hw0 = 1.0 - hw1;
    uint plane = (i * 3u + c) * p.srcH * p.srcW;
    uint row0 = plane + h0 * p.srcW, row1 = plane + h1 * p.srcW;

    for (uint x = x0; x < x1; x++) {
        uint sx = flip ? p.crop - 1u - x : x;
        int rx = int(p.cropOff) + dx + int(sx);
        float v = 0.0;
        if (rx >= 0 && rx < int(p.resize)) {
            uint w0;
            float ww1;
            tap(uint(rx), p.srcW, p.resize, w0, ww1);
            uint w1 = min(w0 + 1u, p.srcW - 1u);
            float ww0 = 1.0 - ww1;
            v = hw0 * (ww0 * pix(row0 + w0) + ww1 * pix(row0 + w1)) +
                hw1 * (ww0 * pix(row1 + w0) + ww1 * pix(row1 + w1));
        }
        o[outBase + x] = v * sc + bi;
    }
}
