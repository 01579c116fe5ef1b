#version 450
// sgd: one torch.optim.SGD step over n4 vec4s of a parameter, in place, in torch's
// order of operations (torch/optim/sgd.py, _single_tensor_sgd):
//   g = grad + weight_decay * param                    (if weight_decay != 0)
//   buf = first ? g : momentum * buf + (1 - dampening) * g   (if momentum != 0)
//   g = nesterov ? g + momentum * buf : buf            (if momentum != 0)
//   param = param - lr * g
// The hyper-parameters come from a small storage buffer the host rewrites between
// submits (layers.SGDParams): words 0 lr, 1 momentum, 2 1-dampening (as torch's
// alpha, rounded once from float64), 3 weight_decay (floats), 4 nesterov, 5 first
// (uints). HAS_BUF false: no momentum buffer (momentum is then taken as 0).
// With TEXEL_READS grad, param and buf are read as RGBA32F texels (vectorised on
// lavapipe) and written through storage vec4s; each vec4 is read and written by
// one invocation only.
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool HAS_BUF = true;

layout(std430, binding = 0) readonly buffer Hyper {
    float lr, momentum, dampc, wd;
    uint nesterov, first;
} h;
layout(std430, binding = 1) buffer Param { vec4 param[]; };
layout(std430, binding = 2) buffer Buf { vec4 mbuf[]; };
#ifdef TEXEL_READS
layout(binding = 3) uniform samplerBuffer Grad;
layout(binding = 4) uniform samplerBuffer ParamIn;
layout(binding = 5) uniform samplerBuffer BufIn;
#else
layout(std430, binding = 3) readonly buffer Grad { vec4 grad[]; };
#endif
layout(push_constant) uniform Push { uint n4; } p;

void main() {
    // Every hyper-parameter read before any store: lavapipe reloads a storage
    // buffer's values after a store (it cannot tell the buffers apart), one
    // lane at a time; hoisted, the step measured 1.3-1.9x as fast
    // (BenchmarkSGD/texel-reads over AlexNet's 44M parameters, AMD EPYC host).
    float hwd = h.wd, hmom = h.momentum, hdampc = h.dampc, hlr = h.lr;
    uint hfirst = h.first, hnest = h.nesterov;
    uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
    if (i >= p.n4) return;
#ifdef TEXEL_READS
    vec4 x = texelFetch(ParamIn, int(i));
    vec4 g = texelFetch(Grad, int(i));
#else
    vec4 x = param[i];
    vec4 g = grad[i];
#endif
    float wd = hwd;
    if (wd != 0.0) g = g + wd * x;
    float mom = hmom;
    if (HAS_BUF && mom != 0.0) {
        vec4 b;
        if (hfirst != 0u) {
            b = g;
        } else {
#ifdef TEXEL_READS
            vec4 old = texelFetch(BufIn, int(i));
#else
            vec4 old = mbuf[i];
#endif
            b = old * mom + g * hdampc;
        }
        mbuf[i] = b;
        g = hnest != 0u ? g + b * mom : b;
    }
    param[i] = x - hlr * g;
}
