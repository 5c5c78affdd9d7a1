"""The offline judge's proxy formulas: what a VLM judge would score, measured on what was rendered.

Each function scores the creative's frames (and the text it says and shows) against the user's history, the
product's record or the host video, with image statistics and MiniLM sentence embeddings only. This module
imports nothing of the Director (``nextads_lib.director``, ``nextads_lib.planner``, the producer, the sample; a
test parses its imports) and not the coarse taxonomy (``nextads_lib.topics``) the Director matches with: the
content proxy compares the plan's text with the history's own interests (clusters of its texts). It still
shares with the Director what :data:`PROXY_WEAKNESS` says, above all the plan's text, which the offline judge
reads as its stand-in for what the creative says.
:mod:`nextads_lib.judge`'s ``offline`` handlers call these functions; the formulas, where each proxy is weak and
what would make it agree with a VLM judge are in ``docs/proxies.md``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import embed

#: where each proxy is weak (shown in the offline judge's reasons and in ``docs/proxies.md``)
PROXY_WEAKNESS: dict[str, str] = {
    "personalization_presentation": "colour and image statistics only; copies of the history are found by "
                                    "template match at low resolution and strict correlation, which misses most "
                                    "resized pasted crops, so the offline Director's pasted crops still count",
    "personalization_content": "reads the plan's text, not the video; the user's interests are clusters of up "
                               "to 12 history titles, so an interest seen once counts, and a plan that echoes "
                               "the history's words scores well whatever the frames show",
    "product_alignment": "colour-histogram + template match of the product's own images (the compositor pastes "
                         "them); name, points and facts from the plan's text, not OCR of the frames",
    "integration_quality": "picture change at the seams and colour agreement; no sense of narrative flow",
    "diversity": "colour histograms and plan-text cosine; blind to shot composition and narrative form",
}


# ---------------------------------------------------------------------------------- image statistics
def colour_hist(pixels: np.ndarray, bins: int = 4) -> np.ndarray:
    """Normalised ``bins**3`` RGB histogram of any array of RGB pixels (last axis 3)."""
    px = np.asarray(pixels).reshape(-1, 3).astype(np.int32)
    q = np.clip(px * bins // 256, 0, bins - 1)
    idx = (q[:, 0] * bins + q[:, 1]) * bins + q[:, 2]
    h = np.bincount(idx, minlength=bins ** 3).astype(np.float64)
    return h / max(h.sum(), 1.0)


def bhattacharyya(p: np.ndarray, q: np.ndarray) -> float:
    """Bhattacharyya coefficient of two distributions: 1 identical, 0 disjoint."""
    return float(np.clip(np.sqrt(np.asarray(p) * np.asarray(q)).sum(), 0.0, 1.0))


def template_match(frames: np.ndarray, template: np.ndarray, scales: Sequence[float] = (0.3, 0.45, 0.6, 0.8)) -> float:
    """Best normalised cross-correlation (OpenCV ``TM_CCOEFF_NORMED``, grey) of ``template`` resized to each
    ``scale`` x the frame width, over all frames; 0 when the template is flat or never fits."""
    import cv2  # noqa: PLC0415

    best = 0.0
    tg = cv2.cvtColor(np.ascontiguousarray(template), cv2.COLOR_RGB2GRAY)
    if tg.std() < 2.0:  # a flat template has no structure to correlate
        return 0.0
    grey = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in frames]
    fh, fw = grey[0].shape
    for s in scales:
        tw = max(4, int(round(fw * s)))
        th = max(4, int(round(tg.shape[0] * tw / tg.shape[1])))
        if th >= fh or tw >= fw:
            continue
        t = cv2.resize(tg, (tw, th), interpolation=cv2.INTER_AREA)
        if t.std() < 2.0:
            continue
        for g in grey:
            r = cv2.matchTemplate(g, t, cv2.TM_CCOEFF_NORMED)
            v = float(np.nanmax(r)) if r.size else 0.0
            if np.isfinite(v):
                best = max(best, v)
    return max(0.0, min(1.0, best))


_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")
_STOP = {"with", "your", "that", "this", "from", "into", "than", "more", "every", "each", "they", "them", "their",
         "have", "will", "just", "what", "when", "where", "which", "about", "only", "also", "over", "under"}


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) >= 4 and w not in _STOP}


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+(?:[.,]\d+)?", text))


def _clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


#: copied-pixel detection: each history image (grey) is cut into COPY_GRID x COPY_GRID cells; a cell with
#: structure (grey std >= COPY_MIN_STD) is matched (normalised cross-correlation) against the frames, resized to
#: COPY_SIDE pixels on their short side, at each of COPY_SCALES x its size; where it correlates above COPY_THRESHOLD, that
#: region of the frame is a copy of the history and is left out of the style comparison
COPY_GRID, COPY_SCALES, COPY_THRESHOLD, COPY_MIN_STD, COPY_SIDE = 3, (1.1,), 0.96, 8.0, 27


def copied_mask(history_images: Sequence[np.ndarray], frames: np.ndarray) -> np.ndarray:
    """``(n, H, W)`` boolean mask of the frames' pixels that reproduce a region of a history image (pasted
    crops, resized): the frames side by side (at :data:`COPY_SIDE`) are searched for each structured cell of each history image at
    :data:`COPY_SCALES` (OpenCV ``TM_CCOEFF_NORMED``); each frame's best match above :data:`COPY_THRESHOLD` is
    masked. Nothing is masked when the history images share no structure with the frames."""
    import cv2  # noqa: PLC0415

    fr = np.asarray(frames)
    n, full_h, full_w = fr.shape[:3]
    if n == 0:
        return np.zeros((0, full_h, full_w), bool)
    z = min(1.0, COPY_SIDE / min(full_h, full_w))
    fh, fw = max(1, int(round(full_h * z))), max(1, int(round(full_w * z)))
    mask = np.zeros((n, fh, fw), bool)
    mosaic = np.ascontiguousarray(np.concatenate([cv2.resize(cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY),
                                                             (fw, fh), interpolation=cv2.INTER_AREA) for f in fr], axis=1))
    for im in history_images:
        g = cv2.cvtColor(np.ascontiguousarray(im), cv2.COLOR_RGB2GRAY)
        h, w = g.shape
        for cy in range(COPY_GRID):
            for cx in range(COPY_GRID):
                cell = g[cy * h // COPY_GRID:(cy + 1) * h // COPY_GRID, cx * w // COPY_GRID:(cx + 1) * w // COPY_GRID]
                if cell.size == 0 or float(cell.std()) < COPY_MIN_STD:
                    continue
                for s in COPY_SCALES:
                    th, tw = int(round(cell.shape[0] * s)), int(round(cell.shape[1] * s))
                    if th >= fh or tw >= fw or th < 4 or tw < 4:
                        continue
                    t = cv2.resize(cell, (tw, th), interpolation=cv2.INTER_LINEAR)
                    r = cv2.matchTemplate(mosaic, t, cv2.TM_CCOEFF_NORMED)
                    # each frame's best placement (placements that cross into the next frame are left out)
                    rr = np.zeros((r.shape[0], n * fw), np.float32)
                    rr[:, :r.shape[1]] = np.nan_to_num(r, nan=0.0)
                    seg = rr.reshape(r.shape[0], n, fw)[:, :, :fw - tw + 1].transpose(1, 0, 2).reshape(n, -1)
                    best = seg.argmax(axis=1)
                    for k in np.flatnonzero(seg[np.arange(n), best] >= COPY_THRESHOLD):
                        y, x = divmod(int(best[k]), fw - tw + 1)
                        mask[k, y:y + th, x:x + tw] = True
    if (fh, fw) == (full_h, full_w):
        return mask
    return np.stack([cv2.resize(m.astype(np.uint8), (full_w, full_h), interpolation=cv2.INTER_NEAREST) > 0
                     for m in mask])


def hue_sat_hist(pixels: np.ndarray, hue_bins: int = 12, sat_bins: int = 3) -> np.ndarray:
    """Normalised hue x saturation histogram (OpenCV HSV, ``hue_bins`` x ``sat_bins``, every pixel weighted by
    its value / 255 so near-black pixels, whose hue is noise, count little) of RGB pixels ``(..., 3)``."""
    import cv2  # noqa: PLC0415

    px = np.ascontiguousarray(np.asarray(pixels, np.uint8).reshape(1, -1, 3))
    hsv = cv2.cvtColor(px, cv2.COLOR_RGB2HSV).reshape(-1, 3).astype(np.int32)
    hb = np.minimum(hsv[:, 0] * hue_bins // 180, hue_bins - 1)
    sb = np.minimum(hsv[:, 1] * sat_bins // 256, sat_bins - 1)
    h = np.bincount(hb * sat_bins + sb, weights=hsv[:, 2] / 255.0, minlength=hue_bins * sat_bins)
    return h / max(float(h.sum()), 1e-9)


#: the look statistics of the presentation proxy and the ranges their differences are normalised by (none of
#: them is what the Director plans with: it plans with a named palette, lighting by brightness/warmth, motion)
LOOK_RANGES: dict[str, float] = {"colourfulness": 0.35, "contrast": 0.25, "texture": 0.08, "edges": 0.3}


def look_stats(pixels_by_image: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean over images of colourfulness (Hasler and Suesstrunk's M, /255), contrast (luma std), texture (mean
    absolute luma gradient) and edge density (share of gradients above 0.08), each in 0..1; an image is
    ``(H, W, 3)`` uint8 and may come with a boolean ``keep`` mask as a pair ``(image, keep)``."""
    acc: dict[str, list[float]] = {k: [] for k in LOOK_RANGES}
    for item in pixels_by_image:
        im, keep = item if isinstance(item, tuple) else (item, None)
        rgb = np.asarray(im, np.float32) / 255.0
        luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        gx = np.zeros_like(luma)
        gy = np.zeros_like(luma)
        gx[:, 1:] = np.abs(np.diff(luma, axis=1))
        gy[1:, :] = np.abs(np.diff(luma, axis=0))
        grad = (gx + gy) / 2
        k = np.ones(luma.shape, bool) if keep is None else np.asarray(keep, bool)
        if k.sum() < 16:
            continue
        r, g, b = rgb[..., 0][k], rgb[..., 1][k], rgb[..., 2][k]
        rg, yb = r - g, 0.5 * (r + g) - b
        acc["colourfulness"].append(float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())))
        acc["contrast"].append(float(luma[k].std()))
        acc["texture"].append(float(grad[k].mean()))
        acc["edges"].append(float((grad[k] > 0.08).mean()))
    return {k: float(np.mean(v)) if v else 0.0 for k, v in acc.items()}


