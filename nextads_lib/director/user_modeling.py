"""Director stage 1, user modeling (paper 3.2.1, 5.1.1; PCI 5.2.1): the user's profile (topical interests,
presentation style, visual style) from the interaction history, through a backend.

:func:`model_user` (PCG: texts, images and a few videos of the history) and :func:`model_user_from_videos`
(PCI: each history video annotated first, :func:`annotate_video`, then aggregated with the covers). The
offline handlers (``director.user_profile``, ``director.annotate_video``, ``director.user_profile_videos``)
are transparent heuristics over the request's context.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field

from .. import embed
from ..backends import BackendError, ImagePart, ModelRequest, TextPart, VideoPart, register_offline
from ..config import DEFAULT_SEED, display_path, resolve
from ..media import MediaError, load_image, sample_frames
from ..schemas import (
    HistoryItem,
    PresentationStyle,
    Schema,
    TopicPreference,
    UserHistory,
    UserProfile,
    VideoAnnotation,
    VisualStyle,
)
from ..store import Cache, content_key, file_digest
from ..topics import LIGHTINGS, NARRATIVES, CameraMove, PALETTES, TONES, TOPIC_IDS, topic_name
from .common import (
    CODE_VERSION,
    DirectorError,
    _EPS,
    _existing_images,
    _hex,
    _rgb_arr,
    _spread,
    _words,
    item_text,
)


class ProfileAnswer(Schema):
    """What the backend answers for ``director.user_profile`` (the ids are filled in by the code)."""

    topics: list[TopicPreference] = Field(min_length=1)
    presentation: PresentationStyle
    visual: VisualStyle
    summary: str = ""


PROFILE_SYSTEM = (
    "You are the Director of a personalized video-advertising system. From a user's interaction history "
    "(titles, texts and images of the items they engaged with) infer a structured profile: topical interests "
    "with weights summing to 1, each with a short label in the history's own words and the ids of the items "
    "that support it; the preferred presentation style "
    f"(tone, one of {list(TONES)}; narrative structure, one of {list(NARRATIVES)}; information density low/"
    "medium/high); and visual preferences aggregated over the images (dominant colours as hex, a palette name "
    f"from {list(PALETTES)}, lighting from {list(LIGHTINGS)}, motion static/slow/dynamic, preferred visual "
    "elements as short words). Prefer topic ids from this taxonomy when they fit: "
    f"{list(TOPIC_IDS)}. Answer with JSON only."
)


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
        # the offline handler's palette vote reads more images than are sent (thumbnails, cheap)
        "palette_images": [{"item_id": i, "path": display_path(p)}
                           for i, p in _spread(_existing_images(history), PALETTE_IMAGES)],
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


#: palette reading per image: k-means colours (``PALETTE_K``) are matched with each named palette seen under an
#: unknown light, ``colour = s * palette colour + o`` (one gain ``s`` in PALETTE_GAIN, one offset ``o`` per channel
#: within +-PALETTE_OFFSET, fitted by alternating nearest-colour assignment and weighted least squares); the
#: residual (the share-weighted chamfer distance both ways, RGB units) plus PALETTE_OFFSET_COST x the mean |o|
#: is the palette's distance. Tuned on the embedded Qilin sample's images (scripts/bench_user_model.py).
PALETTE_K, PALETTE_GAIN, PALETTE_OFFSET, PALETTE_OFFSET_COST, PALETTE_FIT_ITERS = 6, (0.15, 1.3), 80.0, 0.2, 6
#: neutral colours (greys, black, white: captions, outlines, shadows, overlays) say little about a palette: a
#: dominant colour is neutral when its chroma (max - min channel) is below NEUTRAL_CHROMA or below NEUTRAL_SAT x
#: its value (so a dimly lit pastel, low chroma but not grey, stays chromatic). A neutral colour weighs
#: NEUTRAL_FIT_WEIGHT x its share in the light fit and costs at most NEUTRAL_COST against any palette, and a
#: palette's chromatic colour is matched with the image's chromatic colours only (NEUTRAL_PENALTY more than its
#: nearest colour when the image has none), so captions and shadows neither pull a palette's fit nor make every
#: image look ``mono``, and an image of greys only is mono.
#: A palette colour is neutral by the looser PALETTE_NEUTRAL_CHROMA / PALETTE_NEUTRAL_SAT (mono's greys, neon's
#: near-black)
NEUTRAL_CHROMA, NEUTRAL_SAT, NEUTRAL_FIT_WEIGHT, NEUTRAL_COST, NEUTRAL_PENALTY = 4.0, 0.06, 0.25, 5.0, 60.0
PALETTE_NEUTRAL_CHROMA, PALETTE_NEUTRAL_SAT = 12.0, 0.1
#: images read per history for the palette vote (evenly spread), and their thumbnail side
PALETTE_IMAGES, PALETTE_SIDE = 12, 48
#: PCI (a history of videos): the palette vote reads one cover per history item, every item up to VIDEO_COVERS
#: (evenly spread beyond), at COVER_SIDE; an item's video annotation votes only when it has no readable cover.
#: Diagnosed on the embedded MicroLens sample with the generator's per-item styles (diagnosis only): a cover is
#: read right for 86 % of the videos, the pooled frames of the annotation for 77 % (H.264 at crf 30 fades the
#: chroma of dim scenes: 15 of the 37 misread videos are dimly lit pastel read as mono), and the two readings of
#: one video are not independent, so counting both counted each video twice with the weaker reading's bias
VIDEO_COVERS, COVER_SIDE = 40, 96


def neutral_colours(colours: np.ndarray, chroma: float = NEUTRAL_CHROMA, sat: float = NEUTRAL_SAT) -> np.ndarray:
    """Boolean mask of the near-grey rows of ``colours`` (RGB 0..255): chroma below ``chroma`` or below ``sat``
    x the colour's value."""
    c = np.asarray(colours, np.float64).reshape(-1, 3)
    mx, mn = c.max(axis=1), c.min(axis=1)
    return ((mx - mn) < chroma) | ((mx - mn) < sat * np.maximum(mx, 1.0))


