"""The splice's retime and resize paths, decoded back from the written mp4 and checked against expectations
computed here: a segment at another fps keeps its duration in seconds (so its frame count scales by
host_fps / segment_fps, and the output frame j shows the segment at time j / host_fps); a segment of another
size is resized (same aspect) or letterboxed (other aspect) to the host's size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nextads_lib import host as H
from nextads_lib import media

HOST_FPS = 10.0
W, H_ = 64, 96
HOST_N = 40  # 4 s
K = 14  # the segment goes after host frame 14


def grey_of(i: int) -> int:
    """The grey level that marks segment frame ``i`` (steps of 5, far from the host's colours)."""
    return 20 + 5 * i


def index_of(frame: np.ndarray) -> int:
    return int(round((float(frame[8:-8, 8:-8].mean()) - 20) / 5))


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> tuple[Path, H.HostAnalysis]:
    d = tmp_path_factory.mktemp("host")
    frames = []
    for i in range(HOST_N):
        fr = np.zeros((H_, W, 3), np.uint8)
        fr[:] = (200, 60, 40)  # red-ish: never a grey marker
        fr[30:44, 4 + i:18 + i] = (250, 250, 250)
        frames.append(fr)
    p = d / "host.mp4"
    media.write_video(p, frames, HOST_FPS, crf=12)
    return p, H.analyze_host(p)


def marked_segment(path: Path, n: int, fps: float, size=(W, H_)) -> Path:
    w, h = size
    media.write_video(path, [np.full((h, w, 3), grey_of(i), np.uint8) for i in range(n)], fps, crf=12)
    return path


@pytest.mark.parametrize("seg_fps, seg_n", [(20.0, 40), (5.0, 10), (9.0, 18)])
def test_retime_keeps_the_segment_duration_and_samples_it_in_time(host, tmp_path, seg_fps, seg_n):
    host_path, an = host
    seg = marked_segment(tmp_path / "seg.mp4", seg_n, seg_fps)
    seg_seconds = seg_n / seg_fps  # 2 s either way
    out = tmp_path / "out.mp4"
    integ = H.splice(host_path, seg, K, out, analysis=an)
    expected_seg_frames = int(seg_seconds * HOST_FPS)  # 20 frames at the host's 10 fps
    info = media.probe(out)
    assert integ.segment_fit == "retime"
    assert info.fps == pytest.approx(HOST_FPS)
    assert media.count_frames(out) == HOST_N + expected_seg_frames == 60
    assert integ.segment_duration_s == pytest.approx(seg_seconds)
    assert integ.integrated_duration_s == pytest.approx(HOST_N / HOST_FPS + seg_seconds)
    assert info.duration_s == pytest.approx(6.0, abs=0.11)
    assert (integ.seam_in_s, integ.seam_out_s) == pytest.approx(((K + 1) / HOST_FPS, (K + 1) / HOST_FPS + seg_seconds))
    # output segment frame j shows the segment at t = j / 10 s, i.e. its frame floor(t * seg_fps)
    idx = list(range(K + 1, K + 1 + expected_seg_frames))
    got = [index_of(f) for f in media.read_frames(out, idx)]
    want = [int(j / HOST_FPS * seg_fps) for j in range(expected_seg_frames)]
    assert got == want
    # the host resumes right after: its frame K+1 (not a grey marker)
    after = media.read_frames(out, [K + 1 + expected_seg_frames])[0]
    assert after[..., 0].mean() > 150 and after[..., 2].mean() < 100


def test_segment_at_the_host_fps_is_not_retimed(host, tmp_path):
    host_path, an = host
    seg = marked_segment(tmp_path / "seg.mp4", 12, HOST_FPS)
    integ = H.splice(host_path, seg, K, tmp_path / "out.mp4", analysis=an)
    assert integ.segment_fit == "exact" and media.count_frames(tmp_path / "out.mp4") == HOST_N + 12
    got = [index_of(f) for f in media.read_frames(tmp_path / "out.mp4", list(range(K + 1, K + 13)))]
    assert got == list(range(12))


def halves(path: Path, size: tuple[int, int], n: int = 10, fps: float = HOST_FPS) -> Path:
    """Left half green, right half blue."""
    w, h = size
    fr = np.zeros((h, w, 3), np.uint8)
    fr[:, : w // 2] = (0, 200, 0)
    fr[:, w // 2:] = (0, 0, 200)
    media.write_video(path, [fr] * n, fps, crf=12)
    return path


def test_a_smaller_segment_of_the_same_aspect_is_resized_to_the_host(host, tmp_path):
    host_path, an = host
    seg = halves(tmp_path / "small.mp4", (W // 2, H_ // 2))
    out = tmp_path / "out.mp4"
    integ = H.splice(host_path, seg, K, out, analysis=an)
    assert integ.segment_fit == "resize" and (integ.width, integ.height) == (W, H_)
    fr = media.read_frames(out, [K + 5])[0].astype(int)
    assert fr.shape == (H_, W, 3)
    # the split stays at the middle of the host's width; no black bars (rows below the label's box)
    left, right = fr[24:, 4: W // 2 - 4], fr[24:, W // 2 + 4: W - 4]
    assert left[..., 1].mean() > 170 and left[..., 2].mean() < 30
    assert right[..., 2].mean() > 170 and right[..., 1].mean() < 30
    assert fr[24:28].mean() > 60 and fr[-4:].mean() > 60


def test_a_segment_of_another_aspect_is_letterboxed_and_retimed(host, tmp_path):
    host_path, an = host
    seg = halves(tmp_path / "square.mp4", (96, 96), n=30, fps=30.0)  # 1 s at 30 fps
    out = tmp_path / "out.mp4"
    integ = H.splice(host_path, seg, K, out, analysis=an)
    assert integ.segment_fit == "letterbox"
    assert media.count_frames(out) == HOST_N + 10  # 1 s at the host's 10 fps
    fr = media.read_frames(out, [K + 3])[0].astype(int)
    # 96x96 scaled by 64/96 -> 64x64, centred in 64x96: black rows 0..15 (under the label's box) and 80..95
    assert fr[0:2].mean() < 10 and fr[82:].mean() < 10
    assert fr[20:76, 4:28, 1].mean() > 170 and fr[20:76, 36:60, 2].mean() > 170


@pytest.mark.parametrize("size", [(W // 2, H_ // 2), (96, 96)], ids=["resized", "letterboxed"])
def test_the_label_survives_a_segment_of_another_size(host, tmp_path, size):
    """A Producer clip carries the label at its own size; in the integrated video every segment frame must
    carry it at the host's size (where the disclosure check and the Reflector's relabel look)."""
    from nextads_lib.producer.post import burn_label, label_present  # noqa: PLC0415

    host_path, an = host
    w, h = size
    seg = tmp_path / "seg.mp4"
    media.write_video(seg, [burn_label(np.full((h, w, 3), (40, 120, 60), np.uint8)) for _ in range(10)], HOST_FPS)
    out = tmp_path / "out.mp4"
    integ = H.splice(host_path, seg, K, out, analysis=an)
    assert integ.segment_fit in ("resize", "letterbox")
    frames = media.read_frames(out, list(range(K + 1, K + 11)))
    assert all(label_present(f) for f in frames)


# ------------------------------------------------------------------------------------ fit_frame, exactly
def test_fit_frame_of_the_right_size_is_the_frame_itself():
    fr = np.full((20, 40, 3), 7, np.uint8)
    assert H.fit_frame(fr, 40, 20, "letterbox") is fr and H.fit_frame(fr, 40, 20, "resize") is fr


def test_letterbox_scales_to_fit_and_centres_with_black_bars():
    wide = np.full((20, 40, 3), 200, np.uint8)  # 2:1 into a square: scale 0.5 -> 20x10, bars of 5 rows
    out = H.fit_frame(wide, 20, 20, "letterbox")
    assert out.shape == (20, 20, 3) and out.dtype == np.uint8
    assert (out[:5] == 0).all() and (out[15:] == 0).all() and (out[5:15] == 200).all()
    tall = np.full((10, 5, 3), 90, np.uint8)  # 1:2 upscaled by 2 into 40x20: 10x20, columns 15..24
    out = H.fit_frame(tall, 40, 20, "letterbox")
    assert (out[:, :15] == 0).all() and (out[:, 25:] == 0).all() and (out[:, 15:25] == 90).all()
    strip = np.full((1, 100, 3), 255, np.uint8)  # scaled to 10 x 0.1: still one row high, in the middle
    out = H.fit_frame(strip, 10, 10, "letterbox")
    assert (out.max(axis=(1, 2)) > 0).tolist() == [False] * 4 + [True] + [False] * 5  # (10 - 1) // 2 rows above


def checker(n: int) -> np.ndarray:
    y, x = np.mgrid[:n, :n]
    return np.repeat((((x + y) % 2) * 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.mark.parametrize("mode", ["resize", "letterbox"])
def test_a_downscaled_frame_is_area_averaged_not_aliased(mode):
    """A 1-pixel checkerboard shrunk 3x must come out grey (area averaging, as a clip's fine detail should
    be), not black-and-white samples of single pixels."""
    out = H.fit_frame(checker(96), 32, 32, mode).astype(int)
    assert 90 <= out.min() and out.max() <= 170


@pytest.mark.parametrize("mode", ["resize", "letterbox"])
def test_an_upscaled_frame_is_interpolated(mode):
    """Enlarged 3x, a black/white step gets intermediate values (linear), not only 0 and 255 (area on upscale
    is nearest-like)."""
    fr = np.zeros((8, 8, 3), np.uint8)
    fr[:, 4:] = 255
    out = H.fit_frame(fr, 24, 24, mode)
    row = out[12, :, 0].astype(int)
    assert ((row > 20) & (row < 235)).sum() >= 2 and row[0] == 0 and row[-1] == 255


def test_resize_stretches_a_near_aspect_frame_to_fill_and_letterbox_does_not():
    fr = np.full((50, 100, 3), 200, np.uint8)  # 2:1 into 201x100: stretched to fill, or scaled by 2 with a bar
    assert (H.fit_frame(fr, 201, 100, "resize") > 150).all()
    assert (H.fit_frame(fr, 201, 100, "letterbox")[:, -1] == 0).all()


def test_enlarging_by_any_factor_in_any_dimension_is_linear():
    step = np.zeros((8, 8, 3), np.uint8)
    step[4:] = 255  # a horizontal edge, stretched in height only (same width)
    col = H.fit_frame(step, 8, 24, "resize")[:, 3, 0].astype(int)
    assert ((col > 20) & (col < 235)).sum() >= 2
    step = np.zeros((8, 8, 3), np.uint8)
    step[:, 4:] = 255  # enlarged 1.5x into a square: a soft edge, not a hard one
    row = H.fit_frame(step, 12, 12, "letterbox")[6, :, 0].astype(int)
    assert ((row > 20) & (row < 235)).sum() >= 1


def test_a_one_pixel_wide_strip_stays_one_column_wide():
    strip = np.full((100, 1, 3), 255, np.uint8)
    out = H.fit_frame(strip, 10, 10, "letterbox")
    assert (out.max(axis=(0, 2)) > 0).tolist() == [False] * 4 + [True] + [False] * 5  # (10 - 1) // 2 columns left


def test_a_one_frame_segment_at_another_fps_still_shows_one_frame(host, tmp_path):
    host_path, an = host
    seg = marked_segment(tmp_path / "one.mp4", 1, 30.0)  # 1/30 s: rounds to no frame at 10 fps, kept as one
    integ = H.splice(host_path, seg, K, tmp_path / "out.mp4", analysis=an)
    assert integ.segment_fit == "retime" and media.count_frames(tmp_path / "out.mp4") == HOST_N + 1


def _b_frames(path: Path) -> int:
    import av

    with av.open(str(path)) as c:
        return sum(int(f.pict_type) == 3 for f in c.decode(video=0))  # AV_PICTURE_TYPE_B


def test_the_splice_encodes_with_its_own_settings(host, tmp_path):
    """ultrafast with B-frames put back (bframes=2) by default; the crf given is the crf used."""
    host_path, an = host
    seg = marked_segment(tmp_path / "seg.mp4", 10, HOST_FPS)
    assert _b_frames(H.splice(host_path, seg, K, tmp_path / "d.mp4", analysis=an) and tmp_path / "d.mp4") > 0
    H.splice(host_path, seg, K, tmp_path / "u.mp4", analysis=an, x264_params="")  # plain ultrafast: none
    assert _b_frames(tmp_path / "u.mp4") == 0
    H.splice(host_path, seg, K, tmp_path / "lo.mp4", analysis=an, crf=45)
    H.splice(host_path, seg, K, tmp_path / "hi.mp4", analysis=an, crf=5)
    assert (tmp_path / "lo.mp4").stat().st_size < (tmp_path / "hi.mp4").stat().st_size


def test_the_record_keeps_six_decimals(tmp_path):
    """At 3 fps every time is a third of a second: the record holds them to 6 decimals (written out here), and
    the measured changes and their median to 6 decimals too."""
    frames = []
    for i in range(16):  # 5.333333 s
        fr = np.full((96, 64, 3), (200, 60, 40), np.uint8)
        fr[30:44, 4 + 2 * i:18 + 2 * i] = 250
        frames.append(fr)
    media.write_video(tmp_path / "h3.mp4", frames, 3.0, crf=12)
    seg = marked_segment(tmp_path / "s3.mp4", 4, 3.0)
    integ = H.splice(tmp_path / "h3.mp4", seg, 6, tmp_path / "o3.mp4")
    assert (integ.host_duration_s, integ.insert_at_s, integ.segment_duration_s, integ.integrated_duration_s,
            integ.seam_in_s, integ.seam_out_s) == (5.333333, 2.333333, 1.333333, 6.666667, 2.333333, 3.666667)
    for v in (integ.seam_change_in, integ.seam_change_out, integ.host_median_change):
        assert v > 0 and v == round(v, 6)
