"""The VLM judge of the evaluation suite (paper section 4.2.3, Appendix A): five criteria, each scored 0-10 with
a reason.

What the judge is shown depends on the protocol (:mod:`nextads_lib.protocol`, switch ``judge_extras``):

=================================  =============================================  ===================================
criterion                          ``paper`` (exactly Appendix A's inputs)         ``judge_extras`` adds
=================================  =============================================  ===================================
``personalization_presentation``   the product (name, brand, description), the    -
                                   covers of the user's history, the creative
                                   (tone, lighting, texture, artistic style)
``personalization_content``        the product, the covers of the user's          the history's titles/texts, the
                                   history, the creative (subject matter, scenes,  plan's narration script
                                   information angle, appeal)
``product_alignment``              the product's record (description, selling     the claims it must never make (a
                                   points, facts, slogan, logo, official images)  forbidden-claims penalty), the
                                   and the creative                               plan's narration script
``integration_quality``            PCI only: the integrated video (the creative   the host's title and summary, the
                                   inserted into the host video) and the          seam times and four stills around
                                   integration point (contextual flow, thematic   both seams
                                   consistency, disruption, narrative)
``diversity``                      every creative of one user (visual style,      each ad's product and narration
                                   narrative form, subjects and scenes)
=================================  =============================================  ===================================

Each criterion is one :class:`~nextads_lib.backends.ModelRequest` with its own system prompt (in our own words
from Appendix A's factors and score bands; :data:`PAPER_PROMPTS`, or :data:`EXTENDED_PROMPTS` which also describe
the extra inputs) whose answer must validate as :class:`JudgeAnswer`: Appendix A's ``{"score": 0..10, "reason":
"..."}`` (``rationale`` is accepted for ``reason``, so answers cached before the rename still parse). The judge's
protocol label is part of every request's context, so of its cache key, and of every result row
(``judge_protocol``), beside the protocol the judged run was made under (``run_protocol``, from the run's summary or
manifests; ``extended`` for runs made before protocols existed, which was their behaviour). Any backend answers
it: ``gemini:gemini-2.5-flash`` (the paper's judge; the video goes as the API allows), ``openai:<model>``
(``n_frames`` sampled frames), ``hf:...`` and ``offline``. A score outside 0-10 or a missing reason is re-asked
once (the backend's repair), then recorded as MISSING (``score=None``, ``error`` set), never as 0. An
undecodable video is recorded with the error.

The ``offline`` backend answers with the documented proxy formulas of :mod:`nextads_lib.proxies` (handlers
registered at the bottom of this module, ``judge.<criterion>``; ``docs/proxies.md``); every such score carries ``proxy=True`` and a label that says ``proxy`` (e.g.
``"Personalization-Presentation (proxy: palette/style stats)"``), so it is never shown under the paper's bare
metric name. Proxy formulas (all inputs are files of the run; none reads the hidden ground truth). The proxies
cannot watch a video, so they read the plan's text as their stand-in for what the creative says and shows (under
every protocol; that text never reaches a VLM under ``paper``); under ``paper`` their context carries no
forbidden claims (the penalty term is 0) and no host summary (the host's title only):

- presentation: ``10 x (0.7 BC + 0.3 S)``; BC is the Bhattacharyya coefficient between the 4x4x4 RGB colour
  histograms of the history images and of the sampled creative frames (1 = same colour distribution); S is
  the style-statistics agreement ``1 - mean_i min(1, |a_i - b_i| / r_i)`` over brightness (r=0.5), saturation
  (r=0.5), warmth (R-B, r=0.3), contrast (luma std, r=0.25) and texture (mean gradient, r=0.08).
- content: ``10 x (0.6 T + 0.4 C)``; T is the overlap ``sum_k min(u_k, c_k)`` of the user's topic distribution
  (MiniLM soft topic tags of up to 12 history titles/texts, averaged) and the creative's (of its plan text:
  hook, narration, on-screen text, the first clause of each scene composition, 40 words; :func:`embed_text`); C is
  ``clip(cos / 0.6, 0, 1)`` of the MiniLM cosine between the history centroid and the plan text.
- product alignment: ``10 x (0.4 V + 0.2 N + 0.25 P + 0.15 F) - 3 x forbidden``, clipped to 0..10. V: the
  product's images and logo found in the frames, per asset ``0.5 x max BC(colour histograms of asset and
  frame) + 0.5 x max(0, best multi-scale normalised template match)`` over the frames, averaged over assets;
  N: product name (0.6) and brand (0.4) in the plan text; P: share of selling points covered (at least half of
  a point's content words, 4+ letters, occur in the plan text); F: factual consistency ``1 - unsupported/total``
  over the numbers the plan states (a number is supported when it occurs in the product's record); forbidden:
  each forbidden claim the plan text contains.
- integration quality: ``10 x (0.5 K + 0.25 V + 0.25 Tp)``; K seam continuity from ``integration.json``:
  ``r = mean(seam_change_in, seam_change_out) / max(host_median_change, 0.01)``, ``K = clip(1 - log2(max(r,
  1)) / 4, 0, 1)`` (a seam that changes the picture no more than the host's own cuts scores 1, 16x scores 0);
  V the colour-histogram BC between host frames and segment frames of ``integrated.mp4``; Tp ``clip(cos /
  0.6, 0, 1)`` between the host's title/summary and the plan text.
- diversity: ``10 x (1 - mean pairwise similarity)`` over the user's creatives, similarity ``0.5 x BC(frame
  colour histograms) + 0.5 x max(0, MiniLM cosine of plan texts)``; fewer than two creatives is missing.

Frames are sampled once per video (``n_frames`` evenly spaced, decoded at a small size) and reused by every
criterion (:func:`video_frames`).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import threading
import traceback
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import AliasChoices, Field

from . import embed
from .backends import BackendError, ImagePart, ModelRequest, TextPart, VideoPart, register_offline
from .config import StudyPaths, display_path, resolve
from .media import MediaError, load_image, probe, read_frames, sample_indices
from .protocol import SWITCHES, Protocol, get_protocol
from .proxies import (  # the offline judge's formulas (nextads_lib/proxies.py, docs/proxies.md)
    PROXY_WEAKNESS,
    _clip01,
    _content_words,  # noqa: F401 - re-exported
    _numbers,  # noqa: F401 - re-exported
    bhattacharyya,
    colour_hist,
    content_proxy,
    diversity_proxy,
    presentation_proxy,
    product_proxy,
    seam_continuity,
    template_match,
)
from .schemas import (
    BenchPair,
    PairManifest,
    Product,
    ProductLibrary,
    Schema,
    Storyboard,
    UserHistory,
)
from .store import read_json, read_jsonl, read_model

#: bump when a prompt or a proxy formula changes: it is part of every request (and so of every cache key)
CODE_VERSION = "judge-2"

CRITERIA: tuple[str, ...] = ("personalization_presentation", "personalization_content", "product_alignment",
                             "integration_quality", "diversity")
#: the criteria judged per pair (diversity is judged per user)
PAIR_CRITERIA: tuple[str, ...] = CRITERIA[:4]
#: the paper's names (Table 1 / Appendix A)
PAPER_NAMES: dict[str, str] = {
    "personalization_presentation": "Personalization-Presentation",
    "personalization_content": "Personalization-Content",
    "product_alignment": "Product Alignment",
    "integration_quality": "Integration Quality",
    "diversity": "Diversity",
}
#: what each offline proxy measures (goes into its label)
PROXY_NAMES: dict[str, str] = {
    "personalization_presentation": "palette/style stats",
    "personalization_content": "MiniLM interest match",
    "product_alignment": "asset match + plan text",
    "integration_quality": "seam continuity + topic",
    "diversity": "colour-hist + MiniLM dissimilarity",
}
#: the paper's judge
PAPER_JUDGE = "gemini:gemini-2.5-flash"
#: frame size (width) the proxies decode at
PROXY_WIDTH = 96


def criteria_for(task: str) -> tuple[str, ...]:
    """The criteria of a task: integration quality only exists for PCI."""
    return CRITERIA if task == "pci" else tuple(c for c in CRITERIA if c != "integration_quality")


def label_for(criterion: str, backend_name: str) -> str:
    """The display label of a score: the paper's name, with ``(proxy: ...)`` for the offline judge and the
    judge's name when it is not the paper's."""
    name = PAPER_NAMES[criterion]
    if backend_name.startswith("offline"):
        return f"{name} (proxy: {PROXY_NAMES[criterion]})"
    if backend_name == PAPER_JUDGE:
        return name
    return f"{name} (judge: {backend_name})"


# ------------------------------------------------------------------------------------------------ schemas
class JudgeAnswer(Schema):
    """What every judge request must answer: Appendix A's output JSON ``{"score", "reason"}``. ``rationale`` is
    accepted in place of ``reason`` (answers cached before the rename, backends that name it so)."""

    score: float = Field(ge=0, le=10, description="0 (no match / identical / highly disruptive) .. 10 (perfect)")
    reason: str = Field(min_length=1, validation_alias=AliasChoices("reason", "rationale"),
                        description="a brief analysis supporting the score")


class JudgeScore(Schema):
    """One judgment as stored: ``score`` None means missing (never 0); ``error`` says why."""

    criterion: str
    score: float | None = Field(default=None, ge=0, le=10)
    reason: str = Field(default="", validation_alias=AliasChoices("reason", "rationale"))
    backend: str
    proxy: bool
    label: str
    pair_id: str | None = None
    error: str | None = None
    protocol: str = Field(default="paper", description="the judge's protocol label")


class JudgeError(RuntimeError):
    """A judgment could not be made; the message names the item and the file."""


# ------------------------------------------------------------------------------------------------ prompts
_BANDS = {
    "match": ("10: matches perfectly; 7-9: matches well with minor differences; 4-6: matches in part; "
              "1-3: matches poorly; 0: does not match at all."),
}
_OUTPUT = ('Answer with one JSON object: {"score": <number from 0 to 10>, "reason": "<a brief analysis naming the '
           'evidence>"}. Scores outside 0-10 are invalid.')

#: the ``paper`` prompts: Appendix A's role, inputs, factors and score bands, in our own words
PAPER_PROMPTS: dict[str, str] = {
    "personalization_presentation": (
        "You judge the visual presentation of a video advertisement for one viewer. You are given the product, "
        "the cover images of videos the viewer interacted with, and the advertisement. Rate how well the ad's "
        "look fits the viewer's visual taste, considering: tone (warm, cold or neutral), lighting (soft, harsh or "
        "natural), texture (smooth, rough ...) and artistic style (minimalist, modern, vintage ...). Bands: 10: "
        "the presentation fits the viewer's preferences perfectly; 7-9: fits well with small differences; 4-6: "
        "fits in part; 1-3: fits poorly; 0: does not fit at all. " + _OUTPUT),
    "personalization_content": (
        "You judge how well the content of a video advertisement matches one viewer's interests. You are given "
        "the product, the cover images of videos the viewer interacted with, and the advertisement. Consider: "
        "the subject matter; the scenes chosen (location, setting); the information angle (performance, looks, "
        "value for money ...); and the motive it appeals to (saving money, efficiency, quality, looks, health, "
        "eco-friendliness ...), each against what this viewer would enjoy. Bands: 10: fully aligned with the "
        "viewer's interests; 7-9: well aligned with some differences; 4-6: partly aligned; 1-3: poorly aligned; "
        "0: irrelevant to the viewer. " + _OUTPUT),
    "product_alignment": (
        "You judge whether a video advertisement shows its product consistently. You are given the product's "
        "information and the video. Consider: identity (appearance, colour, model or version, packaging and "
        "accessories shown correctly), brand and recognition elements (logo, branding, design language), and "
        "whether the selling points and facts agree with the product's real features. Bands: 10: the product in "
        "the video matches the actual product in every respect; 7-9: mostly consistent with small details "
        "changed; 4-6: partly consistent with significant differences; 1-3: mostly inconsistent; 0: not the "
        "product at all. " + _OUTPUT),
    "integration_quality": (
        "You judge how naturally an advertisement sits inside a video and how intrusive it feels to a viewer. "
        "You are given a video that contains the advertisement, inserted into the original video at the stated "
        "point. Consider: the contextual flow between the original content and the ad (smooth, or a sudden "
        "break); thematic consistency (tone, visual style or topic shared with the surrounding video); "
        "disruption (does it cut into a key moment, or come at a logical pause); and narrative integration "
        "(woven into the story, or an external overlay or hard cut). Bands: 10: seamless, a viewer might not "
        "perceive a disruption; 7-9: natural and well placed, little friction; 4-6: a clear break but at a "
        "logical pause or in a similar look; 1-3: intrusive, forced or jarring in tone or volume; 0: highly "
        "disruptive, it ruins the viewing experience. " + _OUTPUT),
    "diversity": (
        "You judge the diversity of several advertisements made for the SAME viewer, each for a different "
        "product. Consider whether they are too similar in: visual style (tone, lighting, texture, artistic "
        "style); narrative form (structure such as tutorial, vlog or plot twist, and tone such as professional "
        "or humorous); subject matter and scenes. Bands: 10: completely distinct, no noticeable overlap; 7-9: "
        "mostly distinct with minor similarities; 4-6: somewhat similar but distinct in key respects; 1-3: "
        "largely similar with slight variations; 0: identical in every respect. " + _OUTPUT),
}

#: the ``judge_extras`` prompts (the study's extension): the same factors, describing the extra inputs
EXTENDED_PROMPTS: dict[str, str] = {
    "personalization_presentation": (
        "You judge the visual presentation of a short video advertisement for one viewer. You see images from "
        "the viewer's own history (covers and pictures of posts and videos they engaged with) and frames of the "
        "advertisement. Rate how well the ad's look suits the viewer's visual taste, weighing: colour tone "
        "(warm, cool or neutral palette), lighting (soft, harsh, natural, dim, neon), texture (smooth, grainy, "
        "rough, glossy) and artistic style (minimal, modern, vintage, playful ...). Judge the look only, not the "
        "topic. Bands: " + _BANDS["match"] + " " + _OUTPUT),
    "personalization_content": (
        "You judge whether the content of a short video advertisement speaks to one viewer's interests. You see "
        "the titles, texts and covers of what the viewer engaged with, and the advertisement (frames and its "
        "narration script). Rate the fit of: the subject matter, the scenes and settings shown, the angle of "
        "information (performance, looks, value ...) and the motive it appeals to (saving money, efficiency, "
        "quality, beauty, health, sustainability ...) with what this viewer cares about. Bands: 10: fully "
        "aligned with the viewer's interests; 7-9: well aligned with some gaps; 4-6: partly aligned; 1-3: "
        "barely aligned; 0: irrelevant to the viewer. " + _OUTPUT),
    "product_alignment": (
        "You check a short video advertisement against the record of the product it advertises (name, brand, "
        "description, selling points, facts, claims it must never make, its logo and official images). Rate: "
        "whether the product shown is the real one (look, colour, model, packaging), whether the brand's logo "
        "and design language appear correctly, and whether every selling point and stated fact agrees with the "
        "record (a forbidden or invented claim counts heavily against it). Bands: 10: the product is shown "
        "exactly as recorded; 7-9: consistent apart from small details; 4-6: partly consistent with clear "
        "differences; 1-3: mostly inconsistent; 0: not the product at all. " + _OUTPUT),
    "integration_quality": (
        "You judge how an advertising segment was placed inside a host video. You see the integrated video and "
        "frames just before and after the point where the ad starts and where the host video resumes. Rate: "
        "the flow across both transitions (smooth or an abrupt break), whether the ad shares the host's tone, "
        "look or topic, whether it interrupts a key moment or sits at a natural pause, and whether it is woven "
        "into the host's story rather than pasted on top. Bands: 10: seamless, a viewer might not notice a "
        "break; 7-9: natural and well placed with little friction; 4-6: a clear break but at a sensible pause "
        "or in a similar style; 1-3: forced or jarring; 0: ruins the viewing experience. " + _OUTPUT),
    "diversity": (
        "You judge how different from each other several video advertisements made for the SAME viewer (for "
        "different products) are. Compare their visual style (tone, lighting, texture, artistic style), their "
        "narrative form and tone (tutorial, vlog, story, review ...; serious, playful ...) and their subjects "
        "and scenes. Bands: 10: entirely distinct; 7-9: mostly distinct with small overlaps; 4-6: similar but "
        "distinct in key respects; 1-3: largely the same with slight variations; 0: identical in every respect. "
        + _OUTPUT),
}



#: the paper's prompts (the default protocol)
PROMPTS: dict[str, str] = PAPER_PROMPTS


def prompt_for(criterion: str, protocol: Protocol | str | None = None) -> str:
    """The system prompt of ``criterion`` under ``protocol`` (``paper`` when None)."""
    proto = get_protocol(protocol or "paper")
    return (EXTENDED_PROMPTS if proto.judge_extras else PAPER_PROMPTS)[criterion]


def protocol_from_label(label: str) -> Protocol:
    """The :class:`~nextads_lib.protocol.Protocol` a label names (the inverse of ``Protocol.label``):
    ``paper``, ``extended``, ``paper+post_production``, ``extended+no_judge_extras``,
    ``paper+compat_threshold=0.2``. Raises ValueError naming the bad part."""
    base, *parts = [x.strip() for x in str(label).split("+")]
    switches: dict[str, Any] = {}
    for part in parts:
        if "=" in part:
            k, v = part.split("=", 1)
            switches[k] = float(v)
        elif part.startswith("no_") and part[3:] in SWITCHES:
            switches[part[3:]] = False
        else:
            switches[part] = True
    return get_protocol(base, **switches)


def run_protocol_of(summary: dict[str, Any] | None, manifest: Any = None) -> str:
    """The protocol label a run was made under: its summary's or manifest's ``protocol`` (a label, or a dict of
    switches), else the summary's ``settings["protocol"]``; ``extended`` when none records one (runs made before
    protocols existed had every extension on)."""
    cands: list[Any] = []
    if isinstance(summary, dict):
        cands += [summary.get("protocol"), (summary.get("settings") or {}).get("protocol")]
    if manifest is not None:
        cands.append(manifest.get("protocol") if isinstance(manifest, dict) else getattr(manifest, "protocol", None))
    for c in cands:
        if isinstance(c, Protocol):
            return c.label
        if isinstance(c, dict) and c:
            return Protocol.model_validate({k: v for k, v in c.items() if k in Protocol.model_fields}).label
        if isinstance(c, str) and c.strip():
            try:
                return protocol_from_label(c).label
            except ValueError:
                return c.strip()  # a label this version cannot parse is still the run's own record
    return "extended"


def combined_protocol(run_protocol: str, judge_protocol: str) -> str:
    """The protocol a judged number stands for: the run's label, with `` · judge: <label>`` when the judge ran
    with different judge inputs (``judge_extras``) than the run's protocol implies."""
    try:
        differs = protocol_from_label(run_protocol).judge_extras != protocol_from_label(judge_protocol).judge_extras
    except ValueError:
        differs = run_protocol != judge_protocol
    return f"{run_protocol} · judge: {judge_protocol}" if differs else run_protocol


