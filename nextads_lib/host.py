"""Host video analysis and insertion for PCI (paper section 5.2, Figure 7): shot boundaries, motion, the
candidate integration points, audio statistics, and the splice of a generated segment into the host.

Everything here works on real decoded frames:

- :func:`analyze_host` decodes the host once at 64x64 and measures, between consecutive frames, the mean
  absolute grey difference (``changes``, 0..1) and the colour-histogram change (``hist_changes``: half the L1
  distance of normalised 8x8x4 HSV histograms, 0..1). A *shot boundary* is a frame whose histogram change is
  at least :data:`CUT_HIST` and whose grey change is at least ``max(CUT_MIN_CHANGE, CUT_MEDIAN_X x median)``.
  A frame's *motion* is the mean grey change to its neighbours inside its shot.
- :func:`find_candidates`: the frame :data:`SETTLE_S` after each shot boundary (the new shot has settled),
  up to :data:`N_LOW_MOTION` calmest frames (motion smoothed over 0.5 s) at least 1 s from each other and from
  the boundary candidates, and the middle frame; never a frame in
  the first or last :data:`EDGE_S` seconds. A host shorter than :data:`MIN_HOST_S` has no point
  (:class:`HostError`).
- :func:`splice`: host frames ``0..k`` (k = the integration frame), the segment, host frames ``k+1..``; the
  segment is fitted to the host's size (resized when the aspect matches, letterboxed otherwise, or an error
  with ``fit="error"``) and retimed to its fps; the host audio is paused over the segment (the segment's own
  audio plays) and resumes after, at the host's sample rate. A host without audio gets silence outside the
  segment and the segment's audio inside. The seam continuity (:func:`seam_changes`) is measured on the
  written file, outside the "AI Created" label's box (the label is required on the segment; the measure is
  about the picture).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from pathlib import Path

import cv2
import numpy as np

from .config import display_path
from .media import MediaError, VideoInfo, probe, read_audio, read_frames, save_image, write_video
from .schemas import Integration, IntegrationCandidate

#: a host must last at least this long to offer a point (never in its first or last EDGE_S seconds)
MIN_HOST_S = 3.0
EDGE_S = 1.0
#: side of the grey frames every change is measured on
CHANGE_SIDE = 64
#: shot-boundary thresholds (see the module docstring)
CUT_HIST = 0.35
CUT_MIN_CHANGE = 0.05
CUT_MEDIAN_X = 3.0
#: a boundary candidate sits this long after the cut
SETTLE_S = 0.25
N_LOW_MOTION = 3
MAX_CANDIDATES = 8
#: a seam is "smooth" when its change is at most SMOOTH_X times the host's median change, or under SMOOTH_FLOOR
#: (2.5 grey levels: the noise of re-encoding a static picture, below which a cut cannot be seen)
SMOOTH_X = 3.0
SMOOTH_FLOOR = 0.01
#: silence: 50 ms windows quieter than this (dBFS)
SILENCE_DBFS = -45.0


class HostError(RuntimeError):
    """A host video or an insertion cannot be used; the message names the item and the field."""

    def __init__(self, item: str, field_name: str, reason: str):
        self.item, self.field, self.reason = item, field_name, reason
        super().__init__(f"{item}: {field_name}: {reason}")


# --------------------------------------------------------------------------------------------- frames
def grey_small(frames: np.ndarray, side: int = CHANGE_SIDE) -> np.ndarray:
    """RGB frames (T, H, W, 3) uint8 -> grey (T, side, side) float32 in 0..1."""
    out = np.empty((len(frames), side, side), np.float32)
    for i, fr in enumerate(frames):
        g = cv2.cvtColor(np.ascontiguousarray(fr), cv2.COLOR_RGB2GRAY)
        if g.shape != (side, side):
            g = cv2.resize(g, (side, side), interpolation=cv2.INTER_AREA)
        out[i] = g.astype(np.float32) / 255.0
    return out


def frame_change(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two frames on 64x64 grey, 0..1 (RGB uint8 or grey float input)."""
    ga = grey_small(a[None])[0] if a.ndim == 3 else a
    gb = grey_small(b[None])[0] if b.ndim == 3 else b
    return float(np.abs(ga - gb).mean())


