#version 450
// maxpool: 2-D max pooling over independent H x W planes (plane p at element
// p*H*W; the layout around the planes, CNHW or NCHW, does not matter). PyTorch's
// floor mode, dilation 1, -Inf padding. The window (KH, KW, strides, padding) is a
// specialization constant, so its loops unroll and its divisions are by constants.
//
// FORWARD: one invocation per output element: y = window maximum and argmax = the
// flat index h*W+w of the chosen element within its input plane, scanning the
// window row-major and replacing the maximum only with a strictly greater value or
// a NaN (first maximum wins ties, NaN propagates; ref.MaxPool2DForward).
// BACKWARD: a gather: dx = sum of dy over the windows (in row-major window order)
// whose argmax names the element. No atomics, so the result is deterministic.
//
// Dispatch: x and y over the output columns and rows of a plane (FORWARD) or its
// SH x SW input blocks (BACKWARD), z over planes. argmax holds each index as a float32 value (exact below 2^24, and a
// normal float, so it survives any texel path); x, dy and argmax are read through
// R32F texel buffers. Bindings may be slices of their tensors: the *Off push
// constants are the element offsets of plane 0 within each binding.
#extension GL_EXT_control_flow_attributes : require
// The workgroup's shape is set per dispatch (layers/pool.go, poolGroups): 8x8
// over a plane's positions, with several planes per workgroup (z) where the
// planes are smaller than that, so that small maps (AlexNet's last pools at
// 64x64 input: 1x1 to 3x3 planes) do not run one mostly idle workgroup per plane.
layout(local_size_x_id = 20, local_size_y_id = 21, local_size_z_id = 22) in;

layout(constant_id = 1) const int KH = 3;
layout(constant_id = 2) const int KW = 3;
layout(constant_id = 3) const int SH = 2;
layout(constant_id = 4) const int SW = 2;
layout(constant_id = 5) const int PH = 0;
layout(constant_id = 6) const int PW = 0;

layout(push_constant) uniform Push {
    int H, W, OH, OW;
    int inOff, outOff, argOff; // element offsets of plane 0 in the x/dx, y/dy and argmax bindings
    int planes;
} p;

#ifdef FORWARD
layout(binding = 0) uniform samplerBuffer X;
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
layout(std430, binding = 2) writeonly buffer A { float argmax[]; };
#else
layout(binding = 0) uniform samplerBuffer DY;
layout(binding = 1) uniform samplerBuffer A;
layout(std430, binding = 2) writeonly buffer DX { float dx[]; };
#endif

void main() {
    int plane = int(gl_GlobalInvocationID.z);
    if (plane >= p.planes) return;
#ifdef FORWARD
    int ow = int(gl_GlobalInvocationID.x), oh = int(gl_GlobalInvocationID.y);
    if (ow >= p.OW || oh >= p.OH) return;
    int h0 = oh * SH - PH, w0 = ow * SW - PW;
    int base = p.inOff + plane * p.H * p.W;
    float best = uintBitsToFloat(0xff800000u); // -Inf: padding never wins
    int bi = max(h0, 0) * p.W + max(w0, 0);    // first in-image element
    [[unroll]] for (int kh = 0; kh < KH; kh++) {
        int h = h0 + kh;
        [[unroll]] for (int kw = 0; kw < KW; kw++) {
            int w = w0 + kw;
            bool inside = (PH == 0 || h >= 0) && h < p.H && (PW == 0 || w >= 0) && w < p.W;
            int e = h * p.W + w;
            // Padding reads a clamped in-plane element and counts as -Inf.
            float v = texelFetch(X, base + clamp(h, 0, p.H - 1) * p.W + clamp(w, 0, p.W - 1)).x;
            v = inside ? v : uintBitsToFloat(0xff800000u);
            if (v > best || isnan(v)) {
                best = v;
                bi = e;
            }
        }
    }
    int o = (plane * p.OH + oh) * p.OW + ow;
    y[p.outOff + o] = best;
    argmax[p.argOff + o] = float(bi);
#else
    // Input rows h with the same q = (h+PH)/SH lie under the same NH = ceil(KH/SH)
    // candidate windows oh = q-NH+1 .. q (oh*SH-PH <= h <= oh*SH-PH+KH-1), and
    // likewise for columns: one invocation handles such an SH x SW block, fetching
    // the candidates' argmax and dy once. A candidate counts for an element iff it
    // is a real window whose argmax names the element (which implies the window
    // covers it); out-of-range candidates are fetched clamped and add 0.
    const int NH = (KH + SH - 1) / SH, NW = (KW + SW - 1) / SW;
    int qw = int(gl_GlobalInvocationID.x), qh = int(gl_GlobalInvocationID.y);
    int h0 = qh * SH - PH, w0 = qw * SW - PW;
    if (h0 >= p.H || w0 >= p.W) return;
    int obase = p.outOff + plane * p.OH * p.OW;
    float g[NH][NW];
    int am[NH][NW];
    [[unroll]] for (int j = 0; j < NH; j++) {
        int oh = qh - (NH - 1) + j; // ascending: the sums run in row-major window order
        [[unroll]] for (int i = 0; i < NW; i++) {
            int ow = qw - (NW - 1) + i;
            bool valid = oh >= 0 && oh < p.OH && ow >= 0 && ow < p.OW;
            int o = clamp(oh, 0, p.OH - 1) * p.OW + clamp(ow, 0, p.OW - 1);
            g[j][i] = texelFetch(DY, obase + o).x;
            am[j][i] = valid ? int(texelFetch(A, p.argOff - p.outOff + obase + o).x) : -1;
        }
    }
    int ibase = p.inOff + plane * p.H * p.W;
    [[unroll]] for (int dh = 0; dh < SH; dh++) {
        int h = h0 + dh;
        [[unroll]] for (int dw = 0; dw < SW; dw++) {
            int w = w0 + dw;
            if (h < 0 || h >= p.H || w < 0 || w >= p.W) continue;
            int self = h * p.W + w;
            float sum = 0.0;
            [[unroll]] for (int j = 0; j < NH; j++)
                [[unroll]] for (int i = 0; i < NW; i++)
                    sum += am[j][i] == self ? g[j][i] : 0.0;
            dx[ibase + self] = sum;
        }
    }
#endif
}