# ------------------------------------------------------------------------------------------- frame access
_FRAMES: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
_FRAMES_LOCK = threading.Lock()
_FRAMES_MAX = 256
_DIGESTS: dict[tuple[str, int, int], str] = {}


def content_digest(path: str | Path) -> str:
    """A digest of a file's bytes, memoised per (path, mtime, size): the key under which the offline proxies
    share work between files of the same content (a GenericAds run renders one creative per product, copied into
    every pair of that product)."""
    p = Path(path)
    st = p.stat()
    k = (str(p), st.st_mtime_ns, st.st_size)
    d = _DIGESTS.get(k)
    if d is None:
        d = _DIGESTS[k] = hashlib.blake2b(p.read_bytes(), digest_size=16).hexdigest()
    return d


def video_frames(path: str | Path, n: int, width: int = PROXY_WIDTH) -> np.ndarray:
    """``n`` evenly spaced frames ``(n, H, W, 3)`` uint8 of a video decoded at ``width`` (aspect kept, even),
    memoised per (file content, n, width) so every criterion of a creative, and every copy of it, decodes it
    once. Raises MediaError."""
    p = resolve(path)
    if not p.is_file():
        raise MediaError(f"{p}: file not found")
    key = (content_digest(p), int(n), int(width))
    with _FRAMES_LOCK:
        if key in _FRAMES:
            _FRAMES.move_to_end(key)
            return _FRAMES[key]
    info = probe(p)
    w = int(width) if width else info.width
    h = max(2, int(round(info.height * w / max(info.width, 1) / 2)) * 2)
    total = info.n_frames
    if total <= 0:
        raise MediaError(f"{p}: no frames")
    idx = sample_indices(total, n)
    try:
        frames = read_frames(p, idx, size=(w, h))
    except MediaError:
        # the probed frame count can exceed what decodes (truncated file): retry on the decodable count
        from .media import count_frames  # noqa: PLC0415

        frames = read_frames(p, sample_indices(count_frames(p), n), size=(w, h))
    if len(frames) == 0:
        raise MediaError(f"{p}: no decodable frames")
    with _FRAMES_LOCK:
        _FRAMES[key] = frames
        while len(_FRAMES) > _FRAMES_MAX:
            _FRAMES.popitem(last=False)
    return frames


