#!/usr/bin/env python3
"""Drives a running taesd-view through the X server as a user would (tests/test_viewer.sh): keys through the XTest
extension and a resize of its window, with ctypes only (libX11, libXtst; exit 77 where libXtst is missing).

    viewer_x11.py VIEWER DECODER LATENT.npy REF.png

Starts VIEWER --watch LATENT.npy in a 300x300 window, presses F (1:1), S (save), Space twice (pause, resume),
resizes the window to 400x200, presses Q. Checks: exit 0; the saved PNG is REF.png byte for byte; the screenshot
(--screenshot) is REF.png centred 1:1 in a black 400x200 frame; the title said "paused" in between.
"""
import ctypes
import ctypes.util
import os
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import viewer_compare  # noqa: E402


def main():
    viewer, decoder, latent, ref = sys.argv[1:5]
    names = {n: ctypes.util.find_library(n) for n in ("X11", "Xtst")}
    if not all(names.values()):
        print("SKIP: libX11/libXtst not found")
        return 77
    x11, xtst = ctypes.CDLL(names["X11"]), ctypes.CDLL(names["Xtst"])
    vp, ul = ctypes.c_void_p, ctypes.c_ulong
    x11.XOpenDisplay.restype = vp
    x11.XDefaultRootWindow.argtypes, x11.XDefaultRootWindow.restype = [vp], ul
    x11.XQueryTree.argtypes = [vp, ul, ctypes.POINTER(ul), ctypes.POINTER(ul), ctypes.POINTER(ctypes.POINTER(ul)),
                               ctypes.POINTER(ctypes.c_uint)]
    x11.XResizeWindow.argtypes = [vp, ul, ctypes.c_uint, ctypes.c_uint]
    x11.XKeysymToKeycode.argtypes = [vp, ul]
    x11.XFlush.argtypes = [vp]
    xtst.XTestFakeKeyEvent.argtypes = [vp, ctypes.c_uint, ctypes.c_int, ul]
    xtst.XTestFakeMotionEvent.argtypes = [vp, ctypes.c_int, ctypes.c_int, ctypes.c_int, ul]
    d = x11.XOpenDisplay(None)
    if not d:
        print("cannot open the X display")
        return 1

    def key(ch):
        kc = x11.XKeysymToKeycode(d, ord(ch))
        xtst.XTestFakeKeyEvent(d, kc, 1, 0)
        xtst.XTestFakeKeyEvent(d, kc, 0, 0)
        x11.XFlush(d)
        time.sleep(1.0)

    def windows():
        root, parent, n = ul(), ul(), ctypes.c_uint()
        children = ctypes.POINTER(ul)()
        x11.XQueryTree(d, x11.XDefaultRootWindow(d), ctypes.byref(root), ctypes.byref(parent),
                       ctypes.byref(children), ctypes.byref(n))
        return [children[i] for i in range(n.value)]

    before = set(windows())
    log = open("x11_stderr", "w")
    v = subprocess.Popen([viewer, "-m", decoder, "--watch", latent, "--size", "300x300", "--screenshot",
                          "x11_shot.png", "-v"], stderr=log)
    # The viewer's window: the new top-level one, once its first frame is up (the title shows the latent).
    deadline = time.time() + 120
    while time.time() < deadline and v.poll() is None:
        time.sleep(0.5)
        if "latent — decode" in open("x11_stderr").read():
            break
    new = [w for w in windows() if w not in before]
    xtst.XTestFakeMotionEvent(d, -1, 150, 150, 0)       # focus follows the pointer without a window manager
    x11.XFlush(d)
    time.sleep(0.5)
    for ch in "fs  ":
        key(ch)
    for w in new:
        x11.XResizeWindow(d, w, 400, 200)
    x11.XFlush(d)
    time.sleep(2.0)
    key("q")
    try:
        rc = v.wait(timeout=60)
    except subprocess.TimeoutExpired:
        v.kill()
        print("the viewer did not quit on Q")
        return 1
    err = open("x11_stderr").read()
    problems = []
    if rc != 0:
        problems.append(f"exit {rc}")
    if "— paused" not in err:
        problems.append("no title with 'paused' after Space")
    refimg = viewer_compare.read_png(ref)
    if not os.path.exists("taesd-view-001.png"):
        problems.append("S saved no taesd-view-001.png")
    elif not np.array_equal(viewer_compare.read_png("taesd-view-001.png"), refimg):
        problems.append("the PNG saved by S differs from the CLI's")
    shot = viewer_compare.read_png("x11_shot.png") if os.path.exists("x11_shot.png") else None
    ih, iw = refimg.shape[:2]
    if shot is None or shot.shape[:2] != (200, 400):
        problems.append(f"screenshot is {None if shot is None else shot.shape[:2]}, expected the resized 400x200")
    else:
        want = np.zeros_like(shot)
        want[(200 - ih) // 2:(200 - ih) // 2 + ih, (400 - iw) // 2:(400 - iw) // 2 + iw] = refimg
        if not np.array_equal(shot, want):
            problems.append("after F and the resize, the screenshot is not the image 1:1, centred, on black")
    if problems:
        print("; ".join(problems))
        print(err[-2000:])
        return 1
    print("F, S, Space, Q and a resize to 400x200: saved PNG identical, 1:1 centred screenshot identical")
    return 0


if __name__ == "__main__":
    sys.exit(main())
