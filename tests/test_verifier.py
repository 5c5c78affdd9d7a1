"""The Verifier on real tiny creatives: a clean creative passes every compliance check; planted violations (a
leaked handle on screen, a name in the narration, a claim the product may not make, an unsupported number, a
competitor's brand, wording that targets a protected attribute, an unlicensed asset, a creative rendered
without the "AI Created" label, on-screen text that was never burned in) are each caught by the right check
with the right evidence; the decision thresholds; the utility adapter over stand-ins and the real judge."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nextads_lib import media, pcg
from nextads_lib import verifier as V
from nextads_lib.compliance import text as T
from nextads_lib.producer import edit, post
from nextads_lib.schemas import Grounding, GroundingSource, ProductLibrary, Storyboard, UserHistory
from nextads_lib.store import read_jsonl, read_model, write_json

from test_pcg import TINY, make_bench  # noqa: E402  (shared small fixtures)

#: 7 s at 5 fps: three slots (hook, body, cta) of 2.33 s
TINY7 = {**TINY, "duration_s": 7.0}
RUN = "nextads__offline__compositor__paper"  # the run tiny_run makes (paper protocol)
PAIR = "u_coffee__brewco-beans"


def stub_judge(score: float = 7.0):
    def judge(criterion, pair_dir, *, task, product, history, backend, n_frames=8):
        return SimpleNamespace(criterion=criterion, score=score, rationale="stub", backend="stub", proxy=True,
                               label=f"{criterion} (proxy: stub)", error=None)
    return judge


def stub_vq(ms=0.95, aq=0.55, iq=0.6):
    def vq(video_path, backend="offline", cache=None):
        return SimpleNamespace(video_path=str(video_path), backend="stub", proxy=True, ms=ms, dd=0.3, aq=aq, iq=iq,
                               labels={"ms": "MS (proxy: stub)", "aq": "AQ (proxy: stub)", "iq": "IQ (proxy: stub)"},
                               n_frames=1, fps=5.0, error=None)
    return vq


def stub_utility(paths, score=7.0):
    return V.UtilityAdapter("offline", "offline", paths.cache, judge_fn=stub_judge(score), vq_fn=stub_vq())


def tiny_run(root: Path):
    paths = make_bench(root)
    s = pcg.run_pcg(paths, "nextads", "offline", "compositor", workers=1, progress=False, limit_users=1, **TINY7)
    assert s.failed == 0
    return paths


def inputs(paths, pair=PAIR):
    lib = read_model(paths.library_json, ProductLibrary)
    users = {u.user_id: u for u in read_jsonl(paths.bench_users("pcg"), UserHistory)}
    uid, pid = pair.split("__")
    return lib.get(pid), users[uid], lib


def plant(paths, name: str, pair=PAIR, **slot_updates) -> Path:
    """A copy of ``pair`` with slot texts replaced (``s<i>_<field>=text``, ``hook=``, ``cta=``), the changed slots
    re-rendered so that the video shows what the plan says."""
    src = paths.run_dir("pcg", RUN) / pair
    dst = paths.run_dir("pcg", RUN) / f"{pair.split('__')[0]}__{name}"
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("verify", "released.json"))
    m = json.loads((dst / "manifest.json").read_text())
    m["pair_id"] = dst.name
    write_json(dst / "manifest.json", m)
    plan = read_model(dst / "plan.json", Storyboard)
    slots = {s.index: s for s in plan.slots}
    upd: dict = {}
    changed = set()
    for k, v in slot_updates.items():
        if k in ("hook", "cta"):
            upd[k] = v
            changed.add(max(slots) if k == "cta" else min(slots))
            continue
        i, field = int(k[1]), k[3:]
        slots[i] = slots[i].model_copy(update={field: v})
        changed.add(i)
    plan = plan.model_copy(update={**upd, "slots": [slots[i] for i in sorted(slots)]})
    write_json(dst / "plan.json", plan)
    req, man = edit.producer_request(dst)
    edit.edit_slots(src / "creative.mp4", req, sorted(changed), dst / "creative.mp4", edit.producer_for(man, paths.cache))
    return dst


def write_unlabelled(pair_dir: Path, out: Path) -> None:
    """The creative rendered through the post step's lower-level pieces WITHOUT the label layer."""
    from nextads_lib.producer.compositor import camera_source, canvas

    req, man = edit.producer_request(pair_dir)
    prod = edit.producer_for(man)
    w, h = prod.size(req)
    pal = prod.palette(req)
    sb = req.storyboard
    spans = post.slot_spans(sb, req.fps)
    frames = []
    for sp in spans:
        imgs = [prod.load(req, p, "img") for p in prod.slot_images(req, sp.slot)]
        src = camera_source(canvas(imgs, w, h, pal, sp.index), w, h, sp.slot.camera)
        layers = post.slot_layers(sb, sp, len(spans), w, h, post.palette_accent(pal))
        for k in range(sp.n):
            fr = src(k, sp.n).copy()
            for lay in layers:
                lay.apply(fr)
            frames.append(fr)
    media.write_video(out, frames, req.fps)


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("verify_data"))