def frames_at(path: str | Path, times: Sequence[float], width: int = PROXY_WIDTH) -> np.ndarray:
    """Frames at ``times`` seconds (clipped to the video), decoded at ``width``."""
    p = resolve(path)
    info = probe(p)
    w = int(width)
    h = max(2, int(round(info.height * w / max(info.width, 1) / 2)) * 2)
    n = max(info.n_frames, 1)
    idx = [min(n - 1, max(0, int(round(t * info.fps)))) for t in times]
    return read_frames(p, idx, size=(w, h))


def _image_array(path: str | Path, side: int = 64) -> np.ndarray | None:
    """The image at ``path`` as a thumbnail of at most ``side`` px (None when unreadable), memoised per (file,
    mtime, side): a user's history images and a product's assets are read for every pair."""
    p = resolve(path)
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        return None
    return _thumbnail(str(p), mtime, int(side))


@functools.lru_cache(maxsize=2048)
def _thumbnail(path: str, mtime_ns: int, side: int) -> np.ndarray | None:
    from PIL import Image  # noqa: PLC0415

    try:
        im = load_image(path)
    except MediaError:
        return None
    im.thumbnail((side, side), Image.Resampling.BILINEAR)
    arr = np.asarray(im, np.uint8)
    arr.setflags(write=False)  # shared by every caller
    return arr


# ------------------------------------------------------------------------------------------------ text
def plan_text(plan: Storyboard | dict[str, Any]) -> str:
    """What the creative says and shows, from its plan: hook, each slot's narration, on-screen text and scene
    composition, the CTA (the text the judge proxies read)."""
    sb = plan if isinstance(plan, Storyboard) else Storyboard.model_validate(plan)
    parts = [sb.hook]
    for s in sb.slots:
        parts += [s.narration, s.on_screen_text, s.composition]
    parts.append(sb.cta)
    if sb.host_connection:
        parts.append(sb.host_connection)
    return ". ".join(p.strip() for p in parts if p and p.strip())


def narration_text(plan: Storyboard) -> str:
    return " ".join(s.narration for s in plan.slots if s.narration)


