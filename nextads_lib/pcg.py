"""Personalized Creative Generation over PCG-Bench (paper section 5.1, Figure 6), for three systems:

- ``nextads``: the five stages: user modeling (once per user), user-product matching (generic fallback below
  the compatibility threshold), storyboard, asset grounding, Producer.
- ``generic``: GenericAds: the Director sees only the product and the serving context (no profile, no match,
  no history), so every user gets the same plan per product.
- ``retrieval``: no generation: the product's stock images and slogan in a fixed template storyboard
  (:func:`retrieval_storyboard`), rendered by the compositor; a floor for every metric.

``run_pcg`` writes, per pair, ``data/runs/pcg/<run>/<pair_id>/``: ``profile.json`` (a ``$ref`` to
``users/<uid>/profile.json``), ``match.json``, ``plan.json``, ``collage.png``, ``grounding.json``,
``creative.mp4``, ``producer.json`` and ``manifest.json`` (:class:`~nextads_lib.schemas.PairManifest`), then
``summary.json`` (:class:`~nextads_lib.schemas.RunSummary`) and ``stats.json`` (what this invocation did).

Resuming: a finished pair is recorded in the content-addressed cache under a key of everything that
produced it (system, backends, settings, pair, product, history, code versions); a rerun skips it without
starting a worker. Failed pairs are not recorded, so a rerun retries exactly those. Model answers and
renders are cached by their own keys too (backend cache, Producer cache), so a crashed run resumes mid-user.

Workers: a process pool over users (spawned; each worker sets ``torch.set_num_threads(1)``), so user
modeling runs once per user and the pairs of a user share the profile.
"""

from __future__ import annotations

import os
import time
import traceback
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from .config import AI_LABEL, DEFAULT_SEED, StudyPaths
from .schemas import (
    BenchPair,
    PairManifest,
    Product,
    ProductLibrary,
    RunFailure,
    RunSummary,
    Slot,
    Storyboard,
    UserHistory,
    UserProfile,
    Usage,
    run_name,
)
from .seed import derive_seed
from .store import Cache, content_key, read_jsonl, read_model, write_json

#: bump when the run's orchestration changes what a pair's artifacts contain
CODE_VERSION = "pcg-1"
SYSTEMS = ("nextads", "generic", "retrieval")
TASK = "pcg"
#: the Director backend name recorded for the retrieval system, which calls no model
RETRIEVAL_DIRECTOR = "none"
#: the Producer the retrieval system always uses
RETRIEVAL_PRODUCER = "compositor"


def run_names(system: str, director_backend: str, producer_backend: str) -> str:
    """The run directory name; retrieval calls no Director and always renders with the compositor."""
    if system == "retrieval":
        return run_name(system, RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER)
    return run_name(system, director_backend, producer_backend)


# ------------------------------------------------------------------------------------ retrieval template
def retrieval_storyboard(product: Product, duration_s: float = 12.0, aspect_ratio: str = "9:16") -> Storyboard:
    """Today's retrieval-based serving as a storyboard: a fixed template over the product's stock images:
    slogan as the hook, one selling point per body slot, the logo and slogan as the CTA; static camera."""
    from .director import slot_times  # noqa: PLC0415

    times = slot_times(duration_s)
    n = len(times)
    imgs = [f"product_{i}" for i in range(min(3, len(product.images)))]
    slots = []
    for i, (a, b) in enumerate(times):
        if i == n - 1 and n > 1:
            slots.append(Slot(index=i, start_s=a, end_s=b, role="cta", camera="static",
                              composition=f"{product.brand} logo over the product's stock image",
                              narration=f"{product.name}. {product.slogan}", on_screen_text=product.name,
                              pacing="medium", assets=["logo", imgs[0]]))
        elif i == 0:
            slots.append(Slot(index=i, start_s=a, end_s=b, role="hook" if n > 1 else "cta", camera="static",
                              composition="the product's stock hero image", narration=product.slogan,
                              on_screen_text=product.name, pacing="medium", assets=[imgs[0]]))
        else:
            pt = product.selling_points[(i - 1) % len(product.selling_points)]
            slots.append(Slot(index=i, start_s=a, end_s=b, role="body", camera="static",
                              composition="the product's stock image with a caption", narration=pt,
                              on_screen_text=pt, pacing="medium", assets=[imgs[i % len(imgs)]]))
    return Storyboard(product_id=product.id, user_id=None, backend="retrieval-template", personalized=False,
                      hook=product.slogan, matched_topic=None, aspect_ratio=aspect_ratio, duration_s=float(duration_s),
                      slots=slots, cta=f"{product.name}: {product.slogan}", disclosure=AI_LABEL)


