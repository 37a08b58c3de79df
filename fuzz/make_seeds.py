#!/usr/bin/env python3
"""make_seeds.py OUTDIR [--shared DIR] — tiny valid seed inputs for the fuzz targets (stdlib only).

Writes OUTDIR/weights/ (.pth zips and .safetensors), OUTDIR/pickle/ (bare data.pkl streams), OUTDIR/npy/ and
OUTDIR/image/ (PNG in every colour type and depth, baseline JPEG). Every seed is well under 8 KiB. With --shared
(../shared), also writes "key skeletons" of the shared weight files: the same tensor names, each a single f16
element, so the fuzzer starts inside the key-scheme and variant detection of model_build (tiny, no weights copied).
"""
import json
import os
import struct
import sys
import zlib

# ---- .npy -------------------------------------------------------------------------------------------------------


def npy(shape, descr="<f4", values=None, version=1):
    n = 1
    for s in shape:
        n *= s
    if values is None:
        values = [((i * 37) % 11 - 5) / 4.0 for i in range(n)]
    fmt = "<%d%s" % (n, "f" if descr == "<f4" else "e")
    body = struct.pack(fmt, *values)
    shp = "(%s)" % (", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else ""))
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shp)
    pre = 10 if version == 1 else 12
    total = (pre + len(d) + 1 + 63) // 64 * 64
    d = d + " " * (total - pre - len(d) - 1) + "\n"
    if version == 1:
        head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d))
    else:
        head = b"\x93NUMPY" + bytes([version, 0]) + struct.pack("<I", len(d))
    return head + d.encode("latin-1") + body


# ---- pickles and .pth zips --------------------------------------------------------------------------------------


def pk_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def pk_int(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def pk_global(mod, name):
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


def state_pickle(tensors, protocol=2):
    """tensors: [(name, storage_type, key, storage_numel, offset, shape, stride)] -> a torch.save-style data.pkl."""
    p = b"\x80" + bytes([protocol])
    p += pk_global("collections", "OrderedDict") + b"q\x00)R("
    for name, stype, key, numel, offset, shape, stride in tensors:
        p += pk_str(name) + pk_global("torch._utils", "_rebuild_tensor_v2") + b"(("
        p += pk_str("storage") + pk_global("torch", stype) + pk_str(key) + pk_str("cpu") + pk_int(numel) + b"tQ"
        p += pk_int(offset) + b"(" + b"".join(pk_int(s) for s in shape) + b"t("
        p += b"".join(pk_int(s) for s in stride) + b"t\x89h\x00)RtR"
    p += b"u}" + pk_str("_metadata") + b"h\x00)Rsb."
    return p


def zip_stored(entries):
    out, central = b"", b""
    for name, data in entries:
        n = name.encode()
        crc = zlib.crc32(data) & 0xFFFFFFFF
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0, crc, len(data), len(data), len(n), 0) + n + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0, crc, len(data), len(data),
                               len(n), 0, 0, 0, 0, 0, off) + n
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return out + central + eocd


def pth(tensors, storages, prefix="archive", protocol=2):
    ents = [(prefix + "/data.pkl", state_pickle(tensors, protocol)), (prefix + "/byteorder", b"little")]
    ents += [(prefix + "/data/" + k, v) for k, v in storages.items()]
    ents += [(prefix + "/version", b"3\n")]
    return zip_stored(ents)


# ---- safetensors ------------------------------------------------------------------------------------------------


