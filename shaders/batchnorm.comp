#version 450
// batchnorm: torch.nn.BatchNorm2d over C channels of N x S values each (S = H*W),
// element (c, n, s) at c*cStride + n*nStride + s: CNHW activations have
// cStride = N*S, nStride = S (a channel is contiguous), NCHW ones cStride = S,
// nStride = C*S. The per-channel statistics live in one buffer: stats[c] is the
// mean and stats[C + c] is 1/sqrt(var + eps) that normalise channel c.
//
// STATS (one workgroup per channel): the batch's mean, then its biased variance
//   as the mean of squared deviations (two passes: no cancellation), into stats;
//   the running mean and variance move by momentum towards the batch mean and the
//   unbiased variance (var * L/(L-1), L = N*S), as PyTorch does in training mode.
// EVAL_STATS (one invocation per channel): stats from the running statistics.
// APPLY: y = (x - mean) * invstd * gamma + beta, one invocation per element;
//   with RELU the ReLU after it, fused: y = relu(that) (NaN kept, as torch.relu).
// BWD_REDUCE (one workgroup per channel): dbeta = sum dy, dgamma = sum dy * xhat,
//   xhat = (x - mean) * invstd; written, not accumulated.
// BWD_DATA: dx = gamma * invstd * (dy - dbeta/L - xhat * dgamma/L) with batch
//   statistics (TRAIN), or gamma * invstd * dy with running ones (eval mode and
//   frozen BatchNorm, where the statistics are constants).
// With RELU both backward kernels take dy as 0 where the forward's output Y is
// not positive (the fused ReLU's backward, as threshold_backward).
// VEC4 (the *_v4 modules): the same for a channel-contiguous layout (CNHW, nStride
// = S) whose channel length N*S and cStride are multiples of 4: four values per
// invocation, read as RGBA32F texels (the others read R32F texels, one value each).
// Sums are float32: each of the 64 invocations adds L/64 values in order, then a
// tree of 6 levels in shared memory (error at most (L/64 + 6) eps of the sum of
// magnitudes; layers/batchnorm.go states the bounds).
#extension GL_EXT_control_flow_attributes : require

layout(push_constant) uniform Push {
    uint C, N, S, cStride, nStride;
    float eps, momentum;
} p;

layout(constant_id = 1) const bool TRAIN = true;
layout(constant_id = 2) const bool RELU = false;

// at returns the offset of the j-th value (j < N*S) of a channel from its start.
uint at(uint j) {
    if (p.nStride == p.S) return j; // the channel is contiguous (CNHW)
    return (j / p.S) * p.nStride + j % p.S;
}

#if defined(STATS) || defined(BWD_REDUCE)
layout(local_size_x = 64) in;
shared float partial[64];

// reduce returns the sum of every invocation's v (the same in all of them).
float reduce(float v) {
    uint lid = gl_LocalInvocationID.x;
    partial[lid] = v;
    barrier();
    [[unroll]] for (uint w = 32; w > 0; w >>= 1) {
        if (lid < w) partial[lid] += partial[lid + w];
        barrier();
    }
    float sum = partial[0];
    barrier(); // partial is reused by the next reduce
    return sum;
}
#else
layout(local_size_x = 64) in;
#endif

#ifdef STATS
layout(binding = 0) uniform samplerBuffer X;
layout(std430, binding = 1) writeonly buffer Stats { float stats[]; };
layout(std430, binding = 2) buffer RunMean { float runMean[]; };
layout(std430, binding = 3) buffer RunVar { float runVar[]; };

void main() {
    uint c = gl_WorkGroupID.x, lid = gl_LocalInvocationID.x;
    uint l = p.N * p.S;
    int base = int(c * p.cStride);
#ifdef VEC4
    int tbase = base / 4;
    vec4 s4 = vec4(0);
    for (uint t = lid; 4 * t < l; t += 64) s4 += texelFetch(X, tbase + int(t));
    float mean = reduce((s4.x + s4.y) + (s4.z + s4.w)) / float(l);
    vec4 q4 = vec4(0);
    for (uint t = lid; 4 * t < l; t += 64) {
        vec4 d = texelFetch(X, tbase + int(t)) - mean;
        q4 += d * d;
    }
    float variance = reduce((q4.x + q4.y) + (q4.z + q4.w)) / float(l);
#else
    float s = 0;
    for (uint j = lid; j < l; j += 64) s += texelFetch(X, base + int(at(j))).x;
    float mean = reduce(s) / float(l);
    float q = 0;
    for (uint j = lid; j < l; j += 64) {
        float d = texelFetch(X, base + int(at(j))).x - mean;
        q += d * d;
    }
    float variance = reduce(q) / float(l);
#endif
    if (lid == 0) {
        stats[c] = mean;
        stats[p.C + c] = inversesqrt(variance + p.eps);
        runMean[c] = (1 - p.momentum) * runMean[c] + p.momentum * mean;
        runVar[c] = (1 - p.momentum) * runVar[c] + p.momentum * (variance * float(l) / float(l - 1));
    }
}
#endif

#ifdef EVAL_STATS
layout(std430, binding = 1) writeonly buffer Stats { float stats[]; };
layout(std430, binding = 2) readonly buffer RunMean { float runMean[]; };
layout(std430, binding = 3) readonly buffer RunVar { float runVar[]; };

void main() {
    uint c = gl_GlobalInvocationID.x;
    if (c >= p.C) return;
    stats[c] = runMean[c];
    stats[p.C + c] = inversesqrt(runVar[c] + p.eps);
}
#endif

