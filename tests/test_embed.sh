#!/bin/sh
# examples/embed against the CLI: the application's own image must hold exactly the PNG `taesd decode` writes, for
# the SD architecture and the real taef2 decoder, at odd latent sizes. Validation (TAESD_VALIDATION=1) is on in both.
set -eu
example=$1
shared=${TAESD_SHARED:-../shared}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {   # weights channels h w seed
    /usr/bin/env python3 - "$tmp/lat.npy" "$2" "$3" "$4" "$5" <<'PY'
import struct, sys, random
path, c, h, w, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = random.Random(seed)
vals = [rng.uniform(-3, 3) for _ in range(c * h * w)]
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, %d, %d, %d), }" % (c, h, w)
hdr += " " * (63 - (10 + len(hdr)) % 64) + "\n"
with open(path, "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<%df" % len(vals), *vals))
PY
    "$TAESD_CLI" decode -m "$1" "$tmp/lat.npy" -o "$tmp/ref.png"
    "$example" -m "$1" "$tmp/lat.npy" "$tmp/ref.png"
}

run "$shared/weights/synth_sd_decoder_f16.safetensors" 4 7 5 1
run "$shared/weights/taef2_decoder.pth" 32 5 9 2
# The example must notice a difference: a reference from another latent.
cp "$tmp/ref.png" "$tmp/other.png"
"$TAESD_CLI" decode -m "$shared/weights/taef2_decoder.pth" "$tmp/lat.npy" -o "$tmp/other.png" --precision fp16
if "$example" -m "$shared/weights/taef2_decoder.pth" "$tmp/lat.npy" "$tmp/other.png" >"$tmp/out" 2>&1; then
    echo "FAIL: the example accepted an fp16 reference that differs"; cat "$tmp/out"; exit 1
fi
echo "ok: the example reports a differing reference: $(cat "$tmp/out")"
