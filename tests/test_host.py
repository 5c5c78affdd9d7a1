"""Host video analysis and insertion on small real mp4s: shot boundaries, candidate points (never in the first or
last second), too-short / corrupt hosts, and the splice decoded back: duration, the frames at the seams, the label
only on the segment, audio paused and resumed, a host without audio, a segment of the wrong size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nextads_lib import host as H
from nextads_lib import media
from nextads_lib.producer.post import burn_label, label_box, label_present

FPS = 8.0
SIZE = (96, 160)  # width, height
RATE = 16000
SHOTS = ((40, 90, 160), (200, 150, 60), (30, 140, 70))


def host_audio(seconds: float, rate: int = RATE) -> np.ndarray:
    """A tone whose loudness swings slowly (so its envelope can be followed through AAC)."""
    t = np.arange(int(seconds * rate)) / rate
    env = 0.05 + 0.45 * np.abs(np.sin(2 * np.pi * 0.6 * t))
    return (env * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def make_host(path: Path, seconds: float = 6.0, fps: float = FPS, size=SIZE, shots=SHOTS, audio: bool = True) -> Path:
    """A host of ``len(shots)`` equal shots (flat colour, a textured band and a square moving 2 px per frame)."""
    w, h = size
    n = int(round(seconds * fps))
    per = int(np.ceil(n / len(shots)))
    frames = []
    for i in range(n):
        s = min(i // per, len(shots) - 1)
        fr = np.zeros((h, w, 3), np.uint8)
        fr[:] = shots[s]
        fr[h // 2 : h // 2 + 20, :] = (np.arange(w)[None, :, None] * 2 + 40 * s) % 255
        x = 4 + 2 * (i % per)
        fr[h // 3 : h // 3 + 14, x : x + 14] = (250, 250, 250)
        frames.append(fr)
    media.write_video(path, frames, fps, audio=host_audio(seconds) if audio else None, audio_rate=RATE, crf=16)
    return path


def make_segment(path: Path, seconds: float = 2.0, fps: float = FPS, size=SIZE, first=None, label: bool = True,
                 rate: int = 22050) -> Path:
    """A stand-in Producer clip: purple frames with a bright bar (first frame = ``first`` if given), the label
    burned in, and a quiet 880 Hz tone."""
    w, h = size
    n = int(round(seconds * fps))
    frames = []
    for i in range(n):
        fr = np.zeros((h, w, 3), np.uint8)
        fr[:] = (120, 40, 160)
        fr[h - 30 : h - 20, : (i + 1) * w // n] = 255
        if i == 0 and first is not None:
            fr = np.array(first, np.uint8)
        frames.append(burn_label(fr) if label else fr)
    t = np.arange(int(seconds * rate)) / rate
    media.write_video(path, frames, fps, audio=(0.1 * np.sin(2 * np.pi * 880 * t)).astype(np.float32),
                      audio_rate=rate, crf=16)
    return path


def envelope(a: np.ndarray, rate: int = RATE, win_s: float = 0.05) -> np.ndarray:
    w = int(win_s * rate)
    n = a.size // w
    return np.sqrt((a[: n * w].reshape(n, w).astype(np.float64) ** 2).mean(axis=1))


@pytest.fixture(scope="module")
def host_mp4(tmp_path_factory) -> Path:
    return make_host(tmp_path_factory.mktemp("host") / "host.mp4")


def test_analysis_finds_the_cuts_and_candidates_avoid_the_edges(host_mp4):
    an = H.analyze_host(host_mp4)
    assert an.n_frames == 48 and an.fps == pytest.approx(FPS)
    assert an.boundaries == [16, 32] and an.n_shots == 3
    assert 0 < an.median_change < 0.05  # the moving square, not the cuts
    cands = H.find_candidates(an)
    assert [c.index for c in cands] == list(range(len(cands))) and len(cands) >= 3
    assert all(H.EDGE_S <= c.timestamp_s <= an.duration_s - H.EDGE_S for c in cands)
    kinds = {c.kind for c in cands}
    assert "after_shot_boundary" in kinds and "middle" in kinds
    assert sorted(c.frame_index for c in cands if c.kind == "after_shot_boundary") == [18, 34]
    assert all(c.frame_index not in an.boundaries for c in cands)
    assert [c.timestamp_s for c in cands] == sorted(c.timestamp_s for c in cands)


def test_too_short_and_corrupt_hosts_are_clear_errors(tmp_path):
    short = make_host(tmp_path / "short.mp4", seconds=2.5)
    an = H.analyze_host(short, "pair p1")
    with pytest.raises(H.HostError, match=r"pair p1: host_video: the host lasts 2\.50 s.*at least 3 s"):
        H.find_candidates(an, "pair p1")
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 50)
    with pytest.raises(H.HostError, match="pair p2: host_video: .*corrupt.mp4"):
        H.analyze_host(bad, "pair p2")
    with pytest.raises(H.HostError, match="not found"):
        H.analyze_host(tmp_path / "missing.mp4", "pair p3")


def test_audio_stats(host_mp4, tmp_path):
    a = H.audio_stats(host_mp4)
    assert a["has_audio"] and -20 < a["loudness_dbfs"] < -3 and a["silence_fraction"] < 0.1
    silent = make_host(tmp_path / "mute.mp4", audio=False)
    assert H.audio_stats(silent) == {"has_audio": False, "loudness_dbfs": None, "peak_dbfs": None,
                                     "silence_fraction": None}


def test_splice_frames_label_and_audio(host_mp4, tmp_path):
    an = H.analyze_host(host_mp4)
    k = 20
    host_frames = media.read_frames(host_mp4)
    seg = make_segment(tmp_path / "seg.mp4", first=host_frames[k])
    out = tmp_path / "integrated.mp4"
    integ = H.splice(host_mp4, seg, k, out, analysis=an)
    n_seg = media.count_frames(seg)
    assert n_seg == 16
    # duration = host + segment (exactly, in frames), times as recorded
    assert media.count_frames(out) == an.n_frames + n_seg
    info = media.probe(out)
    assert abs(info.duration_s - (an.duration_s + n_seg / FPS)) <= 1 / FPS + 1e-6
    assert integ.integrated_duration_s == pytest.approx((an.n_frames + n_seg) / FPS)
    assert integ.seam_in_s == pytest.approx((k + 1) / FPS) and integ.seam_out_s == pytest.approx((k + 1 + n_seg) / FPS)
    assert (integ.width, integ.height, integ.fps) == (96, 160, FPS) and integ.segment_fit == "exact"
    assert (info.audio_rate, integ.audio_rate) == (RATE, RATE)
    got = media.read_frames(out)
    diff = lambda a, b: float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())  # noqa: E731
    # the frame before the seam is the host frame at t; the first segment frame is close to it (plus the label)
    assert diff(got[k], host_frames[k]) < 3
    x0, y0, x1, y1 = label_box(96, 160)
    outside = np.ones((160, 96), bool)
    outside[y0:y1, x0:x1] = False
    assert diff(got[k + 1][outside], host_frames[k][outside]) < 3  # identical outside the label
    assert diff(got[k + 1 + n_seg], host_frames[k + 1]) < 3  # the host resumes at the next frame
    assert diff(got[-1], host_frames[-1]) < 3
    # the label on the inserted segment only
    assert all(label_present(got[i]) for i in range(k + 1, k + 1 + n_seg))
    assert not any(label_present(got[i]) for i in list(range(0, k + 1)) + list(range(k + 1 + n_seg, len(got))))
    # seam continuity: the seam into a segment that starts on the host frame is small; the measured values
    # are the ones recorded
    cin, cout = H.seam_changes(out, k + 1, k + 1 + n_seg)
    assert (integ.seam_change_in, integ.seam_change_out) == (pytest.approx(cin, abs=1e-6), pytest.approx(cout, abs=1e-6))
    assert integ.seam_change_in < integ.seam_change_out
    # audio: host before t, the segment's (quieter) tone during, the host again after
    ha, ia = media.read_audio(host_mp4, RATE), media.read_audio(out, RATE)
    sa = media.read_audio(seg, RATE)
    eh, ei, es = envelope(ha), envelope(ia), envelope(sa)
    w = 20  # 50 ms windows per second
    t_in, t_out = int(integ.seam_in_s * w), int(integ.seam_out_s * w)
    assert np.corrcoef(ei[2 : t_in - 2], eh[2 : t_in - 2])[0, 1] > 0.95
    during = ei[t_in + 2 : t_out - 2]
    assert np.allclose(during, es[2 : 2 + during.size], atol=0.02) and during.max() < 0.1
    after = ei[t_out + 2 : t_out + 2 + (eh.size - t_in - 6)]
    assert np.corrcoef(after, eh[t_in + 2 : t_in + 2 + after.size])[0, 1] > 0.95


def test_host_without_audio_and_a_segment_of_the_wrong_size(tmp_path):
    mute = make_host(tmp_path / "mute.mp4", audio=False)
    an = H.analyze_host(mute)
    seg = make_segment(tmp_path / "wide.mp4", size=(160, 96))
    with pytest.raises(H.HostError, match=r"pair px: segment: the Producer's clip is 160x96, the host is 96x160"):
        H.splice(mute, seg, 20, tmp_path / "x.mp4", analysis=an, fit="error", item="pair px")
    out = tmp_path / "integrated.mp4"
    integ = H.splice(mute, seg, 20, out, analysis=an)
    assert integ.segment_fit == "letterbox" and "no audio" in integ.audio
    fr = media.read_frames(out, [21])[0]
    assert fr.shape == (160, 96, 3) and fr[:20, 64:].mean() < 10  # black bars above the letterboxed segment
    assert label_present(fr)  # the label burned again at the host's size
    ia = media.read_audio(out, RATE)
    e = envelope(ia)
    assert e[: int(20 * 21 / FPS) - 2].max() < 0.005  # silence where the host plays
    assert e[int(20 * 21 / FPS) + 2 : int(20 * 37 / FPS) - 2].mean() > 0.03  # the segment's tone
    with pytest.raises(H.HostError, match="decision.frame_index: 47 is outside"):
        H.splice(mute, seg, 47, tmp_path / "y.mp4", analysis=an)


def test_camera_move_from_optical_flow():
    base = np.zeros((8, 64, 64, 3), np.uint8)
    rng = np.random.default_rng(0)
    tex = (rng.random((64, 200)) * 255).astype(np.uint8)
    tex = np.repeat(np.repeat(tex[::4, ::4], 4, 0), 4, 1)[:64]
    for i in range(8):
        base[i] = tex[:, 40 - 3 * i : 104 - 3 * i, None]  # content moves right: the camera pans left
    assert H.camera_move(base)[0] == "pan_left"
    assert H.camera_move(base[::-1])[0] == "pan_right"
    assert H.camera_move(np.repeat(base[:1], 6, axis=0))[0] == "static"


def test_boundary_changes_measure_the_segment_ends_against_the_frame(tmp_path):
    """A segment that opens on the integration frame and ends elsewhere: ~0 at the start, large at the end;
    the label's box is left out, so the burned label alone does not count as a change."""
    w, h = 96, 160
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    frame = np.repeat(np.repeat(frame[::8, ::8], 8, axis=0), 8, axis=1)[:h, :w]  # blocks survive H.264
    png = media.save_image(tmp_path / "frame.png", frame)
    other = np.full((h, w, 3), 30, np.uint8)
    seg = [burn_label(frame)] * 4 + [burn_label(other)] * 4
    video = media.write_video(tmp_path / "seg.mp4", seg, 8.0, crf=12).path
    first, last = H.boundary_changes(video, png)
    assert first < 0.03 and last > 0.2
    rows = H.continuity_rows([])
    assert rows == {}