def palette_distances(colours: np.ndarray, shares: np.ndarray) -> dict[str, float]:
    """Each named palette's distance to an image's dominant ``colours`` (RGB 0..255) with ``shares``, after
    fitting the palette's gain and per-channel offset (an unknown light: tint, dimming, lifting; see
    :data:`PALETTE_K`), neutral colours discounted (:data:`NEUTRAL_CHROMA`). Lower is nearer."""
    c = np.asarray(colours, np.float64)
    w = np.asarray(shares, np.float64)
    w = w / max(float(w.sum()), _EPS)
    neutral = neutral_colours(c)
    chromatic = ~neutral
    wf = np.where(neutral, NEUTRAL_FIT_WEIGHT * w, w)
    wf = wf / max(float(wf.sum()), _EPS)
    lo, hi = PALETTE_GAIN
    out = {}
    for name, hexes in PALETTES.items():
        pal = _rgb_arr(hexes).astype(np.float64)
        pal_neutral = neutral_colours(pal, PALETTE_NEUTRAL_CHROMA, PALETTE_NEUTRAL_SAT)
        s, o = 1.0, np.zeros(3)
        for _ in range(PALETTE_FIT_ITERS):
            a = np.linalg.norm(c[:, None] - (s * pal + o)[None], axis=2).argmin(axis=1)
            p = pal[a]
            pm, cm = (wf[:, None] * p).sum(axis=0), (wf[:, None] * c).sum(axis=0)
            den = float((wf[:, None] * (p - pm) ** 2).sum()) + 1e-6
            s = float(np.clip(float((wf[:, None] * (p - pm) * (c - cm)).sum()) / den, lo, hi))
            o = np.clip(cm - s * pm, -PALETTE_OFFSET, PALETTE_OFFSET)
        d = np.linalg.norm(c[:, None] - (s * pal + o)[None], axis=2)
        fwd = np.where(neutral, np.minimum(d.min(axis=1), NEUTRAL_COST), d.min(axis=1))
        back = [float(d[:, j].min()) if pal_neutral[j] else
                float(d[chromatic, j].min()) if chromatic.any() else float(d[:, j].min()) + NEUTRAL_PENALTY
                for j in range(len(pal))]
        out[name] = float((fwd * w).sum() + np.mean(back) + PALETTE_OFFSET_COST * np.abs(o).mean())
    return out


