"""The learned compliance head (``nextads_lib.compliance.head``): its fit, its provenance and what it flags."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from nextads_lib import embed
from nextads_lib.compliance import bench, head
from nextads_lib.compliance.text import TextUnit


def _objective(wb: np.ndarray, x: np.ndarray, y: np.ndarray, c: float) -> float:
    s = np.where(y > 0, len(y) / (2 * y.sum()), len(y) / (2 * (len(y) - y.sum())))
    z = x @ wb[:-1] + wb[-1]
    return float(np.sum(s * (np.logaddexp(0, z) - y * z)) + wb[:-1] @ wb[:-1] / (2 * c))


def test_fit_logistic_minimises_the_balanced_l2_objective():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5))
    y = (x[:, 0] - 0.5 * x[:, 1] + rng.normal(scale=0.8, size=120) > 0.6).astype(int)  # unbalanced classes
    w, b = head.fit_logistic(x, y, c=2.0)
    ref = minimize(_objective, np.zeros(6), args=(x, y, 2.0), method="BFGS", options={"gtol": 1e-10})
    assert np.allclose(np.r_[w, b], ref.x, atol=1e-4)
    assert _objective(np.r_[w, b], x, y, 2.0) <= ref.fun + 1e-9
    assert w[0] > 0 > w[1]  # the direction of the generating rule


def test_fit_logistic_needs_both_classes():
    with pytest.raises(ValueError, match="both classes"):
        head.fit_logistic(np.ones((4, 2)), np.ones(4))


def test_the_shipped_head_is_the_fit_of_the_build_split():
    h = head.load()
    assert h["split"] == "build" and h["cases_sha256"] == bench.build_sha256() and h["model"] == embed.MODEL_NAME
    assert (h["C"], h["threshold"]) == (head.C, head.THRESHOLD) and set(h["checks"]) == set(head.HEAD_CHECKS)
    build = bench.load_cases(splits=("build",))
    ctx = bench.load_context()
    refit = head.train([c for c in build if c["check"] == "fairness"] + [c for c in build if c["check"] != "fairness"],
                       ctx["products"], ctx["default"])
    for check in head.HEAD_CHECKS:
        stored = h["checks"][check]
        assert stored["n"] == sum(c["check"] == check for c in build) == refit["checks"][check]["n"]
        assert np.allclose(stored["coef"], refit["checks"][check]["coef"], atol=1e-5)
        assert len(stored["coef"]) == embed.DIM


def test_the_head_is_never_fitted_on_held_out_cases():
    case = {"id": "v4-safety-001", "check": "safety", "label": 1, "text": "x", "split": "heldout"}
    with pytest.raises(ValueError, match="build split only"):
        head.train([case])


def test_the_head_flags_paraphrases_and_passes_clean_copy():
    assert head.hits("safety", ["Turns your metabolism into a furnace."])[0] is not None
    assert head.hits("fairness", ["Built for women who have given up on their bodies."])[0] is not None
    assert head.hits("safety", ["Freshly roasted beans, shipped every Monday."]) == [None]
    with pytest.raises(ValueError, match="no learned head for the check 'disclosure'"):
        head.probabilities("disclosure", ["x"])


def test_learned_findings_skip_texts_already_found_and_the_composition():
    from nextads_lib import verifier as V

    claim = "Turns your metabolism into a furnace."
    units = [TextUnit("on_screen_text", claim, 0, 0.0, 2.0), TextUnit("composition", claim, 0, 0.0, 2.0)]
    found = V.learned_violations("safety", units)
    assert len(found) == 1 and found[0].evidence.field == "on_screen_text" and found[0].rule == "learned_head"
    assert V.learned_violations("safety", units, found) == []


def test_bench_rows_score_both_settings_in_one_pass():
    ctx = bench.load_context()
    build = {c["text"]: c for c in bench.load_cases(splits=("build",))}
    case = build["Turns your metabolism into a furnace."]
    row = bench.run_case(case, ctx, None)
    assert (row["flagged"], row["flagged_learned"]) == (0, 1)
    s_rules, s_head = (bench.scores([row], learned=x)[0] for x in (False, True))
    assert (s_rules["fn"], s_head["tp"]) == (1, 1)


def test_the_products_own_name_is_masked_in_any_notation():
    morrow = bench.load_context()["products"]["morrow-coffee"]  # name "Morrow House Roast", brand "Morrow Roast"
    assert head.own_masked("Wake up to Morrow House Roast.", morrow) == "Wake up to the product."
    assert head.own_masked("MORROWHOUSE ROAST'S finish", morrow) == "the product finish"
    assert head.own_masked("morrow-roast fans", morrow) == "the product fans"
    assert head.own_masked("See you tomorrow", morrow) == "See you tomorrow"  # whole words only
    assert head.own_masked("Wake up to Morrow House Roast.", None) == "Wake up to Morrow House Roast."


def test_the_products_own_copy_is_not_judged_by_the_head():
    """The copyright head reads a spec line as a brand (probability about 0.99): verbatim own copy, also glued by
    OCR, is the advertiser's material and gets no finding; the same words on another product's ad do."""
    from nextads_lib import verifier as V

    ctx = bench.load_context()
    earbuds, coffee = ctx["products"]["sonetto-earbuds"], ctx["products"]["morrow-coffee"]
    line = "Sweat-resistant secure fit (IPX5)"
    assert line in earbuds.selling_points and head.hits("copyright", [line], earbuds)[0] is not None
    plan_unit = TextUnit("on_screen_text", line, 0, 0.0, 2.0)
    ocr_unit = TextUnit("frame", "SWEAT-RESISTANTSECURE FIT(IPX5)", 0, 0.0, 2.0, source="frames", frame_index=3)
    assert V.learned_violations("copyright", [plan_unit, ocr_unit], product=earbuds) == []
    assert len(V.learned_violations("copyright", [plan_unit, ocr_unit], product=coffee)) == 2


def test_the_lines_of_one_frame_are_read_together():
    from nextads_lib import verifier as V

    lines = [TextUnit("frame", t, 1, 2.0, 2.0, source="frames", frame_index=7)
             for t in ("Turns your", "metabolism", "into a furnace")]
    found = V.learned_violations("safety", lines)
    assert len(found) == 1 and found[0].evidence.context == "Turns your metabolism into a furnace"
    assert found[0].evidence.frame_index == 7 and found[0].evidence.field == "frame"