def verify(paths, d: Path, utility=None):
    product, history, lib = inputs(paths)
    return V.verify_creative(d, pair_id=d.name, task="pcg", run=RUN, product=product, history=history, library=lib,
                             utility=utility)


def only(ver, check, frames: bool = False):
    """The violations of ``check``: those found in the plan's texts (``frames=False``) or in what OCR read in the
    rendered frames (``frames=True``)."""
    return [v for v in ver.violations if v.check == check and (v.evidence.field == "frame") == frames]


# --------------------------------------------------------------------------------------------- clean
def test_clean_creative_passes_every_check_and_is_accepted(paths):
    d = paths.run_dir("pcg", RUN) / PAIR
    ver = verify(paths, d, stub_utility(paths))
    assert [c.check for c in ver.compliance] == ["safety", "privacy", "fairness", "copyright", "disclosure", "rendering"]
    assert all(c.passed for c in ver.compliance), ver.rationales
    assert ver.decision == "accept" and ver.utility_score is not None and ver.utility_score >= V.THRESHOLDS["accept_utility"]
    lic = next(c for c in ver.compliance if c.check == "copyright").checked["licenses"]
    assert lic["product_0"].startswith("made-here") and lic["logo"].startswith("made-here")
    assert any("history item" in v for k, v in lic.items() if k.startswith("user_"))  # user crops are recorded
    disc = next(c for c in ver.compliance if c.check == "disclosure").checked
    assert disc["creative_frames"] >= 8 and disc["creative_missing"] == 0


# --------------------------------------------------------------------------------------------- planted
def test_leaked_handle_on_screen_is_a_privacy_violation_with_its_slot(paths):
    d = plant(paths, "handle", s0_on_screen_text="Hi @beanqueen, coffee time")
    ver = verify(paths, d)
    pv = only(ver, "privacy")
    assert len(pv) == 1 and pv[0].rule == "personal_data" and pv[0].severity == "severe"
    e = pv[0].evidence
    assert (e.slot, e.field, e.text, e.start_s) == (0, "on_screen_text", "@beanqueen", 0.0)
    assert e.end_s == pytest.approx(2.333, abs=1e-3)
    assert ver.decision == "reject"
    assert not only(ver, "safety") and not only(ver, "copyright")
    # the headline is burned in, so OCR reads the handle in the slot's frame too: the frame and time as evidence
    fv = only(ver, "privacy", frames=True)
    assert fv and all(v.evidence.slot == 0 and v.evidence.frame_index is not None and v.evidence.start_s < 2.4
                      for v in fv)
    assert any("beanqueen" in v.evidence.text for v in fv)


def test_names_and_places_from_the_history_in_narration(paths):
    d = plant(paths, "names", s1_narration="Marisol loves this in Portland.")
    pv = only(verify(paths, d), "privacy")
    assert {v.evidence.text for v in pv} == {"Marisol", "Portland"}
    assert all(v.evidence.slot == 1 and v.evidence.field == "narration" for v in pv)


def test_claims_the_product_may_not_make(paths):
    d = plant(paths, "claims", s1_narration="Brewco Beans is a cure for tiredness, 50% stronger.")
    sv = only(verify(paths, d), "safety")
    rules = {(v.rule, v.evidence.text) for v in sv}
    assert ("forbidden_claim", "cures tiredness") in rules  # "a cure for tiredness" ~ "cures tiredness"
    assert ("unsupported_percentage", "50%") in rules  # a percentage the facts ($14, 250 g) do not state
    assert ("superlative", "strongest") not in rules
    assert all(v.evidence.slot == 1 and v.evidence.field == "narration" for v in sv)
    assert next(v for v in sv if v.rule == "forbidden_claim").severity == "severe"


