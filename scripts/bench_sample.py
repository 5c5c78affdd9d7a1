"""Benchmark: generating the embedded samples (cold) and calling ``ensure_sample`` again (warm); optionally
the Qilin loader streaming a synthetic release of realistic size (time and peak memory).

Target (issue 3): the samples plus both benchmarks under 3 minutes on 2 cores, so the two samples should
take under ~90 s together; a warm call under 1 s. Prints the figures; run from the repository root:

    .venv/bin/python scripts/bench_sample.py [--n-users 60] [--workers 2] [--data-dir build/bench_sample]
    .venv/bin/python scripts/bench_sample.py --loader-requests 100000   # + a Qilin-sized loader run
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from nextads_lib.config import DEFAULT_SEED, StudyPaths
from nextads_lib.datasets import iter_microlens_users, iter_qilin_users
from nextads_lib.sample import ensure_sample, sample_info


def du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def synthetic_qilin(root: Path, n_requests: int, n_notes: int, n_users: int, shards: int = 4) -> None:
    """A Qilin-format release of ``n_requests`` requests (10 details each) over ``n_notes`` notes with
    ~300-character contents, written in ``shards`` shards per config (no images)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    r = np.random.default_rng(0)
    fields = ("note_idx", "position", "click", "like", "comment", "collect", "share", "request_timestamp", "page_time")
    for cfg, n_req in (("recommendation_train", n_requests * 9 // 10), ("recommendation_test", n_requests // 10)):
        (root / cfg).mkdir(parents=True)
        for s in range(shards):
            n = n_req // shards
            k = 10
            vals = {f: np.zeros(n * k) for f in fields}
            vals["note_idx"] = r.integers(0, n_notes, n * k).astype(np.float64)
            vals["position"] = np.tile(np.arange(k, dtype=np.float64), n)
            vals["click"] = (r.random(n * k) < 0.15).astype(np.float64)
            vals["request_timestamp"] = np.repeat(1.7e12 + r.integers(0, 10**9, n).astype(np.float64), k)
            st = pa.StructArray.from_arrays([pa.array(vals[f]) for f in fields], names=list(fields))
            det = pa.ListArray.from_arrays(pa.array(np.arange(0, n * k + 1, k, dtype=np.int32)), st)
            pq.write_table(pa.table({
                "request_idx": pa.array(np.arange(n)), "session_idx": pa.array(np.arange(n)),
                "user_idx": pa.array(r.integers(0, n_users, n)),
                "recent_clicked_note_idxs": pa.array([[] for _ in range(n)], pa.list_(pa.int64())),
                "rec_result_details_with_idx": det,
            }), root / cfg / f"train-{s:05d}-of-{shards:05d}.parquet")
    (root / "notes").mkdir(parents=True)
    words = np.array("the a run coffee trip phone cat review step story city night calm".split())
    for s in range(shards):
        ids = np.arange(s, n_notes, shards)
        content = [" ".join(words[r.integers(0, len(words), 60)]) for _ in ids]
        pq.write_table(pa.table({
            "note_idx": pa.array(ids), "note_title": pa.array([f"note {i}" for i in ids]),
            "note_content": pa.array(content), "note_type": pa.array(np.ones(len(ids), np.int64)),
            "image_path": pa.array([[f"img/{i}.jpg"] for i in ids], pa.list_(pa.string())),
        }), root / "notes" / f"train-{s:05d}-of-{shards:05d}.parquet")


def bench_loader(root: Path, n_requests: int) -> None:
    from nextads_lib.datasets import LoadReport

    d = root / "qilin_synthetic"
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.perf_counter()
    synthetic_qilin(d, n_requests, n_notes=n_requests * 5, n_users=max(100, n_requests // 6))
    size = du(d)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t1 = time.perf_counter()
    rep = LoadReport()
    n_users = n_items = 0
    for u in iter_qilin_users(d, report=rep):
        n_users += 1
        n_items += len(u.items)
    dt = time.perf_counter() - t1
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"qilin loader: {n_requests} requests, {size:.0f} MB of parquet (written in {t1 - t0:.1f} s): "
          f"{n_users} users, {n_items} history items in {dt:.1f} s; peak RSS {rss0:.0f} -> {rss1:.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-users", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None, help="default: ensure_sample's (CPU count, at most 4)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--data-dir", default="build/bench_sample")
    ap.add_argument("--loader-requests", type=int, default=0, help="> 0: also stream a synthetic Qilin release")
    args = ap.parse_args()
    root = Path(args.data_dir)
    shutil.rmtree(root, ignore_errors=True)
    paths = StudyPaths.from_data_dir(root)
    workers = args.workers if args.workers is not None else min(os.cpu_count() or 1, 4)
    print(f"cpu cores: {os.cpu_count()}, workers: {workers}, users per dataset: {args.n_users}, "
          f"load average: {os.getloadavg()[0]:.1f}")
    total_cold = total_cpu = 0.0
    for ds in ("qilin", "microlens"):
        t0, c0 = time.perf_counter(), time.process_time()
        ch0 = os.times()
        d = ensure_sample(ds, paths, seed=args.seed, n_users=args.n_users, workers=workers)
        cold = time.perf_counter() - t0
        ch1 = os.times()
        cpu = (time.process_time() - c0) + (ch1.children_user - ch0.children_user) + (ch1.children_system - ch0.children_system)
        t1 = time.perf_counter()
        ensure_sample(ds, paths, seed=args.seed, n_users=args.n_users, workers=workers)
        warm = time.perf_counter() - t1
        t2 = time.perf_counter()
        users = list(iter_qilin_users(d) if ds == "qilin" else iter_microlens_users(d))
        load = time.perf_counter() - t2
        info = sample_info(ds, paths)["info"]
        sizes = {k: v for k, v in info.items() if k.startswith("n_") or k == "video_seconds"}
        lens = [len(u.items) for u in users]
        print(f"{ds:10s} cold {cold:6.1f} s (cpu {cpu:6.1f} s)  warm {warm * 1000:6.1f} ms  load {load:5.2f} s  "
              f"{du(d):6.1f} MB  {sizes}  history length {min(lens)}-{max(lens)} (mean {sum(lens) / len(lens):.1f})")
        total_cold += cold
        total_cpu += cpu
    print(f"both samples: cold {total_cold:.1f} s wall, {total_cpu:.1f} s cpu (target < 90 s); warm calls < 1 s")
    if args.loader_requests:
        bench_loader(root, args.loader_requests)


if __name__ == "__main__":
    main()