def mute_segment(path: Path, seconds: float = 2.0) -> Path:
    n = int(round(seconds * FPS))
    media.write_video(path, [burn_label(np.full((SIZE[1], SIZE[0], 3), (120, 40, 160), np.uint8))] * n, FPS, crf=16)
    return path


def test_a_segment_without_audio_pauses_the_host_audio_in_silence(host_mp4, tmp_path):
    an = H.analyze_host(host_mp4)
    seg = mute_segment(tmp_path / "mute_seg.mp4")  # 16 frames, 2 s
    out = tmp_path / "integrated.mp4"
    integ = H.splice(host_mp4, seg, 20, out, analysis=an)
    assert integ.audio == "host audio paused over the segment (silence: the segment has none), resumed after"
    assert integ.audio_rate == RATE and media.probe(out).audio_rate == RATE
    ha, e = media.read_audio(host_mp4, RATE), envelope(media.read_audio(out, RATE))
    eh = envelope(ha)
    t_in, t_out = int(21 / FPS * 20), int(37 / FPS * 20)  # 50 ms windows: the seams at frames 21 and 37
    assert np.corrcoef(e[2: t_in - 2], eh[2: t_in - 2])[0, 1] > 0.95
    assert e[t_in + 2: t_out - 2].max() < 0.005  # silence over the segment
    after = e[t_out + 2: t_out + 2 + (eh.size - t_in - 6)]
    assert np.corrcoef(after, eh[t_in + 2: t_in + 2 + after.size])[0, 1] > 0.95  # the host resumes where it paused


