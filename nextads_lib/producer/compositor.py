"""The offline Producer: each storyboard slot is its grounding image(s) on a palette background, filmed by
the slot's camera move (a smooth crop window over a slightly larger canvas, one ``cv2.warpAffine`` per
frame). Text, narration, CTA and label come from the shared post step.
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


def camera_source(cv: np.ndarray, width: int, height: int, move: str) -> post.SlotSource:
    """Frame k of n: the crop window of ``move`` at eased time k/(n-1), warped to (width, height)."""
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
        m = np.array([[s, 0.0, cx - hw], [0.0, s, cy - hh]], np.float64)
        fr = cv2.warpAffine(cv, m, (width, height), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_REPLICATE)
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
        self.finish(req, out_path, sources, width, height)
        return {"cost_usd": 0.0, "settings": {"palette": palette}}