def palette_of_pixels(pixels: np.ndarray, seed: int = DEFAULT_SEED) -> tuple[str, np.ndarray]:
    """The named palette of one image's pixels ``(n, 3)`` (:func:`palette_distances` of its
    :data:`PALETTE_K` k-means colours) and those colours, largest share first."""
    cents, shares = dominant_colours(pixels, k=PALETTE_K, seed=seed)
    d = palette_distances(cents, shares)
    return min(d, key=lambda n: (d[n], n)), cents


def palette_vote(images: Sequence[tuple[str, str | Path]], extra: Sequence[tuple[str, str]] = (), *,
                 fallback: Sequence[tuple[str, str]] = (), side: int = PALETTE_SIDE
                 ) -> tuple[str, list[str], list[str], dict[str, int]]:
    """The history's palette by a vote of its images: each readable image (``(item_id, path)``, read as a
    ``side`` px thumbnail) names its palette (:func:`palette_of_pixels`); ``extra`` adds votes already
    read elsewhere (``(item_id, palette name)``); ``fallback`` votes (e.g. the video annotations) count only
    for the items none of whose ``images`` could be read. Returns (palette name, the winning images' dominant
    colours as hex (at most 5), the evidence item ids (the items that voted for it), the votes). Ties go to
    the palette order of ``topics.PALETTES``; ("", [], [], {}) without any vote."""
    votes: list[tuple[str, str]] = list(extra)
    cols: dict[str, list[np.ndarray]] = {}
    read: set[str] = set()
    for iid, p in images:
        pix = _image_pixels([p], side=side)
        if not pix:
            continue
        name, cents = palette_of_pixels(pix[0])
        votes.append((iid, name))
        read.add(iid)
        cols.setdefault(name, []).append(cents[0])
    votes += [(iid, name) for iid, name in fallback if iid not in read and name]
    if not votes:
        return "", [], [], {}
    count = Counter(n for _, n in votes)
    best = _vote([n for _, n in votes], tuple(PALETTES))
    hexes = list(dict.fromkeys(_hex(c) for c in cols.get(best, [])))[:5]
    evidence = list(dict.fromkeys(i for i, n in votes if n == best))
    return best, hexes, evidence, dict(count)


#: motion from optical flow within shots: Farneback flow (grey, MOTION_SIZE) of MOTION_PAIRS consecutive frame
#: pairs spread over the video; a pair whose mean grey change exceeds MOTION_CUT is a cut and left out; the
#: median flow magnitude (px per frame at MOTION_SIZE) below MOTION_FLOW_STATIC is static, below
#: MOTION_FLOW_SLOW slow, else dynamic (thresholds from the embedded MicroLens videos: static < 0.02,
#: slow 0.10-0.28, dynamic 0.23-0.85)
MOTION_SIZE, MOTION_PAIRS, MOTION_CUT = (64, 36), 8, 0.12
MOTION_FLOW_STATIC, MOTION_FLOW_SLOW = 0.05, 0.25


def motion_pair_indices(n_frames: int, pairs: int = MOTION_PAIRS) -> list[tuple[int, int]]:
    """``pairs`` consecutive frame pairs (i, i + 1) evenly spread over ``n_frames``."""
    if n_frames < 2:
        return []
    starts = sorted({int((i + 0.5) * (n_frames - 1) / pairs) for i in range(pairs)})
    return [(s, s + 1) for s in starts]


def flow_motion(pairs: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[str, float | None]:
    """(motion label, median flow magnitude) of RGB frame pairs (already at :data:`MOTION_SIZE`): Farneback
    optical flow per pair, cut pairs (grey change > :data:`MOTION_CUT`) excluded; ("", None) when no pair
    is left."""
    import cv2  # noqa: PLC0415

    mags = []
    for a, b in pairs:
        ga = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY)
        gb = cv2.cvtColor(np.ascontiguousarray(b), cv2.COLOR_RGB2GRAY)
        if float(np.abs(ga.astype(np.float32) - gb).mean()) / 255.0 > MOTION_CUT:
            continue
        f = cv2.calcOpticalFlowFarneback(ga, gb, None, 0.5, 2, 9, 2, 5, 1.1, 0)
        mags.append(float(np.hypot(f[..., 0], f[..., 1]).mean()))
    if not mags:
        return "", None
    m = float(np.median(mags))
    return ("static" if m < MOTION_FLOW_STATIC else "slow" if m < MOTION_FLOW_SLOW else "dynamic"), m