def hist_changes(frames: np.ndarray) -> np.ndarray:
    """Half the L1 distance of consecutive frames' normalised 8x8x4 HSV histograms, (T-1,) in 0..1."""
    hs = []
    for fr in frames:
        hsv = cv2.cvtColor(np.ascontiguousarray(fr), cv2.COLOR_RGB2HSV)
        h = cv2.calcHist([hsv], [0, 1, 2], None, [8, 8, 4], [0, 180, 0, 256, 0, 256]).reshape(-1)
        hs.append(h / max(float(h.sum()), 1.0))
    hs_a = np.array(hs, np.float32)
    return 0.5 * np.abs(np.diff(hs_a, axis=0)).sum(axis=1) if len(hs_a) > 1 else np.zeros(0, np.float32)


def camera_move(frames: np.ndarray) -> tuple[str, float]:
    """The dominant camera move over frames (T, H, W, 3) from Farneback optical flow on 64x64 grey: the
    mean flow's direction (pan / tilt) or its divergence (zoom), ``static`` when the mean flow is under
    0.3 px per frame and the divergence under 0.004; returns (move, mean flow magnitude in px per frame)."""
    g = (grey_small(frames) * 255).astype(np.uint8)
    if len(g) < 2:
        return "static", 0.0
    ys, xs = np.mgrid[0:CHANGE_SIDE, 0:CHANGE_SIDE].astype(np.float32) - (CHANGE_SIDE - 1) / 2
    r2 = xs * xs + ys * ys + 1e-6
    dx = dy = div = mag = 0.0
    for a, b in zip(g[:-1], g[1:]):
        f = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 2, 9, 2, 5, 1.1, 0)
        dx += float(f[..., 0].mean())
        dy += float(f[..., 1].mean())
        div += float(((f[..., 0] * xs + f[..., 1] * ys) / r2).mean())
        mag += float(np.hypot(f[..., 0], f[..., 1]).mean())
    n = len(g) - 1
    dx, dy, div, mag = dx / n, dy / n, div / n, mag / n
    if abs(div) >= 0.004 and abs(div) * CHANGE_SIDE / 2 > max(abs(dx), abs(dy)):
        return ("zoom_in" if div > 0 else "zoom_out"), mag
    if max(abs(dx), abs(dy)) < 0.3:
        return "static", mag
    if abs(dx) >= abs(dy):  # content moving right = the camera pans left
        return ("pan_left" if dx > 0 else "pan_right"), mag
    return ("tilt_up" if dy > 0 else "tilt_down"), mag


# ------------------------------------------------------------------------------------------- analysis
@dataclass
class HostAnalysis:
    """What :func:`analyze_host` measured (times in seconds of the host)."""

    path: str
    info: VideoInfo
    n_frames: int
    fps: float
    changes: np.ndarray  # (T-1,) grey change between frames i and i+1
    hist_changes: np.ndarray  # (T-1,)
    boundaries: list[int]  # frame b: a cut between b-1 and b
    motion: np.ndarray  # (T,)
    small: np.ndarray = field(repr=False)  # (T, 64, 64, 3) uint8 colour frames

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps

    @property
    def median_change(self) -> float:
        """The host's own median change between consecutive frames (its cuts excluded)."""
        keep = np.ones(len(self.changes), bool)
        for b in self.boundaries:
            keep[b - 1] = False
        c = self.changes[keep] if keep.any() else self.changes
        return float(np.median(c)) if len(c) else 0.0

    @property
    def n_shots(self) -> int:
        return len(self.boundaries) + 1

    def shots(self) -> list[tuple[int, int]]:
        """(first frame, one past the last frame) of each shot."""
        edges = [0, *self.boundaries, self.n_frames]
        return list(zip(edges[:-1], edges[1:]))


