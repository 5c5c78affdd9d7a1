"""Run the wan Producer on CUDA in bf16 with tiny randomly initialised Wan2.2 pipelines (TI2V and I2V
layouts) through the real loading path, and print what was measured: wall time per render, peak GPU memory,
frame counts, first/last-frame pinning. The tiny models are timed at 128x256 and 352x640 (their rotary
tables are sized for small grids); the real model at its native 704x1280. The real TI2V-5B needs its weights (no hub here): pass a local
diffusers folder as argv[1] to time it the same way.

    python scripts/gpu_wan_check.py [MODEL_DIR]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from nextads_lib import media
from nextads_lib.producer import get_producer, label_present
from nextads_lib.producer.wan import build_tiny_pipeline
from nextads_lib.schemas import ProducerRequest, Slot, Storyboard


def request(tmp: Path, size: tuple[int, int], first_last: bool) -> ProducerRequest:
    imgs = {}
    for name, c in {"a0": (200, 40, 40), "a1": (40, 170, 60), "host": (240, 220, 20)}.items():
        Image.new("RGB", (256, 256), c).save(tmp / f"{name}.png")
        imgs[name] = str(tmp / f"{name}.png")
    slots = [Slot(index=0, start_s=0.0, end_s=2.0, role="hook", camera="zoom_in", composition="product hero",
                  narration="", on_screen_text="New", assets=["a0"]),
             Slot(index=1, start_s=2.0, end_s=4.0, role="cta", camera="pan_left", composition="close up", assets=["a1"])]
    sb = Storyboard(product_id="p", backend="offline", personalized=False, hook="New", aspect_ratio="9:16",
                    duration_s=4.0, slots=slots, cta="Buy now")
    kw = {"first_frame": imgs["host"], "last_frame": imgs["host"]} if first_last else {}
    return ProducerRequest(storyboard=sb, assets={"a0": imgs["a0"], "a1": imgs["a1"]}, aspect_ratio="9:16",
                           width=size[0], height=size[1], fps=24.0, seed=1, **kw)


def main() -> None:
    assert torch.cuda.is_available(), "needs CUDA"
    print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        models = {v: build_tiny_pipeline(tmp / v, v) for v in ("ti2v", "i2v")}
        if len(sys.argv) > 1:
            models["given"] = Path(sys.argv[1])
        for name, model in models.items():
            for size in ((128, 256), (352, 640)) if name != "given" else ((704, 1280),):
                torch.cuda.reset_peak_memory_stats()
                prod = get_producer(f"wan:{model}", torch_dtype="bf16", device="cuda", num_inference_steps=4,
                                    gen_fps=24, narration=False, vae_tiling=size[1] > 1000)
                out = tmp / f"{name}_{size[0]}x{size[1]}.mp4"
                t0 = time.time()
                man = prod.render(request(tmp, size, first_last=name != "ti2v"), out)
                torch.cuda.synchronize()
                dt = time.time() - t0
                frames = media.read_frames(out)
                print(f"{name:5s} {size[0]}x{size[1]} bf16 cuda: {dt:6.2f} s, peak GPU mem "
                      f"{torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB, frames {len(frames)} "
                      f"(want {round(4 * 24)}), clips {[c['num_frames'] for c in man.settings['clips']]}, "
                      f"label on all frames: {all(label_present(f) for f in frames[::8])}, "
                      f"finite pixels: {bool(np.isfinite(frames.astype(np.float32)).all())}")


if __name__ == "__main__":
    main()
