"""Personalized Creative Integration over PCI-Bench (paper section 5.2, Figure 7), for three systems:

- ``nextads``: the six stages: user modeling from the history's videos (each video annotated once, cached by
  its content, then aggregated with the covers: :func:`nextads_lib.director.model_user_from_videos`), host
  video summary (:func:`summarize_host`), integration decision among candidates from real video analysis
  (:func:`decide_integration`, :func:`nextads_lib.host.find_candidates`), storyboard that starts from the
  integration frame and returns to it (:class:`nextads_lib.director.HostContext`), asset grounding with the
  start frame, and the Producer's segment (first and last frame = the integration frame) spliced into the
  host (:func:`nextads_lib.host.splice`).
- ``generic``: GenericAds: the Director sees neither user data nor the host video; its plan is inserted as a
  plain mid-roll at the middle of the host.
- ``retrieval``: the stock template of :func:`nextads_lib.pcg.retrieval_storyboard`, as a mid-roll at the middle.

Per pair, ``data/runs/pci/<run>/<pair_id>/``: ``integrated.mp4``, ``creative.mp4``, ``decision.json``
(:class:`~nextads_lib.schemas.IntegrationDecision`), ``integration_frame.png``, ``candidates/`` (candidate frames,
nextads), ``host_summary.json`` (nextads), ``plan.json``, ``collage.png``, ``grounding.json``,
``producer.json``, ``integration.json`` (:class:`~nextads_lib.schemas.Integration`, with the seam continuity)
and ``manifest.json``; per user ``users/<uid>/profile.json`` and ``annotations.jsonl``; per run
``summary.json``, ``stats.json`` and ``seams.json`` (:class:`~nextads_lib.schemas.SeamSummary`).

Protocols (:mod:`nextads_lib.protocol`, ``protocol="paper"`` by default). Under ``paper`` (no ``frame_overwrite``)
the integration frame reaches the Producer as its ``first_frame`` and ``last_frame`` (the Producer uses them where
its model takes them) and no frame of the segment is overwritten or blended; the plan's start and return are
*checked* against the host (:func:`check_plan_host`: slot 0 must open on the integration frame, the last slot
return to it, and the plan must state its host connection), a plan that fails fails its pair at stage
``host_check``, and the creative's distance to the integration frame at both ends is measured and recorded
(``continuity.json``, :class:`~nextads_lib.schemas.HostContinuity`); the seam numbers then measure the Producer's
output. Under ``frame_overwrite`` (``extended``) the flags are set by code and the Producer pins and blends the
host frame into the segment's ends, as before; the check is still recorded, not enforced. Post-production
(voice-over, music, subtitles, CTA card) is the ``post_production`` switch, as in PCG.

The segment is rendered at the host's size and fps (``fps`` overrides the render rate; the splice retimes it
to the host's). Orchestration (process pool over users, per-pair resume, manifests, summary) is
:mod:`nextads_lib.runs`, shared with PCG.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from . import host as H
from . import runs
from .backends import ImagePart, ModelRequest, TextPart, VideoPart, register_offline
from .config import DEFAULT_SEED, StudyPaths, display_path, resolve
from .protocol import Protocol
from .schemas import (
    BenchPair,
    HostContinuity,
    HostSummary,
    Integration,
    IntegrationCandidate,
    IntegrationDecision,
    PairManifest,
    Product,
    ProductLibrary,
    RunSummary,
    Schema,
    SeamSummary,
    Storyboard,
    UserHistory,
    UserProfile,
)
from .seed import derive_seed
from .store import Cache, content_key, read_json, read_jsonl, read_model, write_json, write_jsonl

#: bump when the run's orchestration changes what a pair's artifacts contain
CODE_VERSION = "pci-3"  # 2: protocols; continuity.json; start/return checked under the paper protocol; 3: splice preset
TASK = "pci"
SYSTEMS = ("nextads", "generic", "retrieval")
RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER = runs.RETRIEVAL_DIRECTOR, runs.RETRIEVAL_PRODUCER
#: the backend name recorded on a fixed mid-roll decision (generic, retrieval)
MIDROLL_BACKEND = "rule:mid-roll"


def run_names(system: str, director_backend: str, producer_backend: str, protocol: str | Protocol | None = None) -> str:
    """The run directory name (same scheme as PCG: ``<system>__<director>__<producer>__<protocol label>``;
    retrieval calls no Director, renders with the compositor)."""
    from .pcg import run_names as _rn  # noqa: PLC0415

    return _rn(system, director_backend, producer_backend, protocol)


def aspect_of(width: int, height: int) -> str:
    """The storyboard aspect ratio ("9:16", "16:9", "1:1") nearest to the host's (log ratio)."""
    r = math.log(width / height)
    opts = {"9:16": math.log(9 / 16), "16:9": math.log(16 / 9), "1:1": 0.0}
    return min(opts, key=lambda k: abs(opts[k] - r))