def look_agreement(a: dict[str, float], b: dict[str, float]) -> float:
    """``1 - mean_i min(1, |a_i - b_i| / range_i)`` over :data:`LOOK_RANGES`."""
    return float(1.0 - np.mean([min(1.0, abs(a[k] - b[k]) / r) for k, r in LOOK_RANGES.items()]))


def presentation_proxy(history_images: Sequence[np.ndarray], frames: np.ndarray, copied: np.ndarray | None = None
                       ) -> tuple[float, dict[str, float]]:
    """``10 x (0.7 H + 0.3 L)`` over the frames' pixels that are not copies of the history (:func:`copied_mask`,
    or the ``(n, H, W)`` mask ``copied`` when given: ``scripts/bench_copy_mask.py`` passes the exact mask of the
    pasted pixels to measure what the detector misses): H the Bhattacharyya coefficient of the value-weighted hue
    x saturation histograms (:func:`hue_sat_hist`) of the history images and of those pixels, L the agreement of
    their look statistics (:func:`look_stats`: colourfulness, contrast, texture, edge density). Returns the score
    and its terms (``hs``, ``look``, ``copied`` the share of frame pixels left out)."""
    fr = np.asarray(frames)
    mask = copied_mask(history_images, fr) if copied is None else np.asarray(copied, bool)
    if mask.shape != fr.shape[:3]:
        raise ValueError(f"copied mask of shape {mask.shape} for frames of shape {fr.shape[:3]}")
    keep = ~mask
    if keep.sum() < 16:  # the creative is nothing but copies of the history: nothing of its own to compare
        keep = np.ones_like(mask)
    h_hist = np.mean([hue_sat_hist(a) for a in history_images], axis=0)
    f_hist = hue_sat_hist(fr[keep])
    hs = bhattacharyya(h_hist, f_hist)
    la = look_agreement(look_stats(list(history_images)), look_stats([(f, k) for f, k in zip(fr, keep)]))
    return 10.0 * (0.7 * hs + 0.3 * la), {"hs": hs, "look": la, "copied": float(mask.mean())}


