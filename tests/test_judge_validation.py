"""The judge's validation and failure paths with a scripted model backend (no server, no proxies): what a valid,
invalid, refused or crashing answer becomes (a score, or a missing score naming why, never 0), the decode check
before a model call, the labels, and the protocol a judged number stands for. Fast on purpose: mutation testing
runs these for every mutant of judge_pair and its helpers."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from nextads_lib import judge, media
from nextads_lib.backends import get_backend
from nextads_lib.backends.base import BackendError, ModelBackend
from nextads_lib.media import MediaError

from test_judge import EARTH, PERSONAL, frames_with, make_history, make_pair, make_product, product_art, write_creative

PRES = "personalization_presentation"


class Scripted(ModelBackend):
    """A model backend that gives the answers it was given, in order (an exception is raised)."""

    kind = "scripted"

    def __init__(self, *answers, model="m", **kw):
        super().__init__(model, backoff_s=0.0, max_attempts=1, **kw)
        self.answers = list(answers)
        self.requests = []

    def _call(self, req, repair):
        self.requests.append((req, repair))
        a = self.answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a, 10, 5


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("judge_validation")
    prod = make_product(tmp)
    d = make_pair(tmp / "run", "u1__a", prod, frames_with(EARTH, product_art(2), n=6), PERSONAL)
    return prod, d, make_history(tmp)


def judged(pair, backend, criterion=PRES, **kw):
    prod, d, hist = pair
    return judge.judge_pair(criterion, kw.pop("pair_dir", d), task=kw.pop("task", "pcg"), product=prod, history=hist,
                            backend=backend, n_frames=2, **kw)


# ------------------------------------------------------------------------------------------------ labels
def test_labels_name_the_judge_unless_it_is_the_papers():
    assert judge.label_for(PRES, "offline") == "Personalization-Presentation (proxy: palette/style stats)"
    assert judge.label_for("diversity", "offline:x") == "Diversity (proxy: colour-hist + MiniLM dissimilarity)"
    assert judge.label_for("product_alignment", "gemini:gemini-2.5-flash") == "Product Alignment"
    assert judge.label_for("product_alignment", "gemini:gemini-2.5-pro") == "Product Alignment (judge: gemini:gemini-2.5-pro)"


def test_integration_quality_is_a_pci_criterion_only():
    assert judge.criteria_for("pci") == ("personalization_presentation", "personalization_content",
                                         "product_alignment", "integration_quality", "diversity")
    assert judge.criteria_for("pcg") == ("personalization_presentation", "personalization_content",
                                         "product_alignment", "diversity")


# ------------------------------------------------------------------------------------------ judge_pair
def test_a_valid_answer_is_the_score(pair):
    b = Scripted('{"score": 6.5, "reason": "earthy palette like the covers"}')
    s = judged(pair, b)
    assert s.model_dump() == {"criterion": PRES, "score": 6.5, "reason": "earthy palette like the covers",
                              "backend": "scripted:m", "proxy": False,
                              "label": "Personalization-Presentation (judge: scripted:m)", "pair_id": "u1__a",
                              "error": None, "protocol": "paper"}
    assert len(b.requests) == 1 and b.requests[0][1] is None


def test_an_out_of_range_answer_is_reasked_with_the_error_then_missing_never_zero(pair):
    b = Scripted('{"score": 11, "reason": "x"}', '{"score": -1, "reason": "x"}')
    s = judged(pair, b)
    assert s.score is None and s.reason == "" and s.pair_id == "u1__a" and s.protocol == "paper"
    assert s.error.startswith("BackendError: pair u1__a [personalization_presentation] [judge.personalization_presentation]")
    assert "failed validation twice" in s.error and "score" in s.error
    assert s.label == "Personalization-Presentation (judge: scripted:m)" and s.backend == "scripted:m" and not s.proxy
    assert "less than or equal to 10" in b.requests[1][1]  # the re-ask carries the validation error
    fixed = judged(pair, Scripted('{"score": 11, "reason": "x"}', '{"score": 4, "rationale": "y"}'))
    assert fixed.score == 4 and fixed.reason == "y" and fixed.error is None


@pytest.mark.parametrize("exc, prefix", [
    (BackendError("pair u1__a", "judge.x", "answered 400: bad"), "BackendError: pair u1__a [judge.x]: answered 400"),
    (MediaError("cannot decode frame 3"), "undecodable video: cannot decode frame 3"),
    (OSError("disk full"), "OSError: disk full"),
    (ValueError("odd answer"), "ValueError: odd answer"),
    (RuntimeError("client crashed"), "RuntimeError: client crashed")])
def test_a_failed_call_is_a_missing_score_naming_the_failure(pair, exc, prefix):
    s = judged(pair, Scripted(exc), protocol="extended")
    assert s.score is None and s.error.startswith(prefix) and s.protocol == "extended"
    assert s.criterion == PRES and s.pair_id == "u1__a" and s.backend == "scripted:m"


def test_a_setup_error_stops_the_run_instead_of_failing_every_item(pair):
    with pytest.raises(BackendError) as e:
        judged(pair, Scripted(BackendError("", "setup", "set GEMINI_API_KEY")))
    assert "GEMINI_API_KEY" in str(e.value)


def test_other_exceptions_are_not_swallowed(pair):
    with pytest.raises(KeyError):
        judged(pair, Scripted(KeyError("bug")))


def test_a_pair_without_a_plan_is_missing_with_the_reason(pair, tmp_path):
    prod, d, hist = pair
    empty = tmp_path / "u1__nothing"
    empty.mkdir()
    b = Scripted('{"score": 5, "reason": "x"}')
    s = judged(pair, b, pair_dir=empty, protocol="extended")
    assert s.score is None and s.pair_id == "u1__nothing" and "plan.json" in s.error and not b.requests
    assert s.protocol == "extended"
    assert s.error.startswith("ArtifactError: ")  # the store's error type, named
    pci = judged(pair, b, criterion="integration_quality")
    assert pci.score is None and pci.error == "ValueError: integration_quality is judged for PCI only"


def test_an_undecodable_creative_is_caught_before_the_model_is_paid(pair, tmp_path):
    prod, d, hist = pair
    bad = make_pair(tmp_path / "run", "u1__bad", prod, None, PERSONAL)
    (bad / "creative.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not a video")
    b = Scripted('{"score": 5, "reason": "x"}')
    s = judged(pair, b, pair_dir=bad, protocol="extended")
    assert s.score is None and s.error.startswith("undecodable video: creative.mp4: ") and b.calls == 0
    assert s.pair_id == "u1__bad"
    assert s.protocol == "extended" and s.label == "Personalization-Presentation (judge: scripted:m)"


def test_integration_quality_checks_the_integrated_video(pair, tmp_path):
    prod, d, hist = pair
    p = make_pair(tmp_path / "run", "u1__pci", prod, frames_with(EARTH, n=6), PERSONAL, task="pci")
    (p / "integration.json").write_text(json.dumps({"seam_in_s": 0.4, "seam_out_s": 1.0, "insert_at_s": 0.4,
                                                    "integrated_duration_s": 2.0}))
    (p / "integrated.mp4").write_bytes(b"broken")
    b = Scripted('{"score": 5, "reason": "x"}')
    s = judged(pair, b, pair_dir=p, criterion="integration_quality", task="pci")
    assert s.error.startswith("undecodable video: integrated.mp4: ") and b.calls == 0
    write_creative(p / "integrated.mp4", frames_with(EARTH, n=10))
    s = judged(pair, b, pair_dir=p, criterion="integration_quality", task="pci")
    assert s.score == 5 and s.error is None and s.label == "Integration Quality (judge: scripted:m)"
    del_seam = tmp_path / "run" / "u1__pci2"
    p2 = make_pair(tmp_path / "run", "u1__pci2", prod, frames_with(EARTH, n=6), PERSONAL, task="pci")
    (p2 / "integration.json").write_text(json.dumps({"seam_in_s": 0.4}))
    s = judged(pair, b, pair_dir=del_seam, criterion="integration_quality", task="pci")
    assert s.score is None and "field 'seam_out_s' is missing" in s.error and s.error.startswith("JudgeError: ")


def test_a_cached_answer_needs_no_decode(pair, tmp_path, monkeypatch):
    b = Scripted('{"score": 7, "reason": "x"}', cache_dir=tmp_path / "c")
    assert judged(pair, b).score == 7
    decoded = []
    real = judge.video_frames
    monkeypatch.setattr(judge, "video_frames", lambda *a, **k: decoded.append(a) or real(*a, **k))
    again = Scripted(cache_dir=tmp_path / "c")
    assert judged(pair, again).score == 7 and again.usage[-1].cached and decoded == []
    fresh = Scripted('{"score": 3, "reason": "x"}', cache_dir=tmp_path / "other")
    assert judged(pair, fresh).score == 3 and len(decoded) == 1  # not cached: decoded once before the call


def test_the_offline_judge_leaves_the_decode_to_its_proxies(pair, tmp_path):
    prod, d, hist = pair
    bad = make_pair(tmp_path / "run", "u1__bad", prod, None, PERSONAL)
    (bad / "creative.mp4").write_bytes(b"junk")
    s = judged(pair, get_backend("offline"), pair_dir=bad)
    assert s.score is None and "undecodable" in s.error and s.proxy and "proxy" in s.label
    # no decode check before an offline call: the handler itself meets the file
    off = OfflineLike('{"score": 5, "reason": "x"}')
    assert judged(pair, off, pair_dir=bad).score == 5 and off.calls == 1


# ------------------------------------------------------------------------------------------- protocols
def test_the_protocol_a_run_was_made_under():
    assert judge.run_protocol_of(None) == "extended"  # runs from before protocols had every extension on
    assert judge.run_protocol_of({}) == "extended"
    assert judge.run_protocol_of({"protocol": "paper"}) == "paper"
    assert judge.run_protocol_of({"protocol": " PAPER "}) == "paper"
    assert judge.run_protocol_of({"protocol": "", "settings": {"protocol": "paper+post_production"}}) == \
        "paper+post_production"
    assert judge.run_protocol_of({"protocol": {"base": "paper", "judge_extras": True, "junk": 1}}) == \
        "paper+judge_extras"
    assert judge.run_protocol_of({"protocol": {}}, {"protocol": "paper"}) == "paper"
    assert judge.run_protocol_of(None, {"protocol": "extended+no_judge_extras"}) == "extended+no_judge_extras"

    class Manifest:
        protocol = "paper+compat_threshold=0.2"

    assert judge.run_protocol_of(None, Manifest()) == "paper+compat_threshold=0.2"
    assert judge.run_protocol_of({"protocol": judge.protocol_from_label("paper+slot_layouts")}) == \
        "paper+slot_layouts"
    assert judge.run_protocol_of({"protocol": " study-v9 "}) == "study-v9"  # unparseable: kept as recorded
    assert judge.run_protocol_of({"protocol": "paper"}, {"protocol": "extended"}) == "paper"  # summary first
    assert judge.run_protocol_of({"protocol": None}, object()) == "extended"  # a manifest without the field


def test_the_protocol_a_judged_number_stands_for():
    assert judge.combined_protocol("paper", "paper") == "paper"
    assert judge.combined_protocol("paper+post_production", "paper") == "paper+post_production"
    assert judge.combined_protocol("paper", "extended") == "paper · judge: extended"
    assert judge.combined_protocol("extended", "paper+judge_extras") == "extended"
    assert judge.combined_protocol("study-v9", "paper") == "study-v9 · judge: paper"
    assert judge.combined_protocol("study-v9", "study-v9") == "study-v9"


def test_protocol_labels_parse_back():
    p = judge.protocol_from_label("paper+post_production+no_judge_extras+compat_threshold=0.25")
    assert (p.base, p.post_production, p.judge_extras, p.compat_threshold) == ("paper", True, False, 0.25)
    assert judge.protocol_from_label("extended+no_frame_overwrite").frame_overwrite is False
    assert judge.protocol_from_label(" paper + slot_layouts ").slot_layouts is True
    for bad in ("paper+no_such_switch", "extended+zz_judge_extras", "paper+compat_threshold=0.2=3"):
        with pytest.raises(ValueError):
            judge.protocol_from_label(bad)


def test_a_missing_score_defaults_to_the_paper_protocol():
    s = judge._missing(PRES, Scripted(), "p1", "boom")
    assert (s.score, s.reason, s.error, s.protocol, s.pair_id) == (None, "", "boom", "paper", "p1")
    assert judge._missing(PRES, Scripted(), "p1", "boom", "extended").protocol == "extended"


def test_eight_frames_by_default(pair):
    prod, d, hist = pair
    b = Scripted('{"score": 5, "reason": "x"}')
    judge.judge_pair(PRES, d, task="pcg", product=prod, history=hist, backend=b)
    (video,) = [p for p in b.requests[0][0].parts if type(p).__name__ == "VideoPart"]
    assert video.n_frames == 8


class OfflineLike(Scripted):
    kind = "offline"


def test_integration_request_has_the_host_title_and_seam_stills_for_a_model_only(pair, tmp_path):
    prod, d, hist = pair
    p = make_pair(tmp_path / "run", "u1__pci", prod, frames_with(EARTH, n=6), PERSONAL, task="pci")
    (p / "integration.json").write_text(json.dumps({"seam_in_s": 0.6, "seam_out_s": 1.2, "insert_at_s": 0.6,
                                                    "integrated_duration_s": 2.0}))
    write_creative(p / "integrated.mp4", frames_with(EARTH, n=10))
    stills = lambda b: [x for x in b.requests[0][0].parts if type(x).__name__ == "ImagePart"]  # noqa: E731
    vlm = Scripted('{"score": 5, "reason": "x"}')
    s = judged(pair, vlm, pair_dir=p, criterion="integration_quality", task="pci", protocol="extended",
               host_title="Coffee at the cafe")
    assert s.score == 5 and vlm.requests[0][0].context["host_text"] == "Coffee at the cafe"
    assert len(stills(vlm)) == 4  # before/after each seam
    off = OfflineLike('{"score": 5, "reason": "x"}')
    s = judged(pair, off, pair_dir=p, criterion="integration_quality", task="pci", protocol="extended")
    assert s.proxy and stills(off) == []  # the proxy reads the seams from integration.json: no stills decoded


def test_copies_of_one_creative_are_decoded_and_matched_once(pair, tmp_path, monkeypatch):
    """A GenericAds run copies one creative per product into every pair: the offline judge decodes it and scores
    its product alignment once, and a changed file is read again."""
    prod, d, hist = pair
    copies = []
    for i in range(3):
        c = make_pair(tmp_path / "run", f"u{i}__copy", prod, None, PERSONAL)
        shutil.copy(d / "creative.mp4", c / "creative.mp4")
        copies.append(c)
    decodes, matches = [], []
    real_read, real_proxy = judge.read_frames, judge.product_proxy
    monkeypatch.setattr(judge, "read_frames", lambda *a, **k: decodes.append(a[0]) or real_read(*a, **k))
    monkeypatch.setattr(judge, "product_proxy", lambda *a, **k: matches.append(1) or real_proxy(*a, **k))
    judge._FRAMES.clear()
    judge._PRODUCT_MEMO.clear()
    b = get_backend("offline")
    scores = [judged(pair, b, pair_dir=c, criterion="product_alignment").score for c in copies]
    assert scores[0] is not None and scores == [scores[0]] * 3
    assert len(decodes) == 1 and len(matches) == 1
    # another content under the same name is decoded and scored anew
    media.write_video(copies[1] / "creative.mp4", [np.zeros((64, 36, 3), np.uint8)] * 6, 6.0)
    judged(pair, b, pair_dir=copies[1], criterion="product_alignment")
    assert len(decodes) == 2 and len(matches) == 2


def test_a_thumbnail_is_read_once_and_reread_when_the_file_changes(tmp_path, monkeypatch):
    p = tmp_path / "a.png"
    Image.new("RGB", (80, 40), (200, 10, 10)).save(p)
    opened = []
    real = media.Image.open
    monkeypatch.setattr(media.Image, "open", lambda *a, **k: opened.append(a[0]) or real(*a, **k))
    a = judge._image_array(p, 32)
    assert a.shape == (16, 32, 3) and tuple(a[0, 0]) == (200, 10, 10)
    assert judge._image_array(p, 32) is a and len(opened) == 1
    Image.new("RGB", (40, 40), (0, 0, 250)).save(p)
    os.utime(p, ns=(1, 1))  # a different mtime, whatever the clock's resolution
    b = judge._image_array(p, 32)
    assert b.shape == (32, 32, 3) and tuple(b[0, 0]) == (0, 0, 250) and len(opened) == 2
    assert not b.flags.writeable and np.array_equal(judge._image_array(p, 32), b)
    assert judge._image_array(tmp_path / "missing.png", 32) is None
