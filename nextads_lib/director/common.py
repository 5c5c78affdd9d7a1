"""What the Director's stages share: the code version of their cache keys, the slot and narration limits,
the errors, the PCI host context, and small helpers over histories, products and colours.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .. import draw as D
from ..config import resolve
from ..schemas import Product, Schema, UserHistory

#: bump when a stage's logic or prompt changes: it is part of every cache key of the Director's stages
CODE_VERSION = "director-6"

#: storyboard length limits (seconds) and slot length limits
MIN_SLOT_S, MAX_SLOT_S = 2.0, 3.0
_EPS = 1e-6
#: narration pace: the Director writes for a natural voice-over (2.5 words per second of slot, 7 words in a
#: 3 s slot); validation refuses a line that could only be rushed through (more than 3 words per second)
NARRATION_WPS, MAX_NARRATION_WPS = 2.5, 3.0


def narration_budget(duration_s: float, words_per_s: float = NARRATION_WPS) -> int:
    """How many words of narration a slot of ``duration_s`` seconds holds at ``words_per_s``."""
    return max(2, int(math.floor(duration_s * words_per_s + _EPS)))


class DirectorError(RuntimeError):
    """A Director stage could not produce a valid artifact; the message names the item and the stage."""

    def __init__(self, item: str, stage: str, reason: str):
        self.item, self.stage, self.reason = item, stage, reason
        super().__init__(f"{item}: {stage}: {reason}")


class StoryboardError(DirectorError):
    """The storyboard failed validation twice (the first answer and its revision)."""

    def __init__(self, item: str, errors: Sequence[str]):
        self.errors = list(errors)
        super().__init__(item, "storyboard", "invalid after one revision: " + "; ".join(self.errors))


class HostContext(Schema):
    """What PCI tells the Director about the host video at the integration point."""

    item_id: str
    topic: str = Field(description="the host's topic (a taxonomy id or free text)")
    summary: str = Field(description="one or two sentences on the host's content at the point")
    frame_path: str = Field(description="PNG of the integration frame")
    timestamp_s: float = Field(ge=0)
    flags_from_plan: bool = Field(True, description="start/return flags are what the plan's slots show (paper "
                                  "protocol); False: set by code, the frames are overwritten (frame_overwrite)")



# ------------------------------------------------------------------------------------------- helpers
def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z][A-Za-z'&-]*", text)


def item_text(item: Any) -> str:
    """Title and text of a history item as one string (what the topic/tone heuristics read)."""
    return f"{item.title}. {item.text}".strip(". ").strip() or item.item_id


def _existing_images(history: UserHistory) -> list[tuple[str, Path]]:
    """(item_id, path) of every history image that exists on disk, in history order."""
    out = []
    for it in history.items:
        for p in it.image_paths:
            rp = resolve(p)
            if rp.is_file():
                out.append((it.item_id, rp))
    return out


def _spread(seq: Sequence[Any], n: int) -> list[Any]:
    """``n`` evenly spread elements of ``seq`` (all of them when it is short)."""
    if len(seq) <= n:
        return list(seq)
    return [seq[int((i + 0.5) * len(seq) / n)] for i in range(n)]


def product_brief(product: Product) -> dict[str, Any]:
    """The product facts a Director may use (no asset paths)."""
    return {
        "id": product.id, "name": product.name, "brand": product.brand, "category": product.category,
        "subcategory": product.subcategory, "description": product.description,
        "selling_points": list(product.selling_points), "slogan": product.slogan, "facts": dict(product.facts),
        "forbidden_claims": list(product.forbidden_claims), "topics": list(product.topics),
        "palette": list(product.palette),
    }


def _hex(c: Sequence[float]) -> str:
    r, g, b = (int(round(float(x))) for x in c[:3])
    return f"#{max(0, min(255, r)):02X}{max(0, min(255, g)):02X}{max(0, min(255, b)):02X}"


def _rgb_arr(hexes: Sequence[str]) -> np.ndarray:
    return np.array([D.hex_to_rgb(h) for h in hexes], np.float32)
