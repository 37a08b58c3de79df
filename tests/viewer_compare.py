#!/usr/bin/env python3
"""Compares a taesd-view screenshot with the PNG `taesd decode` wrote for the same latent (numpy only).

    viewer_compare.py SHOT.png REF.png [--min-psnr 40] [--swap-rb] [--expect-fail]
    viewer_compare.py SHOT.png --not-blank
    viewer_compare.py --shrink IN.png OUT.png N     (box-filter IN down N times: a small --demo image)

When the sizes differ, the reference is placed the way the viewer fits an image into its window (aspect kept,
centred, black bars) and scaled with the rule of a Vulkan linear blit: destination pixel centres mapped into the
source (u = (x + 0.5)·iw/dw), bilinear between the two nearest texel centres, clamped at the edges, rounded to 8
bits; a window smaller than the image starts from the viewer's mip level (halvings by the same rule). Prints the
PSNR.
--swap-rb swaps the reference's R and B first (to show the check fails on a channel-order bug); --expect-fail
inverts the verdict.
"""
import argparse
import math
import struct
import sys
import zlib

import numpy as np


def read_png(path):
    """8-bit grey/RGB/RGBA non-interlaced PNG -> HxWx3 uint8."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise SystemExit(f"{path}: not a PNG")
    pos, idat, ihdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or interlace or ctype not in (0, 2, 6):
        raise SystemExit(f"{path}: only 8-bit non-interlaced grey/RGB/RGBA PNGs are read here")
    bpp = {0: 1, 2: 3, 6: 4}[ctype]
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), dtype=np.uint8).reshape(h, 1 + w * bpp)
    out = np.zeros((h, w * bpp), dtype=np.int32)
    prev = np.zeros(w * bpp, dtype=np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        cur = np.zeros_like(line)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        elif f in (1, 3, 4):
            for x in range(0, w * bpp, bpp):
                a = cur[x - bpp:x] if x else np.zeros(bpp, dtype=np.int32)
                b = prev[x:x + bpp]
                if f == 1:
                    pred = a
                elif f == 3:
                    pred = (a + b) // 2
                else:
                    c = prev[x - bpp:x] if x else np.zeros(bpp, dtype=np.int32)
                    p = a + b - c
                    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
                    pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
                cur[x:x + bpp] = (line[x:x + bpp] + pred) & 255
        else:
            raise SystemExit(f"{path}: bad filter {f}")
        out[y] = cur
        prev = cur
    img = out.reshape(h, w, bpp).astype(np.uint8)
    if bpp == 1:
        img = np.repeat(img, 3, axis=2)
    return img[:, :, :3]


def write_png(path, img):
    """HxWx3 uint8 -> RGB PNG (filter 0)."""
    h, w = img.shape[:2]
    raw = b"".join(b"\x00" + img[y].astype(np.uint8).tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def blit_axis(n_src, n_dst):
    """Indices and weights of a linear blit along one axis."""
    u = (np.arange(n_dst) + 0.5) * n_src / n_dst - 0.5
    i0 = np.floor(u).astype(int)
    t = u - i0
    return np.clip(i0, 0, n_src - 1), np.clip(i0 + 1, 0, n_src - 1), t


def fit(iw, ih, W, H):
    """The viewer's fitted rectangle (viewer/gpu.c, place())."""
    if iw * H <= W * ih:
        dh, dw = H, (iw * H * 2 + ih) // (2 * ih)
    else:
        dw, dh = W, (ih * W * 2 + iw) // (2 * iw)
    return (W - dw) // 2, (H - dh) // 2, max(dw, 1), max(dh, 1)


def blit(img, dw, dh):
    """A linear blit of img (HxWx3) to dw x dh, rounded to 8 bits as a UNORM image stores it."""
    ih, iw = img.shape[:2]
    if (dw, dh) == (iw, ih):
        return img.copy()
    r = img.astype(np.float64)
    a0, a1, ty = blit_axis(ih, dh)
    rows = r[a0] * (1 - ty)[:, None, None] + r[a1] * ty[:, None, None]
    b0, b1, tx = blit_axis(iw, dw)
    return np.floor(rows[:, b0] * (1 - tx)[None, :, None] + rows[:, b1] * tx[None, :, None] + 0.5)


def expected(ref, W, H):
    """The window: black, the image fitted in it. Smaller than the image, the viewer blits from the smallest mip
    level still at least as large as the rectangle; each level is a linear blit of the one above."""
    ih, iw = ref.shape[:2]
    x0, y0, dw, dh = fit(iw, ih, W, H)
    out = np.zeros((H, W, 3), dtype=np.float64)
    src = ref.astype(np.float64)
    while max(src.shape[1] // 2, 1) >= dw and max(src.shape[0] // 2, 1) >= dh and src.shape[:2] != (1, 1):
        src = blit(src, max(src.shape[1] // 2, 1), max(src.shape[0] // 2, 1))
    out[y0:y0 + dh, x0:x0 + dw] = blit(src, dw, dh)
    return out


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "--shrink":
        img, n = read_png(sys.argv[2]).astype(np.float64), int(sys.argv[4])
        h, w = img.shape[0] // n * n, img.shape[1] // n * n
        small = img[:h, :w].reshape(h // n, n, w // n, n, 3).mean(axis=(1, 3))
        write_png(sys.argv[3], np.floor(small + 0.5).astype(np.uint8))
        return 0
    p = argparse.ArgumentParser()
    p.add_argument("shot")
    p.add_argument("ref", nargs="?")
    p.add_argument("--min-psnr", type=float, default=40.0)
    p.add_argument("--swap-rb", action="store_true")
    p.add_argument("--expect-fail", action="store_true")
    p.add_argument("--not-blank", action="store_true")
    a = p.parse_args()
    shot = read_png(a.shot)
    if a.not_blank:
        std, colours = float(shot.std()), len(np.unique(shot.reshape(-1, 3), axis=0))
        ok = std > 10 and colours > 50
        print(f"{a.shot}: {shot.shape[1]}x{shot.shape[0]}, std {std:.1f}, {colours} colours: "
              f"{'ok' if ok else 'BLANK'}")
        return 0 if ok != a.expect_fail else 1
    ref = read_png(a.ref)
    if a.swap_rb:
        ref = ref[:, :, ::-1]
    H, W = shot.shape[:2]
    exp = expected(ref, W, H)
    v = psnr(shot, exp)
    ok = v >= a.min_psnr
    maxdiff = int(np.abs(shot.astype(np.int64) - exp.astype(np.int64)).max())
    print(f"{a.shot} vs {a.ref} ({ref.shape[1]}x{ref.shape[0]} -> {W}x{H}{', R/B swapped' if a.swap_rb else ''}): "
          f"PSNR {'inf' if v == math.inf else f'{v:.2f}'} dB, max diff {maxdiff} "
          f"({'>=' if ok else '<'} {a.min_psnr:g} dB)")
    return 0 if ok != a.expect_fail else 1


if __name__ == "__main__":
    sys.exit(main())
