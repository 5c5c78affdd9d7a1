"""Procedural product art: the logo and product images of the shipped product library, drawn with PIL.

Every asset is drawn from the product's own spec (brand, name, palette, facts) and a silhouette chosen by
the product (a phone, a shoe, a can, an app screen ...), so the art is recognisable, carries the brand
colours, and is redrawn byte for byte identically on every run. Shapes are drawn at twice the output size
and downsampled, which anti-aliases edges.

Palette convention (``product.yaml`` ``palette``): ``[primary, accent, light, ...]``.

Redraw the committed assets of the shipped library::

    python -m nextads_lib.product_art                    # every product under nextads_lib/product_library
    python -m nextads_lib.product_art --only brisa-soda  # one product
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml
from PIL import Image, ImageDraw, ImageFilter

from . import draw as D
from .config import DEFAULT_PRODUCTS_DIR, DEFAULT_SEED
from .seed import rng

SIZE = 512  #: output side in pixels (square PNGs)
SS = 2  #: supersampling factor
W = SIZE * SS  #: drawing canvas side

RGB = tuple[int, int, int]


# ------------------------------------------------------------------------------------------ colours
def _rgb(h: str) -> RGB:
    return D.hex_to_rgb(h)


def mix(a: RGB, b: RGB, t: float) -> RGB:
    """Linear blend of two colours (``t=0`` gives ``a``)."""
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b))  # type: ignore[return-value]


def _lum(c: RGB) -> float:
    return 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]


WHITE: RGB = (255, 255, 255)
BLACK: RGB = (0, 0, 0)


@dataclass(frozen=True)
class Colors:
    primary: RGB
    accent: RGB
    light: RGB

    @classmethod
    def from_palette(cls, palette: list[str]) -> "Colors":
        pal = list(palette) + ["#333333", "#FF8800", "#F4F4F4"][len(palette):]
        return cls(_rgb(pal[0]), _rgb(pal[1]), _rgb(pal[2]))

    @property
    def dark(self) -> RGB:
        return mix(self.primary, BLACK, 0.35)

    def on(self, c: RGB) -> RGB:
        """A readable text colour on ``c``."""
        return WHITE if _lum(c) < 150 else mix(self.primary, BLACK, 0.5)


@dataclass(frozen=True)
class Spec:
    """What the drawing needs from a product spec."""

    id: str
    name: str
    brand: str
    subcategory: str
    palette: list[str]
    facts: dict[str, str]
    slogan: str = ""

    @property
    def colors(self) -> Colors:
        return Colors.from_palette(self.palette)

    @classmethod
    def from_mapping(cls, data: dict) -> "Spec":
        return cls(id=str(data["id"]), name=str(data["name"]), brand=str(data["brand"]),
                   subcategory=str(data.get("subcategory", "")), palette=[str(p) for p in data.get("palette", [])],
                   facts={str(k): str(v) for k, v in (data.get("facts") or {}).items()},
                   slogan=str(data.get("slogan", "")))


# ------------------------------------------------------------------------------------------- canvas
def _canvas(top: RGB, bottom: RGB) -> Image.Image:
    g = D.gradient((W, W), "#%02X%02X%02X" % top, "#%02X%02X%02X" % bottom)
    return Image.fromarray(g).convert("RGB")


def _finish(img: Image.Image) -> Image.Image:
    return img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)


def _shadow(img: Image.Image, box: tuple[float, float, float, float], strength: int = 90) -> None:
    """A soft elliptical floor shadow."""
    layer = Image.new("L", img.size, 0)
    ImageDraw.Draw(layer).ellipse(box, fill=strength)
    layer = layer.filter(ImageFilter.GaussianBlur(18))
    img.paste(Image.new("RGB", img.size, (0, 0, 0)), (0, 0), layer)


def _rr(d: ImageDraw.ImageDraw, box, r, fill=None, outline=None, width=1) -> None:
    x0, y0, x1, y1 = box
    r = max(0, min(r, (x1 - x0) / 2, (y1 - y0) / 2))
    d.rounded_rectangle((x0, y0, x1, y1), radius=r, fill=fill, outline=outline, width=int(width))


def _text_center(d: ImageDraw.ImageDraw, xy, text: str, size: int, fill: RGB, bold: bool = True,
                 max_width: float | None = None) -> None:
    """Draw one line centred on ``xy``, shrinking the font until it fits ``max_width``."""
    size = int(size)
    fnt = D.font(size, bold)
    while max_width is not None and fnt.getlength(text) > max_width and size > 10:
        size -= 2
        fnt = D.font(size, bold)
    d.text(xy, text, font=fnt, fill=fill, anchor="mm")


def _gradient_fill(img: Image.Image, box, top: RGB, bottom: RGB, radius: float = 0) -> None:
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = max(1, x1 - x0), max(1, y1 - y0)
    g = Image.fromarray(D.gradient((w, h), "#%02X%02X%02X" % top, "#%02X%02X%02X" % bottom))
    mask = Image.new("L", (w, h), 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, w - 1, h - 1), radius=int(radius), fill=255)
    img.paste(g, (x0, y0), mask)


# ------------------------------------------------------------------------------------ phone screens
def _screen_wallpaper(img, d, box, c: Colors, spec: Spec) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    for i in range(4):
        yy = y0 + h * (0.45 + 0.12 * i)
        d.ellipse((x0 - w * 0.4, yy, x1 + w * 0.2 - i * 20, yy + h * 0.7), outline=mix(c.accent, WHITE, 0.2 + 0.15 * i), width=8)
    _text_center(d, ((x0 + x1) / 2, y0 + h * 0.2), "10:09", int(w * 0.22), WHITE)


def _screen_map(img, d, box, c: Colors, spec: Spec) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d.rectangle(box, fill=(232, 234, 237))
    d.rectangle((x0 + w * 0.55, y0 + h * 0.12, x1, y0 + h * 0.32), fill=(200, 230, 201))  # park
    for i in range(1, 6):
        d.line((x0, y0 + h * i / 6, x1, y0 + h * i / 6 + 30), fill=WHITE, width=14)
    for i in range(1, 4):
        d.line((x0 + w * i / 4, y0, x0 + w * i / 4 - 20, y1), fill=WHITE, width=14)
    route = [(x0 + w * 0.2, y0 + h * 0.72), (x0 + w * 0.25, y0 + h * 0.5), (x0 + w * 0.5, y0 + h * 0.5 + 4),
             (x0 + w * 0.52, y0 + h * 0.3), (x0 + w * 0.78, y0 + h * 0.2)]
    d.line(route, fill=c.accent, width=16, joint="curve")
    for (px, py), col in ((route[0], c.primary), (route[-1], c.accent)):
        d.ellipse((px - 22, py - 22, px + 22, py + 22), fill=col, outline=WHITE, width=6)
    card = (x0 + 16, y0 + h * 0.78, x1 - 16, y1 - 16)
    _rr(d, card, 28, fill=WHITE)
    _text_center(d, ((x0 + x1) / 2, card[1] + (card[3] - card[1]) * 0.35), f"{spec.brand}", int(w * 0.1), c.primary)
    _rr(d, (x0 + w * 0.2, card[3] - 50, x1 - w * 0.2, card[3] - 14), 18, fill=c.accent)


def _screen_menu(img, d, box, c: Colors, spec: Spec) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d.rectangle(box, fill=c.light)
    d.rectangle((x0, y0, x1, y0 + h * 0.18), fill=c.primary)
    _text_center(d, ((x0 + x1) / 2, y0 + h * 0.1), spec.brand, int(w * 0.13), c.on(c.primary), max_width=w * 0.85)
    foods = [(c.accent, (255, 209, 102)), ((239, 71, 111), (255, 255, 255)), ((6, 214, 160), (255, 209, 102))]
    for i, (a, b) in enumerate(foods):
        top = y0 + h * (0.22 + 0.25 * i)
        _rr(d, (x0 + 16, top, x1 - 16, top + h * 0.21), 24, fill=WHITE)
        cx, cy, r = x0 + 16 + h * 0.105, top + h * 0.105, h * 0.075
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=a)
        d.ellipse((cx - r * 0.5, cy - r * 0.6, cx + r * 0.3, cy + r * 0.1), fill=b)
        _rr(d, (cx + r + 20, cy - 34, x1 - 50, cy - 10), 10, fill=mix(c.primary, WHITE, 0.5))
        _rr(d, (cx + r + 20, cy + 6, x1 - 110, cy + 26), 10, fill=(210, 210, 210))


def _screen_player(img, d, box, c: Colors, spec: Spec) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    _gradient_fill(img, box, c.primary, mix(c.primary, BLACK, 0.5))
    art = (x0 + w * 0.12, y0 + h * 0.12, x1 - w * 0.12, y0 + h * 0.12 + w * 0.76)
    _gradient_fill(img, art, c.accent, mix(c.accent, c.primary, 0.6), radius=24)
    acx, acy = (art[0] + art[2]) / 2, (art[1] + art[3]) / 2
    for r in (110, 75, 40):
        d.ellipse((acx - r, acy - r, acx + r, acy + r), outline=mix(c.accent, WHITE, 0.5), width=6)
    ty = art[3] + h * 0.08
    _rr(d, (x0 + w * 0.12, ty, x1 - w * 0.3, ty + 24), 12, fill=WHITE)
    _rr(d, (x0 + w * 0.12, ty + 44, x1 - w * 0.45, ty + 62), 9, fill=mix(WHITE, c.primary, 0.5))
    py = ty + 110
    _rr(d, (x0 + w * 0.12, py, x1 - w * 0.12, py + 10), 5, fill=mix(WHITE, c.primary, 0.6))
    _rr(d, (x0 + w * 0.12, py, x0 + w * 0.55, py + 10), 5, fill=c.accent)
    cy = py + 90
    cx = (x0 + x1) / 2
    d.ellipse((cx - 52, cy - 52, cx + 52, cy + 52), fill=WHITE)
    d.polygon([(cx - 16, cy - 26), (cx - 16, cy + 26), (cx + 26, cy)], fill=c.primary)
    for s in (-1, 1):
        bx = cx + s * 140
        d.polygon([(bx - s * 20, cy - 22), (bx - s * 20, cy + 22), (bx + s * 14, cy)], fill=WHITE)
        d.rectangle((bx + s * 14 - 4, cy - 22, bx + s * 14 + 4, cy + 22), fill=WHITE)


def _screen_grid(img, d, box, c: Colors, spec: Spec) -> None:
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    d.rectangle(box, fill=mix(c.primary, BLACK, 0.3))
    _text_center(d, (x0 + w * 0.5, y0 + h * 0.06), spec.brand, int(w * 0.1), c.accent, max_width=w * 0.8)
    _gradient_fill(img, (x0 + 16, y0 + h * 0.12, x1 - 16, y0 + h * 0.38), c.accent, mix(c.accent, c.primary, 0.7), 20)
    cx, cy = (x0 + x1) / 2, y0 + h * 0.25
    d.polygon([(cx - 24, cy - 34), (cx - 24, cy + 34), (cx + 34, cy)], fill=WHITE)
    tiles = [(231, 111, 81), (42, 157, 143), (233, 196, 106), (38, 70, 83), (244, 162, 97), (138, 177, 125)]
    tw = (w - 16 * 3) / 2
    for i in range(6):
        col, row = i % 2, i // 2
        tx = x0 + 16 + col * (tw + 16)
        ty = y0 + h * 0.42 + row * h * 0.19
        _rr(d, (tx, ty, tx + tw, ty + h * 0.16), 16, fill=tiles[i])


SCREENS: dict[str, Callable] = {"wallpaper": _screen_wallpaper, "map": _screen_map, "menu": _screen_menu,
                                "player": _screen_player, "grid": _screen_grid}


# --------------------------------------------------------------------------------------- silhouettes
# Each draws one object centred on (cx, cy); k=1 fills roughly a 620 px box of the 1024 canvas.
def phone(img, c: Colors, spec: Spec, cx, cy, k, screen: str = "wallpaper", back: bool = False) -> None:
    d = ImageDraw.Draw(img)
    w, h = 300 * k, 610 * k
    box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    d.rectangle((box[2] - 2, cy - h * 0.25, box[2] + 8 * k, cy - h * 0.12), fill=c.dark)  # side button
    _rr(d, box, 52 * k, fill=c.dark)
    if back:
        _gradient_fill(img, (box[0] + 6, box[1] + 6, box[2] - 6, box[3] - 6), mix(c.accent, WHITE, 0.1), c.primary, 48 * k)
        isl = (box[0] + 28 * k, box[1] + 28 * k, box[0] + 170 * k, box[1] + 200 * k)
        _rr(d, isl, 36 * k, fill=c.dark)
        for i, yy in enumerate((isl[1] + 50 * k, isl[1] + 122 * k)):
            xx = isl[0] + 52 * k
            d.ellipse((xx - 34 * k, yy - 34 * k, xx + 34 * k, yy + 34 * k), fill=(30, 30, 36), outline=(140, 140, 150), width=int(6 * k))
            d.ellipse((xx - 12 * k, yy - 12 * k, xx + 4 * k, yy + 4 * k), fill=(90, 110, 160))
        d.ellipse((isl[2] - 44 * k, isl[1] + 40 * k, isl[2] - 20 * k, isl[1] + 64 * k), fill=(255, 240, 200))
        _text_center(d, (cx, box[3] - 90 * k), spec.brand.upper(), int(34 * k), WHITE, max_width=w * 0.8)
        return
    scr = (box[0] + 14 * k, box[1] + 14 * k, box[2] - 14 * k, box[3] - 14 * k)
    # draw the screen on its own layer, then paste it through the rounded screen mask
    inner = Image.new("RGB", img.size, WHITE)
    if screen == "wallpaper":
        _gradient_fill(inner, scr, c.accent, c.primary)
    SCREENS[screen](inner, ImageDraw.Draw(inner), scr, c, spec)
    mask = Image.new("L", img.size, 0)
    ImageDraw.Draw(mask).rounded_rectangle(scr, radius=int(40 * k), fill=255)
    img.paste(inner, (0, 0), mask)
    d = ImageDraw.Draw(img)
    d.ellipse((cx - 11 * k, scr[1] + 14 * k, cx + 11 * k, scr[1] + 36 * k), fill=(15, 15, 18))


def earbuds(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    case = (cx - 200 * k, cy - 20 * k, cx + 200 * k, cy + 250 * k)
    _rr(d, case, 110 * k, fill=mix(c.light, WHITE, 0.5), outline=mix(c.primary, WHITE, 0.6), width=4)
    d.line((case[0] + 20 * k, cy + 70 * k, case[2] - 20 * k, cy + 70 * k), fill=mix(c.primary, WHITE, 0.6), width=int(5 * k))
    d.ellipse((cx - 10 * k, cy + 150 * k, cx + 10 * k, cy + 170 * k), fill=c.accent)
    _text_center(d, (cx, cy + 205 * k), spec.brand.lower(), int(36 * k), c.primary, max_width=300 * k)
    for s in (-1, 1):
        bx, by = cx + s * 120 * k, cy - 150 * k
        stem = (bx - 24 * k, by, bx + 24 * k, by + 190 * k)
        _rr(d, stem, 24 * k, fill=c.primary)
        d.ellipse((bx - 82 * k, by - 80 * k, bx + 82 * k, by + 80 * k), fill=c.primary)
        d.ellipse((bx - 52 * k + s * 30 * k, by - 56 * k, bx + 40 * k + s * 30 * k, by + 36 * k), fill=c.accent)
        d.ellipse((bx - 36 * k, by - 60 * k, bx - 10 * k, by - 34 * k), fill=mix(c.primary, WHITE, 0.4))


def watch(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    _rr(d, (cx - 105 * k, cy - 330 * k, cx + 105 * k, cy + 330 * k), 40 * k, fill=c.primary)
    for i in range(5):
        yy = cy + (200 + i * 24) * k
        d.ellipse((cx - 8 * k, yy - 8 * k, cx + 8 * k, yy + 8 * k), fill=c.dark)
    d.rectangle((cx + 170 * k, cy - 50 * k, cx + 190 * k, cy + 10 * k), fill=c.dark)
    _rr(d, (cx - 180 * k, cy - 200 * k, cx + 180 * k, cy + 200 * k), 90 * k, fill=(40, 44, 48))
    scr = (cx - 150 * k, cy - 170 * k, cx + 150 * k, cy + 170 * k)
    _rr(d, scr, 70 * k, fill=(8, 10, 12))
    for i, (col, ext) in enumerate(((c.accent, 300), ((255, 99, 132), 230), ((80, 180, 255), 170))):
        r = (110 - i * 30) * k
        bb = (cx - r, cy - 20 * k - r, cx + r, cy - 20 * k + r)
        d.arc(bb, 0, 360, fill=mix(col, BLACK, 0.7), width=int(22 * k))
        d.arc(bb, -90, -90 + ext, fill=col, width=int(22 * k))
    _text_center(d, (cx, cy + 130 * k), "10:09", int(40 * k), WHITE)


def laptop(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    lid = (cx - 290 * k, cy - 250 * k, cx + 290 * k, cy + 110 * k)
    _rr(d, lid, 26 * k, fill=(35, 35, 38))
    scr = (lid[0] + 20 * k, lid[1] + 20 * k, lid[2] - 20 * k, lid[3] - 16 * k)
    _gradient_fill(img, scr, mix(c.accent, WHITE, 0.35), mix(c.primary, c.accent, 0.3), 8)
    d = ImageDraw.Draw(img)
    for i in range(3):  # windows on the display
        x = scr[0] + 40 * k + i * 150 * k
        _rr(d, (x, scr[1] + 60 * k + i * 30 * k, x + 200 * k, scr[1] + 200 * k + i * 30 * k), 10 * k,
            fill=mix(WHITE, c.light, 0.5), outline=mix(c.primary, WHITE, 0.3), width=3)
    base = [(cx - 330 * k, cy + 150 * k), (cx + 330 * k, cy + 150 * k), (cx + 290 * k, cy + 110 * k), (cx - 290 * k, cy + 110 * k)]
    d.polygon(base, fill=(196, 198, 204))
    _rr(d, (cx - 340 * k, cy + 146 * k, cx + 340 * k, cy + 168 * k), 10 * k, fill=(168, 170, 178))
    d.rectangle((cx - 50 * k, cy + 146 * k, cx + 50 * k, cy + 154 * k), fill=(140, 142, 150))
    _text_center(d, (cx, lid[3] - 8 * k), spec.brand.upper(), int(14 * k), (200, 200, 200))
    d.line((cx - 320 * k, cy + 170 * k, cx + 320 * k, cy + 170 * k), fill=c.accent, width=int(4 * k))


def controller(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    body = c.dark
    for s in (-1, 1):
        d.ellipse((cx + s * 230 * k - 110 * k, cy - 60 * k, cx + s * 230 * k + 110 * k, cy + 220 * k), fill=body)
    _rr(d, (cx - 300 * k, cy - 150 * k, cx + 300 * k, cy + 110 * k), 130 * k, fill=body)
    d.line((cx - 200 * k, cy - 140 * k, cx + 200 * k, cy - 140 * k), fill=c.accent, width=int(10 * k))
    # d-pad
    px, py = cx - 190 * k, cy - 30 * k
    d.rectangle((px - 22 * k, py - 62 * k, px + 22 * k, py + 62 * k), fill=(70, 70, 80))
    d.rectangle((px - 62 * k, py - 22 * k, px + 62 * k, py + 22 * k), fill=(70, 70, 80))
    # face buttons
    bx, by = cx + 190 * k, cy - 30 * k
    for (ox, oy), col in zip(((0, -55), (55, 0), (0, 55), (-55, 0)), (c.accent, (255, 80, 120), (120, 255, 140), (255, 220, 80))):
        d.ellipse((bx + ox * k - 24 * k, by + oy * k - 24 * k, bx + ox * k + 24 * k, by + oy * k + 24 * k), fill=col)
    for sx in (-85, 85):
        x, y = cx + sx * k, cy + 60 * k
        d.ellipse((x - 52 * k, y - 52 * k, x + 52 * k, y + 52 * k), fill=(25, 25, 30), outline=c.accent, width=int(6 * k))
        d.ellipse((x - 30 * k, y - 30 * k, x + 30 * k, y + 30 * k), fill=(55, 55, 62))
    d.ellipse((cx - 22 * k, cy - 80 * k, cx + 22 * k, cy - 36 * k), fill=mix(c.accent, WHITE, 0.3))


def camera(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    _rr(d, (cx + 80 * k, cy - 210 * k, cx + 190 * k, cy - 170 * k), 12 * k, fill=c.accent)
    body = (cx - 260 * k, cy - 180 * k, cx + 260 * k, cy + 200 * k)
    _rr(d, body, 56 * k, fill=c.dark)
    for i in range(6):
        d.line((body[0] + 20 * k, cy + (60 + 20 * i) * k, body[0] + 120 * k, cy + (60 + 20 * i) * k), fill=mix(c.dark, BLACK, 0.4), width=int(8 * k))
    lx, ly = cx + 40 * k, cy + 10 * k
    for r, col in ((150, (25, 25, 28)), (128, (90, 90, 96)), (110, c.accent), (92, (20, 22, 30)), (60, (40, 60, 110))):
        d.ellipse((lx - r * k, ly - r * k, lx + r * k, ly + r * k), fill=col)
    d.ellipse((lx - 40 * k, ly - 44 * k, lx - 10 * k, ly - 14 * k), fill=(200, 220, 255))
    _rr(d, (body[0] + 24 * k, body[1] + 24 * k, body[0] + 150 * k, body[1] + 90 * k), 12 * k, fill=(20, 24, 28))
    d.ellipse((body[2] - 60 * k, body[1] + 30 * k, body[2] - 36 * k, body[1] + 54 * k), fill=(255, 60, 60))
    _text_center(d, (body[0] + 88 * k, body[3] - 40 * k), spec.brand.upper(), int(26 * k), c.accent, max_width=160 * k)


def _scaled(points, cx, cy, k, sx=640, sy=640):
    return [(cx + (x - 0.5) * sx * k, cy + (y - 0.5) * sy * k) for x, y in points]


def shoe(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)

    def s(pts):
        return _scaled(pts, cx, cy - 30 * k, k, 700, 1000)

    d.polygon(s([(0.02, 0.70), (0.97, 0.70), (0.995, 0.735), (0.95, 0.77), (0.05, 0.77), (0.0, 0.735)]), fill=c.dark)
    d.polygon(s([(0.01, 0.60), (0.85, 0.62), (0.97, 0.60), (1.0, 0.65), (0.97, 0.71), (0.03, 0.71), (0.0, 0.66)]),
              fill=(246, 246, 246))
    d.line(s([(0.04, 0.68), (0.95, 0.68)]), fill=mix(c.primary, WHITE, 0.5), width=int(5 * k))
    d.polygon(s([(0.03, 0.61), (0.02, 0.45), (0.06, 0.36), (0.16, 0.33), (0.22, 0.38), (0.30, 0.42), (0.50, 0.44),
                 (0.70, 0.48), (0.88, 0.54), (0.98, 0.60), (0.97, 0.63)]), fill=c.primary)
    d.polygon(s([(0.05, 0.37), (0.16, 0.33), (0.22, 0.38), (0.10, 0.42)]), fill=c.dark)  # collar
    d.polygon(s([(0.0, 0.44), (0.04, 0.37), (0.06, 0.61), (0.015, 0.61)]), fill=c.accent)  # heel tab
    d.line(s([(0.16, 0.57), (0.35, 0.55), (0.55, 0.53), (0.78, 0.56)]), fill=c.accent, width=int(16 * k), joint="curve")
    for i in range(5):  # laces
        t = i / 4
        a = (0.29 + 0.26 * t, 0.43 + 0.04 * t)
        d.line(s([a, (a[0] + 0.035, a[1] + 0.045)]), fill=WHITE, width=int(9 * k))
    d.polygon(s([(0.06, 0.50), (0.12, 0.50), (0.12, 0.53), (0.06, 0.53)]), fill=(230, 230, 230))  # reflective


def dropper(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    d.ellipse((cx - 58 * k, cy - 330 * k, cx + 58 * k, cy - 170 * k), fill=c.primary)  # bulb
    _rr(d, (cx - 46 * k, cy - 230 * k, cx + 46 * k, cy - 120 * k), 10 * k, fill=c.primary)
    _rr(d, (cx - 80 * k, cy - 140 * k, cx + 80 * k, cy - 80 * k), 12 * k, fill=mix(c.primary, WHITE, 0.3))
    body = (cx - 150 * k, cy - 90 * k, cx + 150 * k, cy + 300 * k)
    _gradient_fill(img, body, mix(c.accent, WHITE, 0.25), mix(c.accent, c.primary, 0.45), 60 * k)
    d = ImageDraw.Draw(img)
    d.rectangle((body[0] + 26 * k, body[1] + 30 * k, body[0] + 46 * k, body[3] - 50 * k), fill=mix(c.accent, WHITE, 0.6))
    lab = (body[0] + 34 * k, cy + 20 * k, body[2] - 34 * k, cy + 210 * k)
    _rr(d, lab, 14 * k, fill=c.light)
    _text_center(d, (cx, lab[1] + 60 * k), spec.brand.upper(), int(40 * k), c.primary, max_width=(lab[2] - lab[0]) * 0.9)
    _text_center(d, (cx, lab[1] + 120 * k), "serum", int(28 * k), c.primary, bold=False)
    d.line((lab[0] + 50 * k, lab[1] + 95 * k, lab[2] - 50 * k, lab[1] + 95 * k), fill=c.primary, width=int(3 * k))


def chipbag(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    w, h = 400 * k, 560 * k
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    pts = []
    n = 14
    for i in range(n + 1):  # crimped top
        pts.append((x0 + w * i / n, y0 + (0 if i % 2 == 0 else 18 * k)))
    pts += [(x1 + 12 * k, cy), ]
    for i in range(n, -1, -1):  # crimped bottom
        pts.append((x0 + w * i / n, y1 - (0 if i % 2 == 0 else 18 * k)))
    pts += [(x0 - 12 * k, cy)]
    d.polygon(pts, fill=c.primary)
    d.rectangle((x0 + 4 * k, y0 + 30 * k, x1 - 4 * k, y0 + 50 * k), fill=c.dark)
    d.rectangle((x0 + 4 * k, y1 - 50 * k, x1 - 4 * k, y1 - 30 * k), fill=c.dark)
    band = (x0 + 10 * k, y0 + 90 * k, x1 - 10 * k, y0 + 210 * k)
    d.polygon([(band[0], band[1] + 20 * k), (band[2], band[1]), (band[2], band[3] - 20 * k), (band[0], band[3])], fill=c.accent)
    _text_center(d, (cx, (band[1] + band[3]) / 2), spec.brand.upper(), int(62 * k), c.primary, max_width=w * 0.86)
    r = 120 * k
    wy = cy + 110 * k
    d.ellipse((cx - r, wy - r, cx + r, wy + r), fill=c.light)
    for ox, oy, rot in ((-40, -20, 0), (35, 10, 1), (-10, 45, 2)):
        ex, ey = cx + ox * k, wy + oy * k
        d.ellipse((ex - 60 * k, ey - 38 * k, ex + 60 * k, ey + 38 * k), fill=(240, 190, 90), outline=(200, 140, 50), width=int(4 * k))
        d.ellipse((ex - 10 * k + rot * 8 * k, ey - 6 * k, ex + 2 * k + rot * 8 * k, ey + 6 * k), fill=(210, 60, 30))
    _text_center(d, (cx, y1 - 90 * k), "CHILI", int(38 * k), c.accent)


def can(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    w, h = 270 * k, 500 * k
    x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
    e = 40 * k
    d.ellipse((x0, y1 - e, x1, y1 + e), fill=(150, 155, 160))
    d.rectangle((x0, y0, x1, y1), fill=c.primary)
    # wave band
    wave = [(x0 + w * t, cy + 60 * k - 40 * k * math.sin(t * math.pi * 2)) for t in [i / 24 for i in range(25)]]
    d.polygon(wave + [(x1, y1), (x0, y1)], fill=c.accent)
    wave2 = [(x, y + 40 * k) for x, y in wave]
    d.polygon(wave2 + [(x1, y1), (x0, y1)], fill=mix(c.primary, BLACK, 0.2))
    d.rectangle((x0 + 30 * k, y0 + 10 * k, x0 + 52 * k, y1 - 10 * k), fill=mix(c.primary, WHITE, 0.3))  # highlight
    _text_center(d, (cx, cy - 70 * k), spec.brand.upper(), int(64 * k), c.on(c.primary), max_width=w * 0.85)
    _text_center(d, (cx, cy - 10 * k), "citrus fizz" if "fizz" in spec.name.lower() else spec.subcategory, int(26 * k), c.on(c.primary), bold=False, max_width=w * 0.85)
    d.ellipse((x0, y0 - e, x1, y0 + e), fill=(205, 208, 212), outline=(150, 155, 160), width=int(4 * k))
    d.ellipse((x0 + 20 * k, y0 - e + 10 * k, x1 - 20 * k, y0 + e - 10 * k), outline=(170, 174, 178), width=int(4 * k))
    _rr(d, (cx - 40 * k, y0 - 20 * k, cx + 40 * k, y0 + 12 * k), 14 * k, fill=(180, 184, 188))


def razor(img, c, spec, cx, cy, k) -> None:
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    _rr(d, (cx - 40 * k, cy - 180 * k, cx + 40 * k, cy + 330 * k), 40 * k, fill=c.primary + (255,))
    for i in range(6):
        y = cy + (20 + 34 * i) * k
        _rr(d, (cx - 44 * k, y, cx + 44 * k, y + 18 * k), 9 * k, fill=c.accent + (255,))
    d.polygon([(cx - 30 * k, cy - 180 * k), (cx + 30 * k, cy - 180 * k), (cx + 20 * k, cy - 240 * k), (cx - 20 * k, cy - 240 * k)], fill=c.dark + (255,))
    head = (cx - 170 * k, cy - 330 * k, cx + 170 * k, cy - 230 * k)
    _rr(d, head, 30 * k, fill=mix(c.primary, WHITE, 0.15) + (255,))
    d.rectangle((head[0] + 24 * k, head[1] + 12 * k, head[2] - 24 * k, head[1] + 30 * k), fill=(120, 200, 140, 255))  # aloe strip
    for i in range(3):
        y = head[1] + (46 + 16 * i) * k
        d.line((head[0] + 24 * k, y, head[2] - 24 * k, y), fill=(225, 228, 232, 255), width=int(8 * k))
    _text_center(d, (cx, cy + 280 * k), spec.brand[0].upper(), int(40 * k), WHITE)
    layer = layer.rotate(-32, resample=Image.Resampling.BICUBIC, center=(cx, cy))
    img.paste(layer, (0, 0), layer)


def jacket(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    d.ellipse((cx - 120 * k, cy - 330 * k, cx + 120 * k, cy - 130 * k), fill=c.dark)  # hood
    d.ellipse((cx - 80 * k, cy - 290 * k, cx + 80 * k, cy - 160 * k), fill=mix(c.dark, BLACK, 0.4))
    body = _scaled([(0.30, 0.18), (0.70, 0.18), (0.86, 0.26), (1.0, 0.78), (0.88, 0.82), (0.78, 0.48),
                    (0.77, 0.92), (0.23, 0.92), (0.22, 0.48), (0.12, 0.82), (0.0, 0.78), (0.14, 0.26)], cx, cy, k, 620, 700)
    d.polygon(body, fill=c.primary)
    for pts in ([(0.0, 0.78), (0.12, 0.82), (0.13, 0.76), (0.015, 0.72)], [(1.0, 0.78), (0.88, 0.82), (0.87, 0.76), (0.985, 0.72)]):
        d.polygon(_scaled(pts, cx, cy, k, 620, 700), fill=c.accent)  # cuffs
    zx = cx
    d.line((zx, cy - 220 * k, zx, cy + 290 * k), fill=c.accent, width=int(10 * k))
    d.rectangle((zx - 10 * k, cy - 150 * k, zx + 10 * k, cy - 110 * k), fill=c.accent)
    for s in (-1, 1):
        px = cx + s * 120 * k
        d.line((px - 50 * k, cy + 90 * k, px + 50 * k, cy + 90 * k), fill=c.dark, width=int(8 * k))
        d.line((cx + s * 20 * k, cy - 215 * k, cx + s * 150 * k, cy - 170 * k), fill=c.dark, width=int(6 * k))
    d.polygon(_scaled([(0.22, 0.88), (0.78, 0.88), (0.77, 0.92), (0.23, 0.92)], cx, cy, k, 620, 700), fill=c.dark)
    _text_center(d, (cx - 130 * k, cy - 60 * k), spec.brand[0].upper(), int(40 * k), c.accent)


def pouch(img, c, spec, cx, cy, k, label: str = "", icon: str = "beans") -> None:
    d = ImageDraw.Draw(img)
    pts = [(cx - 190 * k, cy - 300 * k), (cx + 190 * k, cy - 300 * k), (cx + 210 * k, cy + 300 * k), (cx - 210 * k, cy + 300 * k)]
    d.polygon(pts, fill=c.primary)
    d.rectangle((cx - 190 * k, cy - 300 * k, cx + 190 * k, cy - 250 * k), fill=c.dark)
    for i in range(16):
        x = cx - 180 * k + i * 24 * k
        d.line((x, cy - 296 * k, x, cy - 256 * k), fill=mix(c.dark, WHITE, 0.15), width=int(4 * k))
    d.ellipse((cx + 110 * k, cy - 220 * k, cx + 150 * k, cy - 180 * k), fill=c.dark, outline=c.accent, width=int(4 * k))
    lab = (cx - 150 * k, cy - 150 * k, cx + 150 * k, cy + 220 * k)
    _rr(d, lab, 24 * k, fill=c.light)
    _text_center(d, (cx, lab[1] + 60 * k), spec.brand.upper(), int(44 * k), c.primary, max_width=270 * k)
    _text_center(d, (cx, lab[3] - 40 * k), label, int(26 * k), c.primary, bold=False, max_width=270 * k)
    icx, icy = cx, cy + 60 * k
    if icon == "beans":
        for ox, oy, a in ((-45, -10, 20), (45, 10, -25), (0, 40, 70)):
            bb = Image.new("RGBA", img.size, (0, 0, 0, 0))
            bd = ImageDraw.Draw(bb)
            x, y = icx + ox * k, icy + oy * k
            bd.ellipse((x - 44 * k, y - 30 * k, x + 44 * k, y + 30 * k), fill=c.accent + (255,))
            bd.arc((x - 30 * k, y - 70 * k, x + 30 * k, y + 10 * k), 40, 140, fill=c.primary + (255,), width=int(6 * k))
            bb = bb.rotate(a, center=(x, y), resample=Image.Resampling.BICUBIC)
            img.paste(bb, (0, 0), bb)
    else:  # paw print
        d.ellipse((icx - 60 * k, icy - 20 * k, icx + 60 * k, icy + 80 * k), fill=c.accent)
        for ox, oy in ((-80, -50), (-30, -95), (30, -95), (80, -50)):
            x, y = icx + ox * k, icy + oy * k
            d.ellipse((x - 26 * k, y - 32 * k, x + 26 * k, y + 32 * k), fill=c.accent)


def coffee_pouch(img, c, spec, cx, cy, k) -> None:
    pouch(img, c, spec, cx - 60 * k, cy, k * 0.95, label="house roast", icon="beans")
    cup(img, c, spec, cx + 230 * k, cy + 170 * k, k * 0.6)


def cup(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    d.arc((cx + 80 * k, cy - 100 * k, cx + 200 * k, cy + 40 * k), -90, 90, fill=WHITE, width=int(22 * k))
    d.polygon([(cx - 140 * k, cy - 140 * k), (cx + 140 * k, cy - 140 * k), (cx + 100 * k, cy + 140 * k), (cx - 100 * k, cy + 140 * k)], fill=WHITE)
    d.ellipse((cx - 140 * k, cy - 170 * k, cx + 140 * k, cy - 110 * k), fill=(110, 70, 45), outline=WHITE, width=int(10 * k))
    d.rectangle((cx - 120 * k, cy - 40 * k, cx + 120 * k, cy + 10 * k), fill=c.accent)
    for s in (-1, 0, 1):
        x = cx + s * 50 * k
        d.arc((x - 20 * k, cy - 300 * k, x + 20 * k, cy - 230 * k), 90, 270, fill=(240, 240, 240), width=int(8 * k))
        d.arc((x - 20 * k, cy - 240 * k, x + 20 * k, cy - 180 * k), -90, 90, fill=(240, 240, 240), width=int(8 * k))


def petbag(img, c, spec, cx, cy, k) -> None:
    pouch(img, c, spec, cx - 60 * k, cy - 20 * k, k * 0.95, label="daily kibble", icon="paw")
    d = ImageDraw.Draw(img)
    bx, by = cx + 210 * k, cy + 230 * k
    for i in range(9):
        x = bx - 100 * k + (i % 5) * 50 * k
        y = by - 40 * k - (i // 5) * 26 * k
        d.ellipse((x - 22 * k, y - 16 * k, x + 22 * k, y + 16 * k), fill=(170, 110, 60))
    d.chord((bx - 160 * k, by - 120 * k, bx + 160 * k, by + 100 * k), 0, 180, fill=c.accent)
    d.rectangle((bx - 160 * k, by - 12 * k, bx + 160 * k, by + 6 * k), fill=mix(c.accent, BLACK, 0.2))


def tv(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    d.polygon([(cx - 40 * k, cy + 190 * k), (cx + 40 * k, cy + 190 * k), (cx + 120 * k, cy + 270 * k), (cx - 120 * k, cy + 270 * k)], fill=(60, 60, 66))
    frame = (cx - 420 * k, cy - 260 * k, cx + 420 * k, cy + 200 * k)
    _rr(d, frame, 16 * k, fill=(20, 20, 24))
    scr = (frame[0] + 14 * k, frame[1] + 14 * k, frame[2] - 14 * k, frame[3] - 14 * k)
    x0, y0, x1, y1 = scr
    w, h = x1 - x0, y1 - y0
    d.rectangle(scr, fill=c.primary)
    _text_center(d, (x0 + 130 * k, y0 + 36 * k), spec.brand, int(34 * k), c.accent, max_width=220 * k)
    hero = (x0 + 20 * k, y0 + 70 * k, x1 - 20 * k, y0 + h * 0.58)
    _gradient_fill(img, hero, mix(c.accent, c.primary, 0.2), mix(c.primary, BLACK, 0.3), 14 * k)
    d = ImageDraw.Draw(img)
    hx, hy = x0 + w * 0.25, (hero[1] + hero[3]) / 2
    _rr(d, (hx - 140 * k, hy - 40 * k, hx + 140 * k, hy - 14 * k), 10 * k, fill=WHITE)
    _rr(d, (hx - 140 * k, hy + 4 * k, hx + 60 * k, hy + 22 * k), 8 * k, fill=mix(WHITE, c.primary, 0.4))
    _rr(d, (hx - 140 * k, hy + 44 * k, hx - 20 * k, hy + 86 * k), 20 * k, fill=c.accent)
    d.polygon([(hx - 110 * k, hy + 52 * k), (hx - 110 * k, hy + 78 * k), (hx - 90 * k, hy + 65 * k)], fill=c.primary)
    tiles = [(231, 111, 81), (42, 157, 143), (233, 196, 106), (118, 120, 237), (244, 162, 97)]
    tw = (w - 40 * k - 4 * 16 * k) / 5
    for i, col in enumerate(tiles):
        tx = x0 + 20 * k + i * (tw + 16 * k)
        _rr(d, (tx, y0 + h * 0.64, tx + tw, y1 - 20 * k), 12 * k, fill=col)


def car(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    body = _scaled([(0.0, 0.62), (0.02, 0.50), (0.18, 0.46), (0.32, 0.30), (0.66, 0.30), (0.80, 0.45),
                    (0.97, 0.50), (1.0, 0.62), (0.98, 0.70), (0.02, 0.70)], cx, cy, k, 760, 520)
    d.polygon(body, fill=c.primary)
    win = _scaled([(0.22, 0.46), (0.34, 0.34), (0.48, 0.34), (0.48, 0.46)], cx, cy, k, 760, 520)
    d.polygon(win, fill=(190, 220, 240))
    win2 = _scaled([(0.51, 0.46), (0.51, 0.34), (0.64, 0.34), (0.76, 0.46)], cx, cy, k, 760, 520)
    d.polygon(win2, fill=(190, 220, 240))
    d.polygon(_scaled([(0.02, 0.58), (0.98, 0.58), (0.98, 0.62), (0.02, 0.62)], cx, cy, k, 760, 520), fill=c.accent)
    for wx in (0.2, 0.8):
        x, y = _scaled([(wx, 0.70)], cx, cy, k, 760, 520)[0]
        d.ellipse((x - 66 * k, y - 66 * k, x + 66 * k, y + 66 * k), fill=(25, 25, 28))
        d.ellipse((x - 30 * k, y - 30 * k, x + 30 * k, y + 30 * k), fill=(170, 170, 176))
    x, y = _scaled([(0.5, 0.22)], cx, cy, k, 760, 520)[0]
    _rr(d, (x - 70 * k, y - 22 * k, x + 70 * k, y + 22 * k), 12 * k, fill=c.accent)
    _text_center(d, (x, y), spec.brand.upper(), int(22 * k), c.on(c.accent), max_width=130 * k)
    fx, fy = _scaled([(0.96, 0.55)], cx, cy, k, 760, 520)[0]
    d.ellipse((fx - 14 * k, fy - 10 * k, fx + 14 * k, fy + 10 * k), fill=(255, 240, 180))


def scooter(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    for wx in (-230, 230):
        x, y = cx + wx * k, cy + 200 * k
        d.ellipse((x - 80 * k, y - 80 * k, x + 80 * k, y + 80 * k), fill=(30, 30, 34))
        d.ellipse((x - 34 * k, y - 34 * k, x + 34 * k, y + 34 * k), fill=(160, 160, 166))
    d.polygon([(cx - 260 * k, cy + 140 * k), (cx + 120 * k, cy + 140 * k), (cx + 160 * k, cy + 60 * k), (cx - 60 * k, cy + 40 * k), (cx - 240 * k, cy + 60 * k)], fill=c.accent)
    d.line((cx + 140 * k, cy + 100 * k, cx + 230 * k, cy - 200 * k), fill=(60, 60, 66), width=int(26 * k))
    d.line((cx + 230 * k, cy + 200 * k, cx + 190 * k, cy + 60 * k), fill=(60, 60, 66), width=int(22 * k))
    d.line((cx + 180 * k, cy - 210 * k, cx + 290 * k, cy - 190 * k), fill=(30, 30, 34), width=int(22 * k))
    _rr(d, (cx - 110 * k, cy + 20 * k, cx + 40 * k, cy + 60 * k), 16 * k, fill=(40, 40, 44))  # seat
    box = (cx - 330 * k, cy - 250 * k, cx - 60 * k, cy + 40 * k)
    _rr(d, box, 24 * k, fill=c.primary)
    _rr(d, (box[0], box[1], box[2], box[1] + 40 * k), 20 * k, fill=mix(c.primary, BLACK, 0.2))
    bx, by = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2 + 10 * k
    # fork icon
    d.rectangle((bx - 8 * k, by - 20 * k, bx + 8 * k, by + 90 * k), fill=WHITE)
    d.rectangle((bx - 40 * k, by - 40 * k, bx + 40 * k, by - 10 * k), fill=WHITE)
    for ox in (-36, -12, 12, 36):
        d.rectangle((bx + ox * k - 6 * k, by - 90 * k, bx + ox * k + 6 * k, by - 30 * k), fill=WHITE)


def headphones(img, c, spec, cx, cy, k) -> None:
    d = ImageDraw.Draw(img)
    for i in range(3):  # sound waves
        r = (330 + 50 * i) * k
        for s, a0 in ((-1, 150), (1, -30)):
            d.arc((cx - r, cy - r + 60 * k, cx + r, cy + r + 60 * k), a0, a0 + 60, fill=mix(c.accent, c.light, 0.3 * i), width=int(14 * k))
    d.arc((cx - 230 * k, cy - 260 * k, cx + 230 * k, cy + 200 * k), 180, 360, fill=c.primary, width=int(44 * k))
    for s in (-1, 1):
        x = cx + s * 220 * k
        _rr(d, (x - 70 * k, cy - 20 * k, x + 70 * k, cy + 200 * k), 60 * k, fill=c.primary)
        _rr(d, (x - s * 40 * k - 40 * k, cy + 10 * k, x - s * 40 * k + 40 * k, cy + 170 * k), 36 * k, fill=c.accent)


def box_product(img, c, spec, cx, cy, k) -> None:
    """Generic packaged product for a user spec whose subcategory matches no silhouette."""
    d = ImageDraw.Draw(img)
    d.polygon([(cx - 220 * k, cy - 180 * k), (cx - 120 * k, cy - 260 * k), (cx + 280 * k, cy - 260 * k), (cx + 180 * k, cy - 180 * k)], fill=mix(c.primary, WHITE, 0.25))
    d.polygon([(cx + 180 * k, cy - 180 * k), (cx + 280 * k, cy - 260 * k), (cx + 280 * k, cy + 200 * k), (cx + 180 * k, cy + 280 * k)], fill=c.dark)
    d.rectangle((cx - 220 * k, cy - 180 * k, cx + 180 * k, cy + 280 * k), fill=c.primary)
    d.rectangle((cx - 220 * k, cy + 20 * k, cx + 180 * k, cy + 90 * k), fill=c.accent)
    _text_center(d, (cx - 20 * k, cy - 60 * k), spec.brand.upper(), int(50 * k), c.on(c.primary), max_width=360 * k)


def phone_back_and_front(img, c, spec, cx, cy, k) -> None:
    phone(img, c, spec, cx - 110 * k, cy + 10 * k, k * 0.92, back=True)
    phone(img, c, spec, cx + 120 * k, cy - 10 * k, k * 0.92, screen="wallpaper")


def _app(screen: str) -> Callable:
    def f(img, c, spec, cx, cy, k):
        phone(img, c, spec, cx, cy, k, screen=screen)
    return f


#: silhouette name -> drawing function(img, colors, spec, cx, cy, k)
SILHOUETTES: dict[str, Callable] = {
    "phone": phone_back_and_front, "earbuds": earbuds, "watch": watch, "laptop": laptop, "controller": controller,
    "camera": camera, "shoe": shoe, "dropper": dropper, "chipbag": chipbag, "can": can, "razor": razor,
    "jacket": jacket, "coffee": coffee_pouch, "petfood": petbag, "tv": tv, "car": car, "scooter": scooter,
    "headphones": headphones, "app-map": _app("map"), "app-menu": _app("menu"), "app-player": _app("player"),
    "app-grid": _app("grid"), "box": box_product,
}

#: the shipped products' (hero, feature) silhouettes
ART: dict[str, tuple[str, str]] = {
    "vantrel-phone": ("phone", "phone"), "sonetto-earbuds": ("earbuds", "earbuds"), "kinetra-watch": ("watch", "watch"),
    "quillo-laptop": ("laptop", "laptop"), "arcflux-controller": ("controller", "controller"),
    "trailmark-camera": ("camera", "camera"), "veloce-shoes": ("shoe", "shoe"), "lumiel-serum": ("dropper", "dropper"),
    "crunchmoor-chips": ("chipbag", "chipbag"), "brisa-soda": ("can", "can"), "keenline-razor": ("razor", "razor"),
    "fernhollow-jacket": ("jacket", "jacket"), "morrow-coffee": ("coffee", "coffee"), "tailwise-petfood": ("petfood", "petfood"),
    "reelhaven-streaming": ("tv", "app-grid"), "ambli-rides": ("app-map", "car"), "forkfly-delivery": ("app-menu", "scooter"),
    "tunecove-music": ("app-player", "headphones"),
}

_KEYWORDS = (("phone", "phone"), ("earbud", "earbuds"), ("headphone", "headphones"), ("watch", "watch"),
             ("laptop", "laptop"), ("controller", "controller"), ("camera", "camera"), ("shoe", "shoe"),
             ("sneaker", "shoe"), ("serum", "dropper"), ("skincare", "dropper"), ("snack", "chipbag"),
             ("chips", "chipbag"), ("drink", "can"), ("soda", "can"), ("razor", "razor"), ("jacket", "jacket"),
             ("apparel", "jacket"), ("coffee", "coffee"), ("pet", "petfood"), ("streaming", "app-grid"),
             ("music", "app-player"), ("ride", "app-map"), ("delivery", "app-menu"))


def silhouettes_for(spec: Spec) -> tuple[str, str]:
    """The (hero, feature) silhouettes of a product: the shipped table, else by subcategory keyword."""
    if spec.id in ART:
        return ART[spec.id]
    sub = spec.subcategory.lower()
    for word, sil in _KEYWORDS:
        if word in sub:
            return (sil, sil)
    return ("box", "box")


# --------------------------------------------------------------------------------------------- logo
MARKS = ("circle", "squircle", "hexagon", "diamond")


def _mark_shape(spec: Spec) -> str:
    return MARKS[int(hashlib.sha256(spec.brand.encode()).hexdigest(), 16) % len(MARKS)]


def draw_logo(spec: Spec) -> Image.Image:
    """A square logo: a brand mark (shape + initial + accent arc) above the brand name."""
    c = spec.colors
    img = Image.new("RGB", (W, W), mix(c.light, WHITE, 0.3))
    d = ImageDraw.Draw(img)
    cx, cy, r = W / 2, W * 0.40, W * 0.25
    shape = _mark_shape(spec)
    if shape == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=c.primary)
    elif shape == "squircle":
        _rr(d, (cx - r, cy - r, cx + r, cy + r), r * 0.45, fill=c.primary)
    elif shape == "hexagon":
        d.regular_polygon((cx, cy, r * 1.08), 6, rotation=30, fill=c.primary)
    else:
        d.regular_polygon((cx, cy, r * 1.25), 4, rotation=0, fill=c.primary)
    d.arc((cx - r * 0.78, cy - r * 0.78, cx + r * 0.78, cy + r * 0.78), 200, 340, fill=c.accent, width=int(r * 0.12))
    _text_center(d, (cx, cy + r * 0.06), spec.brand[0].upper(), int(r * 1.0), c.on(c.primary))
    d.ellipse((cx + r * 0.45, cy + r * 0.35, cx + r * 0.63, cy + r * 0.53), fill=c.accent)
    _text_center(d, (cx, W * 0.80), spec.brand, int(W * 0.13), c.primary, max_width=W * 0.86)
    d.line((W * 0.38, W * 0.90, W * 0.62, W * 0.90), fill=c.accent, width=int(W * 0.012))
    return _finish(img)


# ------------------------------------------------------------------------------------------- images
def _decorate(img: Image.Image, spec: Spec, c: Colors, which: str) -> None:
    """A few soft background circles placed by the seed helper (deterministic per product)."""
    g = rng(DEFAULT_SEED, "product_art", spec.id, which)
    layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    for _ in range(7):
        x, y = g.uniform(0, W), g.uniform(0, W)
        r = g.uniform(30, 140)
        col = c.accent if g.uniform() < 0.5 else WHITE
        d.ellipse((x - r, y - r, x + r, y + r), fill=col + (int(g.uniform(25, 60)),))
    img.paste(Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB"))


def draw_hero(spec: Spec) -> Image.Image:
    """The product on a brand gradient, with the wordmark at the top."""
    c = spec.colors
    img = _canvas(mix(c.light, WHITE, 0.2), mix(c.light, c.accent, 0.45))
    _decorate(img, spec, c, "hero")
    _shadow(img, (W * 0.2, W * 0.83, W * 0.8, W * 0.93))
    SILHOUETTES[silhouettes_for(spec)[0]](img, c, spec, W / 2, W * 0.54, 1.0)
    d = ImageDraw.Draw(img)
    _text_center(d, (W / 2, W * 0.08), spec.name, int(W * 0.055), c.primary, max_width=W * 0.9)
    return _finish(img)


def _fact_chips(spec: Spec, n: int = 3) -> list[str]:
    facts = [(k, v) for k, v in spec.facts.items() if k != "price"]
    return [f"{k}: {v}" for k, v in facts[:n]]


def draw_feature(spec: Spec) -> Image.Image:
    """The product at the left, three checkable facts as chips at the right, the price as a tag."""
    c = spec.colors
    img = _canvas(mix(c.light, WHITE, 0.5), mix(c.light, c.primary, 0.12))
    d = ImageDraw.Draw(img)
    d.ellipse((-W * 0.25, W * 0.18, W * 0.68, W * 1.1), fill=mix(c.light, c.accent, 0.35))
    _shadow(img, (W * 0.06, W * 0.86, W * 0.56, W * 0.95), 70)
    SILHOUETTES[silhouettes_for(spec)[1]](img, c, spec, W * 0.32, W * 0.57, 0.66)
    d = ImageDraw.Draw(img)
    _text_center(d, (W / 2, W * 0.075), spec.name, int(W * 0.055), c.primary, max_width=W * 0.9)
    # chips
    fnt = D.font(30, True)
    x0, x1 = W * 0.62, W * 0.97
    y = W * 0.20
    for chip in _fact_chips(spec):
        lines = D.wrap(chip, fnt, int(x1 - x0 - 40))
        if len(lines) > 3:
            lines = lines[:3]
            lines[-1] = lines[-1].rstrip(".,;") + "…"
        h = 38 * len(lines) + 30
        _rr(d, (x0, y, x1, y + h), 22, fill=WHITE, outline=c.accent, width=5)
        d.ellipse((x0 - 14, y + h / 2 - 14, x0 + 14, y + h / 2 + 14), fill=c.accent)
        for i, ln in enumerate(lines):
            d.text((x0 + 24, y + 15 + 38 * i), ln, font=fnt, fill=mix(c.primary, BLACK, 0.3))
        y += h + 26
    price = spec.facts.get("price")
    if price:
        short = price.split(";")[0]
        pf = D.font(34, True)
        lines = D.wrap(short, pf, int(W * 0.33))[:2]
        ph = 44 * len(lines) + 28
        box = (x0, W * 0.95 - ph, x1, W * 0.95)
        _rr(d, box, 26, fill=c.primary)
        for i, ln in enumerate(lines):
            d.text(((x0 + x1) / 2, box[1] + 14 + 44 * i + 22), ln, font=pf, fill=c.on(c.primary), anchor="mm")
    return _finish(img)


# -------------------------------------------------------------------------------------------- files
def save_png(path: str | os.PathLike[str], image: Image.Image) -> Path:
    """Write an optimised PNG atomically; the bytes depend only on the pixels."""
    from .store import atomic_path  # noqa: PLC0415

    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG", optimize=True)
    return path


def draw_assets(spec: Spec) -> dict[str, Image.Image]:
    """{'logo': ..., 'hero': ..., 'feature': ...} for one product."""
    return {"logo": draw_logo(spec), "hero": draw_hero(spec), "feature": draw_feature(spec)}


def redraw_product(product_dir: str | os.PathLike[str]) -> list[Path]:
    """Redraw the assets named in ``<product_dir>/product.yaml``: its logo, then its first image as the hero
    and every further image as the feature view. Returns the files written."""
    product_dir = Path(product_dir)
    data = yaml.safe_load((product_dir / "product.yaml").read_text(encoding="utf-8"))
    spec = Spec.from_mapping(data)
    art = draw_assets(spec)
    out = [save_png(product_dir / data["logo"]["path"], art["logo"])]
    for i, asset in enumerate(data.get("images") or []):
        out.append(save_png(product_dir / asset["path"], art["hero" if i == 0 else "feature"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextads_lib.product_art", description=__doc__.split("\n\n")[0])
    ap.add_argument("--products-dir", default=str(DEFAULT_PRODUCTS_DIR), help="library folder (default: the shipped one)")
    ap.add_argument("--only", action="append", default=[], help="product folder name(s) to redraw")
    args = ap.parse_args(argv)
    root = Path(args.products_dir)
    dirs = sorted(p for p in root.iterdir() if (p / "product.yaml").is_file())
    if args.only:
        dirs = [p for p in dirs if p.name in set(args.only)]
    total = 0
    for p in dirs:
        files = redraw_product(p)
        total += sum(f.stat().st_size for f in files)
        print(f"{p.name}: {', '.join(f.name for f in files)}")
    print(f"redrew {len(dirs)} product(s), {total / 1e6:.2f} MB of PNG")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