def embed_text(plan: Storyboard | dict[str, Any], max_words: int = 40) -> str:
    """The short text of a plan that the proxies embed with MiniLM (its cost grows with the tokens): the hook,
    the narration, the on-screen texts and the first clause of each scene composition, de-duplicated, at most
    ``max_words`` words."""
    sb = plan if isinstance(plan, Storyboard) else Storyboard.model_validate(plan)
    seen: list[str] = []
    for t in [sb.hook] + [x for s in sb.slots for x in (s.narration, s.on_screen_text, s.composition.split(",")[0])]:
        t = (t or "").strip()
        if t and t.lower() not in (x.lower() for x in seen):
            seen.append(t)
    if sb.host_connection:
        seen.append(sb.host_connection)
    words = ". ".join(seen).split()
    return " ".join(words[:max_words])


def history_texts(history: UserHistory, max_items: int = 12, max_words: int = 25) -> list[str]:
    """Up to ``max_items`` history items spread over the history (title + text, ``max_words`` words each): what
    the proxies embed as the user's interests."""
    items = [it for it in history.items if f"{it.title}{it.text}".strip()]
    if len(items) > max_items:
        items = [items[int((i + 0.5) * len(items) / max_items)] for i in range(max_items)]
    out = []
    for it in items:
        t = f"{it.title}. {it.text}".strip(". ").strip()
        out.append(" ".join(t.split()[:max_words]))
    return out


# ------------------------------------------------------------------------------------------- requests
def _history_images(history: UserHistory | None, max_images: int) -> list[Path]:
    if history is None:
        return []
    found = [resolve(p) for it in history.items for p in it.image_paths]
    found = [p for p in found if p.is_file()]
    if len(found) <= max_images:
        return found
    return [found[int((i + 0.5) * len(found) / max_images)] for i in range(max_images)]


def _product_record(product: Product, forbidden: bool = True) -> str:
    """The product's information as text; ``forbidden`` adds the claims it must never make (a judge extra)."""
    facts = "; ".join(f"{k}: {v}" for k, v in product.facts.items())
    out = (f"Product: {product.name} by {product.brand} ({product.category}, {product.subcategory}).\n"
           f"Description: {product.description}\nSelling points: {'; '.join(product.selling_points)}\n"
           f"Slogan: {product.slogan}\nFacts: {facts}")
    if forbidden:
        out += f"\nClaims it must never make: {'; '.join(product.forbidden_claims) or 'none'}"
    return out


def _product_brief(product: Product) -> str:
    """The product as the personalization prompts give it: name, brand, category, description."""
    return (f"The product: {product.name} by {product.brand} ({product.category}, {product.subcategory}). "
            f"{product.description}")


def _seam_times(integration: dict[str, Any]) -> list[float]:
    si, so = float(integration["seam_in_s"]), float(integration["seam_out_s"])
    dur = float(integration.get("integrated_duration_s") or so + 1.0)
    return [max(0.0, si - 0.5), min(dur, si + 0.3), max(0.0, so - 0.3), min(max(dur - 0.05, 0.0), so + 0.5)]


def build_request(criterion: str, pair_dir: str | Path, *, task: str, product: Product,
                  history: UserHistory | None, n_frames: int = 8, host_title: str | None = None,
                  max_images: int = 6, seam_images: bool = True,
                  protocol: Protocol | str | None = None) -> ModelRequest:
    """The request of one pair-level criterion under ``protocol`` (``paper`` when None): the prompt, the parts a
    VLM sees (under ``paper`` exactly Appendix A's inputs; with ``judge_extras`` also the plan's narration, the
    history's texts, the forbidden claims, the host's title and summary, the seam times and stills), and the
    ``context`` the offline proxy reads (paths, texts; everything JSON-able; never sent to a model)."""
    if criterion not in PAIR_CRITERIA:
        raise ValueError(f"'{criterion}' is not a pair criterion ({', '.join(PAIR_CRITERIA)}); "
                         "diversity is judged per user by judge_diversity")
    proto = get_protocol(protocol or "paper")
    extras = proto.judge_extras
    pair_dir = Path(pair_dir)
    plan = read_model(pair_dir / "plan.json", Storyboard)
    creative = pair_dir / "creative.mp4"
    pid = pair_dir.name
    ctx: dict[str, Any] = {"code": CODE_VERSION, "criterion": criterion, "task": task, "pair_id": pid,
                           "protocol": proto.label, "creative": display_path(creative), "n_frames": int(n_frames),
                           "plan_text": plan_text(plan), "embed_text": embed_text(plan)}
    parts: list[Any] = []
    item = f"pair {pid} [{criterion}]"
    if criterion in ("personalization_presentation", "personalization_content"):
        imgs = _history_images(history, max_images)
        ctx["history_images"] = [display_path(p) for p in imgs]
        ctx["history_texts"] = history_texts(history) if history is not None else []
        if extras:
            if criterion == "personalization_content" and history is not None:
                listing = "\n".join(f"- {t[:200]}" for t in ctx["history_texts"][:20])
                parts.append(TextPart(f"What the viewer engaged with (titles and texts, oldest first):\n{listing}"))
            parts.append(TextPart(f"Images from the viewer's history ({len(imgs)}):"))
        else:
            parts.append(TextPart(_product_brief(product)))
            parts.append(TextPart(f"Covers of the videos the viewer interacted with ({len(imgs)}):"))
        parts += [ImagePart(str(p)) for p in imgs]
        parts.append(TextPart(f"The advertisement for {product.name} by {product.brand}:"))
        parts.append(VideoPart(str(creative), n_frames=n_frames))
        if extras and criterion == "personalization_content":
            parts.append(TextPart(f"Its narration script: {narration_text(plan)}"))
    elif criterion == "product_alignment":
        ctx["product"] = {"id": product.id, "name": product.name, "brand": product.brand,
                          "description": product.description, "slogan": product.slogan,
                          "selling_points": list(product.selling_points), "facts": dict(product.facts),
                          "forbidden_claims": list(product.forbidden_claims) if extras else []}
        assets = [product.logo.path] + [a.path for a in product.images[:3]]
        ctx["product_assets"] = [display_path(resolve(a)) for a in assets]
        parts.append(TextPart(_product_record(product, forbidden=extras)))
        parts.append(TextPart("Its logo and official images:"))
        parts += [ImagePart(str(resolve(a))) for a in assets if resolve(a).is_file()]
        parts.append(TextPart("The advertisement:"))
        parts.append(VideoPart(str(creative), n_frames=n_frames))
        if extras:
            parts.append(TextPart(f"Its narration script: {narration_text(plan)}"))
    else:  # integration_quality
        if task != "pci":
            raise ValueError("integration_quality is judged for PCI only")
        integ = read_json(pair_dir / "integration.json")
        for k in ("seam_in_s", "seam_out_s"):
            if k not in integ:
                raise JudgeError(f"{pair_dir / 'integration.json'}: field '{k}' is missing")
        integrated = pair_dir / "integrated.mp4"
        summary = _host_summary_text(pair_dir) if extras else ""
        ctx["integration"] = {k: integ.get(k) for k in (
            "seam_in_s", "seam_out_s", "seam_change_in", "seam_change_out", "host_median_change",
            "integrated_duration_s", "insert_at_s", "segment_duration_s")}
        ctx["integrated"] = display_path(integrated)
        ctx["host_text"] = " ".join(x for x in (host_title, summary) if x)
        if not extras:
            at = integ.get("insert_at_s", integ["seam_in_s"])
            parts.append(TextPart(f"The video below contains an advertisement inserted into the original video at "
                                  f"its integration point, {float(at):.1f} s into the original video."))
            parts.append(VideoPart(str(integrated), n_frames=n_frames))
        else:
            times = _seam_times(integ)
            parts.append(TextPart(f"Host video: {ctx['host_text'] or 'no title'}. The ad segment runs from "
                                  f"{integ['seam_in_s']:.2f} s to {integ['seam_out_s']:.2f} s of the integrated "
                                  "video."))
            parts.append(VideoPart(str(integrated), n_frames=n_frames))
            # a VLM also sees stills around both seams; the offline proxy reads the seams from integration.json
            try:
                seam = frames_at(integrated, times, width=320) if seam_images else []
            except MediaError:
                seam = []  # the undecodable video is reported by the decode check
            names = ["before the ad starts", "after the ad starts", "before the host resumes", "after the host resumes"]
            for (t, nm), fr in zip(zip(times, names), seam):
                parts.append(TextPart(f"Frame at {t:.2f} s ({nm}):"))
                parts.append(ImagePart(_pil(fr)))
    return ModelRequest(task=f"judge.{criterion}", system=prompt_for(criterion, proto), parts=parts,
                        schema=JudgeAnswer, context=ctx, item=item, max_output_tokens=1024)