# ================================================================================== 2. host summary
HOST_SUMMARY_SYSTEM = (
    "You are the Director of a video-advertising system. Summarise the host video a product segment will be "
    "inserted into, as JSON with four fields: topic (a taxonomy id when one fits), content (what happens, one "
    "or two sentences), visual_presentation (colours, lighting, shots, camera and motion) and "
    "audio_characteristics (speech/music/silence, loudness). Use the measurements given. Answer with JSON only."
)


class HostSummaryAnswer(Schema):
    topic: str
    content: str
    visual_presentation: str
    audio_characteristics: str


def build_host_summary_request(item_id: str, host_video: str | Path, title: str, an: H.HostAnalysis,
                               audio: dict[str, Any], n_frames: int = 8) -> ModelRequest:
    """The ``pci.host_summary`` request: title and measurements in text and context, sampled frames as video."""
    ctx = {
        "item_id": item_id, "title": title, "video_path": display_path(resolve(host_video)),
        "duration_s": round(an.duration_s, 3), "width": an.info.width, "height": an.info.height,
        "fps": round(an.fps, 3), "n_shots": an.n_shots, "median_change": round(an.median_change, 5),
        "mean_motion": round(float(an.motion.mean()), 5), "audio": audio,
    }
    text = (f"Host video '{title or item_id}': {ctx['duration_s']} s, {an.info.width}x{an.info.height} at "
            f"{ctx['fps']} fps, {an.n_shots} shot(s), median frame change {ctx['median_change']}, audio {audio}.")
    return ModelRequest(task="pci.host_summary", system=HOST_SUMMARY_SYSTEM,
                        parts=[TextPart(text), VideoPart(str(resolve(host_video)), n_frames=n_frames)],
                        schema=HostSummaryAnswer, context=ctx, item=f"host {item_id}")


@register_offline("pci.host_summary")
def offline_host_summary(req: ModelRequest) -> HostSummaryAnswer:
    """Offline host summary from the request's measurements:

    - topic: the most likely taxonomy topic of the title (MiniLM :func:`nextads_lib.embed.topic_distribution`);
    - content: title, length and number of shots;
    - visual presentation: k-means colours of 6 sampled frames -> nearest named palette and lighting
      (:func:`nextads_lib.director.nearest_palette`, :func:`~nextads_lib.director.lighting_of`); motion from the
      median frame change (< 0.012 static, < 0.04 slow, else dynamic, as the video annotator);
    - audio: loudness (RMS dBFS) and the share of silent 50 ms windows, or "no audio track".
    """
    from . import embed  # noqa: PLC0415
    from .director import MOTION_SLOW, MOTION_STATIC, dominant_colours, lighting_of, nearest_palette  # noqa: PLC0415
    from .media import sample_frames  # noqa: PLC0415
    from .topics import TOPIC_IDS, topic_name  # noqa: PLC0415

    ctx = req.context
    title = ctx["title"] or ctx["item_id"]
    topic = TOPIC_IDS[int(np.argmax(embed.topic_distribution([title])[0]))]
    pix = sample_frames(resolve(ctx["video_path"]), 6, size=(64, 64)).reshape(-1, 3).astype(np.float32)
    cents, shares = dominant_colours(pix, k=4)
    palette, _ = nearest_palette(cents, shares)
    mc = float(ctx["median_change"])
    motion = "static" if mc < MOTION_STATIC else "slow" if mc < MOTION_SLOW else "dynamic"
    shots = int(ctx["n_shots"])
    a = ctx["audio"]
    if a.get("has_audio"):
        sil = float(a.get("silence_fraction") or 0.0)
        audio = (f"audio track at {a['loudness_dbfs']:.1f} dBFS RMS (peak {a['peak_dbfs']:.1f} dBFS), "
                 f"{100 * sil:.0f}% silent" + ("; mostly silence" if sil > 0.6 else "; continuous sound" if sil < 0.1 else ""))
    else:
        audio = "no audio track"
    return HostSummaryAnswer(
        topic=topic,
        content=(f"'{title}': a {ctx['duration_s']:.1f} s {topic_name(topic).lower()} video in {shots} shot"
                 f"{'s' if shots != 1 else ''}."),
        visual_presentation=(f"{palette} palette, {lighting_of(pix)} lighting, {motion} motion "
                             f"(median frame change {mc:.3f}), {shots} shot{'s' if shots != 1 else ''}; "
                             f"{ctx['width']}x{ctx['height']} at {ctx['fps']:g} fps."),
        audio_characteristics=audio,
    )


