"""Benchmark: generating the embedded samples (cold) and calling ``ensure_sample`` again (warm).

Target (issue 3): the samples plus both benchmarks under 3 minutes on 2 cores, so the two samples should
take under ~90 s together; a warm call under 1 s. Prints the figures; run from the repository root:

    .venv/bin/python scripts/bench_sample.py [--n-users 60] [--workers 2] [--data-dir build/bench_sample]
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from nextads_lib.config import DEFAULT_SEED, StudyPaths
from nextads_lib.datasets import iter_microlens_users, iter_qilin_users
from nextads_lib.sample import ensure_sample, sample_info


def du(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-users", type=int, default=60)
    ap.add_argument("--workers", type=int, default=None, help="default: ensure_sample's (CPU count, at most 4)")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--data-dir", default="build/bench_sample")
    args = ap.parse_args()
    root = Path(args.data_dir)
    shutil.rmtree(root, ignore_errors=True)
    paths = StudyPaths.from_data_dir(root)
    print(f"cpu cores: {os.cpu_count()}, workers: {args.workers}, users per dataset: {args.n_users}")
    total_cold = total_cpu = 0.0
    for ds in ("qilin", "microlens"):
        t0, c0 = time.perf_counter(), time.process_time()
        ch0 = os.times()
        d = ensure_sample(ds, paths, seed=args.seed, n_users=args.n_users, workers=args.workers)
        cold = time.perf_counter() - t0
        ch1 = os.times()
        cpu = (time.process_time() - c0) + (ch1.children_user - ch0.children_user) + (ch1.children_system - ch0.children_system)
        t1 = time.perf_counter()
        ensure_sample(ds, paths, seed=args.seed, n_users=args.n_users, workers=args.workers)
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


if __name__ == "__main__":
    main()