def motion_of_video(path: str | Path) -> tuple[str, float | None]:
    """:func:`flow_motion` of one video (decoded at :data:`MOTION_SIZE`); ("", None) when unreadable."""
    from ..media import count_frames, read_frames  # noqa: PLC0415

    try:
        p = resolve(path)
        pairs = motion_pair_indices(count_frames(p))
        want = sorted({i for pr in pairs for i in pr})
        got = dict(zip(want, read_frames(p, want, size=MOTION_SIZE))) if want else {}
    except MediaError:
        return "", None
    return flow_motion([(got[a], got[b]) for a, b in pairs])


def _density(texts: Sequence[str]) -> str:
    """Information density from the texts: mean words per item plus 3 per numeral; < 18 low, < 40 medium."""
    scores = [len(_words(t)) + 3 * len(re.findall(r"\d+", t)) for t in texts]
    m = float(np.mean(scores)) if scores else 0.0
    return "low" if m < 18 else "medium" if m < 40 else "high"


#: words that never start or end an interest's name (English function words; no topic words)
STOPWORDS = frozenset("""a an and the of to in on at for with by from as is are was were be been it its it's this
that these those i me my we our you your he she they them his her their or but so if then than too very just not
no nor only also about into over under after before up down out off again all any both each few more most other
some such own same can will would should could do does did done have has had having am what which who whom how
why when where there here one two three s t don lol ok oh im got get gets really still even much many""".split())
#: items' texts closer than this cosine distance (average linkage) form one interest
INTEREST_DISTANCE = 0.7
#: naming: the phrases most specific to the interest (share of its items minus share of the others) are
#: re-ranked by NAME_FIT x their cosine with the interest's centroid; the best NAME_PHRASES make the name
#: (tuned on the embedded Qilin sample; tests/test_user_model_generalisation.py checks it on hand-written users)
NAME_CANDIDATES, NAME_FIT, NAME_PHRASES = 30, 2.0, 3
#: an interest needs at least this share of the history (and 2 items); at most MAX_INTERESTS are kept
MIN_INTEREST_SHARE, MAX_INTERESTS = 0.12, 3


def _phrases(text: str) -> set[str]:
    """The 1- to 3-word phrases of ``text`` that neither start nor end on a function word nor cross
    punctuation (lower case)."""
    out = set()
    for part in re.split(r"[.,;:!?()\[\]\"|/#+=&]+", text.lower()):
        toks = re.findall(r"[a-z][a-z0-9'-]*", part)
        for n in (1, 2, 3):
            for i in range(len(toks) - n + 1):
                g = toks[i:i + n]
                if g[0] in STOPWORDS or g[-1] in STOPWORDS or (n == 1 and len(g[0]) < 3):
                    continue
                out.add(" ".join(g))
    return out


