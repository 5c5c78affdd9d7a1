"""Benchmark: how well the offline user model recovers a hidden truth it was not written from.

Two sets: the embedded sample (generated here, ``--n-users`` per dataset; its hidden truth in
``<data-dir>/raw/sample``) and the hand-written histories of ``tests/data/handwritten_histories`` (hand-labelled
truth), written as real Qilin / MicroLens releases with hand-drawn images and videos under
``<data-dir>/handwritten`` by ``tests/handwritten.py`` and read by the study's loaders. For every user the offline Director's profile (``model_user``, the PCG path, or ``model_user_from_videos`` for a history with videos, the PCI path)
is compared with the truth by :func:`nextads_lib.results.recovery_scores`; prints the mean of each metric
per set and the time taken. The first line per dataset scores every focused user of the sample on their whole
history; ``--study-users`` also builds the benchmarks as notebooks 01/02 do (the shipped library, 50 users, the
study's thresholds) and scores the selected users on the histories the study models (PCI: without the host
video), the users and histories behind ``recovery.csv`` of ``make study``. Run from the repository root:

    .venv/bin/python scripts/bench_user_model.py [--n-users 60] [--data-dir build/bench_user_model] [--study-users]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from nextads_lib.backends import get_backend
from nextads_lib.bench import build_bench
from nextads_lib.config import DEFAULT_PRODUCTS_DIR, DEFAULT_SEED, StudyPaths
from nextads_lib.datasets import iter_microlens_users, iter_qilin_users
from nextads_lib.director import model_user, model_user_from_videos
from nextads_lib.products import build_library
from nextads_lib.results import RECOVERY_METRICS, recovery_scores
from nextads_lib.sample import ensure_sample, sample_info
from nextads_lib.schemas import GroundTruth, UserHistory
from nextads_lib.store import read_jsonl


def score(histories, truth: dict[str, GroundTruth], skip: set[str] = frozenset()) -> dict[str, float]:
    backend = get_backend("offline")
    names = sorted({n for g in truth.values() for n in g.interests})
    rows = []
    for h in histories:
        if h.user_id in skip or h.user_id not in truth:
            continue
        # the study's paths: PCG (Qilin) models a user from texts and images, PCI (MicroLens) annotates each
        # history video first (optical flow, palette per video) and aggregates
        if any(it.video_path for it in h.items):
            prof = model_user_from_videos(h, backend)[0]
        else:
            prof = model_user(h, backend)
        rows.append(recovery_scores(prof, truth[h.user_id], interest_names=names))
    out = {"users": float(len(rows))}
    for m in RECOVERY_METRICS:
        vals = [r[m] for r in rows if not math.isnan(r[m])]
        out[m] = float(np.mean(vals)) if vals else math.nan
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-users", type=int, default=60)
    ap.add_argument("--data-dir", default="build/bench_user_model")
    ap.add_argument("--datasets", default="qilin,microlens", help="embedded datasets (empty: none)")
    ap.add_argument("--study-users", action="store_true",
                    help="also score the users the study's benchmarks select, on the histories the study models")
    args = ap.parse_args()
    paths = StudyPaths.from_data_dir(args.data_dir)
    library = build_library(DEFAULT_PRODUCTS_DIR, paths) if args.study_users else None
    for ds in [d for d in args.datasets.split(",") if d]:
        t0 = time.time()
        d = ensure_sample(ds, paths, seed=DEFAULT_SEED, n_users=args.n_users)
        t1 = time.time()
        truth = {g.user_id: g for g in read_jsonl(paths.ground_truth(ds), GroundTruth)}
        diffuse = set((sample_info(ds, paths) or {}).get("info", {}).get("diffuse_users", []))
        hist = iter_qilin_users(d) if ds == "qilin" else iter_microlens_users(d)
        c0 = time.process_time()
        res = score(hist, truth, skip=diffuse)
        cpu = (time.process_time() - c0) / max(res["users"], 1.0)
        print(f"embedded {ds}: sample {t1 - t0:.1f} s, user model {time.time() - t1:.1f} s ({cpu:.2f} CPU s per user), "
              + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
        if library is not None:
            task = "pcg" if ds == "qilin" else "pci"
            build_bench(task, iter_qilin_users(d) if ds == "qilin" else iter_microlens_users(d), library, paths,
                        n_users=50, products_per_user=5, seed=DEFAULT_SEED)
            t2, c0 = time.time(), time.process_time()
            res = score(read_jsonl(paths.bench_users(task), UserHistory), truth)
            cpu = (time.process_time() - c0) / max(res["users"], 1.0)
            print(f"embedded {ds}, the study's {task.upper()}-Bench users: user model {time.time() - t2:.1f} s "
                  f"({cpu:.2f} CPU s per user), " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)
    hw = Path(__file__).resolve().parents[1] / "tests" / "data" / "handwritten_histories"
    if hw.is_dir():
        import sys  # noqa: PLC0415

        sys.path.insert(0, str(hw.parents[1]))
        from handwritten import load_handwritten  # noqa: PLC0415

        t0 = time.time()
        sets = load_handwritten(Path(args.data_dir) / "handwritten")  # real releases, read by the real loaders
        print(f"hand-written releases written and read in {time.time() - t0:.1f} s", flush=True)
        for ds, (hist, truth) in sets.items():
            res = score(hist, truth)
            print(f"hand-written {ds}: " + ", ".join(f"{k} {v:.2f}" for k, v in res.items()), flush=True)

if __name__ == "__main__":
    main()