#: history texts closer than this cosine distance (average linkage) form one of the user's own interests
INTEREST_DISTANCE = 0.6
#: the cosines that count as a full match (the interest term and the centroid term are ``clip(cos / this)``)
COS_FULL = 0.6


def interest_clusters(emb: np.ndarray, distance: float = INTEREST_DISTANCE) -> list[tuple[np.ndarray, list[int]]]:
    """The history's own fine-grained interests: its texts' MiniLM vectors ``emb`` (unit rows) grouped by
    average-linkage clustering on cosine distance cut at ``distance``; (unit centroid, member indices) per
    cluster, largest first (ties: earliest member). Singletons are kept (an interest seen once)."""
    n = len(emb)
    if n == 0:
        return []
    if n == 1:
        labels = np.ones(1, int)
    else:
        from scipy.cluster.hierarchy import fcluster, linkage  # noqa: PLC0415

        labels = fcluster(linkage(np.asarray(emb, np.float64), "average", metric="cosine"), distance, "distance")
    groups: dict[int, list[int]] = {}
    for i, c in enumerate(labels):
        groups.setdefault(int(c), []).append(i)
    out = []
    for idx in sorted(groups.values(), key=lambda g: (-len(g), g[0])):
        cen = np.asarray(emb, np.float64)[idx].mean(axis=0)
        out.append((cen / max(float(np.linalg.norm(cen)), 1e-9), idx))
    return out


