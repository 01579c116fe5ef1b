#version 450
// xent: fused softmax cross-entropy with mean reduction over a batch of n rows of
// `classes` logits, and (with -DREDUCE) the batch reduction into the loss stats.
//
// xent (per row): with m = max_j z_j (argmax: first maximum wins) and
// S = sum_j exp(z_j - m), writes
//   loss[row] = (m - z[label]) + log(S)              (log-sum-exp: stable)
//   dz[row, j] = exp(z_j - m) / S * invN - (j == label ? invN : 0)
//   pred[row] = argmax_j z_j
// SMOOTH (label smoothing eps, torch's CrossEntropyLoss(label_smoothing=eps)):
// the target is (1-eps) onehot(label) + eps/C, so with D = sum_j (m - z_j) >= 0
//   loss[row] = (lw (m - z[label]) + uw D) + log(S)      lw = 1-eps, uw = eps/C
//   dz[row, j] = exp(z_j - m) / S * invN - (j == label ? tl : toff)
// with tl = (1-eps+eps/C)/N and toff = eps/(C N) from the host (float64, rounded
// once). Every term of the loss is non-negative: no cancellation. Without
// SMOOTH the code is the plain path above, unchanged (eps = 0 is bit-identical).
// WIDE: one workgroup of 64 invocations per row, fixed-order tree reductions in
// shared memory (for many classes). Otherwise one invocation per row. dz may be
// the same memory as z: every element is read and then written by one invocation,
// and z[label] is read before the first barrier.
//
// FUSED (one invocation per row and n <= 64: the batch is one workgroup): the
// batch reduction below is done in the same kernel, with no second dispatch.
//
// xent_reduce (REDUCE): one workgroup sums loss[] and counts pred == label in a
// fixed order (deterministic: no atomics), then invocation 0 updates the stats
// words (see layers.LossStats): 0 loss sum (float, Kahan-compensated by word 1),
// 2 steps, 3 samples, 4 correct, 5 batch loss (float), 6 batch correct, 7 batch size.
#extension GL_EXT_control_flow_attributes : require

#ifdef REDUCE
layout(local_size_x = 64) in;
layout(std430, binding = 0) readonly buffer Loss { float loss[]; };
layout(std430, binding = 1) readonly buffer Pred { uint pred[]; };
layout(std430, binding = 2) readonly buffer Labels { uint label[]; };
layout(std430, binding = 3) buffer Stats { uint w[]; } stats;
layout(push_constant) uniform Push { uint n; } p;
#else
layout(local_size_x = 64) in;
layout(constant_id = 0) const bool WIDE = true;
layout(constant_id = 1) const bool FUSED = false; // !WIDE and n <= 64: reduce in place
layout(constant_id = 2) const bool SMOOTH = false; // label smoothing: lw, uw, tl, toff below
layout(std430, binding = 0) readonly buffer Logits { float z[]; };
layout(std430, binding = 1) readonly buffer Labels { uint label[]; };
layout(std430, binding = 2) writeonly buffer DLogits { float dz[]; };
layout(std430, binding = 3) writeonly buffer Pred { uint pred[]; };
layout(std430, binding = 4) writeonly buffer Loss { float loss[]; };
layout(std430, binding = 5) buffer Stats { uint w[]; } stats;
layout(push_constant) uniform Push { uint n, classes; float invN, lw, uw, tl, toff; } p;
#endif

shared float ssum[64];
shared uint scnt[64];
#ifndef REDUCE
shared float sdev[64]; // SMOOTH: partial sums of m - z_j
#endif

// update adds a batch of n rows with loss sum total and `correct` right to the stats.
void update(float total, uint correct, uint n) {
    float mean = total / float(n);
    // Kahan summation of the batch means: the running sum stays accurate
    // over many steps.
    precise float sum = uintBitsToFloat(stats.w[0]);
    precise float comp = uintBitsToFloat(stats.w[1]);
    precise float y = mean - comp;
    precise float nsum = sum + y;
    comp = (nsum - sum) - y;
    stats.w[0] = floatBitsToUint(nsum);
    stats.w[1] = floatBitsToUint(comp);
    stats.w[2] += 1u;
    stats.w[3] += n;
    stats.w[4] += correct;
    stats.w[5] = floatBitsToUint(mean);
    stats.w[6] = correct;
    stats.w[7] = n;
}

