"""The Verifier and the Reflector on a real PCI creative (a tiny PCI run: host video, Producer segment spliced
after the chosen host frame): the disclosure check reads the integrated video between its seams, the utility
has a context-alignment dimension for PCI only, and the loop repairs a segment without the label in both the
creative and the integrated video."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from nextads_lib import host as H
from nextads_lib import media, pci
from nextads_lib import reflector as R
from nextads_lib import verifier as V
from nextads_lib.config import StudyPaths
from nextads_lib.producer.post import label_box, label_present
from nextads_lib.schemas import BenchPair, ProductLibrary, ReleaseRecord, UserHistory
from nextads_lib.store import read_json, read_jsonl, read_model, write_json

from test_pci import TINY, make_pci_bench  # noqa: E402  (shared small fixtures)

PAIR = "u_coffee__brewco-beans"


def recording_utility(paths: StudyPaths, calls: list[str], score: float = 7.0) -> V.UtilityAdapter:
    def judge(criterion, pair_dir, *, task, product, history, backend, n_frames=8):
        calls.append(criterion)
        return SimpleNamespace(criterion=criterion, score=score, rationale="stub", backend="stub", proxy=True,
                               label=f"{criterion} (proxy: stub)", error=None)

    def vq(video_path, backend="offline", cache=None):
        return SimpleNamespace(video_path=str(video_path), backend="stub", proxy=True, ms=0.9, dd=0.3, aq=0.6,
                               iq=0.6, labels={}, n_frames=1, fps=5.0, error=None)

    return V.UtilityAdapter("offline", "offline", paths.cache, judge_fn=judge, vq_fn=vq)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    paths = make_pci_bench(tmp_path_factory.mktemp("vpci"))
    s = pci.run_pci(paths, "nextads", "offline", "compositor", limit_users=1, workers=1, progress=False, **TINY)
    assert s.failed == 0
    return paths, s.run_name


def fresh_copy(run, tmp_path: Path) -> tuple[StudyPaths, str, Path]:
    """A copy of the whole data dir (the tests edit videos in it)."""
    paths, name = run
    dst = tmp_path / "data"
    shutil.copytree(paths.root, dst)
    p = StudyPaths(dst)
    return p, name, p.run_dir("pci", name) / PAIR


def inputs(paths: StudyPaths):
    lib = read_model(paths.library_json, ProductLibrary)
    users = {u.user_id: u for u in read_jsonl(paths.bench_users("pci"), UserHistory)}
    uid, pid = PAIR.split("__")
    return lib.get(pid), users[uid], lib


def strip_label(src: Path, dst: Path, frames_to_strip: range | None = None) -> None:
    """Paint the label's box flat grey in ``frames_to_strip`` (all frames when None); the audio is kept."""
    frames = list(media.read_frames(src))
    info = media.probe(src)
    h, w = frames[0].shape[:2]
    x0, y0, x1, y1 = label_box(w, h)
    for i in frames_to_strip if frames_to_strip is not None else range(len(frames)):
        frames[i] = frames[i].copy()
        frames[i][y0:y1, x0:x1] = 128
    audio = media.read_audio(src, info.audio_rate) if info.has_audio else None
    tmp = dst.with_suffix(".tmp.mp4")
    media.write_video(tmp, frames, info.fps, audio=audio, audio_rate=info.audio_rate or 22050, crf=16)
    tmp.replace(dst)


def seam_frames(pair_dir: Path) -> range:
    integ = read_json(pair_dir / "integration.json")
    fps = float(integ["fps"])
    return range(int(round(integ["seam_in_s"] * fps)), int(round(integ["seam_out_s"] * fps)))


