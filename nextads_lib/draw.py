"""Text and shape drawing shared by the sample generator, the product art, the compositor and the figures.

Fonts come from matplotlib's bundled DejaVu family, so rendering is identical on every machine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont


@lru_cache(maxsize=64)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    import matplotlib  # noqa: PLC0415

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name), int(size))


def hex_to_rgb(h: str) -> tuple[int, int, int]:
    h = h.lstrip("#")
    return (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))


def wrap(text: str, fnt: ImageFont.FreeTypeFont, max_width: int) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels."""
    lines: list[str] = []
    for para in text.split("\n"):
        cur = ""
        for word in para.split():
            cand = f"{cur} {word}".strip()
            if fnt.getlength(cand) <= max_width or not cur:
                cur = cand
            else:
                lines.append(cur)
                cur = word
        lines.append(cur)
    return [ln for ln in lines if ln] or [""]


def text_box(
    img: Image.Image,
    text: str,
    xy: tuple[int, int],
    size: int,
    max_width: int,
    fill: tuple[int, int, int] = (255, 255, 255),
    box: tuple[int, int, int, int] | None = (0, 0, 0, 160),
    bold: bool = True,
    anchor: str = "center",
    pad: int = 8,
) -> tuple[int, int, int, int]:
    """Draw wrapped ``text`` with an optional translucent box; ``xy`` is the top centre (anchor='center')
    or top left (anchor='left'). Returns the box drawn (x0, y0, x1, y1)."""
    fnt = font(size, bold)
    lines = wrap(text, fnt, max_width)
    lh = int(size * 1.25)
    widths = [int(fnt.getlength(ln)) for ln in lines]
    w, h = max(widths) + 2 * pad, lh * len(lines) + 2 * pad
    x0 = xy[0] - w // 2 if anchor == "center" else xy[0]
    y0 = xy[1]
    rect = (x0, y0, x0 + w, y0 + h)
    if box is not None:
        overlay = Image.new("RGBA", img.size, (0, 0, 0, 0))
        ImageDraw.Draw(overlay).rounded_rectangle(rect, radius=max(4, size // 4), fill=box)
        img.paste(Image.alpha_composite(img.convert("RGBA"), overlay).convert(img.mode))
    d = ImageDraw.Draw(img)
    for i, (ln, lw) in enumerate(zip(lines, widths)):
        lx = x0 + (w - lw) // 2 if anchor == "center" else x0 + pad
        d.text((lx, y0 + pad + i * lh), ln, font=fnt, fill=fill)
    return rect


def gradient(size: tuple[int, int], top: str, bottom: str) -> np.ndarray:
    """A vertical gradient ``(H, W, 3)`` uint8 between two hex colours."""
    w, h = size
    a, b = np.array(hex_to_rgb(top), np.float32), np.array(hex_to_rgb(bottom), np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    return np.broadcast_to(a * (1 - t) + b * t, (h, w, 3)).astype(np.uint8).copy()
