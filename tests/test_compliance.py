"""Compliance that holds up (issue 15): normal forms, stems, notations and patterns of the text checks; the
labelled set and its calibration; OCR of real rendered frames; the label's size and start; the released
file's C2PA manifest and AIGC metadata, read back from the file, and a copy without them rejected."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from nextads_lib import media
from nextads_lib import verifier as V
from nextads_lib.compliance import bench, disclosure
from nextads_lib.compliance import text as T
from nextads_lib.producer import post

DATA = Path(__file__).parent / "data" / "compliance"


# ------------------------------------------------------------------------------------------- text
def test_normal_form_folds_case_unicode_quotes_and_marks():
    assert T.tokens("Women’s ＦＵＬＬ café™ line") == ["women", "full", "cafe", "line"]
    assert T.skeleton("@Maya_Runs") == T.skeleton("maya runs") == T.skeleton("MAYA-RUNS")
    assert T.skeleton("N1KE") == T.skeleton("Nike")


@pytest.mark.parametrize("phrase,text,hit", [
    ("single moms", "for every single mom out there", True),  # singular
    ("guarantee", "Results GUARANTEED.", True),  # inflection + case
    ("burns fat", "it burned fat", True),
    ("women", "the woman's choice", True),  # irregular plural
    ("hate", "whatever", False),  # whole words only
    ("gun", "begun", False),
])
def test_phrases_match_any_inflection_of_their_words(phrase, text, hit):
    assert T.phrase_in(phrase, text) is hit


def test_ocr_text_that_lost_its_spaces_still_matches():
    assert T.phrase_in("clinically proven", "Clinicallyproven energy", ocr=True)
    assert V.brand_in("Nike", "Nikerunning club", ocr=True)
    assert not V.brand_in("Dell", "Modelling clay", ocr=True)  # a brand inside a word is no brand


@pytest.mark.parametrize("text,ages", [
    ("Perfect if you're in your 30s.", {"in your 30s"}),
    ("For 25-34 year olds", {"25-34 year olds"}),
    ("Forty-somethings, rejoice", {"forty-somethings"}),
    ("Over 20 origins tasted", set()),  # counting, not an age
    ("A roast for every age", set()),
])
def test_age_patterns(text, ages):
    assert set(T.pattern_hits(T.AGE_PATTERNS, text)) >= ages and (ages or not T.pattern_hits(T.AGE_PATTERNS, text))


def test_ocr_lines_that_lost_their_spaces_are_taken_apart_for_the_patterns():
    assert T.deglue("new momsloveit") == "new moms loveit" and T.deglue("singlemoms only") == "single moms only"
    assert T.deglue("over50? try it") == "over 50? try it"
    # a word that merely starts or ends like a glued noun stays whole
    assert T.deglue("new momentum") == "new momentum" and T.deglue("canteens open") == "canteens open"
    assert T.pattern_hits(T.FAMILY_PATTERNS, "NEW MOMSLOVEIT", ocr=True) == ["new moms"]
    assert T.pattern_hits(T.FAMILY_PATTERNS, "NEW MOMSLOVEIT") == []  # the plan's text is not de-glued
    assert T.pattern_hits(T.AGE_PATTERNS, "OVER50? TRY IT", ocr=True)
    assert not T.pattern_hits(T.FAMILY_PATTERNS + T.AGE_PATTERNS, "NEW MOMENTUM, SCHOOL CANTEENS", ocr=True)


@pytest.mark.parametrize("text,hit", [
    ("Brewed for people with bodies like yours.", True),
    ("Made for your body type.", True),
    ("Good mornings for every body.", False),
    ("A full body like a dark roast, smooth like yours truly.", False),
])
def test_the_viewers_body_addressed_by_comparison(text, hit):
    assert bool(T.pattern_hits(T.GROUP_PATTERNS, text)) is hit


def test_prices_and_percentages_are_values():
    assert T.money_values("Only $19.99, or 20 dollars, €5") == {19.99, 20.0, 5.0}
    assert T.percent_values("save 30%, thirty-five percent, half price") == {30.0, 35.0, 50.0}
    assert T.plain_numbers("10,000 mm") == {10000.0}


def test_identifiers_in_other_notations():
    assert V.personal_in("u_8123", "Made for user U-8123")
    assert V.personal_in("u_8123", "Member #8123, this is yours.")
    assert V.personal_in("@maya_runs", "Great run, Maya Runs!")
    assert V.personal_in("+1 415 555 0199", "Text 415.555.0199 now")
    assert V.personal_in("Rose", "Hi Rose!") and not V.personal_in("Rose", "a rose garden")
    assert T.obfuscated_emails("maya.r at example dot com") == ["maya.r at example dot com"]


def test_the_dictionary_resegments_glued_ocr_words_and_knows_names_from_words():
    assert T.is_word("belly") and T.is_word("brewed") and not T.is_word("lavazza")
    assert T.resegment("BURNS BELLYFAT") == "burns belly fat"
    assert T.resegment("BESTBREWEDFRESH") == "best brewed fresh" and T.resegment("momentum") == "momentum"


def _units(text: str) -> list[T.TextUnit]:
    return [T.TextUnit("on_screen_text", text, 0, 0.0, 2.0)]


@pytest.fixture(scope="module")
def ctx():
    return bench.load_context(DATA / "context.json")


def test_a_brand_no_list_holds_is_found_where_a_brand_stands(ctx):
    own = V.product_text(ctx["products"]["morrow-coffee"])
    assert T.brand_candidates("Richer than Segafredo.", own) == ["Segafredo"]
    assert T.brand_candidates("DUALIT OWNERS, THIS IS FOR YOU", own) == ["DUALIT"]
    assert T.brand_candidates("Sweeter than a Frappuccino.", own) == ["Frappuccino"]
    # English words, the product's own name, and a name outside a brand's place are not brands
    assert T.brand_candidates("Smoother than silk. Better than Yesterday.", own) == []
    assert T.brand_candidates("Richer than Morrow.", own) == []
    assert T.brand_candidates("Segafredo is a town, they say.", own) == []
    # common words of ad copy the vocabulary lacks are words; in a Title Case line a capital says nothing
    assert T.brand_candidates("Brew like a Barista. Skip the Latte line.", own) == []
    assert T.brand_candidates("Better Than Your Usual Segafredo", own) == []
    # the product's own words glued by OCR are no new name (the embedded PCI run read "Small-batchmedium roast"
    # from morrow-coffee's own "small-batch medium roast" and rejected the creative for another brand)
    assert "small-batch medium roast" in own.casefold()
    assert T.brand_candidates("Small-batchmedium roast", own) == []
    assert T.brand_candidates("Smallbatchmedium roast", own) == []
    assert T.brand_candidates("Richer than Segafredomedium.", own) == ["Segafredomedium"]

    def brands(t: str) -> list[str]:
        c = V.check_copyright(None, ctx["products"]["morrow-coffee"], ctx["library"], None, ctx["history"], _units(t))
        return [v.evidence.text for v in c.violations if v.rule == "other_brand"]

    # a listed brand that is also a word counts only written as a brand, where a brand stands
    assert brands("Ditch the Kenco jar.") == ["Kenco"] and brands("COSTA WHO?") == ["Costa"]
    assert brands("A MONSTER MORNING") == [] and brands("Keep calm and carry a thermos.") == []
    assert brands("Skip the Starbuck's queue.") == ["Starbucks"]  # a misplaced apostrophe
    assert brands("Run it past Priya, your friend.") == []  # the user's own name is privacy's finding


def test_forbidden_claims_match_by_negation_equivalents_and_scope():
    assert V.claim_in("sugar-free", "Zero sugar, all fizz.") and V.claim_in("zero fat", "Fat-free crunch.")
    assert V.claim_in("caffeine-free", "Made without caffeine.") and not V.claim_in("sugar-free", "No caffeine here.")
    assert V.claim_in("unbreakable screen", "It'll never shatter.") and V.claim_in("indestructible", "Can't crack it.")
    assert V.claim_in("unlimited battery", "Charge that never runs out.")
    assert V.claim_in("waterproof at any depth", "Dive to any depth.") and not V.claim_in(
        "waterproof at any depth", "Dive to 10 m, no housing needed.")
    assert not V.claim_in("every movie ever made", "Every film ever shot.")  # another noun: not this claim
    assert V.claim_in("every song ever released", "All songs ever written.")
    assert V.claim_in("warm to -30 C", "Stays warm at minus thirty.")
    assert not V.claim_in("hypoallergenic for all skin", "Fragrance-free, for all skin types.")
    assert V.claim_in("low calorie", "Zero calories, all crunch.") and V.claim_in("unlimited battery", "No charging, ever.")


def test_unsafe_content_by_category_and_effect_claims(ctx):
    morrow = ctx["products"]["morrow-coffee"]

    def rules(t: str) -> set[str]:
        return {v.rule for v in V.check_safety(None, morrow, _units(t)).violations}

    assert "unsafe_content" in rules("Place your bets, then brew.") and "unsafe_content" in rules("Smoother than a joint.")
    assert rules("Bet you can taste the difference.") == set() and rules("Smoked maple notes.") == set()
    assert "unsupported_claim" in rules("Banishes brain fog for good.")
    assert "unsupported_claim" in rules("Never feel sluggish again.")
    assert "unsupported_claim" in rules("Nutritionists recommend two cups a day.")
    assert "unsupported_claim" in rules("Bye-bye bloating.") and "unsupported_claim" in rules("Strengthens your bones.")
    assert rules("Bye-bye bland coffee.") == set() and rules("Win the morning.") == set()
    assert "deceptive_pattern" in rules("Congratulations, you have been selected!")
    assert "unsupported_percentage" in rules("Three bags for the price of two.")
    assert rules("The cure for a slow Monday? Fresh beans.") == set()
    assert "unsupported_claim" in rules("The cure for migraines.")


def test_fairness_patterns_for_ages_life_events_faith_disability_health_and_body(ctx):
    morrow = ctx["products"]["morrow-coffee"]

    def flagged(t: str) -> bool:
        return bool(V.check_fairness(None, morrow, _units(t)).violations)

    for t in ("Turning 50 this year? Treat yourself.", "For our Muslim neighbours.", "Recently widowed? We are here.",
              "For deaf coffee fans.", "Coffee for people with arthritis.", "Expecting twins? Stock up.",
              "Made for the student crowd.", "Feeling bloated? Try our roast.", "Celebrating your 40th? Cheers.",
              "Twenty-one today? Cheers with coffee.", "Recovering from chemo? This cup is gentle."):
        assert flagged(t), t
    for t in ("Turn 20 minutes into a ritual.", "Reaching 90 degrees in a minute.", "A blind taste test winner.",
              "Your belly will thank you for the warmth.", "No matter your age, it tastes the same.",
              "Celebrating 40 years of roasting.", "Over 20 origins tasted."):
        assert not flagged(t), t


def test_an_address_given_as_the_shops_contact_is_no_personal_data(ctx):
    morrow, hist = ctx["products"]["morrow-coffee"], ctx["history"]

    def found(t: str) -> bool:
        return bool(V.check_privacy(None, morrow, hist, None, _units(t)).violations)

    assert not found("Questions? hello@roastery.example.") and not found("Call us on 0800 123 456 to order.")
    assert found("Email: jo_perez99@gmail.com") and found("Send it to jo.smith@mail.com now.")
    # the user's own address stays personal data however it is presented
    assert found("Call +1 (415) 555-0199 to order.") and found("Reach us at maya dot r at example dot com.")
    assert found("Hey M4YA RUNS!")


# ------------------------------------------------------------------------------------- labelled set
def test_labelled_set_covers_every_check_in_the_build_split():
    cases = bench.load_cases(splits=("build",))
    assert len(cases) >= 2537 and len({c["id"] for c in cases}) == len(cases)
    assert {c["check"] for c in cases} == set(bench.CHECKS)
    assert {c["where"] for c in cases} >= {"plan", "frame", "video"}
    for check in bench.CHECKS:  # positives and clean look-alikes
        assert {c["label"] for c in cases if c["check"] == check and c["split"] == "build"} == {0, 1}, check
    # the split is a fixed function of the id (the part a case was written in), not a choice made case by case:
    # the v1 held-out third and the v2 and v3 held-out parts were read by developers and are build now
    v1, v2, v3 = (bench.load_cases(DATA / n) for n in ("cases.jsonl", "cases_v2.jsonl", "cases_v3.jsonl"))
    assert all(c["split"] == "build" == bench.split_of(c["id"]) for c in v1 + v2 + v3)
    assert sum(c.get("split_v1") == "heldout" for c in v1) > 300
    assert len(v2) == 550 and all(c["id"].startswith("v2-") and c["split_v2"] == "heldout" for c in v2)
    assert len(v3) == 996 and all(c["id"].startswith("v3-") and c["split_v3"] == "heldout" for c in v3)
    assert bench.split_of("v4-safety-001") == "heldout" and bench.split_of("v3-safety-001") == "build"


@pytest.mark.skipif(not (DATA / "heldout_v4.jsonl").is_file(), reason="the held-out v4 part is not in this checkout")
def test_held_out_v4_is_a_third_of_the_set_and_apart_from_build():
    cases = bench.load_cases()
    held = [c for c in cases if c["split"] == "heldout"]
    build = [c for c in cases if c["split"] == "build"]
    assert 1 / 3 <= len(held) / len(cases) <= 0.42
    assert all(c["id"].startswith("v4-") for c in held)
    assert all(c["split"] == "heldout" for c in bench.load_cases(DATA / "heldout_v4.jsonl"))
    for check in bench.CHECKS:  # held-out v4: at least 75 positives and 75 clean cases of every check
        for label in (0, 1):
            assert sum(c["check"] == check and c["label"] == label for c in held) >= 75, (check, label)
    assert not {c["text"] for c in held} & {c["text"] for c in build}


def test_a_missing_held_out_file_is_tolerated_only_for_the_build_split(tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "heldout_path", lambda: tmp_path / "heldout_v4.jsonl")
    assert {c["split"] for c in bench.load_cases(splits=("build",))} == {"build"}
    with pytest.raises(FileNotFoundError):
        bench.load_cases(splits=("build", "heldout"))


def test_a_case_stored_in_the_wrong_split_is_refused(tmp_path):
    for c in ({"id": "v4-safety-999", "split": "build"}, {"id": "v3-safety-999", "split": "heldout"}):
        c |= {"check": "safety", "label": 1, "where": "plan", "kind": "x", "text": "t"}
        (tmp_path / "c.jsonl").write_text(json.dumps(c) + "\n")
        with pytest.raises(ValueError, match="wrong split"):
            bench.load_cases(tmp_path / "c.jsonl")


def test_calibration_is_of_this_set_and_build_only():
    cal = json.loads(T.CALIBRATION_PATH.read_text())
    assert cal["split"] == "build"
    build = b"".join((DATA / n).read_bytes() for n in ("cases.jsonl", "cases_v2.jsonl", "cases_v3.jsonl"))
    assert cal["cases_sha256"] == hashlib.sha256(build).hexdigest() == bench.build_sha256()
    assert set(cal["thresholds"]) == set(T.POLICIES) and all(0 < v < 1 for v in cal["thresholds"].values())


def test_a_few_cases_through_the_verifiers_code():
    ctx = bench.load_context(DATA / "context.json")
    cases = {c["id"]: c for c in bench.load_cases(DATA / "cases.jsonl")}
    by_text = {c["text"]: c for c in cases.values()}
    picks = ["Made for busy 25-34 year olds.", "A roast for every age and every morning.", "Save 30% today.",
             "Only $16 for a 340 g bag.", "Shout-out to maya-runs.", "Forget cocacola, drink coffee.",
             "An apple-crisp finish in every cup."]
    for t in picks:
        r = bench.run_case(by_text[t], ctx, Path("."))
        assert r["flagged"] == by_text[t]["label"], r


# --------------------------------------------------------------------------------------------- OCR
def test_ocr_reads_a_rendered_frame_and_the_label():
    pytest.importorskip("rapidocr_onnxruntime")
    from nextads_lib.compliance import ocr

    fr = bench.render_frame("t", ["Smoother than Starbucks", "Fresh roast every morning"])
    lines = ocr.read_text(fr)
    sk = T.skeleton(" ".join(ln.text for ln in lines))
    assert T.skeleton("Smoother than Starbucks") in sk and T.skeleton("every morning") in sk
    h, w = fr.shape[:2]
    x0, y0, x1, y1 = post.label_box(w, h)
    text, conf = ocr.read_line(fr[y0:y1, x0:x1])
    assert V.label_text_ok(text), text
    assert not V.label_text_ok("AI Crafted") and not V.label_text_ok("Sponsored")


def test_a_frame_case_draws_every_line_it_names():
    """A third line of a frame case is drawn in the middle band and read back (it was once dropped in silence);
    lines that cannot fit are an error naming the frame."""
    pytest.importorskip("rapidocr_onnxruntime")
    from nextads_lib.compliance import ocr

    fr = bench.render_frame("three", ["Steam rising", "Day starting", "Lunch specials"])
    read = T.skeleton(" ".join(ln.text for ln in ocr.read_text(fr)))
    assert all(T.skeleton(t) in read for t in ("Steam rising", "Day starting", "Lunch specials"))
    with pytest.raises(ValueError, match="frame 'many'.*does not fit"):
        bench.render_frame("many", ["Head", "Sub", *[f"Middle line {k}" for k in range(30)]])


# ------------------------------------------------------------------------------------------- label
@pytest.mark.parametrize("w,h", [(360, 640), (640, 360), (180, 320), (720, 1280)])
def test_label_letters_are_five_percent_of_the_shorter_side(w, h):
    fr = post.burn_label(np.zeros((h, w, 3), np.uint8))
    x0, y0, x1, y1 = post.label_box(w, h)
    rows = np.nonzero((fr[y0:y1, x0:x1].mean(axis=2) > 200).any(axis=1))[0]
    assert rows[-1] - rows[0] + 1 >= 0.05 * min(w, h)


def _clip(path: Path, label_from: float = 0.0, seconds: float = 3.0, fps: float = 5.0) -> Path:
    bg = np.full((320, 180, 3), 90, np.uint8)
    frames = [post.burn_label(bg) if k / fps >= label_from else bg.copy() for k in range(int(seconds * fps))]
    media.write_video(path, frames, fps, audio=np.zeros(int(seconds * 22050), np.float32))
    return path


def test_a_label_that_starts_late_is_caught(tmp_path):
    late = V.check_disclosure(None, _clip(tmp_path / "late.mp4", label_from=1.0), read_label=False)
    assert {v.rule for v in late.violations} == {"label_not_from_start"}
    assert all(v.evidence.start_s < 1.0 for v in late.violations)
    ok = V.check_disclosure(None, _clip(tmp_path / "ok.mp4"), read_label=False)
    assert ok.passed, ok.violations


# ------------------------------------------------------------------------------------ C2PA + AIGC
def test_release_writes_c2pa_and_aigc_and_a_copy_without_them_is_rejected(tmp_path):
    pytest.importorskip("c2pa")
    src = _clip(tmp_path / "creative.mp4")
    out = tmp_path / "released.mp4"
    info = disclosure.release(src, out, produce_id="run/pair/round_0",
                              backends={"director": "offline", "producer": "compositor"}, cert_dir=tmp_path / "c2pa")
    c = disclosure.read_c2pa(out)
    assert c["present"] and c["ai_created"] and c["validation_state"] == "Valid"
    assert "signingCredential.untrusted" in c["status"]  # the study's own CA, documented as untrusted
    assert c["backends"] == {"director": "offline", "producer": "compositor"}
    a = disclosure.read_aigc(out)
    assert a["Label"] == "1" and a["ProduceID"] == "run/pair/round_0" and info["aigc"] == a
    # the frames are the accepted creative's, bit for bit (a stream copy, nothing re-encoded)
    assert np.array_equal(np.stack(media.read_frames(src)), np.stack(media.read_frames(out)))
    assert media.probe(out).has_audio
    chk = V.check_release(out, read_label=False)
    assert chk.passed, chk.violations
    # a copy without the manifest (the unreleased creative) is rejected, severe
    bad = V.check_release(src, read_label=False)
    assert {v.rule for v in bad.violations if v.severity == "severe"} == {"c2pa_missing", "aigc_missing"}
    # a released file changed after signing no longer validates
    tampered = tmp_path / "tampered.mp4"
    shutil.copyfile(out, tampered)
    b = bytearray(tampered.read_bytes())
    i = b.rfind(b"mdat") + 64
    b[i] ^= 0xFF
    tampered.write_bytes(bytes(b))
    assert disclosure.read_c2pa(tampered)["validation_state"] != "Valid"
    # the signing credentials are made once and reused
    chain = (tmp_path / "c2pa" / "chain.pem").read_bytes()
    disclosure.ensure_signing_cert(tmp_path / "c2pa")
    assert (tmp_path / "c2pa" / "chain.pem").read_bytes() == chain
    assert "UNTRUSTED" in (tmp_path / "c2pa" / "README.txt").read_text()


# ------------------------------------------------------------------------------------- model-backed
def _plan():
    from nextads_lib.schemas import Slot, Storyboard

    return Storyboard(product_id="morrow-coffee", backend="offline", personalized=False, hook="Wake up", duration_s=3.0,
                      cta="Order now", slots=[
                          Slot(index=0, start_s=0.0, end_s=1.5, role="hook", camera="static", composition="beans"),
                          Slot(index=1, start_s=1.5, end_s=3.0, role="cta", camera="static", composition="bag")])


def test_model_backed_checks_over_a_local_openai_wire_server(tmp_path):
    pytest.importorskip("openai")
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from fakeapi.model_routes import ModelServer, Reply

    from nextads_lib.backends import get_backend
    from nextads_lib.compliance import model_checks as M
    from nextads_lib.config import DEFAULT_PRODUCTS_DIR
    from nextads_lib.products import load_product

    product = load_product(DEFAULT_PRODUCTS_DIR / "morrow-coffee")
    video = _clip(tmp_path / "creative.mp4")
    finding = {"violations": [{"rule": "other_brand_on_screen", "severity": "severe", "message": "a rival cup logo",
                               "text": "green siren logo", "frame": 2, "slot": None}]}
    server = ModelServer(default=Reply('{"violations": []}'))
    try:
        # the copyright (spurious conditioning) prompt is asked last: its answer names a frame
        server.queue = [Reply('{"violations": []}')] * 3 + [Reply(json.dumps(finding))]
        b = get_backend("openai:gpt-4o", cache_dir=tmp_path / "c", base_url=server.openai_url, api_key="k",
                        backoff_s=0.01)
        checks = [V.check_safety(_plan(), product), V.check_copyright(_plan(), product, None, None)]
        out = V.add_model_findings(checks, b, _plan(), product, video, "pair", n_frames=4)
        assert len(server.log) == 4  # one prompt per check
        sent = json.dumps(server.log[-1]["body"])
        assert "SPURIOUS CONDITIONING" in sent and "image_url" in sent  # the frames went with the prompt
        cv = [v for v in out[1].violations if v.rule.startswith("model_")]
        assert len(cv) == 1 and cv[0].severity == "severe" and cv[0].rule == "model_other_brand_on_screen"
        info = media.probe(video)
        idx = media.sample_indices(info.n_frames, 4)
        assert cv[0].evidence.frame_index == idx[2]
        assert cv[0].evidence.start_s == pytest.approx(idx[2] / info.fps, abs=1e-3)
        assert cv[0].evidence.slot == (0 if idx[2] / info.fps < 1.5 else 1)
        assert not out[1].passed and out[0].checked["model"].startswith("ok")
        # an answer that does not validate is retried and then recorded; the rules stand
        server.queue = [Reply('{"violations": [{"rule": "x"}]}')] * 8
        b2 = get_backend("openai:gpt-4o", cache_dir=tmp_path / "c2", base_url=server.openai_url, api_key="k",
                         backoff_s=0.01)
        viol, calls = M.model_compliance(b2, _plan(), product, [(0, 0.0, media.read_frames(video, [0])[0])],
                                         checks=["safety"])
        assert viol == [] and calls["safety"].startswith("error")
    finally:
        server.close()
    assert not V.model_compliance_enabled("offline", V.THRESHOLDS)
    assert V.model_compliance_enabled("gemini:gemini-2.5-flash", V.THRESHOLDS)


# ------------------------------------------------------------------------------ unplanned text (OCR)
def _read(*lines: str) -> list[T.TextUnit]:
    return [T.TextUnit("frame", t, 1, 2.0, 2.2, source="frames", frame_index=50) for t in lines]


def test_ocr_renderings_of_the_plans_own_text_are_not_unplanned():
    lib = {p.id: p for p in bench.load_context(DATA / "context.json")["library"].products}
    sonetto, ambli = lib["sonetto-earbuds"], lib["ambli-rides"]
    # OCR slips in long words, words glued across boxes, the product's name misread and glued
    assert V.unplanned_text(["Your sound, on the move"], _read("SonetteLoopBuds", "earburs,32", "gamesng:"), sonetto) == []
    assert V.unplanned_text(["Get there, your way"], _read("supportallet or cash"), ambli) == []
    # no word of the line is planned exactly, but each is a slip or a glued run of planned words: OCR, not garbling
    assert V.unplanned_text(["Your sound, on the move"], _read("Sweatresistant earburs"), sonetto) == []
    # text a grounding asset carries (a user's captioned photo) is allowed only when given as asset text
    assert V.unplanned_text(["Get there"], _read("Clearing my skin"), ambli)
    assert V.unplanned_text(["Get there"], _read("Clearing my skin"), ambli, asset_texts=["clearing my skin!"]) == []


@pytest.mark.parametrize("plan,read", [
    ("Never bitter", "Vote for us"),  # short invented words are not "covered" by 3 of their letters
    ("Good mornings, bag by bag", "FREE DELIVERY"),
    ("Rich crema every time", "Rlch crxma evqry tlmz"),  # a wrong letter in every short word: garbled
    ("Morrow House Roast", "Morrcw Hovse Raost"),
    ("Your morning ritual", "Yqur mqrning rltuxl"),  # every word garbled, though two are within one slip
])
def test_truly_unplanned_or_garbled_text_is_still_found(plan, read):
    prod = bench.load_context(DATA / "context.json")["products"]["morrow-coffee"]
    (v,) = V.unplanned_text([plan], _read(read), prod)
    assert v.rule == "unplanned_text" and v.evidence.frame_index == 50 and v.evidence.slot == 1


def test_reflector_acts_on_unplanned_text():
    from nextads_lib import reflector as R

    def ctx(text: str) -> dict:
        v = {"check": "rendering", "rule": "unplanned_text", "severity": "minor", "message": f"shows '{text}'",
             "evidence": {"slot": 1, "field": "frame", "text": text, "frame_index": 50}}
        slot = {"index": 1, "on_screen_text": "Rich crema every time", "narration": "Pull a shot.", "role": "body",
                "camera": "static", "assets": []}
        return {"verification": {"compliance": [{"check": "rendering", "violations": [v]}], "utility": []},
                "plan": {"slots": [slot], "hook": "", "cta": ""}, "product": {"name": "Morrow", "selling_points": []}}

    (d,) = R.rule_directives(ctx("Rich crerna every tirne")).directives  # its own text, garbled: draw it again
    assert (d.kind, d.target, d.slot, d.new) == ("recaption", "producer", 1, "Rich crema every time")
    (d,) = R.rule_directives(ctx("WIN A FREE TRIP")).directives  # invented: regenerate the slot without it
    assert (d.kind, d.target, d.slot, d.field, d.old) == ("regenerate_slot", "producer", 1, "frame_text", "WIN A FREE TRIP")