def interest_clusters(texts: Sequence[str], *, distance: float = INTEREST_DISTANCE,
                      max_interests: int = MAX_INTERESTS) -> list[tuple[str, list[int], np.ndarray]]:
    """The history's interests, read from its texts: (name, item indices, unit centroid), largest first.

    Each text is embedded (MiniLM, :func:`nextads_lib.embed.embed`); average-linkage clustering on cosine
    distance, cut at ``distance``, groups the items; a cluster of at least ``MIN_INTEREST_SHARE`` of the
    history (and 2 items) is an interest, the rest is noise. Its name is made of the history's own words:
    of the ``NAME_CANDIDATES`` phrases (:func:`_phrases`) whose share of the cluster's items most exceeds
    their share of the other items, the ``NAME_PHRASES`` that score best with ``NAME_FIT`` x their cosine to the
    cluster's centroid added (a phrase inside a better one is skipped), joined by commas."""
    n = len(texts)
    if n == 0:
        return []
    emb = embed.embed(texts)
    if n == 1:
        labels = np.ones(1, int)
    else:
        from scipy.cluster.hierarchy import fcluster, linkage  # noqa: PLC0415

        labels = fcluster(linkage(emb.astype(np.float64), "average", metric="cosine"), distance, "distance")
    sizes = Counter(int(x) for x in labels)
    ranked = sorted(sizes, key=lambda c: (-sizes[c], min(i for i in range(n) if labels[i] == c)))
    keep = [c for c in ranked if sizes[c] >= max(2, MIN_INTEREST_SHARE * n)][:max_interests] or ranked[:1]
    phr = [_phrases(t) for t in texts]
    out = []
    for c in keep:
        idx = [i for i in range(n) if labels[i] == c]
        rest = [i for i in range(n) if labels[i] != c]
        df_in = Counter(p for i in idx for p in phr[i])
        df_out = Counter(p for i in rest for p in phr[i])
        cen = emb[idx].mean(axis=0)
        cen = cen / max(float(np.linalg.norm(cen)), _EPS)
        contrast = {p: k / len(idx) - (df_out[p] / len(rest) if rest else 0.0) + 0.02 * len(p.split())
                    for p, k in df_in.items()}
        cands = sorted(contrast, key=lambda q: (-contrast[q], q))[:NAME_CANDIDATES]
        fit = embed.embed(cands) @ cen if cands else np.zeros(0)
        score = {p: contrast[p] + NAME_FIT * float(f) for p, f in zip(cands, fit)}
        chosen: list[str] = []
        for p in sorted(score, key=lambda q: (-score[q], q)):
            if any(p in q or q in p for q in chosen):
                continue
            chosen.append(p)
            if len(chosen) == NAME_PHRASES:
                break
        out.append((", ".join(chosen) or texts[idx[0]][:40], idx, cen))
    return out


def interest_preferences(texts: Sequence[str], ids: Sequence[str]) -> list[TopicPreference]:
    """:func:`interest_clusters` as profile topics: each interest's weight is its share of the clustered
    items, its evidence the items nearest its centroid (at most 5), its ``label`` its name and its ``topic``
    the taxonomy topic whose text (:func:`nextads_lib.topics.topic_text`) is most similar to its centroid, so
    matching can compare it with the topics the product library declares."""
    clusters = interest_clusters(texts)
    total = float(sum(len(idx) for _, idx, _ in clusters)) or 1.0
    tsim = np.stack([c for _, _, c in clusters]) @ embed.topic_matrix().T
    emb = embed.embed(texts)
    out = []
    for (label, idx, cen), row in zip(clusters, tsim):
        near = sorted(idx, key=lambda i: (-float(emb[i] @ cen), i))[:5]
        out.append(TopicPreference(topic=TOPIC_IDS[int(np.argmax(row))], label=label,
                                   weight=round(len(idx) / total, 4), evidence=[ids[i] for i in near]))
    return out