def safetensors(tensors, meta=None):
    """tensors: [(name, dtype, shape, bytes)]"""
    hdr, data = {}, b""
    if meta:
        hdr["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        hdr[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


# ---- PNG and JPEG -----------------------------------------------------------------------------------------------


def png(w, h, color, depth=8, palette=None, filt=0):
    chans = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color]
    bits_row = w * chans * depth
    row_bytes = (bits_row + 7) // 8
    raw = b""
    for y in range(h):
        row = bytes(((x * 29 + y * 53 + 7) & 0xFF) for x in range(row_bytes))
        if color == 3:   # palette indices must be < len(palette)
            row = bytes(b % (len(palette) // 3) if depth == 8 else 0 for b in row)
        raw += bytes([(filt + y) % 5 if filt else 0]) + row

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    s = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0))
    if palette:
        s += chunk(b"PLTE", palette)
    return s + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def jpeg(w, h, ncomp):
    """A baseline JPEG, every block flat (DC difference 0, then EOB): tiny but a full, valid file for stb."""
    def seg(marker, body):
        return b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
    s = b"\xff\xd8"
    s += seg(0xDB, b"\x00" + bytes([1] * 64))                               # DQT: table 0, all ones
    comps = b"".join(bytes([i + 1, 0x11, 0]) for i in range(ncomp))
    s += seg(0xC0, struct.pack(">BHHB", 8, h, w, ncomp) + comps)             # SOF0
    one_code = bytes([1] + [0] * 15) + b"\x00"                               # one 1-bit code: symbol 0
    s += seg(0xC4, b"\x00" + one_code) + seg(0xC4, b"\x10" + one_code)       # DC table 0, AC table 0 (EOB)
    s += seg(0xDA, bytes([ncomp]) + b"".join(bytes([i + 1, 0x00]) for i in range(ncomp)) + b"\x00\x3f\x00")
    nbits = 2 * ncomp * ((w + 7) // 8) * ((h + 7) // 8)                      # "0" (DC cat 0) + "0" (EOB) per block
    nbytes = (nbits + 7) // 8
    data = bytearray(nbytes)
    if nbits % 8:
        data[-1] = (1 << (8 - nbits % 8)) - 1                                # pad with 1 bits
    return s + bytes(data) + b"\xff\xd9"


# ---- main -------------------------------------------------------------------------------------------------------


def f32(vals):
    return struct.pack("<%df" % len(vals), *vals)


def key_skeleton(path):
    """The tensor names of a shared .safetensors file, each as one f16 element (shapes deliberately wrong)."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        if n > 1 << 20:
            return None
        hdr = json.loads(f.read(n))
    names = [k for k in hdr if k != "__metadata__"]
    return safetensors([(k, "F16", [1], b"\x00\x3c") for k in names], hdr.get("__metadata__"))


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    shared = None
    if len(sys.argv) >= 4 and sys.argv[2] == "--shared":
        shared = sys.argv[3]
    seeds = {"weights": {}, "pickle": {}, "npy": {}, "image": {}}

    vals = f32([1.0, -2.5, 3.25, 1e-3, 0.5, 0.25, -1.0, 2.0])
    w1 = ("1.weight", "FloatStorage", "0", 8, 0, (2, 1, 2, 2), (4, 4, 2, 1))
    b1 = ("1.bias", "FloatStorage", "0", 8, 6, (2,), (1,))
    h1 = ("2.weight", "HalfStorage", "1", 4, 0, (2, 2), (2, 1))
    bf = ("3.weight", "BFloat16Storage", "2", 2, 0, (), ())
    st = {"0": vals, "1": struct.pack("<4e", 1, 2, 3, 4), "2": b"\x80\x3f\x00\x40"}
    seeds["weights"]["tensors.pth"] = pth([w1, b1, h1, bf], st)
    seeds["weights"]["proto4_prefix.pth"] = pth([w1], {"0": vals}, prefix="taesd_decoder", protocol=4)
    seeds["weights"]["empty.pth"] = pth([], {})
    seeds["weights"]["tensors.safetensors"] = safetensors([
        ("1.weight", "F32", [2, 1, 2, 2], vals), ("1.bias", "F16", [2], struct.pack("<2e", 0.5, -1)),
        ("vae_scale", "BF16", [], b"\x3a\x3e"), ("s", "F32", [0], b"")], {"format": "pt"})
    seeds["weights"]["empty.safetensors"] = safetensors([])
    seeds["pickle"]["tensors.pkl"] = state_pickle([w1, b1, bf])
    seeds["pickle"]["proto4.pkl"] = state_pickle([w1, b1], protocol=4)
    seeds["pickle"]["one.pkl"] = state_pickle([("w", "FloatStorage", "0", 4, 0, (2, 2), (2, 1))])

    seeds["npy"]["latent_f32.npy"] = npy((1, 4, 3, 2))
    seeds["npy"]["latent_f16.npy"] = npy((4, 2, 3), "<f2")
    seeds["npy"]["image_v2.npy"] = npy((1, 3, 2, 2), version=2)
    seeds["npy"]["vec_v3.npy"] = npy((5,), version=3)
    seeds["npy"]["empty.npy"] = npy((1, 0, 4, 4))

    seeds["image"]["rgb8.png"] = png(5, 3, 2)
    seeds["image"]["rgba8.png"] = png(4, 4, 6, filt=1)
    seeds["image"]["grey8.png"] = png(7, 2, 0)
    seeds["image"]["greya8.png"] = png(3, 3, 4)
    seeds["image"]["rgb16.png"] = png(2, 2, 2, depth=16, filt=1)
    seeds["image"]["grey1.png"] = png(9, 2, 0, depth=1)
    seeds["image"]["palette.png"] = png(4, 3, 3, palette=bytes(range(12)))
    seeds["image"]["grey.jpg"] = jpeg(8, 8, 1)
    seeds["image"]["rgb.jpg"] = jpeg(17, 9, 3)

    if shared:
        wdir = os.path.join(shared, "weights")
        for f in sorted(os.listdir(wdir)) if os.path.isdir(wdir) else []:
            if f.endswith(".safetensors"):
                sk = key_skeleton(os.path.join(wdir, f))
                if sk and len(sk) < 8192:
                    seeds["weights"]["keys_" + f] = sk

    for d, files in seeds.items():
        os.makedirs(os.path.join(out, d), exist_ok=True)
        for name, data in files.items():
            assert len(data) < 8192, name
            with open(os.path.join(out, d, name), "wb") as f:
                f.write(data)
    print("seeds: " + ", ".join("%s %d" % (d, len(f)) for d, f in seeds.items()))


if __name__ == "__main__":
    main()