def _pil(arr: np.ndarray):
    from PIL import Image  # noqa: PLC0415

    return Image.fromarray(np.asarray(arr, np.uint8))


def _host_summary_text(pair_dir: Path) -> str:
    """A short text of the host from ``host_summary.json`` (any string fields among topic/content/summary)."""
    p = pair_dir / "host_summary.json"
    if not p.is_file():
        return ""
    try:
        d = read_json(p)
    except Exception:  # noqa: BLE001 - an unreadable summary only weakens the topic term
        return ""
    out = []
    for k in ("title", "topic", "content", "summary"):
        v = d.get(k) if isinstance(d, dict) else None
        if isinstance(v, str) and v.strip():
            out.append(v.strip())
    return ". ".join(out)[:600]


# ---------------------------------------------------------------------------------------------- judging
def _missing(criterion: str, backend: Any, pair_id: str | None, error: str,
             protocol: Protocol | str | None = None) -> JudgeScore:
    return JudgeScore(criterion=criterion, score=None, reason="", backend=backend.name,
                      proxy=backend.name.startswith("offline"), label=label_for(criterion, backend.name),
                      pair_id=pair_id, error=error, protocol=get_protocol(protocol or "paper").label)


def _check_videos(req: ModelRequest, backend: Any, videos: Sequence[Path], n_frames: int) -> str | None:
    """Decode check before a (non-cached) model call: the error text for the first undecodable video, else
    None. The offline proxies decode the same frames themselves (a MediaError is reported the same way), so
    they skip it."""
    if backend.name.startswith("offline"):
        return None
    if backend.cache is not None and backend.cache.has("model", backend.cache_key(req)):
        return None
    for v in videos:
        try:
            video_frames(v, n_frames)  # the frames the offline proxies use: decoded once, memoised
        except MediaError as e:
            return f"{v.name}: {e}"
    return None


def judge_pair(criterion: str, pair_dir: str | Path, *, task: str, product: Product, history: UserHistory | None,
               backend: Any, n_frames: int = 8, host_title: str | None = None,
               protocol: Protocol | str | None = None) -> JudgeScore:
    """Judge one pair on one criterion under ``protocol`` (``paper`` when None: Appendix A's inputs only). Reads
    ``plan.json`` and ``creative.mp4`` (PCI integration: also ``integrated.mp4`` and ``integration.json``). Never
    raises for bad input or a failed answer: the score is None and ``error`` names the file or the backend
    failure. Raises BackendError only for a setup error of the backend (no API key, client not installed), which
    no item could get past."""
    pair_dir = Path(pair_dir)
    pid = pair_dir.name
    proto = get_protocol(protocol or "paper")

    try:
        req = build_request(criterion, pair_dir, task=task, product=product, history=history, n_frames=n_frames,
                            host_title=host_title, seam_images=not backend.name.startswith("offline"),
                            protocol=proto)
    except (OSError, ValueError, RuntimeError) as e:
        return _missing(criterion, backend, pid, f"{type(e).__name__}: {e}", proto)
    if criterion == "integration_quality":
        err = _check_videos(req, backend, [pair_dir / "integrated.mp4"], integration_frames(n_frames))
    else:
        err = _check_videos(req, backend, [pair_dir / "creative.mp4"], n_frames)
    if err:
        return _missing(criterion, backend, pid, f"undecodable video: {err}", proto)
    try:
        ans: JudgeAnswer = backend.complete(req).value
    except BackendError as e:
        if e.task == "setup":  # no key / no client: a configuration error for every item, not this one's
            raise
        return _missing(criterion, backend, pid, f"BackendError: {e}", proto)
    except MediaError as e:
        return _missing(criterion, backend, pid, f"undecodable video: {e}", proto)
    except (OSError, ValueError, RuntimeError) as e:
        return _missing(criterion, backend, pid, f"{type(e).__name__}: {e}", proto)
    return JudgeScore(criterion=criterion, score=float(ans.score), reason=ans.reason, backend=backend.name,
                      proxy=backend.name.startswith("offline"), label=label_for(criterion, backend.name),
                      pair_id=pid, protocol=proto.label)