# --------------------------------------------------------------------------------------------- settings
def _settings(system: str, director_backend: str, producer_backend: str, compat_threshold: float,
              duration_s: float, aspect_ratio: str, seed: int, width: int | None, height: int | None,
              fps: float) -> dict[str, Any]:
    return {"system": system, "director_backend": director_backend, "producer_backend": producer_backend,
            "compat_threshold": float(compat_threshold), "duration_s": float(duration_s),
            "aspect_ratio": aspect_ratio, "seed": int(seed), "width": width, "height": height, "fps": float(fps)}


def _pair_key(settings: dict[str, Any], pair: BenchPair, product: Product | None, history: UserHistory | None) -> str:
    from . import director  # noqa: PLC0415
    from .producer import CODE_VERSION as PRODUCER_VERSION  # noqa: PLC0415

    hist = history if settings["system"] == "nextads" else None
    return content_key("pcg_pair", CODE_VERSION, director.CODE_VERSION, PRODUCER_VERSION, settings,
                       pair.model_dump(mode="json", exclude={"compatibility", "rank", "matched_topic"}),
                       product, hist)


# ---------------------------------------------------------------------------------------------- workers
def _init_worker() -> None:
    """Each worker uses one thread for torch and BLAS: parallelism comes from the processes."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch  # noqa: PLC0415

    torch.set_num_threads(1)


class _Stage:
    """Times a stage and collects the director backend's usage it added."""

    def __init__(self, manifest: dict[str, Any], backend: Any, name: str):
        self.m, self.backend, self.name = manifest, backend, name

    def __enter__(self) -> "_Stage":
        self.t0 = time.perf_counter()
        self.n0 = len(self.backend.usage) if self.backend is not None else 0
        return self

    def __exit__(self, *exc: Any) -> bool:
        self.m["seconds"][self.name] = round(time.perf_counter() - self.t0, 4)
        if self.backend is not None:
            self.m["usage"].extend(self.backend.usage[self.n0:])
        if exc[0] is not None:
            self.m["stage_failed"] = self.name
        return False


