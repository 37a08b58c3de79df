#!/bin/sh
# test_cli.sh — the `taesd` CLI as a user runs it: exit codes, output shapes, one-line errors, no partial outputs.
# Env: TAESD_CLI (the built CLI), TAESD_SHARED (../shared). Run by `meson test` (suite 'cli').
# Success cases run with whatever TAESD_VALIDATION the environment sets (meson sets 1: any validation message
# fails the run). Error cases run with TAESD_VALIDATION=0 so the "exactly one stderr line" rule is what is tested.
set -u

cli=${TAESD_CLI:?set TAESD_CLI to the taesd executable}
shared=${TAESD_SHARED:-../shared}
w=$shared/weights
g=$shared/golden
[ -x "$cli" ] || { echo "TAESD_CLI=$cli is not executable"; exit 1; }
if [ ! -d "$w" ] || [ ! -d "$g" ]; then echo "shared data not found at $shared"; exit 1; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/taesd_cli.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
mkdir "$tmp/err"          # error cases write here; it must stay empty

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    for line in "$@"; do echo "     $line"; done
    if [ -s "$tmp/stderr" ]; then echo "     stderr:"; sed 's/^/     | /' "$tmp/stderr" | head -20; fi
}

# run ARGS...: runs the CLI; sets $rc; stdout/stderr in $tmp/stdout, $tmp/stderr.
run() {
    "$cli" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
}

# expect_rc NAME CODE ARGS...
expect_rc() {
    name=$1; want_rc=$2; shift 2
    run "$@"
    if [ "$rc" -eq "$want_rc" ]; then ok "$name"; else bad "$name" "exit $rc, expected $want_rc"; fi
}

# usage_error NAME ARGS...: exit 2 and the first stderr line starts with "taesd: ".
usage_error() {
    name=$1; shift
    run "$@"
    first=$(head -n 1 "$tmp/stderr")
    if [ "$rc" -ne 2 ]; then bad "$name" "exit $rc, expected 2"
    else case $first in "taesd: "*) ok "$name" ;; *) bad "$name" "stderr does not start with 'taesd: '" ;; esac
    fi
}

# runtime_error NAME NEEDLE ARGS...: exit 1, exactly one stderr line "taesd: ..." naming NEEDLE, nothing written.
runtime_error() {
    name=$1; needle=$2; shift 2
    TAESD_VALIDATION=0 "$cli" "$@" >"$tmp/stdout" 2>"$tmp/stderr"
    rc=$?
    lines=$(wc -l <"$tmp/stderr" | tr -d ' ')
    first=$(head -n 1 "$tmp/stderr")
    left=$(ls -A "$tmp/err")
    if [ "$rc" -ne 1 ]; then bad "$name" "exit $rc, expected 1"
    elif [ "$lines" -ne 1 ]; then bad "$name" "$lines stderr lines, expected exactly 1"
    else
        case $first in
        "taesd: "*"$needle"*)
            if [ -n "$left" ]; then bad "$name" "left output behind: $left"; else ok "$name"; fi ;;
        *) bad "$name" "stderr line does not start with 'taesd: ' or does not name '$needle'" ;;
        esac
    fi
    rm -rf "$tmp/err" && mkdir "$tmp/err"
}

