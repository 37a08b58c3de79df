#!/bin/sh
# test_hostile.sh — the `taesd` CLI against hostile files (tests/make_hostile.py writes them): malformed, truncated and
# malicious weights (.pth zip + pickle, .safetensors), latents (.npy, latent PNG) and images (PNG, JPEG, .npy), special
# files (directory, FIFO, /dev/zero), no Vulkan driver, an activation above maxStorageBufferRange.
# Every case must: exit 1 (not a crash: < 128; not a hang: within `timeout 60`), print exactly one stderr line
# "taesd: ..." of printable characters, print nothing on stdout, and leave the work directory exactly as it was
# (`ls -la --full-time`, the directory's own mtime included: not even a temporary file may appear and vanish).
# Env: TAESD_CLI, TAESD_SHARED (as test_cli.sh). Run by `meson test` (suite 'cli'). Errors run with TAESD_VALIDATION=0
# so the one-line rule is what is tested (with validation on, every layer/loader message is printed too).
set -u

cli=${TAESD_CLI:?set TAESD_CLI to the taesd executable}
shared=${TAESD_SHARED:-../shared}
here=$(cd "$(dirname "$0")" && pwd)
w=$shared/weights
g=$shared/golden
[ -x "$cli" ] || { echo "TAESD_CLI=$cli is not executable"; exit 1; }
if [ ! -d "$w" ] || [ ! -d "$g" ]; then echo "shared data not found at $shared"; exit 1; fi
case $cli in /*) ;; *) cli=$(pwd)/$cli ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/taesd_hostile.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
work=$tmp/work            # the CLI runs here and writes its -o here; it must stay empty
mkdir "$work"
h=$tmp/h
python3 "$here/make_hostile.py" "$h" --shared "$shared" || { echo "make_hostile.py failed"; exit 1; }

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL $1: $2"
    if [ -s "$tmp/stderr" ]; then echo "     stderr:"; head -c 2000 "$tmp/stderr" | sed 's/^/     | /' | cat -v; fi
}

# hostile NAME NEEDLE ARGS...: runs the CLI in $work; checks the rules above; NEEDLE ('' for any) must appear in
# the stderr line.
hostile() {
    name=$1; needle=$2; shift 2
    before=$(ls -la --full-time "$work" | grep -v ' \.\.$')
    (cd "$work" && TAESD_VALIDATION=0 timeout 60 "$cli" "$@" >"$tmp/stdout" 2>"$tmp/stderr")
    rc=$?
    after=$(ls -la --full-time "$work" | grep -v ' \.\.$')
    lines=$(wc -l <"$tmp/stderr" | tr -d ' ')
    first=$(head -n 1 "$tmp/stderr")
    if [ "$rc" -eq 124 ]; then bad "$name" "timed out (60 s)"
    elif [ "$rc" -ge 128 ]; then bad "$name" "crashed (exit $rc: signal $((rc - 128)))"
    elif [ "$rc" -ne 1 ]; then bad "$name" "exit $rc, expected 1"
    elif [ "$lines" -ne 1 ]; then bad "$name" "$lines stderr lines, expected exactly 1"
    elif LC_ALL=C grep -q '[^[:print:]]' "$tmp/stderr"; then bad "$name" "stderr has non-printable bytes"
    elif [ -s "$tmp/stdout" ]; then bad "$name" "printed on stdout"
    elif [ "$before" != "$after" ]; then bad "$name" "the work directory changed: $(ls -A "$work" | tr '\n' ' ')"
    else
        case $first in
        "taesd: "*"$needle"*) ok "$name" ;;
        *) bad "$name" "stderr line does not start with 'taesd: ' or lacks '$needle'" ;;
        esac
    fi
    rm -rf "$work" && mkdir "$work"
}

sd_dec=$w/synth_sd_decoder_f16.safetensors
sd_enc=$w/synth_sd_encoder_f16.safetensors
lat=$g/synth_sd_dec_12x8.in.npy
img=$g/synth_sd_enc_odd_60x44.in.npy

# ---- hostile weights: info, decode and encode ----
for f in "$h"/weights/*; do
    b=$(basename "$f")
    hostile "info -m $b" "$b" info -m "$f"
    hostile "decode -m $b" "$b" decode -m "$f" "$lat" -o "$work/out.png"
    hostile "encode -m $b" "$b" encode -m "$f" "$img" -o "$work/out.npy"
done
# Specific messages: code is never run, limits hold.
hostile "os.system pickle is refused by name" "forbidden global 'os.system'" info -m "$h/weights/global_os_system.pth"
hostile "builtins.eval (STACK_GLOBAL) is refused" "forbidden global" info -m "$h/weights/stack_global_eval.pth"
hostile "nesting bomb hits the depth limit" "depth limit" info -m "$h/weights/nesting_bomb.pth"
hostile "'../' zip names are refused" "zip:" info -m "$h/weights/dotdot.pth"
hostile "storage offset past the end" "pickle:" info -m "$h/weights/offset_past_end.pth"
hostile "safetensors header past the end" "past the end" info -m "$h/weights/st_header_past_end.safetensors"
hostile "overlapping safetensors ranges" "overlapping" info -m "$h/weights/st_overlap.safetensors"
hostile "unknown dtype" "F64" info -m "$h/weights/st_unknown_dtype.safetensors"
hostile "a tensor name with terminal escapes is quoted" "unexpected tensor '?[2J?]0;pwned?'" \
    info -m "$h/weights/extra_escape_tensor.safetensors"
if [ -e "$work/../pwned" ] || [ -e "$work/pwned" ] || [ -e pwned ]; then bad "no pickle code ran" "'pwned' exists"
else ok "no pickle code ran"; fi

# ---- hostile latents: decode ----
for f in "$h"/latent/*; do
    b=$(basename "$f")
    hostile "decode $b" "$b" decode -m "$sd_dec" "$f" -o "$work/out.png"
done
# safetensors latents go through the weights parser: every hostile .safetensors as a latent too
for f in "$h"/weights/*.safetensors; do
    b=$(basename "$f")
    hostile "decode latent $b" "$b" decode -m "$sd_dec" "$f" -o "$work/out.png"
done
# raw float32 latents (no header): sizes that do not match --shape
: >"$tmp/empty.raw"
printf 'abc' >"$tmp/odd.raw"
hostile "decode an empty .raw" "empty.raw" decode -m "$sd_dec" "$tmp/empty.raw" --shape 4,2,2 -o "$work/o.png"
hostile "decode a 3-byte .raw" "odd.raw" decode -m "$sd_dec" "$tmp/odd.raw" --shape 4,2,2 -o "$work/o.png"
hostile "decode a .raw against a 64 GiB --shape" "odd.raw" decode -m "$sd_dec" "$tmp/odd.raw" \
    --shape 4,65536,65536 -o "$work/o.png"
hostile "NaN latent is refused before running" "NaN or Inf" decode -m "$sd_dec" "$h/latent/nan.npy" -o "$work/o.npy"
hostile "Inf latent is refused before running" "NaN or Inf" decode -m "$sd_dec" "$h/latent/inf.npy" -o "$work/o.npy"
hostile "-Inf fp16 latent is refused" "NaN or Inf" decode -m "$sd_dec" "$h/latent/neg_inf_f16.npy" -o "$work/o.npy"
hostile "3-channel latent for a 4-channel model" "3 channels" decode -m "$sd_dec" "$h/latent/three_channels.npy" \
    -o "$work/o.png"
hostile "absurd shape with a short body" "absurd_shape.npy" decode -m "$sd_dec" "$h/latent/absurd_shape.npy" \
    -o "$work/o.png"

# ---- hostile images: encode ----
for f in "$h"/image/*; do
    b=$(basename "$f")
    hostile "encode $b" "$b" encode -m "$sd_enc" "$f" -o "$work/out.npy"
done
hostile "NaN image is refused before running" "NaN or Inf" encode -m "$sd_enc" "$h/image/nan.npy" -o "$work/o.npy"

# ---- special files ----
mkdir "$tmp/dir.pth" "$tmp/dir.npy" "$tmp/dir.png"
hostile "directory as weights" "dir.pth" info -m "$tmp/dir.pth"
hostile "directory as latent" "dir.npy" decode -m "$sd_dec" "$tmp/dir.npy" -o "$work/o.png"
hostile "directory as image" "dir.png" encode -m "$sd_enc" "$tmp/dir.png" -o "$work/o.npy"
ln -s /dev/zero "$tmp/zero.safetensors"
ln -s /dev/zero "$tmp/zero.npy"
ln -s /dev/urandom "$tmp/random.png"
hostile "/dev/zero as weights" "zero.safetensors" info -m "$tmp/zero.safetensors"
hostile "/dev/zero as latent" "zero.npy" decode -m "$sd_dec" "$tmp/zero.npy" -o "$work/o.png"
hostile "/dev/urandom as image" "random.png" encode -m "$sd_enc" "$tmp/random.png" -o "$work/o.npy"
if mkfifo "$tmp/fifo.pth" "$tmp/fifo.npy" 2>/dev/null; then
    hostile "FIFO as weights (no writer: must not block)" "fifo.pth" info -m "$tmp/fifo.pth"
    hostile "FIFO as latent" "fifo.npy" decode -m "$sd_dec" "$tmp/fifo.npy" -o "$work/o.png"
else
    echo "skip FIFO cases (no mkfifo)"
fi
ln -s "$tmp/nowhere.pth" "$tmp/dangling.pth"
hostile "dangling symlink as weights" "dangling.pth" info -m "$tmp/dangling.pth"

# ---- no Vulkan driver, and an activation larger than the device allows ----
VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json \
    hostile "no Vulkan driver: decode" "no Vulkan device" decode -m "$sd_dec" "$lat" -o "$work/o.png"
VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json \
    hostile "no Vulkan driver: info" "no Vulkan device" info -m "$sd_dec"
VK_ICD_FILENAMES=/nonexistent.json VK_DRIVER_FILES=/nonexistent.json \
    hostile "no Vulkan driver: --list-devices" "no Vulkan device" --list-devices
# Larger runs go in tiles (docs/tiling.md), except taef2's latent-resolution stage, which runs whole: at 384x384 in
# fp32 its 256-channel GroupNorm buffer is 144 MiB, above lavapipe's 128 MiB.
python3 - "$tmp/big384.npy" <<'PYEOF'
import struct, sys
d = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 32, 384, 384), }"
d += " " * (118 - len(d) - 1) + "\n"
with open(sys.argv[1], "wb") as f:
    f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(d)) + d.encode() + bytes(4 * 32 * 384 * 384))
PYEOF
hostile "384x384 taef2 fp32 latent exceeds maxStorageBufferRange" "maxStorageBufferRange" \
    decode -m "$w/taef2_decoder.pth" "$tmp/big384.npy" --precision fp32 -o "$work/o.png"

# ---- validation really is on in the CLI runs (TAESD_VALIDATION=1, as meson sets it): with the layer hidden from the
# loader (VK_LOADER_LAYERS_DISABLE, loader >= 1.3.234), the run must fail naming the layer ----
before=$(ls -la --full-time "$work" | grep -v ' \.\.$')
(cd "$work" && TAESD_VALIDATION=1 VK_LOADER_LAYERS_DISABLE=VK_LAYER_KHRONOS_validation timeout 60 "$cli" decode \
    -m "$sd_dec" "$lat" -o "$work/o.png" >"$tmp/stdout" 2>"$tmp/stderr")
rc=$?
if [ "$rc" -eq 0 ]; then
    echo "skip TAESD_VALIDATION=1 without the layer fails (loader ignores VK_LOADER_LAYERS_DISABLE)"
elif [ "$rc" -ne 1 ]; then bad "TAESD_VALIDATION=1 without the layer fails" "exit $rc, expected 1"
elif ! tail -n 1 "$tmp/stderr" | grep -q '^taesd: .*VK_LAYER_KHRONOS_validation is not installed'; then
    bad "TAESD_VALIDATION=1 without the layer fails" "last stderr line does not name the layer"
elif [ "$before" != "$(ls -la --full-time "$work" | grep -v ' \.\.$')" ]; then
    bad "TAESD_VALIDATION=1 without the layer fails" "the work directory changed"
else ok "TAESD_VALIDATION=1 without the layer fails"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
exit 0
