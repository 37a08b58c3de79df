#!/bin/sh
# fuzz.sh — builds the libFuzzer targets (build-fuzz/, clang, -Dfuzz=true) and runs each for SECONDS.
#
#   tools/fuzz.sh [SECONDS] [TARGET...]   default 60 s; targets: fuzz_weights fuzz_pickle fuzz_npy fuzz_image
#
# Seeds come from fuzz/make_seeds.py (tiny, generated each run; with ../shared, key skeletons of its weights too).
# The growing corpus stays in build-fuzz/corpus/TARGET; crashes go to build-fuzz/crashes/. One process, one job
# per target (the machine is shared); FUZZ_ARGS adds libFuzzer options. Exits 1 if any target found a crash, leak or timeout.
# Needs clang and libclang-rt-14-dev (Debian 12).
set -eu

secs=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-fuzz_weights fuzz_pickle fuzz_npy fuzz_image}
case $secs in *[!0-9]*|'') echo "fuzz.sh: SECONDS must be a number, not '$secs'" >&2; exit 2 ;; esac

cd "$(dirname "$0")/.."
shared=${TAESD_SHARED:-../shared}
build=build-fuzz
: "${CC:=clang}"
export CC

if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" -Dfuzz=true -Dtests=disabled
fi
# shellcheck disable=SC2086  # one word per target
meson compile -C "$build" $targets

rm -rf "$build/seeds"
if [ -d "$shared/weights" ]; then
    python3 fuzz/make_seeds.py "$build/seeds" --shared "$shared"
else
    python3 fuzz/make_seeds.py "$build/seeds"
fi
cat fuzz/pickle.dict fuzz/safetensors.dict >"$build/weights.dict"
mkdir -p "$build/crashes" "$build/logs"

status=0
for t in $targets; do
    case $t in
    fuzz_weights) seeds=weights dict=$build/weights.dict ;;
    fuzz_pickle) seeds=pickle dict=fuzz/pickle.dict ;;
    fuzz_npy) seeds=npy dict=fuzz/npy.dict ;;
    fuzz_image) seeds=image dict=fuzz/image.dict ;;
    *) echo "fuzz.sh: unknown target '$t'" >&2; exit 2 ;;
    esac
    mkdir -p "$build/corpus/$t"
    log=$build/logs/$t.log
    echo "== $t: $secs s (log: $log)"
    # -rss_limit_mb: stb_image may legitimately allocate up to ~1 GiB for a 16384x16384 header (the size limit).
    # shellcheck disable=SC2086
    if "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=3072 -max_len=16384 \
        -dict="$dict" -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$t-" ${FUZZ_ARGS:-} \
        "$build/corpus/$t" "$build/seeds/$seeds" >"$log" 2>&1; then
        grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)|cov: ' "$log" | tail -n 4
    else
        status=1
        echo "FAIL $t: crash, leak or timeout; last lines of $log:"
        tail -n 40 "$log"
    fi
done
[ "$status" -eq 0 ] && echo "fuzz.sh: no crashes" || echo "fuzz.sh: crashes in $build/crashes"
exit "$status"