def summarize_host(item_id: str, host_video: str | Path, title: str, an: H.HostAnalysis, backend: Any) -> HostSummary:
    """Stage 2: the host's structured summary through ``backend`` (cached by the backend on the video's bytes)."""
    audio = H.audio_stats(resolve(host_video))
    ans: HostSummaryAnswer = backend.complete(build_host_summary_request(item_id, host_video, title, an, audio)).value
    return HostSummary(
        host_item_id=item_id, host_video=display_path(resolve(host_video)), backend=backend.name, title=title,
        topic=ans.topic, content=ans.content, visual_presentation=ans.visual_presentation,
        audio_characteristics=ans.audio_characteristics, duration_s=round(an.duration_s, 4), width=an.info.width,
        height=an.info.height, fps=an.fps, n_shots=an.n_shots, has_audio=bool(audio["has_audio"]),
        loudness_dbfs=audio["loudness_dbfs"], silence_fraction=audio["silence_fraction"])


# ============================================================================== 3. integration decision
INTEGRATION_SYSTEM = (
    "You are the Director of a video-advertising system. A short product segment will be inserted into the "
    "host video: it starts from the host frame at the chosen point and returns to it. Choose, among the "
    "candidate points found by video analysis (shot boundaries, calm moments), the one that gives the most "
    "natural transition to the product, and say why in one or two sentences. Answer with JSON only: "
    '{"candidate_index": <int>, "rationale": "..."}.'
)


class IntegrationAnswer(Schema):
    candidate_index: int
    rationale: str


def build_integration_request(item: str, product: Product, summary: HostSummary,
                              candidates: list[IntegrationCandidate]) -> ModelRequest:
    """The ``pci.integration_point`` request: the product, the host summary, and each candidate with its frame."""
    from .director import product_brief  # noqa: PLC0415

    ctx = {"product": product_brief(product), "host": summary.model_dump(mode="json"),
           "candidates": [c.model_dump(mode="json", exclude={"frame_path"}) for c in candidates]}
    lines = "\n".join(f"- {c.index}: {c.timestamp_s:.2f} s, {c.kind}, motion {c.motion:.3f}" for c in candidates)
    parts: list[Any] = [TextPart(
        f"Product: {product.name} by {product.brand}. {product.description}\n"
        f"Host: {summary.content} Visual: {summary.visual_presentation} Audio: {summary.audio_characteristics}\n"
        f"Candidate points ({len(candidates)}):\n{lines}")]
    for c in candidates:
        if c.frame_path:
            parts.append(TextPart(f"Frame of candidate {c.index} ({c.timestamp_s:.2f} s):"))
            parts.append(ImagePart(str(resolve(c.frame_path))))
    return ModelRequest(task="pci.integration_point", system=INTEGRATION_SYSTEM, parts=parts,
                        schema=IntegrationAnswer, context=ctx, item=item)


@register_offline("pci.integration_point")
def offline_integration_point(req: ModelRequest) -> IntegrationAnswer:
    """Offline rule: among the candidates just after a shot boundary (all candidates when there is none), the
    one with the lowest ``motion / max motion + |t - middle| / duration`` (calm, and near the middle, so the
    viewer is settled in a shot); ties go to the earlier one. The product does not enter the rule."""
    ctx = req.context
    cands = ctx["candidates"]
    dur = float(ctx["host"]["duration_s"]) or 1.0
    pool = [c for c in cands if c["kind"] == "after_shot_boundary"] or cands
    mmax = max((c["motion"] for c in pool), default=0.0) or 1.0
    best = min(pool, key=lambda c: (round(c["motion"] / mmax + abs(c["timestamp_s"] - dur / 2) / dur, 6), c["index"]))
    why = ("just after a shot boundary" if best["kind"] == "after_shot_boundary" else
           "a calm moment" if best["kind"] == "low_motion" else "the middle of the host")
    return IntegrationAnswer(candidate_index=int(best["index"]), rationale=(
        f"Candidate {best['index']} at {best['timestamp_s']:.2f} s is {why} with motion {best['motion']:.3f}, the "
        f"calmest near the middle among {len(pool)} option(s): the segment can start from and return to a steady "
        "frame (offline rule: calm and central, product-agnostic)."))


def validate_decision(decision: IntegrationDecision, an: H.HostAnalysis, item: str = "pair") -> None:
    """Reject a point outside the host or in its first/last second: :class:`~nextads_lib.host.HostError`
    naming the field."""
    lo, hi = H.valid_range(an, item)
    t = decision.timestamp_s
    if not (H.EDGE_S - 1e-6 <= t <= an.duration_s - H.EDGE_S + 1e-6):
        raise H.HostError(item, "decision.timestamp_s", f"{t:.3f} s is outside the host's allowed range "
                          f"[{H.EDGE_S:g}, {an.duration_s - H.EDGE_S:.3f}] s (the host lasts {an.duration_s:.3f} s; "
                          f"never the first or last {H.EDGE_S:g} s)")
    if not lo <= decision.frame_index <= hi:
        raise H.HostError(item, "decision.frame_index", f"{decision.frame_index} is outside the allowed frames {lo}..{hi}")