def analyze_host(path: str | os.PathLike[str], item: str = "host") -> HostAnalysis:
    """Decode the host once at 64x64 and measure changes, cuts and motion. A missing, corrupt or empty
    video raises :class:`HostError` naming ``item``."""
    try:
        info = probe(path)
        small = read_frames(path, None, size=(CHANGE_SIDE, CHANGE_SIDE))
    except MediaError as e:
        raise HostError(item, "host_video", str(e)) from e
    if len(small) == 0 or info.fps <= 0:
        raise HostError(item, "host_video", f"{path}: no decodable frames")
    g = grey_small(small)
    changes = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2)) if len(g) > 1 else np.zeros(0, np.float32)
    hc = hist_changes(small)
    med = float(np.median(changes)) if len(changes) else 0.0
    thr = max(CUT_MIN_CHANGE, CUT_MEDIAN_X * med)
    boundaries = [i + 1 for i in range(len(changes)) if hc[i] >= CUT_HIST and changes[i] >= thr]
    cut = set(boundaries)
    n = len(small)
    motion = np.zeros(n, np.float32)
    for i in range(n):
        nb = []
        if i > 0 and i not in cut:
            nb.append(changes[i - 1])
        if i < n - 1 and (i + 1) not in cut:
            nb.append(changes[i])
        motion[i] = float(np.mean(nb)) if nb else 0.0
    return HostAnalysis(path=str(path), info=info, n_frames=n, fps=float(info.fps), changes=changes.astype(np.float32),
                        hist_changes=hc.astype(np.float32), boundaries=boundaries, motion=motion, small=small)


def valid_range(an: HostAnalysis, item: str = "host") -> tuple[int, int]:
    """The first and last frame index a point may use: not in the first or last EDGE_S seconds, and the
    host must have a frame after it. Raises :class:`HostError` for a host shorter than MIN_HOST_S."""
    if an.duration_s < MIN_HOST_S - 1e-6:
        raise HostError(item, "host_video", f"the host lasts {an.duration_s:.2f} s; an integration point needs at "
                        f"least {MIN_HOST_S:g} s (never in the first or last {EDGE_S:g} s)")
    lo = int(math.ceil(EDGE_S * an.fps - 1e-6))
    hi = min(int(math.floor((an.duration_s - EDGE_S) * an.fps + 1e-6)), an.n_frames - 2)
    if hi < lo:
        raise HostError(item, "host_video", "no frame lies between the first and last second")
    return lo, hi


