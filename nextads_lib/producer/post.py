"""The post step every Producer's output goes through, in two forms (the protocol switch ``post_production``).

A Producer supplies one *source* per storyboard slot (a function giving the slot's k-th of n base frames at
the output size: the compositor's camera move over a grounding image, or a generated clip retimed to the
slot). ``finish`` lays them on the storyboard's exact timing (frame count = round(duration * fps), slot k
starting at frame round(start_k * fps)) and burns the persistent "AI Created" label into every frame. Then:

- **post-production** (``post_production=True``, the ``extended`` protocol): slot dissolves, the on-screen text,
  the narration subtitles, the call-to-action end card in the last slot, and the narration (Piper voice) over a
  quiet music bed muxed as AAC: the Producer's clips rewritten into an ad;
- **the paper's creative** (``post_production=False``): nothing else is drawn or mixed. The on-screen text is
  drawn only when the Producer asks (``headlines``: the compositor, whose picture it is), with its slot
  dissolves; the audio is whatever the Producer passes (a generated clip's own sound), else there is no audio
  track.

Independently, a given ``first_frame`` / ``last_frame`` is pinned and blended into the first / last frames
(the PCI seam blend): the Producer passes them only under the ``frame_overwrite`` switch.

Overlays are drawn once per slot with PIL into premultiplied layers cropped to their bounding boxes, so the
per-frame cost is a few integer multiply-adds over the covered pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from .. import draw
from ..config import AI_LABEL, resolve
from ..media import VideoInfo, load_image, write_video
from ..schemas import Slot, Storyboard
from ..seed import rng
from .base import ProducerError

#: A slot's base frames: ``source(k, n)`` -> frame k of n, (H, W, 3) uint8 at the output size.
SlotSource = Callable[[int, int], np.ndarray]

AUDIO_RATE = 22050
#: dissolve length into a slot, by pacing (seconds); the first slot never dissolves
TRANSITION_S = {"fast": 0.0, "medium": 0.12, "slow": 0.3}
#: how long the creative blends out of ``first_frame`` / into ``last_frame`` (seconds)
BOUNDARY_BLEND_S = 0.4
LABEL_ALPHA = 0.72  # the label's dark box opacity
#: H.264 settings of a finished creative: x264's ultrafast preset with B-frames and CABAC put back. At 360x640
#: it takes ~0.4 s of CPU per 12 s creative against ~0.9 s for veryfast (crf 23), for ~2x the bytes at the
#: same PSNR (~45.5 dB against the render); encoding was a fifth of a compositor render's CPU.
ENCODE_CRF = 26
ENCODE_PRESET = "ultrafast"
ENCODE_X264_PARAMS = "bframes=2:b-adapt=0:cabac=1"
LABEL_BOX_RGB = (0, 0, 0)


# ------------------------------------------------------------------------------------------- timing
@dataclass(frozen=True)
class SlotSpan:
    index: int
    start: int  # first frame
    stop: int  # one past the last frame
    slot: Slot

    @property
    def n(self) -> int:
        return self.stop - self.start


def total_frames(storyboard: Storyboard, fps: float) -> int:
    return int(round(storyboard.duration_s * fps))


def slot_spans(storyboard: Storyboard, fps: float) -> list[SlotSpan]:
    """Frame ranges of the slots: contiguous, the first at 0, the last ending at round(duration * fps)."""
    n_total = total_frames(storyboard, fps)
    slots = sorted(storyboard.slots, key=lambda s: s.start_s)
    bounds = [0] + [int(round(s.start_s * fps)) for s in slots[1:]] + [n_total]
    spans = []
    for i, s in enumerate(slots):
        a, b = bounds[i], bounds[i + 1]
        if b <= a:
            raise ProducerError(f"slot {s.index}", f"starts at {s.start_s}s and gets no frame at {fps} fps "
                                f"(storyboard duration {storyboard.duration_s}s)")
        spans.append(SlotSpan(i, a, b, s))
    return spans


# --------------------------------------------------------------------------------------------- sizes
NATIVE_COMPOSITOR = {"9:16": (720, 1280), "16:9": (1280, 720), "1:1": (720, 720)}


def output_size(aspect_ratio: str, width: int | None, height: int | None,
                native: dict[str, tuple[int, int]] = NATIVE_COMPOSITOR) -> tuple[int, int]:
    """(width, height), even. Missing sides follow the aspect ratio; both missing = the backend's native size."""
    aw, ah = (int(x) for x in aspect_ratio.split(":"))
    if width is None and height is None:
        width, height = native[aspect_ratio]
    elif width is None:
        width = round(height * aw / ah)
    elif height is None:
        height = round(width * ah / aw)
    w, h = int(width) // 2 * 2, int(height) // 2 * 2
    if w < 16 or h < 16:
        raise ProducerError("request", f"output size {width}x{height} is too small (min 16x16)")
    return w, h