def decide_integration(pair: BenchPair, product: Product, summary: HostSummary, an: H.HostAnalysis, backend: Any,
                       pair_dir: Path) -> IntegrationDecision:
    """Stage 3: candidates from the analysis (frames saved under ``pair_dir/candidates/``), the backend's choice,
    validated; the chosen frame is saved as ``integration_frame.png``. An answer naming no candidate raises
    :class:`~nextads_lib.host.HostError` (field ``decision.candidate_index``)."""
    from .media import read_frames, save_image  # noqa: PLC0415

    item = f"pair {pair.pair_id}"
    cands = H.find_candidates(an, item)
    frames = read_frames(resolve(pair.host_video or ""), [c.frame_index for c in cands])
    cands = [c.model_copy(update={"frame_path": display_path(save_image(pair_dir / "candidates" / f"candidate_{c.index}.png", fr))})
             for c, fr in zip(cands, frames)]
    ans: IntegrationAnswer = backend.complete(build_integration_request(item, product, summary, cands)).value
    if not 0 <= ans.candidate_index < len(cands):
        raise H.HostError(item, "decision.candidate_index", f"{ans.candidate_index} names no candidate "
                          f"(0..{len(cands) - 1})")
    c = cands[ans.candidate_index]
    fp = save_image(pair_dir / "integration_frame.png", frames[ans.candidate_index])
    dec = IntegrationDecision(host_item_id=pair.host_item_id or "", host_video=display_path(resolve(pair.host_video or "")),
                              timestamp_s=c.timestamp_s, frame_index=c.frame_index, frame_path=display_path(fp),
                              rationale=ans.rationale, candidates=cands, chosen_index=c.index, backend=backend.name)
    validate_decision(dec, an, item)
    return dec


def midroll_decision(pair: BenchPair, an: H.HostAnalysis, pair_dir: Path) -> IntegrationDecision:
    """The plain mid-roll of the generic and retrieval systems: the middle frame, no model, no candidates."""
    item = f"pair {pair.pair_id}"
    f = H.middle_frame(an, item)
    fp = H.save_frame(resolve(pair.host_video or ""), f, pair_dir / "integration_frame.png")
    dec = IntegrationDecision(host_item_id=pair.host_item_id or "", host_video=display_path(resolve(pair.host_video or "")),
                              timestamp_s=round(f / an.fps, 4), frame_index=f, frame_path=display_path(fp),
                              rationale="plain mid-roll at the middle of the host (the system sees no host video)",
                              candidates=[], chosen_index=None, backend=MIDROLL_BACKEND)
    validate_decision(dec, an, item)
    return dec


# ================================================================================ start / return check
def check_plan_host(plan: Storyboard) -> tuple[dict[str, bool], list[str]]:
    """What the plan itself says about the integration frame: slot 0 opens on it (lists the ``start_frame``
    asset), the last slot returns to it (lists ``start_frame``), and ``host_connection`` says how the segment
    connects to the host. Returns the three flags and the errors (empty = valid)."""
    slots = sorted(plan.slots, key=lambda sl: sl.index)
    flags = {"plan_starts_from_frame": bool(slots) and "start_frame" in slots[0].assets,
             "plan_returns_to_frame": bool(slots) and "start_frame" in slots[-1].assets,
             "plan_host_connection": bool((plan.host_connection or "").strip())}
    errs = []
    if not flags["plan_starts_from_frame"]:
        errs.append(f"PCI: slot 0 does not open on the integration frame (its assets {slots[0].assets if slots else []} "
                    "lack 'start_frame')")
    if not flags["plan_returns_to_frame"]:
        errs.append(f"PCI: the last slot does not return to the integration frame (its assets "
                    f"{slots[-1].assets if slots else []} lack 'start_frame')")
    if not flags["plan_host_connection"]:
        errs.append("PCI: host_connection is empty (the plan must say how the segment connects to the host)")
    return flags, errs


