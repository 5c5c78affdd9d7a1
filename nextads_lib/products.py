"""The product library: load and validate product specs, write ``data/products/library.json``, show it.

A library is a folder with one sub-folder per product::

    <products_dir>/<product-id>/product.yaml     the spec (fields of ``schemas.Product``)
    <products_dir>/<product-id>/logo.png         assets named in the spec, paths relative to the folder
    <products_dir>/<product-id>/hero.png ...

``load_library`` validates every product and skips a bad one with a record (product, field, file, error) in
``ProductLibrary.skipped``; nothing is dropped silently. Asset paths in the loaded library are resolved
(project-relative when inside the project, else absolute: ``config.display_path``), so ``product_image_paths``
and ``logo_path`` work on a loaded library and on one read back from ``library.json``. The format is
documented in ``nextads_lib/product_library/README.md``.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from . import config, store
from .config import StudyPaths
from .media import MediaError, load_image
from .schemas import Product, ProductLibrary
from .topics import TOPIC_IDS

log = logging.getLogger(__name__)

SPEC_FILE = "product.yaml"
#: the smallest side an image may have and still be usable in a creative
MIN_IMAGE_SIDE = 64
_HEX = re.compile(r"^#[0-9A-Fa-f]{6}$")


class ProductSpecError(ValueError):
    """A product spec that cannot be used. Names the product, the field and the file."""

    def __init__(self, product: str, field: str, file: str | os.PathLike[str], reason: str):
        self.product, self.field, self.file, self.reason = product, field, config.display_path(file), reason
        super().__init__(f"product '{product}': field '{field}' ({self.file}): {reason}")

    def record(self) -> dict[str, str]:
        """The row stored in ``ProductLibrary.skipped``."""
        return {"product": self.product, "field": self.field, "file": self.file, "error": str(self)}


class ProductLibraryError(RuntimeError):
    """The library as a whole cannot be built (missing folder, no valid product)."""


# ------------------------------------------------------------------------------------------- loading
def _loc(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "<root>"


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """Friendly coercions before validation: YAML numbers in ``facts`` become strings, and an asset's
    ``kind`` may be left out (``logo`` for the logo, ``image`` for images)."""
    data = dict(data)
    if isinstance(data.get("facts"), dict):
        data["facts"] = {str(k): (v if isinstance(v, (dict, list)) or v is None else str(v)) for k, v in data["facts"].items()}
    if isinstance(data.get("logo"), dict):
        data["logo"] = {"kind": "logo", **data["logo"]}
    if isinstance(data.get("images"), list):
        data["images"] = [{"kind": "image", **a} if isinstance(a, dict) else a for a in data["images"]]
    return data


def _check_asset(product: str, field: str, folder: Path, rel: str) -> Path:
    p = Path(rel)
    path = p if p.is_absolute() else folder / p
    if not path.is_file():
        raise ProductSpecError(product, field, path, "image file not found")
    try:
        im = load_image(path)
    except MediaError as e:
        raise ProductSpecError(product, field, path, f"unreadable image: {e}") from e
    if min(im.size) < MIN_IMAGE_SIDE:
        raise ProductSpecError(product, field, path, f"image is {im.size[0]}x{im.size[1]}, smaller than {MIN_IMAGE_SIDE} px")
    return path


def load_product(folder: str | os.PathLike[str]) -> Product:
    """Load and validate one product folder; asset paths come back resolved (``config.display_path``).

    Raises ``ProductSpecError`` naming the product (its id, else the folder), the field and the file."""
    folder = Path(folder)
    spec = folder / SPEC_FILE
    name = folder.name
    if not spec.is_file():
        raise ProductSpecError(name, "<spec>", spec, f"no {SPEC_FILE} in the product folder")
    try:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ProductSpecError(name, "<yaml>", spec, f"malformed YAML{where}: {problem}") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ProductSpecError(name, "<yaml>", spec, f"unreadable spec: {e}") from e
    if not isinstance(data, dict):
        raise ProductSpecError(name, "<root>", spec, f"the spec must be a mapping of fields, got {type(data).__name__}")
    if isinstance(data.get("id"), str) and data["id"]:
        name = data["id"]
    try:
        product = Product.model_validate(_normalise(data))
    except ValidationError as e:
        errs = e.errors()
        first = _loc(errs[0]["loc"])
        detail = "; ".join(f"{_loc(x['loc'])}: {x['msg']}" for x in errs[:6])
        raise ProductSpecError(name, first, spec, detail) from e
    if not product.topics:
        raise ProductSpecError(name, "topics", spec, "at least one topic id is needed to match users")
    unknown = [t for t in product.topics if t not in TOPIC_IDS]
    if unknown:
        raise ProductSpecError(name, "topics", spec, f"unknown topic id(s) {unknown}; known: {', '.join(TOPIC_IDS)}")
    for i, col in enumerate(product.palette):
        if not _HEX.match(col):
            raise ProductSpecError(name, f"palette[{i}]", spec, f"'{col}' is not a #RRGGBB hex colour")
    logo = _check_asset(name, "logo.path", folder, product.logo.path)
    images = [_check_asset(name, f"images[{i}].path", folder, a.path) for i, a in enumerate(product.images)]
    return product.model_copy(update={
        "logo": product.logo.model_copy(update={"path": config.display_path(logo)}),
        "images": [a.model_copy(update={"path": config.display_path(p)}) for a, p in zip(product.images, images)],
    })


def product_folders(products_dir: str | os.PathLike[str]) -> list[Path]:
    """The product folders of a library, sorted by name (hidden and ``_``-prefixed folders are ignored)."""
    root = Path(products_dir)
    if not root.is_dir():
        raise ProductLibraryError(f"{root}: product library folder not found")
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


def load_library(products_dir: str | os.PathLike[str]) -> ProductLibrary:
    """Validate every product folder under ``products_dir``. A bad product is skipped with a record
    ``{product, field, file, error}`` in ``skipped`` (and a logged warning); a repeated id is skipped in the
    later folder (folders are read in name order)."""
    root = config.resolve(products_dir)
    products: list[Product] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, Path] = {}
    for folder in product_folders(root):
        try:
            p = load_product(folder)
            if p.id in seen:
                raise ProductSpecError(p.id, "id", folder / SPEC_FILE,
                                       f"duplicate id '{p.id}', already defined by {config.display_path(seen[p.id] / SPEC_FILE)}")
        except ProductSpecError as e:
            log.warning("skipped %s", e)
            skipped.append(e.record())
            continue
        seen[p.id] = folder
        products.append(p)
    return ProductLibrary(products_dir=config.display_path(root), products=products, skipped=skipped)


def build_library(products_dir: str | os.PathLike[str], paths: StudyPaths) -> ProductLibrary:
    """Validate the library and write ``<data_dir>/products/library.json`` atomically. Raises
    ``ProductLibraryError`` (and writes nothing) when no product is valid."""
    lib = load_library(products_dir)
    if not lib.products:
        reasons = "; ".join(s["error"] for s in lib.skipped[:5]) or "the folder has no product sub-folders"
        raise ProductLibraryError(f"{lib.products_dir}: no valid product ({reasons})")
    store.write_json(paths.library_json, lib)
    return lib


def read_library(paths: StudyPaths) -> ProductLibrary:
    """The library written by ``build_library`` (notebook 00); an error names the file and field."""
    return store.read_model(paths.library_json, ProductLibrary)


def product_image_paths(product: Product) -> list[Path]:
    """Absolute paths of the product's images, in spec order (the first is the hero view)."""
    return [config.resolve(a.path) for a in product.images]


