"""The Verifier's decision and its disclosure check on small real videos (the label burned by the Producer's own
``burn_label``, stripped from chosen frames, read back by decoding): which frames are looked at, which missing
label is which rule, where the evidence points (frame, time, slot), the PCI segment between its seams (and not
the host around it), the OCR reading handled, and the accept / revise / reject rule at its thresholds.
Fast on purpose (no Director, no judge): mutation testing runs these for every mutant of the disclosure check."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nextads_lib import media
from nextads_lib import verifier as V
from nextads_lib.producer.post import burn_label, label_box
from nextads_lib.schemas import ComplianceCheck, Evidence, Slot, Storyboard, Violation

W, H, FPS = 144, 256, 5.0


def plan2() -> Storyboard:
    """Two slots: 0 over [0, 1.5) s, 1 over [1.5, 3.0) s."""
    return Storyboard(product_id="p", user_id="u", backend="offline", personalized=True, hook="h",
                      matched_topic="coffee", duration_s=3.0, cta="Get it",
                      slots=[Slot(index=0, start_s=0.0, end_s=1.5, role="hook", camera="static", composition="a"),
                             Slot(index=1, start_s=1.5, end_s=3.0, role="cta", camera="static", composition="b")])


def video(path, n: int, labelled, fps: float = FPS):
    """``n`` frames of a slow grey ramp; frame i carries the label when ``labelled(i)``."""
    frames = []
    for i in range(n):
        f = np.full((H, W, 3), 90 + 3 * i, np.uint8)
        f[H // 2:, :, 1] = 40
        frames.append(burn_label(f) if labelled(i) else f)
    media.write_video(path, frames, fps, crf=12)
    return path


@pytest.fixture(scope="module")
def vids(tmp_path_factory):
    d = tmp_path_factory.mktemp("disclosure")
    return {
        "good": video(d / "good.mp4", 15, lambda i: True),
        "late": video(d / "late.mp4", 15, lambda i: i < 12),  # label gone from 2.4 s
        "early": video(d / "early.mp4", 15, lambda i: i >= 5),  # label only from 1.0 s
        # PCI: 5 host frames, a 10-frame segment (frames 5..14: seams at 1.0 s and 3.0 s), 5 host frames; the host
        # carries no label, as a host does not
        "integrated": video(d / "integrated.mp4", 20, lambda i: 5 <= i < 15),
        "integrated_gap": video(d / "integrated_gap.mp4", 20, lambda i: 5 <= i < 15 and i not in (11, 12)),
        "one": video(d / "one.mp4", 1, lambda i: True),  # a one-frame creative
        "first_missing": video(d / "first_missing.mp4", 15, lambda i: i != 0),  # only frame 0 lacks the label
    }


def rules(check: ComplianceCheck) -> list[str]:
    return [v.rule for v in check.violations]


# ------------------------------------------------------------------------------------------- frame choice
def test_frames_looked_at():
    assert V.label_frames(10, 3) == [0, 1, 5, 8, 9]  # bin centres 1, 5, 8 plus the first and the last
    assert V.label_frames(1, 8) == [0] and V.label_frames(2, 8) == [0, 1]
    # every half second of the first 2 s (0, 2.5->2, 5, 7.5->8, 10), the last frame before 2 s (9), then as above
    assert V._label_indices(15, FPS, 4, 2.0) == [0, 1, 2, 5, 8, 9, 10, 13, 14]
    assert V._label_indices(10, FPS, 4, 0.0) == [0, 1, 3, 6, 8, 9]
    assert V._label_indices(5, 10.0, 4, 2.0) == [0, 1, 3, 4]  # a clip shorter than 2 s: its own frames only
    # 1.3 s at 10 fps: the half seconds 0, 5, 10, then 15 and 20 and "the last frame before 2 s" (19) all become
    # the last frame 12; sample_indices(13, 3) = 2, 6, 10; so 11 is not looked at
    assert V._label_indices(13, 10.0, 3, 2.0) == [0, 2, 5, 6, 10, 12]
    assert V._label_indices(10, 5.0, 2, 0.0) == [0, 2, 7, 9]  # no head: frame 0 only, then 2, 7 and the last
    # 4 fps: half seconds 0, 2, 4, 6, 8 and the last frame before 2 s, 7 (ceil(2 * 4) - 1); then 5, 15, 19
    assert V._label_indices(20, 4.0, 2, 2.0) == [0, 2, 4, 5, 6, 7, 8, 15, 19]


def test_label_text_reading():
    for ok in ("AI Created", "ai created", "AlCreated", " AI  CREATED "):
        assert V.label_text_ok(ok), ok
    for bad in ("AI Generated", "Created", "", "AI Created!!x"):
        assert not V.label_text_ok(bad), bad


# -------------------------------------------------------------------------------------- creative frames
def test_a_labelled_creative_passes_with_what_was_looked_at(vids):
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False)
    assert c.check == "disclosure" and c.passed and c.violations == []
    assert c.checked["creative_frames"] == 9 and c.checked["creative_missing"] == 0
    assert c.checked["label_letters_min_px"] == 7.2  # 5% of the shorter side, 144 px
    assert 7 <= c.checked["label_letters_px"] <= 20
    assert "label_text" not in c.checked and "label_text_error" not in c.checked


def test_a_label_that_disappears_is_missing_in_those_frames_with_time_and_slot(vids):
    c = V.check_disclosure(plan2(), vids["late"], n_frames=4, read_label=False)
    assert not c.passed and rules(c) == ["label_missing", "label_missing"]
    assert c.checked["creative_missing"] == 2
    v13, v14 = c.violations
    assert v13.severity == "minor" and v13.check == "disclosure"
    assert (v13.evidence.frame_index, v13.evidence.start_s, v13.evidence.end_s, v13.evidence.slot) == (13, 2.6, 2.8, 1)
    assert v13.evidence.field == "frame" and v13.evidence.frame_path.endswith("late.mp4")
    assert v13.message == "no 'AI Created' label in frame 13 (2.60 s) of the creative video"
    assert v14.evidence.frame_index == 14


def test_a_label_that_starts_late_breaks_the_from_the_first_frame_rule(vids):
    c = V.check_disclosure(plan2(), vids["early"], n_frames=4, read_label=False)
    assert rules(c) == ["label_not_from_start"] * 3  # frames 0, 1, 2 of the 9 looked at
    assert [v.evidence.frame_index for v in c.violations] == [0, 1, 2]
    assert all(v.evidence.slot == 0 for v in c.violations)
    assert c.violations[0].message == ("no 'AI Created' label in frame 0 (0.00 s) of the creative video: it must "
                                       "show from the first frame for 2 s")
    # the first frame has no label, so there are no letters to measure: no second finding about their size
    assert "label_too_small" not in rules(c) and c.checked["label_letters_px"] == 0
    late = V.check_disclosure(plan2(), vids["early"], n_frames=4, read_label=False, min_label_s=0.2)
    assert rules(late) == ["label_not_from_start", "label_missing"]  # frame 0 is before 0.2 s, frame 1 at 0.2 s
    assert late.violations[0].message.endswith("for 0.2 s")


def test_without_a_plan_there_is_no_slot(vids):
    c = V.check_disclosure(None, vids["late"], n_frames=4, read_label=False)
    assert rules(c) == ["label_missing", "label_missing"] and {v.evidence.slot for v in c.violations} == {None}


def test_a_plan_without_the_label_is_a_finding(vids):
    bad = plan2().model_copy(update={"disclosure": "Sponsored"})
    c = V.check_disclosure(bad, vids["good"], n_frames=4, read_label=False)
    assert rules(c) == ["label_not_planned"] and c.violations[0].evidence.field == "disclosure"
    assert c.violations[0].severity == "minor"


def test_an_undecodable_creative_is_severe(tmp_path):
    p = tmp_path / "creative.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42 nothing")
    c = V.check_disclosure(plan2(), p, n_frames=4, read_label=False)
    (v,) = c.violations
    assert (v.rule, v.severity) == ("undecodable", "severe")
    assert v.message.startswith("the creative video cannot be decoded: ")
    assert v.evidence.frame_path.endswith("creative.mp4") and "creative_frames" not in c.checked
    assert v.evidence.field == "frame"


def test_an_undecodable_creative_does_not_stop_the_integrated_videos_check(tmp_path, vids):
    p = tmp_path / "creative.mp4"
    p.write_bytes(b"\x00\x00\x00\x18ftypmp42 nothing")
    c = V.check_disclosure(plan2(), p, n_frames=4, read_label=False, segment=(vids["integrated_gap"], 1.0, 3.0))
    assert rules(c) == ["undecodable", "label_missing"] and c.checked["integrated_missing"] == 1


def test_a_one_frame_creative_is_looked_at_and_measured(vids):
    c = V.check_disclosure(plan2(), vids["one"], n_frames=4, read_label=False)
    assert c.passed and c.checked["creative_frames"] == 1 and c.checked["creative_missing"] == 0
    assert 7 <= c.checked["label_letters_px"] <= 20


def test_eight_frames_by_default(vids):
    c = V.check_disclosure(plan2(), vids["good"], read_label=False, segment=(vids["integrated"], 1.0, 3.0))
    # creative, 15 frames at 5 fps: sample_indices(15, 8) = 0, 2, 4, 6, 8, 10, 12, 14 and the head 0, 2, 5, 8, 9,
    # 10; the segment's 10 frames: sample_indices(10, 8) = 0, 1, 3, 4, 5, 6, 8, 9 (with 9 it would be all but 4)
    assert (c.checked["creative_frames"], c.checked["integrated_frames"]) == (10, 8)


@pytest.mark.parametrize("rate, times", [
    (3.0, [(13, 4.333, 4.667), (14, 4.667, 5.0)]),  # evidence times to the millisecond
    (0.0, [(13, 13.0, 14.0), (14, 14.0, 15.0)]),  # a stream without a frame rate is read at 1 fps
])
def test_evidence_times_follow_the_probed_frame_rate(vids, monkeypatch, rate, times):
    import dataclasses

    real = V.probe
    monkeypatch.setattr(V, "probe", lambda p: dataclasses.replace(real(p), fps=rate))
    c = V.check_disclosure(None, vids["late"], n_frames=4, read_label=False)
    assert [(v.evidence.frame_index, v.evidence.start_s, v.evidence.end_s) for v in c.violations] == times
    # 1 fps: half seconds 0, 0, 1, 2, 2 and frame 1; sample_indices(15, 4) = 1, 5, 9, 13; and the last, 14
    assert c.checked["creative_frames"] == {3.0: 10, 0.0: 7}[rate]


def test_letters_under_95_percent_of_the_share_are_too_small(vids, monkeypatch):
    from nextads_lib.producer import post

    monkeypatch.setattr(post, "label_letter_height", lambda frame: 6)  # 5% of 144 px is 7.2; 95% of it 6.84
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False)
    (v,) = c.violations
    assert (v.check, v.rule, v.severity) == ("disclosure", "label_too_small", "minor")
    assert v.message == "the label's letters are 6 px, under 5% of the frame's shorter side (7 px)"
    ev = v.evidence.model_dump(exclude_none=True)
    assert ev.pop("frame_path").endswith("good.mp4")
    assert ev == {"field": "frame", "frame_index": 0, "text": "", "context": ""}  # "": the defaults
    assert (c.checked["label_letters_px"], c.checked["label_letters_min_px"]) == (6, 7.2)
    monkeypatch.setattr(post, "label_letter_height", lambda frame: 7)
    assert V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False).passed
    monkeypatch.setattr(post, "LABEL_LETTER_SHARE", 0.051)  # 7.344 px: recorded to 0.1 px
    assert V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False).checked[
        "label_letters_min_px"] == 7.3


def test_letters_at_exactly_95_percent_pass(tmp_path, monkeypatch):
    from nextads_lib.producer import post

    p = tmp_path / "square.mp4"
    media.write_video(p, [burn_label(np.full((400, 400, 3), 90, np.uint8))] * 2, FPS, crf=12)
    monkeypatch.setattr(post, "label_letter_height", lambda frame: 19)  # 5% of 400 is 20 px; 95% of it 19 px
    assert V.check_disclosure(None, p, n_frames=2, read_label=False).passed


def test_the_letters_are_not_measured_when_the_first_frame_has_no_label(vids):
    c = V.check_disclosure(plan2(), vids["first_missing"], n_frames=4, read_label=False)
    assert rules(c) == ["label_not_from_start"] and c.checked["label_letters_px"] == 0


# ----------------------------------------------------------------------------------------------- PCI
def test_pci_segment_is_checked_between_its_seams_only(vids):
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False,
                           segment=(vids["integrated"], 1.0, 3.0))
    assert c.passed, rules(c)  # the unlabelled host frames around the segment are not the ad's
    assert c.checked["integrated_frames"] == 6 and c.checked["integrated_missing"] == 0
    assert c.checked["creative_frames"] == 9 and c.checked["creative_missing"] == 0


def test_a_segment_that_lost_its_label_in_the_integrated_video_is_caught(vids):
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False,
                           segment=(vids["integrated_gap"], 1.0, 3.0))
    assert rules(c) == ["label_missing"] and c.checked["integrated_missing"] == 1
    (v,) = c.violations
    # segment frames 0, 1, 3, 6, 8, 9 are integrated frames 5, 6, 8, 11, 13, 14; 11 lost its label
    assert (v.evidence.frame_index, v.evidence.start_s) == (11, 2.2)
    assert v.evidence.slot == 0  # 1.2 s into the segment
    assert v.message == "no 'AI Created' label in frame 11 (2.20 s) of the integrated video"
    assert v.evidence.frame_path.endswith("integrated_gap.mp4")
    # the segment's creative alone passes: only the integrated video shows the loss
    assert V.check_disclosure(plan2(), vids["good"], n_frames=4, read_label=False).passed


def test_a_segment_to_the_end_of_the_integrated_video(vids):
    c = V.check_disclosure(None, vids["good"], n_frames=4, read_label=False, segment=(vids["integrated"], 1.0, 9.0))
    # seam out past the end: frames 5..19, the host's last 5 have no label; looked at: 5 + [0, 1, 5, 9, 13, 14]
    assert c.checked["integrated_frames"] == 6
    assert [v.evidence.frame_index for v in c.violations] == [18, 19]


def test_segment_of_a_pci_creative_dir(tmp_path):
    d = tmp_path / "pair"
    d.mkdir()
    assert V._segment(d, "pci") is None
    (d / "integrated.mp4").write_bytes(b"x")
    assert V._segment(d, "pci") is None  # no integration.json
    (d / "integration.json").write_text(json.dumps({"seam_in_s": "1.5", "seam_out_s": 4}))
    assert V._segment(d, "pci") == (d / "integrated.mp4", 1.5, 4.0)
    assert V._segment(d, "pcg") is None
    (d / "integration.json").write_text(json.dumps({"seam_in_s": 1.5}))
    assert V._segment(d, "pci") is None
    (d / "integration.json").write_text(json.dumps({"seam_in_s": None, "seam_out_s": 2}))
    assert V._segment(d, "pci") is None
    (d / "integration.json").write_text(json.dumps({"seam_in_s": "soon", "seam_out_s": 2}))
    assert V._segment(d, "pci") is None
    (d / "integrated.mp4").unlink()
    (d / "integration.json").write_text(json.dumps({"seam_in_s": 1, "seam_out_s": 2}))
    assert V._segment(d, "pci") is None


# ------------------------------------------------------------------------------------------- the OCR'd text
@pytest.fixture
def ocr(monkeypatch):
    """The OCR engine replaced by a reading the test chooses; the crops it was given are kept."""
    from nextads_lib.compliance import ocr as O

    def set_reading(reading):
        seen = []

        def read_line(crop):
            seen.append(crop.shape)
            if isinstance(reading, Exception):
                raise reading
            return reading

        monkeypatch.setattr(O, "read_line", read_line)
        return seen

    return set_reading


def test_the_label_is_read_in_its_box_of_the_first_frame(vids, ocr):
    seen = ocr(("AI Generated", 0.9))
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4)
    x0, y0, x1, y1 = label_box(W, H)
    assert seen == [(y1 - y0, x1 - x0, 3)]
    (v,) = c.violations
    assert (v.rule, v.severity, v.evidence.text, v.evidence.frame_index, v.evidence.start_s) == (
        "label_text", "minor", "AI Generated", 0, 0.0)
    assert v.message == "the label in frame 0 reads 'AI Generated', not 'AI Created'"
    assert v.evidence.field == "frame" and v.evidence.frame_path.endswith("good.mp4")
    assert c.checked["label_text"] == "AI Generated"


def test_a_look_alike_reading_passes_and_no_ocr_is_said(vids, ocr):
    ocr(("AlCreated", 0.8))
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4)
    assert c.passed and c.checked["label_text"] == "AlCreated"
    ocr(RuntimeError("no engine"))
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4)
    assert c.passed and c.checked["label_text_error"] == "RuntimeError: no engine" and "label_text" not in c.checked
    seen = ocr(("AI Generated", 0.9))
    V.check_disclosure(plan2(), vids["good"], n_frames=4, segment=(vids["integrated"], 1.0, 3.0))
    assert len(seen) == 1  # the creative's first frame only, not the integrated video's
    ocr(RuntimeError("no engine"))  # without OCR the integrated video is still checked
    c = V.check_disclosure(plan2(), vids["good"], n_frames=4, segment=(vids["integrated_gap"], 1.0, 3.0))
    assert rules(c) == ["label_missing"] and c.checked["integrated_missing"] == 1


# ------------------------------------------------------------------------------------------- the decision
def chk(*findings):
    """One check with a finding per (severity, slot)."""
    return ComplianceCheck(check="safety", passed=not findings, violations=[
        Violation(check="safety", rule=f"r{i}", severity=sev, message=f"m{i}", evidence=Evidence(slot=slot))
        for i, (sev, slot) in enumerate(findings)])


def test_decision_and_its_reasons():
    th = V.THRESHOLDS
    assert V.decide([chk()], 0.8) == ("accept", [
        f"accept: every compliance check passed and utility 0.80 >= {th['accept_utility']:.2f}"])
    assert V.decide([chk()], None) == ("accept", ["utility not available: the decision rests on compliance alone",
                                                  "accept: every compliance check passed"])
    assert V.decide([chk(("minor", 2))], 0.8) == ("revise", ["revise: safety/r0: m0 (slot 2)"])
    assert V.decide([chk(("minor", None))], None)[0] == "revise"
    assert V.decide([chk(("severe", None)), chk(("minor", 0))], 0.9) == (
        "reject", ["reject: safety/r0: m0", "revise: safety/r0: m0 (slot 0)"])
    assert V.decide([chk(("severe", 0))], None) == (
        "reject", ["reject: safety/r0: m0 (slot 0)", "utility not available: the decision rests on compliance alone"])


def test_decision_thresholds_are_strict_below():
    th = {"reject_utility": 0.3, "accept_utility": 0.45}
    assert V.decide([chk()], 0.3, th) == ("revise", ["revise: utility 0.30 < 0.45"])
    assert V.decide([chk()], 0.2999, th) == ("reject", ["reject: utility 0.30 < 0.30"])
    assert V.decide([chk()], 0.45, th) == ("accept", ["accept: every compliance check passed and utility 0.45 >= 0.45"])
    assert V.decide([chk()], 0.4499, th)[0] == "revise"
    assert V.decide([chk(("minor", None))], 0.1, th) == (
        "reject", ["reject: utility 0.10 < 0.30", "revise: safety/r0: m0"])
    assert V.decide([], 0.5, {"reject_utility": 0.6, "accept_utility": 0.7})[0] == "reject"


def test_slot_of_a_time():
    p = plan2()
    assert [V._slot_of(p, t) for t in (0.0, 1.4999, 1.5, 1.500002, 2.999, 3.0, 7.0)] == [0, 0, 0, 1, 1, 1, 1]
    assert V._slot_of(p, -0.0000005) == 0  # within the tolerance of the first slot's start
    assert V._slot_of(p, -1e-6) == 0 and V._slot_of(p, 1.5 + 1e-6) == 1  # the tolerance's own ends
    assert V._slot_of(p, -0.5) == 1  # outside every slot, before or after: the last slot
    three = p.model_copy(update={"slots": [*p.slots, Slot(index=2, start_s=3.0, end_s=4.0, role="cta",
                                                           camera="static", composition="c")]})
    assert V._slot_of(three, 9.0) == 2 and V._slot_of(three, 3.5) == 2
    empty = p.model_copy(update={"slots": []})
    assert V._slot_of(empty, 1.0) is None