def test_a_number_only_is_minor_and_revises(paths):
    d = plant(paths, "number", s1_on_screen_text="Now 3 bags for 30")
    ver = verify(paths, d, stub_utility(paths))
    assert {(v.rule, v.evidence.text) for v in ver.violations if v.evidence.field != "frame"} == {
        ("unsupported_number", "3"), ("unsupported_number", "30")}
    assert ver.decision == "revise"


def test_other_brands_are_caught_in_text(paths):
    d = plant(paths, "brands", s1_narration="Smoother than Starbucks, sharper than Edgeline.")
    cv = only(verify(paths, d), "copyright")
    assert {v.evidence.text for v in cv if v.rule == "other_brand"} == {"Starbucks", "Edgeline"}
    assert all(v.severity == "severe" and v.evidence.slot == 1 for v in cv)


def test_a_possessive_brand_bare_name_counts_only_written_as_a_name():
    # "Lay's" without its possessive is the verb "lay": a flat-lay photo is no rival brand (a false positive of
    # the embedded run, where the Director's "outfit flat-lay" composition was flagged as "Lay's")
    assert not V.brand_in("Lay's", "a styled outfit flat-lay on a clean floor")
    assert not V.brand_in("Lay's", "lay it flat and pour")
    assert V.brand_in("Lay's", "Crunchier than Lay's.")
    assert V.brand_in("Lay's", "CRUNCHIER THAN LAYS", ocr=True)
    assert V.brand_in("Lay's", "Crunchier than Lay")
    assert V.brand_in("McDonald's", "Skip the Mc Donald drive-through")
    assert V.brand_in("McDonald's", "skip the mcdonald's drive-through")


def test_numbers_the_products_own_images_show_are_not_unsupported():
    def num(text: str, field: str, context: str) -> V.Violation:
        return V.Violation(check="safety", rule="unsupported_number", severity="minor", message=text,
                           evidence=V.Evidence(field=field, text=text, context=context))

    face = num("9", "frame", "10:09")
    said = num("9", "narration", "9 lives")
    other = num("42", "frame", "42 hours")
    price = V.Violation(check="safety", rule="unsupported_price", severity="severe", message="9",
                        evidence=V.Evidence(field="frame", text="9", context="$9"))
    check = V._check("safety", [face, said, other, price])
    out = V.drop_numbers_shown_by_product(check, "Kinetra Pulse 10:09 water resistant")
    assert out.violations == [said, other, price]
    assert not out.passed
    assert V.drop_numbers_shown_by_product(check, "") is check
    clean = V.drop_numbers_shown_by_product(V._check("safety", [face]), "10:09")
    assert clean.violations == [] and clean.passed


def test_fairness_targeting_is_severe_a_mention_minor(paths):
    d = plant(paths, "fair", s1_narration="Made for women who rush.", s1_on_screen_text="Loved by seniors")
    fv = only(verify(paths, d), "fairness")
    by = {v.evidence.text: v for v in fv}
    assert by["women"].rule == "protected_attribute_targeting" and by["women"].severity == "severe"
    assert by["seniors"].rule == "protected_attribute" and by["seniors"].severity == "minor"
    assert by["seniors"].evidence.field == "on_screen_text"


def test_unlicensed_and_foreign_assets(paths, tmp_path):
    d = plant(paths, "assets")
    g = read_model(d / "grounding.json", Grounding)
    stray = tmp_path / "stray.png"
    shutil.copyfile(Path(g.sources[0].path), stray)
    srcs = [s.model_copy(update={"path": str(stray)}) if s.asset_id == "product_1" else s for s in g.sources]
    srcs.append(GroundingSource(asset_id="product_9", path=str(stray), kind="product_image", origin="edge-razor"))
    write_json(d / "grounding.json", g.model_copy(update={"sources": srcs}))
    plan = read_model(d / "plan.json", Storyboard)
    plan = plan.model_copy(update={"slots": [plan.slots[0].model_copy(update={"assets": ["product_0", "ghost"]}),
                                             *plan.slots[1:]]})
    write_json(d / "plan.json", plan)
    cv = only(verify(paths, d), "copyright")
    got = {(v.rule, v.evidence.asset_id) for v in cv}
    assert ("missing_license", "product_1") in got  # a path that is not in the product's licence records
    assert ("foreign_asset", "product_9") in got  # another product's asset
    assert ("unrecorded_asset", "ghost") in got and next(v for v in cv if v.evidence.asset_id == "ghost").evidence.slot == 0


