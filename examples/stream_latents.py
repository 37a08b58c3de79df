#!/usr/bin/env python3
"""Writes a stream of latents to stdout as consecutive .npy arrays, the format `taesd-view --stdin` reads:

    python3 examples/stream_latents.py --channels 4 --size 12x16 --count 5 | taesd-view -m taesd_decoder.pth --stdin

Only numpy. With --seed the stream is reproducible; --save-last FILE also writes the last latent as a .npy file
(what the tests decode with `taesd decode` to compare against the window), --bad N makes array N (1-based) malformed
(e.g. `--bad 2 --bad-kind garbage`), --dtype float16 writes halves, --delay waits between arrays like a sampler.
"""
import argparse
import io
import sys
import time

import numpy as np


def parse_size(s):
    h, w = s.lower().split("x")
    return int(h), int(w)


def bad_frame(kind, rng, c, h, w):
    """Bytes of one malformed frame."""
    if kind == "garbage":               # not a .npy at all
        return b"this is not a latent\n" + rng.integers(0, 256, 300, dtype=np.uint8).tobytes()
    if kind == "channels":              # a valid array the decoder cannot take
        a = rng.standard_normal((1, c + 1, h, w)).astype(np.float32)
    elif kind == "float64":             # dtype the reader refuses (size known: skipped cleanly)
        a = rng.standard_normal((1, c, h, w))
    elif kind == "nan":
        a = np.full((1, c, h, w), np.nan, dtype=np.float32)
    elif kind == "truncated":           # header promises more data than follows
        buf = io.BytesIO()
        np.save(buf, rng.standard_normal((1, c, h, w)).astype(np.float32))
        return buf.getvalue()[: 128 + 7]
    else:
        raise SystemExit(f"unknown --bad-kind {kind}")
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--channels", type=int, default=4)
    p.add_argument("--size", type=parse_size, default=(12, 16), help="latent HxW (default 12x16)")
    p.add_argument("--count", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=["float32", "float16"], default="float32")
    p.add_argument("--dims", type=int, choices=[3, 4], default=4, help="(C,H,W) or (1,C,H,W)")
    p.add_argument("--bad", type=int, action="append", default=[], help="make array N (1-based) malformed")
    p.add_argument("--bad-kind", default="garbage",
                   choices=["garbage", "channels", "float64", "nan", "truncated"])
    p.add_argument("--delay", type=float, default=0.0, help="seconds between arrays")
    p.add_argument("--save-last", help="also write the last good latent to this .npy file")
    args = p.parse_args()

    rng = np.random.default_rng(args.seed)
    c, (h, w) = args.channels, args.size
    out = sys.stdout.buffer
    last = None
    for i in range(1, args.count + 1):
        if i in args.bad:
            out.write(bad_frame(args.bad_kind, rng, c, h, w))
        else:
            # Smooth structure plus noise, so that consecutive frames differ visibly.
            yy, xx = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
            base = np.stack([np.sin(3 * (k + 1) * xx + i) * np.cos(2 * yy - k) for k in range(c)])
            lat = (1.5 * base + 0.5 * rng.standard_normal((c, h, w))).astype(args.dtype)
            last = lat
            np.save(out, lat[None] if args.dims == 4 else lat)
        out.flush()
        if args.delay:
            time.sleep(args.delay)
    if args.save_last and last is not None:
        np.save(args.save_last, last[None].astype(np.float32))


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:             # the reader went away (window closed)
        sys.stderr.write("stream_latents.py: the reader closed the stream\n")
        sys.exit(1)