def find_candidates(an: HostAnalysis, item: str = "host", max_candidates: int = MAX_CANDIDATES) -> list[IntegrationCandidate]:
    """Candidate points from the analysis (see the module docstring), sorted by time, indexed 0..n-1."""
    lo, hi = valid_range(an, item)
    fps = an.fps
    found: dict[int, tuple[str, float]] = {}
    settle = max(1, int(round(SETTLE_S * fps)))
    shots = an.shots()
    for b in an.boundaries:
        f = b + settle
        end = next((e for s, e in shots if s == b), an.n_frames)
        if lo <= f <= hi and f < end - 1:
            found.setdefault(f, ("after_shot_boundary", float(an.hist_changes[b - 1])))
    win = max(1, int(round(0.25 * fps)))
    sm = np.convolve(an.motion, np.ones(2 * win + 1) / (2 * win + 1), mode="same")
    order = sorted(range(lo, hi + 1), key=lambda i: (round(float(sm[i]), 6), abs(i - an.n_frames / 2)))
    picked: list[int] = []
    for i in order:
        if len(picked) >= N_LOW_MOTION:
            break
        if (all(abs(i - j) >= fps for j in [*picked, *found]) and all(abs(i - b) > settle for b in an.boundaries)):
            picked.append(i)
    for i in picked:
        found.setdefault(i, ("low_motion", 0.0))
    mid = min(max(int(an.n_frames // 2), lo), hi)
    found.setdefault(mid, ("middle", 0.0))
    frames = sorted(found)
    if len(frames) > max_candidates:  # keep the boundaries first, then the others by motion
        keep = sorted(frames, key=lambda f: (found[f][0] != "after_shot_boundary", float(an.motion[f])))[:max_candidates]
        frames = sorted(keep)
    out = []
    for k, f in enumerate(frames):
        kind, strength = found[f]
        out.append(IntegrationCandidate(index=k, timestamp_s=round(f / fps, 4), frame_index=f, kind=kind,
                                        motion=round(float(an.motion[f]), 5),
                                        boundary_strength=round(max(0.0, min(1.0, strength)), 4)))
    return out


def middle_frame(an: HostAnalysis, item: str = "host") -> int:
    """The plain mid-roll's integration frame: the middle of the host (inside the valid range)."""
    lo, hi = valid_range(an, item)
    return min(max(int(an.n_frames // 2), lo), hi)


def save_frame(path: str | os.PathLike[str], frame_index: int, out_png: str | os.PathLike[str]) -> Path:
    """The host's frame ``frame_index`` at full size, saved as PNG."""
    fr = read_frames(path, [int(frame_index)])[0]
    return save_image(Path(out_png), fr)


def audio_stats(path: str | os.PathLike[str], rate: int = 16000) -> dict[str, float | bool | None]:
    """``has_audio``, ``loudness_dbfs`` (RMS over the track), ``peak_dbfs`` and ``silence_fraction`` (share of
    50 ms windows quieter than SILENCE_DBFS); None where there is no audio."""
    a = read_audio(path, rate)
    if a.size == 0:
        return {"has_audio": False, "loudness_dbfs": None, "peak_dbfs": None, "silence_fraction": None}

    def db(x: float) -> float:
        return round(20 * math.log10(max(x, 1e-6)), 2)

    w = max(1, int(0.05 * rate))
    n = a.size // w
    win = a[: n * w].reshape(n, w) if n else a[None]
    rms = np.sqrt((win.astype(np.float64) ** 2).mean(axis=1))
    silent = float((20 * np.log10(np.maximum(rms, 1e-6)) < SILENCE_DBFS).mean())
    return {"has_audio": True, "loudness_dbfs": db(float(np.sqrt((a.astype(np.float64) ** 2).mean()))),
            "peak_dbfs": db(float(np.abs(a).max())), "silence_fraction": round(silent, 4)}


# --------------------------------------------------------------------------------------------- splice
def _iter_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    import av  # noqa: PLC0415

    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            yield fr.to_ndarray(format="rgb24", threads=1)  # swscale's own thread pool only waits on small frames


def fit_frame(frame: np.ndarray, width: int, height: int, mode: str) -> np.ndarray:
    """``frame`` at (width, height): ``resize`` stretches (used when the aspect already matches),
    ``letterbox`` scales to fit inside and pads with black."""
    h0, w0 = frame.shape[:2]
    if (w0, h0) == (width, height):
        return frame
    if mode == "resize":
        return cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA if w0 > width else cv2.INTER_LINEAR)
    s = min(width / w0, height / h0)
    nw, nh = max(1, int(round(w0 * s))), max(1, int(round(h0 * s)))
    r = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    out = np.zeros((height, width, 3), np.uint8)
    x0, y0 = (width - nw) // 2, (height - nh) // 2
    out[y0:y0 + nh, x0:x0 + nw] = r
    return out


def label_mask(width: int, height: int, side: int = CHANGE_SIDE) -> np.ndarray:
    """(side, side) bool: True outside the "AI Created" label's box (mapped onto the side x side grid, the
    cells it touches excluded). The label is required on the segment, so the seam measures the picture
    around it."""
    from .producer.post import label_box  # noqa: PLC0415

    x0, y0, x1, y1 = label_box(width, height)
    m = np.ones((side, side), bool)
    m[int(y0 * side / height): int(math.ceil(y1 * side / height)), int(x0 * side / width): int(math.ceil(x1 * side / width))] = False
    return m


def seam_changes(video: str | os.PathLike[str], seam_in: int, seam_out: int) -> tuple[float, float]:
    """The change across each seam of a written integrated video: frames (seam_in-1, seam_in) and
    (seam_out-1, seam_out), mean abs difference on 64x64 grey (0..1) outside the label's box."""
    info = probe(video)
    fr = read_frames(video, [seam_in - 1, seam_in, seam_out - 1, seam_out], size=(CHANGE_SIDE, CHANGE_SIDE))
    g = grey_small(fr)
    m = label_mask(info.width, info.height)
    return float(np.abs(g[1] - g[0])[m].mean()), float(np.abs(g[3] - g[2])[m].mean())


def boundary_changes(video: str | os.PathLike[str], image: str | os.PathLike[str]) -> tuple[float, float]:
    """How far a segment's first and last frames are from ``image`` (the integration frame, fitted to the
    video's size by cover-and-crop): mean abs difference on 64x64 grey (0..1) outside the label's box, the
    measure of :func:`seam_changes`."""
    from .media import count_frames, load_image  # noqa: PLC0415
    from .producer.post import fit_image  # noqa: PLC0415

    info = probe(video)
    n = count_frames(video)
    fr = read_frames(video, [0, max(n - 1, 0)])
    ref = fit_image(np.asarray(load_image(image)), info.width, info.height)
    g = grey_small(np.stack([fr[0], fr[-1], ref]))
    m = label_mask(info.width, info.height)
    return float(np.abs(g[0] - g[2])[m].mean()), float(np.abs(g[1] - g[2])[m].mean())


def continuity_rows(records: Sequence[Any]) -> dict[str, Any]:
    """Counts and medians over :class:`~nextads_lib.schemas.HostContinuity` records (for the seam summary)."""
    if not records:
        return {}

    def median(xs: list[float | None]) -> float | None:
        v = [x for x in xs if x is not None]
        return round(float(np.median(v)), 4) if v else None

    return {"host_checked": len(records), "host_check_failed": sum(bool(r.errors) for r in records),
            "start_change_median": median([r.start_change for r in records]),
            "return_change_median": median([r.return_change for r in records])}


#: H.264 settings of the integrated video: the Producers' fast preset (ultrafast with B-frames and CABAC put
#: back, ``producer.post``) at a lower crf than a creative's, since most of the file is the host's own footage.
#: On six sample hosts: 10-55% less CPU per splice than veryfast at crf 18, seam changes within 5e-4 of it.
SPLICE_CRF = 20
SPLICE_PRESET = "ultrafast"
SPLICE_X264_PARAMS = "bframes=2:b-adapt=0:cabac=1"


def splice(host_path: str | os.PathLike[str], segment_path: str | os.PathLike[str], frame_index: int,
           out_path: str | os.PathLike[str], *, analysis: HostAnalysis | None = None, fit: str = "auto",
           item: str = "pair", crf: int = SPLICE_CRF, preset: str = SPLICE_PRESET,
           x264_params: str = SPLICE_X264_PARAMS) -> Integration:
    """Insert the segment after host frame ``frame_index`` and write ``out_path`` (H.264 + AAC, atomic).

    ``fit``: ``auto`` resizes a segment of the host's aspect and letterboxes any other; ``error`` raises
    :class:`HostError` (field ``segment``) when the segment's size is not the host's. Returns the
    :class:`~nextads_lib.schemas.Integration` record (seams measured on the written file)."""
    an = analysis if analysis is not None else analyze_host(host_path, item)
    k = int(frame_index)
    if not 0 <= k < an.n_frames - 1:
        raise HostError(item, "decision.frame_index", f"{k} is outside the host's frames 0..{an.n_frames - 2} "
                        f"(the host has {an.n_frames} frames, {an.duration_s:.2f} s)")
    try:
        sinfo = probe(segment_path)
        seg = list(_iter_frames(segment_path))
    except MediaError as e:
        raise HostError(item, "segment", str(e)) from e
    except Exception as e:  # noqa: BLE001 - av errors
        raise HostError(item, "segment", f"{segment_path}: cannot be decoded ({type(e).__name__}: {e})") from e
    if not seg:
        raise HostError(item, "segment", f"{segment_path}: no frames")
    W, H = an.info.width // 2 * 2, an.info.height // 2 * 2
    fps = an.fps
    sh, sw = seg[0].shape[:2]
    fit_mode = "exact"
    if (sw, sh) != (W, H):
        if fit == "error":
            raise HostError(item, "segment", f"the Producer's clip is {sw}x{sh}, the host is {W}x{H}")
        fit_mode = "resize" if abs(sw / sh - W / H) <= 0.01 * (W / H) else "letterbox"
        from .producer.post import burn_label  # noqa: PLC0415

        # the Producer burned the label at the segment's size; scaled, it is no longer the label the disclosure
        # check reads (nor one the Reflector's relabel can restore), so it is burned again at the host's size
        seg = [burn_label(fit_frame(f, W, H, fit_mode)) for f in seg]
    seg_fps = float(sinfo.fps) or fps
    if abs(seg_fps - fps) > 0.01:
        n_out = max(1, int(round(len(seg) / seg_fps * fps)))
        seg = [seg[min(int(i * seg_fps / fps), len(seg) - 1)] for i in range(n_out)]
        fit_mode = "retime" if fit_mode == "exact" else fit_mode
    n_seg = len(seg)

    # audio: host up to the seam, the segment's own audio over it, the host again from the seam
    host_info = an.info
    seg_rate = sinfo.audio_rate if sinfo.has_audio else None
    rate = host_info.audio_rate if host_info.has_audio else seg_rate
    audio = None
    how = "no audio in the host or the segment"
    if rate:
        a0 = int(round((k + 1) / fps * rate))
        n_seg_a = int(round(n_seg / fps * rate))
        sa = read_audio(segment_path, rate) if seg_rate else np.zeros(0, np.float32)
        sa = np.pad(sa[:n_seg_a], (0, max(0, n_seg_a - sa.size)))
        if host_info.has_audio:
            ha = read_audio(host_path, rate)
            before = np.pad(ha[:a0], (0, max(0, a0 - min(a0, ha.size))))
            audio = np.concatenate([before, sa, ha[a0:]])
            how = ("host audio paused over the segment (the segment's own audio plays), resumed after"
                   if seg_rate else "host audio paused over the segment (silence: the segment has none), resumed after")
        else:
            n_total = int(round((an.n_frames + n_seg) / fps * rate))
            audio = np.zeros(n_total, np.float32)
            audio[a0:a0 + n_seg_a] = sa
            how = "the host has no audio: silence outside the segment, the segment's audio over it"

    def frames() -> Iterator[np.ndarray]:
        for i, fr in enumerate(_iter_frames(host_path)):
            if i >= an.n_frames:
                break
            yield np.ascontiguousarray(fr[:H, :W])
            if i == k:
                yield from seg

    out_path = Path(out_path)
    info = write_video(out_path, frames(), fps, audio=audio, audio_rate=int(rate or 22050), crf=crf, preset=preset,
                       x264_params=x264_params)
    n_total = an.n_frames + n_seg
    seam_in, seam_out = k + 1, k + 1 + n_seg
    cin, cout = seam_changes(out_path, seam_in, seam_out)
    med = an.median_change
    ratio = (lambda c: round(c / med, 4) if med > 1e-9 else None)
    return Integration(
        host_video=display_path(host_path), host_duration_s=round(an.n_frames / fps, 6),
        insert_at_s=round((k + 1) / fps, 6), segment_duration_s=round(n_seg / fps, 6),
        integrated_duration_s=round(n_total / fps, 6), seam_in_s=round(seam_in / fps, 6),
        seam_out_s=round(seam_out / fps, 6), seam_change_in=round(cin, 6), seam_change_out=round(cout, 6),
        host_median_change=round(med, 6), width=info.width, height=info.height, fps=fps, host_frame_index=k,
        seam_ratio_in=ratio(cin), seam_ratio_out=ratio(cout), segment_fit=fit_mode, audio=how,
        audio_rate=int(rate) if rate else None,
    )


def seam_rows(integrations: Sequence[Integration]) -> dict[str, float | None]:
    """Means / medians of seam continuity over integrations (for :class:`~nextads_lib.schemas.SeamSummary`)."""
    if not integrations:
        return {}

    def mean(xs: list[float]) -> float | None:
        return round(float(np.mean(xs)), 4) if xs else None

    def median(xs: list[float | None]) -> float | None:
        v = [x for x in xs if x is not None]
        return round(float(np.median(v)), 4) if v else None

    smooth = [c <= max(SMOOTH_X * i.host_median_change, SMOOTH_FLOOR) for i in integrations
              for c in (i.seam_change_in, i.seam_change_out)]
    return {
        "seam_change_in_mean": mean([i.seam_change_in for i in integrations]),
        "seam_change_out_mean": mean([i.seam_change_out for i in integrations]),
        "host_median_change_mean": mean([i.host_median_change for i in integrations]),
        "seam_ratio_in_median": median([i.seam_ratio_in for i in integrations]),
        "seam_ratio_out_median": median([i.seam_ratio_out for i in integrations]),
        "smooth_fraction": round(float(np.mean(smooth)), 4),
    }


__all__ = ["HostError", "HostAnalysis", "analyze_host", "find_candidates", "valid_range", "middle_frame",
           "save_frame", "audio_stats", "splice", "boundary_changes", "continuity_rows", "fit_frame", "seam_changes", "frame_change", "grey_small",
           "hist_changes", "camera_move", "seam_rows", "label_mask", "MIN_HOST_S", "EDGE_S", "SMOOTH_X", "SMOOTH_FLOOR"]
