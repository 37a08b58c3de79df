#version 450
// conv.comp — the one convolution kernel: k×k conv (k = 1 or 3, pad k/2, stride 1 or 2) over channel-packed
// activations, with fused input transforms (tanh clamp, nearest 2× upsample, GroupNorm-normalize + ReLU) and
// fused epilogue (bias, residual add, ReLU).
//
// Activation layout ("C4HW"): vec4 groups of 4 channels, index (c4 * H + y) * W + x; channels padded to 4.
// Each invocation computes PX adjacent output pixels of one row for COB groups of 4 output channels, so every
// weight load feeds PX FMAs and every input load feeds COB.
// Build-time variants: FP16 (f16 activations/weights, fp32 accumulation), IN_PLANAR / OUT_PLANAR (the caller's
// float32 CHW arrays instead of packed activations), TEXEL_SRC (packed activations read through texel buffers).
#extension GL_EXT_control_flow_attributes : enable
#ifdef FP16
#extension GL_EXT_shader_16bit_storage : require
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define ACT4 f16vec4
#else
#define ACT4 vec4
#endif

layout(local_size_x_id = 0, local_size_y_id = 1, local_size_z = 1) in;
layout(constant_id = 2) const int CIN = 64;
layout(constant_id = 3) const int COUT = 64;
layout(constant_id = 4) const int KSIZE = 3;
layout(constant_id = 5) const int STRIDE = 1;
layout(constant_id = 6) const bool UPSAMPLE = false;   // input read at (y/2, x/2): nearest 2× upsample
layout(constant_id = 7) const bool TANH_IN = false;    // tanh(x/3)*3 on the input
layout(constant_id = 8) const bool GN_IN = false;      // relu(gamma * (x - mean) * rstd + beta) on the input
layout(constant_id = 9) const bool HAS_BIAS = false;
layout(constant_id = 10) const bool HAS_SKIP = false;
layout(constant_id = 11) const bool RELU = false;
layout(constant_id = 12) const int PX = 8;             // output pixels per invocation (along x)
layout(constant_id = 13) const int COB = 2;            // output channel groups (of 4) per invocation
layout(constant_id = 14) const int GN_CPG = 64;        // channels per GroupNorm group

const int CIN4 = (CIN + 3) / 4;
const int COUT4 = (COUT + 3) / 4;
const int TAPS = KSIZE * KSIZE;
const int PAD = KSIZE / 2;

#ifdef IN_PLANAR
layout(std430, set = 0, binding = 0) readonly buffer Src { float src[]; };
#else
layout(std430, set = 0, binding = 0) readonly buffer Src { ACT4 src[]; };
#endif
// weights: [co4 (padded to COB)][ci4][tap][j] columns; column j holds W[co4*4 + 0..3][ci4*4 + j][tap]
layout(std430, set = 0, binding = 1) readonly buffer Weights { ACT4 wts[]; };
layout(std430, set = 0, binding = 2) readonly buffer Bias { ACT4 bias[]; };
layout(std430, set = 0, binding = 3) readonly buffer Skip { ACT4 skip[]; };
#ifdef OUT_PLANAR
layout(std430, set = 0, binding = 4) writeonly buffer Dst { float dst[]; };
#else
layout(std430, set = 0, binding = 4) writeonly buffer Dst { ACT4 dst[]; };
#endif
#ifdef TEXEL_SRC
// Activations and weights read through uniform texel buffers (views of the same buffers): lavapipe compiles a
// texel fetch to a vector gather, but a storage-buffer load whose address it cannot prove uniform (anything
// indexed by a loop counter) to a loop over the lanes.
layout(set = 0, binding = 7) uniform samplerBuffer src_tex;
layout(set = 0, binding = 8) uniform samplerBuffer skip_tex;
layout(set = 0, binding = 9) uniform samplerBuffer wts_tex;   // the same packed weights as wts[]
#endif
layout(std430, set = 0, binding = 5) readonly buffer GnStats { vec2 gn_stats[]; };     // (mean, rstd) per group
layout(std430, set = 0, binding = 6) readonly buffer GnAffine { ACT4 gn_affine[]; };   // gamma[CIN4], beta[CIN4]

layout(push_constant) uniform Shape {
    int in_h, in_w;     // stored input size (before the upsample)
    int out_h, out_w;
} pc;

vec4 load_src(int c4, int y, int x)
{
#ifdef IN_PLANAR
    vec4 v = vec4(0.0);
    int plane = pc.in_h * pc.in_w;
    int base = y * pc.in_w + x;
    for (int j = 0; j < 4; j++)
        if (c4 * 4 + j < CIN)
            v[j] = src[(c4 * 4 + j) * plane + base];
    return v;
#elif defined(TEXEL_SRC)
    return texelFetch(src_tex, (c4 * pc.in_h + y) * pc.in_w + x);
#else
    return vec4(src[(c4 * pc.in_h + y) * pc.in_w + x]);
#endif
}

