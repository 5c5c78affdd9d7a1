"""Estimated cost per call from an editable price table (``prices.yaml`` beside this file, or a path given
as the backend setting ``price_table``): USD per 1M input and output tokens, by backend string or model."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

DEFAULT_TABLE = Path(__file__).with_name("prices.yaml")


@lru_cache(maxsize=8)
def load_prices(path: str | None = None) -> dict[str, dict[str, float]]:
    p = Path(path) if path else DEFAULT_TABLE
    data = yaml.safe_load(p.read_text()) or {}
    return {str(k): {"input": float(v.get("input", 0)), "output": float(v.get("output", 0))} for k, v in data.items()}


def cost_usd(backend: str, input_tokens: int, output_tokens: int, table: str | None = None) -> float:
    """Cost of one call; a model missing from the table costs 0 (local servers, offline)."""
    prices = load_prices(table)
    model = backend.split(":", 1)[-1]
    row = prices.get(backend) or prices.get(model)
    if not row:
        return 0.0
    return round(input_tokens / 1e6 * row["input"] + output_tokens / 1e6 * row["output"], 8)
