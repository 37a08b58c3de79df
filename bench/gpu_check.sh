#!/bin/sh
# gpu_check.sh — the one script for a borrowed GPU machine (see docs/benchmarks.md, "Measuring on a GPU"). It builds
# nothing: it runs the build/ made on the development machine against the GPU's Vulkan driver, checks correctness
# (test_layers, test_golden, test_cmd: storage-buffer path, fp32 and fp16) and times taesd against PyTorch CUDA.
#
#   bench/gpu_check.sh SHARED OUT
#
# SHARED: a copy of ../shared (which does not travel with the checkout) in an ignored folder of the repo, carried:
# golden/ and the weights except the two largest synthetic files, so that build/ + the copy fit the device tool's
# 64 MiB; test_golden skips the missing ones by name (TAESD_GOLDEN_ALLOW_MISSING=1). OUT: where the logs go.
# .gl/*.deb (libvulkan1 and friends), when carried, are unpacked first. Each step runs even if one before it
# failed; the exit status is the first failure's.
set -u
shared=$(cd "$1" && pwd)
out=$2
mkdir -p "$out"
rc=0
step() {
    name=$1; shift
    echo "== $name"
    "$@" >"$out/$name.log" 2>&1
    s=$?
    tail -25 "$out/$name.log"
    echo "== $name: exit $s"
    [ "$rc" -ne 0 ] || rc=$s
}

if ! ldconfig -p | grep -q libvulkan.so.1 && ls .gl/*.deb >/dev/null 2>&1; then
    for f in .gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f "$icd" ]; then
    export VK_DRIVER_FILES=$icd
fi
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp} TAESD_SHARED=$shared TAESD_VALIDATION=0 TAESD_GOLDEN_ALLOW_MISSING=1

step devices build/taesd --list-devices
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,memory.total --format=csv >"$out/nvidia-smi.csv" 2>&1
# Correctness on the GPU path (storage buffers, fp16 where the device has it).
step test_layers build/tests/test_layers
step test_golden build/tests/test_golden
step test_cmd build/tests/test_cmd
# Steady-state timings, fp16 and fp32, 512² and 1024², per-op times for the 512² fp16 decode.
for p in fp16 fp32; do
    for s in 512 1024; do
        step "bench_dec_${p}_$s" build/taesd bench -m "$shared/weights/taef2_decoder.pth" --size "${s}x$s" \
            --precision "$p" --runs 20 --warmup 3 --json
        step "bench_enc_${p}_$s" build/taesd bench -m "$shared/weights/taef2_encoder.pth" --size "${s}x$s" \
            --precision "$p" --runs 20 --warmup 3 --json
    done
done
step bench_layers build/taesd bench -m "$shared/weights/taef2_decoder.pth" --size 512x512 --precision fp16 \
    --runs 5 --layers
# Against PyTorch CUDA (fp16, channels_last, cudnn.benchmark) and CPU, same weights and sizes.
step vs_pytorch python3 bench/vs_pytorch.py --taesd build/taesd --weights "$shared/weights" --runs 10 \
    --latents 64,128 --precision fp16,fp32 --models taef2_decoder.pth,taef2_encoder.pth
exit "$rc"