def test_a_creative_without_the_label_is_caught_in_its_frames(paths):
    d = plant(paths, "nolabel")
    write_unlabelled(d, d / "creative.mp4")
    frames = media.read_frames(d / "creative.mp4")
    assert not any(post.label_present(f) for f in frames)  # the planted creative really has no label
    ver = verify(paths, d, stub_utility(paths))
    dv = only(ver, "disclosure", frames=True)
    px = [v for v in dv if v.rule in ("label_missing", "label_not_from_start")]
    # 7 s at 5 fps = 35 frames; the check decodes every half second of the first 2 s (0, 2.5, 5, 7.5, 10 -> 0, 2,
    # 5, 8, 10), the last frame before 2 s (9), 8 bin centres int((i + 0.5) * 35 / 8) and the last frame
    assert len(frames) == 35
    assert {v.evidence.frame_index for v in px} == {0, 2, 5, 6, 8, 9, 10, 15, 19, 24, 28, 32, 34}
    assert all(v.evidence.slot is not None for v in px)
    # the first two seconds are named as such (the label must show from the first frame for 2 s)
    assert {v.evidence.frame_index for v in px if v.rule == "label_not_from_start"} == {0, 2, 5, 6, 8, 9}
    assert ver.decision == "revise"  # fixable by relabelling, not a rejection
    # and the plan alone would not have told: it still says "AI Created"
    assert read_model(d / "plan.json", Storyboard).disclosure == "AI Created"


def test_text_not_rendered_is_an_execution_finding(paths):
    d = plant(paths, "notext", s1_on_screen_text="")
    plan = read_model(paths.run_dir("pcg", RUN) / PAIR / "plan.json", Storyboard)
    write_json(d / "plan.json", plan)  # the plan says there is text, the video has none in slot 1
    rv = only(verify(paths, d), "rendering")
    assert len(rv) == 1 and rv[0].evidence.slot == 1 and rv[0].rule == "text_not_rendered"
    assert rv[0].evidence.text == plan.slots[1].on_screen_text
    # a generative creative under the paper protocol draws no on-screen text at all: not a rendering fault
    man = json.loads((d / "producer.json").read_text())
    write_json(d / "producer.json", {**man, "backend": "sora:sora-2", "settings": {**man["settings"],
                                                                                   "post_production": False}})
    assert not V.draws_text(d) and only(verify(paths, d), "rendering") == []
    write_json(d / "producer.json", {**man, "backend": "sora:sora-2", "settings": {**man["settings"],
                                                                                   "post_production": True}})
    assert V.draws_text(d) and len(only(verify(paths, d), "rendering")) == 1


def test_undecodable_video_is_a_named_violation(paths):
    d = plant(paths, "broken")
    (d / "creative.mp4").write_bytes(b"not a video")
    ver = verify(paths, d)
    assert ver.decision == "reject"
    assert any(v.rule == "undecodable" for v in only(ver, "disclosure", frames=True))


# ---------------------------------------------------------------------------------------- decision
def _chk(*sev):
    from nextads_lib.schemas import ComplianceCheck, Evidence, Violation

    return [ComplianceCheck(check="safety", passed=not sev, violations=[
        Violation(check="safety", rule="x", severity=s, message="m", evidence=Evidence()) for s in sev])]


def test_decision_thresholds():
    assert V.decide(_chk(), 0.8)[0] == "accept"
    assert V.decide(_chk(), None)[0] == "accept"
    assert V.decide(_chk("minor"), 0.8)[0] == "revise"
    assert V.decide(_chk("severe"), 0.9)[0] == "reject"
    assert V.decide(_chk(), V.THRESHOLDS["reject_utility"] - 0.01)[0] == "reject"
    assert V.decide(_chk(), V.THRESHOLDS["accept_utility"] - 0.01)[0] == "revise"
    d, why = V.decide(_chk("minor", "severe"), 0.2)
    assert d == "reject" and len(why) == 3


def test_lexicon_matching_is_by_whole_words():
    assert V.claim_in("burns fat", "A fat-burning blend")
    assert not V.claim_in("burns fat", "A blend for burning questions")
    assert V.claim_in("caffeine-free", "Totally caffeine free!")
    assert not V._find_phrase("men", "women")  # whole words only
    assert V.numbers("$14 per 250 g, 1,200 beans") == {"14", "250", "1200"}