def test_neither_host_nor_segment_with_audio_gives_a_silent_video(tmp_path):
    mute = make_host(tmp_path / "mute.mp4", audio=False)
    an = H.analyze_host(mute)
    out = tmp_path / "integrated.mp4"
    integ = H.splice(mute, mute_segment(tmp_path / "seg.mp4"), 20, out, analysis=an)
    assert (integ.audio, integ.audio_rate) == ("no audio in the host or the segment", None)
    assert not media.probe(out).has_audio and media.count_frames(out) == an.n_frames + 16


def test_splice_edges_and_a_broken_segment(host_mp4, tmp_path):
    an = H.analyze_host(host_mp4)
    seg = mute_segment(tmp_path / "seg.mp4", seconds=0.5)  # 4 frames
    for k in (0, an.n_frames - 2):  # the first frame and the last one with a frame after it
        integ = H.splice(host_mp4, seg, k, tmp_path / f"at{k}.mp4", analysis=an)
        assert integ.host_frame_index == k and integ.insert_at_s == pytest.approx((k + 1) / FPS)
        assert media.count_frames(tmp_path / f"at{k}.mp4") == an.n_frames + 4
    for k in (-1, an.n_frames - 1):
        with pytest.raises(H.HostError) as e:
            H.splice(host_mp4, seg, k, tmp_path / "x.mp4", analysis=an, item="pair pk")
        assert (e.value.item, e.value.field) == ("pair pk", "decision.frame_index")
        assert e.value.reason == (f"{k} is outside the host's frames 0..{an.n_frames - 2} (the host has "
                                  f"{an.n_frames} frames, {an.duration_s:.2f} s)")
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    with pytest.raises(H.HostError) as e:
        H.splice(host_mp4, bad, 20, tmp_path / "y.mp4", analysis=an, item="pair pb")
    assert (e.value.item, e.value.field) == ("pair pb", "segment") and str(bad) in e.value.reason
    assert not (tmp_path / "y.mp4").exists()


