"""Reading the text of rendered frames: RapidOCR (``rapidocr-onnxruntime``; its wheel carries the PP-OCRv4
detection and recognition ONNX models, so it runs offline on the CPU with onnxruntime, nothing downloaded).

Kept cheap: the Verifier reads a few frames per creative (one per slot), the detector works on the frame scaled
so that its longer side is :data:`DET_SIDE` pixels, the angle classifier is off (burned-in text is upright),
and results are cached by the video's bytes and the frame indices (``store.Cache``), so a re-verification of an
unchanged video costs nothing. The label is read by the recogniser alone on its known box (:func:`read_line`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..media import read_frames
from ..store import content_key, file_digest

#: bump when the engine, its settings or the line format change (part of the cache key)
OCR_VERSION = "ocr-2 rapidocr-onnxruntime PP-OCRv4 det320 nocls recbatch1"
#: lines recognised per batch: 1 (each line at its own width) costs 25% less CPU than RapidOCR's default 6,
#: which pads every line of a batch to the widest (scripts/bench_unplanned.py prints the seconds)
REC_BATCH = 1
#: the detector's input: the frame scaled so that its longer side is this many pixels
DET_SIDE = 320
#: lines read with less confidence than this are dropped
MIN_SCORE = 0.5
ENGINE_NAME = "RapidOCR (rapidocr-onnxruntime, PP-OCRv4 ONNX models shipped in the wheel)"
_LOCK = threading.Lock()


class OcrUnavailable(RuntimeError):
    """The OCR package is not installed."""


@dataclass(frozen=True)
class OcrLine:
    text: str
    score: float
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the frame


@lru_cache(maxsize=1)
def _engine() -> Any:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        from rapidocr_onnxruntime import RapidOCR  # noqa: PLC0415
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise OcrUnavailable("rapidocr-onnxruntime is not installed (pip install rapidocr-onnxruntime)") from e
    import logging  # noqa: PLC0415

    eng = RapidOCR(det_limit_side_len=DET_SIDE, det_limit_type="max", intra_op_num_threads=1,
                   inter_op_num_threads=1, rec_batch_num=REC_BATCH)
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return eng


def available() -> bool:
    try:
        _engine()
    except Exception:  # noqa: BLE001
        return False
    return True


def read_text(frame: np.ndarray) -> list[OcrLine]:
    """Every text line in an RGB frame, top to bottom."""
    eng = _engine()
    bgr = np.ascontiguousarray(np.asarray(frame, np.uint8)[..., ::-1])
    with _LOCK:
        res, _ = eng(bgr, use_det=True, use_cls=False, use_rec=True)
    out = []
    for box, text, score in res or []:
        pts = np.asarray(box, np.float32)
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        if float(score) >= MIN_SCORE and str(text).strip():
            out.append(OcrLine(str(text), round(float(score), 4), (int(x0), int(y0), int(x1), int(y1))))
    return sorted(out, key=lambda l: (l.box[1], l.box[0]))


def read_line(crop: np.ndarray) -> tuple[str, float]:
    """The recogniser alone on a crop holding one line of text (e.g. the label's box): (text, confidence)."""
    eng = _engine()
    bgr = np.ascontiguousarray(np.asarray(crop, np.uint8)[..., ::-1])
    with _LOCK:
        res, _ = eng(bgr, use_det=False, use_cls=False, use_rec=True)
    if not res:
        return "", 0.0
    text, score = res[0][0], res[0][1]
    return str(text), float(score)


def video_text(video: str | os.PathLike[str], indices: list[int], cache: Any = None) -> dict[int, list[OcrLine]]:
    """OCR of the given frames of ``video``; cached (``cache``: a :class:`nextads_lib.store.Cache`) under the
    video's bytes, the indices and :data:`OCR_VERSION`."""
    video = Path(video)
    key = content_key("ocr", OCR_VERSION, file_digest(video), list(indices))
    if cache is not None:
        hit = cache.get_json("ocr", key)
        if hit is not None:
            return {int(k): [OcrLine(d["text"], d["score"], tuple(d["box"])) for d in v] for k, v in hit.items()}
    frames = read_frames(video, indices)
    out = {int(i): read_text(fr) for i, fr in zip(indices, frames)}
    if cache is not None:
        cache.put_json("ocr", key, {str(k): [asdict(x) for x in v] for k, v in out.items()})
    return out


def image_text(path: str | os.PathLike[str], cache: Any = None) -> list[str]:
    """The text lines of an image file (a grounding asset: a user's photo, a product image, a logo), cached under
    the file's bytes and :data:`OCR_VERSION`. Text a recorded asset carries is not text the Producer invented."""
    from PIL import Image  # noqa: PLC0415

    path = Path(path)
    key = content_key("ocr_image", OCR_VERSION, file_digest(path))
    if cache is not None:
        hit = cache.get_json("ocr", key)
        if hit is not None:
            return list(hit["lines"])
    with Image.open(path) as im:
        arr = np.asarray(im.convert("RGB"))
    lines = [ln.text for ln in read_text(arr)]
    if cache is not None:
        cache.put_json("ocr", key, {"lines": lines})
    return lines


__all__ = ["DET_SIDE", "image_text", "ENGINE_NAME", "MIN_SCORE", "OCR_VERSION", "OcrLine", "OcrUnavailable", "available",
           "read_line", "read_text", "video_text"]
