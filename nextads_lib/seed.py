"""The one seed helper: every random draw of the study derives from ``(seed, *keys)``."""

from __future__ import annotations

import hashlib
import os
import random
import sys

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A stable 63-bit seed for ``keys`` under ``seed`` (independent of PYTHONHASHSEED and call order)."""
    h = hashlib.sha256(repr((int(seed), *[str(k) for k in keys])).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def rng(seed: int, *keys: object) -> np.random.Generator:
    """A numpy Generator for one named draw, e.g. ``rng(seed, "sample", "qilin", user_id)``."""
    return np.random.default_rng(derive_seed(seed, *keys))


def seed_everything(seed: int) -> int:
    """Seed python, numpy and (if imported) torch globally; returns the seed for logging."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    torch = sys.modules.get("torch")  # seeded where a model uses it; not imported for this (~3 s)
    if torch is not None:
        torch.manual_seed(seed)
    return seed