def run_user(job: dict[str, Any]) -> dict[str, Any]:
    """Run every pair of one user (a worker task). ``job`` is JSON-able: settings, data dir, run dir, the
    user's history (or None), the pairs and their products (or None when missing from the library).
    Returns ``{"manifests": [...], "stats": {...}}``; every pair gets a manifest, failed or not."""
    from . import director  # noqa: PLC0415  (registers the offline handlers)
    from .backends import get_backend  # noqa: PLC0415
    from .producer import get_producer  # noqa: PLC0415

    s = job["settings"]
    paths = StudyPaths(Path(job["data_root"]))
    run_dir = Path(job["run_dir"])
    cache = Cache(paths.cache)
    system = s["system"]
    history = UserHistory.model_validate(job["history"]) if job.get("history") is not None else None
    pairs = [BenchPair.model_validate(p) for p in job["pairs"]]
    products = {pid: (Product.model_validate(p) if p is not None else None) for pid, p in job["products"].items()}
    stats = {"user_model_calls": 0, "renders": 0, "render_cache_hits": 0, "pairs_executed": len(pairs)}

    backend = None
    if system != "retrieval":
        backend = get_backend(s["director_backend"], cache_dir=paths.cache)
    producer_spec = RETRIEVAL_PRODUCER if system == "retrieval" else s["producer_backend"]
    producer = get_producer(producer_spec, cache_dir=paths.cache)
    director_name = RETRIEVAL_DIRECTOR if system == "retrieval" else backend.name

    profile: UserProfile | None = None
    profile_error: str | None = None
    profile_usage: list[Usage] = []
    profile_seconds = 0.0
    user_id = job["user_id"]
    if system == "nextads":
        t0 = time.perf_counter()
        n0 = len(backend.usage)
        try:
            if history is None:
                raise director.DirectorError(f"user {user_id}", "user_profile",
                                             "not in the benchmark's users file (no history)")
            profile = director.model_user(history, backend, cache)
            stats["user_model_calls"] += len(backend.usage) - n0  # 0 when the profile came from the cache
            write_json(run_dir / "users" / user_id / "profile.json", profile)
        except Exception as e:  # noqa: BLE001 - recorded against every pair of the user
            profile_error = f"{type(e).__name__}: {e}"
        profile_usage = list(backend.usage[n0:])
        profile_seconds = round(time.perf_counter() - t0, 4)

    manifests = []
    for k, pair in enumerate(pairs):
        pair_dir = run_dir / pair.pair_id
        pair_dir.mkdir(parents=True, exist_ok=True)
        m: dict[str, Any] = {
            "pair_id": pair.pair_id, "task": TASK, "run_name": run_dir.name, "system": system,
            "director_backend": director_name, "producer_backend": producer.name, "user_id": pair.user_id,
            "product_id": pair.product_id, "status": "done", "stage_failed": None, "failure": None,
            "seed": int(s["seed"]), "seconds": {}, "usage": [], "cost_usd": 0.0, "artifacts": {},
        }
        if system == "nextads":
            m["seconds"]["profile"] = profile_seconds if k == 0 else 0.0
            if k == 0:
                m["usage"].extend(profile_usage)  # the user's one profile call is booked on the first pair
        try:
            _run_pair(m, pair, products.get(pair.product_id), history, profile, profile_error, backend, producer,
                      pair_dir, s, stats)
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
            cache.put_json("pcg_pair", job["pair_keys"][pair.pair_id], man)
        manifests.append(man.model_dump(mode="json"))
    return {"manifests": manifests, "stats": stats}


def _run_pair(m: dict[str, Any], pair: BenchPair, product: Product | None, history: UserHistory | None,
              profile: UserProfile | None, profile_error: str | None, backend: Any, producer: Any, pair_dir: Path,
              s: dict[str, Any], stats: dict[str, int]) -> None:
    from . import director  # noqa: PLC0415
    from .schemas import ProducerRequest  # noqa: PLC0415

    system = s["system"]
    arts = m["artifacts"]
    if product is None:
        m["stage_failed"] = "load"
        raise director.DirectorError(f"pair {pair.pair_id}", "load", f"product '{pair.product_id}' is not in the library")
    if system == "nextads" and profile is None:
        m["stage_failed"] = "profile"
        raise director.DirectorError(f"pair {pair.pair_id}", "user_profile", profile_error or "no profile")

    match = None
    if system == "nextads":
        assert profile is not None
        write_json(pair_dir / "profile.json", {"$ref": f"../users/{profile.user_id}/profile.json"})
        arts["profile"] = "profile.json"
        with _Stage(m, backend, "match"):
            match = director.match_product(profile, product, backend, s["compat_threshold"])
        write_json(pair_dir / "match.json", match)
        arts["match"] = "match.json"
        if match.fallback:
            m["status"] = "fallback"

    personalized = system == "nextads" and match is not None and not match.fallback
    with _Stage(m, backend, "plan"):
        if system == "retrieval":
            plan = retrieval_storyboard(product, s["duration_s"], s["aspect_ratio"])
            errs = director.validate_storyboard(plan, product, duration_s=s["duration_s"])
            if errs:
                raise director.StoryboardError(f"product {product.id}", errs)
        else:
            plan = director.plan_storyboard(
                product, backend, profile=profile if system == "nextads" else None, match=match,
                duration_s=s["duration_s"], aspect_ratio=s["aspect_ratio"],
                history=history if system == "nextads" else None,
                seed=derive_seed(s["seed"], "plan", product.id, pair.user_id if personalized else "generic"))
    write_json(pair_dir / "plan.json", plan)
    arts["plan"] = "plan.json"

    with _Stage(m, None, "ground"):
        grounding = director.ground_assets(product, pair_dir, profile=profile if personalized else None,
                                           history=history if personalized else None)
    write_json(pair_dir / "grounding.json", grounding)
    arts["collage"] = "collage.png"
    arts["grounding"] = "grounding.json"

    palette = (profile.visual.palette if personalized and profile is not None else list(product.palette))
    req = ProducerRequest(
        storyboard=plan, collage_path=grounding.collage_path, assets=director.grounding_asset_paths(grounding),
        reference_images=[grounding.collage_path], aspect_ratio=plan.aspect_ratio, width=s["width"],
        height=s["height"], fps=s["fps"], seed=derive_seed(s["seed"], "render", content_key(plan)), palette=palette)
    with _Stage(m, None, "render"):
        pman = producer.render(req, pair_dir / "creative.mp4")
    if producer.last_cached:
        stats["render_cache_hits"] += 1
    else:
        stats["renders"] += 1
        m["cost_usd"] += float(pman.cost_usd)
    write_json(pair_dir / "producer.json", pman)
    arts["creative"] = "creative.mp4"
    arts["producer"] = "producer.json"
    if pman.failure:
        m["stage_failed"] = "render"
        raise RuntimeError(f"producer: {pman.failure}")


