#!/bin/sh
# test_install.sh — what `meson install` ships, used the way a packager's user uses it.
# Installs the build into a staging directory (meson install --no-rebuild --destdir), then checks the files
# (libtaesd.so + libtaesd.a, taesd.h + taesd_vulkan.h, taesd.pc, the CLI), the exported symbols, and builds small
# programs against the staged tree with `pkg-config --cflags --libs taesd`: one linked to the shared library, one to
# the static library (pkg-config --static), one using taesd_vulkan.h. Each calls taesd_list_devices (TAESD_OK, or
# TAESD_ERROR_NO_DEVICE where there is no Vulkan: this is the link test, suite 'cpu').
#
# --no-rebuild: `meson test` has already brought the build up to date, and the install only copies files; it never
# runs ninja, so it cannot race with the build or with tests running beside it. The staging directory is private.
# Usage: test_install.sh MESON (the meson executable). Env: TAESD_BUILD (the build dir); CC (default cc).
set -u

build=${TAESD_BUILD:?set TAESD_BUILD to the build directory}
meson=${1:?usage: test_install.sh MESON}
cc=${CC:-cc}
command -v pkg-config >/dev/null 2>&1 || { echo "pkg-config not found: skipped"; exit 77; }

stage=$(mktemp -d "${TMPDIR:-/tmp}/taesd_install.XXXXXX") || exit 1
trap 'rm -rf "$stage"' EXIT
trap 'exit 1' HUP INT TERM

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; [ $# -lt 2 ] || echo "     $2"; }

if "$meson" install -C "$build" --no-rebuild --destdir "$stage" >"$stage/install.log" 2>&1; then
    ok "meson install --destdir"
else
    bad "meson install --destdir" "$(tail -5 "$stage/install.log")"
    echo "$passed passed, $failed failed"
    exit 1
fi

pc=$(find "$stage" -name taesd.pc | head -n 1)
if [ -z "$pc" ]; then bad "taesd.pc installed"; echo "$passed passed, $failed failed"; exit 1; fi
ok "taesd.pc installed"
prefix=$(sed -n 's/^prefix=//p' "$pc")
# The .pc names the final prefix; point it at the staged copy.
pkg() { PKG_CONFIG_PATH=$(dirname "$pc") pkg-config --define-variable=prefix="$stage$prefix" "$@" taesd; }
libdir=$(pkg --variable=libdir)
includedir=$(pkg --variable=includedir)

for f in "$includedir/taesd.h" "$includedir/taesd_vulkan.h" "$libdir/libtaesd.a" "$libdir/libtaesd.so" \
    "$stage$prefix/bin/taesd"; do
    if [ -e "$f" ]; then ok "installed ${f#"$stage"}"; else bad "installed ${f#"$stage"}"; fi
done
if pkg --exists; then ok "pkg-config finds taesd $(pkg --modversion)"; else bad "pkg-config finds taesd"; fi

# Only the public API leaves the shared library.
others=$(nm -D --defined-only "$libdir/libtaesd.so" 2>/dev/null | awk 'NF == 3 { print $3 }' | grep -v '^taesd_' |
    head -5)
if [ -z "$others" ]; then ok "libtaesd.so exports taesd_* only"
else bad "libtaesd.so exports taesd_* only" "$others"; fi

cat >"$stage/use_taesd.c" <<'EOF'
#include <stdio.h>
#include <taesd.h>

int main(void)
{
    int count = 0;
    taesd_result r = taesd_list_devices(NULL, &count);
    printf("taesd_list_devices: %s, %d device(s); latent format 1 is %s\n", taesd_result_string(r), count,
           taesd_latent_format_name(TAESD_LATENT_SD1_RAW));
    return r == TAESD_OK || r == TAESD_ERROR_NO_DEVICE ? 0 : 1;
}
EOF
cat >"$stage/use_taesd_vulkan.c" <<'EOF'
#include <stdio.h>
#include <taesd_vulkan.h>

int main(void)
{
    taesd_device_requirements req;
    taesd_vulkan_host host = { 0 };
    taesd_context_desc desc = { .host = &host };
    (void)desc;
    if (taesd_query_device_requirements(VK_API_VERSION_1_2, &req) != TAESD_OK)
        return 1;
    printf("taesd needs Vulkan %u.%u and %u device extension(s)\n", VK_API_VERSION_MAJOR(req.min_api_version),
           VK_API_VERSION_MINOR(req.min_api_version), req.extension_count);
    return 0;
}
EOF

# build_run NAME OUTPUT SOURCE FLAGS...: compiles and runs a program (the staged libdir on LD_LIBRARY_PATH).
build_run() {
    name=$1; exe=$2; src=$3; shift 3
    # shellcheck disable=SC2068  # the flags are meant to split
    if ! $cc -std=c11 -Wall -Werror -o "$exe" "$src" $@ >"$stage/cc.log" 2>&1; then
        bad "$name: compile and link" "$(head -5 "$stage/cc.log")"
        return 1
    fi
    if out=$(LD_LIBRARY_PATH="$libdir" "$exe" 2>&1); then ok "$name: $out"; else bad "$name: runs" "$out"; fi
}

build_run "shared library via pkg-config" "$stage/use_shared" "$stage/use_taesd.c" "$(pkg --cflags)" "$(pkg --libs)"
if [ -x "$stage/use_shared" ] && ldd "$stage/use_shared" 2>/dev/null | grep -q 'libtaesd\.so'; then
    ok "shared program loads libtaesd.so"
else
    bad "shared program loads libtaesd.so"
fi
# libtaesd.a by path (both libraries sit in libdir, and -ltaesd prefers the .so), plus `pkg-config --static` flags.
static_libs=$(pkg --static --libs | sed 's/-ltaesd\b//')
build_run "static library via pkg-config --static" "$stage/use_static" "$stage/use_taesd.c" "$(pkg --cflags)" \
    "$libdir/libtaesd.a" "$static_libs"
if [ -x "$stage/use_static" ] && ! ldd "$stage/use_static" 2>/dev/null | grep -q 'libtaesd'; then
    ok "static program does not need libtaesd.so"
else
    bad "static program does not need libtaesd.so"
fi
if [ -x "$stage/use_static" ] && ! ldd "$stage/use_static" 2>/dev/null | grep -q 'libvulkan'; then
    ok "static program does not link libvulkan (opened at run time)"
else
    bad "static program does not link libvulkan (opened at run time)"
fi
build_run "taesd_vulkan.h via pkg-config" "$stage/use_vulkan" "$stage/use_taesd_vulkan.c" "$(pkg --cflags)" \
    "$(pkg --libs)"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] || exit 1
exit 0
