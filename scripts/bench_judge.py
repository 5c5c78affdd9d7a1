"""Benchmark of the offline proxy judge: judges N creatives of the embedded size (360x640, 15 fps, 12 s) and
projects the time for the 500 offline creatives of both benchmarks.

    .venv/bin/python scripts/bench_judge.py                 # 12 synthetic creatives (4 users x 3 products)
    .venv/bin/python scripts/bench_judge.py --users 6 --workers 2 --n-frames 8
    .venv/bin/python scripts/bench_judge.py --data-dir data --task pcg   # judge the runs already under data/

Target (issue 7): judge + video quality for the 500 offline creatives in under 5 minutes on 2 cores, so the
offline judge should stay under ~0.3 s per creative. Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nextads_lib import embed, judge, media  # noqa: E402
from nextads_lib.backends import get_backend  # noqa: E402
from nextads_lib.config import DEFAULT_PRODUCTS_DIR, StudyPaths  # noqa: E402
from nextads_lib.schemas import (  # noqa: E402
    HistoryItem,
    PairManifest,
    RunSummary,
    Slot,
    Storyboard,
    UserHistory,
)
from nextads_lib.seed import rng  # noqa: E402
from nextads_lib.store import write_json, write_jsonl  # noqa: E402

W, H, FPS, SECONDS = 360, 640, 15.0, 12.0
TEXTS = ["Latte art practice at the cafe", "Home workout: squats and cardio", "Weekend trip to the old city",
         "New phone unboxing and camera test", "Console game night with friends", "Cozy apartment decor ideas"]


def synth_study(root: Path, n_users: int, n_products: int) -> StudyPaths:
    """A study with ``n_users`` x ``n_products`` creatives of the embedded size (moving product art on a
    palette background), real product library, histories with images."""
    from PIL import Image  # noqa: PLC0415

    from nextads_lib import products  # noqa: PLC0415

    paths = StudyPaths(root)
    lib = products.build_library(DEFAULT_PRODUCTS_DIR, paths)
    prods = lib.products[:n_products]
    users = []
    run = paths.run_dir("pcg", "nextads__offline__compositor__paper")
    for u in range(n_users):
        g = rng(1, "bench_judge", u)
        colours = g.integers(0, 256, size=(4, 3))
        items = []
        for i in range(12):
            p = root / "hist" / f"u{u}_{i}.png"
            p.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((160, 120, 3), colours[i % 4], np.uint8)).save(p)
            t = TEXTS[(u + i % 2) % len(TEXTS)]
            items.append(HistoryItem(item_id=f"u{u}_{i}", title=t, text=f"{t} #{i}", image_paths=[str(p)]))
        users.append(UserHistory(dataset="qilin", user_id=f"u{u}", items=items))
        for k, prod in enumerate(prods):
            d = run / f"u{u}__{prod.id}"
            d.mkdir(parents=True, exist_ok=True)
            art = np.asarray(Image.open(prod.images[0].path).convert("RGB").resize((200, 200)))
            frames = []
            for f in range(int(SECONDS * FPS)):
                fr = np.empty((H, W, 3), np.uint8)
                fr[:] = colours[(f // 45) % 4]
                x = 40 + (f * 2) % 120
                fr[200:400, x:x + 200] = art
                frames.append(fr)
            media.write_video(d / "creative.mp4", frames, FPS)
            text = f"{TEXTS[u % len(TEXTS)]} with {prod.name}. {prod.selling_points[0]}. {prod.slogan}"
            write_json(d / "plan.json", Storyboard(
                product_id=prod.id, user_id=f"u{u}", backend="offline", personalized=True, hook=text.split(".")[0],
                duration_s=SECONDS, cta=f"Get {prod.name}",
                slots=[Slot(index=j, start_s=3.0 * j, end_s=3.0 * (j + 1), role="hook" if j == 0 else "body",
                            camera="static", composition=f"scene {j} of {TEXTS[u % len(TEXTS)]}", narration=text,
                            on_screen_text=prod.name) for j in range(4)]))
            write_json(d / "manifest.json", PairManifest(
                pair_id=d.name, task="pcg", run_name=run.name, system="nextads", director_backend="offline",
                producer_backend="compositor", user_id=f"u{u}", product_id=prod.id, status="done", seed=1))
    write_jsonl(paths.bench_users("pcg"), users)
    n = n_users * len(prods)
    write_json(run / "summary.json", RunSummary(task="pcg", run_name=run.name, system="nextads",
                                                director_backend="offline", producer_backend="compositor", n_pairs=n,
                                                done=n, fallback=0, failed=0, seconds=0, cost_usd=0))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--products", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-frames", type=int, default=8)
    ap.add_argument("--data-dir", default="", help="judge the runs of an existing data dir instead")
    ap.add_argument("--task", default="pcg")
    a = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_judge_") as tmp:
        t0 = time.perf_counter()
        if a.data_dir:
            paths = StudyPaths.from_data_dir(a.data_dir)
        else:
            paths = synth_study(Path(tmp) / "data", a.users, a.products)
        t_setup = time.perf_counter() - t0
        t0 = time.perf_counter()
        embed.topic_matrix()  # MiniLM load: once per process, not per creative
        t_load = time.perf_counter() - t0
        backend = get_backend("offline", cache_dir=Path(tmp) / "cache")
        rows = []
        t0, c0 = time.perf_counter(), time.process_time()
        for run in judge.list_runs(paths, a.task):
            rows += judge.judge_run(paths, a.task, run, backend, n_frames=a.n_frames, workers=a.workers)
        cold, cold_cpu = time.perf_counter() - t0, time.process_time() - c0
        backend2 = get_backend("offline", cache_dir=Path(tmp) / "cache")
        t0 = time.perf_counter()
        for run in judge.list_runs(paths, a.task):
            judge.judge_run(paths, a.task, run, backend2, n_frames=a.n_frames, workers=a.workers)
        warm = time.perf_counter() - t0

    n = len({(r["run"], r["pair_id"]) for r in rows if r["pair_id"]})
    missing = sum(r["score"] is None for r in rows)
    per = cold / max(n, 1)
    print(f"creatives judged       : {n} ({len(rows)} judgments, {missing} missing), n_frames={a.n_frames}, "
          f"workers={a.workers}")
    print(f"setup (synthetic data) : {t_setup:.1f} s")
    print(f"MiniLM load (once)     : {t_load:.1f} s")
    print(f"judge, cold cache      : {cold:.2f} s wall = {per:.3f} s per creative (target <= 0.3 s); "
          f"{cold_cpu:.2f} s CPU = {cold_cpu / max(n, 1):.3f} CPU-s per creative")
    print(f"judge, rerun (cached)  : {warm:.2f} s = {warm / max(n, 1):.4f} s per creative")
    print(f"projected 500 creatives: {500 * per:.0f} s cold + {t_load:.0f} s load = {(500 * per + t_load) / 60:.1f} min "
          f"(wall, this machine's load); {500 * cold_cpu / max(n, 1) / 60:.1f} CPU-min")


if __name__ == "__main__":
    main()
