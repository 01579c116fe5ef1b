#version 450
// slabsum: sums S slabs of a rows x cols matrix in order,
//   out[outOff + i*ldo + j] = sum_{s < S} part[(s*rows + i)*cols + j]   (j < cols),
// cols a multiple of 4: the partial sums a kernel split over slabs of its
// reduction writes (gemm_smallk_sgd_dx's input gradient). Each invocation sums
// one vec4 of a row, reading texels (RGBA32F), and stores its floats; the slabs
// are added in index order, so results are deterministic.
layout(local_size_x = 64) in;
layout(binding = 0) uniform samplerBuffer Part;
layout(std430, binding = 1) writeonly buffer Out { float outv[]; };
layout(push_constant) uniform Push {
    uint slabs, rows, cols, ldo, outOff;
} p;

void main() {
    uint cols4 = p.cols >> 2;
    uint t = gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
    if (t >= p.rows * cols4) return;
    uint i = t / cols4, j = 4 * (t - i * cols4);
    uint stride4 = p.rows * cols4;
    vec4 sum = vec4(0);
    for (uint s = 0; s < p.slabs; s++) sum += texelFetch(Part, int(s * stride4 + t));
    uint at = p.outOff + i * p.ldo + j;
    outv[at] = sum.x;
    outv[at + 1] = sum.y;
    outv[at + 2] = sum.z;
    outv[at + 3] = sum.w;
}
