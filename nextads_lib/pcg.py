"""Personalized Creative Generation over PCG-Bench (paper section 5.1, Figure 6), for three systems:

- ``nextads``: the five stages: user modeling (once per user), user-product matching (generic fallback below
  the compatibility threshold), storyboard, asset grounding, Producer.
- ``generic``: GenericAds: the Director sees only the product and the serving context (no profile, no match,
  no history), so every user gets the same plan per product.
- ``retrieval``: no generation: the product's stock images and slogan in a fixed template storyboard
  (:func:`retrieval_storyboard`), rendered by the compositor; a floor for every metric.

Every run is made under a named protocol (:mod:`nextads_lib.protocol`, ``protocol="paper"`` by default):
``paper`` renders the Producer's own creative (label only, no post-production) and gives every pair a
personalized plan (``compat_threshold`` 0); ``extended`` is the study's extensions (post-production, the
generic fallback below 0.35, ...). The run directory is ``<system>__<director>__<producer>__<protocol label>``.

``run_pcg`` writes, per pair, ``data/runs/pcg/<run>/<pair_id>/``: ``profile.json`` (a ``$ref`` to
``users/<uid>/profile.json``), ``match.json``, ``plan.json``, ``collage.png``, ``grounding.json``,
``creative.mp4``, ``producer.json`` and ``manifest.json`` (:class:`~nextads_lib.schemas.PairManifest`), then
``summary.json`` (:class:`~nextads_lib.schemas.RunSummary`) and ``stats.json`` (what this invocation did).

Resuming: a finished pair is recorded in the content-addressed cache under a key of everything that
produced it (system, backends, settings, pair, product, history, code versions); a rerun skips it without
starting a worker. Failed pairs are not recorded, so a rerun retries exactly those. Model answers and
renders are cached by their own keys too (backend cache, Producer cache), so a crashed run resumes mid-user.

Workers: a process pool over users (spawned; each worker sets ``torch.set_num_threads(1)``), so user
modeling runs once per user and the pairs of a user share the profile. The pool, the per-pair resume, the
manifests and the summary are :mod:`nextads_lib.runs`, shared with PCI (:mod:`nextads_lib.pci`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from . import runs
from .config import AI_LABEL, DEFAULT_SEED, StudyPaths
from .protocol import Protocol
from .schemas import (
    BenchPair,
    PairManifest,
    Product,
    ProductLibrary,
    RunSummary,
    Slot,
    Storyboard,
    UserHistory,
    UserProfile,
    run_name,
)
from .seed import derive_seed
from .store import Cache, content_key, read_jsonl, read_model, write_json

#: bump when the run's orchestration changes what a pair's artifacts contain
CODE_VERSION = "pcg-1"
SYSTEMS = ("nextads", "generic", "retrieval")
TASK = "pcg"
RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER = runs.RETRIEVAL_DIRECTOR, runs.RETRIEVAL_PRODUCER


def run_names(system: str, director_backend: str, producer_backend: str, protocol: str | Protocol | None = None) -> str:
    """The run directory name, ``<system>__<director>__<producer>__<protocol label>`` (no label part when
    ``protocol`` is None: the name of runs made before protocols); retrieval calls no Director and always
    renders with the compositor."""
    label = protocol.label if isinstance(protocol, Protocol) else protocol
    if system == "retrieval":
        return run_name(system, RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER, label)
    return run_name(system, director_backend, producer_backend, label)


# ------------------------------------------------------------------------------------ retrieval template
def retrieval_storyboard(product: Product, duration_s: float = 12.0, aspect_ratio: str = "9:16") -> Storyboard:
    """Today's retrieval-based serving as a storyboard: a fixed template over the product's stock images:
    slogan as the hook, one selling point per body slot, the logo and slogan as the CTA; static camera. Each
    line is cut to what its slot can speak (:func:`director.speakable`)."""
    from .director import slot_times, speakable  # noqa: PLC0415

    times = slot_times(duration_s)
    n = len(times)
    imgs = [f"product_{i}" for i in range(min(3, len(product.images)))]
    slots = []
    for i, (a, b) in enumerate(times):
        if i == n - 1 and n > 1:
            slots.append(Slot(index=i, start_s=a, end_s=b, role="cta", camera="static",
                              composition=f"{product.brand} logo over the product's stock image",
                              narration=speakable(f"{product.name}. {product.slogan}", b - a),
                              on_screen_text=product.name,
                              pacing="medium", assets=["logo", imgs[0]]))
        elif i == 0:
            slots.append(Slot(index=i, start_s=a, end_s=b, role="hook" if n > 1 else "cta", camera="static",
                              composition="the product's stock hero image",
                              narration=speakable(product.slogan, b - a),
                              on_screen_text=product.name, pacing="medium", assets=[imgs[0]]))
        else:
            pt = product.selling_points[(i - 1) % len(product.selling_points)]
            slots.append(Slot(index=i, start_s=a, end_s=b, role="body", camera="static",
                              composition="the product's stock image with a caption",
                              narration=speakable(pt, b - a),
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
_init_worker = runs.init_worker  # kept for callers of the old private name
_Stage = runs.Stage


def run_user(job: dict[str, Any]) -> dict[str, Any]:
    """Run every pair of one user (a worker task; see :func:`nextads_lib.runs.run_user_job`): the profile
    from the history's texts and images, then each pair. Every pair gets a manifest, failed or not."""
    from . import director  # noqa: PLC0415

    def model_profile(history: UserHistory, backend: Any, cache: Cache, user_dir: Path) -> UserProfile:
        return director.model_user(history, backend, cache)

    return runs.run_user_job(TASK, job, model_profile, _run_pair)


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
    protocol: str | Protocol = "paper",
) -> RunSummary:
    """Run PCG for ``system`` over PCG-Bench (the first ``limit_users`` users; 0 = all) under ``protocol``
    (``"paper"`` | ``"extended"`` | a :class:`~nextads_lib.protocol.Protocol`) and write the run directory;
    returns (and writes) the run summary. ``compat_threshold`` None takes the protocol's (0 under ``paper``:
    no fallback; 0.35 under ``extended``); a number overrides that switch, and the label shows it. Finished
    pairs are skipped; failed ones are retried."""
    from .director import slot_times  # noqa: PLC0415

    if system not in SYSTEMS:
        raise ValueError(f"system '{system}' is not one of {SYSTEMS}")
    slot_times(duration_s)  # a duration that cannot be cut into 2-3 s slots fails here, before any work
    proto, proto_settings = runs.protocol_settings(protocol, compat_threshold=compat_threshold)
    threshold = proto.compat_threshold
    t0 = time.perf_counter()
    if system == "retrieval":
        director_backend, producer_backend = RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER
    name = run_names(system, director_backend, producer_backend, proto)
    run_dir = paths.run_dir(TASK, name)
    settings = {**_settings(system, director_backend, producer_backend, threshold, duration_s, aspect_ratio, seed,
                            width, height, fps), **proto_settings}
    pairs, users, library = load_inputs(paths)
    products = {p.id: p for p in library.products}
    order, user_ids = runs.group_by_user(pairs, limit_users)

    def pair_key(pair: BenchPair) -> str:
        return _pair_key(settings, pair, products.get(pair.product_id), users.get(pair.user_id))

    def job_for(uid: str, todo: list[BenchPair], keys: dict[str, str]) -> dict[str, Any]:
        return runs.user_job(settings, paths, run_dir, uid, todo, keys, users.get(uid), products)

    return runs.execute(
        paths, task=TASK, name=name, system=system, director_backend=director_backend,
        producer_backend=producer_backend, settings=settings, order=order, user_ids=user_ids, pair_key=pair_key,
        job_for=job_for, worker=run_user, final_artifact="creative.mp4", workers=workers, progress=progress, t0=t0,
        stat_keys=("user_model_calls", "renders", "render_cache_hits"),
        summary_settings={**settings, "limit_users": int(limit_users), "workers": int(workers)})


# ------------------------------------------------------------------------------------------------ reading
def read_summary(paths: StudyPaths, run: str) -> RunSummary:
    return runs.read_summary(paths, TASK, run)


def read_manifests(paths: StudyPaths, run: str) -> list[PairManifest]:
    return runs.read_manifests(paths, TASK, run)


def read_profile(pair_dir: str | Path) -> UserProfile:
    """A pair's ``profile.json``, following its ``$ref`` to the user's profile."""
    from .store import read_json  # noqa: PLC0415

    p = Path(pair_dir) / "profile.json"
    data = read_json(p)
    if isinstance(data, dict) and "$ref" in data:
        return read_model((p.parent / data["$ref"]).resolve(), UserProfile)
    return UserProfile.model_validate(data)


summary_rows = runs.summary_rows


__all__ = ["SYSTEMS", "run_pcg", "run_names", "run_user", "retrieval_storyboard", "load_inputs", "read_summary",
           "read_manifests", "read_profile", "summary_rows"]
