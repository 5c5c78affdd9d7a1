"""Benchmark of the PCG run: the full PCG-Bench for ``nextads`` on the embedded default, cold then warm.

    .venv/bin/python scripts/bench_pcg.py                    # 360x640, 15 fps, 2 workers
    .venv/bin/python scripts/bench_pcg.py --limit-users 10   # a quicker look

The inputs (product library and PCG-Bench) come from ``--data-dir`` (built there by notebooks 00 and 01 when
missing); the run goes to a fresh work dir (``--work``, emptied first) so the cold run starts with an empty
cache. Prints: cold time (target < 6 min on 2 cores), user-modeling calls against the number of users
(must be equal), warm rerun time (target < 5 % of cold).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time

from nextads_lib import pcg
from nextads_lib.config import StudyPaths, display_path
from nextads_lib.store import read_json


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--work", default="build/bench_pcg")
    ap.add_argument("--system", default="nextads")
    ap.add_argument("--limit-users", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--width", type=int, default=360)
    ap.add_argument("--height", type=int, default=640)
    ap.add_argument("--fps", type=float, default=15.0)
    a = ap.parse_args(argv)

    src = StudyPaths.from_data_dir(a.data_dir)
    if not (src.bench_pairs("pcg").is_file() and src.library_json.is_file()):
        from nextads_lib import study  # noqa: PLC0415

        print(f"[bench] building the product library and PCG-Bench under {display_path(src.root)}", flush=True)
        study.run("embedded", a.data_dir, only=["00_", "01_"])
    work = StudyPaths.from_data_dir(a.work)
    if work.root.exists():
        shutil.rmtree(work.root)
    for f in (src.library_json, src.bench_pairs("pcg"), src.bench_users("pcg")):
        dst = work.root / f.relative_to(src.root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)

    kw = dict(limit_users=a.limit_users, width=a.width, height=a.height, fps=a.fps, workers=a.workers, progress=False)
    t0 = time.perf_counter()
    cold = pcg.run_pcg(work, a.system, "offline", "compositor", **kw)
    t_cold = time.perf_counter() - t0
    stats_cold = read_json(work.run_dir("pcg", cold.run_name) / "stats.json")
    t0 = time.perf_counter()
    warm = pcg.run_pcg(work, a.system, "offline", "compositor", **kw)
    t_warm = time.perf_counter() - t0
    stats_warm = read_json(work.run_dir("pcg", warm.run_name) / "stats.json")

    n_users = stats_cold["users"]
    print(f"run {cold.run_name}: {cold.n_pairs} pairs, {n_users} users, {a.width}x{a.height} @ {a.fps:g} fps, "
          f"{a.workers} workers")
    print(f"  done {cold.done}, fallback {cold.fallback}, failed {cold.failed}")
    for f in cold.failures[:10]:
        print(f"    failed {f.pair_id} at {f.stage}: {f.reason[:160]}")
    print(f"cold run:  {t_cold:7.1f} s  ({t_cold / max(cold.n_pairs, 1):.2f} s/pair; target < 360 s for 250 pairs)")
    ok_calls = a.system != "nextads" or stats_cold["user_model_calls"] == n_users
    print(f"user-modeling calls: {stats_cold['user_model_calls']} for {n_users} users "
          f"({'equal' if ok_calls else 'NOT EQUAL'}); renders {stats_cold['renders']}, "
          f"render cache hits {stats_cold['render_cache_hits']}")
    ratio = t_warm / max(t_cold, 1e-9)
    print(f"warm rerun: {t_warm:7.2f} s  ({100 * ratio:.2f} % of cold; target < 5 %); pairs executed "
          f"{stats_warm['pairs_executed']}, renders {stats_warm['renders']}")
    return 0 if ok_calls and cold.failed == 0 and ratio < 0.05 else 1


if __name__ == "__main__":
    sys.exit(main())
