"""Benchmark of the PCI run: the full PCI-Bench (250 pairs) for ``nextads`` on the embedded default, cold then warm.

    .venv/bin/python scripts/bench_pci.py                    # 8 s segments, 2 workers
    .venv/bin/python scripts/bench_pci.py --limit-users 10   # a quicker look

The inputs (product library and PCI-Bench, whose host and history videos stay where notebook 02 found them)
come from ``--data-dir`` (built there by notebooks 00 and 02 when missing); the run goes to a fresh work dir
(``--work``, emptied first) so the cold run starts with an empty cache. Prints: cold time (target < 8 min on
2 cores), model calls (video annotations: each distinct history video once, + one profile per user, + host
summary and integration point per pair), renders, the CPU seconds per pair (with the projection to 250 pairs on
free cores: on a shared machine the wall time says little), the seam continuity, and the warm rerun time.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import time

from nextads_lib import pci
from nextads_lib.config import StudyPaths, display_path, resolve
from nextads_lib.store import read_json


def _cpu() -> float:
    """User + system CPU seconds of this process and its finished children (the pool's workers)."""
    me, ch = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + ch.ru_utime + ch.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--work", default="build/bench_pci")
    ap.add_argument("--system", default="nextads")
    ap.add_argument("--limit-users", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--duration", type=float, default=8.0)
    a = ap.parse_args(argv)

    src = StudyPaths.from_data_dir(a.data_dir)
    if not (src.bench_pairs("pci").is_file() and src.library_json.is_file()):
        from nextads_lib import study  # noqa: PLC0415

        print(f"[bench] building the product library and PCI-Bench under {display_path(src.root)}", flush=True)
        study.run("embedded", a.data_dir, only=["00_", "02_"])
    work = StudyPaths.from_data_dir(a.work)
    if work.root.exists():
        shutil.rmtree(work.root)
    for f in (src.library_json, src.bench_pairs("pci"), src.bench_users("pci")):
        dst = work.root / f.relative_to(src.root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, dst)

    pairs, users, _ = pci.load_inputs(work)
    kw = dict(limit_users=a.limit_users, duration_s=a.duration, workers=a.workers, progress=False)
    t0, c0 = time.perf_counter(), _cpu()
    cold = pci.run_pci(work, a.system, "offline", "compositor", **kw)
    t_cold, c_cold = time.perf_counter() - t0, _cpu() - c0
    run_dir = work.run_dir("pci", cold.run_name)
    stats = read_json(run_dir / "stats.json")
    t0 = time.perf_counter()
    warm = pci.run_pci(work, a.system, "offline", "compositor", **kw)
    t_warm = time.perf_counter() - t0
    stats_warm = read_json(run_dir / "stats.json")

    ran = {p.user_id for p in pairs} if not a.limit_users else set(list(dict.fromkeys(p.user_id for p in pairs))[: a.limit_users])
    videos = {str(resolve(it.video_path)) for u in ran for it in users[u].items if it.video_path}
    print(f"run {cold.run_name}: {cold.n_pairs} pairs, {stats['users']} users, {a.duration:g} s segments, "
          f"{a.workers} workers")
    print(f"  done {cold.done}, failed {cold.failed}")
    for f in cold.failures[:10]:
        print(f"    failed {f.pair_id} at {f.stage}: {f.reason[:160]}")
    print(f"cold run:  {t_cold:7.1f} s  ({t_cold / max(cold.n_pairs, 1):.2f} s/pair; target < 480 s for 250 pairs)")
    per = c_cold / max(cold.n_pairs, 1)
    print(f"CPU time:  {c_cold:7.1f} s  ({per:.2f} CPU s/pair, this process and its workers); on {a.workers} free "
          f"cores 250 pairs would take about {250 * per / max(a.workers, 1):.0f} s")
    if a.system == "nextads":
        print(f"user-modeling calls: {stats['user_model_calls']} (distinct history videos {len(videos)} annotated once "
              f"+ {stats['users']} profiles = {len(videos) + stats['users']} at most)")
    print(f"renders {stats['renders']}, render cache hits {stats['render_cache_hits']}")
    seams = pci.read_seams(work, cold.run_name)
    print(f"seams ({seams.n} integrated): change in {seams.seam_change_in_mean}, out {seams.seam_change_out_mean} "
          f"(host median {seams.host_median_change_mean}); ratio medians in {seams.seam_ratio_in_median}, out "
          f"{seams.seam_ratio_out_median}; smooth seams {seams.smooth_fraction}")
    ratio = t_warm / max(t_cold, 1e-9)
    print(f"warm rerun: {t_warm:7.2f} s  ({100 * ratio:.2f} % of cold); pairs executed {stats_warm['pairs_executed']}, "
          f"renders {stats_warm['renders']}")
    return 0 if cold.failed == 0 and stats_warm["pairs_executed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
