"""The labelled compliance set run through the Verifier's own checks.

Each case names a check (``safety``, ``privacy``, ``fairness``, ``copyright``, ``disclosure``, ``unplanned``),
its expected outcome (``label`` 1: the check must flag it; 0: a clean look-alike it must pass), where the
text is (``plan``: a text of the plan; ``frame``: drawn into a frame and read back by OCR, the plan being
clean; ``video``: a rendered clip for the label checks) and its split. The set has two parts:

- the ``build`` split, used to write the checks, calibrate their thresholds and fit the learned head
  (:func:`build_paths`): ``tests/data/compliance/cases.jsonl`` (:func:`cases_path`), the first 991 cases,
  including the v1 held-out third (marked ``"split_v1": "heldout"``), ``cases_v2.jsonl``, the 550 cases of the v2
  held-out part (marked ``"split_v2": "heldout"``), and ``cases_v3.jsonl``, the 996 cases of the v3 held-out part
  (``"split_v3": "heldout"``); each part moved to build once developers had read its errors.
- ``tests/data/compliance/heldout_v4.jsonl`` (:func:`heldout_path`): the ``heldout`` split (ids ``v4-...``),
  written by other sessions without sight of the checks' changes; only reported, never used to change a check.
  It may be absent from a checkout: then only the build split can be loaded.

:func:`split_of` is the split as a function of the id. The context (product, user history) is ``context.json``.
:func:`evaluate` gives one row per case; :func:`scores` precision and recall per check and split;
:func:`calibrate` the MiniLM policy thresholds from the build split only.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..config import AI_LABEL, DEFAULT_PRODUCTS_DIR, project_root
from . import text as T



def cases_path() -> Path:
    """``tests/data/compliance/cases.jsonl`` of the project (a source checkout): the build part."""
    return project_root() / "tests" / "data" / "compliance" / "cases.jsonl"


def build_paths() -> list[Path]:
    """The files of the build split: ``cases.jsonl`` (v1, both its former splits), ``cases_v2.jsonl`` (v2) and
    ``cases_v3.jsonl`` (v3)."""
    return [cases_path(), cases_path().with_name("cases_v2.jsonl"), cases_path().with_name("cases_v3.jsonl")]


def heldout_path() -> Path:
    """``tests/data/compliance/heldout_v4.jsonl``: the held-out part (v4)."""
    return cases_path().with_name("heldout_v4.jsonl")


#: ids of the held-out part start with this; every other case is build
HELDOUT_PREFIX = "v4-"


def split_of(case_id: str) -> str:
    """``heldout`` for a case of the held-out v4 part, else ``build`` (the v1, v2 and v3 held-out parts included:
    they were read)."""
    return "heldout" if case_id.startswith(HELDOUT_PREFIX) else "build"


CHECKS = ("safety", "privacy", "fairness", "copyright", "disclosure", "unplanned")
TEXT_CHECKS = ("safety", "privacy", "fairness", "copyright")
#: which semantic policies feed which check
POLICY_OF: dict[str, tuple[str, ...]] = {"fairness": ("targeting",), "safety": ("claims", "unsafe")}
FRAME = (360, 640)


def load_cases(path: str | Path | None = None, *, splits: tuple[str, ...] = ("build", "heldout")
               ) -> list[dict[str, Any]]:
    """The cases of ``path`` (whatever their split), or, when ``path`` is None, those of ``splits``: the build files,
    then the held-out file; the held-out file is read only when ``splits`` asks for it (missing, it raises
    FileNotFoundError). A case whose stored ``split`` is not :func:`split_of` its id is an error (a part edited by
    hand into the wrong split)."""
    if path:
        paths = [Path(path)]
    else:
        paths = (build_paths() if "build" in splits else []) + ([heldout_path()] if "heldout" in splits else [])
    cases = [json.loads(ln) for p in paths for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
    bad = [c["id"] for c in cases if c.get("split") != split_of(c["id"])]
    if bad:
        raise ValueError(f"cases in the wrong split: {bad[:5]}")
    return cases


def load_context(path: str | Path | None = None) -> dict[str, Any]:
    from ..products import load_library  # noqa: PLC0415
    from ..schemas import UserHistory  # noqa: PLC0415

    p = Path(path) if path else cases_path().with_name("context.json")
    d = json.loads(p.read_text(encoding="utf-8"))
    lib = load_library(DEFAULT_PRODUCTS_DIR)
    return {"library": lib, "products": {x.id: x for x in lib.products}, "default": d["default_product"],
            "history": UserHistory.model_validate(d["history"])}


def _background(key: str, w: int, h: int, kind: str = "") -> np.ndarray:
    rng = np.random.default_rng(int(hashlib.sha1(key.encode()).hexdigest()[:8], 16))
    if kind == "bright":
        return np.full((h, w, 3), 235, np.uint8)
    if kind == "noise":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    y = np.linspace(0, 1, h)[:, None, None]
    c0, c1 = rng.integers(30, 200, 3), rng.integers(30, 200, 3)
    return np.broadcast_to((c0 * (1 - y) + c1 * y).astype(np.uint8), (h, w, 3)).copy()


def render_frame(key: str, lines: list[str], size: tuple[int, int] = FRAME) -> np.ndarray:
    """A frame with ``lines[0]`` as the headline, ``lines[1]`` (if any) as a subtitle and any further lines as
    subtitle-style cards stacked down from the middle of the frame, labelled. A line that does not fit in the frame
    is an error naming it (never dropped in silence)."""
    from ..producer import post  # noqa: PLC0415

    w, h = size
    fr = _background(key, w, h)
    layers = [post.headline_layer(lines[0], w, h) if lines and lines[0] else None,
              post.subtitle_layer(lines[1], w, h) if len(lines) > 1 and lines[1] else None]
    sub_top = layers[1].y0 if layers[1] is not None else h
    y = int(0.42 * h)
    for ln in lines[2:]:
        lay = post.subtitle_layer(ln, w, h) if ln else None
        if lay is None:
            continue
        lay = dataclasses.replace(lay, y0=y)
        if lay.box[3] > sub_top:
            raise ValueError(f"frame '{key}': the line {ln!r} does not fit between the middle and the subtitle")
        layers.append(lay)
        y = lay.box[3] + 4
    for lay in layers:
        if lay is not None:
            fr = lay.apply(fr)
    return post.burn_label(fr)


def _frame_units(key: str, lines: list[str]) -> list[T.TextUnit]:
    from ..verifier import in_label  # noqa: PLC0415
    from .ocr import read_text  # noqa: PLC0415

    fr = render_frame(key, lines)
    h, w = fr.shape[:2]
    return [T.TextUnit("frame", ln.text, 0, 0.0, 0.2, source="frames", frame_index=0)
            for ln in read_text(fr) if not in_label(ln.box, w, h)]


def _spec(text: str) -> dict[str, str]:
    return dict(kv.split("=", 1) for kv in text.split(";") if "=" in kv)


def render_label_clip(case: dict[str, Any], out: Path, fps: float = 4.0, seconds: float = 3.0) -> Path:
    """A short clip for a disclosure case: ``label=<text>`` (empty: none), ``size=WxH``, ``scale=<font share>``,
    ``from=<s>``/``to=<s>`` (when the label shows), ``bg=bright|noise``."""
    from ..media import write_video  # noqa: PLC0415
    from ..producer import post  # noqa: PLC0415

    sp = _spec(case["text"])
    w, h = (int(x) for x in sp.get("size", "360x640").split("x"))
    bg = _background(case["id"], w, h, sp.get("bg", ""))
    text = sp.get("label", AI_LABEL)
    share = float(sp.get("scale", post.LABEL_FONT_SHARE))
    t_from, t_to = float(sp.get("from", 0)), float(sp.get("to", 1e9))
    frames = []
    for k in range(int(round(seconds * fps))):
        t = k / fps
        fr = bg.copy()
        if text and t_from <= t < t_to:
            fr = post._label_card(w, h, text, share).apply(fr)
        frames.append(fr)
    write_video(out, frames, fps)
    return out


def case_units(case: dict[str, Any]) -> list[T.TextUnit]:
    if case["where"] == "frame":
        return _frame_units(case["id"], [case["text"]])
    return [T.TextUnit("on_screen_text", case["text"], 0, 0.0, 2.0)]


def run_case(case: dict[str, Any], ctx: dict[str, Any], tmp: Path) -> dict[str, Any]:
    """The check of ``case`` run by the Verifier's code; ``flagged`` and the rules that fired."""
    from .. import verifier as V  # noqa: PLC0415

    product = ctx["products"][case.get("product", ctx["default"])]
    check = case["check"]
    units: list[T.TextUnit] = []
    if check == "disclosure":
        clip = render_label_clip(case, tmp / f"{case['id']}.mp4")
        viol = V.check_disclosure(None, clip).violations
    elif check == "unplanned":
        sp = _spec(case["text"])
        units = _frame_units(case["id"], sp.get("frame", "").split("|"))
        viol = V.unplanned_text([sp.get("plan", "")], units, product)
    else:
        units = case_units(case)
        if check == "safety":
            viol = V.check_safety(None, product, units).violations
        elif check == "privacy":
            viol = [v for v in V.check_privacy(None, product, ctx["history"], None, units).violations
                    if v.rule == "personal_data"]
        elif check == "fairness":
            viol = V.check_fairness(None, product, units).violations
        elif check == "copyright":
            viol = [v for v in V.check_copyright(None, product, ctx["library"], None, None, units).violations
                    if v.rule == "other_brand"]
        else:
            raise ValueError(f"case {case['id']}: unknown check '{check}'")
    # the learned head (switch ``learned_head``): its findings counted apart, so one pass scores both settings
    learned = V.learned_violations(check, units, viol, product) if check in TEXT_CHECKS else []
    return {"id": case["id"], "check": check, "split": case["split"], "kind": case.get("kind", ""),
            "where": case["where"], "label": int(case["label"]), "flagged": int(bool(viol)),
            "flagged_learned": int(bool(viol or learned)), "rules": sorted({v.rule for v in viol}),
            "read": " | ".join(u.text for u in units if u.ocr), "text": case["text"]}


