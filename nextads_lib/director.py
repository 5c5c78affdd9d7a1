"""The Director (paper section 3.2.1, Figure 6): user modeling, user-product matching, storyboard, asset grounding.

Each stage is one function that builds a :class:`~nextads_lib.backends.ModelRequest` (the prompt, the parts and
a JSON-able ``context`` of structured inputs), sends it through a backend and validates the answer into a
schema of :mod:`nextads_lib.schemas`. Nothing here calls a model around the backend: a VLM Director
(``openai:gpt-4o``, ``hf:Qwen/Qwen3-VL-8B-Instruct`` ...) and the ``offline`` default see the same requests.

The offline handlers registered at the bottom of this module are transparent heuristics over the request's
``context`` (sentence embeddings from MiniLM, colour statistics of the history images, templates). Their
artifacts carry ``backend="offline"``; they are never presented as VLM output.

Stages, in the order the PCG pipeline runs them::

    profile = model_user(history, backend, cache)                      # once per user
    match   = match_product(profile, product, backend, threshold)      # per pair; fallback below threshold
    plan    = plan_storyboard(product, backend, profile=..., match=..., duration_s=12, aspect_ratio="9:16")
    ground  = ground_assets(product, pair_dir, profile=..., history=...)  # collage.png + sources

PCI passes a :class:`HostContext` to :func:`plan_storyboard` (start from the integration frame, return to
it) and the integration frame to :func:`ground_assets` as ``start_frame``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field, ValidationError

from . import draw as D
from . import embed
from .backends import BackendError, ImagePart, ModelRequest, TextPart, VideoPart, register_offline
from .config import AI_LABEL, DEFAULT_SEED, display_path, resolve
from .media import MediaError, load_image, sample_frames, save_image
from .schemas import (
    Grounding,
    GroundingSource,
    HistoryItem,
    MatchResult,
    PresentationStyle,
    Product,
    Schema,
    Slot,
    Storyboard,
    TopicCompatibility,
    TopicPreference,
    UserHistory,
    UserProfile,
    VideoAnnotation,
    VisualStyle,
)
from .seed import rng
from .store import Cache, content_key, file_digest
from .topics import LIGHTINGS, NARRATIVES, CameraMove, PALETTES, TONES, TOPIC_IDS, TOPICS, topic_name, topic_text

#: bump when a stage's logic or prompt changes: it is part of every cache key of this module
CODE_VERSION = "director-2"

#: Default compatibility threshold of :func:`match_product`. With the offline scorer a topic the product
#: declares scores at least 0.55, an undeclared one at most 0.45 (0.45 x its text similarity); 0.35 keeps
#: every declared topic and an undeclared one only when its text is strongly related (cosine >= ~0.42), so
#: a pair that would need a "forced" match falls back to the generic plan (paper section 5.3.1).
DEFAULT_COMPAT_THRESHOLD = 0.35

#: storyboard length limits (seconds) and slot length limits
MIN_SLOT_S, MAX_SLOT_S = 2.0, 3.0
_EPS = 1e-6
#: narration pace: the Director writes for a natural voice-over (2.5 words per second of slot, 7 words in a
#: 3 s slot); validation refuses a line that could only be rushed through (more than 3 words per second)
NARRATION_WPS, MAX_NARRATION_WPS = 2.5, 3.0


def narration_budget(duration_s: float, words_per_s: float = NARRATION_WPS) -> int:
    """How many words of narration a slot of ``duration_s`` seconds holds at ``words_per_s``."""
    return max(2, int(math.floor(duration_s * words_per_s + _EPS)))


class DirectorError(RuntimeError):
    """A Director stage could not produce a valid artifact; the message names the item and the stage."""

    def __init__(self, item: str, stage: str, reason: str):
        self.item, self.stage, self.reason = item, stage, reason
        super().__init__(f"{item}: {stage}: {reason}")


class StoryboardError(DirectorError):
    """The storyboard failed validation twice (the first answer and its revision)."""

    def __init__(self, item: str, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__(item, "storyboard", "invalid after one revision: " + "; ".join(self.errors))


class HostContext(Schema):
    """What PCI tells the Director about the host video at the integration point."""

    item_id: str
    topic: str = Field(description="the host's topic (a taxonomy id or free text)")
    summary: str = Field(description="one or two sentences on the host's content at the point")
    frame_path: str = Field(description="PNG of the integration frame")
    timestamp_s: float = Field(ge=0)


# ------------------------------------------------------------------------------------- model answers
class ProfileAnswer(Schema):
    """What the backend answers for ``director.user_profile`` (the ids are filled in by the code)."""

    topics: list[TopicPreference] = Field(min_length=1)
    presentation: PresentationStyle
    visual: VisualStyle
    summary: str = ""


class MatchAnswer(Schema):
    """What the backend answers for ``director.match``."""

    candidates: list[TopicCompatibility] = Field(min_length=1)
    best_topic: str
    selling_points: list[str] = Field(min_length=1)


class StoryboardAnswer(Schema):
    """What the backend answers for ``director.storyboard`` / ``director.storyboard_revise``."""

    hook: str
    matched_topic: str | None = None
    slots: list[Slot] = Field(min_length=1)
    cta: str
    host_connection: str | None = None


# ------------------------------------------------------------------------------------------- prompts
PROFILE_SYSTEM = (
    "You are the Director of a personalized video-advertising system. From a user's interaction history "
    "(titles, texts and images of the items they engaged with) infer a structured profile: topical interests "
    "with weights summing to 1 and the ids of the items that support each; the preferred presentation style "
    f"(tone, one of {list(TONES)}; narrative structure, one of {list(NARRATIVES)}; information density low/"
    "medium/high); and visual preferences aggregated over the images (dominant colours as hex, a palette name "
    f"from {list(PALETTES)}, lighting from {list(LIGHTINGS)}, motion static/slow/dynamic, preferred visual "
    "elements as short words). Prefer topic ids from this taxonomy when they fit: "
    f"{list(TOPIC_IDS)}. Answer with JSON only."
)
MATCH_SYSTEM = (
    "You are the Director of a personalized video-advertising system. Given a user's topical interests and a "
    "product, score the compatibility (0 to 1) of the product with EACH of the user's topics, with a short "
    "reason; choose the topic/scenario that best fits the product's positioning (compatibility first, not "
    "merely the user's strongest interest); list the product's own selling points, most appealing to this "
    "user first (use the product's wording; add nothing). Answer with JSON only."
)
STORYBOARD_SYSTEM = (
    "You are the Director of a video-advertising system. Write an executable scene-level storyboard for a "
    "short vertical video ad: a hook, then contiguous slots of 2 to 3 seconds each starting at 0 and ending "
    "exactly at the requested duration; slot 0 has role 'hook', the last slot role 'cta', the others 'body'. "
    "Each slot gives start_s, end_s, camera (one of static, pan_left, pan_right, zoom_in, zoom_out, push_in, "
    "tilt_up, tilt_down), the visual composition, narration (spoken at a natural 2.5 words per second: at "
    "most 7 words in a 3-second slot, 5 in a 2-second one), on-screen text (at most 6 "
    "words), pacing (slow/medium/fast) and the asset ids shown (from the list given). Name the product. Use "
    "only the product's own selling points and facts; never a forbidden claim; never any personal data of "
    "the user (names, ids, handles, places). Answer with JSON only."
)
REVISE_SYSTEM = STORYBOARD_SYSTEM + (
    " Your previous storyboard (in context.previous) failed validation with the errors in context.errors; "
    "return a corrected storyboard."
)


# ------------------------------------------------------------------------------------------- helpers
def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z'&-]*", text)


def item_text(item: Any) -> str:
    """Title and text of a history item as one string (what the topic/tone heuristics read)."""
    return f"{item.title}. {item.text}".strip(". ").strip() or item.item_id


def _existing_images(history: UserHistory) -> list[tuple[str, Path]]:
    """(item_id, path) of every history image that exists on disk, in history order."""
    out = []
    for it in history.items:
        for p in it.image_paths:
            rp = resolve(p)
            if rp.is_file():
                out.append((it.item_id, rp))
    return out


def _spread(seq: Sequence[Any], n: int) -> list[Any]:
    """``n`` evenly spread elements of ``seq`` (all of them when it is short)."""
    if len(seq) <= n:
        return list(seq)
    return [seq[int((i + 0.5) * len(seq) / n)] for i in range(n)]


def product_brief(product: Product) -> dict[str, Any]:
    """The product facts a Director may use (no asset paths)."""
    return {
        "id": product.id, "name": product.name, "brand": product.brand, "category": product.category,
        "subcategory": product.subcategory, "description": product.description,
        "selling_points": list(product.selling_points), "slogan": product.slogan, "facts": dict(product.facts),
        "forbidden_claims": list(product.forbidden_claims), "topics": list(product.topics),
        "palette": list(product.palette),
    }


def _hex(c: Sequence[float]) -> str:
    r, g, b = (int(round(float(x))) for x in c[:3])
    return f"#{max(0, min(255, r)):02X}{max(0, min(255, g)):02X}{max(0, min(255, b)):02X}"


def _rgb_arr(hexes: Sequence[str]) -> np.ndarray:
    return np.array([D.hex_to_rgb(h) for h in hexes], np.float32)


# ======================================================================================== 1. user modeling
#: sentences the offline handler compares item texts with (MiniLM cosine) to infer the tone
TONE_TEXTS: dict[str, str] = {
    "humorous": "funny, joking, silly and lol moments, memes and playful self-irony",
    "informative": "facts, specs, numbers and clear explanations: what you need to know and why",
    "emotional": "heartfelt, touching, personal feelings, memories and moments that made me cry",
    "energetic": "hype, fast, loud and exciting: let's go, no excuses, full power",
    "calm": "quiet, slow and peaceful: a relaxing, gentle and soothing moment",
    "luxurious": "premium, elegant, exclusive and refined: indulgent high-end quality",
}
#: sentences for the narrative structure
NARRATIVE_TEXTS: dict[str, str] = {
    "tutorial": "step by step tutorial: how to do it, first step, then the next step",
    "story": "a story: it started when, what happened next, and how it ended",
    "listicle": "a list: top five picks, number one, number two, number three",
    "review": "an honest review: pros and cons, my rating and verdict after testing",
    "montage": "a montage of quick shots and clips set to music, few words",
    "vlog": "a day in my life vlog: come with me, this morning I went, today I",
}


def _profile_images(history: UserHistory, max_images: int) -> list[tuple[str, Path]]:
    return _spread(_existing_images(history), max_images)


def _profile_videos(history: UserHistory, max_videos: int) -> list[tuple[str, Path]]:
    vids = [(it.item_id, resolve(it.video_path)) for it in history.items if it.video_path]
    return _spread([v for v in vids if v[1].is_file()], max_videos)


def build_profile_request(history: UserHistory, max_images: int = 6, max_videos: int = 2) -> ModelRequest:
    """The ``director.user_profile`` request: item texts in the prompt and context, a few history images
    (and up to ``max_videos`` history videos as frames) as parts."""
    items = [{"item_id": it.item_id, "text": item_text(it)[:600]} for it in history.items]
    images = _profile_images(history, max_images)
    videos = _profile_videos(history, max_videos)
    listing = "\n".join(f"- [{x['item_id']}] {x['text']}" for x in items)
    parts: list[Any] = [TextPart(f"Interaction history ({len(items)} items, oldest first):\n{listing}")]
    for iid, p in images:
        parts.append(TextPart(f"Image of item {iid}:"))
        parts.append(ImagePart(str(p)))
    for iid, p in videos:
        parts.append(TextPart(f"Frames of the video of item {iid}:"))
        parts.append(VideoPart(str(p), n_frames=4))
    context = {
        "dataset": history.dataset,
        "items": items,
        "images": [{"item_id": i, "path": display_path(p)} for i, p in images],
        "videos": [{"item_id": i, "path": display_path(p)} for i, p in videos],
    }
    return ModelRequest(task="director.user_profile", system=PROFILE_SYSTEM, parts=parts,
                        schema=ProfileAnswer, context=context, item=f"user {history.user_id}")


def model_user(history: UserHistory, backend: Any, cache: Cache | None = None, *, max_images: int = 6) -> UserProfile:
    """Stage 1: the user's profile from their history, through ``backend`` (cached by content key).

    Call once per user; every pair of the user reuses the result. Raises :class:`DirectorError` for an
    empty history and :class:`~nextads_lib.backends.BackendError` when the backend finally fails.
    """
    item = f"user {history.user_id}"
    if not history.items:
        raise DirectorError(item, "user_profile", "empty history: nothing to model")

    def create() -> UserProfile:
        res = backend.complete(build_profile_request(history, max_images=max_images))
        ans: ProfileAnswer = res.value
        ids = {it.item_id for it in history.items}
        topics = [t.model_copy(update={"evidence": [e for e in t.evidence if e in ids]}) for t in ans.topics]
        total = sum(t.weight for t in topics) or 1.0
        topics = [t.model_copy(update={"weight": round(t.weight / total, 4)}) for t in topics]
        visual = ans.visual.model_copy(update={"evidence": [e for e in ans.visual.evidence if e in ids]})
        return UserProfile(user_id=history.user_id, dataset=history.dataset, backend=backend.name,
                           topics=topics, presentation=ans.presentation, visual=visual, summary=ans.summary)

    if cache is None:
        return create()
    key = content_key("user_profile", CODE_VERSION, backend.name, history, max_images)
    return cache.get_or_create_model("director_profile", key, UserProfile, create)


def _image_pixels(paths: Sequence[str | Path], side: int = 48) -> list[np.ndarray]:
    """Each readable image as ``(side*side', 3)`` float RGB pixels (unreadable ones skipped)."""
    out = []
    for p in paths:
        try:
            im = load_image(resolve(p))
        except MediaError:
            continue
        im.thumbnail((side, side), Image.Resampling.BILINEAR)
        out.append(np.asarray(im, np.float32).reshape(-1, 3))
    return out


def dominant_colours(pixels: np.ndarray, k: int = 5, seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """k-means (scipy ``kmeans2``, k-means++ init, seeded) colours of ``pixels`` and their shares, largest
    share first."""
    from scipy.cluster.vq import kmeans2  # noqa: PLC0415

    k = max(1, min(k, len(np.unique(pixels, axis=0))))
    cents, labels = kmeans2(pixels.astype(np.float64), k, minit="++", seed=int(seed) % (2**32))
    shares = np.bincount(labels, minlength=k) / max(1, len(labels))
    order = np.argsort(-shares, kind="stable")
    keep = [i for i in order if shares[i] > 0]
    return cents[keep].astype(np.float32), shares[keep]


def nearest_palette(colours: np.ndarray, shares: np.ndarray) -> tuple[str, dict[str, float]]:
    """Named palette (``topics.PALETTES``) nearest to the dominant colours: a share-weighted chamfer distance
    (each dominant colour to its nearest palette colour) plus the mean distance of each palette colour to
    its nearest dominant colour, in RGB units. Returns the name and every palette's distance."""
    dists = {}
    for name, hexes in PALETTES.items():
        pal = _rgb_arr(hexes)
        d = np.linalg.norm(colours[:, None, :] - pal[None, :, :], axis=2)
        dists[name] = float((d.min(axis=1) * shares).sum() / max(shares.sum(), _EPS) + d.min(axis=0).mean())
    return min(dists, key=dists.get), dists


def lighting_of(pixels: np.ndarray) -> str:
    """Lighting from brightness/warmth statistics of the history images' pixels (0..255 RGB):

    - ``neon``: dark overall (mean value < 0.45) with >= 8 % vivid pixels (saturation > 0.6, value > 0.6);
    - ``dim``: mean value < 0.38;
    - ``warm`` / ``cool``: mean (R - B) / 255 above 0.08 / below -0.08;
    - ``bright``: otherwise.
    """
    rgb = pixels / 255.0
    mx, mn = rgb.max(axis=1), rgb.min(axis=1)
    v = mx
    s = np.where(mx > 0, (mx - mn) / np.maximum(mx, _EPS), 0)
    vivid = float(((s > 0.6) & (v > 0.6)).mean())
    warmth = float((rgb[:, 0] - rgb[:, 2]).mean())
    if v.mean() < 0.45 and vivid >= 0.08:
        return "neon"
    if v.mean() < 0.38:
        return "dim"
    if warmth > 0.08:
        return "warm"
    if warmth < -0.08:
        return "cool"
    return "bright"


def motion_of_videos(paths: Sequence[str | Path]) -> float | None:
    """Mean absolute difference (0..1) between consecutive sampled frames (6 per video, 64x36) over the
    readable videos; None when there is none."""
    diffs = []
    for p in paths:
        try:
            fr = sample_frames(resolve(p), 6, size=(64, 36)).astype(np.float32) / 255.0
        except MediaError:
            continue
        if len(fr) > 1:
            diffs.append(float(np.abs(np.diff(fr, axis=0)).mean()))
    return float(np.mean(diffs)) if diffs else None


def _density(texts: Sequence[str]) -> str:
    """Information density from the texts: mean words per item plus 3 per numeral; < 18 low, < 40 medium."""
    scores = [len(_words(t)) + 3 * len(re.findall(r"\d+", t)) for t in texts]
    m = float(np.mean(scores)) if scores else 0.0
    return "low" if m < 18 else "medium" if m < 40 else "high"


@register_offline("director.user_profile")
def offline_user_profile(req: ModelRequest) -> ProfileAnswer:
    """Offline user modeling, transparent heuristics over the request's context:

    - topics: :func:`nextads_lib.embed.topic_distribution` of every item text (a per-text softmax over the
      16-topic taxonomy), averaged over the history; the top topics (at most 3, each >= 0.08 of the mass,
      at least one) with weights renormalised to 1; evidence = items whose most likely topic it is.
    - tone / narrative: MiniLM cosine of each item text to the descriptions in :data:`TONE_TEXTS` /
      :data:`NARRATIVE_TEXTS`, averaged over items, the highest wins.
    - information density: words and numerals per item (:func:`_density`).
    - palette: k-means colours of the history images mapped to the nearest named palette
      (:func:`nearest_palette`); lighting from brightness / warmth (:func:`lighting_of`).
    - motion: frame differences of the history videos when there are any (< 0.02 static, < 0.06 slow, else
      dynamic); without video it is read from the tone (energetic/humorous -> dynamic, calm/luxurious/
      emotional -> slow, else static) and the summary says so.
    - elements: the top topics' keywords that occur in the history texts, most frequent first.
    """
    ctx = req.context
    items = ctx["items"]
    ids = [x["item_id"] for x in items]
    texts = [x["text"] for x in items]
    dist = embed.topic_distribution(texts)
    agg = dist.mean(axis=0)
    order = [int(i) for i in np.argsort(-agg, kind="stable")]
    chosen = [i for i in order[:3] if agg[i] >= 0.08] or order[:1]
    total = float(sum(agg[i] for i in chosen))
    arg = dist.argmax(axis=1)
    topics = []
    for i in chosen:
        ev = [ids[j] for j in np.argsort(-dist[:, i], kind="stable") if arg[j] == i][:5]
        topics.append(TopicPreference(topic=TOPIC_IDS[i], weight=round(float(agg[i]) / total, 4), evidence=ev))

    tone_sim = embed.similarity(texts, [TONE_TEXTS[t] for t in TONES]).mean(axis=0)
    tone = TONES[int(np.argmax(tone_sim))]
    narr_sim = embed.similarity(texts, [NARRATIVE_TEXTS[n] for n in NARRATIVES]).mean(axis=0)
    narrative = NARRATIVES[int(np.argmax(narr_sim))]
    density = _density(texts)

    img_paths = [x["path"] for x in ctx.get("images", [])]
    pix = _image_pixels(img_paths)
    if pix:
        allpix = np.concatenate(pix)
        cents, shares = dominant_colours(allpix)
        palette_name, _ = nearest_palette(cents, shares)
        palette = [_hex(c) for c in cents]
        lighting = lighting_of(allpix)
    else:
        palette_name, palette, lighting = "", [], ""
    mv = motion_of_videos([x["path"] for x in ctx.get("videos", [])])
    if mv is not None:
        motion = "static" if mv < 0.02 else "slow" if mv < 0.06 else "dynamic"
        motion_src = f"frame difference {mv:.3f} of the history videos"
    else:
        motion = ("dynamic" if tone in ("energetic", "humorous")
                  else "slow" if tone in ("calm", "luxurious", "emotional") else "static")
        motion_src = "no video in the history: read from the tone"
    counts: Counter[str] = Counter()
    low = " ".join(texts).lower()
    for t in topics:
        for kw in TOPICS.get(t.topic, ("", "", ()))[2]:
            n = len(re.findall(rf"\b{re.escape(kw)}", low))
            if n:
                counts[kw] += n
    elements = [kw for kw, _ in counts.most_common(5)]
    visual = VisualStyle(palette=palette, palette_name=palette_name, lighting=lighting, motion=motion,
                         elements=elements, evidence=[x["item_id"] for x in ctx.get("images", [])])
    names = ", ".join(f"{topic_name(t.topic)} ({t.weight:.2f})" for t in topics)
    summary = (f"Interests: {names}. Prefers a {tone} tone, {narrative} structure, {density} information "
               f"density; {palette_name or 'no'} palette, {lighting or 'unknown'} lighting, {motion} motion "
               f"({motion_src}). Offline heuristics over {len(items)} items and {len(pix)} images.")
    return ProfileAnswer(topics=topics, presentation=PresentationStyle(tone=tone, narrative=narrative,
                         information_density=density), visual=visual, summary=summary)


# ============================================================================ 1b. user modeling from videos
ANNOTATE_SYSTEM = (
    "You are the Director of a personalized video-advertising system. Annotate one short video a user engaged "
    "with (its title/text and sampled frames): the topic (a taxonomy id when one fits: "
    f"{list(TOPIC_IDS)}) with scores of the top topics; the textual presentation style: tone (one of "
    f"{list(TONES)}), narrative structure (one of {list(NARRATIVES)}) and information density (low/medium/high); "
    f"the visual presentation style: visual tone (one of {list(LIGHTINGS)}), dominant colours (hex) and the "
    f"nearest palette name (one of {list(PALETTES)}), motion (static/slow/dynamic) and the camera motion (one of "
    "static, pan_left, pan_right, zoom_in, zoom_out, push_in, tilt_up, tilt_down). Answer with JSON only."
)
VIDEO_PROFILE_SYSTEM = PROFILE_SYSTEM + (
    " The history's videos were annotated beforehand (context.annotations: topic, tone, narrative, density, "
    "visual tone, palette, motion, camera per video); aggregate these annotations together with the video "
    "covers into the profile."
)


class AnnotationAnswer(Schema):
    """What the backend answers for ``director.annotate_video``."""

    topic: str
    topic_scores: dict[str, float] = Field(default_factory=dict)
    tone: str
    narrative: str
    information_density: Literal["low", "medium", "high"]
    visual_tone: str
    palette: list[str] = Field(default_factory=list)
    palette_name: str = ""
    motion: Literal["static", "slow", "dynamic"]
    camera: CameraMove = "static"
    motion_magnitude: float | None = None
    summary: str = ""


#: motion thresholds of the offline annotator: mean abs grey change (0..1) between CONSECUTIVE frames
MOTION_STATIC, MOTION_SLOW = 0.012, 0.04


def build_annotation_request(item: HistoryItem, n_frames: int = 6) -> ModelRequest:
    """The ``director.annotate_video`` request: the item's title/text and ``n_frames`` sampled frames."""
    vp = resolve(item.video_path or "")
    text = item_text(item)[:600]
    parts: list[Any] = [TextPart(f"Video of item {item.item_id}: {text}"), VideoPart(str(vp), n_frames=n_frames)]
    ctx = {"item_id": item.item_id, "text": text, "video_path": display_path(vp), "n_frames": int(n_frames)}
    return ModelRequest(task="director.annotate_video", system=ANNOTATE_SYSTEM, parts=parts, schema=AnnotationAnswer,
                        context=ctx, item=f"video {item.item_id}")


def annotate_video(item: HistoryItem, backend: Any, cache: Cache | None = None, n_frames: int = 6) -> VideoAnnotation:
    """Stage 1a (PCI): one history video's annotation, cached under the video file's content (and the item's
    text and the backend), so a video shared by several users is annotated once. Raises
    :class:`DirectorError` naming the item when the video is missing."""
    vp = resolve(item.video_path or "")
    if not item.video_path or not vp.is_file():
        raise DirectorError(f"item {item.item_id}", "annotate_video", f"field 'video_path': {vp} not found")
    digest = file_digest(vp)

    def create() -> VideoAnnotation:
        ans: AnnotationAnswer = backend.complete(build_annotation_request(item, n_frames)).value
        return VideoAnnotation(item_id=item.item_id, video_path=display_path(vp), video_sha256=digest,
                               backend=backend.name, **ans.model_dump())

    if cache is None:
        return create()
    key = content_key("video_annotation", CODE_VERSION, backend.name, digest, item_text(item), n_frames)
    return cache.get_or_create_model("director_annotation", key, VideoAnnotation, create)


@register_offline("director.annotate_video")
def offline_annotate_video(req: ModelRequest) -> AnnotationAnswer:
    """Offline video annotation, transparent heuristics:

    - topic: :func:`nextads_lib.embed.topic_distribution` of the title/text (MiniLM), the top 3 kept as scores;
    - tone / narrative: MiniLM cosine to :data:`TONE_TEXTS` / :data:`NARRATIVE_TEXTS`; density: :func:`_density`;
    - visual tone, palette: k-means colours of ``n_frames`` sampled frames (64x64) -> :func:`nearest_palette`,
      :func:`lighting_of`;
    - motion: the mean abs grey change between 4 pairs of consecutive frames (< MOTION_STATIC static,
      < MOTION_SLOW slow, else dynamic); camera: :func:`nextads_lib.host.camera_move` (Farneback optical flow)
      over 6 consecutive frames from the middle of the video.
    """
    from .host import camera_move, grey_small  # noqa: PLC0415
    from .media import count_frames, read_frames, sample_indices  # noqa: PLC0415

    ctx = req.context
    text = ctx["text"]
    dist = embed.topic_distribution([text])[0]
    top = [int(i) for i in np.argsort(-dist, kind="stable")[:3]]
    scores = {TOPIC_IDS[i]: round(float(dist[i]), 4) for i in top}
    tone = TONES[int(np.argmax(embed.similarity([text], [TONE_TEXTS[t] for t in TONES])[0]))]
    narrative = NARRATIVES[int(np.argmax(embed.similarity([text], [NARRATIVE_TEXTS[n] for n in NARRATIVES])[0]))]
    path = resolve(ctx["video_path"])
    n = count_frames(path)
    sampled = sample_indices(n, int(ctx.get("n_frames", 6)))
    pair_idx = [i for j in sample_indices(max(1, n - 1), 4) for i in (j, min(j + 1, n - 1))]
    mid = max(0, n // 2 - 3)
    run = list(range(mid, min(n, mid + 6)))
    want = sorted(set(sampled + pair_idx + run))
    got = dict(zip(want, read_frames(path, want, size=(64, 64))))  # one decoding pass for every measure
    pix = np.stack([got[i] for i in sampled]).reshape(-1, 3).astype(np.float32)
    cents, shares = dominant_colours(pix, k=4)
    palette_name, _ = nearest_palette(cents, shares)
    pairs = grey_small(np.stack([got[i] for i in pair_idx]))
    mag = float(np.abs(pairs[1::2] - pairs[0::2]).mean()) if len(pairs) >= 2 else 0.0
    motion = "static" if mag < MOTION_STATIC else "slow" if mag < MOTION_SLOW else "dynamic"
    cam, _ = camera_move(np.stack([got[i] for i in run]))
    summary = (f"{topic_name(TOPIC_IDS[top[0]])} video, {tone} tone, {narrative}; {palette_name} palette, "
               f"{lighting_of(pix)} visual tone, {motion} motion (frame change {mag:.3f}), camera {cam}. "
               "Offline heuristics.")
    return AnnotationAnswer(topic=TOPIC_IDS[top[0]], topic_scores=scores, tone=tone, narrative=narrative,
                            information_density=_density([text]), visual_tone=lighting_of(pix),
                            palette=[_hex(c) for c in cents], palette_name=palette_name, motion=motion, camera=cam,
                            motion_magnitude=round(mag, 5), summary=summary)


def build_video_profile_request(history: UserHistory, annotations: Sequence[VideoAnnotation],
                                max_images: int = 6) -> ModelRequest:
    """The ``director.user_profile_videos`` request: the item texts, the per-video annotations and a few covers."""
    items = [{"item_id": it.item_id, "text": item_text(it)[:600]} for it in history.items]
    images = _profile_images(history, max_images)
    anns = [a.model_dump(mode="json", exclude={"video_path", "video_sha256", "backend"}) for a in annotations]
    lines = "\n".join(f"- [{a['item_id']}] topic {a['topic']}, {a['tone']}, {a['narrative']}, density "
                      f"{a['information_density']}, {a['visual_tone']} visual tone, {a['palette_name']} palette, "
                      f"{a['motion']} motion, camera {a['camera']}" for a in anns)
    listing = "\n".join(f"- [{x['item_id']}] {x['text']}" for x in items)
    parts: list[Any] = [TextPart(f"Interaction history ({len(items)} items, oldest first):\n{listing}\n\n"
                                 f"Video annotations:\n{lines}")]
    for iid, p in images:
        parts.append(TextPart(f"Cover of item {iid}:"))
        parts.append(ImagePart(str(p)))
    ctx = {"dataset": history.dataset, "items": items, "annotations": anns,
           "images": [{"item_id": i, "path": display_path(p)} for i, p in images]}
    return ModelRequest(task="director.user_profile_videos", system=VIDEO_PROFILE_SYSTEM, parts=parts,
                        schema=ProfileAnswer, context=ctx, item=f"user {history.user_id}")


def _vote(values: Sequence[str], order: Sequence[str] = ()) -> str:
    """Most frequent value; ties broken by ``order`` then first occurrence."""
    c = Counter(v for v in values if v)
    if not c:
        return ""
    best = max(c.values())
    tied = [v for v in dict.fromkeys(values) if c.get(v) == best]
    return min(tied, key=lambda v: (list(order).index(v) if v in order else len(order), tied.index(v)))


@register_offline("director.user_profile_videos")
def offline_video_profile(req: ModelRequest) -> ProfileAnswer:
    """Offline aggregation of the video annotations and covers into a profile:

    - topics: the mean of the annotations' topic scores; the top topics (at most 3, each >= 0.08 of the
      mass, at least one) renormalised to 1; evidence = the items annotated with that topic;
    - tone, narrative, density, visual tone (lighting), motion: majority vote over the annotations;
    - palette: k-means colours of the covers (:func:`dominant_colours`) -> :func:`nearest_palette`; without
      readable covers, the annotations' palette names vote;
    - elements: the top topics' keywords found in the texts, most frequent first.
    """
    ctx = req.context
    anns = ctx["annotations"]
    texts = [x["text"] for x in ctx["items"]]
    agg: Counter[str] = Counter()
    for a in anns:
        tot = sum(a["topic_scores"].values()) or 1.0
        for t, v in (a["topic_scores"] or {a["topic"]: 1.0}).items():
            agg[t] += v / tot / len(anns)
    ranked = sorted(agg, key=lambda t: (-round(agg[t], 6), t))
    chosen = [t for t in ranked[:3] if agg[t] >= 0.08] or ranked[:1]
    total = sum(agg[t] for t in chosen) or 1.0
    topics = [TopicPreference(topic=t, weight=round(agg[t] / total, 4),
                              evidence=[a["item_id"] for a in anns if a["topic"] == t][:5]) for t in chosen]
    tone = _vote([a["tone"] for a in anns], TONES)
    narrative = _vote([a["narrative"] for a in anns], NARRATIVES)
    density = _vote([a["information_density"] for a in anns], ("low", "medium", "high")) or "medium"
    lighting = _vote([a["visual_tone"] for a in anns], LIGHTINGS)
    motion = _vote([a["motion"] for a in anns], ("static", "slow", "dynamic")) or "static"
    pix = _image_pixels([x["path"] for x in ctx.get("images", [])])
    if pix:
        cents, shares = dominant_colours(np.concatenate(pix))
        palette_name, _ = nearest_palette(cents, shares)
        palette = [_hex(c) for c in cents]
    else:
        palette_name = _vote([a["palette_name"] for a in anns], tuple(PALETTES))
        palette = list(dict.fromkeys(h for a in anns for h in a["palette"]))[:5]
    counts: Counter[str] = Counter()
    low = " ".join(texts).lower()
    for t in topics:
        for kw in TOPICS.get(t.topic, ("", "", ()))[2]:
            n = len(re.findall(rf"\b{re.escape(kw)}", low))
            if n:
                counts[kw] += n
    cams = Counter(a["camera"] for a in anns)
    visual = VisualStyle(palette=palette, palette_name=palette_name, lighting=lighting, motion=motion,
                         elements=[kw for kw, _ in counts.most_common(5)],
                         evidence=[x["item_id"] for x in ctx.get("images", [])])
    names = ", ".join(f"{topic_name(t.topic)} ({t.weight:.2f})" for t in topics)
    summary = (f"Interests: {names}. Prefers a {tone} tone, {narrative} structure, {density} information density; "
               f"{palette_name or 'no'} palette, {lighting or 'unknown'} visual tone, {motion} motion, camera mostly "
               f"{cams.most_common(1)[0][0] if cams else 'static'}. Offline aggregation of {len(anns)} video "
               f"annotations and {len(pix)} covers.")
    return ProfileAnswer(topics=topics, presentation=PresentationStyle(tone=tone, narrative=narrative,
                         information_density=density), visual=visual, summary=summary)


def model_user_from_videos(history: UserHistory, backend: Any, cache: Cache | None = None, *, max_images: int = 6,
                           n_frames: int = 6) -> tuple[UserProfile, list[VideoAnnotation], list[str]]:
    """Stage 1 of PCI: annotate each history video (:func:`annotate_video`, cached per video), then aggregate
    the annotations with the covers into the profile (task ``director.user_profile_videos``, cached per user).

    Returns (profile, annotations, notes): a history video that is missing or cannot be annotated is skipped
    with a note; a history without any annotated video falls back to :func:`model_user` (texts and covers)
    and says so in the notes. Raises :class:`DirectorError` for an empty history."""
    item = f"user {history.user_id}"
    if not history.items:
        raise DirectorError(item, "user_profile", "empty history: nothing to model")
    anns: list[VideoAnnotation] = []
    notes: list[str] = []
    for it in history.items:
        if not it.video_path:
            continue
        try:
            anns.append(annotate_video(it, backend, cache, n_frames))
        except (DirectorError, MediaError, BackendError) as e:
            notes.append(f"video of item {it.item_id} skipped: {e}")
    if not anns:
        notes.append("no annotated video in the history: profile from the texts and covers (model_user)")
        return model_user(history, backend, cache, max_images=max_images), anns, notes

    def create() -> UserProfile:
        ans: ProfileAnswer = backend.complete(build_video_profile_request(history, anns, max_images)).value
        ids = {it.item_id for it in history.items}
        topics = [t.model_copy(update={"evidence": [e for e in t.evidence if e in ids]}) for t in ans.topics]
        total = sum(t.weight for t in topics) or 1.0
        topics = [t.model_copy(update={"weight": round(t.weight / total, 4)}) for t in topics]
        visual = ans.visual.model_copy(update={"evidence": [e for e in ans.visual.evidence if e in ids]})
        return UserProfile(user_id=history.user_id, dataset=history.dataset, backend=backend.name, topics=topics,
                           presentation=ans.presentation, visual=visual, summary=ans.summary)

    if cache is None:
        return create(), anns, notes
    key = content_key("user_profile_videos", CODE_VERSION, backend.name, history, [a.video_sha256 for a in anns],
                      anns, max_images)
    return cache.get_or_create_model("director_profile", key, UserProfile, create), anns, notes


# ========================================================================================= 2. matching
def build_match_request(profile: UserProfile, product: Product) -> ModelRequest:
    """The ``director.match`` request: the user's topics and presentation, the product's facts."""
    ctx = {
        "user_topics": [{"topic": t.topic, "weight": t.weight, "name": topic_name(t.topic)} for t in profile.topics],
        "presentation": profile.presentation.model_dump(mode="json"),
        "product": product_brief(product),
    }
    lines = "\n".join(f"- {t['topic']} ({t['name']}), weight {t['weight']:.2f}" for t in ctx["user_topics"])
    text = (f"User topics:\n{lines}\n\nProduct: {product.name} by {product.brand} ({product.subcategory}). "
            f"{product.description}\nSelling points: {'; '.join(product.selling_points)}")
    return ModelRequest(task="director.match", system=MATCH_SYSTEM, parts=[TextPart(text)], schema=MatchAnswer,
                        context=ctx, item=f"user {profile.user_id} x product {product.id}")


def match_product(profile: UserProfile, product: Product, backend: Any,
                  threshold: float = DEFAULT_COMPAT_THRESHOLD) -> MatchResult:
    """Stage 2: compatibility of ``product`` with each of the user's topics and the best topic; below
    ``threshold`` the result has ``fallback=True`` and a reason, and a generic plan is made (paper 5.3.1:
    forced personalization under low compatibility)."""
    req = build_match_request(profile, product)
    ans: MatchAnswer = backend.complete(req).value
    by_topic = {c.topic: c for c in ans.candidates}
    best = ans.best_topic if ans.best_topic in by_topic else max(ans.candidates, key=lambda c: c.score).topic
    score = by_topic[best].score
    points = [p for p in ans.selling_points if p in product.selling_points]
    points += [p for p in product.selling_points if p not in points]  # a model may drop some: keep them all, last
    fallback = score < threshold
    reason = (f"best compatibility {score:.2f} ({topic_name(best)}) is below the threshold {threshold:.2f}: "
              f"forcing '{topic_name(best)}' onto {product.name} would be incoherent, so a generic plan is made"
              if fallback else "")
    return MatchResult(user_id=profile.user_id, product_id=product.id, backend=backend.name,
                       candidates=ans.candidates, best_topic=best, best_score=score, selling_points=points,
                       fallback=fallback, fallback_reason=reason)


def _product_text(p: dict[str, Any]) -> str:
    return f"{p['name']} ({p['subcategory']}). {p['description']} {' '.join(p['selling_points'])}"


@register_offline("director.match")
def offline_match(req: ModelRequest) -> MatchAnswer:
    """Offline matching: for each user topic, ``score = 0.55 * [topic in product.topics] + 0.45 * sem`` where
    ``sem = clip((cos - 0.05) / 0.5, 0, 1)`` and ``cos`` is the MiniLM cosine of the topic's text with the
    product's name, description and selling points. The best topic maximises score (+0.05 x the user's
    weight to break near-ties). Selling points are ordered by their cosine with the best topic's text."""
    ctx = req.context
    prod = ctx["product"]
    ptext = _product_text(prod)
    topics = [t["topic"] for t in ctx["user_topics"]]
    weights = {t["topic"]: float(t["weight"]) for t in ctx["user_topics"]}
    ttexts = [topic_text(t) if t in TOPICS else t for t in topics]
    cos = embed.similarity(ttexts, [ptext])[:, 0]
    cands = []
    for t, c in zip(topics, cos):
        listed = t in prod["topics"]
        sem = float(np.clip((c - 0.05) / 0.5, 0, 1))
        score = round(min(1.0, 0.55 * listed + 0.45 * sem), 4)
        why = f"text similarity of '{topic_name(t)}' with {prod['name']} is {float(c):.2f}"
        why += "; the product declares this topic" if listed else "; not a topic the product declares"
        cands.append(TopicCompatibility(topic=t, score=score, reason=why))
    best = max(cands, key=lambda c: c.score + 0.05 * weights.get(c.topic, 0)).topic
    btext = topic_text(best) if best in TOPICS else best
    sp = list(prod["selling_points"])
    sims = embed.similarity([btext], sp)[0]
    order = sorted(range(len(sp)), key=lambda i: (-round(float(sims[i]), 6), i))
    return MatchAnswer(candidates=cands, best_topic=best, selling_points=[sp[i] for i in order])


# ======================================================================================= 3. storyboard
def slot_times(duration_s: float) -> list[tuple[float, float]]:
    """Equal contiguous slots of 2 to 3 s covering ``duration_s`` (the fewest slots that fit)."""
    if duration_s < MIN_SLOT_S - _EPS:
        raise ValueError(f"duration_s={duration_s}: a storyboard needs at least {MIN_SLOT_S} s")
    n = max(1, math.ceil(duration_s / MAX_SLOT_S - _EPS))
    if duration_s / n < MIN_SLOT_S - _EPS:
        raise ValueError(f"duration_s={duration_s} cannot be cut into slots of {MIN_SLOT_S}-{MAX_SLOT_S} s")
    step = duration_s / n
    edges = [round(i * step, 3) for i in range(n)] + [round(float(duration_s), 3)]
    return list(zip(edges[:-1], edges[1:]))


def asset_catalog(product: Product, *, personalized: bool, history: UserHistory | None = None,
                  host: HostContext | None = None, start_frame: str | Path | None = None) -> list[dict[str, str]]:
    """The asset ids a storyboard may reference, with their kind; :func:`ground_assets` produces exactly these
    (``product_<i>``, ``logo``, ``user_<i>`` and ``palette`` when personalized, ``start_frame`` for PCI)."""
    cat = [{"id": f"product_{i}", "kind": "product_image", "caption": a.caption}
           for i, a in enumerate(product.images[:3])]
    cat.append({"id": "logo", "kind": "logo", "caption": product.logo.caption})
    if personalized and history is not None:
        for i in range(n_user_visuals(history)):
            cat.append({"id": f"user_{i}", "kind": "user_visual", "caption": "user-preferred visual element"})
        cat.append({"id": "palette", "kind": "palette", "caption": "user-preferred palette swatches"})
    if host is not None or start_frame is not None:
        cat.append({"id": "start_frame", "kind": "start_frame", "caption": "host integration frame"})
    return cat


def n_user_visuals(history: UserHistory, max_n: int = 3) -> int:
    """How many user-visual crops grounding makes: one per history image that exists, at most ``max_n``."""
    return min(max_n, len({iid for iid, _ in _existing_images(history)}))


def build_storyboard_request(
    product: Product, *, profile: UserProfile | None = None, match: MatchResult | None = None,
    duration_s: float = 12.0, aspect_ratio: str = "9:16", host: HostContext | None = None,
    assets: Sequence[dict[str, str]] = (), seed: int = DEFAULT_SEED,
) -> ModelRequest:
    """The ``director.storyboard`` request. Personalized when ``profile`` is given and ``match`` is not a
    fallback; otherwise (GenericAds, or a fallback) it carries only the product and the serving context:
    no user id, no topic, no style, no history."""
    personalized = profile is not None and not (match is not None and match.fallback)
    ctx: dict[str, Any] = {
        "product": product_brief(product),
        "serving": {"duration_s": float(duration_s), "aspect_ratio": aspect_ratio,
                    "slots": [list(t) for t in slot_times(duration_s)], "disclosure": AI_LABEL},
        "assets": [dict(a) for a in assets],
        "personalized": personalized,
        "seed": int(seed),
    }
    if personalized:
        assert profile is not None
        ctx["user"] = {
            "presentation": profile.presentation.model_dump(mode="json"),
            "visual": {k: v for k, v in profile.visual.model_dump(mode="json").items() if k != "evidence"},
            "topics": [t.topic for t in profile.topics],
        }
        if match is not None:
            ctx["match"] = {"best_topic": match.best_topic, "best_score": match.best_score,
                            "selling_points": list(match.selling_points)}
    if host is not None:
        ctx["host"] = {"topic": host.topic, "summary": host.summary, "timestamp_s": host.timestamp_s}
    text = [f"Product: {product.name} by {product.brand}. {product.description}",
            f"Selling points: {'; '.join((match.selling_points if personalized and match else product.selling_points))}",
            f"Facts: {'; '.join(f'{k}: {v}' for k, v in product.facts.items())}",
            f"Forbidden claims: {'; '.join(product.forbidden_claims) or 'none'}",
            f"Serving context: {duration_s:g} s, aspect {aspect_ratio}, slots {ctx['serving']['slots']}",
            f"Asset ids: {', '.join(a['id'] for a in assets)}"]
    if personalized:
        text.append(f"User style: {ctx['user']}")
        if "match" in ctx:
            text.append(f"Matched topic/scenario: {ctx['match']['best_topic']}")
    if host is not None:
        text.append(f"Host video at {host.timestamp_s:.2f} s ({host.topic}): {host.summary}. The creative starts "
                    "from the integration frame (asset start_frame, first slot) and returns to it in the last slot; "
                    "state in host_connection how it connects to the host's topic.")
    parts: list[Any] = [TextPart("\n".join(text))]
    if host is not None:
        parts.append(ImagePart(str(resolve(host.frame_path))))
    return ModelRequest(task="director.storyboard", system=STORYBOARD_SYSTEM, parts=parts, schema=StoryboardAnswer,
                        context=ctx, item=f"product {product.id}" + (f" x user {profile.user_id}" if personalized and profile else ""))


def build_revise_request(req: ModelRequest, previous: Any, errors: Sequence[str]) -> ModelRequest:
    """The ``director.storyboard_revise`` request: the first request's context plus the previous answer and
    the validation errors."""
    prev = previous.model_dump(mode="json") if isinstance(previous, BaseModel) else previous
    ctx = {**req.context, "previous": prev, "errors": list(errors)}
    parts = list(req.parts) + [TextPart("Your previous storyboard failed validation:\n- " + "\n- ".join(errors))]
    return ModelRequest(task="director.storyboard_revise", system=REVISE_SYSTEM, parts=parts,
                        schema=StoryboardAnswer, context=ctx, item=req.item)


def _assemble(ans: StoryboardAnswer, product: Product, backend_name: str, *, personalized: bool,
              user_id: str | None, duration_s: float, aspect_ratio: str, host: HostContext | None) -> Storyboard:
    return Storyboard(
        product_id=product.id, user_id=user_id, backend=backend_name, personalized=personalized, hook=ans.hook,
        matched_topic=ans.matched_topic if personalized else None, aspect_ratio=aspect_ratio,
        duration_s=float(duration_s), slots=ans.slots, cta=ans.cta, disclosure=AI_LABEL,
        host_connection=ans.host_connection if host is not None else None,
        starts_from_frame=display_path(resolve(host.frame_path)) if host is not None else None,
        returns_to_frame=host is not None,
    )


def plan_storyboard(
    product: Product, backend: Any, *, profile: UserProfile | None = None, match: MatchResult | None = None,
    duration_s: float = 12.0, aspect_ratio: str = "9:16", host: HostContext | None = None,
    history: UserHistory | None = None, seed: int = DEFAULT_SEED, assets: Sequence[dict[str, str]] | None = None,
) -> Storyboard:
    """Stage 3: the storyboard, validated by :func:`validate_storyboard`; an invalid answer is sent back once
    (task ``director.storyboard_revise``, with the errors), and a second invalid answer raises
    :class:`StoryboardError`.

    ``profile`` None (GenericAds) or ``match.fallback`` -> a generic plan whose request holds no user data.
    ``history`` is used only locally, to check that no personal data leaked into the text. ``host`` (PCI):
    the plan starts from the integration frame and returns to it. ``assets``: the catalog of asset ids
    (default :func:`asset_catalog`).
    """
    personalized = profile is not None and not (match is not None and match.fallback)
    if assets is None:
        assets = asset_catalog(product, personalized=personalized, history=history, host=host)
    req = build_storyboard_request(product, profile=profile, match=match, duration_s=duration_s,
                                   aspect_ratio=aspect_ratio, host=host, assets=assets, seed=seed)
    user_id = profile.user_id if personalized and profile else None
    asset_ids = {a["id"] for a in assets}

    def attempt(r: ModelRequest) -> tuple[Any, Storyboard | None, list[str]]:
        ans = backend.complete(r).value
        try:
            sb = _assemble(ans, product, backend.name, personalized=personalized, user_id=user_id,
                           duration_s=duration_s, aspect_ratio=aspect_ratio, host=host)
        except ValidationError as e:
            return ans, None, [f"schema: {x['loc']}: {x['msg']}" for x in e.errors()[:5]]
        errs = validate_storyboard(sb, product, history=history, duration_s=duration_s, host=host,
                                   asset_ids=asset_ids)
        return ans, sb, errs

    ans, sb, errors = attempt(req)
    if not errors and sb is not None:
        return sb
    ans2, sb2, errors2 = attempt(build_revise_request(req, ans, errors))
    if not errors2 and sb2 is not None:
        return sb2
    raise StoryboardError(req.item, errors2)


# ---------------------------------------------------------------------------------------- validation
_ABSOLUTE_CLAIMS = ("guarantee", "guaranteed", "#1", "number one", "best in the world", "cures", "cure ",
                    "clinically proven", "risk-free", "100%", "never fails", "forever")
_COMMON_CAPS = {
    "I", "I'm", "I've", "I'll", "I'd", "The", "A", "An", "My", "Our", "We", "You", "Your", "This", "That", "Today",
    "Tonight", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "January",
    "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
    "December", "OK", "AI", "TV", "DIY", "POV", "PR", "Day", "Part", "Step", "Top", "New",
}


def personal_tokens(history: UserHistory) -> set[str]:
    """Strings from the history that must never appear in a creative's text: the user id, @handles, and
    capitalised words that occur mid-sentence in the history's titles/texts (names, places), minus common
    words and the taxonomy's own words."""
    toks = {history.user_id}
    vocab = {w.lower() for tid, (name, desc, kws) in TOPICS.items() for w in _words(f"{tid} {name} {desc} {' '.join(kws)}")}
    for it in history.items:
        for text in (it.title, it.text):
            toks.update(re.findall(r"@[A-Za-z0-9_.]{2,}", text))
            for sent in re.split(r"(?<=[.!?])\s+|\n", text):
                ws = sent.split()
                for w in ws[1:]:
                    w = w.strip(",.;:!?\"'()[]")
                    if (len(w) >= 3 and w[0].isupper() and w not in _COMMON_CAPS and w.lower() not in vocab
                            and re.fullmatch(r"[A-Z][A-Za-z'-]+", w)):
                        toks.add(w)
    return {t for t in toks if t}


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in re.findall(r"\d+(?:[.,]\d+)?", text)}


def validate_storyboard(
    sb: Storyboard, product: Product, history: UserHistory | None = None, duration_s: float | None = None,
    *, host: HostContext | None = None, asset_ids: set[str] | None = None,
) -> list[str]:
    """Every rule the storyboard breaks, as readable errors (empty list = valid):

    1. slots contiguous from 0 with indices 0..n-1, ending at the storyboard's (and the requested) duration;
    2. every slot lasts 2 to 3 s;
    3. slot 0 is the hook (role 'hook', unless it is the only slot) and the hook text is not empty; the last
       slot and only it has role 'cta', and the CTA text is not empty;
    4. the product is named (its name or brand) in the narration, on-screen text, hook or CTA;
    5. no claim outside the product's facts: every number in the text appears in the product's facts,
       selling points, slogan or description; no forbidden claim; no absolute claim (guaranteed, #1,
       clinically proven ...) the product text does not make;
    6. no personal data from the history (:func:`personal_tokens`) in the text;
    7. PCI (``host``): starts from the integration frame, returns to it, states the host connection;
    8. slots reference only known asset ids (when ``asset_ids`` is given); disclosure is the AI label;
    9. every slot's narration can be spoken within the slot: at most ``MAX_NARRATION_WPS`` words per second.
    """
    errs: list[str] = []
    slots = sb.slots
    if [s.index for s in slots] != list(range(len(slots))):
        errs.append(f"slot indices must be 0..{len(slots) - 1} in order, got {[s.index for s in slots]}")
    if slots and abs(slots[0].start_s) > _EPS:
        errs.append(f"slot 0 must start at 0 s, starts at {slots[0].start_s}")
    for a, b in zip(slots, slots[1:]):
        if abs(b.start_s - a.end_s) > 1e-3:
            errs.append(f"slot {b.index} starts at {b.start_s} s but slot {a.index} ends at {a.end_s} s (not contiguous)")
    for s in slots:
        if not (MIN_SLOT_S - 1e-3 <= s.duration_s <= MAX_SLOT_S + 1e-3):
            errs.append(f"slot {s.index} lasts {s.duration_s:.2f} s, outside {MIN_SLOT_S:g}-{MAX_SLOT_S:g} s")
    for s in slots:
        n_words, cap = len(s.narration.split()), narration_budget(s.duration_s, MAX_NARRATION_WPS)
        if n_words > cap:
            errs.append(f"slot {s.index} narration has {n_words} words, more than the {cap} that can be spoken "
                        f"in its {s.duration_s:g} s ({MAX_NARRATION_WPS:g} words per second)")
    want = sb.duration_s if duration_s is None else duration_s
    if slots and abs(slots[-1].end_s - want) > 1e-3:
        errs.append(f"the last slot ends at {slots[-1].end_s} s, the storyboard must last {want:g} s")
    if abs(sb.duration_s - want) > 1e-3:
        errs.append(f"duration_s is {sb.duration_s:g}, requested {want:g}")
    if not sb.hook.strip():
        errs.append("the hook is empty")
    if len(slots) > 1 and slots[0].role != "hook":
        errs.append(f"slot 0 must have role 'hook', has '{slots[0].role}'")
    if slots and slots[-1].role != "cta":
        errs.append(f"the last slot must be the call to action (role 'cta'), has '{slots[-1].role}'")
    if any(s.role == "cta" for s in slots[:-1]):
        errs.append("only the last slot may have role 'cta'")
    if not sb.cta.strip():
        errs.append("the CTA text is empty")
    if sb.disclosure != AI_LABEL:
        errs.append(f"disclosure must be '{AI_LABEL}'")

    texts = [sb.hook, sb.cta] + [t for s in slots for t in (s.narration, s.on_screen_text)]
    blob = " \n ".join(t for t in texts if t)
    low = blob.lower()
    if product.name.lower() not in low and product.brand.lower() not in low:
        errs.append(f"the product is never named ('{product.name}' or '{product.brand}' in narration/on-screen text/hook/CTA)")
    ptext = " ".join([product.name, product.brand, product.description, product.slogan, *product.selling_points,
                      *product.facts.keys(), *product.facts.values()])
    allowed_nums = _numbers(ptext)
    bad_nums = sorted(_numbers(blob) - allowed_nums)
    if bad_nums:
        errs.append(f"numbers not in the product's facts or selling points: {', '.join(bad_nums)}")
    for claim in product.forbidden_claims:
        if claim.lower() in low:
            errs.append(f"forbidden claim '{claim}'")
    plow = ptext.lower()
    for claim in _ABSOLUTE_CLAIMS:
        if claim in low and claim not in plow:
            errs.append(f"absolute claim '{claim.strip()}' is not backed by the product's facts")
    if history is not None:
        leaked = sorted(t for t in personal_tokens(history)
                        if re.search(rf"(?<![A-Za-z0-9_]){re.escape(t)}(?![A-Za-z0-9_])", blob)
                        and t.lower() not in plow)
        if leaked:
            errs.append(f"personal data from the user's history in the text: {', '.join(leaked)}")
    if host is not None:
        if not sb.starts_from_frame:
            errs.append("PCI: the storyboard must start from the integration frame (starts_from_frame)")
        if not sb.returns_to_frame:
            errs.append("PCI: the last slot must return to the integration frame (returns_to_frame)")
        if not (sb.host_connection or "").strip():
            errs.append("PCI: host_connection must state how the segment connects to the host's topic")
    if asset_ids is not None:
        unknown = sorted({a for s in slots for a in s.assets} - set(asset_ids))
        if unknown:
            errs.append(f"unknown asset ids: {', '.join(unknown)}")
    return errs


# ------------------------------------------------------------------------------- offline storyboard handler
#: per topic: (scenario phrase for narration, setting for the visual composition)
SCENARIOS: dict[str, tuple[str, str]] = {
    "fitness": ("your next workout", "a bright home-gym corner with a mat and dumbbells"),
    "running": ("your morning run", "a city running path at sunrise"),
    "skincare": ("your daily routine", "a clean bathroom shelf with soft light"),
    "fashion": ("your next outfit", "a styled outfit flat-lay on a clean floor"),
    "food": ("dinner at home", "a kitchen table with a steaming homemade dish"),
    "travel": ("your next trip", "a window seat view over a new city"),
    "tech": ("your desk setup", "a tidy desk setup with gadgets"),
    "gaming": ("game night", "a gaming corner lit by a screen glow"),
    "music": ("your playlist", "headphones on a desk beside a vinyl record"),
    "movies": ("movie night", "a sofa facing a big screen with popcorn"),
    "pets": ("life with your pet", "a sunny living room with a curious pet"),
    "home": ("your cozy evening in", "a cozy apartment corner with a warm lamp"),
    "outdoors": ("your weekend hike", "a mountain trail with a backpack in frame"),
    "productivity": ("your focus session", "a study desk with notes and a lamp"),
    "coffee": ("your coffee ritual", "a café table with a fresh latte"),
    "commute": ("your daily commute", "a city street at dusk with passing lights"),
}
#: per tone: hook, body narration and CTA templates ({name}, {brand}, {scene}, {point}, {slogan})
TONE_TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    "humorous": {"hook": ("Plot twist for {scene}.", "Okay, {scene} got funnier."),
                 "body": (". Yes, really.", ". You're welcome."),
                 "cta": ("Get {name}. Seriously, go.", "Try {name}. Thank us later.")},
    "informative": {"hook": ("What {scene} needs.", "Know this for {scene}."),
                    "body": (".", "."),
                    "cta": ("Get {name} today.", "Learn more about {name}.")},
    "emotional": {"hook": ("{scene} deserves more.", "For {scene}, details matter."),
                  "body": (", made for you.", ", when it counts."),
                  "cta": ("Make it yours with {name}.", "Bring {name} home.")},
    "energetic": {"hook": ("Level up {scene}!", "{scene}? Let's go!"),
                  "body": ("!", ", full power!"),
                  "cta": ("Grab {name} now!", "Get {name}, go!")},
    "calm": {"hook": ("Slow down, enjoy {scene}.", "{scene}, at your pace."),
             "body": (", simply.", "."),
             "cta": ("Discover {name}.", "Take your time with {name}.")},
    "luxurious": {"hook": ("Elevate {scene}.", "{scene}, refined."),
                  "body": (", crafted with care.", ", refined."),
                  "cta": ("Indulge in {name}.", "Experience {name}.")},
}
#: the generic (GenericAds / fallback) plan's hooks: product and slogan only
GENERIC_HOOKS = ("Meet {name}.", "Introducing {name}.", "{slogan}")
NARRATIVE_PREFIX: dict[str, tuple[str, ...]] = {
    "tutorial": ("First, ", "Then, "), "listicle": ("First up: ", "Next up: "), "review": ("Pro: ", "Verdict: "),
    "story": ("", "Then "), "montage": ("", ""), "vlog": ("Today: ", "Also: "),
}
_CAMERA_BY_MOTION = {
    "dynamic": ("push_in", "pan_left", "pan_right", "zoom_in", "tilt_up"),
    "slow": ("zoom_in", "pan_left", "pan_right", "zoom_out", "tilt_down"),
    "static": ("static", "zoom_in", "static", "zoom_out"),
}
_PACING_BY_MOTION = {"dynamic": "fast", "slow": "slow", "static": "medium"}


def _short(text: str, n_words: int) -> str:
    ws = text.split()
    return " ".join(ws[:n_words]).rstrip(",;:") if len(ws) > n_words else text


_TRAILING = {"a", "an", "and", "at", "for", "in", "of", "on", "or", "per", "the", "to", "up", "with"}


def fit_line(text: str, n_words: int) -> str:
    """``text`` in ``n_words`` words at most, ending as a sentence: a parenthesis goes first, then trailing
    sentences, then trailing clauses (after a comma), then trailing words (never ending on a connective)."""
    if len(text.split()) <= n_words:
        return text
    t = re.sub(r"\s*\([^)]*\)", "", text).strip()
    sentences = re.split(r"(?<=[.!?])\s+", t)
    while len(sentences) > 1 and len(" ".join(sentences).split()) > n_words:
        sentences.pop()
    t = " ".join(sentences)
    if len(t.split()) <= n_words:
        return t
    end = t[-1:] if t[-1:] in "!?" else "."
    clauses = [c.strip() for c in re.split(r",\s+", t.rstrip(".!?"))]  # "10,000" is a number, not two clauses
    while (len(clauses) > 1 and len(", ".join(clauses).split()) > n_words
           and len(", ".join(clauses[:-1]).split()) >= 3):
        clauses.pop()
    words = ", ".join(clauses).split()[:n_words]
    while len(words) > 1 and words[-1].lower().strip(",;:") in _TRAILING:
        words.pop()
    return " ".join(words).rstrip(".,;:!?-") + end


def speakable(text: str, duration_s: float) -> str:
    """``text`` cut to what a slot of ``duration_s`` seconds can speak (:func:`fit_line` at the budget)."""
    return fit_line(text, narration_budget(duration_s))


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def compose_storyboard(ctx: dict[str, Any]) -> StoryboardAnswer:
    """The offline Director's storyboard from a ``director.storyboard`` context: templates chosen by the
    user's tone and narrative (informative/montage for a generic plan), the matched topic's scenario and
    setting, the prioritised selling points (one per body slot), a price fact on screen when the product has
    one, cameras from the user's motion, the palette/lighting in the composition; deterministic under the
    context's seed. With a host, slot 0 opens on the integration frame and the last slot returns to it."""
    prod = ctx["product"]
    name, brand = prod["name"], prod["brand"]
    times = [tuple(t) for t in ctx["serving"]["slots"]]
    personalized = bool(ctx.get("personalized"))
    user = ctx.get("user") or {}
    match = ctx.get("match") or {}
    host = ctx.get("host")
    pres = user.get("presentation", {})
    vis = user.get("visual", {})
    tone = pres.get("tone", "informative") if personalized else "informative"
    narrative = pres.get("narrative", "montage") if personalized else "montage"
    motion = vis.get("motion", "slow") if personalized else "slow"
    topic = match.get("best_topic") if personalized else None
    if personalized and not topic and user.get("topics"):
        topic = user["topics"][0]
    scene, setting = SCENARIOS.get(topic or "", (f"every day with {brand}", "a clean studio set in brand colours"))
    if not personalized:
        scene, setting = "every day", f"a clean studio set in {brand}'s brand colours"
    points = list(match.get("selling_points") or prod["selling_points"]) if personalized else list(prod["selling_points"])
    tpl = TONE_TEMPLATES.get(tone, TONE_TEMPLATES["informative"])
    prefixes = NARRATIVE_PREFIX.get(narrative, ("", ""))
    r = rng(int(ctx.get("seed", DEFAULT_SEED)), "storyboard", prod["id"], topic or "-", tone, narrative)
    pick = lambda seq: seq[int(r.integers(len(seq)))]  # noqa: E731
    cams = _CAMERA_BY_MOTION.get(motion, _CAMERA_BY_MOTION["slow"])
    pacing = _PACING_BY_MOTION.get(motion, "medium")
    if tone == "energetic":
        pacing = "fast"
    asset_ids = [a["id"] for a in ctx.get("assets", [])]
    prod_ids = [a for a in asset_ids if a.startswith("product_")] or []
    user_ids = [a for a in asset_ids if a.startswith("user_")]
    look = (f"{vis.get('palette_name')} palette, {vis.get('lighting')} lighting" if personalized and vis.get("palette_name")
            else f"{brand} brand colours, soft studio lighting")
    price = next((v for k, v in prod["facts"].items() if k.lower().startswith("price")), None)

    if personalized:
        hook = _cap(pick(tpl["hook"]).format(scene=scene, name=name, brand=brand))
    else:
        hook = pick(GENERIC_HOOKS).format(name=name, slogan=prod["slogan"])
    slots: list[Slot] = []
    n = len(times)
    body_i = 0
    for i, (a, b) in enumerate(times):
        last, first = i == n - 1, i == 0
        budget = narration_budget(b - a)
        cam = cams[int(r.integers(len(cams)))]
        if last and n > 1:
            narration = fit_line(pick(tpl["cta"]).format(name=name), budget)
            ost = f"{name} · {price}" if price else f"{name}: {prod['slogan']}"
            comp = (f"{name} hero with the {brand} logo and the call to action, {look}")
            assets = ["logo"] + prod_ids[:1]
            role = "cta"
        elif first:
            meet = f"{hook} Meet {name}."
            narration = meet if len(meet.split()) <= budget and name not in hook else fit_line(hook, budget)
            ost = _short(hook, 6)
            comp = f"{setting}; {name} enters the frame, {look}"
            assets = (user_ids[:1] if personalized else []) + prod_ids[:1]
            role = "hook" if n > 1 else "cta"
            if n == 1:
                narration = fit_line(f"{_short(hook, 4)} Get {name}.", budget)
        else:
            point = points[body_i % len(points)]
            pre = prefixes[0 if body_i == 0 else 1]
            core = pre + (point[:1].lower() + point[1:] if pre else point)
            suffix = pick(tpl["body"])
            narration = _cap(core + suffix if len((core + suffix).split()) <= budget
                             else fit_line(core.rstrip(".") + ".", budget))
            ost = _short(point, 6)
            comp = f"close-up of {name} showing: {point.lower()}; {setting}, {look}"
            if personalized and user_ids:
                comp += ", with the user's preferred visual elements"
            assets = [prod_ids[body_i % len(prod_ids)]] if prod_ids else []
            if personalized and user_ids:
                assets.append(user_ids[(body_i + 1) % len(user_ids)])
            role = "body"
            body_i += 1
        if host is not None and first:
            comp = f"opens on the host's integration frame ({host['topic']}), then {comp}"
            assets = ["start_frame"] + assets
        if host is not None and last:
            comp = f"{comp}; ends back on the host's integration frame"
            assets = assets + ["start_frame"]
        slots.append(Slot(index=i, start_s=a, end_s=b, role=role, camera=cam, composition=comp, narration=narration,
                          on_screen_text=ost, pacing=pacing, assets=[x for x in dict.fromkeys(assets) if x in asset_ids]))
    cta = f"Get {name} today" if not price else f"Get {name} · {price}"
    host_conn = None
    if host is not None:
        host_conn = (f"The host is about {host['topic']}: the segment picks up from that moment, shows {name} "
                     f"fitting into it, and hands back to the same frame.")
    if not any(name.lower() in (s.narration + s.on_screen_text).lower() for s in slots):
        slots[-1] = slots[-1].model_copy(update={"on_screen_text": name})
    return StoryboardAnswer(hook=hook, matched_topic=topic, slots=slots, cta=cta, host_connection=host_conn)


@register_offline("director.storyboard")
def offline_storyboard(req: ModelRequest) -> StoryboardAnswer:
    """Offline storyboard: :func:`compose_storyboard` over the request context."""
    return compose_storyboard(req.context)


@register_offline("director.storyboard_revise")
def offline_storyboard_revise(req: ModelRequest) -> StoryboardAnswer:
    """Offline revision: the template plan is valid by construction, so it recomposes from the original
    context (the errors in ``context.errors`` are recorded by the caller)."""
    ctx = {k: v for k, v in req.context.items() if k not in ("previous", "errors")}
    return compose_storyboard(ctx)


# ===================================================================================== 4. asset grounding
def _palette_distance(pixels: np.ndarray, palette: np.ndarray) -> float:
    return float(np.linalg.norm(pixels[:, None, :] - palette[None, :, :], axis=2).min(axis=1).mean())


def best_palette_crop(image: Image.Image, palette_hex: Sequence[str], frac: float = 0.6) -> tuple[tuple[int, int, int, int], float]:
    """The square crop (``frac`` of the short side, 3x3 candidate positions) whose pixels lie closest to the
    palette (mean distance of each pixel to its nearest palette colour, RGB units). Returns (box, distance)."""
    w, h = image.size
    side = max(1, int(min(w, h) * frac))
    small_scale = 48 / max(w, h)
    small = np.asarray(image.resize((max(1, int(w * small_scale)), max(1, int(h * small_scale))),
                                    Image.Resampling.BILINEAR), np.float32)
    pal = _rgb_arr(palette_hex) if palette_hex else None
    best = ((0, 0, side, side), math.inf)
    for fy in (0.0, 0.5, 1.0):
        for fx in (0.0, 0.5, 1.0):
            x0, y0 = int((w - side) * fx), int((h - side) * fy)
            box = (x0, y0, x0 + side, y0 + side)
            if pal is None:
                d = -abs(fx - 0.5) - abs(fy - 0.5)  # no palette: the centre crop
            else:
                sx0, sy0 = int(x0 * small_scale), int(y0 * small_scale)
                ss = max(1, int(side * small_scale))
                px = small[sy0:sy0 + ss, sx0:sx0 + ss].reshape(-1, 3)
                d = _palette_distance(px, pal) if len(px) else math.inf
            if d < best[1]:
                best = (box, d)
    return best


def _tile(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Cover-fit ``im`` into ``size`` (centre crop)."""
    w, h = im.size
    tw, th = size
    s = max(tw / w, th / h)
    im = im.resize((max(tw, int(round(w * s))), max(th, int(round(h * s)))), Image.Resampling.LANCZOS)
    x0, y0 = (im.width - tw) // 2, (im.height - th) // 2
    return im.crop((x0, y0, x0 + tw, y0 + th))


def _swatches(hexes: Sequence[str], size: tuple[int, int]) -> Image.Image:
    im = Image.new("RGB", size, (240, 240, 240))
    if not hexes:
        return im
    w = size[0] / len(hexes)
    for i, hx in enumerate(hexes):
        im.paste(D.hex_to_rgb(hx), (int(i * w), 0, int((i + 1) * w), size[1]))
    return im


COLLAGE_CELL = 240


def ground_assets(
    product: Product, out_dir: str | Path, *, profile: UserProfile | None = None,
    history: UserHistory | None = None, start_frame: str | Path | None = None, max_user_visuals: int = 3,
) -> Grounding:
    """Stage 4: the reference collage ``out_dir/collage.png`` and the list of its sources.

    Holds the official product images (``product_<i>``, up to 3) and logo (``logo``); when ``profile`` and
    ``history`` are given, crops of the history images that best match the user's palette (``user_<i>``,
    one per image, the best-matching images first: :func:`best_palette_crop`) and the palette swatches
    (``palette``); with ``start_frame`` (PCI) the integration frame (``start_frame``) as the large tile.
    Crops and swatches are saved under ``out_dir/assets/``. Raises :class:`DirectorError` naming the product
    and file when an official asset is missing or unreadable (a product without images cannot be grounded).
    """
    out_dir = Path(out_dir)
    item = f"product {product.id}"
    sources: list[GroundingSource] = []
    tiles: list[tuple[str, Image.Image]] = []
    if not product.images:
        raise DirectorError(item, "ground", "the product has no images")
    for i, a in enumerate(product.images[:3]):
        p = resolve(a.path)
        try:
            im = load_image(p)
        except MediaError as e:
            raise DirectorError(item, "ground", f"field 'images[{i}].path': {e}") from e
        sources.append(GroundingSource(asset_id=f"product_{i}", path=display_path(p), kind="product_image", origin=product.id))
        tiles.append(("product", im))
    lp = resolve(product.logo.path)
    try:
        logo = load_image(lp)
    except MediaError as e:
        raise DirectorError(item, "ground", f"field 'logo.path': {e}") from e
    sources.append(GroundingSource(asset_id="logo", path=display_path(lp), kind="logo", origin=product.id))
    tiles.insert(1, ("logo", logo))

    swatch_hex: list[str] = list(product.palette)
    if profile is not None and history is not None:
        pal = profile.visual.palette or list(PALETTES.get(profile.visual.palette_name, ()))
        n_want = min(max_user_visuals, n_user_visuals(history, max_user_visuals))
        scored = []
        seen: set[str] = set()
        for iid, p in _existing_images(history):
            if iid in seen:
                continue
            seen.add(iid)
            try:
                im = load_image(p)
            except MediaError:
                continue
            box, d = best_palette_crop(im, pal)
            scored.append((d, iid, p, im.crop(box)))
        scored.sort(key=lambda x: (x[0], x[1]))
        for i in range(n_want):
            if i < len(scored):
                _, iid, _, crop = scored[i]
                kind, origin = "user_visual", iid
            else:  # fewer readable images than expected: the palette itself stands in
                crop, kind, origin = _swatches(pal, (256, 256)), "user_visual", "palette"
            cp = save_image(out_dir / "assets" / f"user_{i}.png", _tile(crop, (256, 256)))
            sources.append(GroundingSource(asset_id=f"user_{i}", path=display_path(cp), kind=kind, origin=origin))
            tiles.append(("user style", crop))
        swatch_hex = list(pal)
        pp = save_image(out_dir / "assets" / "palette.png", _swatches(pal, (256, 64)))
        sources.append(GroundingSource(asset_id="palette", path=display_path(pp), kind="palette",
                                       origin=f"user {profile.user_id}"))
    big: tuple[str, Image.Image] | None = None
    if start_frame is not None:
        sp = resolve(start_frame)
        try:
            big = ("start frame", load_image(sp))
        except MediaError as e:
            raise DirectorError(item, "ground", f"start frame: {e}") from e
        sources.append(GroundingSource(asset_id="start_frame", path=display_path(sp), kind="start_frame",
                                       origin=Path(sp).stem))
    collage = _compose_collage(tiles, big, swatch_hex)
    cpath = save_image(out_dir / "collage.png", collage)
    return Grounding(collage_path=display_path(cpath), sources=sources)


def _compose_collage(tiles: list[tuple[str, Image.Image]], big: tuple[str, Image.Image] | None,
                     swatch_hex: Sequence[str]) -> Image.Image:
    """3x3 grid of ``COLLAGE_CELL`` px cells: a 2x2 lead tile (the start frame for PCI, else the hero image),
    the other tiles in the remaining 5 cells, and a strip of palette swatches underneath."""
    c = COLLAGE_CELL
    canvas = Image.new("RGB", (3 * c, 3 * c + 48), (244, 244, 244))
    lead = big if big is not None else tiles[0]
    rest = tiles if big is not None else tiles[1:]
    canvas.paste(_tile(lead[1], (2 * c - 4, 2 * c - 4)), (2, 2))
    D.text_box(canvas, lead[0], (8, 8), 13, 2 * c, anchor="left", pad=4)
    cells = [(2, 0), (2, 1), (0, 2), (1, 2), (2, 2)]
    for (label, im), (cx, cy) in zip(rest, cells):
        x, y = cx * c + 2, cy * c + 2
        canvas.paste(_tile(im, (c - 4, c - 4)), (x, y))
        D.text_box(canvas, label, (x + 6, y + 6), 12, c, anchor="left", pad=3)
    canvas.paste(_swatches(swatch_hex, (3 * c - 4, 44)), (2, 3 * c + 2))
    return canvas


def grounding_asset_paths(grounding: Grounding) -> dict[str, str]:
    """``{asset_id: path}`` for :class:`~nextads_lib.schemas.ProducerRequest.assets`."""
    return {s.asset_id: s.path for s in grounding.sources}


__all__ = [
    "CODE_VERSION", "DEFAULT_COMPAT_THRESHOLD", "DirectorError", "StoryboardError", "HostContext",
    "ProfileAnswer", "MatchAnswer", "StoryboardAnswer", "model_user", "match_product", "plan_storyboard",
    "validate_storyboard", "ground_assets", "asset_catalog", "slot_times", "personal_tokens",
    "build_profile_request", "build_match_request", "build_storyboard_request", "build_revise_request",
    "compose_storyboard", "grounding_asset_paths", "product_brief", "BackendError",
    "AnnotationAnswer", "annotate_video", "build_annotation_request", "build_video_profile_request",
    "model_user_from_videos", "NARRATION_WPS", "MAX_NARRATION_WPS", "narration_budget", "fit_line",
    "speakable",
]