# npy_shape FILE: prints the shape tuple without spaces, e.g. "1,3,96,64" (v1 .npy header).
npy_shape() {
    # shellcheck disable=SC2046  # od prints the bytes as separate words on purpose
    set -- "$1" $(od -An -tu1 -j8 -N2 "$1")
    [ $# -eq 3 ] || return 1
    dd if="$1" bs=1 skip=10 count=$(($2 + 256 * $3)) 2>/dev/null |
        sed -n "s/.*'shape': *(\([^)]*\)).*/\1/p" | tr -d ' ' | sed 's/,$//'
}

# png_info FILE: prints "WIDTH HEIGHT COLORTYPE" from the IHDR chunk.
png_info() {
    # shellcheck disable=SC2046
    set -- $(od -An -tu1 -j16 -N10 "$1")
    [ $# -eq 10 ] || return 1
    echo "$(( ($1 << 24) + ($2 << 16) + ($3 << 8) + $4 )) $(( ($5 << 24) + ($6 << 16) + ($7 << 8) + $8 )) ${10}"
}

# check_npy NAME FILE SHAPE
check_npy() {
    if [ ! -f "$2" ]; then bad "$1" "$2 was not written"; return; fi
    got=$(npy_shape "$2")
    if [ "$got" = "$3" ]; then ok "$1"; else bad "$1" "shape ($got), expected ($3)"; fi
}

# check_png NAME FILE "W H COLORTYPE"
check_png() {
    if [ ! -f "$2" ]; then bad "$1" "$2 was not written"; return; fi
    sig=$(od -An -c -j1 -N3 "$2" | tr -d ' ')
    got=$(png_info "$2")
    if [ "$sig" != "PNG" ]; then bad "$1" "$2 is not a PNG"
    elif [ "$got" = "$3" ]; then ok "$1"
    else bad "$1" "PNG width height colortype = $got, expected $3"; fi
}

# Numeric comparison against the golden output, only where numpy is there (the C suites do the real checks).
have_numpy=no
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then have_numpy=yes; fi
# compare NAME GOT EXPECTED TOL: relative L2 error.
compare() {
    if [ "$have_numpy" != yes ]; then echo "skip $1 (no numpy)"; return; fi
    if msg=$(/usr/bin/python3 - "$2" "$3" "$4" <<'EOF'
import sys, numpy as np
a = np.load(sys.argv[1]).astype(np.float64); b = np.load(sys.argv[2]).astype(np.float64)
if a.shape != b.shape:
    print("shape %s vs %s" % (a.shape, b.shape)); sys.exit(1)
e = np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)
print("relative L2 %.3g (tolerance %s)" % (e, sys.argv[3]))
sys.exit(0 if e <= float(sys.argv[3]) else 1)
EOF
    ); then ok "$1: $msg"; else bad "$1" "$msg"; fi
}

sd_dec=$w/synth_sd_decoder_f16.safetensors
sd_enc=$w/synth_sd_encoder_f16.safetensors
sd_lat=$g/synth_sd_dec_12x8.in.npy

# ---- help, version, usage errors ----
expect_rc "--help exits 0" 0 --help
if grep -q 'decode' "$tmp/stdout"; then ok "--help lists the commands"; else bad "--help lists the commands"; fi
expect_rc "decode --help exits 0" 0 decode --help
expect_rc "--version exits 0" 0 --version
usage_error "no command: exit 2"
usage_error "unknown command: exit 2" frobnicate -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.png"
usage_error "unknown option: exit 2" decode --frob -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.png"
usage_error "missing -o: exit 2" decode -m "$sd_dec" "$sd_lat"
usage_error "missing -m: exit 2" decode "$sd_lat" -o "$tmp/err/x.png"
usage_error "bad output extension: exit 2" decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.txt"
usage_error "bad input extension: exit 2" decode -m "$sd_dec" "$tmp/x.bmp" -o "$tmp/err/x.png"
usage_error "bad --precision: exit 2" decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.png" --precision fp8
if [ -z "$(ls -A "$tmp/err")" ]; then ok "usage errors write nothing"; else bad "usage errors write nothing"; fi

# ---- devices ----
expect_rc "--list-devices exits 0" 0 --list-devices
if grep -q '^1: ' "$tmp/stdout"; then ok "--list-devices lists device 1"; else bad "--list-devices lists device 1"; fi

# ---- decode ----
expect_rc "decode 12x8 latent -> .npy" 0 decode -m "$sd_dec" "$sd_lat" -o "$tmp/dec.npy"
check_npy "decode .npy shape" "$tmp/dec.npy" "1,3,96,64"
[ -f "$tmp/dec.npy" ] && compare "decode matches golden" "$tmp/dec.npy" "$g/synth_sd_dec_12x8.out.npy" 1e-2
expect_rc "decode 12x8 latent -> .png" 0 decode -m "$sd_dec" "$sd_lat" -o "$tmp/dec.png"
check_png "decode .png is 64x96 RGB" "$tmp/dec.png" "64 96 2"
expect_rc "decode with --precision fp32 --variant taesd" 0 decode -m "$w/synth_sd_decoder_f32.pth" "$sd_lat" \
    -o "$tmp/dec32.npy" --precision fp32 --variant taesd
check_npy "decode fp32 .npy shape" "$tmp/dec32.npy" "1,3,96,64"
[ -f "$tmp/dec32.npy" ] && compare "decode fp32 matches golden" "$tmp/dec32.npy" "$g/synth_sd_dec_12x8.out.npy" 1e-4

# ---- encode ----
expect_rc "encode odd 60x44 image .npy -> .npy" 0 encode -m "$sd_enc" "$g/synth_sd_enc_odd_60x44.in.npy" -o "$tmp/enc.npy"
check_npy "encode .npy shape" "$tmp/enc.npy" "1,4,8,6"
[ -f "$tmp/enc.npy" ] && compare "encode matches golden" "$tmp/enc.npy" "$g/synth_sd_enc_odd_60x44.out.npy" 1e-2
expect_rc "encode -> latent .png" 0 encode -m "$sd_enc" "$g/synth_sd_enc_odd_60x44.in.npy" -o "$tmp/lat.png"
check_png "latent .png is 6x8 RGBA" "$tmp/lat.png" "6 8 6"
expect_rc "decode the latent .png" 0 decode -m "$sd_dec" "$tmp/lat.png" -o "$tmp/lat_dec.png"
check_png "decoded latent .png is 48x64 RGB" "$tmp/lat_dec.png" "48 64 2"
if [ -f "$tmp/dec.png" ]; then
    expect_rc "encode a .png image" 0 encode -m "$sd_enc" "$tmp/dec.png" -o "$tmp/enc_png.npy"
    check_npy "encode .png image shape" "$tmp/enc_png.npy" "1,4,12,8"
fi

# ---- roundtrip ----
if [ -f "$tmp/dec.png" ]; then
    expect_rc "roundtrip with the ComfyUI combined file given once" 0 \
        roundtrip -m "$w/synth_sd_comfy_combined_f16.safetensors" "$tmp/dec.png" -o "$tmp/rt.png"
    check_png "roundtrip .png is 64x96 RGB" "$tmp/rt.png" "64 96 2"
fi
expect_rc "roundtrip with encoder and decoder files" 0 \
    roundtrip -m "$w/synth_sd_encoder_f32.pth" -m "$w/synth_sd_decoder_f32.pth" "$g/synth_sd_enc_odd_60x44.in.npy" \
    -o "$tmp/rt.npy"
check_npy "roundtrip .npy shape" "$tmp/rt.npy" "1,3,64,48"

# ---- info on every weights file ----
for f in "$w"/*.pth "$w"/*.safetensors; do
    [ -f "$f" ] || continue
    b=$(basename "$f")
    case $b in
    synth_sd3_*) want=taesd3 ;;
    synth_sana_*|taesana_*) want=taesana ;;
    taef2_*) want=taef2 ;;
    *) want=taesd ;;
    esac
    expect_rc "info $b" 0 info -m "$f"
    if grep -q "^variant: *$want\$" "$tmp/stdout"; then ok "info $b says $want"
    else bad "info $b says $want" "stdout: $(tr '\n' '|' <"$tmp/stdout")"; fi
done
expect_rc "info with two files" 0 info -m "$sd_enc" -m "$sd_dec"
if grep -q '^parts: *encoder, decoder$' "$tmp/stdout"; then ok "info with two files lists both parts"
else bad "info with two files lists both parts" "stdout: $(tr '\n' '|' <"$tmp/stdout")"; fi
expect_rc "info on the ComfyUI file" 0 info -m "$w/synth_sd_comfy_combined_f16.safetensors"
if grep -q '^vae_scale: *0\.182' "$tmp/stdout"; then ok "info prints vae_scale"; else bad "info prints vae_scale"; fi

# ---- bench ----
expect_rc "bench decoder" 0 bench -m "$sd_dec" --size 64x48 --runs 2 --layers
if grep -q 'GFLOP/s' "$tmp/stdout" && grep -q '^GPU total' "$tmp/stdout" && grep -q '19 *conv3x3 *64>3' "$tmp/stdout"
then ok "bench prints throughput and every op"; else bad "bench prints throughput and every op" "stdout: $(tr '\n' '|' <"$tmp/stdout")"; fi
expect_rc "bench encoder --json" 0 bench -m "$w/synth_sd_comfy_combined_f16.safetensors" --part encoder --size 60x44 --runs 1 --json
case $(cat "$tmp/stdout") in
'{"variant": "taesd", "part": "encoder", '*'"output": [4, 6, 8]'*'"median_ms": '*'}') ok "bench --json is one object with the output shape" ;;
*) bad "bench --json is one object with the output shape" "stdout: $(cat "$tmp/stdout")" ;;
esac
usage_error "bench without --size" bench -m "$sd_dec"
usage_error "bench with a bad --size" bench -m "$sd_dec" --size 64by48
usage_error "bench decoder size not a multiple of 8" bench -m "$sd_dec" --size 60x44
usage_error "bench --runs 0" bench -m "$sd_dec" --size 64x64 --runs 0

# ---- runtime errors: exit 1, one stderr line naming the file, no output ----
head -c 5000 "$w/taef2_decoder.pth" >"$tmp/truncated.pth"
echo "this is not a weights file" >"$tmp/text.safetensors"
# A .npy (v1, header 118 bytes) with a 1x4x2x2 float32 latent whose third value is NaN.
{
    printf '\223NUMPY\001\000\166\000'
    printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 2, 2), }"
    i=0
    while [ $i -lt 16 ]; do
        if [ $i -eq 2 ]; then printf '\000\000\300\177'; else printf '\000\000\000\077'; fi   # NaN, else 0.5
        i=$((i + 1))
    done
} >"$tmp/nan.npy"
check_npy "hand-made NaN .npy is well formed" "$tmp/nan.npy" "1,4,2,2"
printf 'not a png' >"$tmp/fake.png"

runtime_error "missing weights file" "nope.pth" decode -m "$tmp/nope.pth" "$sd_lat" -o "$tmp/err/o.png"
runtime_error "truncated .pth" "truncated.pth" decode -m "$tmp/truncated.pth" "$sd_lat" -o "$tmp/err/o.png"
runtime_error "text file as weights" "text.safetensors" decode -m "$tmp/text.safetensors" "$sd_lat" -o "$tmp/err/o.npy"
runtime_error "info on a truncated .pth" "truncated.pth" info -m "$tmp/truncated.pth"
runtime_error "latent with the wrong channel count" "taef2_dec_rand_5x7.in.npy" \
    decode -m "$sd_dec" "$g/taef2_dec_rand_5x7.in.npy" -o "$tmp/err/o.png"
if grep -q '32 channels' "$tmp/stderr"; then ok "wrong channel count says 32 channels"; else bad "wrong channel count says 32 channels"; fi
runtime_error "latent containing NaN" "nan.npy" decode -m "$sd_dec" "$tmp/nan.npy" -o "$tmp/err/o.png"
runtime_error "encoder-only file given to decode" "synth_sd_encoder_f16.safetensors" \
    decode -m "$sd_enc" "$sd_lat" -o "$tmp/err/o.png"
runtime_error "decoder-only file given to encode" "synth_sd_decoder_f16.safetensors" \
    encode -m "$sd_dec" "$g/synth_sd_enc_odd_60x44.in.npy" -o "$tmp/err/o.npy"
runtime_error "missing input file" "absent.npy" decode -m "$sd_dec" "$tmp/absent.npy" -o "$tmp/err/o.png"
runtime_error "input that is not a PNG" "fake.png" encode -m "$sd_enc" "$tmp/fake.png" -o "$tmp/err/o.npy"
runtime_error "image .npy with 4 channels" "nan.npy" encode -m "$sd_enc" "$tmp/nan.npy" -o "$tmp/err/o.npy"
runtime_error "latent PNG from a 32-channel model" "o.png" \
    encode -m "$w/taef2_encoder.pth" "$g/synth_sd_enc_odd_60x44.in.npy" -o "$tmp/err/o.png"
if grep -q 'latent PNG needs 4 channels, model has 32' "$tmp/stderr"; then ok "latent PNG error message"
else bad "latent PNG error message"; fi
runtime_error "output into a missing directory" "nodir" \
    decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/nodir/o.png"

# ---- latent formats (--latent-format), .safetensors and raw float32 inputs ----
# same_output NAME A B: two outputs are byte-identical (same input values, same device, same precision).
same_output() {
    if [ ! -f "$2" ] || [ ! -f "$3" ]; then bad "$1" "missing output"
    elif cmp -s "$2" "$3"; then ok "$1"; else bad "$1" "$2 and $3 differ"; fi
}
# const_npy FILE SHAPE COUNT: a v1 .npy (header 128 bytes) of COUNT float32 values 0.5, e.g. SHAPE "(1, 4, 8, 8)".
const_npy() {
    {
        printf '\223NUMPY\001\000\166\000'
        printf "%-117s\n" "{'descr': '<f4', 'fortran_order': False, 'shape': $2, }"
        i=0
        while [ $i -lt "$3" ]; do printf '\000\000\000\077'; i=$((i + 1)); done
    } >"$1"
}
tail -c 1536 "$sd_lat" >"$tmp/lat.raw"       # the 4x12x8 float32 golden latent without its 128-byte .npy header
json='{"lat":{"dtype":"F32","shape":[1,4,12,8],"data_offsets":[0,1536]}}'      # 66 (octal 102) bytes
{ printf '\102\000\000\000\000\000\000\000'; printf '%s' "$json"; cat "$tmp/lat.raw"; } >"$tmp/lat.safetensors"

expect_rc "decode a .npy latent (reference)" 0 decode -m "$sd_dec" "$sd_lat" -o "$tmp/lf_ref.npy"
expect_rc "decode a .safetensors latent (first tensor)" 0 decode -m "$sd_dec" "$tmp/lat.safetensors" -o "$tmp/lf_st.npy"
same_output ".safetensors input decodes like the .npy" "$tmp/lf_ref.npy" "$tmp/lf_st.npy"
expect_rc "decode a .safetensors latent with --tensor" 0 \
    decode -m "$sd_dec" "$tmp/lat.safetensors" --tensor lat -o "$tmp/lf_st2.npy"
same_output "--tensor picks the tensor" "$tmp/lf_ref.npy" "$tmp/lf_st2.npy"
expect_rc "decode a raw float32 latent with --shape" 0 \
    decode -m "$sd_dec" "$tmp/lat.raw" --shape 4,12,8 -o "$tmp/lf_raw.npy"
same_output "raw input decodes like the .npy" "$tmp/lf_ref.npy" "$tmp/lf_raw.npy"
runtime_error "raw input whose size does not match --shape" "lat.raw" \
    decode -m "$sd_dec" "$tmp/lat.raw" --shape 4,12,9 -o "$tmp/err/o.npy"
runtime_error "--tensor naming no tensor" "lat.safetensors" \
    decode -m "$sd_dec" "$tmp/lat.safetensors" --tensor nope -o "$tmp/err/o.npy"
runtime_error "--shape differing from the .npy shape" "synth_sd_dec_12x8.in.npy" \
    decode -m "$sd_dec" "$sd_lat" --shape 4,8,12 -o "$tmp/err/o.npy"
usage_error "raw input without --shape: exit 2" decode -m "$sd_dec" "$tmp/lat.raw" -o "$tmp/err/o.npy"
usage_error "--tensor with a .npy input: exit 2" decode -m "$sd_dec" "$sd_lat" --tensor lat -o "$tmp/err/o.npy"
usage_error "bad --latent-format: exit 2" decode -m "$sd_dec" "$sd_lat" --latent-format sd2 -o "$tmp/err/o.npy"
usage_error "--shape with 2 values for a CHW format: exit 2" \
    decode -m "$sd_dec" "$tmp/lat.raw" --shape 12,8 -o "$tmp/err/o.npy"
usage_error "latent PNG output with --latent-format sd1-raw: exit 2" \
    encode -m "$sd_enc" "$g/synth_sd_enc_96x64.in.npy" --latent-format sd1-raw -o "$tmp/err/o.png"

sd_img=$g/synth_sd_enc_96x64.in.npy          # encodes to a 4x12x8 latent
expect_rc "encode (diffusion)" 0 encode -m "$sd_enc" "$sd_img" -o "$tmp/lf_enc.npy"
expect_rc "encode --latent-format sd1-raw" 0 \
    encode -m "$sd_enc" "$sd_img" --latent-format sd1-raw -o "$tmp/lf_enc_sd1.npy"
check_npy "sd1-raw latent shape" "$tmp/lf_enc_sd1.npy" "1,4,12,8"
expect_rc "decode (diffusion)" 0 decode -m "$sd_dec" "$tmp/lf_enc.npy" -o "$tmp/lf_dec.npy"
expect_rc "decode --latent-format sd1-raw" 0 \
    decode -m "$sd_dec" "$tmp/lf_enc_sd1.npy" --latent-format sd1-raw -o "$tmp/lf_dec_sd1.npy"
[ -f "$tmp/lf_dec_sd1.npy" ] && compare "sd1-raw decode equals the diffusion-space decode" \
    "$tmp/lf_dec_sd1.npy" "$tmp/lf_dec.npy" 1e-5
expect_rc "encode --latent-format flux1-packed" 0 \
    encode -m "$sd_enc" "$sd_img" --latent-format flux1-packed -o "$tmp/lf_enc_pk.npy"
check_npy "flux1-packed tokens shape (1, H/2*W/2, 4*C)" "$tmp/lf_enc_pk.npy" "1,24,16"
expect_rc "decode flux1-packed tokens with --shape H,W" 0 \
    decode -m "$sd_dec" "$tmp/lf_enc_pk.npy" --latent-format flux1-packed --shape 12,8 -o "$tmp/lf_dec_pk.npy"
same_output "flux1-packed round trip decodes like the plain latent" "$tmp/lf_dec.npy" "$tmp/lf_dec_pk.npy"
runtime_error "flux1-packed tokens that are no square grid, no --shape" "lf_enc_pk.npy" \
    decode -m "$sd_dec" "$tmp/lf_enc_pk.npy" --latent-format flux1-packed -o "$tmp/err/o.npy"
expect_rc "encode --latent-format flux2-patchified" 0 \
    encode -m "$sd_enc" "$sd_img" --latent-format flux2-patchified -o "$tmp/lf_enc_p2.npy"
check_npy "flux2-patchified shape (1, 4*C, H/2, W/2)" "$tmp/lf_enc_p2.npy" "1,16,6,4"
expect_rc "decode flux2-patchified" 0 \
    decode -m "$sd_dec" "$tmp/lf_enc_p2.npy" --latent-format flux2-patchified -o "$tmp/lf_dec_p2.npy"
same_output "flux2-patchified round trip decodes like the plain latent" "$tmp/lf_dec.npy" "$tmp/lf_dec_p2.npy"
const_npy "$tmp/tokens16.npy" "(16, 16)" 256
const_npy "$tmp/lat488.npy" "(1, 4, 8, 8)" 256
expect_rc "decode 16 flux1-packed tokens as a square 4x4 grid" 0 \
    decode -m "$sd_dec" "$tmp/tokens16.npy" --latent-format flux1-packed -o "$tmp/lf_sq.npy"
check_npy "square token grid decodes to 64x64" "$tmp/lf_sq.npy" "1,3,64,64"
expect_rc "decode the same values as a 4x8x8 latent" 0 decode -m "$sd_dec" "$tmp/lat488.npy" -o "$tmp/lf_sq_ref.npy"
same_output "square token grid decodes like the latent" "$tmp/lf_sq_ref.npy" "$tmp/lf_sq.npy"
const_npy "$tmp/img8.npy" "(1, 3, 8, 8)" 192
runtime_error "flux1-packed encode output of an odd-sized latent" "img8.npy" \
    encode -m "$sd_enc" "$tmp/img8.npy" --latent-format flux1-packed -o "$tmp/err/o.npy"

# ---- exact tiling (--tile, --max-memory; docs/tiling.md) ----
# A 32x32 latent (a 256x256 image): tiles of 8 latent pixels are 2x2 windows of 26x26 (halo 9). In fp32 the tiled
# output equals the untiled one up to float rounding.
# tile_usage NAME ARGS...: a usage error (exit 2) whose first line names the option.
tile_usage() {
    name=$1; shift
    run "$@"
    first=$(head -n 1 "$tmp/stderr")
    if [ "$rc" -ne 2 ]; then bad "$name" "exit $rc, expected 2"
    else case $first in "taesd: "*--tile*|"taesd: "*--max-memory*) ok "$name" ;; *) bad "$name" "first line: $first" ;; esac
    fi
}
expect_rc "encode a 256x256 image (tiling reference)" 0 \
    encode -m "$sd_enc" "$g/dog256.png" --precision fp32 -o "$tmp/tl_lat.npy"
expect_rc "decode the 32x32 latent untiled (reference)" 0 \
    decode -m "$sd_dec" "$tmp/tl_lat.npy" --precision fp32 -o "$tmp/tl_ref.npy"
expect_rc "decode --tile 8" 0 decode -m "$sd_dec" "$tmp/tl_lat.npy" --precision fp32 --tile 8 -v -o "$tmp/tl_t8.npy"
if grep -q 'decode: 32x32 in 4 tiles of 8 latent pixels' "$tmp/stderr"; then ok "decode --tile 8 -v reports 4 tiles"
else bad "decode --tile 8 -v reports 4 tiles"; fi
[ -f "$tmp/tl_t8.npy" ] && compare "decode --tile 8 equals the untiled decode" "$tmp/tl_t8.npy" "$tmp/tl_ref.npy" 1e-6
expect_rc "encode --max-memory 24 (tiles)" 0 \
    encode -m "$sd_enc" "$g/dog256.png" --precision fp32 --max-memory 24 -v -o "$tmp/tl_enc.npy"
if grep -q 'encode: 256x256 in [0-9]* tiles' "$tmp/stderr"; then ok "encode --max-memory 24 -v reports tiles"
else bad "encode --max-memory 24 -v reports tiles"; fi
[ -f "$tmp/tl_enc.npy" ] && compare "encode --max-memory 24 equals the untiled encode" "$tmp/tl_enc.npy" \
    "$tmp/tl_lat.npy" 1e-6
tile_usage "--tile 0: exit 2" decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.npy" --tile 0
tile_usage "--tile -3: exit 2" decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.npy" --tile -3
tile_usage "--tile abc: exit 2" encode -m "$sd_enc" "$g/dog256.png" -o "$tmp/err/x.npy" --tile abc
tile_usage "--tile without a value: exit 2" decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.npy" --tile
tile_usage "--max-memory 0: exit 2" decode -m "$sd_dec" "$sd_lat" -o "$tmp/err/x.npy" --max-memory 0
runtime_error "--max-memory too small for any tile" "tl_lat.npy" \
    decode -m "$sd_dec" "$tmp/tl_lat.npy" --max-memory 1 -o "$tmp/err/o.npy"
if grep -q 'above the memory budget of 1.0 MiB' "$tmp/stderr"; then ok "too small --max-memory names the budget"
else bad "too small --max-memory names the budget"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
exit 0
