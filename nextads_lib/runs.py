"""The orchestration PCG (:mod:`nextads_lib.pcg`) and PCI (:mod:`nextads_lib.pci`) share: a run over the
benchmark's users in a process pool, per-pair resume through the content-addressed cache, one validated
``manifest.json`` per pair (failed or not), and the run's ``summary.json`` / ``stats.json``.

A task supplies three things:

- ``pair_key(pair) -> str``: the content key of everything that produced a pair (settings, inputs, code
  versions); a finished pair is recorded in the cache under it, so a rerun skips it without starting a worker;
- ``job_for(user_id, todo_pairs, keys) -> dict``: the JSON-able job of one user (its pairs still to do);
- ``worker(job) -> {"manifests": [...], "stats": {...}}``: a module-level function (picklable for the spawned
  pool) that runs a user's pairs, usually through :func:`run_pairs`.

Failed pairs are never recorded in the cache, so a rerun retries exactly those.

Protocols (:mod:`nextads_lib.protocol`): a task's settings carry ``protocol`` (the label) and ``switches``
(every switch's value, :func:`protocol_settings`); they are in every pair key, every ``manifest.json`` and the
run's ``summary.json`` (fields ``protocol`` and ``switches``), the run directory's name ends with the label
(:func:`nextads_lib.schemas.run_name`), and the Producer is built with the protocol's ``post_production``,
``slot_layouts`` and ``frame_overwrite`` (:func:`producer_settings`), so they are in its settings and cache key.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import StudyPaths
from .schemas import BenchPair, PairManifest, RunFailure, RunSummary
from .store import Cache, write_json

if TYPE_CHECKING:
    from .protocol import Protocol


# --------------------------------------------------------------------------------------------- protocol
#: the switches the Producer takes as settings (the rest concern the Director and the judge)
PRODUCER_SWITCHES = ("post_production", "slot_layouts", "frame_overwrite")


def protocol_settings(protocol: "str | Protocol" = "paper", **switches: Any) -> tuple["Protocol", dict[str, Any]]:
    """The protocol (a name or a :class:`~nextads_lib.protocol.Protocol`, ``switches`` overriding single
    switches; None values are ignored) and the settings entries every run records: ``protocol`` (its label)
    and ``switches`` (its switches, base included)."""
    from .protocol import get_protocol  # noqa: PLC0415

    proto = get_protocol(protocol, **{k: v for k, v in switches.items() if v is not None})
    return proto, {"protocol": proto.label, "switches": proto.model_dump(mode="json")}


def producer_settings(settings: dict[str, Any]) -> dict[str, bool]:
    """The Producer settings a run's protocol fixes (empty for settings written before protocols)."""
    sw = settings.get("switches") or {}
    return {k: bool(sw[k]) for k in PRODUCER_SWITCHES if k in sw}


# ---------------------------------------------------------------------------------------------- workers
def init_worker() -> None:
    """Each worker uses one thread for the embedder, torch, BLAS, OpenCV and x264: parallelism comes from the
    processes. Torch itself is not imported here (the embedded default never needs it)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from .embed import set_threads  # noqa: PLC0415

    set_threads(1)
    from .media import set_encode_threads  # noqa: PLC0415

    set_encode_threads(1)
    try:
        import cv2  # noqa: PLC0415

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a dependency
        pass


class Stage:
    """Times a stage into ``manifest["seconds"][name]``, collects the director backend's usage it added and
    marks ``stage_failed`` when the block raises."""

    def __init__(self, manifest: dict[str, Any], backend: Any, name: str):
        self.m, self.backend, self.name = manifest, backend, name

    def __enter__(self) -> "Stage":
        self.t0 = time.perf_counter()
        self.n0 = len(self.backend.usage) if self.backend is not None else 0
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.m["seconds"][self.name] = round(time.perf_counter() - self.t0, 4)
        if self.backend is not None:
            self.m["usage"].extend(self.backend.usage[self.n0:])
        if exc[0] is not None and not self.m.get("stage_failed"):
            self.m["stage_failed"] = self.name
        return False


def new_manifest(task: str, pair: BenchPair, run_name: str, system: str, director_name: str, producer_name: str,
                 seed: int, protocol: str | None = None, switches: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pair's manifest as a mutable dict, status ``done`` until something says otherwise."""
    return {
        "pair_id": pair.pair_id, "task": task, "run_name": run_name, "system": system,
        "director_backend": director_name, "producer_backend": producer_name, "user_id": pair.user_id,
        "product_id": pair.product_id, "status": "done", "stage_failed": None, "failure": None,
        "seed": int(seed), "seconds": {}, "usage": [], "cost_usd": 0.0, "artifacts": {},
        "protocol": protocol, "switches": dict(switches or {}),
    }


