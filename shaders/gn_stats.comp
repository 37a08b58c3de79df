#version 450
// gn_stats.comp — GroupNorm statistics: for each group (one workgroup each), the mean and 1/sqrt(var + eps) over
// all its channels and all pixels. Two passes over the data (mean, then squared deviations) for accuracy.
#extension GL_EXT_control_flow_attributes : enable
#ifdef FP16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ACT4 f16vec4
#else
#define ACT4 vec4
#endif

layout(local_size_x_id = 0, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 2) const int CHANNELS = 256;
layout(constant_id = 3) const int GROUPS = 4;
layout(constant_id = 4) const float EPS = 1e-5;
const int CPG4 = CHANNELS / GROUPS / 4;   // vec4 groups per GroupNorm group

layout(std430, set = 0, binding = 0) readonly buffer Src { ACT4 src[]; };
layout(std430, set = 0, binding = 5) writeonly buffer Stats { vec2 stats[]; };

layout(push_constant) uniform Shape {
    int h, w;
} pc;

shared float partial[gl_WorkGroupSize.x];

float reduce(float v)
{
    const uint lid = gl_LocalInvocationID.x;
    partial[lid] = v;
    barrier();
    for (uint s = gl_WorkGroupSize.x / 2; s > 0; s >>= 1) {
        if (lid < s)
            partial[lid] += partial[lid + s];
        barrier();
    }
    float r = partial[0];
    barrier();
    return r;
}

void main()
{
    const int g = int(gl_WorkGroupID.x);
    const int hw = pc.h * pc.w;
    const int n = CPG4 * hw;                  // vec4 elements in the group (contiguous in C4HW)
    const int base = g * CPG4 * hw;
    const int lid = int(gl_LocalInvocationID.x);
    const int nthreads = int(gl_WorkGroupSize.x);

    float s = 0.0;
    for (int i = lid; i < n; i += nthreads) {
        vec4 v = vec4(src[base + i]);
        s += (v.x + v.y) + (v.z + v.w);
    }
    const float count = float(n) * 4.0;
    const float mean = reduce(s) / count;

    float q = 0.0;
    for (int i = lid; i < n; i += nthreads) {
        vec4 d = vec4(src[base + i]) - mean;
        q += dot(d, d);
    }
    const float var = reduce(q) / count;
    if (lid == 0)
        stats[g] = vec2(mean, inversesqrt(var + EPS));
}