@register_offline("director.user_profile")
def offline_user_profile(req: ModelRequest) -> ProfileAnswer:
    """Offline user modeling, transparent heuristics over the request's context:

    - interests: :func:`interest_preferences` of the item texts (MiniLM embeddings, clustering, names from
      the history's own words, each mapped to the taxonomy topic nearest its centroid).
    - tone / narrative: MiniLM cosine of each item text to the descriptions in :data:`TONE_TEXTS` /
      :data:`NARRATIVE_TEXTS`, averaged over items, the highest wins.
    - information density: words and numerals per item (:func:`_density`).
    - palette: a vote of up to :data:`PALETTE_IMAGES` history images, each named by colour clustering and a
      light-tolerant match with the named palettes (:func:`palette_vote`); lighting from brightness / warmth
      of the sent images (:func:`lighting_of`).
    - motion: optical flow within the shots of the history videos (:func:`motion_of_video`), a vote; without
      video (Qilin ships none) motion is left empty (not observable from still images) and the summary says
      so. The evidence lists the images and videos that voted for the palette and motion first.
    - elements: the interests' name phrases, largest interest first.
    """
    ctx = req.context
    items = ctx["items"]
    texts = [x["text"] for x in items]
    topics = interest_preferences(texts, [x["item_id"] for x in items])

    tone_sim = embed.similarity(texts, [TONE_TEXTS[t] for t in TONES]).mean(axis=0)
    tone = TONES[int(np.argmax(tone_sim))]
    narr_sim = embed.similarity(texts, [NARRATIVE_TEXTS[n] for n in NARRATIVES]).mean(axis=0)
    narrative = NARRATIVES[int(np.argmax(narr_sim))]
    density = _density(texts)

    img_paths = [x["path"] for x in ctx.get("images", [])]
    pix = _image_pixels(img_paths)
    lighting = lighting_of(np.concatenate(pix)) if pix else ""
    pal_imgs = ctx.get("palette_images") or ctx.get("images", [])
    palette_name, palette, pal_evidence, _ = palette_vote([(x["item_id"], x["path"]) for x in pal_imgs])
    read = [(x["item_id"], motion_of_video(x["path"])) for x in ctx.get("videos", [])]
    read = [(i, m, v) for i, (m, v) in read if m]
    if read:
        motion = _vote([m for _, m, _ in read], ("static", "slow", "dynamic"))
        mot_evidence = [i for i, m, _ in read if m == motion]
        motion_src = ("median optical flow " + ", ".join(f"{v:.2f}" for _, _, v in read)
                      + " px/frame within the shots of the history videos")
    else:  # Qilin ships no video: motion is not observable from images, so it is left unknown
        motion, mot_evidence, motion_src = "", [], "no video in the history: not observed"
    elements = list(dict.fromkeys(p for t in topics for p in t.label.split(", ") if p))[:5]
    visual = VisualStyle(palette=palette, palette_name=palette_name, lighting=lighting, motion=motion,
                         elements=elements, evidence=list(dict.fromkeys(
                             pal_evidence + mot_evidence + [x["item_id"] for x in ctx.get("images", [])])))
    names = "; ".join(f"{t.label} ({topic_name(t.topic)}, {t.weight:.2f})" for t in topics)
    summary = (f"Interests: {names}. Prefers a {tone} tone, {narrative} structure, {density} information "
               f"density; {palette_name or 'no'} palette, {lighting or 'unknown'} lighting, {motion or 'unknown'} "
               f"motion ({motion_src}). Offline heuristics over {len(items)} items and {len(pix)} images.")
    return ProfileAnswer(topics=topics, presentation=PresentationStyle(tone=tone, narrative=narrative,
                         information_density=density), visual=visual, summary=summary)