def evaluate(cases: list[dict[str, Any]] | None = None, *, splits: tuple[str, ...] = ("build", "heldout"),
             ctx: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """One row per case of ``splits``, the checks as shipped (calibrated thresholds included)."""
    cases = load_cases(splits=splits) if cases is None else cases
    ctx = ctx or load_context()
    with tempfile.TemporaryDirectory() as td:
        return [run_case(c, ctx, Path(td)) for c in cases if c["split"] in splits]


def scores(rows: list[dict[str, Any]], *, learned: bool = False) -> list[dict[str, Any]]:
    """Precision and recall per check and split (a check with no positive prediction has precision 1.0 when it
    also has no positive case, else 0.0); ``learned``: with the learned head's findings (``flagged_learned``)."""
    key = "flagged_learned" if learned else "flagged"
    out = []
    for split in sorted({r["split"] for r in rows}):
        for check in CHECKS:
            rs = [r for r in rows if r["split"] == split and r["check"] == check]
            if not rs:
                continue
            tp = sum(r["label"] and r[key] for r in rs)
            fp = sum((not r["label"]) and r[key] for r in rs)
            fn = sum(r["label"] and not r[key] for r in rs)
            tn = len(rs) - tp - fp - fn
            out.append({"split": split, "check": check, "n": len(rs), "positives": tp + fn, "tp": tp, "fp": fp,
                        "fn": fn, "tn": tn, "precision": round(tp / (tp + fp), 3) if tp + fp else (1.0 if not tp + fn else 0.0),
                        "recall": round(tp / (tp + fn), 3) if tp + fn else 1.0})
    return out


def clean_copy(ctx: dict[str, Any]) -> list[str]:
    """Ad copy that is clean by construction: every shipped product's slogan, description and selling points
    (each the product's own claims, none addressed to a protected group)."""
    out = []
    for p in ctx["library"].products:
        out += [p.slogan, p.description, *p.selling_points]
    return out


def calibrate(cases: list[dict[str, Any]] | None = None, ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    """MiniLM policy thresholds from the BUILD split only. A policy's clean texts are every build case that is
    not a positive of the policy's check (a privacy or brand case makes no health claim and targets no group)
    and the library's own copy (:func:`clean_copy`); the threshold is the lowest that keeps all of them under
    it (their highest similarity + 0.01), so the policy adds recall without a false positive on the build
    data. The rules alone are run with the policies off to count what the policy recovers."""
    cases = [c for c in (load_cases(splits=("build",)) if cases is None else cases) if c["split"] == "build"]
    ctx = ctx or load_context()
    T.OVERRIDE = {"thresholds": {}}
    try:  # the text checks only: the policies feed no disclosure or unplanned-text case
        rows = {r["id"]: r for r in evaluate([c for c in cases if c["check"] in TEXT_CHECKS], splits=("build",), ctx=ctx)}
    finally:
        T.OVERRIDE = None
    text_cases = [c for c in cases if c["where"] in ("plan", "frame") and c["check"] in TEXT_CHECKS]
    texts = {c["id"]: (" ".join(u.text for u in case_units(c)) if c["where"] == "frame" else c["text"])
             for c in text_cases}
    copy = clean_copy(ctx)
    th: dict[str, float] = {}
    detail: dict[str, Any] = {}
    for check, policy in ((c, p) for c, ps in POLICY_OF.items() for p in ps):
        ids = [c["id"] for c in text_cases]
        sc = dict(zip(ids, (s[0] for s in T.semantic_scores(policy, [texts[i] for i in ids]))))
        copy_sc = [s[0] for s in T.semantic_scores(policy, copy)]
        clean = [sc[c["id"]] for c in text_cases if not (c["check"] == check and c["label"])
                 and not (c["check"] == check and rows[c["id"]]["flagged"])]
        neg_max = max(clean + copy_sc, default=0.0)
        t = round(float(neg_max) + 0.01, 3)
        missed = [sc[c["id"]] for c in text_cases if c["check"] == check and c["label"] and not rows[c["id"]]["flagged"]]
        th[policy] = t
        detail[policy] = {"check": check, "threshold": t, "clean_texts": len(clean) + len(copy_sc),
                          "max_clean_similarity": round(float(neg_max), 4), "rule_misses": len(missed),
                          "recovered": int(sum(s >= t for s in missed))}
    from ..embed import MODEL_NAME  # noqa: PLC0415

    return {"thresholds": th, "detail": detail, "split": "build", "model": MODEL_NAME,
            "cases_sha256": build_sha256(),
            "rule": "lowest threshold keeping every clean build text and the library's own copy under it "
                    "(their highest similarity + 0.01)"}


def build_sha256() -> str:
    """sha256 of the build split's files, concatenated in :func:`build_paths` order (what a calibration was made on)."""
    return hashlib.sha256(b"".join(p.read_bytes() for p in build_paths())).hexdigest()


def cached_evaluate(cache: Any, splits: tuple[str, ...] = ("build", "heldout")) -> list[dict[str, Any]]:
    """:func:`evaluate` kept in ``cache`` (a :class:`nextads_lib.store.Cache`) under the set, its context, the
    calibration and the code of the checks, so a notebook rerun costs nothing."""
    from .. import verifier as V  # noqa: PLC0415
    from ..store import content_key  # noqa: PLC0415
    from .ocr import OCR_VERSION  # noqa: PLC0415

    here = Path(__file__).parent
    parts = [p for p in [*build_paths(), heldout_path()] if p.is_file() or "heldout" in splits]
    key = content_key("compliance_bench", V.CODE_VERSION, OCR_VERSION, list(splits), *parts,
                      cases_path().with_name("context.json"), T.CALIBRATION_PATH, here / "head.json", here / "text.py",
                      here / "head.py", here / "bench.py",
                      Path(V.__file__))
    hit = cache.get_json("compliance_bench", key)
    if hit is not None:
        return hit["rows"]
    rows = evaluate(splits=splits)
    cache.put_json("compliance_bench", key, {"rows": rows})
    return rows


__all__ = ["build_paths", "build_sha256", "cached_evaluate", "CHECKS", "calibrate", "case_units", "clean_copy", "cases_path", "evaluate", "heldout_path", "HELDOUT_PREFIX", "split_of", "load_cases", "load_context", "render_frame",
           "render_label_clip", "run_case", "scores"]
