#version 450
// adam: one torch.optim.Adam or AdamW step over n4 vec4s of a parameter, in
// place, in torch 1.13's order of operations (torch/optim/adam.py and adamw.py,
// _single_tensor_adam[w], not amsgrad):
//   AdamW:  param = param * (1 - lr * weight_decay)
//   Adam:   g = grad + weight_decay * param              (if weight_decay != 0)
//   exp_avg    = exp_avg * beta1 + g * (1 - beta1)
//   exp_avg_sq = exp_avg_sq * beta2 + (1 - beta2) * g * g
//   denom = sqrt(exp_avg_sq) / bias_correction2_sqrt + eps
//   param = param - step_size * exp_avg / denom
// step_size = lr / (1 - beta1^t) and bias_correction2_sqrt = sqrt(1 - beta2^t)
// are computed on the host in float64 for each step t (as torch does, then
// rounded once) and come, with the other hyper-parameters, from a small
// storage buffer the host rewrites between submits (layers.AdamParams): words
// 0 lr, 1 beta1, 2 1-beta1, 3 beta2, 4 1-beta2, 5 eps, 6 weight_decay,
// 7 step_size, 8 bias_correction2_sqrt (floats), 9 decoupled (uint, AdamW).
// grad, param and the moments are read as RGBA32F texels (vectorised on
// lavapipe) and written through storage vec4s; each vec4 is read and written
// by one invocation only.
layout(local_size_x = 64) in;

layout(std430, binding = 0) readonly buffer Hyper {
    float lr, beta1, omb1, beta2, omb2, eps, wd, stepSize, bc2Sqrt;
    uint decoupled;
} h;
layout(std430, binding = 1) buffer Param { vec4 param[]; };
layout(std430, binding = 2) buffer ExpAvg { vec4 expAvg[]; };
layout(std430, binding = 3) buffer ExpAvgSq { vec4 expAvgSq[]; };
layout(binding = 4) uniform samplerBuffer Grad;
layout(binding = 5) uniform samplerBuffer ParamIn;
layout(binding = 6) uniform samplerBuffer ExpAvgIn;
layout(binding = 7) uniform samplerBuffer ExpAvgSqIn;
layout(push_constant) uniform Push { uint n4; } p;

void main() {
    uint i = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
    if (i >= p.n4) return;
    float stepSize = h.stepSize; // read before the stores (see sgd.comp)
    vec4 x = texelFetch(ParamIn, int(i));
    vec4 g = texelFetch(Grad, int(i));
    if (h.decoupled != 0u) {
        x = x * (1.0 - h.lr * h.wd);
    } else if (h.wd != 0.0) {
        g = g + h.wd * x;
    }
    vec4 m = texelFetch(ExpAvgIn, int(i)) * h.beta1 + g * h.omb1;
    vec4 v = texelFetch(ExpAvgSqIn, int(i)) * h.beta2 + h.omb2 * g * g;
    vec4 denom = sqrt(v) / h.bc2Sqrt + h.eps;
    expAvg[i] = m;
    expAvgSq[i] = v;
    param[i] = x - stepSize * m / denom;
}