def run_pairs(task: str, job: dict[str, Any], pairs: Sequence[BenchPair], run_dir: Path, cache: Cache,
              manifest_for: Callable[[int, BenchPair], dict[str, Any]],
              run_one: Callable[[dict[str, Any], BenchPair, Path], None]) -> list[dict[str, Any]]:
    """Run ``run_one(manifest, pair, pair_dir)`` for each pair; an exception marks that pair failed (stage and
    reason in its manifest) and the loop goes on. Every pair's manifest is validated and written; the ones
    that did not fail are recorded in the cache under ``job["pair_keys"][pair_id]``."""
    out = []
    for k, pair in enumerate(pairs):
        pair_dir = run_dir / pair.pair_id
        pair_dir.mkdir(parents=True, exist_ok=True)
        m = manifest_for(k, pair)
        try:
            run_one(m, pair, pair_dir)
        except Exception as e:  # noqa: BLE001 - a pair's failure never stops the run
            m["status"] = "failed"
            m["stage_failed"] = m.get("stage_failed") or "run"
            m["failure"] = f"{type(e).__name__}: {e}"
            if not isinstance(e, (RuntimeError, ValueError, OSError, KeyError)):
                m["failure"] += " | " + traceback.format_exc(limit=3).replace("\n", " ")[-400:]
        m["usage"] = [u.model_dump(mode="json") if hasattr(u, "model_dump") else u for u in m["usage"]]
        m["cost_usd"] = round(m["cost_usd"] + sum(float(u.get("cost_usd", 0.0)) for u in m["usage"]), 6)
        man = PairManifest.model_validate(m)
        write_json(pair_dir / "manifest.json", man)
        if man.status != "failed":
            cache.put_json(f"{task}_pair", job["pair_keys"][pair.pair_id], man)
        out.append(man.model_dump(mode="json"))
    return out


#: the Director backend name recorded for the retrieval system, which calls no model, and its one Producer
RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER = "none", "compositor"


def user_job(settings: dict[str, Any], paths: StudyPaths, run_dir: Path, user_id: str, todo: Sequence[BenchPair],
             keys: dict[str, str], history: Any, products: dict[str, Any]) -> dict[str, Any]:
    """The JSON-able job of one user: its pairs still to do, their products (None when missing from the
    library) and, for the ``nextads`` system only, the user's history."""
    return {
        "settings": settings, "data_root": str(paths.root), "run_dir": str(run_dir), "user_id": user_id,
        "history": history.model_dump(mode="json") if history is not None and settings["system"] == "nextads" else None,
        "pairs": [p.model_dump(mode="json") for p in todo], "pair_keys": dict(keys),
        "products": {p.product_id: (products[p.product_id].model_dump(mode="json")
                                    if p.product_id in products else None) for p in todo},
    }