def _as_array(image: Image.Image | np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    if isinstance(image, np.ndarray):
        return image
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    return np.asarray(load_image(resolve(image)))


def fit_image(image: Image.Image | np.ndarray | str | os.PathLike[str], width: int, height: int) -> np.ndarray:
    """Resize to cover (width, height) and centre-crop: how first/last frames and clips meet the output."""
    a = _as_array(image)
    h0, w0 = a.shape[:2]
    s = max(width / w0, height / h0)
    nw, nh = max(width, round(w0 * s)), max(height, round(h0 * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    r = cv2.resize(np.ascontiguousarray(a), (nw, nh), interpolation=interp) if (nw, nh) != (w0, h0) else a
    x0, y0 = (nw - width) // 2, (nh - height) // 2
    return np.ascontiguousarray(r[y0 : y0 + height, x0 : x0 + width])


# -------------------------------------------------------------------------------------------- layers
@dataclass
class Layer:
    """A premultiplied RGBA overlay cropped to its box: out = frame * (1 - a) + c over rows y0.., cols x0.."""

    x0: int
    y0: int
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    color: np.ndarray  # (h, w, 3) float32, premultiplied, 0..255

    def __post_init__(self) -> None:
        self._inv = np.round((1.0 - self.alpha) * 256).astype(np.uint16)[..., None]
        self._pre = np.round(self.color * 256).astype(np.uint16)

    @property
    def box(self) -> tuple[int, int, int, int]:
        h, w = self.alpha.shape
        return (self.x0, self.y0, self.x0 + w, self.y0 + h)

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """Composite onto ``frame`` in place (and return it)."""
        x0, y0, x1, y1 = self.box
        reg = frame[y0:y1, x0:x1]
        acc = reg.astype(np.uint16)
        acc *= self._inv
        acc += self._pre
        acc >>= 8
        reg[...] = acc
        return frame

    def solid(self, threshold: float = 0.99) -> tuple[np.ndarray, np.ndarray]:
        """Mask of the (nearly) opaque pixels and their colour: what any frame carrying this layer shows there."""
        m = self.alpha >= threshold
        return m, self.color[m] / np.maximum(self.alpha[m], 1e-6)[:, None]

    def match(self, frame: np.ndarray, threshold: float = 0.99) -> float:
        """Mean absolute difference over the layer's opaque pixels between ``frame`` and the layer's colour
        (small where the layer is burned in)."""
        x0, y0, x1, y1 = self.box
        m, col = self.solid(threshold)
        if not m.any():
            return float("nan")
        return float(np.abs(frame[y0:y1, x0:x1][m].astype(np.float32) - col).mean())


def _layer_from(alpha_img: np.ndarray, color: np.ndarray, origin: tuple[int, int] = (0, 0)) -> Layer | None:
    """Crop an alpha/premultiplied pair, placed at ``origin`` (x, y) in the frame, to its bounding box."""
    ys, xs = np.nonzero(alpha_img > 0)
    if ys.size == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    return Layer(int(x0) + origin[0], int(y0) + origin[1], alpha_img[y0:y1, x0:x1].copy(),
                 color[y0:y1, x0:x1].copy())


def _text_card(size: tuple[int, int], lines: list[str], font_px: int, top: int, *, box_rgb: tuple[int, int, int],
               box_alpha: float, text_rgb: tuple[int, int, int] = (255, 255, 255), pad: int | None = None,
               left: int | None = None, bold: bool = True, radius: int | None = None) -> Layer | None:
    """Text lines (white) on a rounded box, drawn as exact alpha: a = m + b (1 - m)."""
    w, h = size
    if not lines or not any(ln.strip() for ln in lines):
        return None
    fnt = draw.font(font_px, bold)
    pad = max(2, font_px // 3) if pad is None else pad
    lh = int(round(font_px * 1.22))
    widths = [int(np.ceil(fnt.getlength(ln))) for ln in lines]
    bw, bh = max(widths) + 2 * pad, lh * len(lines) + 2 * pad
    x0 = (w - bw) // 2 if left is None else left
    # drawn in the box's own small canvas, then placed: the same pixels as drawing on the full frame
    box_img = Image.new("L", (bw, bh), 0)
    ImageDraw.Draw(box_img).rounded_rectangle((0, 0, bw - 1, bh - 1),
                                              radius=max(2, font_px // 3) if radius is None else radius,
                                              fill=int(round(255 * box_alpha)))
    txt_img = Image.new("L", (bw, bh), 0)
    d = ImageDraw.Draw(txt_img)
    for i, (ln, lw) in enumerate(zip(lines, widths)):
        d.text(((bw - lw) // 2, pad + i * lh), ln, font=fnt, fill=255)
    b = np.asarray(box_img, np.float32) / 255.0
    m = np.asarray(txt_img, np.float32) / 255.0
    a = m + b * (1.0 - m)
    c = m[..., None] * np.array(text_rgb, np.float32) + (b * (1.0 - m))[..., None] * np.array(box_rgb, np.float32)
    # clip to the frame
    cx0, cy0 = max(0, -x0), max(0, -top)
    cx1, cy1 = min(bw, w - x0), min(bh, h - top)
    if cx1 <= cx0 or cy1 <= cy0:
        return None
    return _layer_from(a[cy0:cy1, cx0:cx1], c[cy0:cy1, cx0:cx1], (x0 + cx0, top + cy0))


def _base(w: int, h: int) -> int:
    return min(w, h)


#: the label's letters (their cap height) are at least this share of the frame's shorter side (GB 45438-2025's
#: visible label for video: text height >= 5% of the shorter side); the font's cap height is ~0.73 em
LABEL_LETTER_SHARE = 0.05
LABEL_FONT_SHARE = 0.072  # font size / shorter side: cap height 0.0526 of the shorter side, a margin for H.264


def _label_font_px(w: int, h: int, share: float = LABEL_FONT_SHARE) -> int:
    return max(9, int(np.ceil(share * _base(w, h))))


@lru_cache(maxsize=64)
def _label_card(width: int, height: int, text: str, share: float) -> Layer:
    px = _label_font_px(width, height, share)
    margin = max(2, int(round(0.025 * _base(width, height))))
    layer = _text_card((width, height), [text], px, margin, box_rgb=LABEL_BOX_RGB, box_alpha=LABEL_ALPHA,
                       left=margin, pad=max(2, px // 3))
    assert layer is not None
    return layer


def label_layer(width: int, height: int) -> Layer:
    """The "AI Created" label: white bold text on a dark translucent box in the top-left corner, its letters
    :data:`LABEL_LETTER_SHARE` of the frame's shorter side or taller. One style for every Producer, so a verifier
    can find it (``label_present``) and read it (``nextads_lib.compliance.ocr.read_line`` on ``label_box``)."""
    return _label_card(int(width), int(height), AI_LABEL, LABEL_FONT_SHARE)


def label_box(width: int, height: int) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the "AI Created" label the post step burns into every frame from the first."""
    return label_layer(int(width), int(height)).box


def burn_label(frame: np.ndarray) -> np.ndarray:
    """Burn the label into a copy of ``frame``."""
    out = np.array(frame, np.uint8, copy=True)
    return label_layer(out.shape[1], out.shape[0]).apply(out)


def label_present(frame: np.ndarray, tol: float = 40.0) -> bool:
    """Is the label in ``frame``? Its letters (opaque white) must read bright and the box around them dark
    (the box lets at most 28% of the picture through), both within ``tol`` grey levels after compression."""
    h, w = frame.shape[:2]
    lay = label_layer(w, h)
    x0, y0, x1, y1 = lay.box
    reg = frame[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
    text = lay.alpha >= 0.99
    # box pixels well away from any letter (letters blur into neighbours after H.264)
    near = cv2.dilate((lay.alpha > LABEL_ALPHA + 0.02).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    box = (lay.alpha > LABEL_ALPHA - 0.02) & ~near
    if not text.any() or not box.any():
        return False
    bright = float(np.median(reg[text]))
    dark = float(np.median(reg[box]))
    return bright >= 255 - tol - 40 and dark <= 255 * (1 - LABEL_ALPHA) + tol and bright - dark >= 100


def label_letter_height(frame: np.ndarray) -> int:
    """Height in pixels of the bright letters inside the label's box of ``frame`` (0 when none): rows whose
    brightest pixel reads above 160 grey levels (the box lets at most 28% of the picture through)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = label_box(w, h)
    reg = frame[y0:y1, x0:x1].astype(np.float32).mean(axis=2)
    rows = np.nonzero((reg > 160).sum(axis=1) >= 2)[0]
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


def _wrap(text: str, px: int, max_w: int, bold: bool, max_lines: int) -> list[str]:
    text = " ".join(text.split())
    if not text:
        return []
    lines = draw.wrap(text, draw.font(px, bold), max_w)
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1].rstrip(".,;:") + "…"
    return lines


def cta_layer(text: str, width: int, height: int, accent: str = "#E63946") -> Layer | None:
    """The call-to-action end card of the last slot: white bold text on an opaque accent-coloured card."""
    px = max(10, int(round(0.075 * _base(width, height))))
    lines = _wrap(text, px, int(0.8 * width), True, 3)
    if not lines:
        return None
    lh = int(round(px * 1.22))
    card_h = lh * len(lines) + 2 * max(2, px // 2)
    top = int(0.56 * height) - card_h // 2
    return _text_card((width, height), lines, px, top, box_rgb=draw.hex_to_rgb(accent), box_alpha=1.0,
                      pad=max(2, px // 2), radius=max(3, px // 2))


def headline_layer(text: str, width: int, height: int) -> Layer | None:
    """A slot's on-screen text, in the upper part of the frame below the label."""
    px = max(9, int(round(0.062 * _base(width, height))))
    lines = _wrap(text, px, int(0.86 * width), True, 3)
    top = max(label_box(width, height)[3] + 4, int(0.13 * height))
    return _text_card((width, height), lines, px, top, box_rgb=(0, 0, 0), box_alpha=0.45)


def subtitle_layer(text: str, width: int, height: int) -> Layer | None:
    """The narration as a subtitle near the bottom."""
    px = max(8, int(round(0.042 * _base(width, height))))
    lines = _wrap(text, px, int(0.88 * width), False, 3)
    if not lines:
        return None
    lh = int(round(px * 1.22))
    bh = lh * len(lines) + 2 * max(2, px // 3)
    top = height - int(0.07 * height) - bh
    return _text_card((width, height), lines, px, top, box_rgb=(0, 0, 0), box_alpha=0.6, bold=False)


def slot_layers(storyboard: Storyboard, span: SlotSpan, n_slots: int, width: int, height: int,
                accent: str, subtitles: bool = True, *, post_production: bool = True,
                headlines: bool = True) -> list[Layer]:
    """Everything burned into one slot's frames (the label comes on top, separately): under
    ``post_production`` the on-screen text, the subtitle and (last slot) the CTA card; without it only the
    on-screen text, and only when ``headlines``."""
    out = [headline_layer(span.slot.on_screen_text, width, height) if headlines or post_production else None]
    if not post_production:
        return [x for x in out if x is not None]
    if subtitles:
        out.append(subtitle_layer(span.slot.narration, width, height))
    if span.index == n_slots - 1:
        out.append(cta_layer(storyboard.cta, width, height, accent))
    return [x for x in out if x is not None]


# --------------------------------------------------------------------------------------------- audio
def music_bed(n_samples: int, seed: int, rate: int = AUDIO_RATE, level: float = 0.05) -> np.ndarray:
    """A quiet procedural pad: a four-chord progression of soft sine triads, one chord per two seconds,
    with gentle attacks; key chosen by ``seed``. A fresh array (the twelve keys' pads are memoised)."""
    if n_samples <= 0:
        return np.zeros(0, np.float32)
    key = int(rng(seed, "producer", "music").integers(0, 12))
    return _pad(int(n_samples), key, int(rate), float(level)).copy()


@lru_cache(maxsize=24)
def _pad(n_samples: int, key: int, rate: int, level: float) -> np.ndarray:
    root = 110.0 * 2 ** (key / 12)
    prog = [(0, 4, 7), (9, 12, 16), (5, 9, 12), (7, 11, 14)]
    t = np.arange(n_samples, dtype=np.float64) / rate
    bar = 2.0
    idx = (t // bar).astype(int) % len(prog)
    phase_t = t % bar
    env = np.minimum(phase_t / 0.35, 1.0) * np.minimum((bar - phase_t) / 0.35, 1.0)
    out = np.zeros(n_samples, np.float64)
    for ci, chord in enumerate(prog):
        sel = idx == ci
        if not sel.any():
            continue
        tt = t[sel]
        for semi in chord:
            f = root * 2 ** (semi / 12)
            out[sel] += np.sin(2 * np.pi * f * tt) + 0.3 * np.sin(4 * np.pi * f * tt)
    out *= env
    out /= max(np.max(np.abs(out)), 1e-9)
    pad = (out * level).astype(np.float32)
    pad.flags.writeable = False
    return pad


def soundtrack(storyboard: Storyboard, fps: float, tts, seed: int, music: bool = True,
               rate: int = AUDIO_RATE) -> np.ndarray:
    """Narration (each slot's line from 0.1 s into the slot, time-fitted to end before the slot does) over
    the music bed, at ``rate``; exactly as long as the video."""
    spans = slot_spans(storyboard, fps)
    n_total = total_frames(storyboard, fps)
    n = int(round(n_total / fps * rate))
    audio = music_bed(n, seed, rate) if music else np.zeros(n, np.float32)
    if tts is None:
        return audio
    if int(tts.sample_rate) != rate:
        raise ProducerError("soundtrack", f"voice rate {tts.sample_rate} != mix rate {rate}")
    for sp in spans:
        line = sp.slot.narration.strip()
        if not line:
            continue
        a0 = int(round((sp.start / fps + 0.1) * rate))
        a1 = int(round((sp.stop / fps - 0.05) * rate))
        if a1 - a0 < int(0.2 * rate):
            continue
        speech = tts.fit(line, (a1 - a0) / rate)
        seg = audio[a0 : a0 + speech.size]
        seg += speech[: seg.size] * 0.9
    return np.clip(audio, -1.0, 1.0)


# -------------------------------------------------------------------------------------------- finish
def palette_accent(palette: Sequence[str]) -> str:
    """The most saturated palette colour that white text reads on (the CTA card)."""
    best, score = "#E63946", -1.0
    for hx in palette:
        try:
            r, g, b = draw.hex_to_rgb(hx)
        except (ValueError, IndexError):
            continue
        mx, mn = max(r, g, b), min(r, g, b)
        lum = 0.299 * r + 0.587 * g + 0.114 * b
        sat = (mx - mn) / max(mx, 1)
        s = sat - (0.6 if lum > 170 else 0.0)
        if s > score:
            best, score = hx, s
    if score < 0:
        return best
    r, g, b = draw.hex_to_rgb(best)
    lum = 0.299 * r + 0.587 * g + 0.114 * b
    if lum > 150:  # darken a light colour so the white CTA text stays readable
        k = 150 / lum
        best = "#{:02X}{:02X}{:02X}".format(int(r * k), int(g * k), int(b * k))
    return best


def frames(storyboard: Storyboard, sources: Sequence[SlotSource], width: int, height: int, fps: float, *,
           first_frame: np.ndarray | None = None, last_frame: np.ndarray | None = None,
           accent: str = "#E63946", subtitles: bool = True,
           transitions: dict[str, float] = TRANSITION_S, post_production: bool = True,
           headlines: bool = True) -> Iterator[np.ndarray]:
    """The finished frames, in order (a generator: nothing is held beyond the previous base frame)."""
    spans = slot_spans(storyboard, fps)
    if len(sources) != len(spans):
        raise ProducerError("post", f"{len(sources)} sources for {len(spans)} slots")
    n_total = spans[-1].stop
    label = label_layer(width, height)
    ff = fit_image(first_frame, width, height).astype(np.float32) if first_frame is not None else None
    lf = fit_image(last_frame, width, height).astype(np.float32) if last_frame is not None else None
    nb = max(1, int(round(BOUNDARY_BLEND_S * fps)))
    prev_base: np.ndarray | None = None
    for sp, src in zip(spans, sources):
        layers = slot_layers(storyboard, sp, len(spans), width, height, accent, subtitles,
                             post_production=post_production, headlines=headlines)
        n_tr = 0 if sp.index == 0 else min(int(round(transitions.get(sp.slot.pacing, 0.0) * fps)), sp.n // 3)
        last_base = None
        for k in range(sp.n):
            base = src(k, sp.n)
            if base.shape != (height, width, 3) or base.dtype != np.uint8:
                raise ProducerError(f"slot {sp.slot.index}", f"source frame {k} is {base.shape} {base.dtype}, "
                                    f"expected ({height}, {width}, 3) uint8")
            if k == sp.n - 1:
                last_base = base
            if k < n_tr and prev_base is not None:
                wgt = (k + 1) / (n_tr + 1)
                fr = cv2.addWeighted(prev_base, 1.0 - wgt, base, wgt, 0.0)
            else:
                fr = base.copy()  # sources may hand out memoised frames
            for lay in layers:
                lay.apply(fr)
            i = sp.start + k
            if ff is not None and i < nb:  # blend out of the first frame (frame 0 is exactly it)
                wgt = 1.0 - i / nb
                fr = np.clip(ff * wgt + fr.astype(np.float32) * (1 - wgt) + 0.5, 0, 255).astype(np.uint8)
            if lf is not None and i >= n_total - nb:  # blend into the last frame (the final frame is exactly it)
                wgt = (i - (n_total - nb) + 1) / nb
                fr = np.clip(lf * wgt + fr.astype(np.float32) * (1 - wgt) + 0.5, 0, 255).astype(np.uint8)
            if ff is not None and i == 0:
                fr = np.clip(ff + 0.5, 0, 255).astype(np.uint8)
            yield label.apply(fr)
        prev_base = last_base


def finish(out_path: str | os.PathLike[str], storyboard: Storyboard, sources: Sequence[SlotSource], width: int,
           height: int, fps: float, *, audio: np.ndarray | None, first_frame=None, last_frame=None,
           accent: str = "#E63946", subtitles: bool = True, crf: int = ENCODE_CRF, preset: str = ENCODE_PRESET,
           x264_params: str = ENCODE_X264_PARAMS, audio_rate: int = AUDIO_RATE, post_production: bool = True,
           headlines: bool = True, transitions: dict[str, float] = TRANSITION_S) -> VideoInfo:
    """Write the finished creative (H.264, + AAC when ``audio`` is given; atomically) and return its probe.
    ``post_production=False``: no subtitles, no CTA card, on-screen text only with ``headlines`` (see the
    module docstring)."""
    ff = _as_array(first_frame) if first_frame is not None else None
    lf = _as_array(last_frame) if last_frame is not None else None
    it = frames(storyboard, sources, width, height, fps, first_frame=ff, last_frame=lf, accent=accent,
                subtitles=subtitles, transitions=transitions, post_production=post_production, headlines=headlines)
    return write_video(Path(out_path), it, fps, audio=audio, audio_rate=int(audio_rate), crf=crf, preset=preset,
                       x264_params=x264_params)


# ------------------------------------------------------------------------------------ clip sources
def clip_source(clip: np.ndarray | Sequence[np.ndarray], width: int, height: int) -> SlotSource:
    """A slot source from a generated clip (T, H, W, 3): time-stretched to the slot's frame count (nearest
    frame), resized to cover the output size and centre-cropped. Resized frames are memoised."""
    seq = list(clip) if not isinstance(clip, np.ndarray) else [clip[i] for i in range(clip.shape[0])]
    if not seq:
        raise ProducerError("post", "an empty clip")
    memo: dict[int, np.ndarray] = {}

    def src(k: int, n: int) -> np.ndarray:
        j = min(int(k * len(seq) / n), len(seq) - 1) if n > 1 else 0
        if j not in memo:
            memo[j] = fit_image(np.asarray(seq[j], np.uint8), width, height)
        return memo[j]

    return src


def split_clip(clip: np.ndarray, spans: Sequence[SlotSpan]) -> list[np.ndarray]:
    """One clip for the whole creative cut into per-slot pieces in proportion to the slots' frame ranges."""
    T = clip.shape[0]
    n_total = spans[-1].stop
    out = []
    for sp in spans:
        a = min(int(sp.start * T / n_total), T - 1)
        b = max(a + 1, int(round(sp.stop * T / n_total)))
        out.append(clip[a:b])
    return out