# ------------------------------------------------------------------------------------------------ runner
def load_inputs(paths: StudyPaths) -> tuple[list[BenchPair], dict[str, UserHistory], ProductLibrary]:
    """PCG-Bench pairs, the selected users' histories and the product library (validated)."""
    pairs = read_jsonl(paths.bench_pairs(TASK), BenchPair)
    users = {u.user_id: u for u in read_jsonl(paths.bench_users(TASK), UserHistory)}
    library = read_model(paths.library_json, ProductLibrary)
    return pairs, users, library


def run_pcg(
    paths: StudyPaths, system: str = "nextads", director_backend: str = "offline",
    producer_backend: str = "compositor", *, limit_users: int = 0, compat_threshold: float | None = None,
    duration_s: float = 12.0, aspect_ratio: str = "9:16", seed: int = DEFAULT_SEED, width: int | None = 360,
    height: int | None = 640, fps: float = 15.0, workers: int = 2, progress: bool = True,
) -> RunSummary:
    """Run PCG for ``system`` over PCG-Bench (the first ``limit_users`` users; 0 = all) and write the run
    directory; returns (and writes) the run summary. Finished pairs are skipped; failed ones are retried."""
    from .director import DEFAULT_COMPAT_THRESHOLD, slot_times  # noqa: PLC0415

    if system not in SYSTEMS:
        raise ValueError(f"system '{system}' is not one of {SYSTEMS}")
    slot_times(duration_s)  # a duration that cannot be cut into 2-3 s slots fails here, before any work
    threshold = DEFAULT_COMPAT_THRESHOLD if compat_threshold is None else float(compat_threshold)
    t0 = time.perf_counter()
    if system == "retrieval":
        director_backend, producer_backend = RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER
    name = run_names(system, director_backend, producer_backend)
    run_dir = paths.run_dir(TASK, name)
    run_dir.mkdir(parents=True, exist_ok=True)
    settings = _settings(system, director_backend, producer_backend, threshold, duration_s, aspect_ratio, seed,
                         width, height, fps)
    pairs, users, library = load_inputs(paths)
    products = {p.id: p for p in library.products}
    order: OrderedDict[str, list[BenchPair]] = OrderedDict()
    for p in pairs:
        order.setdefault(p.user_id, []).append(p)
    user_ids = list(order)[: limit_users] if limit_users and limit_users > 0 else list(order)
    cache = Cache(paths.cache)

    manifests: dict[str, PairManifest] = {}
    jobs = []
    for uid in user_ids:
        todo, keys = [], {}
        for pair in order[uid]:
            key = _pair_key(settings, pair, products.get(pair.product_id), users.get(uid))
            data = cache.get_json("pcg_pair", key)
            man_path = run_dir / pair.pair_id / "manifest.json"
            if data is not None and man_path.is_file():
                try:
                    man = PairManifest.model_validate(data)
                    if man.status != "failed" and (run_dir / pair.pair_id / "creative.mp4").is_file():
                        manifests[pair.pair_id] = man
                        continue
                except ValueError:
                    pass
            todo.append(pair)
            keys[pair.pair_id] = key
        if todo:
            h = users.get(uid)
            jobs.append({
                "settings": settings, "data_root": str(paths.root), "run_dir": str(run_dir), "user_id": uid,
                "history": h.model_dump(mode="json") if h is not None and system == "nextads" else None,
                "pairs": [p.model_dump(mode="json") for p in todo], "pair_keys": keys,
                "products": {p.product_id: (products[p.product_id].model_dump(mode="json")
                                            if p.product_id in products else None) for p in todo},
            })
    n_pairs = sum(len(order[u]) for u in user_ids)
    stats = {"user_model_calls": 0, "renders": 0, "render_cache_hits": 0, "pairs_executed": 0,
             "pairs_reused": len(manifests), "users": len(user_ids), "workers": 0}
    bar = _progress(n_pairs, len(manifests), name) if progress else None

    def collect(res: dict[str, Any]) -> None:
        for d in res["manifests"]:
            manifests[d["pair_id"]] = PairManifest.model_validate(d)
        for k, v in res["stats"].items():
            stats[k] = stats.get(k, 0) + v
        if bar is not None:
            bar.update(len(res["manifests"]))

    if jobs:
        n_workers = max(1, min(int(workers), len(jobs)))
        stats["workers"] = n_workers
        if n_workers == 1:
            for job in jobs:
                collect(run_user(job))
        else:
            import multiprocessing as mp  # noqa: PLC0415

            with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn"), initializer=_init_worker) as ex:
                futs = [ex.submit(run_user, job) for job in jobs]
                for f in as_completed(futs):
                    collect(f.result())
    if bar is not None:
        bar.close()

    ordered = [manifests[p.pair_id] for u in user_ids for p in order[u] if p.pair_id in manifests]
    usage = [u for m in ordered for u in m.usage]
    summary = RunSummary(
        task=TASK, run_name=name, system=system, director_backend=director_backend,
        producer_backend=producer_backend, n_pairs=n_pairs,
        done=sum(m.status == "done" for m in ordered), fallback=sum(m.status == "fallback" for m in ordered),
        failed=sum(m.status == "failed" for m in ordered),
        failures=[RunFailure(pair_id=m.pair_id, stage=m.stage_failed or "run", reason=m.failure or "")
                  for m in ordered if m.status == "failed"],
        seconds=round(time.perf_counter() - t0, 3), cost_usd=round(sum(m.cost_usd for m in ordered), 6),
        input_tokens=sum(u.input_tokens for u in usage), output_tokens=sum(u.output_tokens for u in usage),
        settings={**settings, "limit_users": int(limit_users), "workers": int(workers)},
    )
    write_json(run_dir / "summary.json", summary)
    write_json(run_dir / "stats.json", {**stats, "seconds": summary.seconds})
    return summary


