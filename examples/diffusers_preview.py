#!/usr/bin/env python3
"""Live preview of a diffusers pipeline in taesd-view: every denoising step's latents go to `taesd-view --stdin`.

    python3 examples/diffusers_preview.py --decoder taesd_decoder.pth --model stabilityai/sd-turbo \\
        --steps 4 "a shiba inu in a forest"

How it works: diffusers calls `callback_on_step_end(pipe, step, timestep, callback_kwargs)` after every step;
callback_kwargs["latents"] holds the current latents. TaesdViewPreview writes them with numpy.save onto the stdin
of a taesd-view process, which decodes the newest one on the GPU and shows it: the pipeline never waits for the
window (a closed window just ends the preview). The class needs only numpy; torch tensors are converted on the way
(fp16 stays fp16: the viewer uploads halves as they are).

Latent layouts (--latent-format): the latents inside SD 1.x/2.x, SDXL and SD3 pipelines are already in diffusion
space (the default). FLUX.1 pipelines hold packed tokens: --latent-format flux1-packed (the script passes
--shape H/8,W/8). FLUX.2 pipelines: see docs/latent-formats.md. The decoder must match the model family
(taesd_* for SD 1.x/2.x, taesdxl_* for SDXL, taesd3_* for SD3, taef1_* for FLUX.1, taef2_* for FLUX.2).
"""
import argparse
import io
import subprocess
import sys

import numpy as np


class TaesdViewPreview:
    """A diffusers callback_on_step_end that shows each step's latents in taesd-view."""

    def __init__(self, decoder, viewer="taesd-view", latent_format="diffusion", shape=None, extra_args=()):
        args = [viewer, "-m", decoder, "--stdin", "--latent-format", latent_format]
        if shape:
            args += ["--shape", f"{shape[0]},{shape[1]}"]
        self.proc = subprocess.Popen(args + list(extra_args), stdin=subprocess.PIPE)

    def send(self, latents):
        """Writes one latent (a torch tensor or an array, (1,C,H,W) or (C,H,W)) to the viewer."""
        if self.proc is None or self.proc.stdin is None:
            return
        if hasattr(latents, "detach"):          # torch: the first of the batch, on the CPU
            latents = latents[:1].detach()
            if str(latents.dtype) not in ("torch.float16", "torch.float32"):
                latents = latents.float()
            latents = latents.cpu().numpy()
        # Through a BytesIO: numpy.save straight into a subprocess pipe fails ("obtaining file position failed").
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(latents[:1] if latents.ndim == 4 else latents))
        try:
            self.proc.stdin.write(buf.getbuffer())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):     # the window was closed: go on without it
            self.proc.stdin = None

    def __call__(self, pipe, step, timestep, callback_kwargs):
        self.send(callback_kwargs["latents"])
        return callback_kwargs

    def close(self, wait=True):
        """Ends the stream; with wait, returns the viewer's exit status once its window is closed."""
        if self.proc.stdin is not None:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
            self.proc.stdin = None
        return self.proc.wait() if wait else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt")
    p.add_argument("--decoder", required=True, help="TAESD decoder weights for the model family")
    p.add_argument("--model", default="stabilityai/sd-turbo", help="diffusers model id or path")
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--guidance", type=float, default=0.0)
    p.add_argument("--size", type=int, default=512, help="image height and width")
    p.add_argument("--latent-format", default="diffusion")
    p.add_argument("--viewer", default="taesd-view", help="path of the taesd-view executable")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    args = p.parse_args()

    import torch                                # only the pipeline needs torch and diffusers
    from diffusers import AutoPipelineForText2Image

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.float16 if device == "cuda" else torch.float32
    pipe = AutoPipelineForText2Image.from_pretrained(args.model, torch_dtype=dtype).to(device)
    shape = (args.size // 8, args.size // 8) if args.latent_format == "flux1-packed" else None
    preview = TaesdViewPreview(args.decoder, viewer=args.viewer, latent_format=args.latent_format, shape=shape)
    image = pipe(args.prompt, num_inference_steps=args.steps, guidance_scale=args.guidance, height=args.size,
                 width=args.size, callback_on_step_end=preview,
                 callback_on_step_end_tensor_inputs=["latents"]).images[0]
    image.save("diffusers_preview.png")
    print("wrote diffusers_preview.png; close the taesd-view window to exit", file=sys.stderr)
    sys.exit(preview.close(wait=True))


if __name__ == "__main__":
    main()
