// Shared declarations of the GEMM kernels:
//   C[offC + m*ldc + n] = alpha * sum_k A(m,k) B(k,n) (+ C if ACCUMULATE) (+ bias) (ReLU if RELU)
// for each batch z = gl_WorkGroupID.z, whose operands start strideA, strideB and
// strideC elements after batch z-1's (batched GEMM: Winograd's 16 products).
// with A(m,k) = A[offA + m*lda + k], or A[offA + k*lda + m] when TRANS_A, and
// B(k,n) = B[offB + k*ldb + n], or B[offB + n*ldb + k] when TRANS_B. Offsets and
// leading dimensions are in elements. bias is indexed by m (BIAS == 1) or n (BIAS == 2).
layout(constant_id = 1) const bool TRANS_A = false;
layout(constant_id = 2) const bool TRANS_B = false;
layout(constant_id = 5) const int BIAS = 0;
layout(constant_id = 6) const bool RELU = false;
layout(constant_id = 7) const bool ACCUMULATE = false;

#ifdef VEC_C
// C read and written four floats at a time: ldc and offC are multiples of 4.
layout(std430, binding = 2) buffer Cbuf { vec4 C4[]; };
#else
layout(std430, binding = 2) buffer Cbuf { float C[]; };
#endif
layout(std430, binding = 3) readonly buffer BiasBuf { float bias[]; };
layout(push_constant) uniform Push {
    uint M, N, K, lda, ldb, ldc, offA, offB, offC, offBias;
    float alpha;
    uint strideA, strideB, strideC;
} p;

// The offsets of this workgroup's batch (set by batchOffsets at the start of main).
uint offA, offB, offC;
void batchOffsets() {
    uint z = gl_WorkGroupID.z;
    offA = p.offA + z * p.strideA;
    offB = p.offB + z * p.strideB;
    offC = p.offC + z * p.strideC;
}

#ifdef VEC_C
// epilogue4 finishes and stores C(m, n..n+3) (n a multiple of 4), keeping the
// elements at columns >= N as they were.
void epilogue4(uint m, uint n, vec4 acc) {
    vec4 v = p.alpha * acc;
    uint at = (offC + m * p.ldc + n) >> 2;
    bool whole = n + 4 <= p.N;
    vec4 old = (ACCUMULATE || !whole) ? C4[at] : vec4(0);
    if (ACCUMULATE) v += old;
    if (BIAS == 1) v += bias[p.offBias + m];
    if (BIAS == 2) {
        for (uint c = 0; c < 4; c++) v[c] += bias[p.offBias + min(n + c, p.N - 1)];
    }
    if (RELU) v = max(v, vec4(0));
    if (!whole) {
        for (uint c = 0; c < 4; c++) if (n + c >= p.N) v[c] = old[c];
    }
    C4[at] = v;
}
#else
// epilogue finishes and stores one result.
void epilogue(uint m, uint n, float acc) {
    float v = p.alpha * acc;
    uint at = offC + m * p.ldc + n;
    if (ACCUMULATE) v += C[at];
    if (BIAS == 1) v += bias[p.offBias + m];
    if (BIAS == 2) v += bias[p.offBias + n];
    if (RELU) v = max(v, 0.0);
    C[at] = v;
}
#endif