def apply_plan_host_check(plan: Storyboard, frame_path: str, enforce: bool) -> tuple[Storyboard, HostContinuity]:
    """Check the plan's start/return (:func:`check_plan_host`). ``enforce`` (the paper protocol): the plan's
    ``starts_from_frame`` / ``returns_to_frame`` are set from what the plan says, not assumed (the run then fails
    the pair at stage ``host_check`` with a :class:`~nextads_lib.host.HostError` on field ``plan.slots``). Without
    ``enforce`` (``frame_overwrite``) the plan is returned as the Director set it and the check only recorded.
    Returns the plan and the :class:`~nextads_lib.schemas.HostContinuity` record (frames not measured yet)."""
    flags, errs = check_plan_host(plan)
    if enforce:
        plan = plan.model_copy(update={
            "starts_from_frame": plan.starts_from_frame if flags["plan_starts_from_frame"] else None,
            "returns_to_frame": flags["plan_returns_to_frame"]})
    rec = HostContinuity(frame_path=frame_path, errors=errs, enforced=enforce, **flags)
    return plan, rec


def measure_continuity(rec: HostContinuity, creative: str | Path, host_median_change: float | None = None) -> HostContinuity:
    """``rec`` with the creative's first and last frames compared with the integration frame
    (:func:`nextads_lib.host.boundary_changes`)."""
    a, b = H.boundary_changes(creative, resolve(rec.frame_path))
    return rec.model_copy(update={"start_change": round(a, 6), "return_change": round(b, 6),
                                  "host_median_change": None if host_median_change is None else round(host_median_change, 6)})


# ============================================================================================ the run
def _settings(system: str, director_backend: str, producer_backend: str, duration_s: float, seed: int,
              fps: float | None, protocol: str | Protocol = "paper") -> dict[str, Any]:
    _, proto = runs.protocol_settings(protocol)
    return {"system": system, "director_backend": director_backend, "producer_backend": producer_backend,
            "duration_s": float(duration_s), "seed": int(seed), "fps": None if fps is None else float(fps), **proto}


def _pair_key(settings: dict[str, Any], pair: BenchPair, product: Product | None, history: UserHistory | None) -> str:
    from . import director  # noqa: PLC0415
    from .producer import CODE_VERSION as PRODUCER_VERSION  # noqa: PLC0415

    hist = history if settings["system"] == "nextads" else None
    hv = resolve(pair.host_video) if pair.host_video else None
    return content_key("pci_pair", CODE_VERSION, director.CODE_VERSION, PRODUCER_VERSION, settings,
                       pair.model_dump(mode="json", exclude={"compatibility", "rank", "matched_topic"}),
                       product, hist, hv)


def run_user(job: dict[str, Any]) -> dict[str, Any]:
    """Run every pair of one user (a worker task; see :func:`nextads_lib.runs.run_user_job`): the profile
    from the history videos' annotations and covers, then each pair."""
    from . import director  # noqa: PLC0415

    def model_profile(history: UserHistory, backend: Any, cache: Cache, user_dir: Path) -> UserProfile:
        profile, anns, notes = director.model_user_from_videos(history, backend, cache)
        write_jsonl(user_dir / "annotations.jsonl", anns)
        write_json(user_dir / "notes.json", notes)
        return profile

    return runs.run_user_job(TASK, job, model_profile, _run_pair)


