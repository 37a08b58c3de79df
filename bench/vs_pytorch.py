#!/usr/bin/env python3
"""Times taesd-vk (`taesd bench`) against PyTorch on the same weights and sizes, in one run, and prints a table.

PyTorch runs its own definition of the TAESD networks (below, written from the architecture) with the same weight
files: on the CPU with 2 threads (fp32, NCHW and channels_last), and, where CUDA is available, on the GPU (fp16,
channels_last, cudnn.benchmark). taesd-vk runs on the Vulkan device `taesd` picks (or --device N).

Needs PyTorch (Debian: apt-get install python3-torch); installs nothing itself. Not part of CI.

  bench/vs_pytorch.py                       # taef2 + SD-architecture, decoders + encoders, latents 32² and 64²
  bench/vs_pytorch.py --taesd build/taesd --weights ../shared/weights --runs 5 --precision fp32
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))


# ---- the networks, as data: (kind, args) in Sequential order ------------------------------------------------------

def layer_list(part, variant, latent):
    """Sequential layers of a TAESD part. 'conv': (cin, cout, stride, bias); 'block': (width, pool)."""
    L = []
    pool = variant == 'taef2'
    if part == 'decoder':
        L += [('clamp',), ('conv', latent, 64, 1, True), ('relu',)]
        for stage in range(3):
            L += [('block', 64, pool and stage == 0)] * 3 + [('up',), ('conv', 64, 64, 1, False)]
        L += [('block', 64, False), ('conv', 64, 3, 1, True)]
    else:
        L += [('conv', 3, 64, 1, True), ('block', 64, False)]
        for stage in range(3):
            L += [('conv', 64, 64, 2, False)] + [('block', 64, pool and stage == 2)] * 3
        L += [('conv', 64, latent, 1, True)]
    return L


class Block(nn.Module):
    def __init__(self, width, pool):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(width, width, 3, padding=1))
        # TAEF2's low-resolution Blocks: x = x + branch(x) before the Block proper.
        self.pool = nn.Sequential(nn.Conv2d(width, 256, 1, bias=False), nn.GroupNorm(4, 256), nn.ReLU(),
                                  nn.Conv2d(256, width, 1, bias=False)) if pool else None

    def forward(self, x):
        if self.pool is not None:
            x = x + self.pool(x)
        return F.relu(self.conv(x) + x)


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


def build(part, variant, latent):
    mods = []
    for l in layer_list(part, variant, latent):
        if l[0] == 'clamp':
            mods.append(Clamp())
        elif l[0] == 'relu':
            mods.append(nn.ReLU())
        elif l[0] == 'up':
            mods.append(nn.Upsample(scale_factor=2))
        elif l[0] == 'conv':
            mods.append(nn.Conv2d(l[1], l[2], 3, stride=l[3], padding=1, bias=l[4]))
        else:
            mods.append(Block(l[1], l[2]))
    return nn.Sequential(*mods)


# ---- weights ------------------------------------------------------------------------------------------------------

def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    dt = {'F32': np.float32, 'F16': np.float16}
    out = {}
    for k, v in header.items():
        if k == '__metadata__':
            continue
        a, b = v['data_offsets']
        buf = raw[8 + n + a:8 + n + b]
        if v['dtype'] == 'BF16':
            arr = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            arr = np.frombuffer(buf, dt[v['dtype']])
        out[k] = torch.from_numpy(arr.astype(np.float32).reshape(v['shape']))
    return out


def load_state(path, part):
    if zipfile.is_zipfile(path):
        sd = torch.load(path, map_location='cpu', weights_only=True)
    else:
        sd = read_safetensors(path)
    sd = {k: v.float() for k, v in sd.items()}
    # diffusers: decoder.layers.N == Sequential N+1; ComfyUI: taesd_decoder.N
    for pre, shift in (('%s.layers.' % part, 1 if part == 'decoder' else 0), ('taesd_%s.' % part, 0)):
        if any(k.startswith(pre) for k in sd):
            sub = {}
            for k, v in sd.items():
                if k.startswith(pre):
                    idx, rest = k[len(pre):].split('.', 1)
                    sub['%d.%s' % (int(idx) + shift, rest)] = v
            return sub
    return sd


def detect(sd, part):
    latent = sd['1.weight'].shape[1] if part == 'decoder' else sd[max(
        (k for k in sd if k.endswith('.weight') and k.split('.')[0].isdigit() and '.' not in k[:-7]),
        key=lambda k: int(k.split('.')[0]))].shape[0]
    variant = 'taef2' if any('.pool.' in k for k in sd) else 'taesd'
    return variant, latent


# ---- timing -------------------------------------------------------------------------------------------------------

def time_torch(model, x, runs, sync=lambda: None):
    with torch.no_grad():
        model(x)  # warm-up (cudnn.benchmark picks algorithms here)
        sync()
        ts = []
        for _ in range(runs):
            t = time.perf_counter()
            model(x)
            sync()
            ts.append((time.perf_counter() - t) * 1e3)
    return float(np.median(ts))


def time_taesd(taesd, weights, part, size, runs, precision, device):
    cmd = [taesd, 'bench', '-m', weights, '--part', part, '--size', '%dx%d' % (size, size), '--runs', str(runs),
           '--json', '--precision', precision]
    if device:
        cmd += ['--device', str(device)]
    env = dict(os.environ)
    env.setdefault('XDG_RUNTIME_DIR', '/tmp')
    env.pop('TAESD_VALIDATION', None)
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit('taesd bench failed: %s' % r.stderr.strip())
    return json.loads(r.stdout)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--taesd', default=os.path.join(HERE, '..', 'build', 'taesd'))
    ap.add_argument('--weights', default=os.path.join(HERE, '..', '..', 'shared', 'weights'))
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--latents', default='32,64', help='latent sizes (the image is 8x that)')
    ap.add_argument('--precision', default='fp32,fp16', help='taesd-vk precisions to time')
    ap.add_argument('--device', type=int, default=0, help='taesd-vk Vulkan device (1-based)')
    ap.add_argument('--models', default='taef2_decoder.pth,taef2_encoder.pth,'
                    'synth_sd_decoder_f32.pth,synth_sd_encoder_f32.pth')
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.backends.cudnn.benchmark = True
    print('# PyTorch %s, %d CPU threads%s; taesd-vk: %s' % (torch.__version__, a.threads,
          ', CUDA %s' % torch.cuda.get_device_name(0) if cuda else '', a.taesd))
    cols = ['model', 'part', 'image', 'torch cpu', 'torch cpu cl']
    if cuda:
        cols += ['torch cuda fp16']
    for p in a.precision.split(','):
        cols += ['taesd-vk %s' % p, 'ratio %s' % p]
    print('| ' + ' | '.join(cols) + ' |')
    print('|' + '---|' * len(cols))
    for fname in a.models.split(','):
        path = os.path.join(a.weights, fname)
        part = 'encoder' if 'encoder' in fname else 'decoder'
        sd = load_state(path, part)
        variant, latent = detect(sd, part)
        model = build(part, variant, latent)
        model.load_state_dict(sd)
        model.eval()
        for lat in (int(s) for s in a.latents.split(',')):
            img = lat * 8
            x = torch.randn(1, latent, lat, lat) if part == 'decoder' else torch.rand(1, 3, img, img)
            cpu = time_torch(model, x, a.runs)
            cl = time_torch(model.to(memory_format=torch.channels_last), x.to(memory_format=torch.channels_last),
                            a.runs)
            model = model.to(memory_format=torch.contiguous_format)
            row = [fname.split('.')[0], part, '%d²' % img, '%.1f' % cpu, '%.1f' % cl]
            best_torch = min(cpu, cl)
            if cuda:
                m16 = build(part, variant, latent)
                m16.load_state_dict(sd)
                m16 = m16.eval().half().cuda().to(memory_format=torch.channels_last)
                xc = x.half().cuda().to(memory_format=torch.channels_last)
                row.append('%.3f' % time_torch(m16, xc, max(a.runs, 20), torch.cuda.synchronize))
            for p in a.precision.split(','):
                r = time_taesd(a.taesd, path, part, img, a.runs, p, a.device)
                row += ['%.1f' % r['median_ms'], '%.2f×' % (r['median_ms'] / best_torch)]
            print('| ' + ' | '.join(row) + ' |', flush=True)
    print('\n(ms, median of %d runs; ratio = taesd-vk / the faster PyTorch CPU layout; < 1 means taesd-vk is faster)'
          % a.runs)


if __name__ == '__main__':
    main()
