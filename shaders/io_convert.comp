#version 450
// io_convert.comp — format conversions at the edges of a recorded decode (taesd_cmd_decode):
//   MODE 0: IEEE half input (planar CHW, packed two per uint) -> planar float32, the network's input layout.
//   MODE 1: planar float32 RGB -> RGBA8 pixels (one uint each), clamped to [0,1] and rounded exactly as the PNG
//           writer does (lrintf(x * 255): round half to even); SWAP_RB gives BGRA byte order.
//   MODE 2: planar float32 RGB -> RGBA16F pixels (two uints each), clamped, alpha 1.
//   MODE 3: planar float32 RGB -> RGBA32F pixels, clamped, alpha 1.
// One invocation per element (MODE 0: per value, rows are channel*H + y) or per pixel; 2-D dispatch so that
// 4096² images stay within maxComputeWorkGroupCount.
layout(local_size_x = 64, local_size_y = 1, local_size_z = 1) in;
layout(constant_id = 0) const int MODE = 0;
layout(constant_id = 1) const bool SWAP_RB = false;

// Bindings follow the engine's one descriptor set layout (seven storage buffers); unused ones get a dummy.
layout(std430, set = 0, binding = 0) readonly buffer SrcF { float src_f[]; };
layout(std430, set = 0, binding = 1) readonly buffer SrcH { uint src_h[]; };
layout(std430, set = 0, binding = 3) writeonly buffer DstU { uint dst_u[]; };
layout(std430, set = 0, binding = 4) writeonly buffer DstF { float dst_f[]; };

layout(push_constant) uniform Shape {
    int rows, cols;     // MODE 0: channels*H rows of W values; else the image's H and W
    int unused0, unused1;
} pc;

// NaN -> 0, like the PNG writer (clamp() leaves NaN undefined).
float clamp01(float v) { return v > 0.0 ? min(v, 1.0) : 0.0; }

void main()
{
    const int x = int(gl_GlobalInvocationID.x), y = int(gl_GlobalInvocationID.y);
    if (x >= pc.cols || y >= pc.rows)
        return;
    const int i = y * pc.cols + x;
    if (MODE == 0) {
        vec2 pair = unpackHalf2x16(src_h[i >> 1]);
        dst_f[i] = (i & 1) == 0 ? pair.x : pair.y;
        return;
    }
    const int plane = pc.rows * pc.cols;
    vec3 c = vec3(clamp01(src_f[i]), clamp01(src_f[plane + i]), clamp01(src_f[2 * plane + i]));
    if (MODE == 1) {
        precise vec3 s = c * 255.0;
        uvec3 b = uvec3(roundEven(s));
        if (SWAP_RB)
            b = b.bgr;
        dst_u[i] = b.r | (b.g << 8) | (b.b << 16) | (255u << 24);
    } else if (MODE == 2) {
        dst_u[2 * i] = packHalf2x16(c.rg);
        dst_u[2 * i + 1] = packHalf2x16(vec2(c.b, 1.0));
    } else {
        dst_f[4 * i] = c.r;
        dst_f[4 * i + 1] = c.g;
        dst_f[4 * i + 2] = c.b;
        dst_f[4 * i + 3] = 1.0;
    }
}