def _run_pair(m: dict[str, Any], pair: BenchPair, product: Product | None, history: UserHistory | None,
              profile: UserProfile | None, profile_error: str | None, backend: Any, producer: Any, pair_dir: Path,
              s: dict[str, Any], stats: dict[str, int]) -> None:
    from . import director  # noqa: PLC0415
    from .pcg import retrieval_storyboard  # noqa: PLC0415
    from .schemas import ProducerRequest  # noqa: PLC0415

    system = s["system"]
    arts = m["artifacts"]
    item = f"pair {pair.pair_id}"
    if product is None:
        m["stage_failed"] = "load"
        raise director.DirectorError(item, "load", f"product '{pair.product_id}' is not in the library")
    if system == "nextads" and profile is None:
        m["stage_failed"] = "profile"
        raise director.DirectorError(item, "user_profile", profile_error or "no profile")
    host_video = resolve(pair.host_video or "")
    with runs.Stage(m, None, "host"):
        an = H.analyze_host(host_video, item)
        H.valid_range(an, item)

    if system == "nextads":
        assert profile is not None
        write_json(pair_dir / "profile.json", {"$ref": f"../users/{profile.user_id}/profile.json"})
        arts["profile"] = "profile.json"
        title = getattr(pair, "host_title", None) or ""
        with runs.Stage(m, backend, "summary"):
            summary = summarize_host(pair.host_item_id or "", host_video, title, an, backend)
        write_json(pair_dir / "host_summary.json", summary)
        arts["host_summary"] = "host_summary.json"
        with runs.Stage(m, backend, "decide"):
            decision = decide_integration(pair, product, summary, an, backend, pair_dir)
    else:
        with runs.Stage(m, None, "decide"):
            decision = midroll_decision(pair, an, pair_dir)
    write_json(pair_dir / "decision.json", decision)
    arts["decision"] = "decision.json"
    arts["integration_frame"] = "integration_frame.png"

    ar = aspect_of(an.info.width, an.info.height)
    hostctx = None
    with runs.Stage(m, backend, "plan"):
        if system == "retrieval":
            plan = retrieval_storyboard(product, s["duration_s"], ar)
            errs = director.validate_storyboard(plan, product, duration_s=s["duration_s"])
            if errs:
                raise director.StoryboardError(f"product {product.id}", errs)
        elif system == "generic":
            plan = director.plan_storyboard(product, backend, duration_s=s["duration_s"], aspect_ratio=ar,
                                            seed=derive_seed(s["seed"], "plan", product.id, "generic"))
        else:
            hostctx = director.HostContext(item_id=pair.host_item_id or "", topic=summary.topic,
                                           summary=f"{summary.content} {summary.visual_presentation}",
                                           frame_path=decision.frame_path, timestamp_s=decision.timestamp_s,
                                           flags_from_plan=not (s.get("switches") or {}).get("frame_overwrite", True))
            plan = director.plan_storyboard(product, backend, profile=profile, duration_s=s["duration_s"],
                                            aspect_ratio=ar, host=hostctx, history=history,
                                            seed=derive_seed(s["seed"], "plan", product.id, pair.user_id,
                                                             pair.host_item_id or ""))
    overwrite = bool((s.get("switches") or {}).get("frame_overwrite", True))
    continuity = None
    if hostctx is not None:
        plan, continuity = apply_plan_host_check(plan, decision.frame_path, enforce=not overwrite)
    write_json(pair_dir / "plan.json", plan)
    arts["plan"] = "plan.json"
    if continuity is not None:
        write_json(pair_dir / "continuity.json", continuity)
        arts["continuity"] = "continuity.json"
        if continuity.enforced and continuity.errors:
            m["stage_failed"] = "host_check"
            raise H.HostError(item, "plan.slots", "; ".join(continuity.errors))

    personalized = system == "nextads"
    with runs.Stage(m, None, "ground"):
        grounding = director.ground_assets(product, pair_dir, profile=profile if personalized else None,
                                           history=history if personalized else None,
                                           start_frame=decision.frame_path if personalized else None)
    write_json(pair_dir / "grounding.json", grounding)
    arts["collage"] = "collage.png"
    arts["grounding"] = "grounding.json"

    palette = profile.visual.palette if personalized and profile is not None else list(product.palette)
    W, Hh = an.info.width // 2 * 2, an.info.height // 2 * 2
    frame = decision.frame_path if personalized else None
    req = ProducerRequest(
        storyboard=plan, collage_path=grounding.collage_path, assets=director.grounding_asset_paths(grounding),
        reference_images=[grounding.collage_path], first_frame=frame, last_frame=frame, aspect_ratio=plan.aspect_ratio,
        width=W, height=Hh, fps=float(s["fps"] or an.fps), seed=derive_seed(s["seed"], "render", content_key(plan)),
        palette=palette)
    with runs.Stage(m, None, "render"):
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

    with runs.Stage(m, None, "insert"):
        integ = H.splice(host_video, pair_dir / "creative.mp4", decision.frame_index, pair_dir / "integrated.mp4",
                         analysis=an, item=item)
    write_json(pair_dir / "integration.json", integ)
    arts["integrated"] = "integrated.mp4"
    arts["integration"] = "integration.json"
    if continuity is not None:
        write_json(pair_dir / "continuity.json", measure_continuity(continuity, pair_dir / "creative.mp4",
                                                                    an.median_change))


def load_inputs(paths: StudyPaths) -> tuple[list[BenchPair], dict[str, UserHistory], ProductLibrary]:
    """PCI-Bench pairs, the selected users' histories (host videos excluded) and the product library."""
    pairs = read_jsonl(paths.bench_pairs(TASK), BenchPair)
    users = {u.user_id: u for u in read_jsonl(paths.bench_users(TASK), UserHistory)}
    library = read_model(paths.library_json, ProductLibrary)
    return pairs, users, library


