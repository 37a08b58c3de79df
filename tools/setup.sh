#!/bin/sh
# setup.sh — the first command of the README: installs the packages, builds, fetches the public TAEF2 weights
# (or uses ../shared/weights), then encodes a real photo and decodes its latent again, printing the times.
#
#   tools/setup.sh               apt-get install + build + weights + demo
#   tools/setup.sh --no-install  skip apt-get (packages already there)
#
# Env: TAESD_SHARED (default ../shared beside the checkout), XDG_RUNTIME_DIR (default /tmp).
set -eu

usage() { sed -n '2,9s/^# \{0,1\}//p' "$0"; }

install=yes
for arg in "$@"; do
    case $arg in
    --no-install) install=no ;;
    -h|--help) usage; exit 0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

shared=${TAESD_SHARED:-$(dirname "$0")/../../shared}
if [ -d "$shared" ]; then shared=$(cd "$shared" && pwd); fi
cd "$(dirname "$0")/.."
: "${XDG_RUNTIME_DIR:=/tmp}"
export XDG_RUNTIME_DIR

packages="meson ninja-build glslang-tools libvulkan-dev mesa-vulkan-drivers libstb-dev libjpeg-dev libcmocka-dev
vulkan-validationlayers python3 pkg-config gcc curl ca-certificates
libglfw3-dev xvfb xauth python3-numpy libxtst6"

if [ "$install" = yes ]; then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo=sudo; fi
    echo "== apt-get install"
    $sudo apt-get update
    # shellcheck disable=SC2086  # the package list is split into words on purpose
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y $packages
fi

echo "== build (release)"
if [ -d build/meson-private ]; then
    meson setup --reconfigure build --buildtype=release
else
    meson setup build --buildtype=release
fi
meson compile -C build

echo "== weights"
mkdir -p weights
base=https://raw.githubusercontent.com/madebyollin/taesd/main
for f in taef2_encoder.pth taef2_decoder.pth; do
    if [ -s "weights/$f" ]; then
        echo "weights/$f: already there"
        continue
    fi
    # A .pth is a zip file: anything else (an error page, a proxy's answer) is discarded.
    if command -v curl >/dev/null 2>&1 &&
        curl -fsSL --max-time 20 "$base/$f" -o "weights/$f.part" 2>/dev/null &&
        [ "$(head -c 2 "weights/$f.part")" = PK ]; then
        mv "weights/$f.part" "weights/$f"
        echo "weights/$f: downloaded from $base"
    else
        rm -f "weights/$f.part"
        if [ -s "$shared/weights/$f" ]; then
            ln -sf "$shared/weights/$f" "weights/$f"
            echo "weights/$f: download failed; linked to $shared/weights/$f"
        else
            echo "setup.sh: cannot download $base/$f and $shared/weights/$f is not there" >&2
            exit 1
        fi
    fi
done

photo=$shared/images/dog512.png
if [ ! -f "$photo" ]; then
    echo "setup.sh: $photo not found (set TAESD_SHARED)" >&2
    exit 1
fi

echo "== encode a real photo, decode its latent"
t0=$(date +%s.%N)
build/taesd encode -m weights/taef2_encoder.pth "$photo" -o build/dog512.latent.npy
t1=$(date +%s.%N)
build/taesd decode -m weights/taef2_decoder.pth build/dog512.latent.npy -o build/dog512.decoded.png
t2=$(date +%s.%N)
awk -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN {
    printf "encode %s -> build/dog512.latent.npy: %.2f s\n", "dog512.png (512x512)", b - a
    printf "decode build/dog512.latent.npy -> build/dog512.decoded.png: %.2f s\n", c - b
}'
echo "done. Tests: meson test -C build --print-errorlogs"
