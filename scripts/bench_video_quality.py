"""Benchmark of the offline video-quality scorer (``nextads_lib.vbench``) on creatives of the embedded size.

    .venv/bin/python scripts/bench_video_quality.py                  # 8 creatives, 360x640, 15 fps, 12 s
    .venv/bin/python scripts/bench_video_quality.py --n 16 --workers 2

Renders ``--distinct`` creatives with the compositor (the request of ``scripts/bench_compositor.py`` at the
embedded size, one seed each; the video cache is off), then
1. scores each once in this process (no cache) and prints the per-video wall and CPU time by stage (decode,
   MS + DD, AQ, IQ) and the four values with their labels;
2. scores ``--n`` videos (copies of the distinct ones, so nothing is cached) through ``score_runs``'s process
   pool with ``--workers`` workers and prints the throughput and the projection for 500 creatives.
Target: judge + video quality for 500 offline creatives under 5 minutes on 2 cores, so video quality should
stay under about 0.5 s of CPU per creative. Timings on a shared machine vary with its load (printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from nextads_lib import vbench  # noqa: E402
from nextads_lib.config import StudyPaths  # noqa: E402
from nextads_lib.producer import get_producer  # noqa: E402
from nextads_lib.schemas import PairManifest  # noqa: E402
from nextads_lib.store import write_json  # noqa: E402


def render(tmp: Path, k: int, width: int, height: int, fps: float, seconds: float) -> Path:
    from bench_compositor import make_request  # noqa: PLC0415

    req = make_request(tmp, seconds, fps).model_copy(update={"width": width, "height": height, "fps": fps,
                                                             "seed": 7 + k})
    prod = get_producer("compositor", cache_dir=tmp / "tts-cache")
    prod.cache = None
    out = tmp / f"creative{k}.mp4"
    prod.render(req, out)
    return out


def staged(path: Path, s: vbench.OfflineSettings) -> dict[str, float]:
    t: dict[str, float] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    clip = vbench.decode(path)
    w1, c1 = time.perf_counter(), time.process_time()
    flows = vbench._OfflineFlows(clip, s.flow_max_side, s.dd_min_eig)
    vbench._ms_and_dd(clip, flows, s.n_ms_pairs)
    w2, c2 = time.perf_counter(), time.process_time()
    [vbench.aesthetic_proxy(clip.rgb(i)) for i in vbench.middle_indices(clip.n, s.n_aq_frames)]
    w3, c3 = time.perf_counter(), time.process_time()
    [vbench.imaging_proxy(clip.rgb(i), s.iq_max_side) for i in vbench.middle_indices(clip.n, s.n_iq_frames)]
    w4, c4 = time.perf_counter(), time.process_time()
    t.update(decode=c1 - c0, msdd=c2 - c1, aq=c3 - c2, iq=c4 - c3, cpu=c4 - c0, wall=w4 - w0, flows=len(flows.small))
    return t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=8, help="videos scored through the process pool")
    ap.add_argument("--distinct", type=int, default=4, help="distinct creatives rendered")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--width", type=int, default=360)
    ap.add_argument("--height", type=int, default=640)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--seconds", type=float, default=12.0)
    a = ap.parse_args(argv)
    cv2.setNumThreads(1)
    s = vbench.OfflineSettings()
    print(f"[bench] offline settings: {s}; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        t0 = time.perf_counter()
        videos = [render(tmp, k, a.width, a.height, a.fps, a.seconds) for k in range(a.distinct)]
        print(f"[bench] rendered {len(videos)} creatives in {time.perf_counter() - t0:.1f} s")
        vbench.imaging_proxy(np.full((64, 64, 3), 128, np.uint8))  # load BRISQUE's model outside the timings
        rows = []
        for v in videos:
            st = staged(v, s)
            r = vbench.score_video(v)
            rows.append(st)
            vals = ", ".join(f"{r.labels[m]} = {r.value(m):.4f}" for m in vbench.METRICS)
            print(f"  {v.name}: {r.n_frames} frames; cpu {st['cpu']:.2f} s (decode {st['decode']:.2f}, MS+DD "
                  f"{st['msdd']:.2f} with {st['flows']} flows, AQ {st['aq']:.2f}, IQ {st['iq']:.2f}), wall "
                  f"{st['wall']:.2f} s; {vals}")
        cpu = float(np.mean([r["cpu"] for r in rows]))
        wall = float(np.mean([r["wall"] for r in rows]))
        print(f"[bench] one process: {cpu:.2f} s CPU, {wall:.2f} s wall per creative (target ~0.5 s CPU)")

        # the run scorer's pool over N pairs (copies, so none is cached)
        paths = StudyPaths(tmp / "data")
        for i in range(a.n):
            pd_ = paths.run_dir("pcg", "bench__offline__compositor") / f"u{i}__p"
            pd_.mkdir(parents=True)
            shutil.copyfile(videos[i % len(videos)], pd_ / "creative.mp4")
            with open(pd_ / "creative.mp4", "ab") as f:  # one distinct byte: a distinct cache key per copy
                f.write(bytes([i % 256]))
            write_json(pd_ / "manifest.json", PairManifest(
                pair_id=f"u{i}__p", task="pcg", run_name="bench__offline__compositor", system="nextads",
                director_backend="offline", producer_backend="compositor", user_id=f"u{i}", product_id="p",
                status="done", seed=1))
        t0 = time.perf_counter()
        df = vbench.score_runs(paths, "pcg", "offline", workers=a.workers)
        t_pool = time.perf_counter() - t0
        errors = int(df["error"].notna().sum())
        per = t_pool / a.n
        print(f"[bench] score_runs: {a.n} creatives with {a.workers} workers in {t_pool:.1f} s "
              f"({per:.2f} s per creative, {errors} error rows; includes starting the workers)")
        print(f"[bench] projection for 500 creatives: {per * 500 / 60:.1f} min with the pool "
              f"({cpu * 500 / max(a.workers, 1) / 60:.1f} min from the per-video CPU time on {a.workers} cores)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
