"""The offline judge's proxies live in ``nextads_lib/proxies.py`` apart from the Director: the module imports none
of the Director's planning modules (parsed imports, lazy ones included), and the judge's offline handlers call
its functions (the judge re-exports them, so one formula exists once)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from nextads_lib import judge, proxies

ROOT = Path(__file__).resolve().parents[1]
#: the Director's heuristics: its stages, the planner, the producer's plan readers, the sample's words
DIRECTOR_MODULES = ("nextads_lib.director", "nextads_lib.planner", "nextads_lib.producer", "nextads_lib.sample",
                    "nextads_lib.sample_vocab", "nextads_lib.reflector", "nextads_lib.evolution")


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = ("nextads_lib." if node.level else "") + (node.module or "")
            out.add(mod.rstrip("."))
            out |= {f"{mod.rstrip('.')}.{a.name}" for a in node.names}
    return out


def test_proxies_import_nothing_of_the_director():
    imps = _imports(ROOT / "nextads_lib" / "proxies.py")
    assert "nextads_lib.embed" in imps  # it does read something: the parser is not blind
    bad = sorted(m for m in imps if m.startswith(DIRECTOR_MODULES))
    assert not bad, f"proxies.py imports the Director's heuristics: {bad}"


def test_proxies_do_not_read_the_directors_taxonomy():
    # the content proxy scores against the history's own interests, not topics.py's coarse topics
    imps = _imports(ROOT / "nextads_lib" / "proxies.py")
    assert not any(m.startswith("nextads_lib.topics") for m in imps), imps
    src = (ROOT / "nextads_lib" / "proxies.py").read_text()
    assert "topic_distribution" not in src and "topic_matrix" not in src and "TOPIC_IDS" not in src
    judge_src = (ROOT / "nextads_lib" / "judge.py").read_text()
    body = judge_src[judge_src.index("def offline_content"):judge_src.index("def offline_product")]
    assert "topic" not in body.replace("topics", "")


def test_the_judge_scores_with_the_proxies_module():
    for name in ("presentation_proxy", "content_proxy", "product_proxy", "seam_continuity", "diversity_proxy",
                 "colour_hist", "bhattacharyya"):
        assert getattr(judge, name) is getattr(proxies, name)
    src = (ROOT / "nextads_lib" / "judge.py").read_text()
    assert "def presentation_proxy" not in src and "def content_proxy" not in src
    earth = np.zeros((4, 24, 24, 3), np.uint8) + np.array([139, 94, 60], np.uint8)
    neon = np.zeros((4, 24, 24, 3), np.uint8) + np.array([255, 46, 136], np.uint8)
    own, _ = proxies.presentation_proxy(list(earth[:2]), earth)
    clash, _ = proxies.presentation_proxy(list(earth[:2]), neon)
    assert own > 9.0 and clash < 5.0


def _drawn(seed: int, w: int = 36, h: int = 48) -> np.ndarray:
    """A small drawn picture with structure (random rectangles and discs in random colours)."""
    from PIL import Image, ImageDraw

    r = np.random.default_rng(seed)
    im = Image.new("RGB", (w * 4, h * 4), tuple(int(x) for x in r.integers(0, 255, 3)))
    d = ImageDraw.Draw(im)
    for _ in range(14):
        x0, y0 = int(r.integers(0, w * 4)), int(r.integers(0, h * 4))
        box = (x0, y0, x0 + int(r.integers(12, 60)), y0 + int(r.integers(12, 60)))
        fill = tuple(int(x) for x in r.integers(0, 255, 3))
        (d.ellipse if r.random() < 0.5 else d.rectangle)(box, fill=fill)
    return np.asarray(im.resize((w, h), Image.Resampling.LANCZOS))


def _paste(history: np.ndarray, background: np.ndarray, scale: float = 2.2, at: tuple[int, int] = (20, 0)):
    """``background`` (54, 96, 3) with the central half of ``history`` (48 x 36: rows 12-36, columns 6-30, which
    holds its middle third) resized by ``scale`` pasted at ``at``; returns the frame and the pasted box."""
    import cv2

    crop = history[12:36, 6:30]
    c = cv2.resize(crop, (int(crop.shape[1] * scale), int(crop.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    f = background.copy()
    x, y = at
    f[y:y + c.shape[0], x:x + c.shape[1]] = c
    return f, (x, y, x + c.shape[1], y + c.shape[0])


def test_copied_mask_finds_a_pasted_crop_of_the_history_and_nothing_else():
    hist = [_drawn(1), _drawn(2)]
    grey = np.full((54, 96, 3), 90, np.uint8)
    f, (x0, y0, x1, y1) = _paste(hist[0], grey)
    other = _drawn(7, 96, 54)
    m = proxies.copied_mask(hist, np.stack([f, other, f]))
    inside = m[0, y0:y1, x0:x1].mean()
    outside = m[0].sum() - m[0, y0:y1, x0:x1].sum()
    assert inside > 0.3 and outside < 0.1 * m[0].sum() + 1
    assert m[1].mean() < 0.02 and np.array_equal(m[0], m[2])


def test_presentation_does_not_count_pasted_history_pixels(monkeypatch):
    # a creative that pastes crops of the history on a clashing background: the copies are left out, so it
    # scores lower than when they count, and lower than the history's own colours without any copy
    hist = [_drawn(3), _drawn(4)]
    own_bg = np.stack([np.resize(h[::2, ::2].reshape(-1, 3), (54 * 96, 3)).reshape(54, 96, 3) for h in hist])
    clash = np.zeros((54, 96, 3), np.uint8) + np.array([10, 240, 40], np.uint8)
    pasted = np.stack([_paste(hist[0], clash)[0], _paste(hist[1], clash, at=(30, 1))[0]])
    own, _ = proxies.presentation_proxy(hist, own_bg)
    cp, t = proxies.presentation_proxy(hist, pasted)
    monkeypatch.setattr(proxies, "COPY_THRESHOLD", 1.01)  # nothing is a copy: the pasted pixels count
    counted, t_counted = proxies.presentation_proxy(hist, pasted)
    assert t["copied"] > 0.1 and t_counted["copied"] == 0.0
    assert counted > cp + 0.3 and own > cp + 1.0


def test_presentation_takes_a_given_copied_mask():
    # the exact mask of the pasted pixels (what scripts/bench_copy_mask.py passes) replaces the detector's: with
    # the pasted history pixels left out, only the clashing background is compared, and the score falls
    hist = [_drawn(3), _drawn(4)]
    clash = np.zeros((54, 96, 3), np.uint8) + np.array([10, 240, 40], np.uint8)
    frames = np.stack([clash.copy(), clash.copy()])
    frames[:, 10:40, 20:50] = hist[0][:30, :30]
    exact = np.zeros(frames.shape[:3], bool)
    exact[:, 10:40, 20:50] = True
    none, t_none = proxies.presentation_proxy(hist, frames, copied=np.zeros_like(exact))
    masked, t = proxies.presentation_proxy(hist, frames, copied=exact)
    assert t_none["copied"] == 0.0 and abs(t["copied"] - exact.mean()) < 1e-9
    assert none > masked + 0.5
    # about what the background alone scores (the paste's edge still counts in the look statistics' gradients)
    assert abs(masked - proxies.presentation_proxy(hist, clash[None].repeat(2, 0))[0]) < 0.1
    with pytest.raises(ValueError, match="shape"):
        proxies.presentation_proxy(hist, frames, copied=exact[:1])
