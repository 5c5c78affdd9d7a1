"""Director stage 4, asset grounding (paper 3.2.1, 5.1.1; PCI 5.2.1): the reference collage of the official
product images and logo, the user-preferred visual elements (crops of the history images nearest the
user's palette) and palette swatches, and for PCI the integration frame.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .. import draw as D
from ..config import display_path, resolve
from ..media import MediaError, load_image, save_image
from ..schemas import (
    Grounding,
    GroundingSource,
    Product,
    UserHistory,
    UserProfile,
)
from ..topics import PALETTES
from .common import DirectorError, _existing_images, _rgb_arr
from .storyboard import n_user_visuals


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