def content_proxy(history: Sequence[str], plan: str) -> tuple[float, dict[str, float]]:
    """``10 x (0.6 I + 0.4 C)``: I the plan text's best match with one of the history's own interests
    (:func:`interest_clusters`), ``max_k clip(cos(plan, centroid_k) / COS_FULL, 0, 1) x sqrt(n_k / n_max)``
    (an interest seen in fewer items counts less), C = ``clip(cos / COS_FULL, 0, 1)`` of the plan and the
    history's centroid. Returns the score and its terms (``interest``, ``cos_interest`` of the best interest,
    ``share`` its share of the history, ``example`` the index of its member nearest the plan, ``cos``)."""
    emb = embed.embed(list(history))
    pv = embed.embed([plan])[0].astype(np.float64)
    clusters = interest_clusters(emb)
    n_max = max(len(idx) for _, idx in clusters)
    best = (-1.0, 0.0, 0.0, 0)
    for cen, idx in clusters:
        cos_k = float(cen @ pv)
        v = _clip01(cos_k / COS_FULL) * math.sqrt(len(idx) / n_max)
        if v > best[0]:
            near = max(idx, key=lambda i: (float(emb[i] @ pv), -i))
            best = (v, cos_k, len(idx) / len(emb), near)
    hv = emb.mean(axis=0)
    hv = hv / max(float(np.linalg.norm(hv)), 1e-9)
    cos = float(hv @ pv)
    i_term = max(0.0, best[0])
    return 10.0 * (0.6 * i_term + 0.4 * _clip01(cos / COS_FULL)), {
        "interest": i_term, "cos_interest": best[1], "share": best[2], "example": float(best[3]),
        "interests": float(len(clusters)), "cos": cos}


