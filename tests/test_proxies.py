"""The offline judge's proxies live in ``nextads_lib/proxies.py`` apart from the Director: the module imports none
of the Director's planning modules (parsed imports, lazy ones included), and the judge's offline handlers call
its functions (the judge re-exports them, so one formula exists once)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np

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