#ifdef APPLY
// Dispatch: x over a channel's N*S values, y over channels.
layout(binding = 0) uniform samplerBuffer X;
#ifdef VEC4
layout(std430, binding = 1) writeonly buffer Y { vec4 y4[]; };
#else
layout(std430, binding = 1) writeonly buffer Y { float y[]; };
#endif
layout(std430, binding = 2) readonly buffer Stats { float stats[]; };
layout(std430, binding = 3) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 4) readonly buffer Beta { float beta[]; };

void main() {
    uint j = gl_GlobalInvocationID.x, c = gl_GlobalInvocationID.y;
    float scale = stats[p.C + c] * gamma[c];
#ifdef VEC4
    if (4 * j >= p.N * p.S) return;
    uint t = (c * p.cStride) / 4 + j;
    vec4 v = (texelFetch(X, int(t)) - stats[c]) * scale + beta[c];
    if (RELU) v = mix(vec4(0), v, bvec4(uvec4(greaterThan(v, vec4(0))) | uvec4(isnan(v))));
    y4[t] = v;
#else
    if (j >= p.N * p.S) return;
    uint e = c * p.cStride + at(j);
    float v = (texelFetch(X, int(e)).x - stats[c]) * scale + beta[c];
    if (RELU && !(v > 0 || isnan(v))) v = 0;
    y[e] = v;
#endif
}
#endif

#ifdef BWD_REDUCE
layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer DY;
layout(std430, binding = 2) readonly buffer Stats { float stats[]; };
layout(std430, binding = 3) writeonly buffer DGamma { float dgamma[]; };
layout(std430, binding = 4) writeonly buffer DBeta { float dbeta[]; };
layout(binding = 5) uniform samplerBuffer Y;

void main() {
    uint c = gl_WorkGroupID.x, lid = gl_LocalInvocationID.x;
    uint l = p.N * p.S;
    int base = int(c * p.cStride);
    float mean = stats[c];
#ifdef VEC4
    vec4 sdy4 = vec4(0), sdyx4 = vec4(0);
    for (uint t = lid; 4 * t < l; t += 64) {
        int e = base / 4 + int(t);
        vec4 dy = texelFetch(DY, e);
        if (RELU) dy = mix(vec4(0), dy, greaterThan(texelFetch(Y, e), vec4(0)));
        sdy4 += dy;
        sdyx4 += dy * (texelFetch(X, e) - mean);
    }
    float sdy = (sdy4.x + sdy4.y) + (sdy4.z + sdy4.w), sdyx = (sdyx4.x + sdyx4.y) + (sdyx4.z + sdyx4.w);
#else
    float sdy = 0, sdyx = 0;
    for (uint j = lid; j < l; j += 64) {
        int e = base + int(at(j));
        float dy = texelFetch(DY, e).x;
        if (RELU && !(texelFetch(Y, e).x > 0)) dy = 0;
        sdy += dy;
        sdyx += dy * (texelFetch(X, e).x - mean);
    }
#endif
    float db = reduce(sdy);
    float dg = reduce(sdyx) * stats[p.C + c];
    if (lid == 0) {
        dbeta[c] = db;
        dgamma[c] = dg;
    }
}
#endif

#ifdef BWD_DATA
// Dispatch as APPLY.
layout(binding = 0) uniform samplerBuffer X;
layout(binding = 1) uniform samplerBuffer DY;
layout(std430, binding = 2) readonly buffer Stats { float stats[]; };
layout(std430, binding = 3) readonly buffer Gamma { float gamma[]; };
layout(std430, binding = 4) readonly buffer DGamma { float dgamma[]; };
layout(std430, binding = 5) readonly buffer DBeta { float dbeta[]; };
#ifdef VEC4
layout(std430, binding = 6) writeonly buffer DX { vec4 dx4[]; };
#else
layout(std430, binding = 6) writeonly buffer DX { float dx[]; };
#endif
layout(binding = 7) uniform samplerBuffer Y;

void main() {
    uint j = gl_GlobalInvocationID.x, c = gl_GlobalInvocationID.y;
#ifdef VEC4
    if (4 * j >= p.N * p.S) return;
    int t = int((c * p.cStride) / 4 + j);
    float invstd = stats[p.C + c];
    vec4 dy = texelFetch(DY, t);
    if (RELU) dy = mix(vec4(0), dy, greaterThan(texelFetch(Y, t), vec4(0)));
    if (TRAIN) {
        float inv = 1.0 / float(p.N * p.S);
        vec4 xhat = (texelFetch(X, t) - stats[c]) * invstd;
        dx4[t] = gamma[c] * invstd * (dy - dbeta[c] * inv - xhat * (dgamma[c] * inv));
    } else {
        dx4[t] = gamma[c] * invstd * dy;
    }
}
#else
    if (j >= p.N * p.S) return;
    uint e = c * p.cStride + at(j);
    float invstd = stats[p.C + c];
    float dy = texelFetch(DY, int(e)).x;
    if (RELU && !(texelFetch(Y, int(e)).x > 0)) dy = 0;
    if (TRAIN) {
        float inv = 1.0 / float(p.N * p.S);
        float xhat = (texelFetch(X, int(e)).x - stats[c]) * invstd;
        dx[e] = gamma[c] * invstd * (dy - dbeta[c] * inv - xhat * (dgamma[c] * inv));
    } else {
        dx[e] = gamma[c] * invstd * dy;
    }
}
#endif // VEC4
#endif