# ------------------------------------------------------------------------- from the history's videos (PCI)
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
    - visual tone, palette: ``n_frames`` sampled frames (64x64) -> :func:`palette_of_pixels` (colour clustering,
      light-tolerant palette match), :func:`lighting_of`;
    - motion: Farneback optical flow within shots (:func:`flow_motion`: MOTION_PAIRS consecutive pairs at
      MOTION_SIZE, cuts left out, the median magnitude; ``motion_magnitude`` is that median); only when every
      pair is a cut, the mean abs grey change of 4 pairs (< MOTION_STATIC static, < MOTION_SLOW slow); camera: :func:`nextads_lib.host.camera_move` (Farneback optical flow)
      over 6 consecutive frames from the middle of the video.
    """
    from ..host import camera_move, grey_small  # noqa: PLC0415
    from ..media import count_frames, read_frames, sample_indices  # noqa: PLC0415

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
    flow_pairs = motion_pair_indices(n)
    mid = max(0, n // 2 - 3)
    run = list(range(mid, min(n, mid + 6)))
    want = sorted(set(sampled + pair_idx + run + [i for pr in flow_pairs for i in pr]))
    got = dict(zip(want, read_frames(path, want, size=(64, 64))))  # one decoding pass for every measure
    pix = np.stack([got[i] for i in sampled]).reshape(-1, 3).astype(np.float32)
    palette_name, cents = palette_of_pixels(pix)
    pairs = grey_small(np.stack([got[i] for i in pair_idx]))
    mag = float(np.abs(pairs[1::2] - pairs[0::2]).mean()) if len(pairs) >= 2 else 0.0
    import cv2  # noqa: PLC0415

    small = {i: cv2.resize(got[i], MOTION_SIZE, interpolation=cv2.INTER_AREA) for pr in flow_pairs for i in pr}
    motion, flow = flow_motion([(small[a], small[b]) for a, b in flow_pairs])
    if not motion:  # every sampled pair was a cut: the frame change decides
        motion = "static" if mag < MOTION_STATIC else "slow" if mag < MOTION_SLOW else "dynamic"
    cam, _ = camera_move(np.stack([got[i] for i in run]))
    summary = (f"{topic_name(TOPIC_IDS[top[0]])} video, {tone} tone, {narrative}; {palette_name} palette, "
               f"{lighting_of(pix)} visual tone, {motion} motion (median flow "
               f"{'n/a' if flow is None else f'{flow:.2f} px/frame'} within shots, frame change {mag:.3f}), camera {cam}. "
               "Offline heuristics.")
    return AnnotationAnswer(topic=TOPIC_IDS[top[0]], topic_scores=scores, tone=tone, narrative=narrative,
                            information_density=_density([text]), visual_tone=lighting_of(pix),
                            palette=[_hex(c) for c in cents], palette_name=palette_name, motion=motion, camera=cam,
                            motion_magnitude=round(flow if flow is not None else mag, 5), summary=summary)


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
    first: dict[str, Path] = {}
    for iid, p in _existing_images(history):
        first.setdefault(iid, p)  # an item's cover: its first image
    covers = list(first.items())
    ctx = {"dataset": history.dataset, "items": items, "annotations": anns,
           "images": [{"item_id": i, "path": display_path(p)} for i, p in images],
           # the offline palette vote reads one cover per item, every item up to VIDEO_COVERS (thumbnails, cheap)
           "palette_images": [{"item_id": i, "path": display_path(p)} for i, p in _spread(covers, VIDEO_COVERS)]}
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

    - interests: :func:`interest_preferences` of the history's texts (the annotations' per-video topics are
      too coarse to tell interests apart);
    - tone, narrative, density, visual tone (lighting), motion: majority vote over the annotations;
    - palette: a vote of one cover per item (up to :data:`VIDEO_COVERS`, read at :data:`COVER_SIDE` px,
      :func:`palette_vote`); an item without a readable cover votes with its annotation's palette name, so every
      item votes once;
    - evidence: the items that voted for the palette, then for the motion, then the covers;
    - elements: the interests' name phrases, largest interest first.
    """
    ctx = req.context
    anns = ctx["annotations"]
    texts = [x["text"] for x in ctx["items"]]
    topics = interest_preferences(texts, [x["item_id"] for x in ctx["items"]])
    tone = _vote([a["tone"] for a in anns], TONES)
    narrative = _vote([a["narrative"] for a in anns], NARRATIVES)
    density = _vote([a["information_density"] for a in anns], ("low", "medium", "high")) or "medium"
    lighting = _vote([a["visual_tone"] for a in anns], LIGHTINGS)
    motion = _vote([a["motion"] for a in anns], ("static", "slow", "dynamic")) or "static"
    imgs = ctx.get("images", [])
    palette_name, palette, pal_evidence, _ = palette_vote(
        [(x["item_id"], x["path"]) for x in ctx.get("palette_images") or imgs],
        fallback=[(a["item_id"], a["palette_name"]) for a in anns if a.get("palette_name")], side=COVER_SIDE)
    if not palette:
        palette = list(dict.fromkeys(h for a in anns if a.get("palette_name") == palette_name
                                     for h in a["palette"]))[:5]
    pix = _image_pixels([x["path"] for x in imgs])
    mot_evidence = [a["item_id"] for a in anns if a["motion"] == motion]
    cams = Counter(a["camera"] for a in anns)
    visual = VisualStyle(palette=palette, palette_name=palette_name, lighting=lighting, motion=motion,
                         elements=list(dict.fromkeys(p for t in topics for p in t.label.split(", ") if p))[:5],
                         evidence=list(dict.fromkeys(pal_evidence + mot_evidence + [x["item_id"] for x in imgs])))
    names = "; ".join(f"{t.label} ({topic_name(t.topic)}, {t.weight:.2f})" for t in topics)
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