def run_pci(
    paths: StudyPaths, system: str = "nextads", director_backend: str = "offline",
    producer_backend: str = "compositor", *, limit_users: int = 0, duration_s: float = 8.0,
    seed: int = DEFAULT_SEED, fps: float | None = None, workers: int = 2, progress: bool = True,
    protocol: str | Protocol = "paper",
) -> RunSummary:
    """Run PCI for ``system`` over PCI-Bench (the first ``limit_users`` users; 0 = all) under ``protocol``
    (``"paper"`` | ``"extended"`` | a :class:`~nextads_lib.protocol.Protocol`; see the module docstring), write
    the run directory and ``seams.json``; returns (and writes) the run summary. Finished pairs are skipped;
    failed ones are retried."""
    from .director import slot_times  # noqa: PLC0415

    if system not in SYSTEMS:
        raise ValueError(f"system '{system}' is not one of {SYSTEMS}")
    slot_times(duration_s)
    t0 = time.perf_counter()
    if system == "retrieval":
        director_backend, producer_backend = RETRIEVAL_DIRECTOR, RETRIEVAL_PRODUCER
    proto, _ = runs.protocol_settings(protocol)
    name = run_names(system, director_backend, producer_backend, proto)
    run_dir = paths.run_dir(TASK, name)
    settings = _settings(system, director_backend, producer_backend, duration_s, seed, fps, proto)
    pairs, users, library = load_inputs(paths)
    products = {p.id: p for p in library.products}
    order, user_ids = runs.group_by_user(pairs, limit_users)

    def pair_key(pair: BenchPair) -> str:
        return _pair_key(settings, pair, products.get(pair.product_id), users.get(pair.user_id))

    def job_for(uid: str, todo: list[BenchPair], keys: dict[str, str]) -> dict[str, Any]:
        return runs.user_job(settings, paths, run_dir, uid, todo, keys, users.get(uid), products)

    summary = runs.execute(
        paths, task=TASK, name=name, system=system, director_backend=director_backend,
        producer_backend=producer_backend, settings=settings, order=order, user_ids=user_ids, pair_key=pair_key,
        job_for=job_for, worker=run_user, final_artifact="integrated.mp4", workers=workers, progress=progress,
        t0=t0, stat_keys=("user_model_calls", "renders", "render_cache_hits"),
        summary_settings={**settings, "limit_users": int(limit_users), "workers": int(workers)})
    ids = [p.pair_id for u in user_ids for p in order[u]]
    write_json(run_dir / "seams.json", seam_summary(run_dir, ids))
    return summary


# ------------------------------------------------------------------------------------------------ reading
def seam_summary(run_dir: Path, pair_ids: list[str] | None = None) -> SeamSummary:
    """Seam continuity over a run's integrated pairs (those with ``integration.json``)."""
    run_dir = Path(run_dir)
    s = read_model(run_dir / "summary.json", RunSummary) if (run_dir / "summary.json").is_file() else None
    dirs = [run_dir / p for p in pair_ids] if pair_ids is not None else sorted(d for d in run_dir.iterdir() if d.is_dir())
    ints = [read_model(d / "integration.json", Integration) for d in dirs if (d / "integration.json").is_file()]
    conts = [read_model(d / "continuity.json", HostContinuity) for d in dirs if (d / "continuity.json").is_file()]
    return SeamSummary(run_name=run_dir.name, system=s.system if s else run_dir.name.split("__")[0], n=len(ints),
                       protocol=s.protocol if s else None, **H.seam_rows(ints), **H.continuity_rows(conts))


def read_summary(paths: StudyPaths, run: str) -> RunSummary:
    return runs.read_summary(paths, TASK, run)


def read_manifests(paths: StudyPaths, run: str) -> list[PairManifest]:
    return runs.read_manifests(paths, TASK, run)


def read_profile(pair_dir: Path) -> UserProfile:
    """A pair's ``profile.json``, following its ``$ref`` to the user's profile."""
    from .pcg import read_profile as _rp  # noqa: PLC0415

    return _rp(pair_dir)


def read_seams(paths: StudyPaths, run: str) -> SeamSummary:
    return read_model(paths.run_dir(TASK, run) / "seams.json", SeamSummary)


def seam_table_rows(seams: list[SeamSummary], digits: int = 2) -> list[dict[str, Any]]:
    """Rounded rows (stable across reruns) for the seam continuity table."""
    def r(x: float | None) -> float | None:
        return None if x is None else round(float(x), digits)

    return [{"run": s.run_name, "system": s.system, "protocol": s.protocol or "", "integrated": s.n,
             "seam_in / host median": r(s.seam_ratio_in_median), "seam_out / host median": r(s.seam_ratio_out_median),
             "smooth seams": r(s.smooth_fraction)} for s in seams]


def read_pair(run_dir: Path, pair_id: str) -> dict[str, Any]:
    """A pair's JSON artifacts, as loaded objects (missing ones are None)."""
    from .schemas import Grounding, Storyboard  # noqa: PLC0415

    d = Path(run_dir) / pair_id
    out: dict[str, Any] = {"dir": d}
    for key, fname, model in (("manifest", "manifest.json", PairManifest), ("decision", "decision.json", IntegrationDecision),
                              ("host_summary", "host_summary.json", HostSummary), ("plan", "plan.json", Storyboard),
                              ("grounding", "grounding.json", Grounding), ("integration", "integration.json", Integration)):
        out[key] = read_model(d / fname, model) if (d / fname).is_file() else None
    out["profile_ref"] = read_json(d / "profile.json") if (d / "profile.json").is_file() else None
    return out