def product_proxy(frames: np.ndarray, assets: Sequence[np.ndarray], text: str, product: dict[str, Any]
                  ) -> tuple[float, dict[str, float]]:
    """``10 x (0.4 V + 0.2 N + 0.25 P + 0.15 F) - 3 x forbidden`` (module docstring)."""
    f_hists = [colour_hist(f) for f in frames]
    vis = []
    for a in assets:
        ah = colour_hist(a)
        bc = max(bhattacharyya(ah, fh) for fh in f_hists)
        tm = template_match(frames, a)
        vis.append(0.5 * bc + 0.5 * tm)
    v = float(np.mean(vis)) if vis else 0.0
    low = text.lower()
    n = 0.6 * (product["name"].lower() in low) + 0.4 * (product["brand"].lower() in low)
    words = _content_words(text)
    sp = product["selling_points"]
    covered = 0
    for point in sp:
        pw = _content_words(point)
        covered += int(bool(pw) and len(pw & words) / len(pw) >= 0.5)
    p = covered / len(sp) if sp else 0.0
    record = " ".join([product.get("description", ""), product.get("slogan", ""), " ".join(sp),
                       " ".join(f"{k} {v}" for k, v in product.get("facts", {}).items())])
    nums = _numbers(text)
    unsupported = sorted(x for x in nums if x not in _numbers(record))
    f = 1.0 - len(unsupported) / len(nums) if nums else 1.0
    forbidden = [c for c in product.get("forbidden_claims", []) if c and c.lower() in low]
    score = 10.0 * (0.4 * v + 0.2 * n + 0.25 * p + 0.15 * f) - 3.0 * len(forbidden)
    return float(min(10.0, max(0.0, score))), {"visual": v, "name": n, "points": p, "facts": f,
                                               "forbidden": float(len(forbidden)), "unsupported": float(len(unsupported))}


def seam_continuity(seam_change_in: float | None, seam_change_out: float | None,
                    host_median_change: float | None) -> float | None:
    """``K = clip(1 - log2(max(r, 1)) / 4, 0, 1)`` with ``r`` the mean seam change over the host's median
    frame change (floored at 0.01); None when the seam changes are unknown."""
    vals = [float(x) for x in (seam_change_in, seam_change_out) if x is not None and math.isfinite(float(x))]
    if not vals:
        return None
    r = float(np.mean(vals)) / max(float(host_median_change or 0.0), 0.01)
    return _clip01(1.0 - math.log2(max(r, 1.0)) / 4.0)


def diversity_proxy(frame_sets: Sequence[np.ndarray], texts: Sequence[str]) -> tuple[float, dict[str, float]]:
    """``10 x (1 - mean pairwise similarity)``, similarity ``0.5 BC + 0.5 max(0, cos)`` (module docstring)."""
    hists = [np.mean([colour_hist(f) for f in fs], axis=0) for fs in frame_sets]
    emb = embed.embed(list(texts))
    vis, txt = [], []
    for i in range(len(hists)):
        for j in range(i + 1, len(hists)):
            vis.append(bhattacharyya(hists[i], hists[j]))
            txt.append(max(0.0, float(emb[i] @ emb[j])))
    sim = 0.5 * float(np.mean(vis)) + 0.5 * float(np.mean(txt))
    return 10.0 * _clip01(1.0 - sim), {"visual": float(np.mean(vis)), "text": float(np.mean(txt))}


__all__ = ["PROXY_WEAKNESS", "colour_hist", "bhattacharyya", "template_match",
           "COPY_GRID", "COPY_SCALES", "COPY_THRESHOLD", "COPY_MIN_STD", "copied_mask", "hue_sat_hist",
           "LOOK_RANGES", "look_stats", "look_agreement", "presentation_proxy", "INTEREST_DISTANCE", "COS_FULL", "interest_clusters", "content_proxy", "product_proxy", "seam_continuity",
           "diversity_proxy"]