def test_a_segment_that_probes_but_does_not_decode_is_a_segment_error(host_mp4, tmp_path, monkeypatch):
    """probe() reads the container; decoding the frames can still fail (a PyAV error) or give none."""
    an = H.analyze_host(host_mp4)
    seg = mute_segment(tmp_path / "seg.mp4", seconds=0.5)

    def broken(path):
        raise ValueError("bad slice header")
        yield  # a generator, as _iter_frames is

    monkeypatch.setattr(H, "_iter_frames", broken)
    with pytest.raises(H.HostError) as e:
        H.splice(host_mp4, seg, 20, tmp_path / "y.mp4", analysis=an, item="pair pd")
    assert (e.value.item, e.value.field, e.value.reason) == (
        "pair pd", "segment", f"{seg}: cannot be decoded (ValueError: bad slice header)")
    monkeypatch.setattr(H, "_iter_frames", lambda path: iter(()))
    with pytest.raises(H.HostError) as e:
        H.splice(host_mp4, seg, 20, tmp_path / "y.mp4", analysis=an, item="pair pe")
    assert (e.value.item, e.value.field, e.value.reason) == ("pair pe", "segment", f"{seg}: no frames")
    assert not (tmp_path / "y.mp4").exists()


def dominant_hz(a: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(a * np.hanning(a.size)))
    return float(np.fft.rfftfreq(a.size, 1 / rate)[int(np.argmax(spec))])


