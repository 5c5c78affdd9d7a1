"""Benchmark: the compositor renders a 10 s 720x1280 creative vs pure encoding of the same frames.

Prints the render time, the pure-encode time (same number of frames, same encoder settings, same run) and
their ratio (target <= 2.0). The voice is warmed first (its cache is part of the design), the creative's
render cache is not used.

    python scripts/bench_compositor.py [--fps 24] [--seconds 10] [--repeat 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nextads_lib import media
from nextads_lib.producer import get_producer, post
from nextads_lib.schemas import ProducerRequest, Slot, Storyboard


def make_request(tmp: Path, seconds: float, fps: float) -> ProducerRequest:
    g = np.random.default_rng(0)
    assets = {}
    for i in range(3):  # textured product shots, so the encoder has real work
        a = (g.random((600, 800, 3)) * 60 + np.array([40 + 60 * i, 90, 160 - 40 * i])).clip(0, 255).astype(np.uint8)
        im = Image.fromarray(a)
        ImageDraw.Draw(im).rounded_rectangle((200, 120, 600, 480), radius=40, fill=(235, 235, 240))
        ImageDraw.Draw(im).text((260, 280), f"PRODUCT {i}", fill=(20, 20, 20))
        im.save(tmp / f"asset{i}.png")
        assets[f"asset{i}"] = str(tmp / f"asset{i}.png")
    cams = ["push_in", "pan_left", "zoom_out", "tilt_up"]
    n = 4
    cuts = [round(seconds * k / n, 3) for k in range(n + 1)]
    slots = [Slot(index=k, start_s=cuts[k], end_s=cuts[k + 1], role="hook" if k == 0 else ("cta" if k == n - 1 else "body"),
                  camera=cams[k], composition="product hero", on_screen_text=f"Selling point {k + 1}",
                  narration=["Meet the all-new Aurora.", "A battery that lasts all week.", "",
                             "Get yours today."][k], assets=[f"asset{k % 3}"], pacing="medium")
             for k in range(n)]
    sb = Storyboard(product_id="bench", backend="offline", personalized=False, hook="Meet Aurora",
                    duration_s=seconds, slots=slots, cta="Shop now at aurora.example")
    return ProducerRequest(storyboard=sb, assets=assets, aspect_ratio="9:16", width=720, height=1280, fps=fps, seed=7)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fps", type=float, default=24.0)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=2, help="best of N for both timings")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        req = make_request(tmp, args.seconds, args.fps)
        tts_cache = tmp / "tts-cache"
        # warm the voice (model load + the four lines, cached on disk like in a study run)
        warm = get_producer("compositor", cache_dir=tts_cache)
        t0 = time.perf_counter()
        warm.render(req, tmp / "warm.mp4")
        cold = time.perf_counter() - t0
        render_t = []
        for r in range(args.repeat):
            prod = get_producer("compositor", cache_dir=tts_cache)  # fresh producer; the video cache is skipped:
            prod.cache = None  # only the TTS cache (by text) is reused
            t0 = time.perf_counter()
            prod.render(req, tmp / f"render{r}.mp4")
            render_t.append(time.perf_counter() - t0)
        out = tmp / "render0.mp4"
        frames = media.read_frames(out)
        audio = media.read_audio(out, rate=22050)
        enc_t = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            media.write_video(tmp / f"encode{r}.mp4", iter(frames), args.fps, audio=audio, audio_rate=22050,
                              crf=post.ENCODE_CRF, preset=post.ENCODE_PRESET, x264_params=post.ENCODE_X264_PARAMS)
            enc_t.append(time.perf_counter() - t0)
        info = media.probe(out)
        best_r, best_e = min(render_t), min(enc_t)
        print(f"creative: {info.width}x{info.height}, {info.n_frames} frames at {info.fps:g} fps, "
              f"{info.duration_s:.2f} s, audio={info.has_audio}")
        print(f"first render (voice load + synthesis): {cold:.2f} s")
        print(f"compositor render (voice cached):      {best_r:.2f} s   (runs: {', '.join(f'{x:.2f}' for x in render_t)})")
        print(f"pure encode, same frames + settings:   {best_e:.2f} s   (runs: {', '.join(f'{x:.2f}' for x in enc_t)})")
        print(f"ratio render / encode: {best_r / best_e:.2f}  (target <= 2.0)")


if __name__ == "__main__":
    main()
