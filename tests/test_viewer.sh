#!/bin/sh
# test_viewer.sh — taesd-view as a user runs it, in an X server (meson runs it under `xvfb-run -a`) on the Vulkan
# device the loader finds (lavapipe in CI). Every screenshot is read back from the swapchain image (--screenshot)
# and compared with what `taesd decode` writes for the same latent, scaled the way the window scales it
# (tests/viewer_compare.py: PSNR >= 40 dB; at the image's own size the bytes must be identical).
# Env: TAESD_VIEW, TAESD_CLI, TAESD_SHARED, TAESD_PYTHON (a python3 with numpy), TAESD_BUILD (optional: where the
# demo screenshot is kept, viewer_demo.png, the picture in README.md). Success cases run with the environment's
# TAESD_VALIDATION (meson: 1, so any validation message fails them); error cases with TAESD_VALIDATION=0 so that
# "exactly one stderr line" is what is tested.
set -u

view=${TAESD_VIEW:?set TAESD_VIEW to the taesd-view executable}
cli=${TAESD_CLI:?set TAESD_CLI to the taesd executable}
shared=${TAESD_SHARED:-../shared}
py=${TAESD_PYTHON:-/usr/bin/python3}
here=$(cd "$(dirname "$0")" && pwd)
stream() { "$py" "$here/../examples/stream_latents.py" "$@"; }
compare() { "$py" "$here/viewer_compare.py" "$@"; }
w=$shared/weights
sd=$w/synth_sd_decoder_f16.safetensors
f2d=$w/taef2_decoder.pth
f2e=$w/taef2_encoder.pth

if [ -z "${DISPLAY:-}" ]; then echo "SKIP: no X display (run under xvfb-run -a)"; exit 77; fi
if ! "$py" -c 'import numpy' 2>/dev/null; then echo "SKIP: $py has no numpy (Debian: python3-numpy)"; exit 77; fi
for f in "$sd" "$f2d" "$f2e" "$shared/images/dog512.png"; do
    [ -f "$f" ] || { echo "shared data not found: $f"; exit 1; }
done

