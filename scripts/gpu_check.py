"""The CUDA code paths on tiny randomly initialised models built here (no hub, no weights), timed: the figures
in docs/gpu_check.md. Sections (each one's failure is logged with its traceback and the next runs):

- ``wan``: the wan Producer (``scripts/gpu_wan_check.py``), tiny TI2V and I2V Wan2.2 pipelines;
- ``hf``: the ``hf:`` backend on a tiny random Qwen3-VL saved to disk and loaded through the backend's own
  path, one request with two images and one with a video (sent as sampled frames), with the full
  ``AutoProcessor`` where torchvision imports and with ``processor="images-only"``; a 64-token greedy decode;
- ``vq``: the ``networks:random`` VBench-style metric models (RAFT-large, CLIP ViT-L/14 + aesthetic head,
  MUSIQ) on one short video.

``--device cuda`` (default) runs them in bf16 on the GPU at the sizes of the docs; ``--device cpu`` is the dry
run (fp32, small sizes) that checks the script before device time is spent on it. ``scripts/gpu_check.sh``
runs this and the targeted pytest files on the GPU machine.

    python scripts/gpu_check.py [--device cuda|cpu] [--out DIR] [--sections wan,hf,vq]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_wan_check beside this file

LOG: list[str] = []


def log(msg: str) -> None:
    print(msg, flush=True)
    LOG.append(msg)


def cuda(device: str) -> bool:
    return device.startswith("cuda")


def peak_mib(device: str) -> float | None:
    return round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda(device) else None


def reset_peak(device: str) -> None:
    if cuda(device):
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def sync(device: str) -> None:
    if cuda(device):
        torch.cuda.synchronize()


def versions() -> dict[str, Any]:
    import importlib.metadata as md  # noqa: PLC0415

    out: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__,
                           "cuda_runtime": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update(gpu=p.name, gpu_mem_gib=round(p.total_memory / 2**30, 1), capability=f"{p.major}.{p.minor}")
    for pkg in ("transformers", "diffusers", "tokenizers", "huggingface_hub", "accelerate", "torchvision", "pyiqa",
                "open_clip_torch", "timm", "av", "pydantic", "numpy"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = None
    return out


# ------------------------------------------------------------------------------------------------- wan
def section_wan(device: str) -> list[dict[str, Any]]:
    from gpu_wan_check import wan_records  # noqa: PLC0415

    if cuda(device):
        return wan_records(device, "bf16", log=log)
    return wan_records("cpu", "fp32", sizes=((64, 128),), fps=8.0, steps=2, log=log)


# -------------------------------------------------------------------------------------------------- hf
def _video(path: Path, n: int = 16, size: int = 96) -> Path:
    from nextads_lib import media  # noqa: PLC0415

    x = np.arange(size)
    frames = [np.stack([(x[None, :] * 2 + 8 * i) % 256 + 0 * x[:, None], np.full((size, size), 80 + 4 * i),
                        (x[:, None] * 2) % 256 + 0 * x[None, :]], -1).astype(np.uint8) for i in range(n)]
    media.write_video(path, frames, 8.0)
    return path


def section_hf(device: str) -> list[dict[str, Any]]:
    from PIL import Image  # noqa: PLC0415
    from pydantic import BaseModel  # noqa: PLC0415

    from nextads_lib.backends import ImagePart, ModelRequest, TextPart, VideoPart, get_backend  # noqa: PLC0415
    from nextads_lib.backends import hf_backend  # noqa: PLC0415

    class Answer(BaseModel):
        answer: str

    dtype = "bf16" if cuda(device) else "fp32"
    try:
        import torchvision  # noqa: F401, PLC0415

        processors = ["auto", "images-only"]
    except Exception as e:  # noqa: BLE001
        log(f"hf: torchvision does not import ({type(e).__name__}); the full AutoProcessor is not tried")
        processors = ["images-only"]
    records = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model = hf_backend.build_tiny_qwen3vl(tmp / "tiny-qwen3vl")
        ims = []
        for i, c in enumerate(((200, 30, 30), (30, 160, 220))):
            ims.append(tmp / f"im{i}.png")
            Image.new("RGB", (320, 240), c).save(ims[-1])
        video = _video(tmp / "v.mp4")
        for proc in processors:
            reset_peak(device)
            t0 = time.perf_counter()
            m, p = hf_backend.load_model(str(model), device, dtype, proc)
            sync(device)
            load_s = time.perf_counter() - t0
            b = get_backend(f"hf:{model}", cache_dir=tmp / f"cache-{proc}", device=device, torch_dtype=dtype,
                            processor=proc, max_new_tokens=1)
            rec: dict[str, Any] = {"processor": proc, "processor_class": type(p).__name__, "device": device,
                                   "dtype": dtype, "param_device": str(next(m.parameters()).device),
                                   "param_dtype": str(next(m.parameters()).dtype), "load_s": round(load_s, 3)}
            for label, parts in (("images", [TextPart("rate the image"), ImagePart(ims[0]), ImagePart(ims[1])]),
                                 ("video", [TextPart("rate the video frame"), VideoPart(video, 8)])):
                times = []
                for k in range(2):  # cold, warm (another task: no cache hit)
                    req = ModelRequest(task=f"gpu.{label}.{k}", system="you are a judge", schema=Answer,
                                       item="gpu check", parts=parts)
                    sync(device)
                    t0 = time.perf_counter()
                    r = b.complete(req)
                    sync(device)
                    times.append(time.perf_counter() - t0)
                    assert not r.cached and r.value == Answer(answer="tiny"), r
                rec[label] = {"cold_s": round(times[0], 3), "warm_s": round(times[1], 3),
                              "input_tokens": r.usage.input_tokens, "output_tokens": r.usage.output_tokens,
                              "answer": r.value.answer}
            # a longer greedy decode (the tiny model repeats token 0): per-token time on this device
            msgs, images = b.messages(ModelRequest(task="t", system="you are a judge", schema=Answer,
                                                   parts=[TextPart("rate the image"), ImagePart(ims[0])]), None)
            prompt = p.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            inputs = p(text=[prompt], images=images, return_tensors="pt").to(m.device)
            with torch.no_grad():
                sync(device)
                t0 = time.perf_counter()
                out = m.generate(**inputs, max_new_tokens=64, min_new_tokens=64, do_sample=False)
                sync(device)
            dt = time.perf_counter() - t0
            rec["decode64"] = {"s": round(dt, 3), "new_tokens": int(out.shape[1] - inputs["input_ids"].shape[1]),
                               "ms_per_token": round(1000 * dt / 64, 2)}
            rec["peak_gpu_mib"] = peak_mib(device)
            records.append(rec)
            log(f"hf processor={proc} ({rec['processor_class']}) {dtype} on {rec['param_device']}: load "
                f"{load_s:.2f} s; 2 images: {rec['images']['cold_s']:.3f} s cold / {rec['images']['warm_s']:.3f} s "
                f"warm, {rec['images']['input_tokens']} input tokens; video as 8 frames: {rec['video']['cold_s']:.3f} s "
                f"cold / {rec['video']['warm_s']:.3f} s warm, {rec['video']['input_tokens']} input tokens; 64-token "
                f"decode {dt:.3f} s ({rec['decode64']['ms_per_token']} ms/token); peak GPU mem {rec['peak_gpu_mib']} MiB")
    return records


# -------------------------------------------------------------------------------------------------- vq
def section_vq(device: str) -> list[dict[str, Any]]:
    """The metric models on a 448x256 pan and on a 160x96 one (under RAFT's 128 px minimum: edge-padded)."""
    from nextads_lib import media, vbench  # noqa: PLC0415

    vbench.require_vq()
    settings = vbench.NetworkSettings(device=device, random_weights=True)
    reset_peak(device)
    t0 = time.perf_counter()
    nets = vbench._networks(settings)
    sync(device)
    load_s = time.perf_counter() - t0
    log(f"vq networks:random: RAFT-large, MUSIQ, CLIP ViT-L/14 + head built and moved to "
        f"{next(nets.raft.parameters()).device} in {load_s:.2f} s")
    records = []
    with tempfile.TemporaryDirectory() as d:
        for h, w in ((256, 448), (96, 160)):
            n = 16
            yy, xx = np.mgrid[0:h, 0:w]
            frames = []
            for i in range(n):  # a textured pattern panning 6 px per frame
                v = 128 + 60 * np.sin((xx + 6 * i) / 9.0) * np.cos(yy / 7.0)
                frames.append(np.stack([v, np.roll(v, 20, 1), 255 - v], -1).clip(0, 255).astype(np.uint8))
            path = Path(d) / f"pan_{w}x{h}.mp4"
            media.write_video(path, frames, 8.0)
            reset_peak(device)
            times, r = [], None
            for _ in range(2):  # cold, warm (no cache: score_video without a Cache)
                t0 = time.perf_counter()
                r = vbench.score_video(path, backend="networks:random", networks=settings)
                sync(device)
                times.append(time.perf_counter() - t0)
            assert r is not None and r.error is None, r
            rec = {"device": device, "raft_device": str(next(nets.raft.parameters()).device),
                   "video": f"{n} frames {w}x{h}", "load_s": round(load_s, 3), "score_cold_s": round(times[0], 3),
                   "score_warm_s": round(times[1], 3), "peak_gpu_mib": peak_mib(device),
                   "values": {m: r.value(m) for m in vbench.METRICS}}
            records.append(rec)
            log(f"vq networks:random on {rec['raft_device']} ({rec['video']}): score {times[0]:.2f} s cold / "
                f"{times[1]:.2f} s warm, peak GPU mem {rec['peak_gpu_mib']} MiB, values {rec['values']}")
    return records


SECTIONS: dict[str, Callable[[str], list[dict[str, Any]]]] = {"wan": section_wan, "hf": section_hf, "vq": section_vq}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=None, help="folder for gpu_check.json and gpu_check.log")
    ap.add_argument("--sections", default="wan,hf,vq")
    args = ap.parse_args()
    if cuda(args.device):
        assert torch.cuda.is_available(), "needs CUDA (or pass --device cpu)"
    result: dict[str, Any] = {"versions": versions(), "device": args.device}
    log(f"versions: {json.dumps(result['versions'])}")
    failed = []
    for name in args.sections.split(","):
        t0 = time.perf_counter()
        try:
            result[name] = SECTIONS[name](args.device)
        except Exception as e:  # noqa: BLE001  (a section's failure is a finding; the others still run)
            failed.append(name)
            result[name] = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()}
            log(f"{name}: FAILED {type(e).__name__}: {e}\n{traceback.format_exc()}")
        log(f"{name}: section took {time.perf_counter() - t0:.1f} s")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu_check.json").write_text(json.dumps(result, indent=1, default=str))
        (out / "gpu_check.log").write_text("\n".join(LOG) + "\n")
    log(f"failed sections: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