def annotations_table(run_dir: Path, user_id: str):
    """The user's video annotations (``users/<uid>/annotations.jsonl``) as a table."""
    import pandas as pd  # noqa: PLC0415

    from .schemas import VideoAnnotation  # noqa: PLC0415

    p = Path(run_dir) / "users" / user_id / "annotations.jsonl"
    anns = read_jsonl(p, VideoAnnotation) if p.is_file() else []
    cols = ["item_id", "topic", "tone", "narrative", "information_density", "visual_tone", "palette_name", "motion",
            "camera", "motion_magnitude"]
    return pd.DataFrame([a.model_dump() for a in anns], columns=cols)


def timeline_figure(host_video: str | Path, decision: IntegrationDecision, width: float = 9.0):
    """The host's motion over time with its shot boundaries, the candidate points and the chosen one (left),
    and the chosen frame (right)."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from .media import load_image  # noqa: PLC0415

    an = H.analyze_host(resolve(host_video))
    t = np.arange(an.n_frames) / an.fps
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(width, 3.0), gridspec_kw={"width_ratios": [3, 1]})
    ax.plot(t, an.motion, color="#457B9D", lw=1.2, label="motion (grey change)")
    for i, b in enumerate(an.boundaries):
        ax.axvline(b / an.fps, color="#999999", ls="--", lw=0.8, label="shot boundary" if i == 0 else None)
    ax.axvspan(0, H.EDGE_S, color="#eeeeee")
    ax.axvspan(an.duration_s - H.EDGE_S, an.duration_s, color="#eeeeee")
    marks = {"after_shot_boundary": "^", "low_motion": "o", "middle": "s"}
    ymax = float(an.motion.max()) or 1.0
    for c in decision.candidates:
        ax.scatter([c.timestamp_s], [c.motion], marker=marks[c.kind], color="#1D3557", zorder=3, s=28)
        ax.annotate(str(c.index), (c.timestamp_s, c.motion), textcoords="offset points", xytext=(3, 4), fontsize=7)
    ax.axvline(decision.timestamp_s, color="#E63946", lw=2, label=f"chosen {decision.timestamp_s:.2f} s")
    ax.set_xlim(0, an.duration_s)
    ax.set_ylim(0, ymax * 1.25)
    ax.set_xlabel("host time (s); grey: first/last second, never a point")
    ax.set_title(f"candidates ({len(decision.candidates)}; ^ after a cut, o calm, s middle) · {decision.backend}",
                 fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, frameon=False)
    ax2.imshow(np.asarray(load_image(resolve(decision.frame_path))))
    ax2.axis("off")
    ax2.set_title(f"frame at {decision.timestamp_s:.2f} s", fontsize=9)
    fig.tight_layout()
    return fig


def seam_strip(pair_dir: Path, k: int = 2, cell: float = 1.6):
    """Frames of ``integrated.mp4`` across both seams: the ``k`` frames before and after each, titled host/ad."""
    from . import viz  # noqa: PLC0415
    from .media import read_frames  # noqa: PLC0415

    pair_dir = Path(pair_dir)
    integ = read_model(pair_dir / "integration.json", Integration)
    fps = integ.fps
    si, so = int(round(integ.seam_in_s * fps)), int(round(integ.seam_out_s * fps))
    idx = [*range(si - k, si + k), *range(so - k, so + k)]
    frames = read_frames(pair_dir / "integrated.mp4", idx)
    titles = [f"{'ad' if si <= i < so else 'host'} {i / fps:.2f} s" for i in idx]
    return viz.image_grid(list(frames), titles, ncols=2 * k, cell=cell, suptitle=(
        f"seam in (change {integ.seam_change_in:.3f}) and seam out (change {integ.seam_change_out:.3f}); host median "
        f"change {integ.host_median_change:.3f}"))


summary_rows = runs.summary_rows

__all__ = ["SYSTEMS", "run_pci", "run_names", "run_user", "summarize_host", "decide_integration", "midroll_decision",
           "validate_decision", "check_plan_host", "apply_plan_host_check", "measure_continuity", "build_host_summary_request", "build_integration_request", "aspect_of",
           "load_inputs", "read_profile", "read_summary", "read_manifests", "read_seams", "seam_summary", "seam_table_rows",
           "read_pair", "summary_rows", "annotations_table", "timeline_figure", "seam_strip", "HostSummaryAnswer", "IntegrationAnswer"]