def test_audio_at_the_hosts_own_rate_keeps_both_pitches(tmp_path):
    """A host at 24 kHz (not the 16 kHz default of read_audio) and a 22.05 kHz segment: the output is at 24 kHz,
    the host's 330 Hz tone before the seam and the segment's 880 Hz tone over it."""
    host = tmp_path / "host24.mp4"
    frames = [np.full((SIZE[1], SIZE[0], 3), (40, 90, 160), np.uint8) for _ in range(48)]
    media.write_video(host, frames, FPS, audio=host_audio(6.0, 24000), audio_rate=24000, crf=16)
    an = H.analyze_host(host)
    out = tmp_path / "out.mp4"
    integ = H.splice(host, make_segment(tmp_path / "seg.mp4"), 20, out, analysis=an)
    assert integ.audio == "host audio paused over the segment (the segment's own audio plays), resumed after"
    assert integ.audio_rate == 24000 and media.probe(out).audio_rate == 24000
    a = media.read_audio(out, 24000)
    t_in, t_out = 21 / FPS, 37 / FPS
    assert abs(dominant_hz(a[int(0.2 * 24000): int((t_in - 0.2) * 24000)], 24000) - 330) < 15
    assert abs(dominant_hz(a[int((t_in + 0.2) * 24000): int((t_out - 0.2) * 24000)], 24000) - 880) < 15
    assert abs(dominant_hz(a[int((t_out + 0.2) * 24000): int((t_out + 2.0) * 24000)], 24000) - 330) < 15


def test_a_mute_host_gets_silence_as_long_as_the_video_and_the_record_is_exact(tmp_path):
    mute = make_host(tmp_path / "mute.mp4", seconds=5.875, audio=False)  # 47 frames
    out = tmp_path / "out.mp4"
    integ = H.splice(mute, make_segment(tmp_path / "seg.mp4"), 20, out)  # no analysis given: the host is analysed
    assert integ.audio == "the host has no audio: silence outside the segment, the segment's audio over it"
    assert integ.audio_rate == 22050  # the segment's rate
    assert media.read_audio(out, RATE).size / RATE == pytest.approx((47 + 16) / FPS, abs=0.05)
    assert (integ.host_duration_s, integ.segment_duration_s, integ.integrated_duration_s) == (5.875, 2.0, 7.875)
    assert integ.host_median_change > 0
    # the ratios: change / the host's median change (the recorded values are rounded to 6 decimals)
    assert integ.seam_ratio_in == pytest.approx(integ.seam_change_in / integ.host_median_change, rel=1e-3)
    assert integ.seam_ratio_out == pytest.approx(integ.seam_change_out / integ.host_median_change, rel=1e-3)
    assert integ.seam_ratio_in == round(integ.seam_ratio_in, 4) and integ.seam_ratio_out == round(integ.seam_ratio_out, 4)


