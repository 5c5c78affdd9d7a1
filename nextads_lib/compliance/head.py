"""A learned head per text check: logistic regression over the packaged MiniLM's sentence embedding.

The rules of :mod:`nextads_lib.verifier` (lists, patterns, calibrated MiniLM policies) fit the phrasings they were
written from; on a held-out part written by other sessions their recall is 0.45 to 0.80 (``docs/compliance.md``).
This head is the one learned component the embedded default can have: for each text check (safety, privacy,
fairness, copyright) an L2-regularised, class-balanced logistic regression on the 384-d MiniLM embedding of a
text (:mod:`nextads_lib.embed`), fitted on the labelled set's **build split only** (:func:`train`, called by
``scripts/bench_compliance.py --train-head``) and stored in ``head.json`` beside this module with the sha256 of the
build files it was fitted on.

It is a departure from the rules, so it is a switch: ``verifier.THRESHOLDS["learned_head"]`` (0, off, by
default; recorded in every :class:`~nextads_lib.schemas.Verification`'s thresholds). When on, a text whose
probability reaches the head's threshold is a ``learned_head`` finding of that check (minor: revise, never
reject on its own, since the head's precision is below the rules'). The hyper-parameters (C, threshold) were
chosen by fitting on one build part and scoring the other (v1 -> v2 and v2 -> v1), never on the held-out part.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
import re
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

if TYPE_CHECKING:
    from ..schemas import Product

HEAD_PATH = Path(__file__).with_name("head.json")
#: the text checks that have a head
HEAD_CHECKS = ("safety", "privacy", "fairness", "copyright")
#: inverse L2 strength and decision threshold (selected on the build split's two parts, see the module docstring)
C, THRESHOLD = 10.0, 0.5


def own_masked(text: str, product: Product | None) -> str:
    """``text`` with the product's own name and brand (any case, their words joined by spaces, hyphens or nothing,
    as OCR glues them) replaced by "the product": the head judges what is said, not whose name it is, so the
    advertiser's own name never reads as another brand's."""
    if product is None:
        return text
    for name in sorted({product.name, product.brand}, key=len, reverse=True):
        words = [re.escape(w) for w in re.findall(r"[\w']+", name)]
        if words:
            text = re.sub(r"\b" + r"[\s\-_]*".join(words) + r"(?:'s)?\b", "the product", text, flags=re.I)
    return text


def fit_logistic(x: np.ndarray, y: np.ndarray, c: float = C, iters: int = 50) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising ``sum_i s_i * logloss_i + ||w||^2 / (2c)`` by Newton's method, with
    class-balanced sample weights ``s_i = n / (2 * n_class(y_i))`` and the intercept not penalised (the objective
    of a balanced, L2 logistic regression). Deterministic; ``y`` must hold both classes."""
    y = np.asarray(y, np.float64)
    n_pos = float(y.sum())
    if not 0 < n_pos < len(y):
        raise ValueError(f"fit_logistic needs both classes, got {int(n_pos)} positives of {len(y)}")
    s = np.where(y > 0, len(y) / (2 * n_pos), len(y) / (2 * (len(y) - n_pos)))
    xb = np.hstack([np.asarray(x, np.float64), np.ones((len(y), 1))])
    reg = np.full(xb.shape[1], 1.0 / c)
    reg[-1] = 0.0
    w = np.zeros(xb.shape[1])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-(xb @ w)))
        grad = xb.T @ (s * (p - y)) + reg * w
        hess = (xb * (s * p * (1 - p))[:, None]).T @ xb + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w[:-1], float(w[-1])


def train(cases: Sequence[dict[str, Any]], products: dict[str, Product] | None = None, default: str = "", *,
          c: float = C, threshold: float = THRESHOLD) -> dict[str, Any]:
    """The head fitted on the **build** cases of ``cases`` (held-out ones are refused): per check, its own cases
    (the positives and their clean look-alikes), each by its written text with its product's own name masked
    (:func:`own_masked`; ``products`` by id, ``default`` for a case that names none)."""
    from ..embed import MODEL_NAME, embed  # noqa: PLC0415
    from .bench import build_sha256  # noqa: PLC0415

    held = [x["id"] for x in cases if x.get("split") != "build"]
    if held:
        raise ValueError(f"the head is fitted on the build split only; got held-out cases {held[:3]}")
    products = products or {}
    out: dict[str, Any] = {}
    for check in HEAD_CHECKS:
        cs = [x for x in cases if x["check"] == check]
        if not cs:
            raise ValueError(f"no build case for the check '{check}'")
        texts = [own_masked(x["text"], products.get(x.get("product", default))) for x in cs]
        w, b = fit_logistic(embed(texts), np.array([int(x["label"]) for x in cs]), c)
        out[check] = {"coef": [round(float(v), 6) for v in w], "intercept": round(b, 6), "n": len(cs),
                      "positives": sum(int(x["label"]) for x in cs)}
    return {"model": MODEL_NAME, "split": "build", "cases_sha256": build_sha256(), "C": c, "threshold": threshold,
            "fit": "class-balanced L2 logistic regression (Newton), one per check, on that check's build cases, "
                   "the product's own name masked",
            "checks": out}


@lru_cache(maxsize=1)
def load() -> dict[str, Any]:
    """``head.json`` (absent: an error naming the command that writes it)."""
    if not HEAD_PATH.is_file():
        raise FileNotFoundError(f"{HEAD_PATH} is missing: run `python scripts/bench_compliance.py --train-head`")
    return json.loads(HEAD_PATH.read_text())


def probabilities(check: str, texts: Sequence[str], product: Product | None = None) -> np.ndarray:
    """The head's probability that each text is a finding of ``check`` (``product``: whose own name is masked)."""
    from ..embed import embed  # noqa: PLC0415

    if check not in HEAD_CHECKS:
        raise ValueError(f"no learned head for the check '{check}' (heads: {', '.join(HEAD_CHECKS)})")
    if not texts:
        return np.zeros(0)
    h = load()["checks"][check]
    z = embed([own_masked(t, product) for t in texts]).astype(np.float64) @ np.asarray(h["coef"]) + float(h["intercept"])
    return 1.0 / (1.0 + np.exp(-z))


def hits(check: str, texts: Sequence[str], product: Product | None = None) -> list[float | None]:
    """Per text, its probability where it reaches the head's threshold, else None."""
    th = float(load()["threshold"])
    return [float(p) if p >= th else None for p in probabilities(check, texts, product)]


__all__ = ["C", "HEAD_CHECKS", "HEAD_PATH", "THRESHOLD", "fit_logistic", "hits", "load", "own_masked", "probabilities",
           "train"]