export PYTHONDONTWRITEBYTECODE=1          # the helpers import each other from the source tree: leave it clean
tmp=$(mktemp -d "${TMPDIR:-/tmp}/taesd_view.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' HUP INT TERM
cd "$tmp" || exit 1

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() {
    failed=$((failed + 1))
    echo "FAIL $1"
    shift
    for line in "$@"; do echo "     $line"; done
    if [ -s stderr ]; then echo "     stderr:"; sed 's/^/     | /' stderr | head -20; fi
}

# check NAME CMD...: the command's exit status is the verdict; its output is shown either way.
check() {
    name=$1; shift
    if out=$("$@" 2>&1); then ok "$name: $out"; else bad "$name" "$out"; fi
}

# The viewer runs under `timeout` so that a hang fails the test instead of stalling it.
viewrun() { timeout 300 "$view" "$@"; }

# ---- (a) a stdin stream of known latents with a malformed frame in the middle ----------------------------------
# synth SD decoder (4 channels), latent 12x16 -> 128x96; frame 2 is garbage, not a .npy.
stream --channels 4 --size 12x16 --count 4 --bad 2 --bad-kind garbage --seed 11 --save-last sd_last.npy |
    viewrun -m "$sd" --stdin --size 128x96 --frames 20 --screenshot sd_shot.png -v 2>stderr
rc=$?
"$cli" decode -m "$sd" sd_last.npy -o sd_ref.png 2>>stderr || bad "taesd decode (sd)" "failed"
if [ "$rc" -ne 0 ]; then bad "stdin stream, synth SD, garbage frame 2" "exit $rc"
else
    ok "stdin stream, synth SD, garbage frame 2: exit 0"
    check "  1:1 screenshot is the CLI's PNG" compare sd_shot.png sd_ref.png --min-psnr 99
    grep -q "not a .npy array; skipped" stderr && ok "  garbage reported on stderr" ||
        bad "  garbage reported on stderr" "no 'not a .npy array' line"
    grep -q "^taesd-view: title: .* — error: .*not a .npy" stderr && ok "  garbage reported in the title" ||
        bad "  garbage reported in the title" "no title with the error"
    grep -q "^taesd-view: title: taesd-view — stdin — 4x12x16 latent — decode [0-9.]* ms — [0-9.]* fps" stderr &&
        ok "  title: source, latent size, decode ms, fps" || bad "  title: source, latent size, decode ms, fps"
    # The checks can fail: the same comparison with R and B swapped in the reference.
    check "  (R/B swapped reference is rejected)" compare sd_shot.png sd_ref.png --swap-rb --expect-fail
fi

# taef2 decoder (32 channels), float16 (C,H,W) arrays; frame 3 has 33 channels, frame 5 is cut short. Windows:
# the image's size, larger (x2, x1.56, letterboxed) and smaller (x1/2, x1/3.2: from the viewer's mip levels).
stream --channels 32 --size 12x16 --count 6 --bad 3 --bad-kind channels --seed 12 --dtype float16 --dims 3 \
    --save-last f2_last.npy >f2_stream.bin
stream --channels 32 --size 12x16 --count 1 --bad 1 --bad-kind truncated --seed 13 >f2_trunc.bin
# Splice the truncated frame in before the last array: head = arrays 1..5, then the cut one, then array 6.
"$py" - <<'EOF'
data = open("f2_stream.bin", "rb").read()
starts = [i for i in range(len(data)) if data.startswith(b"\x93NUMPY", i)]
open("f2_mixed.bin", "wb").write(data[:starts[-1]] + open("f2_trunc.bin", "rb").read() + data[starts[-1]:])
EOF
"$cli" decode -m "$f2d" f2_last.npy -o f2_ref.png 2>stderr || bad "taesd decode (taef2)" "failed"
for size in 128x96 256x192 200x150 300x150 64x48 40x30; do
    viewrun -m "$f2d" --stdin --size "$size" --frames 20 --screenshot "f2_$size.png" <f2_mixed.bin 2>stderr
    rc=$?
    if [ "$rc" -ne 0 ]; then bad "stdin stream, taef2 f16, window $size" "exit $rc"; continue; fi
    ok "stdin stream, taef2 f16, window $size: exit 0"
    min=40
    [ "$size" = 128x96 ] && min=99   # the image's own size: byte for byte
    check "  screenshot vs the CLI's PNG" compare "f2_$size.png" f2_ref.png --min-psnr $min
    if [ "$size" = 256x192 ]; then
        grep -q "33 channels, the decoder takes 32" stderr && ok "  channel mismatch reported" ||
            bad "  channel mismatch reported"
        grep -q "truncated" stderr && ok "  truncated frame reported" || bad "  truncated frame reported"
    fi
done

# An _SRGB swapchain (the decoded image is then _SRGB too): no double gamma. Scaled, the blit filters in linear
# light, a little off the reference's byte-space bilinear.
for size in 128x96 256x192; do
    viewrun -m "$f2d" --stdin --srgb --size "$size" --frames 20 --screenshot "srgb_$size.png" -v <f2_mixed.bin 2>stderr
    rc=$?
    if [ "$rc" -ne 0 ]; then bad "--srgb, window $size" "exit $rc"; continue; fi
    if grep -q "swapchain [BR]8G8R8A8_SRGB" stderr; then
        ok "--srgb, window $size: exit 0, an _SRGB swapchain"
        min=40
        [ "$size" = 128x96 ] && min=99
        check "  screenshot vs the CLI's PNG" compare "srgb_$size.png" f2_ref.png --min-psnr $min
    else
        ok "--srgb, window $size: (no _SRGB format offered: $(grep -o 'swapchain [A-Z0-9_]*' stderr))"
    fi
done

# --latent-format, as in the CLI: FLUX.2 patchified latents (128 x H/2 x W/2).
stream --channels 128 --size 6x8 --count 2 --seed 17 --save-last patch_last.npy |
    viewrun -m "$f2d" --stdin --latent-format flux2-patchified --size 128x96 --frames 5 --screenshot patch.png 2>stderr
rc=$?
"$cli" decode -m "$f2d" --latent-format flux2-patchified patch_last.npy -o patch_ref.png 2>/dev/null
if [ "$rc" -ne 0 ]; then bad "--latent-format flux2-patchified" "exit $rc"
else
    ok "--latent-format flux2-patchified: exit 0"
    check "  screenshot vs the CLI's PNG" compare patch.png patch_ref.png --min-psnr 99
fi

# Every latent is on screen at the next present: a producer slower than the decoder loses none.
stream --channels 4 --size 12x16 --count 3 --seed 14 --delay 1.5 |
    viewrun -m "$sd" --stdin --size 128x96 --frames 10 -v 2>stderr
rc=$?
if [ "$rc" -eq 0 ] && grep -q "3 frames presented.*3 decodes.*0 latents dropped" stderr; then
    ok "slow producer: each of 3 latents presented once, none dropped"
else bad "slow producer: each of 3 latents presented once, none dropped" "exit $rc"; fi

# A burst (more than a pipe holds) with --frames 1 still ends on its last latent: the stream is read out first.
stream --channels 4 --size 24x32 --count 12 --bad 6 --seed 19 --save-last burst_last.npy |
    viewrun -m "$sd" --stdin --size 256x192 --frames 1 --screenshot burst.png 2>stderr
rc=$?
"$cli" decode -m "$sd" burst_last.npy -o burst_ref.png 2>/dev/null
if [ "$rc" -ne 0 ]; then bad "burst of 12 with --frames 1" "exit $rc"
else
    ok "burst of 12 with --frames 1: exit 0"
    check "  screenshot is the last latent's" compare burst.png burst_ref.png --min-psnr 99
fi

# examples/diffusers_preview.py's callback, fed numpy arrays in place of a pipeline's tensors (fp16, as on a GPU).
timeout 300 "$py" - "$here/../examples" "$view" "$sd" <<'EOF' 2>stderr
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from diffusers_preview import TaesdViewPreview
cb = TaesdViewPreview(sys.argv[3], viewer=sys.argv[2],
                      extra_args=["--frames", "10", "--size", "128x96", "--screenshot", "cb.png"])
r = np.random.default_rng(18)
for step in range(3):
    lat = r.standard_normal((1, 4, 12, 16)).astype(np.float16)
    cb(None, step, 999 - step, {"latents": lat})
np.save("cb_last.npy", lat.astype(np.float32))
sys.exit(cb.close(wait=True))
EOF
rc=$?
"$cli" decode -m "$sd" cb_last.npy -o cb_ref.png 2>/dev/null
if [ "$rc" -ne 0 ]; then bad "examples/diffusers_preview.py callback" "exit $rc"
else
    ok "examples/diffusers_preview.py callback: exit 0"
    check "  screenshot vs the CLI's PNG" compare cb.png cb_ref.png --min-psnr 99
fi

# A named pipe, a latent cut short in the middle.
mkfifo pipe
viewrun -m "$sd" --fifo pipe --size 256x192 --frames 20 --screenshot fifo.png 2>stderr &
pid=$!
# (timeout: opening the pipe blocks until the viewer has it open)
timeout 300 "$py" "$here/../examples/stream_latents.py" --channels 4 --size 12x16 --count 4 --bad 2 \
    --bad-kind truncated --seed 15 --save-last fifo_last.npy >pipe
wait $pid
rc=$?
"$cli" decode -m "$sd" fifo_last.npy -o fifo_ref.png 2>/dev/null
if [ "$rc" -ne 0 ]; then bad "--fifo stream" "exit $rc"
else ok "--fifo stream: exit 0"; check "  screenshot vs the CLI's PNG" compare fifo.png fifo_ref.png; fi

# ---- (b) the demo: encode a small photo, play noise -> latent; the last step is the latent itself -------------
compare --shrink "$shared/images/dog512.png" dog128.png 4
viewrun --demo dog128.png -m "$f2e" -m "$f2d" --demo-steps 3 --demo-rate 0 --frames 3 --size 256x256 \
    --screenshot demo.png 2>stderr
rc=$?
if [ "$rc" -ne 0 ]; then bad "--demo (taef2, 128x128 photo)" "exit $rc"
else
    ok "--demo (taef2, 128x128 photo): exit 0"
    check "  screenshot is not blank" compare demo.png --not-blank
    "$cli" roundtrip -m "$f2e" -m "$f2d" dog128.png -o demo_ref.png 2>>stderr
    check "  last step = the photo's latent: screenshot vs taesd roundtrip" compare demo.png demo_ref.png
    if [ -n "${TAESD_BUILD:-}" ] && [ -d "$TAESD_BUILD" ]; then cp demo.png "$TAESD_BUILD/viewer_demo.png"; fi
fi
"$py" -c "import sys; sys.path.insert(0, '$here'); import viewer_compare as v, numpy as np; \
v.write_png('black.png', np.zeros((64, 64, 3), np.uint8))"
check "  (a black screenshot is rejected)" compare black.png --not-blank --expect-fail

# ---- (c) --watch: the file replaced by an atomic rename --------------------------------------------------------
"$py" -c "
import numpy as np
r = np.random.default_rng(16)
np.save('w1.npy', r.standard_normal((1, 4, 12, 16)).astype(np.float32))
np.save('w2.npy', r.standard_normal((1, 4, 12, 16)).astype(np.float32))"
cp w1.npy watched.npy
viewrun -m "$sd" --watch watched.npy --size 128x96 --frames 2 --screenshot watch.png 2>stderr &
pid=$!
# Replaced every second until the viewer has shown two versions (its start-up time varies).
i=0
while kill -0 $pid 2>/dev/null && [ $i -lt 120 ]; do
    sleep 1
    cp w2.npy watched.tmp && mv watched.tmp watched.npy
    i=$((i + 1))
done
wait $pid
rc=$?
"$cli" decode -m "$sd" w2.npy -o w2_ref.png 2>/dev/null
if [ "$rc" -ne 0 ]; then bad "--watch with an atomic rename" "exit $rc"
else
    ok "--watch with an atomic rename: exit 0"
    check "  screenshot vs the CLI's PNG" compare watch.png w2_ref.png --min-psnr 99
fi

# ---- keys and a resize, through the X server (XTest; skipped without libXtst) ----------------------------------
"$py" "$here/viewer_x11.py" "$view" "$sd" w2.npy w2_ref.png >x11_out 2>&1
rc=$?
if [ "$rc" -eq 0 ]; then ok "keys and resize: $(tail -n 1 x11_out)"
elif [ "$rc" -eq 77 ]; then echo "skip keys and resize: $(tail -n 1 x11_out)"
else bad "keys and resize" "$(head -c 2000 x11_out)"; fi

# ---- (d) errors: one clear line, non-zero exit ---------------------------------------------------------------
# expect_error NAME RC NEEDLE ARGS...: exit RC, exactly one stderr line "taesd-view: ..." containing NEEDLE.
expect_error() {
    name=$1; want=$2; needle=$3; shift 3
    TAESD_VALIDATION=0 timeout 120 "$view" "$@" </dev/null >stdout 2>stderr
    rc=$?
    lines=$(wc -l <stderr | tr -d ' ')
    first=$(head -n 1 stderr)
    if [ "$rc" -ne "$want" ]; then bad "$name" "exit $rc, expected $want"
    elif [ "$lines" -ne 1 ]; then bad "$name" "$lines stderr lines, expected 1"
    else
        case $first in
        "taesd-view: "*"$needle"*) ok "$name: $first" ;;
        *) bad "$name" "stderr line does not start with 'taesd-view: ' or lacks '$needle'" ;;
        esac
    fi
}
printf 'not weights\n' >junk.pth
: >plain_file
expect_error "no arguments" 2 "no latent source"
expect_error "unknown argument" 2 "--bogus" --bogus
expect_error "two sources" 2 "one latent source" -m "$sd" --stdin --watch x.npy
expect_error "bad --size" 2 "--size" -m "$sd" --stdin --size 12
expect_error "bad --latent-format" 2 "--latent-format" -m "$sd" --stdin --latent-format sd9
expect_error "missing weights" 1 "/nonexistent/taesd_decoder.pth" -m /nonexistent/taesd_decoder.pth --stdin
expect_error "not a weights file" 1 "junk.pth" -m junk.pth --stdin
expect_error "--fifo on a regular file" 1 "not a named pipe" -m "$sd" --fifo plain_file
expect_error "--demo without an encoder" 1 "needs an encoder" --demo dog128.png -m "$sd"
expect_error "--demo image missing" 1 "nope.png" --demo nope.png -m "$f2e" -m "$f2d"
# A stream with nothing showable: every frame reported, then the end (with --frames) is an error.
printf 'garbage only\n' | TAESD_VALIDATION=0 timeout 120 "$view" -m "$sd" --stdin --frames 3 >stdout 2>stderr
rc=$?
if [ "$rc" -eq 1 ] && tail -n 1 stderr | grep -q "ended without a latent"; then
    ok "stream without a valid latent: exit 1"
else bad "stream without a valid latent: exit 1" "exit $rc"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