def test_a_real_pci_creative_passes_disclosure_in_both_videos_and_gets_context_alignment(run, tmp_path):
    paths, name = run
    d = paths.run_dir("pci", name) / PAIR
    product, history, lib = inputs(paths)
    calls: list[str] = []
    ver = V.verify_creative(d, pair_id=PAIR, task="pci", run=name, product=product, history=history, library=lib,
                            utility=recording_utility(paths, calls))
    disc = next(c for c in ver.compliance if c.check == "disclosure")
    assert disc.passed, disc.violations
    n_seg = len(seam_frames(d))
    assert n_seg >= 8
    assert disc.checked["integrated_frames"] >= 8 and disc.checked["integrated_missing"] == 0
    assert disc.checked["creative_frames"] >= 8 and disc.checked["creative_missing"] == 0
    dims = {u.dimension: u for u in ver.utility}
    assert set(dims) == {"video_quality", "personalization", "product_alignment", "context_alignment"}
    assert "integration_quality" in calls and dims["context_alignment"].score == pytest.approx(0.7)
    assert dims["context_alignment"].raw == {"integration_quality": 7.0}
    # the same creative verified as PCG: no integrated video read, no context alignment
    calls.clear()
    pcg_ver = V.verify_creative(d, pair_id=PAIR, task="pcg", run=name, product=product, history=history, library=lib,
                                utility=recording_utility(paths, calls))
    pdisc = next(c for c in pcg_ver.compliance if c.check == "disclosure")
    assert "integrated_frames" not in pdisc.checked
    assert "context_alignment" not in {u.dimension for u in pcg_ver.utility} and "integration_quality" not in calls


def test_a_segment_without_the_label_in_the_integrated_video_is_caught(run, tmp_path):
    """The creative carries the label, the integrated video's segment does not (e.g. a splice that lost it):
    the violations point into the integrated video, between its seams."""
    paths, name, d = fresh_copy(run, tmp_path)
    seg = seam_frames(d)
    strip_label(d / "integrated.mp4", d / "integrated.mp4", seg)
    frames = media.read_frames(d / "integrated.mp4")
    assert not any(label_present(frames[i]) for i in seg)  # the planted video really lacks it there
    product, history, lib = inputs(paths)
    ver = V.verify_creative(d, pair_id=PAIR, task="pci", run=name, product=product, history=history, library=lib)
    disc = next(c for c in ver.compliance if c.check == "disclosure")
    assert not disc.passed
    assert disc.checked["creative_missing"] == 0 and disc.checked["integrated_missing"] == disc.checked[
        "integrated_frames"] >= 8
    idx = [v.evidence.frame_index for v in disc.violations]
    assert all(v.rule == "label_missing" and "integrated" in v.message for v in disc.violations)
    assert idx and all(seg.start <= i < seg.stop for i in idx)
    assert min(idx) == seg.start and max(idx) == seg.stop - 1  # the first and the last segment frame are read
    assert ver.decision == "revise"


def test_the_loop_relabels_the_segment_and_splices_it_back(run, tmp_path):
    """A creative without the label, spliced into the host: round 0 asks to relabel, round 1 burns the label
    into the creative AND into the integrated video's segment, and that round is released."""
    paths, name, d = fresh_copy(run, tmp_path)
    integ = read_json(d / "integration.json")
    strip_label(d / "creative.mp4", d / "creative.mp4")
    pair = next(p for p in read_jsonl(paths.bench_pairs("pci"), BenchPair) if p.pair_id == PAIR)
    rec = H.splice(pair.host_video, d / "creative.mp4", int(integ["host_frame_index"]), d / "integrated.mp4")
    write_json(d / "integration.json", {**integ, **rec.model_dump(mode="json")})
    seg = seam_frames(d)
    before = media.read_frames(d / "integrated.mp4")
    assert not any(label_present(before[i]) for i in seg)
    df = R.verify_and_reflect(paths, "pci", name, max_rounds=2, utility=recording_utility(paths, []),
                              progress=False)
    rows = df[df.pair_id == PAIR].sort_values("round")
    assert list(rows["decision"])[:2] == ["revise", "accept"], rows[["round", "decision", "rules", "directives"]]
    assert "relabel" in rows.iloc[1]["directives"].split(",")
    r1 = d / "verify" / "round_1"
    after = media.read_frames(r1 / "integrated.mp4")
    assert len(after) == len(before)
    assert all(label_present(after[i]) for i in seg)  # the label is back in every segment frame
    # the host frames around the segment are the host's (within encoder tolerance)
    host_idx = [i for i in range(len(before)) if i not in seg]
    diff = np.abs(after[host_idx].astype(np.float32) - before[host_idx].astype(np.float32)).mean()
    assert diff < 4.0
    rel = read_model(d / "released.json", ReleaseRecord)
    assert rel.round == 1 and rel.label_verified
