#!/usr/bin/env python3
"""make_hostile.py OUTDIR [--shared DIR] — hostile weights, latents and images for tests/test_hostile.sh (stdlib only).

Writes OUTDIR/weights/*.{pth,safetensors}, OUTDIR/latent/*.{npy,png}, OUTDIR/image/*.{png,jpg,npy}: malformed,
truncated, malicious and oversized files, small (the largest: a 400 KiB pickle bomb; with --shared, one shared decoder
plus an extra tensor). Reuses the writers of fuzz/make_seeds.py.
"""
import os
import struct
import sys

sys.dont_write_bytecode = True   # no __pycache__ in the source tree from a test run
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz"))
import make_seeds as ms  # noqa: E402


def npy_raw(header_dict, body, version=1):
    d = header_dict
    pre = 10 if version == 1 else 12
    total = (pre + len(d) + 1 + 63) // 64 * 64
    d = d + " " * (total - pre - len(d) - 1) + "\n"
    head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) if version == 1 else \
        b"\x93NUMPY\x02\x00" + struct.pack("<I", len(d))
    return head + d.encode("latin-1") + body


def hdr(shape, descr="<f4", fortran="False"):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, fortran, shape)


def zip_named(names_data):
    return ms.zip_stored(names_data)


def main():
    out = sys.argv[1]
    W, L, I = {}, {}, {}
    vals = ms.f32([0.5, 1.0, -1.0, 2.0])
    one = ("1.weight", "FloatStorage", "0", 4, 0, (2, 2), (2, 1))
    good_pth = ms.pth([one], {"0": vals})

    # ---- weights -------------------------------------------------------------------------------------------
    W["empty.pth"] = b""
    W["truncated.pth"] = good_pth[: len(good_pth) // 2]
    W["no_eocd.pth"] = good_pth[:-22]
    bad = bytearray(good_pth)
    bad[good_pth.index(vals) + 1] ^= 0xFF                                   # data no longer matches its CRC-32
    W["corrupt_crc.pth"] = bytes(bad)
    pkl = ms.state_pickle([one])
    W["dotdot.pth"] = zip_named([("../evil/data.pkl", pkl), ("../evil/data/0", vals)])
    W["absolute.pth"] = zip_named([("/tmp/evil/data.pkl", pkl), ("/tmp/evil/data/0", vals)])
    W["backslash.pth"] = zip_named([("archive\\..\\..\\data.pkl", pkl)])
    # pickles that would run code in Python's unpickler
    for name, mod, fn in (("os_system", "os", "system"), ("posix_system", "posix", "system"),
                          ("builtins_eval", "builtins", "eval"), ("subprocess", "subprocess", "Popen")):
        p = b"\x80\x02" + ms.pk_global(mod, fn) + ms.pk_str("touch pwned") + b"\x85R."
        W["global_%s.pth" % name] = ms.zip_stored([("archive/data.pkl", p)])
    body = b"\x8c\x08builtins\x8c\x04eval\x93" + ms.pk_str("1") + b"\x85R."
    p4 = b"\x80\x04\x95" + struct.pack("<Q", len(body)) + body                 # protocol 4 frame, STACK_GLOBAL
    W["stack_global_eval.pth"] = ms.zip_stored([("archive/data.pkl", p4)])
    # recursion / size bombs
    depth = 5000
    W["nesting_bomb.pth"] = ms.zip_stored([("archive/data.pkl", b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b".")])
    W["mark_bomb.pth"] = ms.zip_stored([("archive/data.pkl", b"\x80\x02" + b"(" * 2000 + b".")])
    W["memo_bomb.pth"] = ms.zip_stored([("archive/data.pkl", b"\x80\x02]q\x00" + b"h\x00" * 200000 + b".")])
    W["int_bomb.pth"] = ms.zip_stored([("archive/data.pkl", b"\x80\x02\x8b\xff\xff\xff\x7f" + b"\x00" * 64 + b".")])
    # tensors that point outside their storage
    W["offset_past_end.pth"] = ms.pth([("1.weight", "FloatStorage", "0", 4, 1000, (2, 2), (2, 1))], {"0": vals})
    W["numel_past_end.pth"] = ms.pth([("1.weight", "FloatStorage", "0", 1 << 30, 0, (1 << 15, 1 << 15), (1 << 15, 1))],
                                     {"0": vals})
    W["negative_stride.pth"] = ms.pth([("1.weight", "FloatStorage", "0", 4, 0, (2, 2), (0xFFFF, 1))], {"0": vals})
    W["missing_storage.pth"] = ms.pth([("1.weight", "FloatStorage", "7", 4, 0, (2, 2), (2, 1))], {"0": vals})
    W["big_endian.pth"] = ms.zip_stored([("archive/data.pkl", pkl), ("archive/byteorder", b"big"),
                                         ("archive/data/0", vals)])
    # safetensors
    W["st_header_past_end.safetensors"] = struct.pack("<Q", 1 << 20) + b'{"a":1}'
    W["st_header_huge.safetensors"] = struct.pack("<Q", (1 << 64) - 1) + b"{}" + b" " * 6
    W["st_truncated.safetensors"] = ms.safetensors([("1.weight", "F32", [2, 2], vals)])[:-5]
    st = ms.safetensors([("a", "F32", [2], vals[:8]), ("b", "F32", [2], vals[8:])])
    W["st_overlap.safetensors"] = st.replace(b'"data_offsets":[8,16]', b'"data_offsets":[4,12]')
    W["st_unknown_dtype.safetensors"] = ms.safetensors([("1.weight", "F64", [2], vals)])
    W["st_int_dtype.safetensors"] = ms.safetensors([("1.weight", "I32", [4], vals)])
    W["st_shape_mismatch.safetensors"] = ms.safetensors([("1.weight", "F32", [3, 3], vals)])
    W["st_no_variant.safetensors"] = ms.safetensors([("1.weight", "F32", [2, 2], vals), ("1.bias", "F32", [2], vals[:8])])
    W["st_deep_json.safetensors"] = struct.pack("<Q", 4000) + b"[" * 2000 + b"]" * 2000
    W["st_bad_utf8.safetensors"] = ms.safetensors([("caf\xe9", "F32", [4], vals)]).replace(
        b"caf\\u00e9", b"caf\xff\xfe\xfd\xfc\xfb\xfa")                           # same length, invalid UTF-8
    W["st_escape_name.safetensors"] = ms.safetensors([("\x1b[31mred", "F32", [4], vals)])
    # a real variant's key names with wrong shapes: "fits no TAESD variant"
    names = ["1.weight", "1.bias"] + ["%d.conv.%d.%s" % (b, c, k) for b in range(3, 6) for c in (0, 2, 4)
                                      for k in ("weight", "bias")]
    W["keys_wrong_shapes.safetensors"] = ms.safetensors([(n, "F16", [1], b"\x00\x3c") for n in names])

    # a complete decoder (from ../shared) plus one tensor whose name holds a terminal escape: "unexpected tensor"
    shared = sys.argv[3] if len(sys.argv) >= 4 and sys.argv[2] == "--shared" else None
    src = os.path.join(shared, "weights", "synth_sd_decoder_f16.safetensors") if shared else None
    if src and os.path.exists(src):
        import json
        with open(src, "rb") as f:
            blob = f.read()
        n = struct.unpack("<Q", blob[:8])[0]
        head, data = json.loads(blob[8:8 + n]), blob[8 + n:]
        head["\x1b[2J\x1b]0;pwned\x07"] = {"dtype": "F16", "shape": [1], "data_offsets": [len(data), len(data) + 2]}
        h = json.dumps(head).encode()
        h += b" " * (-len(h) % 8)
        W["extra_escape_tensor.safetensors"] = struct.pack("<Q", len(h)) + h + data + b"\x00\x3c"

    # ---- latents (decode input) ----------------------------------------------------------------------------
    def f32(n, v=0.25):
        return struct.pack("<%df" % n, *([v] * n))
    nan, inf = struct.pack("<f", float("nan")), struct.pack("<f", float("inf"))
    L["empty.npy"] = b""
    L["nan.npy"] = npy_raw(hdr("(1, 4, 2, 2)"), f32(5) + nan + f32(10))
    L["inf.npy"] = npy_raw(hdr("(1, 4, 2, 2)"), f32(15) + inf)
    L["neg_inf_f16.npy"] = npy_raw(hdr("(1, 4, 2, 2)", "<f2"), b"\x00\x3c" * 15 + b"\x00\xfc")
    L["three_channels.npy"] = npy_raw(hdr("(1, 3, 2, 2)"), f32(12))
    L["absurd_shape.npy"] = npy_raw(hdr("(1, 4, 100000, 100000)"), f32(16))
    L["overflow_shape.npy"] = npy_raw(hdr("(4611686018427387904, 4611686018427387904, 4, 4)"), f32(16))
    L["zero_dim.npy"] = npy_raw(hdr("(1, 4, 0, 8)"), b"")
    L["zero_dim_huge.npy"] = npy_raw(hdr("(1, 4611686018427387903, 4, 0)"), b"")       # no element, absurd dims
    L["batch2.npy"] = npy_raw(hdr("(2, 4, 2, 2)"), f32(32))
    L["five_dims.npy"] = npy_raw(hdr("(1, 1, 4, 2, 2)"), f32(16))
    L["fortran.npy"] = npy_raw(hdr("(1, 4, 2, 2)", fortran="True"), f32(16))
    L["big_endian.npy"] = npy_raw(hdr("(1, 4, 2, 2)", ">f4"), f32(16))
    L["float64.npy"] = npy_raw(hdr("(1, 4, 2, 2)", "<f8"), f32(32))
    L["object.npy"] = npy_raw(hdr("(1, 4, 2, 2)", "|O"), b"\x80\x02cos\nsystem\n.")
    L["header_past_end.npy"] = b"\x93NUMPY\x01\x00\xff\xff{'descr'"
    L["truncated_body.npy"] = npy_raw(hdr("(1, 4, 2, 2)"), f32(15))
    L["trailing_bytes.npy"] = npy_raw(hdr("(1, 4, 2, 2)"), f32(17))
    L["version9.npy"] = b"\x93NUMPY\x09\x00" + npy_raw(hdr("(1, 4, 2, 2)"), f32(16))[8:]
    L["empty.png"] = b""
    rgba = ms.png(3, 2, 6)
    L["truncated.png"] = rgba[: len(rgba) - 20]
    L["grey.png"] = ms.png(3, 2, 0)                                          # 1 channel: not a latent PNG
    L["huge_ihdr.png"] = rgba[:16] + struct.pack(">II", 100000, 100000) + rgba[24:]
    L["escape_chunk.png"] = rgba[:33] + struct.pack(">I", 0) + b"\x1b[2J" + b"\x00" * 4 + rgba[33:]
    L["not_png.png"] = b"GIF89a" + b"\x00" * 32

    # ---- images (encode input) ------------------------------------------------------------------------------
    I["empty.png"] = b""
    I["truncated.png"] = ms.png(8, 8, 2)[:60]
    I["huge_ihdr.png"] = L["huge_ihdr.png"]
    I["escape_chunk.png"] = L["escape_chunk.png"]
    I["max_side_ihdr.png"] = rgba[:16] + struct.pack(">II", 16384, 16384) + rgba[24:]
    I["bmp_as.png"] = b"BM" + b"\x00" * 60
    I["empty.jpg"] = b""
    jpg = ms.jpeg(16, 16, 3)
    I["truncated.jpg"] = jpg[: len(jpg) - 8]
    dht = jpg.index(b"\xff\xc4")
    I["bad_huffman.jpg"] = jpg[: dht + 5] + b"\xff" * 16 + jpg[dht + 21:]    # code counts sum to 4080 > 256
    I["huge_sof.jpg"] = jpg.replace(struct.pack(">BHH", 8, 16, 16), struct.pack(">BHH", 8, 65535, 65535), 1)
    I["cmyk.jpg"] = ms.jpeg(16, 16, 4)
    I["nan.npy"] = npy_raw(hdr("(1, 3, 2, 2)"), f32(11) + nan)
    I["four_channels.npy"] = npy_raw(hdr("(1, 4, 8, 8)"), f32(256))
    I["absurd_shape.npy"] = npy_raw(hdr("(1, 3, 100000, 100000)"), f32(12))

    for sub, files in (("weights", W), ("latent", L), ("image", I)):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(out, sub, name), "wb") as f:
                f.write(data)
    print("hostile files: %d weights, %d latents, %d images" % (len(W), len(L), len(I)))


if __name__ == "__main__":
    main()
