"""Scale-out evidence: Ray's overhead on this machine, and the full study simulated on 1 to 64 workers.

    .venv/bin/python scripts/bench_scale.py --data-dir build/smoke --width 180 --height 320 --fps 8 --duration-s 10
    .venv/bin/python scripts/bench_scale.py --data-dir data            # the embedded profile's PCG (target <= 1.15)
    .venv/bin/python scripts/bench_scale.py --data-dir data --skip-overhead   # only the simulation and plot
    nice -n 15 .venv/bin/python scripts/bench_scale.py --profile smoke --skip-simulation  # smoke pairs, 3 stages

``--profile smoke`` takes the PCG settings of the smoke profile (``nextads_lib.study.PROFILES``: 180x320 at
8 fps, 10 s, 2 workers) and the smoke data (``--data-dir`` default ``build/smoke``, made by
``python -m nextads_lib.study run --profile smoke --data-dir build/smoke --only 00 01``), and times every
stage whose pools go through the executor on the run it made: PCG, the judge (``20_evaluate_judge``'s
``judge_all``, offline, 4 frames) and video quality (``21``'s ``score_runs``, offline); a ratio per stage and
for the three together. ``--stages pcg`` times PCG only.

1. **Overhead**: the same PCG run (``--system``, offline Director, compositor; inputs copied from
   ``--data-dir`` into fresh work dirs, so both start with an empty cache) with the local executor (a spawned
   pool of ``--workers``) and with Ray on a local instance of ``--workers`` CPUs. Ray's start-up (``ray.init``,
   once per session, or never on a running cluster) is timed apart from the run. Prints the ratio
   Ray / local of the runs' wall times (target <= 1.15).
2. **Simulation**: :func:`nextads_lib.planner.plan_run` for the paper's study size (``--pairs`` per system and
   task, 3 systems) at 1..64 workers, per-pair costs measured in ``--data-dir``'s runs and cache where there
   are some, else the planner's documented defaults:

   - open system: ``hf:`` Qwen3-VL Director and ``wan:`` Wan2.2-TI2V-5B Producer, one GPU per worker
     (``--cpus-per-gpu`` CPU workers each);
   - closed system: ``openai:gpt-4o`` Director and ``sora:sora-2`` Producer, N API workers, under the rate
     limits of :mod:`nextads_lib.ratelimit` (requests and tokens per minute).

   Writes ``docs/scale_out.csv`` and ``docs/scale_out.png`` (wall time and cost vs workers) and prints where
   each curve flattens and which resource bounds it there.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

from nextads_lib import executor, pcg, planner
from nextads_lib.config import StudyPaths, display_path, project_root
from nextads_lib.store import read_json

WORKERS = (1, 2, 4, 8, 16, 32, 64)
#: USD per GPU-hour used to price the open system's GPU time (an on-demand 24-80 GB cloud GPU; edit)
GPU_USD_PER_HOUR = 2.0
OPEN = ("hf:models/Qwen3-VL-8B-Instruct", "wan:models/Wan2.2-TI2V-5B-Diffusers")
CLOSED = ("openai:gpt-4o", "sora:sora-2")


def fresh_copy(src: StudyPaths, dst_dir: Path) -> StudyPaths:
    if dst_dir.exists():
        shutil.rmtree(dst_dir)
    dst = StudyPaths.from_data_dir(str(dst_dir))
    for f in (src.library_json, src.bench_pairs("pcg"), src.bench_users("pcg")):
        out = dst.root / f.relative_to(src.root)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(f, out)
    return dst


def overhead(a: argparse.Namespace, src: StudyPaths) -> dict[str, float]:
    kw = dict(limit_users=a.limit_users, width=a.width, height=a.height, fps=a.fps, duration_s=a.duration_s,
              workers=a.workers, progress=False)
    work = Path(a.work)
    out: dict[str, float] = {}
    for rep in range(a.repeat):
        for kind in ("local", "ray"):
            paths = fresh_copy(src, work / f"{kind}{rep}")
            if kind == "ray":
                t0 = time.perf_counter()
                executor.ray_init("", num_cpus=a.workers)
                out["ray_init_s"] = out.get("ray_init_s", 0.0) + time.perf_counter() - t0
            t0 = time.perf_counter()
            with executor.use(kind, num_cpus=a.workers):
                s = pcg.run_pcg(paths, a.system, "offline", "compositor", **kw)
                dt = time.perf_counter() - t0
                stats = read_json(paths.run_dir("pcg", s.run_name) / "stats.json")
                assert s.failed == 0, s.failures
                out[f"{kind}_s"] = out.get(f"{kind}_s", 0.0) + dt
                out[f"{kind}_pcg_s"] = out.get(f"{kind}_pcg_s", 0.0) + dt
                print(f"[overhead] {kind:5s} rep {rep} pcg:   {dt:7.1f} s for {s.n_pairs} pairs, {stats['users']} users, "
                      f"{stats['workers']} workers", flush=True)
                for stage in [x for x in a.stages.split(",") if x in ("judge", "vq")]:
                    t0 = time.perf_counter()
                    if stage == "judge":
                        from nextads_lib import judge  # noqa: PLC0415
                        from nextads_lib.backends import get_backend  # noqa: PLC0415

                        n = len(judge.judge_all(paths, "pcg", get_backend("offline", cache_dir=paths.cache),
                                                n_frames=4, workers=a.workers, runs=[s.run_name])["pcg"])
                    else:
                        from nextads_lib import vbench  # noqa: PLC0415

                        n = len(vbench.score_runs(paths, "pcg", "offline", workers=a.workers, runs=[s.run_name]))
                    dt = time.perf_counter() - t0
                    out[f"{kind}_s"] += dt
                    out[f"{kind}_{stage}_s"] = out.get(f"{kind}_{stage}_s", 0.0) + dt
                    print(f"[overhead] {kind:5s} rep {rep} {stage + ':':6s} {dt:7.1f} s for {n} rows", flush=True)
    executor.shutdown_ray()
    out = {k: v / a.repeat for k, v in out.items()}
    out["ratio"] = out["ray_s"] / out["local_s"]
    for stage in ("pcg", "judge", "vq"):
        if f"ray_{stage}_s" in out:
            out[f"ratio_{stage}"] = out[f"ray_{stage}_s"] / out[f"local_{stage}_s"]
    return out


def simulate(a: argparse.Namespace, src: StudyPaths) -> list[dict[str, object]]:
    rows = []
    for label, (director, producer) in (("open (Qwen3-VL + Wan2.2, GPUs)", OPEN), ("closed (GPT-4o + Sora 2, API)", CLOSED)):
        for w in WORKERS:
            tot = {"wall_s": 0.0, "cost_usd": 0.0, "gpu_hours": 0.0, "calls": 0}
            bounds = []
            for system in ("nextads", "generic", "retrieval"):
                gpu = label.startswith("open")
                p = planner.plan_run(src, "pcg", system, director, producer, n_pairs=a.pairs, duration_s=a.study_duration_s,
                                     gpus=w if gpu else 0, api_concurrency=w if not gpu else 4,
                                     cpu_workers=w * a.cpus_per_gpu if gpu else w)
                tot["wall_s"] += p.wall_s  # the three systems run one after the other
                tot["cost_usd"] += p.cost_usd + p.gpu_hours * GPU_USD_PER_HOUR
                tot["gpu_hours"] += p.gpu_hours
                tot["calls"] += p.model_calls
                bounds.append(p.bound_by)
            rows.append({"system": label, "workers": w, "wall_h": round(tot["wall_s"] / 3600, 3),
                         "cost_usd": round(tot["cost_usd"], 2), "gpu_hours": round(tot["gpu_hours"], 2),
                         "model_calls": tot["calls"], "bound_by": "/".join(dict.fromkeys(bounds))})
    return rows


def flattening(rows: list[dict[str, object]]) -> list[str]:
    """Per system: the first worker count after which doubling the workers gains less than 10 %."""
    out = []
    for system in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == system]
        flat = next((r0 for r0, r1 in zip(rs, rs[1:]) if float(r1["wall_h"]) > 0.9 * float(r0["wall_h"])), None)
        if flat is None:
            out.append(f"{system}: still scaling at {rs[-1]['workers']} workers (bound by {rs[-1]['bound_by']})")
        else:
            out.append(f"{system}: flattens at {flat['workers']} workers, {flat['wall_h']} h, bound by {flat['bound_by']}")
    return out


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    for system in dict.fromkeys(r["system"] for r in rows):
        rs = [r for r in rows if r["system"] == system]
        ax1.plot([r["workers"] for r in rs], [r["wall_h"] for r in rs], marker="o", label=system)
        ax2.plot([r["workers"] for r in rs], [r["cost_usd"] for r in rs], marker="o", label=system)
        last = rs[-1]
        ax1.annotate(f"bound: {last['bound_by']}", (last["workers"], last["wall_h"]), fontsize=7,
                     xytext=(-90, 8), textcoords="offset points")
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("workers (open: GPUs; closed: API workers)")
        ax.grid(alpha=0.3)
    ax1.set_yscale("log")
    ax1.set_ylabel("wall time of PCG, 3 systems (hours, simulated)")
    ax2.set_ylabel(f"cost (USD: API + GPU-hours x {GPU_USD_PER_HOUR}/h)")
    ax1.legend(fontsize=8)
    fig.suptitle("Scale-out of the study (simulated by nextads_lib.planner from per-pair costs)", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=("", "smoke"), default="",
                    help="smoke: the smoke profile's PCG settings and data (build/smoke), stages pcg,judge,vq")
    ap.add_argument("--stages", default="", help="comma list of pcg,judge,vq (default: pcg; smoke: all three)")
    ap.add_argument("--skip-simulation", action="store_true")
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--work", default="build/bench_scale")
    ap.add_argument("--system", default="nextads")
    ap.add_argument("--limit-users", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--width", type=int, default=360)
    ap.add_argument("--height", type=int, default=640)
    ap.add_argument("--fps", type=float, default=15.0)
    ap.add_argument("--duration-s", type=float, default=12.0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--pairs", type=int, default=500, help="pairs per system in the simulated study")
    ap.add_argument("--study-duration-s", type=float, default=10.0, help="creative length in the simulated study")
    ap.add_argument("--cpus-per-gpu", type=int, default=8)
    ap.add_argument("--out", default="docs/scale_out")
    a = ap.parse_args(argv)
    if a.profile == "smoke":
        from nextads_lib.study import PROFILES  # noqa: PLC0415

        smoke = PROFILES["smoke"]["10_run_pcg"]
        a.width, a.height, a.fps = int(smoke["width"]), int(smoke["height"]), float(smoke["fps"])
        a.duration_s, a.workers = float(smoke["duration_s"]), int(smoke["workers"])
        a.data_dir = a.data_dir or "build/smoke"
        a.stages = a.stages or "pcg,judge,vq"
    a.data_dir = a.data_dir or "data"
    a.stages = a.stages or "pcg"

    src = StudyPaths.from_data_dir(a.data_dir)
    if not (src.bench_pairs("pcg").is_file() and src.library_json.is_file()):
        print(f"[bench] no PCG-Bench under {display_path(src.root)}: run notebooks 00 and 01 first", file=sys.stderr)
        return 2
    if not a.skip_overhead:
        o = overhead(a, src)
        import os  # noqa: PLC0415

        for stage in ("pcg", "judge", "vq"):
            if f"ratio_{stage}" in o:
                print(f"[overhead] {stage:5s}: local {o[f'local_{stage}_s']:7.1f} s, Ray {o[f'ray_{stage}_s']:7.1f} s: "
                      f"ratio {o[f'ratio_{stage}']:.3f}", flush=True)
        print(f"[overhead] local {o['local_s']:.1f} s, Ray {o['ray_s']:.1f} s (+ ray.init {o['ray_init_s']:.1f} s, "
              f"once per session): ratio {o['ratio']:.3f} (target <= 1.15); load average after the run "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs", flush=True)
    if a.skip_simulation:
        return 0
    rows = simulate(a, src)
    out = project_root() / a.out if not Path(a.out).is_absolute() else Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    plot(rows, out.with_suffix(".png"))
    for r in rows:
        print(f"[simulate] {r['system']:32s} {r['workers']:3d} workers: {r['wall_h']:9.2f} h  {r['cost_usd']:9.2f} USD  "
              f"bound by {r['bound_by']}")
    for line in flattening(rows):
        print(f"[simulate] {line}")
    print(f"[simulate] wrote {display_path(out.with_suffix('.csv'))} and {display_path(out.with_suffix('.png'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