def logo_path(product: Product) -> Path:
    return config.resolve(product.logo.path)


# ------------------------------------------------------------------------------------------- looking
def topic_coverage(library: ProductLibrary) -> dict[str, list[str]]:
    """topic id -> ids of the products that declare it (every taxonomy topic, possibly empty)."""
    cover: dict[str, list[str]] = {t: [] for t in TOPIC_IDS}
    for p in library.products:
        for t in p.topics:
            cover.setdefault(t, []).append(p.id)
    return cover


def summary_table(library: ProductLibrary):
    """One row per product: id, brand, category, subcategory, #images, #selling points, topics."""
    import pandas as pd  # noqa: PLC0415

    rows = [{"id": p.id, "brand": p.brand, "category": p.category, "subcategory": p.subcategory,
             "images": len(p.images), "selling_points": len(p.selling_points), "topics": ",".join(p.topics)}
            for p in library.products]
    return pd.DataFrame(rows, columns=["id", "brand", "category", "subcategory", "images", "selling_points", "topics"])


def skipped_table(library: ProductLibrary):
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame(library.skipped, columns=["product", "field", "file", "error"])


def _tile(product: Product, side: int = 320):
    from PIL import Image, ImageDraw  # noqa: PLC0415

    hero = load_image(product_image_paths(product)[0]).resize((side, side), Image.Resampling.LANCZOS)
    logo = load_image(logo_path(product)).resize((side // 3, side // 3), Image.Resampling.LANCZOS)
    ImageDraw.Draw(logo).rectangle((0, 0, logo.width - 1, logo.height - 1), outline=(255, 255, 255), width=3)
    hero.paste(logo, (side - logo.width - 6, side - logo.height - 6))
    return hero


def show_grid(library: ProductLibrary, cols: int = 6):
    """A matplotlib Figure: each product's hero image with its logo inset, titled name / brand / category."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    n = max(1, len(library.products))
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(2.3 * cols, 2.7 * rows), dpi=100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p in zip(axes.flat, library.products):
        ax.imshow(_tile(p))
        ax.set_title(f"{p.name}\n{p.category} · {p.subcategory}", fontsize=7.5)
    fig.suptitle(f"Product library: {len(library.products)} products ({len(library.skipped)} skipped)", fontsize=11)
    fig.tight_layout()
    return fig
