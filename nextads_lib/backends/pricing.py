"""Estimated cost per call from an editable price table (``prices.yaml`` beside this file, or a path given
as the backend setting ``price_table``): USD per 1M input and output tokens, by backend string or model;
and, under ``video_per_second``, USD per generated second for the video Producers, per model and variant
(``default``, ``high_res`` for sora-2-pro's 1024x1792 sizes, ``no_audio`` for Veo 3 without audio)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_TABLE = Path(__file__).with_name("prices.yaml")


@lru_cache(maxsize=8)
def _raw(path: str | None = None) -> dict[str, Any]:
    p = Path(path) if path else DEFAULT_TABLE
    return yaml.safe_load(p.read_text()) or {}


def load_prices(path: str | None = None) -> dict[str, dict[str, float]]:
    """The token table: ``{model: {"input": usd_per_1m, "output": usd_per_1m}}``."""
    return {str(k): {"input": float(v.get("input", 0)), "output": float(v.get("output", 0))}
            for k, v in _raw(path).items() if k != "video_per_second" and isinstance(v, dict)}


def cost_usd(backend: str, input_tokens: int, output_tokens: int, table: str | None = None) -> float:
    """Cost of one call; a model missing from the table costs 0 (local servers, offline)."""
    prices = load_prices(table)
    model = backend.split(":", 1)[-1]
    row = prices.get(backend) or prices.get(model)
    if not row:
        return 0.0
    return round(input_tokens / 1e6 * row["input"] + output_tokens / 1e6 * row["output"], 8)


def video_price_per_second(model: str, variant: str = "default", table: str | None = None) -> float | None:
    """USD per generated second of ``model`` in ``variant`` (falling back to its ``default``); None when the
    model is not in the table."""
    rows = _raw(table).get("video_per_second") or {}
    row = rows.get(model)
    if not row:
        return None
    return float(row.get(variant, row.get("default", 0.0)))