void main()
{
    const int ox0 = int(gl_GlobalInvocationID.x) * PX;
    const int oy = int(gl_GlobalInvocationID.y);
    const int cob0 = int(gl_WorkGroupID.z) * COB;   // uniform across the workgroup: weight loads are uniform
    // No early return: on SIMD-per-lane implementations (lavapipe) divergent control flow before the loops would
    // turn the uniform weight loads into per-lane gathers. Out-of-range lanes compute on clamped coordinates and
    // skip only the stores.
    const bool in_range = oy < pc.out_h && ox0 < pc.out_w;

    const int vh = UPSAMPLE ? pc.in_h * 2 : pc.in_h;  // virtual (upsampled) input size
    const int vw = UPSAMPLE ? pc.in_w * 2 : pc.in_w;
    const int ushift = UPSAMPLE ? 1 : 0;

    vec4 acc[PX * COB];
    for (int i = 0; i < PX * COB; i++)
        acc[i] = vec4(0.0);

    for (int ci4 = 0; ci4 < CIN4; ci4++) {
        vec4 gn_scale = vec4(1.0), gn_shift = vec4(0.0);
        if (GN_IN) {
            vec2 st = gn_stats[(ci4 * 4) / GN_CPG];
            vec4 gamma = vec4(gn_affine[ci4]);
            vec4 beta = vec4(gn_affine[CIN4 + ci4]);
            gn_scale = gamma * st.y;
            gn_shift = beta - st.x * gn_scale;
        }
        for (int ky = 0; ky < KSIZE; ky++) {
            const int iy = oy * STRIDE + ky - PAD;
            const bool row_ok = iy >= 0 && iy < vh;
            for (int kx = 0; kx < KSIZE; kx++) {
                vec4 v[PX];
                [[unroll]] for (int p = 0; p < PX; p++) {
                    // Branch-free zero padding: load from a clamped address, then select.
                    const int ix = (ox0 + p) * STRIDE + kx - PAD;
                    const bool ok = row_ok && ix >= 0 && ix < vw;
                    vec4 t = load_src(ci4, clamp(iy, 0, vh - 1) >> ushift, clamp(ix, 0, vw - 1) >> ushift);
                    if (TANH_IN)
                        t = tanh(clamp(t / 3.0, -15.0, 15.0)) * 3.0;  // clamp: some tanh lowerings overflow to NaN
                    if (GN_IN)
                        t = max(t * gn_scale + gn_shift, 0.0);
                    v[p] = ok ? t : vec4(0.0);
                }
                const int tap = ky * KSIZE + kx;
                [[unroll]] for (int o = 0; o < COB; o++) {
                    const int wbase = (((cob0 + o) * CIN4 + ci4) * TAPS + tap) * 4;
#ifdef TEXEL_SRC
                    const mat4 w = mat4(texelFetch(wts_tex, wbase + 0), texelFetch(wts_tex, wbase + 1),
                                        texelFetch(wts_tex, wbase + 2), texelFetch(wts_tex, wbase + 3));
#else
                    const mat4 w = mat4(vec4(wts[wbase + 0]), vec4(wts[wbase + 1]),
                                        vec4(wts[wbase + 2]), vec4(wts[wbase + 3]));
#endif
                    [[unroll]] for (int p = 0; p < PX; p++)
                        acc[o * PX + p] += w * v[p];
                }
            }
        }
    }

    if (!in_range)
        return;
    for (int o = 0; o < COB; o++) {
        const int co4 = cob0 + o;
        if (co4 >= COUT4)
            break;
        const vec4 b = HAS_BIAS ? vec4(bias[co4]) : vec4(0.0);
        for (int p = 0; p < PX; p++) {
            const int ox = ox0 + p;
            if (ox >= pc.out_w)
                break;
            vec4 r = acc[o * PX + p] + b;
            const int di = (co4 * pc.out_h + oy) * pc.out_w + ox;
            if (HAS_SKIP)
#ifdef TEXEL_SRC
                r += texelFetch(skip_tex, di);
#else
                r += vec4(skip[di]);
#endif
            if (RELU)
                r = max(r, 0.0);
#ifdef OUT_PLANAR
            const int plane = pc.out_h * pc.out_w;
            for (int j = 0; j < 4; j++)
                if (co4 * 4 + j < COUT)
                    dst[(co4 * 4 + j) * plane + oy * pc.out_w + ox] = r[j];
#else
            dst[di] = ACT4(r);
#endif
        }
    }
}
