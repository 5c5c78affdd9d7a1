"""Benchmark of the study's data foundation: generating the embedded samples and building PCG-Bench and
PCI-Bench at full size, cold (empty data dir) then warm (everything cached), each in a fresh process (as a
notebook rerun is a fresh kernel, so model loading and imports are counted).

    .venv/bin/python scripts/bench_benchmarks.py                  # 60 sample users, 50 x 5 pairs per task
    .venv/bin/python scripts/bench_benchmarks.py --workers 1      # sample media rendered in one process

Targets (issue 3): cold under 3 minutes on 2 cores; warm under 10 s. The work dir (``--work``, default
``build/bench_benchmarks``) is emptied first. Prints one line per phase and step, then the verdicts; ``--json``
also writes the figures there.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

TARGET_COLD_S, TARGET_WARM_S = 180.0, 10.0


def phase(work: str, n_users: int, sample_users: int, products_per_user: int, workers: int, seed: int) -> dict:
    """One pass: library, both samples, both benchmarks (what notebooks 00, 01 and 02 do); step -> seconds."""
    t: dict[str, float] = {}
    t0 = time.perf_counter()
    from nextads_lib import bench, datasets, products, sample  # noqa: PLC0415
    from nextads_lib.config import DEFAULT_PRODUCTS_DIR, StudyPaths  # noqa: PLC0415

    paths = StudyPaths.from_data_dir(work)
    t["imports"] = time.perf_counter() - t0

    def step(name: str, fn):  # noqa: ANN001
        s = time.perf_counter()
        out = fn()
        t[name] = time.perf_counter() - s
        return out

    library = step("library", lambda: products.build_library(DEFAULT_PRODUCTS_DIR, paths))
    qdir = step("sample_qilin", lambda: sample.ensure_sample("qilin", paths, seed, n_users=sample_users, workers=workers))
    mdir = step("sample_microlens",
                lambda: sample.ensure_sample("microlens", paths, seed, n_users=sample_users, workers=workers))
    reports = {}
    for task, users in (("pcg", lambda: datasets.iter_qilin_users(qdir)),
                        ("pci", lambda: datasets.iter_microlens_users(mdir))):
        rep = step(f"bench_{task}", lambda task=task, users=users: bench.build_bench(
            task, users(), library, paths, n_users=n_users, products_per_user=products_per_user, seed=seed))
        reports[task] = {"selected": rep.n_users_selected, "passing": rep.n_users_passing,
                         "pairs": sum(1 for _ in paths.bench_pairs(task).open())}
    t["total"] = time.perf_counter() - t0
    return {"seconds": {k: round(v, 2) for k, v in t.items()}, "reports": reports,
            "digests": {p.name: _sha(p) for p in sorted(paths.benchmarks.iterdir()) if p.is_file()}}


def _sha(p: Path) -> str:
    import hashlib  # noqa: PLC0415

    return hashlib.sha256(p.read_bytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="build/bench_benchmarks")
    ap.add_argument("--n-users", type=int, default=50)
    ap.add_argument("--products-per-user", type=int, default=5)
    ap.add_argument("--sample-users", type=int, default=60)
    ap.add_argument("--workers", type=int, default=2, help="processes rendering the sample's media")
    ap.add_argument("--seed", type=int, default=20260)
    ap.add_argument("--json", action="store_true", help="also write <work>/bench_benchmarks.json")
    ap.add_argument("--warm-only", action="store_true",
                    help="keep the work dir (built before with the same settings) and time warm passes only")
    ap.add_argument("--phase", action="store_true", help=argparse.SUPPRESS)  # internal: one pass, JSON on stdout
    a = ap.parse_args(argv)
    if a.phase:
        print("PHASE " + json.dumps(phase(a.work, a.n_users, a.sample_users, a.products_per_user, a.workers, a.seed)))
        return 0

    from nextads_lib.config import resolve  # noqa: PLC0415

    work = resolve(a.work)
    if work.exists() and not a.warm_only:
        shutil.rmtree(work)
    cmd = [sys.executable, __file__, "--phase", "--work", str(work), "--n-users", str(a.n_users),
           "--products-per-user", str(a.products_per_user), "--sample-users", str(a.sample_users),
           "--workers", str(a.workers), "--seed", str(a.seed)]
    res = {}
    print(f"[bench] cores: {os.cpu_count()} (load average {os.getloadavg()[0]:.1f}); work dir {a.work}", flush=True)
    for name in (("warm", "warm2") if a.warm_only else ("cold", "warm")):
        t0, ru0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        if out.returncode != 0:
            print(out.stdout[-3000:], out.stderr[-3000:], sep="\n")
            raise SystemExit(f"[bench] {name} phase failed (exit {out.returncode})")
        line = next(x for x in out.stdout.splitlines() if x.startswith("PHASE "))
        r = json.loads(line[6:])
        r["process_wall_s"], r["cpu_s"] = round(wall, 2), round(cpu, 2)
        res[name] = r
        steps = ", ".join(f"{k} {v:.1f} s" for k, v in r["seconds"].items() if k != "total")
        print(f"[bench] {name}: {wall:.1f} s wall, {cpu:.1f} s CPU (all processes) in a fresh process ({steps})",
              flush=True)
    first, second = list(res)
    for task, r in res[first]["reports"].items():
        print(f"[bench] {task}: {r['pairs']} pairs, {r['selected']} users selected, {r['passing']} passing")
    same = res[first]["digests"] == res[second]["digests"]
    print(f"[bench] {second} files byte-identical to {first}: {same} (a sample CODE_VERSION changed between the "
          "passes would regenerate it: rerun then)")
    # the target covers the samples and the benchmarks (the library is notebook 00's): process wall - library
    cold, warm = (res[k]["process_wall_s"] - res[k]["seconds"]["library"] for k in (first, second))
    if not a.warm_only:
        print(f"[bench] samples + benchmarks, cold: {cold:.1f} s (target < {TARGET_COLD_S:.0f} s on 2 cores): "
              f"{'OK' if cold < TARGET_COLD_S else 'OVER'}")
    print(f"[bench] samples + benchmarks, warm: {warm:.1f} s (target < {TARGET_WARM_S:.0f} s): "
          f"{'OK' if warm < TARGET_WARM_S else 'OVER'}")
    print(f"[bench] load average now {os.getloadavg()[0]:.1f}: on a shared machine wall times are inflated; "
          f"CPU seconds / 2 approximate the wall time on 2 idle cores")
    if a.json:
        (work / "bench_benchmarks.json").write_text(json.dumps(res, indent=2, sort_keys=True) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