def run_user_job(task: str, job: dict[str, Any], model_profile: Callable[..., Any],
                 run_pair: Callable[..., None]) -> dict[str, Any]:
    """The body of a task's worker for one user's job (:func:`user_job`).

    Opens the Director backend and the Producer (retrieval: none and the compositor), models the user once
    (``nextads`` only) with ``model_profile(history, backend, cache, user_dir) -> UserProfile`` (which writes
    the user's files under ``user_dir``; a failure is recorded against every pair of the user), then runs
    ``run_pair(manifest, pair, product, history, profile, profile_error, backend, producer, pair_dir,
    settings, stats)`` for each pair through :func:`run_pairs`. The profile's seconds and usage are booked on
    the user's first pair. Returns ``{"manifests": [...], "stats": {...}}``."""
    from . import director  # noqa: PLC0415  (registers the offline handlers)
    from .backends import get_backend  # noqa: PLC0415
    from .actors import producer_for  # noqa: PLC0415
    from .schemas import Product, UserHistory  # noqa: PLC0415

    s = job["settings"]
    paths = StudyPaths(Path(job["data_root"]))
    run_dir = Path(job["run_dir"])
    cache = Cache(paths.cache)
    system = s["system"]
    history = UserHistory.model_validate(job["history"]) if job.get("history") is not None else None
    pairs = [BenchPair.model_validate(p) for p in job["pairs"]]
    products = {pid: (Product.model_validate(p) if p is not None else None) for pid, p in job["products"].items()}
    stats = {"user_model_calls": 0, "renders": 0, "render_cache_hits": 0, "pairs_executed": len(pairs)}
    retrieval = system == "retrieval"
    backend = None if retrieval else get_backend(s["director_backend"], cache_dir=paths.cache)
    producer = producer_for(RETRIEVAL_PRODUCER if retrieval else s["producer_backend"], cache_dir=paths.cache,
                            **producer_settings(s))
    director_name = RETRIEVAL_DIRECTOR if retrieval else backend.name

    profile, profile_error, profile_usage, profile_seconds = None, None, [], 0.0
    uid = job["user_id"]
    if system == "nextads":
        t0 = time.perf_counter()
        n0 = len(backend.usage)
        try:
            if history is None:
                raise director.DirectorError(f"user {uid}", "user_profile",
                                             "not in the benchmark's users file (no history)")
            profile = model_profile(history, backend, cache, run_dir / "users" / uid)
            write_json(run_dir / "users" / uid / "profile.json", profile)
        except Exception as e:  # noqa: BLE001 - recorded against every pair of the user
            profile_error = f"{type(e).__name__}: {e}"
        profile_usage = list(backend.usage[n0:])
        stats["user_model_calls"] += sum(not u.cached for u in profile_usage)  # 0 when it came from a cache
        profile_seconds = round(time.perf_counter() - t0, 4)

    def manifest_for(k: int, pair: BenchPair) -> dict[str, Any]:
        m = new_manifest(task, pair, run_dir.name, system, director_name, producer.name, s["seed"],
                         s.get("protocol"), s.get("switches"))
        if system == "nextads":
            m["seconds"]["profile"] = profile_seconds if k == 0 else 0.0
            if k == 0:
                m["usage"].extend(profile_usage)  # the user's one profile call is booked on the first pair
        return m

    def run_one(m: dict[str, Any], pair: BenchPair, pair_dir: Path) -> None:
        run_pair(m, pair, products.get(pair.product_id), history, profile, profile_error, backend, producer,
                 pair_dir, s, stats)

    return {"manifests": run_pairs(task, job, pairs, run_dir, cache, manifest_for, run_one), "stats": stats}


# ------------------------------------------------------------------------------------------------ runner
def group_by_user(pairs: Sequence[BenchPair], limit_users: int = 0) -> tuple[OrderedDict[str, list[BenchPair]], list[str]]:
    """Pairs grouped by user in benchmark order, and the first ``limit_users`` user ids (0 = all)."""
    order: OrderedDict[str, list[BenchPair]] = OrderedDict()
    for p in pairs:
        order.setdefault(p.user_id, []).append(p)
    user_ids = list(order)[:limit_users] if limit_users and limit_users > 0 else list(order)
    return order, user_ids