# ------------------------------------------------------------------------------------------- utility
def test_utility_adapter_with_stand_ins_and_a_failing_judge(paths):
    d = paths.run_dir("pcg", RUN) / PAIR
    product, history, _ = inputs(paths)
    u = V.UtilityAdapter("offline", "offline", paths.cache, judge_fn=stub_judge(6.0), vq_fn=stub_vq())
    sc = {s.dimension: s for s in u.score(d, d / "creative.mp4", "pcg", product, history)}
    assert set(sc) == {"video_quality", "personalization", "product_alignment"}
    assert sc["personalization"].score == pytest.approx(0.6) and sc["video_quality"].score == pytest.approx(0.7, abs=1e-3)
    assert "proxy" in sc["video_quality"].label and sc["personalization"].proxy
    sc_pci = {s.dimension for s in u.score(d, d / "creative.mp4", "pci", product, history)}
    assert "context_alignment" in sc_pci

    def boom(*a, **k):
        raise RuntimeError("judge down")
    bad = V.UtilityAdapter("offline", "offline", paths.cache, judge_fn=boom, vq_fn=stub_vq())
    sc = {s.dimension: s for s in bad.score(d, d / "creative.mp4", "pcg", product, history)}
    assert sc["personalization"].score is None and "judge down" in sc["personalization"].error
    assert sc["video_quality"].score is not None  # the other dimensions go on


def test_utility_with_the_real_judge_and_video_quality(paths):
    pytest.importorskip("nextads_lib.judge")
    d = paths.run_dir("pcg", RUN) / PAIR
    product, history, lib = inputs(paths)
    u = V.UtilityAdapter("offline", "offline", paths.cache)
    ver = V.verify_creative(d, pair_id=PAIR, task="pcg", run=RUN, product=product, history=history, library=lib,
                            utility=u)
    sc = {s.dimension: s for s in ver.utility}
    assert sc["personalization"].score is not None and 0 <= sc["personalization"].score <= 1
    assert sc["product_alignment"].score is not None and "proxy" in sc["product_alignment"].label.lower()
    assert ver.verifier_backend == "offline"


# ------------------------------------------------------------------------------------ the learned head
def test_the_learned_head_switch_adds_a_minor_finding_the_rules_miss(paths):
    """A health claim in words no rule holds passes the rules; with ``learned_head`` on, the head's finding names
    the slot and the text, is minor (revise) and the switch is recorded in the verification."""
    claim = "Turns your metabolism into a furnace"
    d = plant(paths, "furnace", s1_on_screen_text=claim)
    off = verify(paths, d, stub_utility(paths))
    assert off.thresholds["learned_head"] == 0 and not [v for v in off.violations if claim in v.evidence.context]
    product, history, lib = inputs(paths)
    on = V.verify_creative(d, pair_id=d.name, task="pcg", run=RUN, product=product, history=history, library=lib,
                           utility=stub_utility(paths), thresholds={"learned_head": 1})
    found = [v for v in on.violations if v.rule == "learned_head"]
    assert on.thresholds["learned_head"] == 1 and found, on.rationales
    assert all(v.severity == "minor" for v in found)
    safety = [v for v in found if v.check == "safety"]  # in the plan's text and in the frame OCR read
    assert {v.evidence.field for v in safety} == {"on_screen_text", "frame"}
    assert all(v.evidence.slot == 1 and T.skeleton(claim) in T.skeleton(v.evidence.context) for v in safety)
    assert on.decision == "revise" and off.decision == "accept"
    check = next(c for c in on.compliance if c.check == "safety")
    assert check.checked["learned_head"]["findings"] == len(safety) and not check.passed


def test_the_learned_head_leaves_the_clean_creative_accepted(paths):
    d = paths.run_dir("pcg", RUN) / PAIR
    product, history, lib = inputs(paths)
    ver = V.verify_creative(d, pair_id=d.name, task="pcg", run=RUN, product=product, history=history, library=lib,
                            utility=stub_utility(paths), thresholds={"learned_head": 1})
    assert ver.decision == "accept", ver.rationales
    assert all(c.checked["learned_head"]["findings"] == 0 for c in ver.compliance if c.check in
               ("safety", "privacy", "fairness", "copyright"))