#ifdef REDUCE
void main() {
    uint t = gl_LocalInvocationID.x;
    float s = 0.0;
    uint c = 0u;
    for (uint i = t; i < p.n; i += 64u) {
        s += loss[i];
        c += pred[i] == label[i] ? 1u : 0u;
    }
    ssum[t] = s;
    scnt[t] = c;
    barrier();
    [[unroll]] for (uint h = 32u; h > 0u; h >>= 1) {
        if (t < h) {
            ssum[t] += ssum[t + h];
            scnt[t] += scnt[t + h];
        }
        barrier();
    }
    if (t == 0u) update(ssum[0], scnt[0], p.n);
}

#else
void main() {
    uint C = p.classes;
    if (!WIDE) {
        uint row = gl_GlobalInvocationID.y * (gl_NumWorkGroups.x * 64u) + gl_GlobalInvocationID.x;
        float l = 0.0;
        uint ok = 0u;
        if (row < p.n) {
            uint base = row * C;
            uint lab = label[row];
            float zl = z[base + lab];
            float m = z[base];
            uint best = 0u;
            for (uint j = 1u; j < C; j++) {
                float v = z[base + j];
                if (v > m) { m = v; best = j; }
            }
            float S = 0.0;
            float D = 0.0;
            for (uint j = 0u; j < C; j++) {
                S += exp(z[base + j] - m);
                if (SMOOTH) D += m - z[base + j];
            }
            for (uint j = 0u; j < C; j++) {
                float g = exp(z[base + j] - m) / S * p.invN;
                if (SMOOTH) dz[base + j] = g - (j == lab ? p.tl : p.toff);
                else dz[base + j] = j == lab ? g - p.invN : g;
            }
            if (SMOOTH) l = (p.lw * (m - zl) + p.uw * D) + log(S);
            else l = (m - zl) + log(S);
            ok = best == lab ? 1u : 0u;
            pred[row] = best;
            loss[row] = l;
        }
        if (FUSED) {
            // The whole batch is this workgroup: reduce here, no second dispatch.
            uint t = gl_LocalInvocationID.x;
            ssum[t] = l;
            scnt[t] = ok;
            barrier();
            [[unroll]] for (uint h = 32u; h > 0u; h >>= 1) {
                if (t < h) {
                    ssum[t] += ssum[t + h];
                    scnt[t] += scnt[t + h];
                }
                barrier();
            }
            if (t == 0u) update(ssum[0], scnt[0], p.n);
        }
        return;
    }

    uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
    if (row >= p.n) return; // uniform over the workgroup
    uint t = gl_LocalInvocationID.x;
    uint base = row * C;
    uint lab = label[row];
    float zl = z[base + lab];

    // Max and first argmax: strided partials, then a tree that prefers the
    // smaller index on ties. bi == ~0u marks an invocation with no element.
    float bv = 0.0;
    uint bi = ~0u;
    for (uint j = t; j < C; j += 64u) {
        float v = z[base + j];
        if (bi == ~0u || v > bv) { bv = v; bi = j; }
    }
    ssum[t] = bv;
    scnt[t] = bi;
    barrier();
    [[unroll]] for (uint h = 32u; h > 0u; h >>= 1) {
        if (t < h) {
            float ov = ssum[t + h];
            uint oi = scnt[t + h];
            float mv = ssum[t];
            uint mi = scnt[t];
            if (oi != ~0u && (mi == ~0u || ov > mv || (ov == mv && oi < mi))) {
                ssum[t] = ov;
                scnt[t] = oi;
            }
        }
        barrier();
    }
    float m = ssum[0];
    uint best = scnt[0];
    barrier();

    float s = 0.0;
    float d = 0.0;
    for (uint j = t; j < C; j += 64u) {
        s += exp(z[base + j] - m);
        if (SMOOTH) d += m - z[base + j];
    }
    ssum[t] = s;
    if (SMOOTH) sdev[t] = d;
    barrier();
    [[unroll]] for (uint h = 32u; h > 0u; h >>= 1) {
        if (t < h) {
            ssum[t] += ssum[t + h];
            if (SMOOTH) sdev[t] += sdev[t + h];
        }
        barrier();
    }
    float S = ssum[0];
    float D = SMOOTH ? sdev[0] : 0.0;

    for (uint j = t; j < C; j += 64u) {
        float g = exp(z[base + j] - m) / S * p.invN;
        if (SMOOTH) dz[base + j] = g - (j == lab ? p.tl : p.toff);
        else dz[base + j] = j == lab ? g - p.invN : g;
    }
    if (t == 0u) {
        pred[row] = best;
        if (SMOOTH) loss[row] = (p.lw * (m - zl) + p.uw * D) + log(S);
        else loss[row] = (m - zl) + log(S);
    }
}
#endif