def execute(
    paths: StudyPaths, *, task: str, name: str, system: str, director_backend: str, producer_backend: str,
    settings: dict[str, Any], order: OrderedDict[str, list[BenchPair]], user_ids: Sequence[str],
    pair_key: Callable[[BenchPair], str], job_for: Callable[[str, list[BenchPair], dict[str, str]], dict[str, Any]],
    worker: Callable[[dict[str, Any]], dict[str, Any]], final_artifact: str, workers: int = 2,
    progress: bool = True, t0: float | None = None, stat_keys: Sequence[str] = (),
    summary_settings: dict[str, Any] | None = None,
) -> RunSummary:
    """Run the users' pairs still to do (a pair is reused when its cache record and manifest exist, it did not
    fail and ``final_artifact`` is in its directory), collect every manifest, write ``summary.json`` and
    ``stats.json`` (what this invocation did: ``pairs_executed``, ``pairs_reused``, ``users``, ``workers``
    and the workers' own counters, ``stat_keys`` starting at 0) and return the summary."""
    t0 = time.perf_counter() if t0 is None else t0
    run_dir = paths.run_dir(task, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    cache = Cache(paths.cache)
    manifests: dict[str, PairManifest] = {}
    jobs = []
    for uid in user_ids:
        todo, keys = [], {}
        for pair in order[uid]:
            key = pair_key(pair)
            data = cache.get_json(f"{task}_pair", key)
            if data is not None and (run_dir / pair.pair_id / "manifest.json").is_file():
                try:
                    man = PairManifest.model_validate(data)
                    if man.status != "failed" and (run_dir / pair.pair_id / final_artifact).is_file():
                        manifests[pair.pair_id] = man
                        continue
                except ValueError:
                    pass
            todo.append(pair)
            keys[pair.pair_id] = key
        if todo:
            jobs.append(job_for(uid, todo, keys))
    n_pairs = sum(len(order[u]) for u in user_ids)
    stats: dict[str, Any] = {k: 0 for k in stat_keys}
    stats.update({"pairs_executed": 0, "pairs_reused": len(manifests), "users": len(user_ids), "workers": 0})
    bar = progress_bar(n_pairs, len(manifests), name) if progress else None

    def collect(res: dict[str, Any]) -> None:
        for d in res["manifests"]:
            manifests[d["pair_id"]] = PairManifest.model_validate(d)
        for k, v in res["stats"].items():
            stats[k] = stats.get(k, 0) + v
        if bar is not None:
            bar.update(len(res["manifests"]))

    if jobs:
        from .executor import current  # noqa: PLC0415  (local pool unless executor.use(...) chose Ray)

        stats["workers"] = current().map_jobs(worker, jobs, collect, workers=workers, task=task,
                                              final_artifact=final_artifact)
    if bar is not None:
        bar.close()

    ordered = [manifests[p.pair_id] for u in user_ids for p in order[u] if p.pair_id in manifests]
    usage = [u for m in ordered for u in m.usage]
    summary = RunSummary(
        task=task, run_name=name, system=system, director_backend=director_backend,
        producer_backend=producer_backend, n_pairs=n_pairs,
        done=sum(m.status == "done" for m in ordered), fallback=sum(m.status == "fallback" for m in ordered),
        failed=sum(m.status == "failed" for m in ordered),
        failures=[RunFailure(pair_id=m.pair_id, stage=m.stage_failed or "run", reason=m.failure or "")
                  for m in ordered if m.status == "failed"],
        seconds=round(time.perf_counter() - t0, 3), cost_usd=round(sum(m.cost_usd for m in ordered), 6),
        input_tokens=sum(u.input_tokens for u in usage), output_tokens=sum(u.output_tokens for u in usage),
        settings=dict(summary_settings if summary_settings is not None else settings),
        protocol=settings.get("protocol"), switches=dict(settings.get("switches") or {}),
    )
    write_json(run_dir / "summary.json", summary)
    write_json(run_dir / "stats.json", {**stats, "seconds": summary.seconds})
    return summary


def progress_bar(total: int, initial: int, name: str) -> Any:
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, initial=initial, desc=name, unit="pair", mininterval=2.0)


# ------------------------------------------------------------------------------------------------ reading
def read_summary(paths: StudyPaths, task: str, run: str) -> RunSummary:
    from .store import read_model  # noqa: PLC0415

    return read_model(paths.run_dir(task, run) / "summary.json", RunSummary)


def read_manifests(paths: StudyPaths, task: str, run: str) -> list[PairManifest]:
    from .store import read_model  # noqa: PLC0415

    d = paths.run_dir(task, run)
    return [read_model(p, PairManifest) for p in sorted(d.glob("*/manifest.json"))]


def summary_rows(summaries: Sequence[RunSummary]) -> list[dict[str, Any]]:
    """Deterministic rows (counts, no times) for the summary tables the notebooks check."""
    return [{"run": s.run_name, "system": s.system, "director": s.director_backend, "producer": s.producer_backend,
             "protocol": s.protocol or "", "pairs": s.n_pairs, "done": s.done, "fallback": s.fallback, "failed": s.failed} for s in summaries]


__all__ = ["PRODUCER_SWITCHES", "protocol_settings", "producer_settings", "init_worker", "Stage", "new_manifest", "run_pairs", "group_by_user", "execute", "progress_bar",
           "read_summary", "read_manifests", "summary_rows"]
