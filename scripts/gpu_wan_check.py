"""Run the wan Producer with tiny randomly initialised Wan2.2 pipelines (TI2V and I2V layouts) through the real
loading path, on CUDA in bf16 by default, and print what was measured: pipeline load time, wall time of a cold
and a warm render, peak GPU memory, frame counts, first/last-frame pinning. The tiny models are timed at
128x256 and 352x640 (their rotary tables are sized for small grids); the real model at its native 704x1280.
The real TI2V-5B needs its weights (no hub here): pass a local diffusers folder as MODEL_DIR to time it the
same way. ``--device cpu`` runs the same code on the CPU (fp32, small sizes) as a dry run.
``scripts/gpu_check.py`` calls :func:`wan_records` as one of its sections.

    python scripts/gpu_wan_check.py [MODEL_DIR] [--device cuda|cpu]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from nextads_lib import media
from nextads_lib.producer import burn_label, get_producer, label_present, post
from nextads_lib.producer.wan import build_tiny_pipeline
from nextads_lib.schemas import ProducerRequest, Slot, Storyboard

DURATION_S = 4.0


def request(tmp: Path, size: tuple[int, int], fps: float, first_last: bool, seed: int = 1) -> ProducerRequest:
    """A two-slot 4 s storyboard at ``size`` and ``fps``; with ``first_last`` the host image is both the first
    and the last frame (PCI's integration frame)."""
    imgs = {}
    for name, c in {"a0": (200, 40, 40), "a1": (40, 170, 60), "host": (240, 220, 20)}.items():
        Image.new("RGB", (256, 256), c).save(tmp / f"{name}.png")
        imgs[name] = str(tmp / f"{name}.png")
    slots = [Slot(index=0, start_s=0.0, end_s=2.0, role="hook", camera="zoom_in", composition="product hero",
                  narration="", on_screen_text="New", assets=["a0"]),
             Slot(index=1, start_s=2.0, end_s=4.0, role="cta", camera="pan_left", composition="close up", assets=["a1"])]
    sb = Storyboard(product_id="p", backend="offline", personalized=False, hook="New", aspect_ratio="9:16",
                    duration_s=DURATION_S, slots=slots, cta="Buy now")
    kw = {"first_frame": imgs["host"], "last_frame": imgs["host"]} if first_last else {}
    return ProducerRequest(storyboard=sb, assets={"a0": imgs["a0"], "a1": imgs["a1"]}, aspect_ratio="9:16",
                           width=size[0], height=size[1], fps=fps, seed=seed, **kw)


def param_dtypes(module: torch.nn.Module) -> dict[str, int]:
    """Number of parameters per dtype."""
    out: dict[str, int] = {}
    for q in module.parameters():
        out[str(q.dtype)] = out.get(str(q.dtype), 0) + q.numel()
    return out


def _peak_mib(device: str) -> float | None:
    if not device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def wan_records(device: str = "cuda", dtype: str = "bf16", sizes: Sequence[tuple[int, int]] = ((128, 256), (352, 640)),
                fps: float = 24.0, steps: int = 4, model_dir: str | None = None,
                log: Callable[[str], Any] = print) -> list[dict[str, Any]]:
    """One record per (model, size): load and render times, peak GPU memory, frames, pinning distances."""
    records = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        models: dict[str, Path] = {v: build_tiny_pipeline(tmp / v, v) for v in ("ti2v", "i2v")}
        if model_dir:
            models["given"] = Path(model_dir)
        for name, model in models.items():
            for size in sizes if name != "given" else ((704, 1280),):
                if device.startswith("cuda"):
                    torch.cuda.empty_cache()
                    torch.cuda.reset_peak_memory_stats()
                prod = get_producer(f"wan:{model}", torch_dtype=dtype, device=device, num_inference_steps=steps,
                                    gen_fps=fps, narration=False, vae_tiling=size[1] > 1000)
                t0 = time.perf_counter()
                pipe = prod.pipeline()  # memoised per process: the first size of a model pays the load
                _sync(device)
                load_s = time.perf_counter() - t0
                times = []
                for seed in (1, 2):  # cold (first call on the device: kernels, allocator) and warm
                    out = tmp / f"{name}_{size[0]}x{size[1]}_{seed}.mp4"
                    t0 = time.perf_counter()
                    man = prod.render(request(tmp, size, fps, first_last=True, seed=seed), out)
                    _sync(device)
                    times.append(time.perf_counter() - t0)
                frames = media.read_frames(out)
                want = burn_label(post.fit_image(tmp / "host.png", size[0], size[1])).astype(np.float32)
                rec = {
                    "model": name, "size": f"{size[0]}x{size[1]}", "device": device, "dtype": dtype,
                    # diffusers keeps the transformer's _keep_in_fp32_modules (norms, time embedder, modulation
                    # tables) in fp32 under a bf16 load: count parameters per dtype, not the first one's
                    "transformer_param_dtypes": param_dtypes(pipe.transformer),
                    "param_device": str(next(pipe.transformer.parameters()).device),
                    "load_s": round(load_s, 3), "render_cold_s": round(times[0], 3), "render_warm_s": round(times[1], 3),
                    "peak_gpu_mib": _peak_mib(device), "frames": int(len(frames)), "want_frames": round(DURATION_S * fps),
                    "clips": [c["num_frames"] for c in man.settings["clips"]],
                    "last_image_sent": [c["last_image"] for c in man.settings["clips"]],
                    "first_frame_mad": round(float(np.abs(frames[0] - want).mean()), 2),
                    "last_frame_mad": round(float(np.abs(frames[-1] - want).mean()), 2),
                    "label_on_all_frames": all(label_present(f) for f in frames),
                    "frames_vary": bool(frames.std(axis=0).mean() > 0.5),
                }
                records.append(rec)
                log(f"wan {name:5s} {rec['size']} {dtype} {device} (transformer {rec['transformer_param_dtypes']}): load {rec['load_s']:.2f} s, render cold "
                    f"{rec['render_cold_s']:.2f} s / warm {rec['render_warm_s']:.2f} s, peak GPU mem "
                    f"{rec['peak_gpu_mib']} MiB, frames {rec['frames']} (want {rec['want_frames']}), clips {rec['clips']}, "
                    f"last image sent {rec['last_image_sent']}, first/last frame MAD to the pinned host "
                    f"{rec['first_frame_mad']}/{rec['last_frame_mad']}, label on all frames {rec['label_on_all_frames']}")
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir", nargs="?", help="a local Wan2.2 diffusers folder to time at 704x1280")
    ap.add_argument("--device", default="cuda", help="cuda (default) or cpu (dry run: fp32, 64x128 at 8 fps)")
    args = ap.parse_args()
    if args.device.startswith("cuda"):
        assert torch.cuda.is_available(), "needs CUDA (or pass --device cpu)"
        print("device:", torch.cuda.get_device_name(0), "| torch", torch.__version__)
        wan_records(args.device, "bf16", model_dir=args.model_dir)
    else:
        wan_records("cpu", "fp32", sizes=((64, 128),), fps=8.0, steps=2, model_dir=args.model_dir)


if __name__ == "__main__":
    main()