def build_diversity_request(pair_dirs: Sequence[Path], n_frames: int = 8,
                            protocol: Protocol | str | None = None) -> ModelRequest:
    """The diversity request over one user's creatives: under ``paper`` only the videos (Appendix A); with
    ``judge_extras`` each ad's product and narration too."""
    proto = get_protocol(protocol or "paper")
    dirs = sorted(Path(d) for d in pair_dirs)
    per = max(2, n_frames // 2)
    ctx: dict[str, Any] = {"code": CODE_VERSION, "criterion": "diversity", "protocol": proto.label,
                           "n_frames": int(n_frames), "creatives": []}
    parts: list[Any] = [TextPart(f"{len(dirs)} advertisements made for the same viewer, each for a different product:")]
    for i, d in enumerate(dirs, 1):
        plan = read_model(d / "plan.json", Storyboard)
        ctx["creatives"].append({"pair_id": d.name, "creative": display_path(d / "creative.mp4"),
                                 "embed_text": embed_text(plan)})
        if proto.judge_extras:
            parts.append(TextPart(f"Ad {i} (product {plan.product_id}); narration: {narration_text(plan)}"))
        else:
            parts.append(TextPart(f"Ad {i}:"))
        parts.append(VideoPart(str(d / "creative.mp4"), n_frames=per))
    return ModelRequest(task="judge.diversity", system=prompt_for("diversity", proto), parts=parts,
                        schema=JudgeAnswer, context=ctx,
                        item=f"creatives {', '.join(d.name for d in dirs)} [diversity]", max_output_tokens=1024)


def judge_diversity(pair_dirs: list[Path], *, backend: Any, n_frames: int = 8,
                    protocol: Protocol | str | None = None) -> JudgeScore:
    """Diversity of all creatives of one user (``pair_id`` None) under ``protocol`` (``paper`` when None);
    fewer than two creatives is missing."""
    proto = get_protocol(protocol or "paper")

    dirs = [Path(d) for d in pair_dirs]
    if len(dirs) < 2:
        return _missing("diversity", backend, None, f"needs at least 2 creatives of the user, got {len(dirs)}", proto)
    try:
        req = build_diversity_request(dirs, n_frames, protocol=proto)
    except (OSError, ValueError, RuntimeError) as e:
        return _missing("diversity", backend, None, f"{type(e).__name__}: {e}", proto)
    err = _check_videos(req, backend, [d / "creative.mp4" for d in dirs], n_frames)
    if err:
        return _missing("diversity", backend, None, f"undecodable video: {err}", proto)
    try:
        ans: JudgeAnswer = backend.complete(req).value
    except BackendError as e:
        if e.task == "setup":
            raise
        return _missing("diversity", backend, None, f"BackendError: {e}", proto)
    except MediaError as e:
        return _missing("diversity", backend, None, f"undecodable video: {e}", proto)
    except (OSError, ValueError, RuntimeError) as e:
        return _missing("diversity", backend, None, f"{type(e).__name__}: {e}", proto)
    return JudgeScore(criterion="diversity", score=float(ans.score), reason=ans.reason, backend=backend.name,
                      proxy=backend.name.startswith("offline"), label=label_for("diversity", backend.name),
                      protocol=proto.label)


# ------------------------------------------------------------------------------------------- run level
#: columns of ``judge_<task>.parquet`` (interfaces section 5). ``run_protocol``: the protocol the run was made
#: under; ``judge_protocol``: the judge's own; ``protocol``: what the number stands for (:func:`combined_protocol`)
COLUMNS = ["task", "run", "system", "director_backend", "producer_backend", "judge_backend", "protocol",
           "run_protocol", "judge_protocol", "pair_id", "user_id", "product_id", "criterion", "score", "reason",
           "proxy", "label", "error"]


def list_runs(paths: StudyPaths, task: str) -> list[str]:
    """Run directories of a task that hold a ``summary.json`` or pair manifests, sorted by name."""
    root = paths.runs / task
    if not root.is_dir():
        return []
    out = []
    for d in sorted(root.iterdir()):
        if d.is_dir() and d.name != "notebooks" and ((d / "summary.json").is_file() or any(d.glob("*/manifest.json"))):
            out.append(d.name)
    return out


def _load_context(paths: StudyPaths, task: str) -> tuple[dict[str, Product], dict[str, UserHistory], dict[str, BenchPair]]:
    lib = read_model(paths.library_json, ProductLibrary)
    products = {p.id: p for p in lib.products}
    users: dict[str, UserHistory] = {}
    if paths.bench_users(task).is_file():
        users = {u.user_id: u for u in read_jsonl(paths.bench_users(task), UserHistory)}
    pairs: dict[str, BenchPair] = {}
    if paths.bench_pairs(task).is_file():
        pairs = {p.pair_id: p for p in read_jsonl(paths.bench_pairs(task), BenchPair)}
    return products, users, pairs


def judge_run(paths: StudyPaths, task: str, run: str, backend: Any, n_frames: int = 8, workers: int = 2,
              progress: bool = False, protocol: Protocol | str | None = None) -> list[dict[str, Any]]:
    """Judge every pair of one run directory (and each user's creatives for diversity) under the judge's
    ``protocol`` (``paper`` when None), whatever protocol the run was made under; returns the rows of
    ``judge_<task>.parquet`` (columns :data:`COLUMNS`). Failed pairs get a row per criterion with score None
    and the reason; nothing raises for one bad pair. One user is one job of the current executor
    (:func:`nextads_lib.executor.use`): locally a thread pool of ``workers`` sharing ``backend``; on Ray one
    task per user, each worker process building the backend from its name once."""
    from . import executor  # noqa: PLC0415

    ctx = _RunJudge(paths, task, run, backend, n_frames, protocol)
    uids = sorted(ctx.by_user)
    key = ("judge_run", str(paths.root), task, run, backend.name, int(n_frames), ctx.proto.label)
    jobs = [{"key": key, "data_root": str(paths.root), "task": task, "run": run, "n_frames": int(n_frames),
             "protocol": ctx.proto, "uid": uid, "settings": {"judge_backend": backend.name}} for uid in uids]
    bar = None
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        bar = tqdm(total=len(uids), desc=f"judge {task}/{run}", unit="user", mininterval=2.0)
    with _single_torch_thread(backend.name.startswith("offline")), executor.shared(key, ctx):
        results = executor.map_ordered(_judge_user_job, jobs, workers=workers, threads=True,
                                       on_result=(lambda i, r: bar.update(1)) if bar is not None else None)
    if bar is not None:
        bar.close()
    from .schemas import Usage  # noqa: PLC0415

    for res in results:  # the calls Ray workers made, on the driver's backend (its usage summary counts them)
        backend.usage.extend(Usage.model_validate(u) for u in res.get("usage", []))
    return [r for res in results for r in res["rows"]]


def _judge_user_job(job: dict[str, Any]) -> dict[str, Any]:
    """One user's judgments (module level: a Ray task). The run's context is the driver's (local threads) or
    built once per worker process, with the judge backend from its name."""
    from . import executor  # noqa: PLC0415
    from .backends import get_backend  # noqa: PLC0415

    def build() -> _RunJudge:
        paths = StudyPaths(Path(job["data_root"]))
        backend = get_backend(job["settings"]["judge_backend"], cache_dir=paths.cache)
        ctx = _RunJudge(paths, job["task"], job["run"], backend, job["n_frames"], job["protocol"])
        ctx.own_backend = True
        return ctx

    ctx = executor.shared_or(job["key"], build)
    if not ctx.own_backend:  # the driver's backend (local threads): its usage is recorded there already
        return {"rows": ctx.one_user(job["uid"])}
    n0 = len(ctx.backend.usage)
    rows = ctx.one_user(job["uid"])
    return {"rows": rows, "usage": [u.model_dump(mode="json") for u in ctx.backend.usage[n0:]]}


class _RunJudge:
    """What judging one run needs (its manifests by user, products, histories, bench pairs) and one user's
    judgments (:meth:`one_user`)."""

    def __init__(self, paths: StudyPaths, task: str, run: str, backend: Any, n_frames: int,
                 protocol: Protocol | str | None):
        self.proto = proto = get_protocol(protocol or "paper")
        self.own_backend = False  # True when a worker process built the backend from its name
        self.task, self.backend, self.n_frames = task, backend, n_frames
        run_dir = paths.run_dir(task, run)
        self.products, self.users, self.bench = _load_context(paths, task)
        self.crits = [c for c in criteria_for(task) if c != "diversity"]
        manifests: list[tuple[Path, PairManifest | None, str | None]] = []
        for d in sorted(p for p in run_dir.iterdir() if p.is_dir() and (p / "manifest.json").is_file()):
            try:
                manifests.append((d, read_model(d / "manifest.json", PairManifest), None))
            except Exception as e:  # noqa: BLE001 - a broken manifest is recorded, the run goes on
                manifests.append((d, None, f"{type(e).__name__}: {e}"))
        self.summary = summary = read_json(run_dir / "summary.json") if (run_dir / "summary.json").is_file() else {}
        self.base = {"task": task, "run": run, "system": summary.get("system", run.split("__")[0]),
                     "director_backend": summary.get("director_backend", ""),
                     "producer_backend": summary.get("producer_backend", ""), "judge_backend": backend.name,
                     "judge_protocol": proto.label}
        self.by_user: dict[str, list[tuple[Path, PairManifest | None, str | None]]] = {}
        for d, m, err in manifests:
            self.by_user.setdefault(m.user_id if m is not None else f"?{d.name}", []).append((d, m, err))

    def row(self, d: Path, m: PairManifest | None, s: JudgeScore) -> dict[str, Any]:
        r = dict(self.base)
        if m is not None:
            r.update(system=m.system, director_backend=m.director_backend, producer_backend=m.producer_backend)
        rp = run_protocol_of(self.summary, m)
        r.update(pair_id=s.pair_id, user_id=(m.user_id if m is not None else None),
                 product_id=(m.product_id if m is not None and s.pair_id is not None else None),
                 criterion=s.criterion, score=s.score, reason=s.reason, proxy=s.proxy, label=s.label,
                 error=s.error, run_protocol=rp, protocol=combined_protocol(rp, self.proto.label))
        return r

    def one_user(self, uid: str) -> list[dict[str, Any]]:
        backend, proto, crits, row, n_frames, task = (self.backend, self.proto, self.crits, self.row,
                                                      self.n_frames, self.task)
        rows, ok_dirs = [], []
        last_m = None
        for d, m, err in self.by_user[uid]:
            if m is None or m.status == "failed" or not (d / "creative.mp4").is_file():
                why = err or (f"pair failed at {m.stage_failed or 'run'}: {m.failure}" if m is not None and m.status == "failed"
                              else "creative.mp4 missing")
                for c in crits:
                    rows.append(row(d, m, _missing(c, backend, d.name, f"skipped: {why}", proto)))
                continue
            last_m = m
            ok_dirs.append(d)
            product = self.products.get(m.product_id)
            if product is None:
                for c in crits:
                    rows.append(row(d, m, _missing(c, backend, d.name,
                                                   f"product '{m.product_id}' is not in the library", proto)))
                continue
            bp = self.bench.get(m.pair_id)
            host_title = getattr(bp, "host_title", None) if bp is not None else None
            for c in crits:
                try:
                    s = judge_pair(c, d, task=task, product=product, history=self.users.get(m.user_id), backend=backend,
                                   n_frames=n_frames, host_title=host_title, protocol=proto)
                except BackendError:
                    raise  # a setup error (no key, no client): stop with its message instead of 500 missing rows
                except Exception as e:  # noqa: BLE001 - never stop the run for one judgment
                    s = _missing(c, backend, d.name, f"{type(e).__name__}: {e} | "
                                 + traceback.format_exc(limit=2).replace("\n", " ")[-300:], proto)
                rows.append(row(d, m, s))
        if last_m is not None:
            try:
                s = judge_diversity(ok_dirs, backend=backend, n_frames=n_frames, protocol=proto)
            except BackendError:
                raise
            except Exception as e:  # noqa: BLE001
                s = _missing("diversity", backend, None, f"{type(e).__name__}: {e}", proto)
            r = row(ok_dirs[0], last_m, s)
            r["pair_id"], r["product_id"] = None, None
            rows.append(r)
        return rows


    def planned_calls(self, uid: str, check_cache: bool = True) -> tuple[list[Any], set[str]]:
        """The requests :meth:`one_user` would send for ``uid`` (:class:`~nextads_lib.planner.PlannedCall`), each
        checked against the backend's model cache when ``check_cache`` (else counted as not cached, without
        building it). A request that cannot be built is not counted (the judgment is recorded missing, no call);
        an undecodable video is (its decode check comes at run time). Also the pairs with an uncached request."""
        from .planner import PlannedCall  # noqa: PLC0415
        from .ratelimit import estimate_tokens  # noqa: PLC0415

        backend, name = self.backend, self.backend.name

        def planned(build: Any, task: str) -> list[PlannedCall]:
            if not check_cache:
                return [PlannedCall(name, task)]
            try:
                req = build()
            except Exception:  # noqa: BLE001 - the run records the judgment missing without a call
                return []
            cached = backend.cache is not None and backend.cache.has("model", backend.cache_key(req))
            return [PlannedCall(name, req.task, cached, max(0, estimate_tokens(req) - req.max_output_tokens))]

        out: list[PlannedCall] = []
        todo: set[str] = set()
        ok_dirs = []
        offline = name.startswith("offline")
        for d, m, _err in self.by_user[uid]:
            if m is None or m.status == "failed" or not (d / "creative.mp4").is_file():
                continue
            ok_dirs.append(d)
            product = self.products.get(m.product_id)
            if product is None:
                continue
            bp = self.bench.get(m.pair_id)
            host_title = getattr(bp, "host_title", None) if bp is not None else None
            history = self.users.get(m.user_id)
            for c in self.crits:
                got = planned(lambda c=c, d=d, product=product, history=history, host_title=host_title: build_request(
                    c, d, task=self.task, product=product, history=history, n_frames=self.n_frames,
                    host_title=host_title, seam_images=not offline, protocol=self.proto), f"judge.{c}")
                out += got
                if any(not x.cached for x in got):
                    todo.add(d.name)
        if len(ok_dirs) >= 2:
            out += planned(lambda: build_diversity_request(ok_dirs, self.n_frames, protocol=self.proto),
                           "judge.diversity")
        return out, todo


def planned_calls(paths: StudyPaths, tasks: Sequence[str], backend: Any, n_frames: int = 8,
                  protocol: Protocol | str | None = None, runs: Sequence[str] | None = None
                  ) -> tuple[list[Any], int, int, int]:
    """Every request :func:`judge_all` with these arguments would send (the run planner's input,
    :func:`nextads_lib.planner.plan_judge`): ``(calls, runs, creatives, creatives with an uncached call)``.
    The offline proxy judge's requests are counted without building them or checking the cache (they cost
    nothing, and hashing every video would slow the embedded study)."""
    check = not backend.name.startswith("offline")
    calls: list[Any] = []
    n_runs = items = todo = 0
    for task in tasks:
        for run in [r for r in list_runs(paths, task) if runs is None or r in set(runs)]:
            ctx = _RunJudge(paths, task, run, backend, n_frames, protocol)
            n_runs += 1
            for uid in sorted(ctx.by_user):
                got, pairs_todo = ctx.planned_calls(uid, check_cache=check)
                calls += got
                items += len(ctx.by_user[uid])
                todo += len(pairs_todo)
    return calls, n_runs, items, todo


@contextlib.contextmanager
def _single_torch_thread(active: bool):
    """The offline proxies embed with MiniLM on one thread (the judge's thread pool and the decoders use the
    other core; several intra-op threads on a busy 2-core machine are 3x slower). Restored after."""
    if not active:
        yield
        return
    from . import embed  # noqa: PLC0415

    old = embed._THREADS["n"]
    embed.set_threads(1)
    try:
        yield
    finally:
        embed.set_threads(old)


def judge_all(paths: StudyPaths, tasks: Sequence[str] | str, backend: Any, n_frames: int = 8, workers: int = 2,
              progress: bool = False, protocol: Protocol | str | None = None,
              runs: Sequence[str] | None = None, max_cost_usd: float | None = None) -> dict[str, Any]:
    """Judge every run of each task (paper and extended runs alike; ``runs`` restricts to those names) under the
    judge's ``protocol`` (``paper`` when None) and write ``paths.results / judge_<task>.parquet``; returns
    ``{task: DataFrame}`` (a task without runs is left out and its parquet untouched). ``max_cost_usd`` > 0:
    a paid backend's plan (:func:`nextads_lib.planner.plan_judge`) is checked first, and a plan over it raises
    :class:`~nextads_lib.executor.BudgetExceeded` before any call, with nothing written."""
    import pandas as pd  # noqa: PLC0415

    from .store import write_parquet  # noqa: PLC0415

    if isinstance(tasks, str):
        tasks = [t.strip() for t in tasks.split(",") if t.strip()]
    if max_cost_usd is not None and max_cost_usd > 0 and not backend.name.startswith("offline"):
        from . import planner  # noqa: PLC0415

        planner.check_budget(planner.plan_judge(paths, list(tasks), backend, n_frames=n_frames, protocol=protocol,
                                                runs=list(runs) if runs is not None else None), max_cost_usd)
    out = {}
    for task in tasks:
        names = [r for r in list_runs(paths, task) if runs is None or r in set(runs)]
        if not names:
            continue
        rows = []
        for run in names:
            rows += judge_run(paths, task, run, backend, n_frames=n_frames, workers=workers, progress=progress,
                              protocol=protocol)
        df = pd.DataFrame(rows, columns=COLUMNS)
        df["score"] = df["score"].astype("float64")
        dest = paths.results / f"judge_{task}.parquet"
        write_parquet(dest, df)
        out[task] = df
    return out


def run_means(df: Any, decimals: int = 2) -> Any:
    """Per run x criterion: the protocol, mean score, number judged and missing, and the label (deterministic
    table)."""
    import pandas as pd  # noqa: PLC0415

    if df is None or len(df) == 0:
        return pd.DataFrame(columns=["run", "criterion", "protocol", "label", "mean", "n", "missing"])
    g = df.groupby(["run", "criterion"], sort=True)
    t = g.agg(protocol=("protocol", "first"), label=("label", "first"), mean=("score", "mean"), n=("score", "count"),
              missing=("score", lambda s: int(s.isna().sum()))).reset_index()
    t["mean"] = t["mean"].round(decimals)
    order = {c: i for i, c in enumerate(CRITERIA)}
    t = t.sort_values(["run", "criterion"], key=lambda s: s.map(order) if s.name == "criterion" else s)
    return t.reset_index(drop=True)


# ===================================================================================== offline proxies
def _history_pixels(paths_: Sequence[str]) -> list[np.ndarray]:
    out = []
    for p in paths_:
        a = _image_array(p, 48)
        if a is not None:
            out.append(a)
    return out


@register_offline("judge.personalization_presentation")
def offline_presentation(req: ModelRequest) -> JudgeAnswer:
    ctx = req.context
    hist = _history_pixels(ctx.get("history_images", []))
    frames = video_frames(ctx["creative"], ctx["n_frames"])
    if not hist:
        raise BackendError(req.item, req.task, "no readable history image to compare the creative with")
    score, t = presentation_proxy(hist, frames)
    return JudgeAnswer(score=round(score, 4), rationale=(
        f"Proxy: hue x saturation agreement {t['hs']:.2f} and look agreement {t['look']:.2f} (colourfulness, "
        f"contrast, texture, edges) between {len(hist)} history images and {len(frames)} creative frames, "
        f"{t['copied']:.0%} of the frames' pixels left out as copies of the history (10 x (0.7 H + 0.3 L)). "
        "Weak: " + PROXY_WEAKNESS["personalization_presentation"] + "."))


@register_offline("judge.personalization_content")
def offline_content(req: ModelRequest) -> JudgeAnswer:
    ctx = req.context
    texts = ctx.get("history_texts", [])
    if not texts:
        raise BackendError(req.item, req.task, "the user's history has no text to compare the plan with")
    score, t = content_proxy(texts, ctx["embed_text"])
    example = texts[int(t["example"])]
    return JudgeAnswer(score=round(score, 4), rationale=(
        f"Proxy: best match {t['interest']:.2f} (cosine {t['cos_interest']:.2f}) with one of the user's own "
        f"{int(t['interests'])} interest clusters ({t['share']:.0%} of the history, e.g. \"{example[:60]}\") and "
        f"MiniLM cosine {t['cos']:.2f} with the history's centroid, between {len(texts)} history texts and the plan "
        "text (10 x (0.6 I + 0.4 C)). Weak: " + PROXY_WEAKNESS["personalization_content"] + "."))


_PRODUCT_MEMO: OrderedDict[str, tuple[float, dict[str, float]]] = OrderedDict()


@register_offline("judge.product_alignment")
def offline_product(req: ModelRequest) -> JudgeAnswer:
    ctx = req.context
    frames = video_frames(ctx["creative"], ctx["n_frames"])
    assets = [a for a in (_image_array(p, 96) for p in ctx.get("product_assets", [])) if a is not None]
    # the same creative, assets, text and record give the same answer (a GenericAds run repeats them per user)
    key = json.dumps([content_digest(resolve(ctx["creative"])), ctx["n_frames"], ctx.get("product_assets", []),
                      [a.shape for a in assets], ctx["plan_text"], ctx["product"]], sort_keys=True, default=str)
    with _FRAMES_LOCK:
        hit = _PRODUCT_MEMO.get(key)
    if hit is None:
        hit = product_proxy(frames, assets, ctx["plan_text"], ctx["product"])
        with _FRAMES_LOCK:
            _PRODUCT_MEMO[key] = hit
            while len(_PRODUCT_MEMO) > 4096:
                _PRODUCT_MEMO.popitem(last=False)
    score, t = hit
    return JudgeAnswer(score=round(score, 4), rationale=(
        f"Proxy: product assets found in the frames {t['visual']:.2f} ({len(assets)} assets), name/brand in the "
        f"text {t['name']:.1f}, selling points covered {t['points']:.2f}, factual consistency {t['facts']:.2f} "
        f"({int(t['unsupported'])} unsupported numbers), {int(t['forbidden'])} forbidden claims "
        f"(10 x (0.4 V + 0.2 N + 0.25 P + 0.15 F) - 3 x forbidden). Weak: " + PROXY_WEAKNESS["product_alignment"] + "."))


def integration_frames(n_frames: int) -> int:
    """Frames the integration proxy samples from the integrated video (host and segment together)."""
    return 2 * max(int(n_frames), 4)


@register_offline("judge.integration_quality")
def offline_integration(req: ModelRequest) -> JudgeAnswer:
    ctx = req.context
    integ = ctx["integration"]
    k = seam_continuity(integ.get("seam_change_in"), integ.get("seam_change_out"), integ.get("host_median_change"))
    si, so = float(integ["seam_in_s"]), float(integ["seam_out_s"])
    p = resolve(ctx["integrated"])
    info = probe(p)
    n = integration_frames(ctx["n_frames"])
    fr = video_frames(p, n)
    times = [i / max(info.fps, 1e-6) for i in sample_indices(max(info.n_frames, 1), n)][: len(fr)]
    host = [f for f, t in zip(fr, times) if t < si or t > so] or [fr[0]]
    seg = [f for f, t in zip(fr, times) if si <= t <= so] or [fr[len(fr) // 2]]
    hb = np.mean([colour_hist(f) for f in host], axis=0)
    sb = np.mean([colour_hist(f) for f in seg], axis=0)
    v = bhattacharyya(hb, sb)
    if k is None:  # no seam measurements: measure the two seams on the frames themselves
        a = frames_at(p, [max(0.0, si - 0.1), si + 0.05, max(0.0, so - 0.05), so + 0.1]).astype(np.float32) / 255
        k = _clip01(1.0 - float(np.mean([np.abs(a[0] - a[1]).mean(), np.abs(a[2] - a[3]).mean()])) / 0.25)
    host_text = ctx.get("host_text") or ""
    if host_text:
        cos = float(embed.similarity([host_text], [ctx["embed_text"]])[0, 0])
        tp = _clip01(cos / 0.6)
    else:
        cos, tp = float("nan"), 0.5
    score = 10.0 * (0.5 * k + 0.25 * v + 0.25 * tp)
    return JudgeAnswer(score=round(score, 4), rationale=(
        f"Proxy: seam continuity {k:.2f}, host/segment colour agreement {v:.2f}, host/plan topic similarity "
        f"{tp:.2f}{' (no host text: neutral 0.5)' if not host_text else ''} (10 x (0.5 K + 0.25 V + 0.25 Tp)). Weak: " + PROXY_WEAKNESS["integration_quality"] + "."))


@register_offline("judge.diversity")
def offline_diversity(req: ModelRequest) -> JudgeAnswer:
    cr = req.context["creatives"]
    frame_sets = [video_frames(c["creative"], req.context["n_frames"]) for c in cr]
    score, t = diversity_proxy(frame_sets, [c["embed_text"] for c in cr])
    return JudgeAnswer(score=round(score, 4), rationale=(
        f"Proxy: over {len(cr)} creatives, mean pairwise colour-histogram similarity {t['visual']:.2f} and plan "
        f"text cosine {t['text']:.2f} (10 x (1 - (0.5 BC + 0.5 cos))). Weak: " + PROXY_WEAKNESS["diversity"] + "."))


__all__ = ["CRITERIA", "PAIR_CRITERIA", "PAPER_NAMES", "PROXY_NAMES", "PROMPTS", "PAPER_PROMPTS", "EXTENDED_PROMPTS",
           "prompt_for", "protocol_from_label", "run_protocol_of", "combined_protocol", "COLUMNS", "JudgeAnswer",
           "JudgeScore", "JudgeError", "criteria_for", "label_for", "build_request", "build_diversity_request",
           "judge_pair", "judge_diversity", "judge_run", "judge_all", "planned_calls", "list_runs", "run_means", "video_frames",
           "colour_hist", "bhattacharyya", "template_match", "plan_text",
           "presentation_proxy", "content_proxy", "product_proxy", "seam_continuity", "diversity_proxy"]