def test_a_still_host_has_no_seam_ratio(tmp_path):
    still = tmp_path / "still.mp4"
    media.write_video(still, [np.full((SIZE[1], SIZE[0], 3), (40, 90, 160), np.uint8)] * 40, FPS, crf=16)
    integ = H.splice(still, make_segment(tmp_path / "seg.mp4"), 20, tmp_path / "out.mp4")
    assert integ.host_median_change < 1e-9 and (integ.seam_ratio_in, integ.seam_ratio_out) == (None, None)


def test_a_missing_host_names_the_item(tmp_path):
    seg = mute_segment(tmp_path / "seg.mp4", seconds=0.5)
    for kw, item in (({"item": "pair q"}, "pair q"), ({}, "pair")):
        with pytest.raises(H.HostError) as e:
            H.splice(tmp_path / "nope.mp4", seg, 20, tmp_path / "o.mp4", **kw)
        assert (e.value.item, e.value.field) == (item, "host_video")


def test_a_one_frame_segment_and_an_aspect_just_past_the_tolerance(host_mp4, tmp_path):
    an = H.analyze_host(host_mp4)  # 96x160: aspect 0.6, resize tolerance 0.006
    one = tmp_path / "one.mp4"
    media.write_video(one, [burn_label(np.full((160, 96, 3), (120, 40, 160), np.uint8))], FPS, crf=16)
    assert media.count_frames(H.splice(host_mp4, one, 20, tmp_path / "o1.mp4", analysis=an) and
                              tmp_path / "o1.mp4") == an.n_frames + 1
    near = tmp_path / "near.mp4"  # 98x160: aspect 0.6125, 0.0125 off (within 1/60 but past 1% of 0.6)
    media.write_video(near, [burn_label(np.full((160, 98, 3), (120, 40, 160), np.uint8))] * 4, FPS, crf=16)
    assert H.splice(host_mp4, near, 20, tmp_path / "o2.mp4", analysis=an).segment_fit == "letterbox"
    close = tmp_path / "close.mp4"  # 192x322: aspect 0.5963, 0.0037 off: resized
    media.write_video(close, [burn_label(np.full((322, 192, 3), (120, 40, 160), np.uint8))] * 4, FPS, crf=16)
    integ = H.splice(host_mp4, close, 20, tmp_path / "o3.mp4", analysis=an)
    assert integ.segment_fit == "resize"
    fr = media.read_frames(tmp_path / "o3.mp4", [22])[0].astype(int)
    assert fr[40:, :2].mean() > 60 and fr[40:, -2:].mean() > 60 and fr[-2:].mean() > 60  # no bar on any side


def test_seam_changes_are_measured_across_each_seam_outside_the_label(tmp_path):
    """Flat grey frames of known levels: the seam into frame 10 is |140 - 40| / 255 and the one into frame 20 is
    |60 - 120| / 255, whatever frames 11 and 18 hold, and a change inside the label's box does not count."""
    w, h = 128, 128
    levels = [40] * 10 + [140, 200] + [140] * 6 + [90, 120] + [60] * 10
    frames = [np.full((h, w, 3), v, np.uint8) for v in levels]
    x0, y0, x1, y1 = label_box(w, h)
    frames[10][y0:y1, x0:x1] = 255  # only inside the label's box
    v = tmp_path / "v.mp4"
    media.write_video(v, frames, FPS, crf=1)
    cin, cout = H.seam_changes(v, 10, 20)
    assert cin == pytest.approx(100 / 255, abs=0.006) and cout == pytest.approx(60 / 255, abs=0.006)