def _progress(total: int, initial: int, name: str) -> Any:
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, initial=initial, desc=name, unit="pair", mininterval=2.0)


# ------------------------------------------------------------------------------------------------ reading
def read_summary(paths: StudyPaths, run: str) -> RunSummary:
    return read_model(paths.run_dir(TASK, run) / "summary.json", RunSummary)


def read_manifests(paths: StudyPaths, run: str) -> list[PairManifest]:
    d = paths.run_dir(TASK, run)
    return [read_model(p, PairManifest) for p in sorted(d.glob("*/manifest.json"))]


def read_profile(pair_dir: str | Path) -> UserProfile:
    """A pair's ``profile.json``, following its ``$ref`` to the user's profile."""
    from .store import read_json  # noqa: PLC0415

    p = Path(pair_dir) / "profile.json"
    data = read_json(p)
    if isinstance(data, dict) and "$ref" in data:
        return read_model((p.parent / data["$ref"]).resolve(), UserProfile)
    return UserProfile.model_validate(data)


def summary_rows(summaries: list[RunSummary]) -> list[dict[str, Any]]:
    """Deterministic rows (counts, no times) for the summary tables the notebooks check."""
    return [{"run": s.run_name, "system": s.system, "director": s.director_backend, "producer": s.producer_backend,
             "pairs": s.n_pairs, "done": s.done, "fallback": s.fallback, "failed": s.failed} for s in summaries]


__all__ = ["SYSTEMS", "run_pcg", "run_names", "run_user", "retrieval_storyboard", "load_inputs", "read_summary",
           "read_manifests", "read_profile", "summary_rows"]
