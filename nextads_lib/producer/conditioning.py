"""How the generative Producers (sora, veo, wan) are conditioned, shared by the three.

Under the paper's protocol (``slot_layouts=False``, the default) the pair's reference collage
(``ProducerRequest.collage_path``, sections 5.1.1 / 5.2.1 "asset grounding") is the image every clip is
conditioned on, unless the clip starts from a given frame (PCI's integration frame, ``first_frame``, for the
first clip) or from the previous clip's last frame (``condition="previous"``). With ``slot_layouts=True`` (the
``extended`` protocol) each slot's clip is conditioned on a layout of that slot's own assets instead.

Prompts name the product by its name and brand and describe it from the library record (``product`` setting
or the shipped library, looked up by the storyboard's ``product_id``), never by the bare id. See
``docs/backends.md`` for what each model takes.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..config import DEFAULT_PRODUCTS_DIR, resolve
from ..media import MediaError, load_image
from ..schemas import Product, ProducerRequest, Slot
from .base import ProducerError, request_item

#: bump when the conditioning of sora/veo/wan (images, prompts) changes; it joins their render cache key
CODE_VERSION = 1


def cache_key(producer: Any, req: ProducerRequest, base_key: str) -> str:
    """A generative Producer's render key: the base Producer's key plus this module's version."""
    from ..store import content_key  # noqa: PLC0415

    return content_key(base_key, "conditioning", CODE_VERSION)


def letterbox(image: np.ndarray | Image.Image, width: int, height: int, fill: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """``image`` scaled to fit inside (width, height) without cropping, centred on ``fill``: exactly
    width x height pixels (the size an API demands of its reference image)."""
    im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
    im = im.convert("RGB")
    s = min(width / im.width, height / im.height)
    nw, nh = max(1, round(im.width * s)), max(1, round(im.height * s))
    out = Image.new("RGB", (width, height), fill)
    out.paste(im.resize((nw, nh), Image.LANCZOS), ((width - nw) // 2, (height - nh) // 2))
    return np.asarray(out)


def collage_array(req: ProducerRequest, width: int, height: int) -> np.ndarray:
    """The request's reference collage letterboxed to exactly (width, height)."""
    if not req.collage_path:
        raise ProducerError(request_item(req), "field 'collage_path' is empty: the paper protocol conditions the "
                            "model on the pair's reference collage")
    try:
        return letterbox(load_image(resolve(req.collage_path)), width, height)
    except MediaError as e:
        raise ProducerError(request_item(req), f"field 'collage_path': {e}") from e


def uses_collage(producer: Any) -> bool:
    """True under the paper protocol (the Producer's ``slot_layouts`` off): the collage conditions the model."""
    return not producer.slot_layouts


@lru_cache(maxsize=64)
def _shipped_product(product_id: str, products_dir: str) -> Product | None:
    from ..products import ProductSpecError, load_product  # noqa: PLC0415

    folder = Path(products_dir) / product_id
    if not folder.is_dir():
        return None
    try:
        return load_product(folder)
    except ProductSpecError:
        return None


def product_record(req: ProducerRequest, product: Any = None,
                   products_dir: str | os.PathLike[str] | None = None) -> Product | None:
    """The library record of the request's product: ``product`` when given (a Product or its dict), else the
    folder ``<products_dir>/<product_id>`` (default: the shipped library); None when there is none."""
    if isinstance(product, Product):
        return product
    if isinstance(product, dict):
        return Product.model_validate(product)
    return _shipped_product(req.storyboard.product_id, str(resolve(products_dir) if products_dir else DEFAULT_PRODUCTS_DIR))


def product_phrase(product: Product | None, product_id: str) -> str:
    """``Brisa Citrus Fizz by Brisa (a sparkling lime and grapefruit soft drink ...)``; the id in words
    when there is no record."""
    if product is None:
        return product_id.replace("-", " ").replace("_", " ")
    desc = product.description.strip().rstrip(".")
    desc = desc[0].lower() + desc[1:] if desc[:2] != desc[:2].upper() else desc
    return f"{product.name} by {product.brand} ({desc})"


def name_product(prompt: str, req: ProducerRequest, product: Product | None) -> str:
    """``prompt`` with the product's id (as the shared shot-list prompts write it) replaced by its name, brand
    and description; the description is prepended when the id does not occur."""
    pid = req.storyboard.product_id
    phrase = product_phrase(product, pid)
    out = prompt
    for form in (pid.replace("-", " "), pid):
        if form and form in out:
            return out.replace(form, phrase, 1)
    return f"Product: {phrase}. {out}"
