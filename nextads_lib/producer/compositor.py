"""The offline Producer: each storyboard slot is its grounding image(s) on a palette background, filmed by
the slot's camera move (a smooth crop window over a slightly larger canvas, cut at sub-pixel precision and
resized for each frame). The label, and under ``post_production`` the narration, music, subtitles and CTA card,
come from the shared post step (:mod:`.post`).

What the compositor makes under the paper protocol (``post_production`` off), decided here because it has no
video model whose output could be "the creative": the composited shots with their camera moves, the slot
dissolves, and each slot's on-screen text, which the compositor draws as part of its picture (the storyboard
says what is on screen; a video model would render it in its frames), plus the "AI Created" label from the
first frame. No voice-over, no music (the creative has no audio track: the compositor makes no sound), no
narration subtitles and no CTA end card.

The compositor is not a generative model, so two protocol switches do not apply to it, and it says so in its
settings rather than pretending: it composites each slot's own grounding images whatever ``slot_layouts`` says
(under PCI the integration frame reaches it as the ``start_frame`` asset of the first and last slots, as
grounded by the Director), and it takes no first/last-frame conditioning, so without ``frame_overwrite`` a PCI
segment's boundaries are whatever its shots show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import draw
from ..schemas import ProducerRequest
from . import post
from .base import Producer

#: the canvas is this much larger than the frame, so pans and zooms never run off it
MARGIN = 1.25
#: crop-window (scale, dx, dy) at the start and end of a slot; scale is relative to the frame
#: (1 = one frame's worth of canvas pixels), dx/dy in units of the free margin on each side
MOVES: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    "static": ((1.0, 0.0, 0.0), (1.0, 0.0, 0.0)),
    "zoom_in": ((1.15, 0.0, 0.0), (0.85, 0.0, 0.0)),
    "zoom_out": ((0.85, 0.0, 0.0), (1.15, 0.0, 0.0)),
    "push_in": ((1.2, 0.0, 0.2), (0.78, 0.0, -0.1)),
    "pan_left": ((1.0, 0.9, 0.0), (1.0, -0.9, 0.0)),
    "pan_right": ((1.0, -0.9, 0.0), (1.0, 0.9, 0.0)),
    "tilt_up": ((1.0, 0.0, 0.9), (1.0, 0.0, -0.9)),
    "tilt_down": ((1.0, 0.0, -0.9), (1.0, 0.0, 0.9)),
}


def _ease(t: float, move: str) -> float:
    if move == "push_in":  # accelerate into the subject
        return t * t
    return t * t * (3 - 2 * t)


def _contain(img: np.ndarray, w: int, h: int) -> np.ndarray:
    h0, w0 = img.shape[:2]
    s = min(w / w0, h / h0)
    nw, nh = max(1, round(w0 * s)), max(1, round(h0 * s))
    return cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)


def canvas(images: list[np.ndarray], width: int, height: int, palette: list[str], slot_index: int) -> np.ndarray:
    """The slot's canvas (MARGIN x the frame): a palette gradient with the images laid out in the central
    frame-sized area (one image fills it; two or more are tiled along the frame's long side)."""
    cw, ch = int(round(width * MARGIN)), int(round(height * MARGIN))
    pal = palette or ["#1D3557", "#457B9D"]
    top, bottom = pal[slot_index % len(pal)], pal[(slot_index + 1) % len(pal)]
    cv = draw.gradient((cw, ch), top, bottom)
    cv = (cv.astype(np.float32) * 0.75).astype(np.uint8)  # a touch darker, so products and text stand out
    ox, oy = (cw - width) // 2, (ch - height) // 2
    n = len(images)
    vertical = height >= width
    for i, img in enumerate(images[:4]):
        if vertical:
            tw, th = width, height // min(n, 4)
            tx, ty = ox, oy + i * th
        else:
            tw, th = width // min(n, 4), height
            tx, ty = ox + i * tw, oy
        pw, ph = int(tw * 0.9), int(th * 0.9)
        r = _contain(img, pw, ph)
        x, y = tx + (tw - r.shape[1]) // 2, ty + (th - r.shape[0]) // 2
        cv[y : y + r.shape[0], x : x + r.shape[1]] = r
    return cv


def _shifted(cv: np.ndarray, x0: float, y0: float, width: int, height: int) -> np.ndarray:
    """The (width, height) view of ``cv`` whose top-left pixel sits at (x0, y0) (bilinear, separable: one
    blend of two integer views per axis with a fractional offset; pans move along one axis only)."""
    ch, cw = cv.shape[:2]
    x0 = min(max(x0, 0.0), cw - width)
    y0 = min(max(y0, 0.0), ch - height)
    ix, iy = int(np.floor(x0)), int(np.floor(y0))
    fx, fy = x0 - ix, y0 - iy
    fx = 0.0 if fx < 1e-6 or ix + width >= cw else fx  # at the canvas edge there is no next column
    fy = 0.0 if fy < 1e-6 or iy + height >= ch else fy
    rows = cv[iy : iy + height + (1 if fy else 0)]
    if fx:
        rows = cv2.addWeighted(rows[:, ix : ix + width], 1.0 - fx, rows[:, ix + 1 : ix + 1 + width], fx, 0.0)
    else:
        rows = rows[:, ix : ix + width]
    if fy:
        return cv2.addWeighted(rows[:height], 1.0 - fy, rows[1 : height + 1], fy, 0.0)
    return np.ascontiguousarray(rows)


def _window(cv: np.ndarray, s: float, cx: float, cy: float, width: int, height: int) -> np.ndarray:
    """The canvas seen through a window of ``s`` x the frame centred at (cx, cy), at (width, height): a
    sub-pixel shift when ``s`` is 1 (pans, tilts), else the window cut at sub-pixel precision
    (``getRectSubPix``, bilinear) and resized. The same picture as ``warpAffine`` with
    ``[[s, 0, cx - s*w/2], [0, s, cy - s*h/2]]`` to within a grey level on average, at a quarter (pans) to
    two thirds (zooms) of its cost."""
    if abs(s - 1.0) < 1e-9:
        return _shifted(cv, cx - width / 2, cy - height / 2, width, height)
    pw, ph = max(2, int(round(s * width))), max(2, int(round(s * height)))
    # getRectSubPix's patch pixel u samples the canvas at u + centre - (pw - 1) / 2; resize's output pixel x
    # samples the patch at (x + 0.5) * pw / width - 0.5; this centre makes x land on s * x + cx - s * width / 2
    patch = cv2.getRectSubPix(cv, (pw, ph), (cx - 0.5 * pw / width, cy - 0.5 * ph / height))
    if (pw, ph) == (width, height):
        return patch
    return cv2.resize(patch, (width, height), interpolation=cv2.INTER_LINEAR)


def camera_source(cv: np.ndarray, width: int, height: int, move: str) -> post.SlotSource:
    """Frame k of n: the crop window of ``move`` at eased time k/(n-1), brought to (width, height)."""
    (s0, x0, y0), (s1, x1, y1) = MOVES.get(move, MOVES["static"])
    ch, cw = cv.shape[:2]
    free_x, free_y = (cw - width) / 2, (ch - height) / 2
    still: list[np.ndarray] = []

    def src(k: int, n: int) -> np.ndarray:
        if move == "static" and still:
            return still[0]
        t = _ease(k / (n - 1), move) if n > 1 else 0.0
        s = s0 + (s1 - s0) * t
        cx = cw / 2 + (x0 + (x1 - x0) * t) * free_x
        cy = ch / 2 + (y0 + (y1 - y0) * t) * free_y
        # keep the window on the canvas
        hw, hh = s * width / 2, s * height / 2
        cx = min(max(cx, hw), cw - hw)
        cy = min(max(cy, hh), ch - hh)
        fr = _window(cv, s, cx, cy, width, height)
        if move == "static":
            still.append(fr)
        return fr

    return src


class CompositorProducer(Producer):
    """``compositor``: the offline default (no model, no GPU, no key)."""

    kind = "compositor"

    def _render(self, req: ProducerRequest, out_path: Path, width: int, height: int) -> dict[str, Any]:
        sb = req.storyboard
        palette = self.palette(req)
        spans = post.slot_spans(sb, req.fps)
        sources = []
        for sp in spans:
            imgs = [self.load(req, p, f"slot {sp.slot.index} image") for p in self.slot_images(req, sp.slot)]
            sources.append(camera_source(canvas(imgs, width, height, palette, sp.index), width, height,
                                         sp.slot.camera))
        self.finish(req, out_path, sources, width, height, headlines=True)
        return {"cost_usd": 0.0, "settings": {"palette": palette, "takes_first_frame": False,
                                              "takes_last_frame": False, "uses_collage": False}}
