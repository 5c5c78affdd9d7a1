"""What a PCG or PCI run will do and cost, said before any paid or GPU call, and checked after it.

    plan = planner.plan_run(paths, "pcg", "nextads", "openai:gpt-4o", "wan:models/Wan2.2-TI2V-5B-Diffusers",
                            gpus=8, api_concurrency=16)
    print(planner.format_plan(plan))
    planner.check_setup("openai:gpt-4o", "wan:models/Wan2.2-TI2V-5B-Diffusers")   # one clear error, or nothing
    planner.check_budget(plan, max_cost_usd=50.0)                                  # BudgetExceeded before the run
    ... run ...
    planner.estimate_vs_spent(plan, paths)                                         # a table for the notebook

    python -m nextads_lib.planner plan --task pcg --system nextads --director-backend openai:gpt-4o \\
        --producer-backend sora:sora-2 --pairs 500 --gpus 0 --api-concurrency 8

**Model calls** are counted from the run's structure for the pairs still to do (a pair with a finished
manifest and final artifact is skipped, as the run skips it), assuming an empty model cache:

- PCG ``nextads``: one ``director.user_profile`` per user, one ``director.match`` and one
  ``director.storyboard`` per pair (an upper bound: a pair that falls back to the generic plan shares that
  plan's call with every other fallback of its product);
- PCG/PCI ``generic``: one ``director.storyboard`` per product (the request carries no user data);
- PCI ``nextads``: one ``director.annotate_video`` per history video and one ``director.user_profile_videos``
  per user, one ``pci.host_summary`` per host video, one ``pci.integration_point`` and one
  ``director.storyboard`` per pair;
- ``retrieval``: none. A storyboard sent back for revision adds ``director.storyboard_revise`` calls at the
  measured revision rate.

**Tokens and latency per call** come from recorded measurements when there are some: the model cache's
entries (``cache/model``: input and output tokens per backend and task) and the run manifests' usage
(latency of uncached calls per backend); else :data:`DEFAULT_TOKENS` and :data:`DEFAULT_LATENCY_S`.
**Cost**: tokens x the price table (:mod:`nextads_lib.backends.pricing`) + seconds of video x the video
Producer's price per second. **GPU-hours**: Wan renders (measured seconds per second of video, else
:data:`WAN_GPU_S_PER_VIDEO_S`) and ``hf:`` Director calls. **Wall time** at the given parallelism is the
largest of the CPU, API (latency / concurrency, and the requests- and tokens-per-minute limits) and GPU
times, and of the longest user's job (a user's pairs run one after another); the plan names which one
bounds it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pydantic import Field

from .config import StudyPaths
from .executor import BudgetExceeded
from .schemas import Schema

#: (input, output) tokens of one call by task when nothing was measured: the prompt sizes of the Director's
#: requests (images and sampled frames count as ~258 tokens each, the providers' low-detail rate).
DEFAULT_TOKENS: dict[str, tuple[int, int]] = {
    "director.user_profile": (2600, 450),
    "director.user_profile_videos": (2800, 450),
    "director.annotate_video": (1900, 250),
    "director.match": (700, 250),
    "director.storyboard": (1300, 700),
    "director.storyboard_revise": (2100, 700),
    "pci.host_summary": (2300, 200),
    "pci.integration_point": (2000, 200),
    "reflector.directives": (2000, 600),
}
#: seconds per uncached call by backend kind when nothing was measured
DEFAULT_LATENCY_S = {"openai": 6.0, "gemini": 5.0, "hf": 12.0, "offline": 0.05}
#: GPU seconds per second of Wan2.2-TI2V-5B video (its README: ~9 minutes for a 5 s 720p clip on one 24 GB GPU)
WAN_GPU_S_PER_VIDEO_S = 9 * 60 / 5
#: CPU seconds per pair outside model calls (grounding, compositor render, post, encode) when nothing was
#: measured: the smoke profile's PCG on this 2-core machine
DEFAULT_CPU_S_PER_PAIR = {"pcg": 8.0, "pci": 14.0}
#: seconds one Sora/Veo clip job takes end to end (queue + generation) when nothing was measured
DEFAULT_VIDEO_API_LATENCY_S = 120.0


class SetupError(RuntimeError):
    """A backend string that cannot run here: one message naming the backend and what is missing."""


class RunPlan(Schema):
    """The estimate of one run (``planner.plan_run``)."""

    task: str
    system: str
    run_name: str
    director_backend: str
    producer_backend: str
    pairs: int = Field(description="pairs in the run")
    pairs_todo: int = Field(description="pairs still to do (the rest are finished and reused)")
    todo_pair_ids: list[str] = Field(default_factory=list)
    users: int = 0
    model_calls: int = 0
    calls_by_task: dict[str, int] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    video_seconds: float = 0.0
    cost_usd: float = 0.0
    director_cost_usd: float = 0.0
    producer_cost_usd: float = 0.0
    gpu_hours: float = 0.0
    wall_s: float = 0.0
    bound_by: str = ""
    seconds_by_resource: dict[str, float] = Field(default_factory=dict)
    parallelism: dict[str, Any] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict, description="what each estimate came from")


# ------------------------------------------------------------------------------------------ measurements
def measured_tokens(paths: StudyPaths, backend: str) -> dict[str, tuple[float, float, int]]:
    """Mean (input, output) tokens per task and how many calls were seen, from the model cache entries of
    ``backend`` (other backends' when it has none for a task)."""
    own: dict[str, list[tuple[int, int]]] = defaultdict(list)
    other: dict[str, list[tuple[int, int]]] = defaultdict(list)
    root = paths.cache / "model"
    if root.is_dir():
        for p in root.glob("*/*.json"):
            try:
                d = json.loads(p.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(d, dict) or "task" not in d or not d.get("input_tokens"):
                continue
            row = (int(d.get("input_tokens", 0)), int(d.get("output_tokens", 0)))
            (own if d.get("backend") == backend else other)[d["task"]].append(row)
    out = {}
    for task in set(own) | set(other):
        rows = own.get(task) or other[task]
        out[task] = (sum(r[0] for r in rows) / len(rows), sum(r[1] for r in rows) / len(rows), len(rows))
    return out


def rendered_here(pair_render_s: float, producer_manifest: dict[str, Any]) -> bool:
    """Whether a pair's render stage rendered (True) or copied the creative from the render cache: a copy
    takes a small fraction of the seconds its cached Producer manifest records."""
    return pair_render_s >= 0.5 * float(producer_manifest.get("seconds", 0.0))


def measured_run_costs(paths: StudyPaths, task: str, director_backend: str, producer_backend: str) -> dict[str, float]:
    """From finished runs' manifests: mean latency of an uncached call of ``director_backend``, mean CPU
    seconds of a pair outside its model calls, and mean render seconds per second of video of
    ``producer_backend`` (only where such runs exist)."""
    lat, cpu, render = [], [], []
    runs_root = paths.runs / task
    if not runs_root.is_dir():
        return {}
    for man_path in runs_root.glob("*/*/manifest.json"):
        try:
            m = json.loads(man_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if m.get("status") == "failed":
            continue
        calls = [u for u in m.get("usage", []) if not u.get("cached")]
        lat += [float(u.get("latency_s", 0.0)) for u in calls if u.get("backend") == director_backend]
        secs = m.get("seconds", {})
        model_s = sum(float(u.get("latency_s", 0.0)) for u in calls)
        cpu.append(max(0.0, sum(float(v) for v in secs.values()) - model_s - float(secs.get("render", 0.0))))
        if m.get("producer_backend") == producer_backend and secs.get("render"):
            prod = man_path.parent / "producer.json"
            try:
                pm = json.loads(prod.read_text(encoding="utf-8"))
                if pm.get("duration_s") and rendered_here(float(secs["render"]), pm):
                    render.append(float(secs["render"]) / float(pm["duration_s"]))
            except (OSError, json.JSONDecodeError, ValueError):
                pass
    out: dict[str, float] = {}
    if lat:
        out["latency_s"] = sum(lat) / len(lat)
    if cpu:
        out["cpu_s_per_pair"] = sum(cpu) / len(cpu)
    if render:
        out["render_s_per_video_s"] = sum(render) / len(render)
    return out


# --------------------------------------------------------------------------------------------- the plan
def _bench(paths: StudyPaths, task: str) -> tuple[list[Any], dict[str, Any]]:
    from .schemas import BenchPair, UserHistory  # noqa: PLC0415
    from .store import read_jsonl  # noqa: PLC0415

    pairs = read_jsonl(paths.bench_pairs(task), BenchPair)
    users = {u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
    return pairs, users


def _finished(run_dir: Path, pair_id: str, final_artifact: str) -> bool:
    p = run_dir / pair_id / "manifest.json"
    if not p.is_file() or not (run_dir / pair_id / final_artifact).is_file():
        return False
    try:
        return json.loads(p.read_text(encoding="utf-8")).get("status") != "failed"
    except (OSError, json.JSONDecodeError):
        return False


def _video_price(producer_backend: str) -> float:
    kind, _, model = producer_backend.partition(":")
    if kind == "sora":
        from .producer.sora import PRICE_PER_SECOND  # noqa: PLC0415

        return PRICE_PER_SECOND.get(model, 0.10)
    if kind == "veo":
        from .producer.veo import PRICE_PER_SECOND as VEO  # noqa: PLC0415

        return VEO.get(model, 0.40)
    return 0.0


def plan_run(paths: StudyPaths, task: str = "pcg", system: str = "nextads", director_backend: str = "offline",
             producer_backend: str = "compositor", *, limit_users: int = 0, n_pairs: int = 0,
             duration_s: float | None = None, gpus: int = 1, api_concurrency: int = 4, cpu_workers: int = 2,
             price_table: str | None = None, limits: dict[str, Any] | None = None,
             protocol: Any = "paper") -> RunPlan:
    """Estimate the run ``run_pcg`` / ``run_pci`` would do with these arguments (see the module docstring);
    ``protocol`` (a name or :class:`~nextads_lib.protocol.Protocol`) names the run directory whose finished
    pairs are not counted again.
    ``n_pairs`` > 0 scales the benchmark's per-pair averages to that many pairs (e.g. the paper's 500)
    instead of counting the benchmark on disk. ``limits``: backend -> :class:`~nextads_lib.ratelimit.Limit`
    (default: :func:`~nextads_lib.ratelimit.limit_for`)."""
    from . import runs  # noqa: PLC0415
    from .backends.pricing import cost_usd  # noqa: PLC0415
    from .pcg import run_names  # noqa: PLC0415
    from .ratelimit import limit_for  # noqa: PLC0415

    if task not in ("pcg", "pci"):
        raise ValueError(f"task '{task}' is not 'pcg' or 'pci'")
    if system == "retrieval":
        director_backend, producer_backend = runs.RETRIEVAL_DIRECTOR, runs.RETRIEVAL_PRODUCER
    duration = float(duration_s if duration_s is not None else (12.0 if task == "pcg" else 8.0))
    final = "creative.mp4" if task == "pcg" else "integrated.mp4"
    from .protocol import get_protocol  # noqa: PLC0415

    name = run_names(system, director_backend, producer_backend, get_protocol(protocol))
    run_dir = paths.run_dir(task, name)
    pairs, users = _bench(paths, task)
    order, user_ids = runs.group_by_user(pairs, limit_users)
    all_pairs = [p for u in user_ids for p in order[u]]
    todo = [p for p in all_pairs if not _finished(run_dir, p.pair_id, final)]
    todo_users = sorted({p.user_id for p in todo})
    scale = (n_pairs / len(all_pairs)) if n_pairs and all_pairs else 1.0

    calls: dict[str, float] = defaultdict(float)
    if system == "generic":
        calls["director.storyboard"] = len({p.product_id for p in todo})
    elif system == "nextads":
        n_todo = len(todo)
        if task == "pcg":
            calls["director.user_profile"] = len(todo_users)
            calls["director.match"] = n_todo
        else:
            calls["director.annotate_video"] = sum(
                sum(1 for it in users[u].items if it.video_path) for u in todo_users if u in users)
            calls["director.user_profile_videos"] = len(todo_users)
            calls["pci.host_summary"] = len({p.host_item_id for p in todo})
            calls["pci.integration_point"] = n_todo
        calls["director.storyboard"] = n_todo
    measured = measured_tokens(paths, director_backend) if system != "retrieval" else {}
    rev = measured.get("director.storyboard_revise", (0, 0, 0))[2]
    sb = measured.get("director.storyboard", (0, 0, 0))[2]
    if calls.get("director.storyboard") and rev and sb:
        calls["director.storyboard_revise"] = calls["director.storyboard"] * rev / sb
    calls = {k: v * scale for k, v in calls.items()}

    kind = director_backend.split(":", 1)[0]
    tin = tout = 0.0
    src_tokens = []
    for t, n in calls.items():
        if t in measured:
            i, o, _ = measured[t]
            src_tokens.append(f"{t}: measured")
        else:
            i, o = DEFAULT_TOKENS.get(t, (1500, 400))
            src_tokens.append(f"{t}: default")
        tin += n * i
        tout += n * o
    n_calls = sum(calls.values())
    director_cost = 0.0 if kind == "offline" or system == "retrieval" else cost_usd(
        director_backend, int(round(tin)), int(round(tout)), price_table)
    mrun = measured_run_costs(paths, task, director_backend, producer_backend)
    latency = mrun.get("latency_s", DEFAULT_LATENCY_S.get(kind, 6.0))

    n_renders = len(todo) * scale
    video_s = n_renders * duration
    pkind = producer_backend.split(":", 1)[0]
    producer_cost = video_s * _video_price(producer_backend)
    gpu_s = 0.0
    if pkind == "wan":
        gpu_s += video_s * mrun.get("render_s_per_video_s", WAN_GPU_S_PER_VIDEO_S)
    if kind == "hf":
        gpu_s += n_calls * latency
    cpu_s = n_renders * mrun.get("cpu_s_per_pair", DEFAULT_CPU_S_PER_PAIR[task])
    if pkind == "compositor":
        cpu_s += video_s * mrun.get("render_s_per_video_s", 0.5)

    secs: dict[str, float] = {"cpu": cpu_s / max(1, cpu_workers)}
    if kind in ("openai", "gemini") and n_calls:
        lim = (limits or {}).get(director_backend) or limit_for(director_backend, price_table)
        secs["director_api"] = n_calls * latency / max(1, api_concurrency)
        if lim.rpm:
            secs["director_rpm"] = n_calls / lim.rpm * 60.0
        if lim.tpm:
            secs["director_tpm"] = (tin + tout) / lim.tpm * 60.0
    if pkind in ("sora", "veo") and n_renders:
        lim = (limits or {}).get(producer_backend) or limit_for(producer_backend, price_table)
        secs["video_api"] = n_renders * DEFAULT_VIDEO_API_LATENCY_S / max(1, api_concurrency)
        if lim.rpm:
            secs["video_rpm"] = n_renders / lim.rpm * 60.0
    if gpu_s:
        secs["gpu"] = gpu_s / max(1, gpus)
    if todo:  # one user's job runs its pairs one after another: the longest job is a floor on the wall time
        per_user: dict[str, int] = defaultdict(int)
        for p in todo:
            per_user[p.user_id] += 1
        per_pair = (cpu_s + gpu_s) / max(n_renders, 1e-9) + (n_calls / max(n_renders, 1e-9)) * (
            latency if kind != "hf" else 0.0)
        if pkind in ("sora", "veo"):
            per_pair += DEFAULT_VIDEO_API_LATENCY_S
        secs["longest_user_job"] = max(per_user.values()) * per_pair
    bound = max(secs, key=lambda k: secs[k])
    return RunPlan(
        task=task, system=system, run_name=name, director_backend=director_backend,
        producer_backend=producer_backend, pairs=int(round(len(all_pairs) * scale)),
        pairs_todo=int(round(len(todo) * scale)), todo_pair_ids=[p.pair_id for p in todo] if scale == 1.0 else [],
        users=len(user_ids), model_calls=int(round(n_calls)), calls_by_task={k: int(round(v)) for k, v in calls.items()},
        input_tokens=int(round(tin)), output_tokens=int(round(tout)), video_seconds=round(video_s, 3),
        cost_usd=round(director_cost + producer_cost, 6), director_cost_usd=round(director_cost, 6),
        producer_cost_usd=round(producer_cost, 6), gpu_hours=round(gpu_s / 3600.0, 4),
        wall_s=round(max(secs.values()), 1), bound_by=bound, seconds_by_resource={k: round(v, 1) for k, v in secs.items()},
        parallelism={"gpus": gpus, "api_concurrency": api_concurrency, "cpu_workers": cpu_workers},
        sources={"tokens": "; ".join(src_tokens) or "no model calls",
                 "latency_s": "measured" if "latency_s" in mrun else "default",
                 "cpu_s_per_pair": "measured" if "cpu_s_per_pair" in mrun else "default",
                 "render_s_per_video_s": "measured" if "render_s_per_video_s" in mrun else "default"},
    )


def format_plan(plan: RunPlan | StagePlan) -> str:
    """The plan as the lines the notebooks and the CLI print."""
    if isinstance(plan, StagePlan):
        return _format_stage(plan)
    h = plan.wall_s / 3600.0
    lines = [
        f"plan {plan.task}/{plan.run_name}: {plan.pairs_todo} of {plan.pairs} pairs to do ({plan.users} users)",
        f"  model calls      {plan.model_calls}  {dict(plan.calls_by_task)}",
        f"  tokens           {plan.input_tokens} in, {plan.output_tokens} out",
        f"  video            {plan.video_seconds:.1f} s from {plan.producer_backend}",
        f"  cost             {plan.cost_usd:.4f} USD (director {plan.director_cost_usd:.4f}, "
        f"producer {plan.producer_cost_usd:.4f}; price table)",
        f"  GPU-hours        {plan.gpu_hours:.3f}",
        f"  wall time        {plan.wall_s:.0f} s ({h:.2f} h) at {plan.parallelism}, bound by {plan.bound_by} "
        f"{plan.seconds_by_resource}",
        f"  sources          {plan.sources}",
    ]
    return "\n".join(lines)


def check_budget(plan: RunPlan | StagePlan, max_cost_usd: float | None) -> None:
    """Raise :class:`~nextads_lib.executor.BudgetExceeded` when the plan's cost passes ``max_cost_usd``
    (None or <= 0: no budget); the message names the run or stage, the estimate and the limit."""
    if max_cost_usd is None or max_cost_usd <= 0 or plan.cost_usd <= max_cost_usd:
        return
    if isinstance(plan, StagePlan):
        raise BudgetExceeded(0.0, max_cost_usd, f"the {plan.stage} stage ({','.join(plan.tasks)}) estimates "
                                                f"{plan.cost_usd:.4f} USD for {plan.model_calls} model calls "
                                                f"({plan.backends}); nothing was started")
    raise BudgetExceeded(0.0, max_cost_usd, f"the plan for {plan.task}/{plan.run_name} estimates "
                                            f"{plan.cost_usd:.4f} USD for {plan.pairs_todo} pairs; nothing was started")


# ------------------------------------------------------------------------------------ evaluation stages
#: output tokens of one evaluation answer when nothing was measured: a judge's score and brief reason, a
#: compliance check's findings, the Reflector's typed directives
DEFAULT_EVAL_OUTPUT_TOKENS = {"judge": 150, "verifier": 200, "reflector": 600}


@dataclass(frozen=True)
class PlannedCall:
    """One model request an evaluation stage would send: its backend, request task, whether the model cache
    already answers it, its input tokens as the request's size gives them (:func:`~nextads_lib.ratelimit.
    estimate_tokens` less the answer budget) and whether it is counted as an upper bound (a revision round
    that may not happen)."""

    backend: str
    task: str
    cached: bool = False
    input_tokens: int = 0
    bound: bool = False


class StagePlan(Schema):
    """The estimate of one evaluation stage (``judge``, ``verify``, ``video_quality``) before its first call."""

    stage: str
    tasks: list[str] = Field(default_factory=list)
    backends: dict[str, str] = Field(default_factory=dict, description="role -> backend string")
    runs: int = 0
    items: int = Field(0, description="creatives the stage covers")
    items_todo: int = Field(0, description="creatives not yet done (the rest are answered by the cache)")
    model_calls: int = Field(0, description="uncached model calls")
    cached_calls: int = 0
    calls_by_task: dict[str, int] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cost_by_backend: dict[str, float] = Field(default_factory=dict)
    bound: str = Field("", description="what is counted as an upper bound, if anything")
    sources: dict[str, str] = Field(default_factory=dict)


def is_paid(backend: str) -> bool:
    """Whether ``backend`` is a paid API (its kind has a rate-limit window: OpenAI, Gemini, Sora, Veo)."""
    from .ratelimit import API_KINDS  # noqa: PLC0415

    return backend.split(":", 1)[0] in API_KINDS


def plan_stage(paths: StudyPaths, stage: str, calls: list[PlannedCall], *, tasks: list[str],
               backends: dict[str, str], runs: int = 0, items: int = 0, items_todo: int = 0, bound: str = "",
               price_table: str | None = None) -> StagePlan:
    """Count ``calls`` (the cached ones cost nothing) and price them: tokens per request task from the model
    cache's measurements of that backend (:func:`measured_tokens`), else the request's own size in and
    :data:`DEFAULT_EVAL_OUTPUT_TOKENS` out; USD from the price table."""
    from .backends.pricing import cost_usd  # noqa: PLC0415

    todo = [c for c in calls if not c.cached]
    by_task: dict[str, int] = defaultdict(int)
    tokens: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    src: list[str] = []
    measured_by: dict[str, dict[str, tuple[float, float, int]]] = {}
    for c in todo:
        by_task[c.task] += 1
        if c.backend not in measured_by:
            measured_by[c.backend] = measured_tokens(paths, c.backend) if is_paid(c.backend) else {}
        m = measured_by[c.backend].get(c.task)
        if c.backend.split(":", 1)[0] == "offline":
            continue  # no tokens, no cost: counted in the calls only
        if m:
            i, o = m[0], m[1]
        else:
            d_in, d_out = DEFAULT_TOKENS.get(c.task, (1500, DEFAULT_EVAL_OUTPUT_TOKENS.get(c.task.split(".")[0], 200)))
            i, o = c.input_tokens or d_in, d_out
        tokens[c.backend][0] += i
        tokens[c.backend][1] += o
        s = f"{c.task}: {'measured' if m else 'request size'}"
        if s not in src:
            src.append(s)
    costs = {b: round(cost_usd(b, int(round(t[0])), int(round(t[1])), price_table), 6) for b, t in tokens.items()}
    sources = {"tokens": "; ".join(src) or "no paid model calls", "cost": "price table"}
    if any(c.backend.split(":", 1)[0] == "offline" for c in calls):
        sources["offline"] = "offline backends: no tokens or cost; requests counted without checking the cache"
    return StagePlan(
        stage=stage, tasks=list(tasks), backends=dict(backends), runs=runs, items=items, items_todo=items_todo,
        model_calls=len(todo), cached_calls=len(calls) - len(todo), calls_by_task=dict(sorted(by_task.items())),
        input_tokens=int(round(sum(t[0] for t in tokens.values()))),
        output_tokens=int(round(sum(t[1] for t in tokens.values()))),
        cost_usd=round(sum(costs.values()), 6), cost_by_backend=costs, bound=bound,
        sources=sources)


def _task_list(tasks: list[str] | str) -> list[str]:
    """``"pcg,pci"`` (a notebook parameter) or a list, as a list of task names."""
    return [t.strip() for t in tasks.split(",") if t.strip()] if isinstance(tasks, str) else list(tasks)


def plan_judge(paths: StudyPaths, tasks: list[str] | str, backend: Any, *, n_frames: int = 8,
               protocol: Any = "paper", runs: list[str] | None = None) -> StagePlan:
    """What :func:`nextads_lib.judge.judge_all` with these arguments will ask ``backend`` (a backend object or
    string): every request it builds, each checked against the model cache (:func:`judge.planned_calls`)."""
    from . import judge  # noqa: PLC0415
    from .backends import get_backend  # noqa: PLC0415

    b = get_backend(backend, cache_dir=paths.cache) if isinstance(backend, str) else backend
    task_list = _task_list(tasks)
    calls, n_runs, items, todo = judge.planned_calls(paths, task_list, b, n_frames=n_frames, protocol=protocol,
                                                     runs=runs)
    return plan_stage(paths, "judge", calls, tasks=task_list, backends={"judge": b.name}, runs=n_runs, items=items,
                      items_todo=todo, price_table=b.settings.get("price_table"))


def plan_verify(paths: StudyPaths, tasks: list[str] | str, *, verifier_backend: str = "offline",
                reflector_backend: str = "offline", vq_backend: str = "offline", max_rounds: int = 2,
                limit_pairs: int = 0, systems: str = "nextads", protocol: str = "paper",
                thresholds: dict[str, float] | None = None, runs: list[str] | None = None) -> StagePlan:
    """What :func:`nextads_lib.reflector.verify_and_reflect` over the runs notebook 12 picks will ask its
    verifier (judge) and Reflector backends: round 0's requests exactly (cache checked); each revision round
    as if every creative not yet verified were revised ``max_rounds`` times (an upper bound: an accepted
    creative is not revised). ``runs``: these run names of each task instead of ``systems`` / ``protocol``'s."""
    from . import reflector  # noqa: PLC0415

    task_list = _task_list(tasks)
    calls: list[PlannedCall] = []
    n_runs = items = todo = 0
    for task in task_list:
        for run in runs if runs is not None else reflector.list_runs(paths, task, systems, protocol):
            c, n, t = reflector.planned_calls(paths, task, run, verifier_backend=verifier_backend,
                                              reflector_backend=reflector_backend, vq_backend=vq_backend,
                                              max_rounds=max_rounds, limit_pairs=limit_pairs, thresholds=thresholds)
            calls += c
            n_runs, items, todo = n_runs + 1, items + n, todo + t
    bound = (f"revision rounds: every creative to do counted as revised {max_rounds} time(s)"
             if any(c.bound for c in calls) else "")
    return plan_stage(paths, "verify", calls, tasks=task_list, runs=n_runs, items=items, items_todo=todo,
                      backends={"verifier": verifier_backend, "reflector": reflector_backend, "video_quality": vq_backend},
                      bound=bound)


def plan_video_quality(paths: StudyPaths, tasks: list[str] | str, backend: str = "offline",
                       pairs: list[Any] | None = None) -> StagePlan:
    """What notebook 21 will score: every backend of :mod:`nextads_lib.vbench` runs here or in VBench's own
    environment (no paid call), so the plan counts creatives and costs 0 USD. ``pairs``: the tasks'
    :func:`vbench.list_pairs` when the caller has them already."""
    from . import vbench  # noqa: PLC0415

    task_list = _task_list(tasks)
    if pairs is None:
        pairs = [p for t in task_list for p in vbench.list_pairs(paths, t)]
    ok = [p for p in pairs if p.skip_reason is None]
    return plan_stage(paths, "video_quality", [], tasks=task_list, backends={"video_quality": backend},
                      runs=len({(p.task, p.run) for p in pairs}), items=len(pairs), items_todo=len(ok))


def _format_stage(plan: StagePlan) -> str:
    lines = [
        f"plan {plan.stage} {','.join(plan.tasks)}: {plan.items_todo} of {plan.items} creatives to do "
        f"({plan.runs} runs), backends {plan.backends}",
        f"  model calls      {plan.model_calls} ({plan.cached_calls} answered by the cache)  {plan.calls_by_task}",
        f"  tokens           {plan.input_tokens} in, {plan.output_tokens} out",
        f"  cost             {plan.cost_usd:.4f} USD {plan.cost_by_backend} (price table)",
    ]
    if plan.bound:
        lines.append(f"  upper bound      {plan.bound}")
    lines.append(f"  sources          {plan.sources}")
    return "\n".join(lines)


def stage_vs_spent(plan: StagePlan, usage: Any) -> Any:
    """A table (pandas) of a stage plan's estimate beside what ``usage`` (the backends' :class:`Usage` records
    of the run) spent on uncached calls."""
    import pandas as pd  # noqa: PLC0415

    calls = [u for u in usage if not u.cached]
    got = {"model_calls": len(calls), "input_tokens": sum(u.input_tokens for u in calls),
           "output_tokens": sum(u.output_tokens for u in calls), "cost_usd": round(sum(u.cost_usd for u in calls), 6)}
    est = {"model_calls": plan.model_calls, "input_tokens": plan.input_tokens, "output_tokens": plan.output_tokens,
           "cost_usd": plan.cost_usd}
    return pd.DataFrame([{"quantity": k, "estimate": est[k], "spent": got[k]} for k in est])


# ------------------------------------------------------------------------------------------------- setup
def _reachable(url: str, timeout_s: float = 3.0) -> str | None:
    u = urlparse(url)
    host, port = u.hostname or "", u.port or (443 if u.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as e:
        return f"cannot reach {url} ({e})"


def check_setup(*specs: str, settings: dict[str, Any] | None = None) -> list[str]:
    """Resolve every backend or Producer string and check what it needs here (key in the environment, a
    reachable server, a model folder, a GPU); raise one :class:`SetupError` listing every problem, else
    return one line per spec saying what was checked. ``settings`` may hold ``base_url`` / ``api_key`` as
    the backends take them."""
    from .backends import parse_spec  # noqa: PLC0415
    from .config import resolve  # noqa: PLC0415

    s = settings or {}
    ok, problems = [], []
    for spec in specs:
        kind, _, model = (spec or "").partition(":")
        try:
            if kind in ("compositor", "none", "offline", ""):
                if kind == "":
                    raise SetupError("empty backend string")
                ok.append(f"{spec}: runs here, no key")
                continue
            if kind in ("wan", "sora", "veo"):
                if not model:
                    raise SetupError(f"'{kind}:' needs a model")
            else:
                parse_spec(spec)
            if kind in ("openai", "sora"):
                base = s.get("base_url") or os.environ.get("OPENAI_BASE_URL")
                key = s.get("api_key") or os.environ.get("OPENAI_API_KEY")
                if not key and not base:
                    raise SetupError("set OPENAI_API_KEY (or OPENAI_BASE_URL for an OpenAI-compatible server)")
                if base:
                    err = _reachable(base)
                    if err:
                        raise SetupError(err)
                ok.append(f"{spec}: key {'set' if key else 'not needed'}, server {base or 'api.openai.com'}")
            elif kind in ("gemini", "veo"):
                base = s.get("base_url") or os.environ.get("GOOGLE_GEMINI_BASE_URL")
                key = s.get("api_key") or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
                if not key:
                    raise SetupError("set GEMINI_API_KEY (or GOOGLE_API_KEY)")
                if base:
                    err = _reachable(base)
                    if err:
                        raise SetupError(err)
                ok.append(f"{spec}: key set, server {base or 'generativelanguage.googleapis.com'}")
            elif kind in ("hf", "wan"):
                folder = resolve(model)
                if not folder.is_dir():
                    raise SetupError(f"model folder {model} does not exist (download it first; no hub access "
                                     "at run time)")
                marker = "config.json" if kind == "hf" else "model_index.json"
                if not (folder / marker).is_file():
                    raise SetupError(f"{model} has no {marker}: not a {'transformers' if kind == 'hf' else 'diffusers'} "
                                     "model folder")
                device = str(s.get("device", "cuda"))
                if device.startswith("cuda"):
                    import torch  # noqa: PLC0415

                    if not torch.cuda.is_available():
                        raise SetupError("needs CUDA and this machine has no GPU (pass device='cpu' to force the CPU)")
                ok.append(f"{spec}: model folder {model}, device {device}")
        except (SetupError, ValueError) as e:
            problems.append(f"{spec}: {e}")
    if problems:
        raise SetupError("setup check failed before the first pair:\n  " + "\n  ".join(problems))
    return ok


# ------------------------------------------------------------------------------------ after the run
def spent(paths: StudyPaths, plan: RunPlan) -> dict[str, float]:
    """What the run spent on the pairs the plan counted, from their manifests: uncached model calls,
    their tokens, seconds of video rendered (not copied from the render cache) and cost."""
    from .store import read_json  # noqa: PLC0415

    run_dir = paths.run_dir(plan.task, plan.run_name)
    ids = plan.todo_pair_ids or [p.name for p in run_dir.iterdir() if (p / "manifest.json").is_file()]
    out = {"pairs": 0.0, "model_calls": 0.0, "input_tokens": 0.0, "output_tokens": 0.0, "video_seconds": 0.0,
           "cost_usd": 0.0}
    for pid in ids:
        p = run_dir / pid / "manifest.json"
        if not p.is_file():
            continue
        m = read_json(p)
        out["pairs"] += 1
        calls = [u for u in m.get("usage", []) if not u.get("cached")]
        out["model_calls"] += len(calls)
        out["input_tokens"] += sum(int(u.get("input_tokens", 0)) for u in calls)
        out["output_tokens"] += sum(int(u.get("output_tokens", 0)) for u in calls)
        out["cost_usd"] += float(m.get("cost_usd", 0.0))
        prod = run_dir / pid / "producer.json"
        if prod.is_file():
            pm = read_json(prod)
            if rendered_here(float(m.get("seconds", {}).get("render", 0.0)), pm):
                out["video_seconds"] += float(pm.get("duration_s", 0.0))
    out["cost_usd"] = round(out["cost_usd"], 6)
    return out


def estimate_vs_spent(plan: RunPlan, paths: StudyPaths) -> Any:
    """A table (pandas) of the plan's estimate beside what the run spent, for the run notebooks."""
    import pandas as pd  # noqa: PLC0415

    got = spent(paths, plan)
    est = {"pairs": plan.pairs_todo, "model_calls": plan.model_calls, "input_tokens": plan.input_tokens,
           "output_tokens": plan.output_tokens, "video_seconds": plan.video_seconds, "cost_usd": plan.cost_usd}
    return pd.DataFrame([{"quantity": k, "estimate": est[k], "spent": got[k]} for k in est])


# --------------------------------------------------------------------------------------------------- CLI
def add_plan_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--data-dir", default="data")
    ap.add_argument("--task", default="pcg", choices=("pcg", "pci"))
    ap.add_argument("--system", default="nextads", choices=("nextads", "generic", "retrieval"))
    ap.add_argument("--protocol", default="paper", choices=("paper", "extended"))
    ap.add_argument("--director-backend", default="offline")
    ap.add_argument("--producer-backend", default="compositor")
    ap.add_argument("--limit-users", type=int, default=0)
    ap.add_argument("--pairs", type=int, default=0, help="scale to this many pairs (0: the benchmark on disk)")
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--gpus", type=int, default=1)
    ap.add_argument("--api-concurrency", type=int, default=4)
    ap.add_argument("--cpu-workers", type=int, default=2)
    ap.add_argument("--max-cost-usd", type=float, default=None)
    ap.add_argument("--json", action="store_true", help="print the plan as JSON")


def plan_command(a: argparse.Namespace) -> int:
    """``plan``: print the plan; exit 2 on a setup error or when it passes ``--max-cost-usd``."""
    paths = StudyPaths.from_data_dir(a.data_dir)
    plan = plan_run(paths, a.task, a.system, a.director_backend, a.producer_backend, limit_users=a.limit_users,
                    n_pairs=a.pairs, duration_s=a.duration_s, gpus=a.gpus, api_concurrency=a.api_concurrency,
                    cpu_workers=a.cpu_workers, protocol=a.protocol)
    print(plan.model_dump_json(indent=2) if a.json else format_plan(plan))
    try:
        for line in check_setup(plan.director_backend, plan.producer_backend):
            print("  setup           ", line)
        check_budget(plan, a.max_cost_usd)
    except (SetupError, BudgetExceeded) as e:
        print(f"[plan] {e}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextads_lib.planner", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    add_plan_arguments(sub.add_parser("plan", help="what a run will do and cost"))
    return plan_command(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["DEFAULT_TOKENS", "DEFAULT_LATENCY_S", "WAN_GPU_S_PER_VIDEO_S", "RunPlan", "SetupError", "BudgetExceeded",
           "plan_run", "format_plan", "check_budget", "check_setup", "spent", "estimate_vs_spent",
           "measured_tokens", "measured_run_costs", "main", "DEFAULT_EVAL_OUTPUT_TOKENS", "PlannedCall", "StagePlan",
           "is_paid", "plan_stage", "plan_judge", "plan_verify", "plan_video_quality", "stage_vs_spent"]
