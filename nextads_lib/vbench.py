"""Video quality on VBench's four dimensions the paper reports (section 4.2.3): Motion Smoothness (MS), Dynamic
Degree (DD), Aesthetic Quality (AQ) and Imaging Quality (IQ).

Three ways to get them, each named by its backend string and carried on every value it produces:

``vbench`` (the faithful path)
    VBench itself, run the way its users score their own videos (``--mode=custom_input``) in VBench's own
    environment (its pins clash with ours; setup in ``docs/vbench.md``). :func:`export_for_vbench` writes the
    creatives and a script that runs the four dimensions; :func:`read_vbench_results` reads VBench's results
    JSON back. Values are labelled with the bare names (``"MS"``, ``"DD"``, ``"AQ"``, ``"IQ"``).
``networks`` / ``networks:random`` (VBench's networks in our environment, optional extra ``vq``)
    RAFT-large through torchvision for DD, MUSIQ through pyiqa for IQ, CLIP ViT-L/14 through open_clip with the
    LAION linear head (768 -> 1) for AQ; weights from local files named by :class:`NetworkSettings` (never a
    hub). AMT-S (VBench's MS interpolator) is not among them, so MS interpolates with the RAFT flow and stays a
    proxy (``"MS (proxy: RAFT interp.)"``). ``networks:random`` builds the same architectures with random
    weights (for tests) and labels every value ``(random weights)``.
``offline`` (the embedded default: CPU, no weights)
    VBench's protocol with classical models in place of its networks; every value carries a proxy label:
    ``MS (proxy: DIS interp.)``, ``DD (proxy: DIS flow)``, ``AQ (proxy: image stats)``, ``IQ (proxy: BRISQUE)``.

Protocol details followed (learnt from VBench's ``vbench/{motion_smoothness,dynamic_degree,aesthetic_quality,
imaging_quality,utils}.py`` and ``vbench/__init__.py`` at its 2026 master):

- MS: every frame is read; the even frames (0, 2, 4, ...) are the inputs, the midpoint between each two
  consecutive even frames is interpolated (VBench: AMT-S, one pass, t = 1/2) and compared with the original odd
  frame it stands for (1, 3, 5, ...; ``len(evens) - 1`` comparisons, so a trailing odd frame is unused);
  the score is ``(255 - mean |interpolated - original|) / 255`` with the mean over pixels, channels and
  frames, in RGB at the video's own size. Fewer than 3 frames: VBench fails; here MS is missing.
- DD: frames are taken every ``max(1, round(fps / 8))`` frames from the first (about 8 fps); for each pair of
  consecutive taken frames the dense flow's magnitude is computed and the mean of its top 5 % (``int(h * w *
  0.05)`` largest values) kept; ``thres = 6 * min(H, W) / 256`` (``H, W`` of the video's frames) and
  ``count_num = round(4 * n_taken / 16)`` (Python's ``round``: halves go to even); the video is dynamic when at
  least ``count_num`` pairs score strictly above ``thres``, walking the pairs in order as VBench does (so with
  ``count_num == 0`` any video with at least one pair is dynamic). Per-video value 1.0 / 0.0 (VBench's
  ``True``/``False``); tables average it over videos.
- AQ: every frame goes through CLIP's view (shorter side resized to 224, bicubic, centre crop 224, CLIP
  mean/std); the LAION head scores the L2-normalised image embedding; the per-video value is
  ``mean(score) / 10``.
- IQ: every frame, resized so its LONGER side is 512 when it is larger (VBench's default preprocessing mode
  ``longer``; smaller frames are left alone), scaled to [0, 1], scored by MUSIQ (SPAQ weights). VBench's
  per-video result is the raw mean MUSIQ score (0-100) and only its aggregate is divided by 100; here the
  per-video value is already divided by 100 (``read_vbench_results`` does the same), so every table is 0-1.

The offline proxies, model by model:

- flow (for MS and DD): OpenCV DIS optical flow (``PRESET_ULTRAFAST``) on the luma (Y) plane, computed on
  frames downscaled so the longer side is at most ``flow_max_side`` (320; the flow is scaled back to full-size
  pixels), in place of RAFT / AMT-S's internal flow. With 15 fps videos DD's frames (every 2nd) are exactly
  MS's even frames, so one flow per pair serves both.
- DD's top 5 % is taken over the TEXTURED pixels of the pair's first frame (structure-tensor minimum
  eigenvalue > ``dd_min_eig`` = 1 on the small luma, 7 x 7 window): DIS leaves arbitrary flow in flat regions
  (the compositor's creatives are mostly flat colour), where RAFT fills in the motion of the surroundings; with
  fewer than 0.5 % textured pixels a pair scores 0. The pairs are walked lazily: VBench's rule stops at the
  pair that settles it, so later flows are not computed (same answer).
- MS interpolation: flow-warped midpoint ``M(x) = (I0(x - F(x)/2) + I1(x + F(x)/2)) / 2`` with ``F`` the
  forward flow from one even frame to the next, evaluated at the target pixel (linear-motion assumption), in
  place of AMT-S; the comparison is at full size in RGB, exactly as VBench's.
- AQ: an image-statistics estimate per frame on CLIP's 224 x 224 view, in place of the LAION head:
  ``score = 2 + 6 x (0.25 C + 0.20 K + 0.25 S + 0.20 E + 0.10 R)`` (range 2-8, about the LAION predictor's
  range on ordinary pictures), with C colourfulness (Hasler-Suesstrunk M / 110, capped at 1), K contrast (luma
  std / 70, capped), S sharpness (log10(1 + variance of the Laplacian) / 3, capped), E exposure
  (``1 - 2 |mean luma - 0.5|`` times the share of pixels neither crushed (< 8) nor blown (> 247)) and R rule of
  thirds (``1 - min(d / 0.2357, 1)``, d the distance of the centre-surround saliency centroid (``|luma -
  Gaussian(luma)|`` on a 56 x 56 copy) to the nearest thirds intersection, in frame-normalised units; 0.2357
  is the centre's distance). Per video: mean / 10.
- IQ: BRISQUE from the ``brisque`` package (its shipped SVM and scaling parameters; features computed with
  the package's own functions, the Gaussian filtering done by ``cv2.filter2D`` with zero padding, which gives
  the same numbers as its ``scipy.signal.convolve2d`` about three times faster, and its features flattened so
  it runs under numpy 2) on frames resized to a longer side of 512, mapped ``clip(100 - brisque, 0, 100) /
  100``. BRISQUE is trained on natural photographs and scores large flat synthetic areas as poor, so the
  compositor's creatives get low IQ proxies; compare systems with it, not with the paper's MUSIQ numbers.
- Subsampling (documented deviations, for speed on 2 CPU cores; each metric is a mean over frames or pairs,
  so these are unbiased samples of it): MS uses ``n_ms_pairs`` (12) of its even-frame pairs, AQ
  ``n_aq_frames`` (8) and IQ ``n_iq_frames`` (3) frames, each picked by VBench's own "middle" rule
  (``get_frame_indices``: cut into n equal intervals, take the middle of each); DD uses every pair its protocol
  asks for. ``OfflineSettings(n_ms_pairs=0, n_aq_frames=10**6, n_iq_frames=10**6)`` uses every frame.
- Decoding: PyAV, each frame once; 4:2:0 frames keep their planes and are converted to RGB by OpenCV (BT.601,
  swscale's default) only when a metric looks at them in colour (MS's frames, AQ's and IQ's samples).

Cost on the embedded creatives (360 x 640, 15 fps, 12 s): 0.45-0.65 s of CPU per video on the 2-core study
machine (decode ~0.15, MS + DD ~0.2-0.3, IQ ~0.13, AQ ~0.02; ``scripts/bench_video_quality.py``), plus a few
seconds per worker to import BRISQUE's scipy/scikit-image stack.

:func:`score_video` decodes a video once (PyAV) and shares the frames between the four metrics; results are
cached by the video's bytes, the backend, its settings and :data:`CODE_VERSION`. A video that cannot be decoded
gives a row with ``error`` set and every metric ``None`` (never 0). :func:`score_runs` scores every pair's
``creative.mp4`` of every run of a task (for PCI the generated segment) in a process pool and writes
``results/video_quality_<task>.parquet``, one row per pair x metric.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .config import StudyPaths, display_path, resolve
from .schemas import PairManifest, Schema
from .store import ArtifactError, Cache, atomic_path, content_key, read_json, read_model, write_json, write_parquet, write_text

CODE_VERSION = "vbench-1"
METRICS = ("ms", "dd", "aq", "iq")
PAPER_NAMES = {"ms": "Motion Smoothness", "dd": "Dynamic Degree", "aq": "Aesthetic Quality", "iq": "Imaging Quality"}
SHORT_NAMES = {"ms": "MS", "dd": "DD", "aq": "AQ", "iq": "IQ"}
#: VBench's dimension names (its results JSON keys and ``--dimension`` values).
VBENCH_DIMENSIONS = {"ms": "motion_smoothness", "dd": "dynamic_degree", "aq": "aesthetic_quality",
                     "iq": "imaging_quality"}
OFFLINE_LABELS = {"ms": "MS (proxy: DIS interp.)", "dd": "DD (proxy: DIS flow)", "aq": "AQ (proxy: image stats)",
                  "iq": "IQ (proxy: BRISQUE)"}
BACKENDS = ("offline", "networks", "networks:random", "vbench")
VQ_EXTRA_HINT = "pip install -e '.[vq]'"
#: Columns of ``results/video_quality_<task>.parquet`` (interfaces section 5).
RESULT_COLUMNS = ("task", "run", "system", "director_backend", "producer_backend", "vq_backend", "pair_id",
                  "user_id", "product_id", "metric", "value", "label", "proxy", "error")


class VQDependencyError(RuntimeError):
    """An optional package or a weights file the chosen backend needs is missing; the message says what to do."""


class VideoQuality(Schema):
    """The four VBench dimensions of one video, each in 0-1, with the label to show it under."""

    video_path: str
    backend: str
    proxy: bool
    ms: float | None = None
    dd: float | None = None
    aq: float | None = None
    iq: float | None = None
    labels: dict[str, str] = Field(default_factory=dict, description="metric -> display label")
    n_frames: int = 0
    fps: float = 0.0
    error: str | None = None

    def value(self, metric: str) -> float | None:
        return getattr(self, metric)


@dataclass(frozen=True)
class OfflineSettings:
    """Settings of the offline proxies (all part of the cache key)."""

    flow_max_side: int = 320
    dd_min_eig: float = 1.0
    n_ms_pairs: int = 12
    n_aq_frames: int = 8
    n_iq_frames: int = 3
    iq_max_side: int = 512


@dataclass(frozen=True)
class NetworkSettings:
    """Local weight files of the real networks (``networks`` backend). Each defaults to an environment variable:
    ``NEXTADS_VQ_RAFT`` (torchvision ``raft_large`` state dict; ``Raft_Large_Weights.C_T_V1`` is the port of
    RAFT's ``raft-things.pth`` that VBench uses), ``NEXTADS_VQ_MUSIQ`` (pyiqa's ``musiq_spaq_ckpt-358bb6af.pth``),
    ``NEXTADS_VQ_CLIP`` (OpenAI's CLIP ViT-L/14 release file ``ViT-L-14.pt``, as VBench, loaded by open_clip) and ``NEXTADS_VQ_AESTHETIC`` (LAION's
    ``sa_0_4_vit_l_14_linear.pth``); ``NEXTADS_VQ_DEVICE`` picks the torch device."""

    raft: str | None = None
    musiq: str | None = None
    clip: str | None = None
    aesthetic: str | None = None
    device: str = "cpu"
    random_weights: bool = False

    @classmethod
    def from_env(cls, random_weights: bool = False) -> "NetworkSettings":
        env = os.environ.get
        return cls(raft=env("NEXTADS_VQ_RAFT"), musiq=env("NEXTADS_VQ_MUSIQ"), clip=env("NEXTADS_VQ_CLIP"),
                   aesthetic=env("NEXTADS_VQ_AESTHETIC"), device=env("NEXTADS_VQ_DEVICE", "cpu"),
                   random_weights=random_weights)

    def key(self) -> dict[str, Any]:
        files = {k: (Path(v) if v else None) for k, v in
                 (("raft", self.raft), ("musiq", self.musiq), ("clip", self.clip), ("aesthetic", self.aesthetic))}
        return {"random_weights": self.random_weights, **({} if self.random_weights else files)}


# ------------------------------------------------------------------------------------------------ labels
def labels_for(backend: str) -> dict[str, str]:
    """The display label of each metric under ``backend`` (the bare short name only for the real thing)."""
    if backend == "offline":
        return dict(OFFLINE_LABELS)
    if backend == "vbench":
        return dict(SHORT_NAMES)
    if backend == "networks":
        return {**SHORT_NAMES, "ms": "MS (proxy: RAFT interp.)"}
    if backend == "networks:random":
        return {"ms": "MS (proxy: RAFT interp., random weights)", "dd": "DD (random weights)",
                "aq": "AQ (random weights)", "iq": "IQ (random weights)"}
    raise ValueError(f"video-quality backend '{backend}' is not one of {BACKENDS}")


def is_proxy(label: str, metric: str) -> bool:
    return label != SHORT_NAMES[metric]


# ------------------------------------------------------------------------------------------------ decode
class Clip:
    """A decoded video: every frame's luma (``(H, W)`` uint8, the Y plane) and, on demand, its RGB ``(H, W, 3)``
    uint8 (converted once from the kept 4:2:0 planes, so frames no metric looks at in colour are never
    converted)."""

    def __init__(self, fps: float, yuv: list[np.ndarray] | None = None, rgb: list[np.ndarray] | None = None,
                 size: tuple[int, int] | None = None):
        self.fps = float(fps)
        self._yuv = yuv or []
        self._rgb: dict[int, np.ndarray] = dict(enumerate(rgb)) if rgb is not None else {}
        if rgb is not None:
            import cv2  # noqa: PLC0415

            self.height, self.width = rgb[0].shape[:2]
            self.luma = [cv2.cvtColor(np.ascontiguousarray(f), cv2.COLOR_RGB2GRAY) for f in rgb]
        else:
            self.height, self.width = size  # type: ignore[misc]
            self.luma = [y[:self.height] for y in self._yuv]

    @classmethod
    def from_rgb(cls, frames: np.ndarray | Sequence[np.ndarray], fps: float) -> "Clip":
        return cls(fps, rgb=[np.ascontiguousarray(f, dtype=np.uint8) for f in frames])

    @property
    def n(self) -> int:
        return len(self.luma)

    def rgb(self, i: int) -> np.ndarray:
        if i not in self._rgb:
            import cv2  # noqa: PLC0415

            self._rgb[i] = cv2.cvtColor(self._yuv[i], cv2.COLOR_YUV2RGB_I420)
        return self._rgb[i]

    def all_rgb(self) -> np.ndarray:
        return np.stack([self.rgb(i) for i in range(self.n)])


def decode(video_path: str | os.PathLike[str]) -> Clip:
    """Decode every frame once with PyAV, keeping 4:2:0 planes (RGB is made on demand by OpenCV, BT.601 as
    swscale's default, several times faster than swscale's RGB path); other pixel formats are kept as RGB.
    Raises :class:`~nextads_lib.media.MediaError` naming the file."""
    import av  # noqa: PLC0415

    from .media import MediaError  # noqa: PLC0415

    p = Path(video_path)
    if not p.is_file():
        raise MediaError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: file is empty")
    yuv: list[np.ndarray] = []
    rgb: list[np.ndarray] = []
    size = None
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise MediaError(f"{p}: no video stream")
            vs = c.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 0) or 0.0
            for fr in c.decode(vs):
                h, w = fr.height, fr.width
                if not rgb and fr.format.name in ("yuv420p", "yuvj420p") and h % 2 == 0 and w % 2 == 0:
                    yuv.append(fr.to_ndarray(format="yuv420p"))
                    size = (h, w)
                else:
                    if yuv:  # a stream that changes format midway: convert what we kept
                        import cv2  # noqa: PLC0415

                        rgb.extend(cv2.cvtColor(y, cv2.COLOR_YUV2RGB_I420) for y in yuv)
                        yuv = []
                    rgb.append(fr.to_ndarray(format="rgb24", threads=1))
    except MediaError:
        raise
    except Exception as e:  # av.error.InvalidDataError and friends
        raise MediaError(f"{p}: cannot be decoded ({type(e).__name__}: {str(e)[:200]})") from e
    if rgb:
        return Clip(fps, rgb=rgb)
    if not yuv:
        raise MediaError(f"{p}: no decodable video frames")
    return Clip(fps, yuv=yuv, size=size)


# --------------------------------------------------------------------------------------- shared protocol
def middle_indices(n_frames: int, n: int) -> list[int]:
    """VBench's "middle" frame sampling (``get_frame_indices``): cut ``[0, n_frames)`` into ``min(n, n_frames)``
    equal integer intervals and take the middle of each."""
    k = min(int(n), int(n_frames))
    if k <= 0:
        return []
    edges = np.linspace(0, n_frames, k + 1).astype(int)
    return [int((a + b - 1) // 2) for a, b in zip(edges[:-1], edges[1:])]


def dd_interval(fps: float) -> int:
    """DD's frame step: ``max(1, round(fps / 8))`` (about 8 fps)."""
    return max(1, round(float(fps) / 8.0))


def dd_params(height: int, width: int, n_taken: int) -> tuple[float, int]:
    """DD's threshold ``6 * min(H, W) / 256`` and moving-pair count ``round(4 * n_taken / 16)``."""
    return 6.0 * (min(int(height), int(width)) / 256.0), round(4 * (int(n_taken) / 16.0))


def is_dynamic(pair_scores: Iterable[float], thres: float, count_num: int, n_pairs: int | None = None) -> bool:
    """VBench's rule, walked in order: count pairs scoring strictly above ``thres``; dynamic as soon as the count
    reaches ``count_num`` (checked after each pair, so ``count_num == 0`` is dynamic with any pair). Given
    ``n_pairs`` the walk also stops once the remaining pairs cannot reach ``count_num`` (same answer, fewer
    scores pulled from a lazy iterable)."""
    count = 0
    for i, s in enumerate(pair_scores):
        if s > thres:
            count += 1
        if count >= count_num:
            return True
        if n_pairs is not None and count + (n_pairs - i - 1) < count_num:
            return False
    return False


def top5_mean(flow: np.ndarray) -> float:
    """Mean of the largest 5 % (``int(h * w * 0.05)`` values) of the flow magnitudes of a ``(h, w, 2)`` field."""
    mag = np.sqrt(np.square(flow[..., 0], dtype=np.float64) + np.square(flow[..., 1], dtype=np.float64)).ravel()
    k = int(mag.size * 0.05)
    if k <= 0:
        return 0.0  # VBench would take the mean of an empty slice (NaN); a tiny field has no top 5 %
    return float(np.partition(mag, mag.size - k)[mag.size - k:].mean())


def ms_score(originals: Sequence[np.ndarray], interpolated: Sequence[np.ndarray]) -> float:
    """``(255 - mean |interpolated - original|) / 255`` over every pixel, channel and frame."""
    import cv2  # noqa: PLC0415

    diffs = [cv2.norm(o, i, cv2.NORM_L1) / o.size for o, i in zip(originals, interpolated)]
    return float((255.0 - float(np.mean(diffs))) / 255.0)


# -------------------------------------------------------------------------------------------- offline
@lru_cache(maxsize=4)
def _grid(h: int, w: int) -> np.ndarray:
    """``(h, w, 2)`` float32 pixel coordinates (x, y)."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.dstack([gx, gy])


@lru_cache(maxsize=1)
def _dis() -> Any:
    import cv2  # noqa: PLC0415

    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)


def small_size(h: int, w: int, max_side: int) -> tuple[int, int]:
    """(width, height) of a frame downscaled so its longer side is at most ``max_side``."""
    sc = min(1.0, float(max_side) / max(h, w))
    return (max(8, int(round(w * sc))), max(8, int(round(h * sc)))) if sc < 1.0 else (w, h)


def dis_flow(a: np.ndarray, b: np.ndarray, max_side: int = 320) -> tuple[np.ndarray, tuple[float, float]]:
    """Dense flow from luma ``a`` to ``b`` (OpenCV DIS) at a size whose longer side is at most ``max_side``.
    Returns the small field in SMALL-frame pixels and the (x, y) factors that turn it into full-size pixels."""
    import cv2  # noqa: PLC0415

    h, w = a.shape[:2]
    sw, sh = small_size(h, w, max_side)
    if (sw, sh) != (w, h):
        a = cv2.resize(a, (sw, sh), interpolation=cv2.INTER_AREA)
        b = cv2.resize(b, (sw, sh), interpolation=cv2.INTER_AREA)
    return _dis().calc(np.ascontiguousarray(a), np.ascontiguousarray(b), None), (w / sw, h / sh)


def texture_mask(luma: np.ndarray, min_eig: float = 1.0) -> np.ndarray:
    """Pixels with texture: the structure tensor's smaller eigenvalue (7 x 7 window, Sobel 3) above ``min_eig``,
    computed at half the given size (then brought back by nearest neighbour) for speed."""
    import cv2  # noqa: PLC0415

    h, w = luma.shape[:2]
    half = cv2.resize(luma, (max(8, w // 2), max(8, h // 2)), interpolation=cv2.INTER_AREA).astype(np.float32)
    m = (cv2.cornerMinEigenVal(half, 7, 3) > min_eig).astype(np.uint8)
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def _full_flow(flow: np.ndarray, factors: tuple[float, float], h: int, w: int) -> np.ndarray:
    import cv2  # noqa: PLC0415

    if flow.shape[:2] == (h, w):
        return flow
    full = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    full[..., 0] *= factors[0]
    full[..., 1] *= factors[1]
    return full


def midpoint(f0: np.ndarray, f1: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Flow-warped midpoint frame ``(f0(x - F/2) + f1(x + F/2)) / 2``; ``flow`` is full-size, from f0 to f1."""
    import cv2  # noqa: PLC0415

    grid = _grid(*f0.shape[:2])
    flow = np.ascontiguousarray(flow, dtype=np.float32)
    m0 = cv2.remap(f0, cv2.scaleAdd(flow, -0.5, grid), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    m1 = cv2.remap(f1, cv2.scaleAdd(flow, 0.5, grid), None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.addWeighted(m0, 0.5, m1, 0.5, 0.0)


def aesthetic_view(frame: np.ndarray, n_px: int = 224) -> np.ndarray:
    """CLIP's view of a frame: shorter side resized to ``n_px`` (bicubic), centre crop ``n_px`` x ``n_px``."""
    import cv2  # noqa: PLC0415

    h, w = frame.shape[:2]
    s = n_px / min(h, w)
    nh, nw = max(n_px, int(round(h * s))), max(n_px, int(round(w * s)))
    im = cv2.resize(frame, (nw, nh), interpolation=cv2.INTER_CUBIC)
    y, x = (nh - n_px) // 2, (nw - n_px) // 2
    return im[y:y + n_px, x:x + n_px]


def aesthetic_components(view: np.ndarray) -> dict[str, float]:
    """The five image statistics of the offline AQ proxy (each in 0-1; see the module docstring)."""
    import cv2  # noqa: PLC0415

    f = view.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourful = float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))
    y = cv2.cvtColor(view, cv2.COLOR_RGB2GRAY).astype(np.float32)
    lap = cv2.Laplacian(y, cv2.CV_32F, ksize=3)
    mean = float(y.mean()) / 255.0
    clipped = float(np.mean((y < 8) | (y > 247)))
    small = cv2.resize(y, (56, 56), interpolation=cv2.INTER_AREA)
    sal = np.abs(small - cv2.GaussianBlur(small, (0, 0), 5.6))
    m = cv2.moments(sal)
    cx, cy = (m["m10"] / m["m00"] / 56.0, m["m01"] / m["m00"] / 56.0) if m["m00"] > 1e-6 else (0.5, 0.5)
    d = min(np.hypot(cx - tx, cy - ty) for tx in (1 / 3, 2 / 3) for ty in (1 / 3, 2 / 3))
    return {
        "colourfulness": min(colourful / 110.0, 1.0),
        "contrast": min(float(y.std()) / 70.0, 1.0),
        "sharpness": min(float(np.log10(1.0 + float(lap.var()))) / 3.0, 1.0),
        "exposure": max(0.0, 1.0 - 2.0 * abs(mean - 0.5)) * (1.0 - clipped),
        "thirds": 1.0 - min(float(d) / 0.2357, 1.0),
    }


AQ_WEIGHTS = {"colourfulness": 0.25, "contrast": 0.20, "sharpness": 0.25, "exposure": 0.20, "thirds": 0.10}


def aesthetic_proxy(frame: np.ndarray) -> float:
    """Offline AQ proxy of one RGB frame on a 0-10 scale (2-8 in practice): ``2 + 6 x weighted statistics``."""
    c = aesthetic_components(aesthetic_view(frame))
    return 2.0 + 6.0 * sum(AQ_WEIGHTS[k] * c[k] for k in AQ_WEIGHTS)


def resize_longer(frame: np.ndarray, max_side: int = 512) -> np.ndarray:
    """VBench's IQ preprocessing ``longer``: downscale so the longer side is ``max_side`` when it is larger."""
    import cv2  # noqa: PLC0415

    h, w = frame.shape[:2]
    if max(h, w) <= max_side:
        return frame
    s = max_side / max(h, w)
    return cv2.resize(frame, (int(s * w), int(s * h)), interpolation=cv2.INTER_AREA)


@lru_cache(maxsize=1)
def _brisque() -> Any:
    import cv2  # noqa: PLC0415
    from brisque import BRISQUE  # noqa: PLC0415

    class FastBRISQUE(BRISQUE):
        """The package's BRISQUE (its SVM, scaling and feature code) with the Gaussian local mean/variance done
        by ``cv2.filter2D`` (zero padding, the same numbers as ``convolve2d(..., 'same')``), the unused
        duplicate MSCN pass of ``score`` skipped, and features flattened for numpy 2."""

        def calculate_mscn_coefficients(self, image, kernel_size=6, sigma=7 / 6):  # type: ignore[override]
            k = self.gaussian_kernel2d(kernel_size, sigma=sigma)
            mean = cv2.filter2D(image, -1, k, borderType=cv2.BORDER_CONSTANT)
            sq = cv2.filter2D(image * image, -1, k, borderType=cv2.BORDER_CONSTANT)
            return (image - mean) / (np.sqrt(np.abs(mean ** 2 - sq)) + 1 / 255)

        def scale_features(self, features):  # type: ignore[override]
            flat = np.array([float(np.asarray(f, dtype=np.float64).reshape(-1)[0]) for f in features])
            return super().scale_features(flat)

        def score(self, img):  # type: ignore[override]
            import skimage.color  # noqa: PLC0415

            gray = skimage.color.rgb2gray(np.asarray(img)[..., :3])
            feats = self.calculate_brisque_features(gray, kernel_size=7, sigma=7 / 6)
            half = cv2.resize(gray, None, fx=1 / 2, fy=1 / 2, interpolation=cv2.INTER_CUBIC)
            feats = np.concatenate((feats, self.calculate_brisque_features(half, kernel_size=7, sigma=7 / 6)))
            return self.calculate_image_quality_score(feats)

    return FastBRISQUE(url=False)


def brisque_score(frame: np.ndarray) -> float:
    """BRISQUE of an RGB frame (lower is better, about 0-100); NaN where its fit is undefined (e.g. a frame with
    no negative MSCN products, such as a flat frame)."""
    with np.errstate(all="ignore"):
        try:
            return float(_brisque().score(frame))
        except (ValueError, ZeroDivisionError, FloatingPointError):
            return float("nan")


def imaging_proxy(frame: np.ndarray, max_side: int = 512) -> float:
    """Offline IQ proxy on VBench's 0-100 scale: ``clip(100 - BRISQUE, 0, 100)`` of the frame resized to a
    longer side of ``max_side``."""
    b = brisque_score(resize_longer(frame, max_side))
    return float(np.clip(100.0 - b, 0.0, 100.0)) if np.isfinite(b) else float("nan")


def _ms_and_dd(clip: Clip, flows: Any, n_ms_pairs: int = 0) -> tuple[float | None, float | None, list[str]]:
    """MS and DD of a clip; ``flows(a, b)`` gives the full-size flow from frame a to b and ``flows.top5(a, b)``
    DD's per-pair score, each computed once (so DD's pairs and MS's even pairs share their flows)."""
    notes: list[str] = []
    n, h, w = clip.n, clip.height, clip.width
    ms = None
    evens = list(range(0, n, 2))
    if len(evens) > 1:
        pairs = list(zip(evens[:-1], evens[1:]))
        if n_ms_pairs and len(pairs) > n_ms_pairs:
            pairs = [pairs[i] for i in middle_indices(len(pairs), n_ms_pairs)]
        interp = [midpoint(clip.rgb(a), clip.rgb(b), flows(a, b)) for a, b in pairs]
        ms = ms_score([clip.rgb(a + 1) for a, _ in pairs], interp)
    else:
        notes.append(f"motion smoothness needs at least 3 frames (got {n})")
    taken = list(range(0, n, dd_interval(clip.fps or 8.0)))
    thres, count_num = dd_params(h, w, len(taken))
    # lazily: the rule stops at the pair that settles it, so later flows are never computed (same answer)
    pairs_dd = list(zip(taken[:-1], taken[1:]))
    scores = (flows.score(a, b, thres) for a, b in pairs_dd)
    dd = 1.0 if is_dynamic(scores, thres, count_num, len(pairs_dd)) else 0.0
    return ms, dd, notes


class _OfflineFlows:
    """DIS flows between frame pairs, each computed once and shared by MS and DD. DD's top-5 % mean is taken
    over the textured pixels of the pair's first frame (:func:`texture_mask` on the small luma): DIS leaves
    arbitrary flow in flat regions, where RAFT fills in the motion of the surroundings; a frame with fewer
    than 0.5 % textured pixels shows no measurable motion (score 0)."""

    def __init__(self, clip: Clip, max_side: int, min_eig: float = 1.0):
        self.clip, self.max_side, self.min_eig = clip, max_side, min_eig
        self.size = small_size(clip.height, clip.width, max_side)
        self.fac = (clip.width / self.size[0], clip.height / self.size[1])
        self.lumas: dict[int, np.ndarray] = {}
        self.small: dict[tuple[int, int], np.ndarray] = {}

    def _luma(self, i: int) -> np.ndarray:
        if i not in self.lumas:
            import cv2  # noqa: PLC0415

            y = self.clip.luma[i]
            self.lumas[i] = (y if self.size == (self.clip.width, self.clip.height) else
                             cv2.resize(y, self.size, interpolation=cv2.INTER_AREA))
        return self.lumas[i]

    def _get(self, a: int, b: int) -> np.ndarray:
        if (a, b) not in self.small:
            self.small[(a, b)] = _dis().calc(self._luma(a), self._luma(b), None)
        return self.small[(a, b)]

    def __call__(self, a: int, b: int) -> np.ndarray:
        return _full_flow(self._get(a, b), self.fac, self.clip.height, self.clip.width)

    def score(self, a: int, b: int, thres: float) -> float:
        """:meth:`top5` where it can exceed ``thres``; else the largest flow magnitude, a bound below ``thres``
        that settles the comparison without the texture mask (the top-5 % mean never exceeds the maximum)."""
        flow = self._get(a, b)
        peak = float(np.sqrt((np.square(flow) * np.float32(self.fac) ** 2).sum(axis=-1).max()))
        return peak if peak <= thres else self.top5(a, b)

    def top5(self, a: int, b: int) -> float:
        flow = self._get(a, b)
        mask = texture_mask(self._luma(a), self.min_eig)
        if mask.sum() < 0.005 * mask.size:
            return 0.0
        return top5_mean((flow[mask] * np.float32(self.fac))[:, None, :])


def score_clip_offline(clip: Clip, settings: OfflineSettings = OfflineSettings()) -> dict[str, Any]:
    """The four offline proxies of a decoded clip: ``{"ms", "dd", "aq", "iq", "notes"}`` (values 0-1)."""
    flows = _OfflineFlows(clip, settings.flow_max_side, settings.dd_min_eig)
    ms, dd, notes = _ms_and_dd(clip, flows, settings.n_ms_pairs)
    aq = float(np.mean([aesthetic_proxy(clip.rgb(i)) for i in middle_indices(clip.n, settings.n_aq_frames)])) / 10
    iqs = [imaging_proxy(clip.rgb(i), settings.iq_max_side) for i in middle_indices(clip.n, settings.n_iq_frames)]
    iqs = [v for v in iqs if np.isfinite(v)]
    iq = float(np.mean(iqs)) / 100 if iqs else None
    if not iqs:
        notes.append("imaging quality: BRISQUE is undefined on every sampled frame (flat frames)")
    return {"ms": ms, "dd": dd, "aq": aq, "iq": iq, "notes": notes}


# ------------------------------------------------------------------------------------------- networks
def require_vq(modules: Sequence[str] = ("torch", "torchvision", "pyiqa", "open_clip")) -> dict[str, Any]:
    """Import the optional packages of the ``networks`` backend; a missing one raises
    :class:`VQDependencyError` naming it and the extra to install."""
    out, missing = {}, []
    for m in modules:
        try:
            out[m] = importlib.import_module(m)
        except Exception as e:  # ImportError, or torchvision's operator registration failing beside a CPU torch
            missing.append(f"{m} ({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")
    if missing:
        raise VQDependencyError(
            "video-quality backend 'networks' needs the optional extra 'vq' (torchvision, pyiqa, open-clip-torch, "
            f"with a torchvision that matches torch): {VQ_EXTRA_HINT}; missing: {'; '.join(missing)}")
    return out


def _need(path: str | None, setting: str, what: str) -> str:
    if not path:
        raise VQDependencyError(f"video-quality backend 'networks' needs {what}: set NetworkSettings.{setting} or "
                                f"${'NEXTADS_VQ_' + setting.upper()} to a local file (see docs/vbench.md)")
    if not Path(path).is_file():
        raise VQDependencyError(f"NetworkSettings.{setting}: {path}: file not found ({what})")
    return path


#: torchvision's RAFT refuses feature maps (1/8 of the input) under 16 px a side: its 4-level correlation pyramid
RAFT_MIN_SIDE = 128


def raft_padding(h: int, w: int, multiple: int = 8, min_side: int = RAFT_MIN_SIDE) -> tuple[int, int, int, int]:
    """``(left, right, top, bottom)`` edge padding that brings an ``h`` x ``w`` frame to a multiple of ``multiple``
    and at least ``min_side`` a side (torchvision's RAFT raises on smaller inputs, the original RAFT that VBench
    runs does not), split evenly around the frame so the flow can be cropped back."""

    def total(n: int) -> int:
        return max(n + (-n) % multiple, min_side + (-min_side) % multiple) - n

    pw, ph = total(w), total(h)
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


class Networks:
    """RAFT-large (torchvision), MUSIQ (pyiqa) and CLIP ViT-L/14 + LAION head (open_clip), loaded once."""

    def __init__(self, settings: NetworkSettings):
        mods = require_vq()
        torch = mods["torch"]
        from open_clip import create_model  # noqa: PLC0415
        from pyiqa.archs.musiq_arch import MUSIQ  # noqa: PLC0415
        from torchvision.models.optical_flow import raft_large  # noqa: PLC0415

        self.torch, self.device, self.settings = torch, torch.device(settings.device), settings
        rnd = settings.random_weights
        if rnd:
            torch.manual_seed(0)
        self.raft = raft_large(weights=None, progress=False)
        if not rnd:
            sd = torch.load(_need(settings.raft, "raft", "RAFT-large weights"), map_location="cpu")
            self.raft.load_state_dict({k.replace("module.", ""): v for k, v in sd.items()})
        self.musiq = (MUSIQ(pretrained=False) if rnd else
                      MUSIQ(pretrained_model_path=_need(settings.musiq, "musiq", "MUSIQ (SPAQ) weights")))
        # OpenAI's ViT-L/14 uses QuickGELU: open_clip's "-quickgelu" config is the same architecture
        if rnd:
            self.clip = create_model("ViT-L-14-quickgelu", pretrained=None)
        else:
            clip_path = _need(settings.clip, "clip", "CLIP ViT-L/14 weights")
            try:  # OpenAI's release file (VBench's ViT-L-14.pt, TorchScript or state dict)
                from open_clip import load_openai_model  # noqa: PLC0415

                self.clip = load_openai_model(clip_path, device="cpu")
            except Exception:  # an open_clip checkpoint of the same model
                self.clip = create_model("ViT-L-14-quickgelu", pretrained=clip_path)
        self.head = torch.nn.Linear(768, 1)
        if not rnd:
            self.head.load_state_dict(torch.load(_need(settings.aesthetic, "aesthetic", "LAION aesthetic head"),
                                                 map_location="cpu"))
        for m in (self.raft, self.musiq, self.clip, self.head):
            m.to(self.device).eval()

    def flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """RAFT flow (20 updates, as VBench) from RGB frame ``a`` to ``b``, edge-padded as :func:`raft_padding`
        says and cropped back to the frame."""
        torch = self.torch
        h, w = a.shape[:2]
        pad = raft_padding(h, w)

        def prep(x: np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float().to(self.device)
            t = torch.nn.functional.pad(t, pad, mode="replicate")
            return t / 127.5 - 1.0

        with torch.no_grad():
            out = self.raft(prep(a), prep(b), num_flow_updates=20)[-1][0]
        out = out[:, pad[2]:pad[2] + h, pad[0]:pad[0] + w]
        return out.permute(1, 2, 0).cpu().numpy().astype(np.float32)

    def aesthetic(self, frames: np.ndarray, batch: int = 32) -> float:
        torch = self.torch
        mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(1, 3, 1, 1)
        std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(1, 3, 1, 1)
        scores = []
        with torch.no_grad():
            for i in range(0, len(frames), batch):
                x = np.stack([aesthetic_view(f) for f in frames[i:i + batch]])
                t = (torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255.0 - mean) / std
                feats = self.clip.encode_image(t.to(self.device)).float()
                feats = torch.nn.functional.normalize(feats, dim=-1, p=2)
                scores.append(self.head(feats).reshape(-1).cpu())
        return float(torch.cat(scores).mean()) / 10.0

    def imaging(self, frames: np.ndarray) -> float:
        torch = self.torch
        vals = []
        with torch.no_grad():
            for f in frames:
                x = torch.from_numpy(np.ascontiguousarray(resize_longer(f, 512))).permute(2, 0, 1)[None].float()
                vals.append(float(self.musiq((x / 255.0).to(self.device)).reshape(-1)[0]))
        return float(np.mean(vals)) / 100.0


@lru_cache(maxsize=2)
def _networks(settings: NetworkSettings) -> Networks:
    return Networks(settings)


class _NetFlows:
    def __init__(self, clip: Clip, nets: Networks):
        self.clip, self.nets = clip, nets
        self.memo: dict[tuple[int, int], np.ndarray] = {}

    def __call__(self, a: int, b: int) -> np.ndarray:
        if (a, b) not in self.memo:
            self.memo[(a, b)] = self.nets.flow(self.clip.rgb(a), self.clip.rgb(b))
        return self.memo[(a, b)]

    def top5(self, a: int, b: int) -> float:
        return top5_mean(self(a, b))

    def score(self, a: int, b: int, thres: float) -> float:
        return self.top5(a, b)


def score_clip_networks(clip: Clip, settings: NetworkSettings) -> dict[str, Any]:
    """VBench's networks in our environment (all frames for AQ and IQ, as VBench)."""
    nets = _networks(settings)
    ms, dd, notes = _ms_and_dd(clip, _NetFlows(clip, nets))
    frames = clip.all_rgb()
    return {"ms": ms, "dd": dd, "aq": nets.aesthetic(frames), "iq": nets.imaging(frames), "notes": notes}


# ------------------------------------------------------------------------------------------- score_video
def _settings_key(backend: str, offline: OfflineSettings, networks: NetworkSettings | None) -> dict[str, Any]:
    if backend == "offline":
        return {"offline": offline.__dict__}
    return {"networks": (networks or NetworkSettings.from_env(backend == "networks:random")).key()}


def error_row(video_path: str | os.PathLike[str], backend: str, error: str) -> VideoQuality:
    labels = labels_for(backend)
    return VideoQuality(video_path=display_path(video_path), backend=backend,
                        proxy=any(is_proxy(labels[m], m) for m in METRICS), labels=labels, error=error)


def cached(cache: Cache | None, key: str, video_path: Path) -> VideoQuality | None:
    """The cached row under ``key`` (re-pointed at ``video_path``), or None."""
    if cache is None:
        return None
    data = cache.get_json("vbench", key)
    if data is None:
        return None
    try:
        return VideoQuality.model_validate({**data, "video_path": display_path(video_path)})
    except ValueError:
        return None


def score_video(video_path: str | os.PathLike[str], backend: str = "offline", cache: Cache | None = None, *,
                offline: OfflineSettings = OfflineSettings(), networks: NetworkSettings | None = None) -> VideoQuality:
    """Score one video on the four dimensions under ``backend`` (``offline``, ``networks``, ``networks:random``),
    decoding it once. Never raises for a bad video: the row gets ``error`` and ``None`` metrics. A missing
    optional package or weights file of the ``networks`` backends raises :class:`VQDependencyError`."""
    from .media import MediaError  # noqa: PLC0415

    if backend == "vbench":
        raise ValueError("backend 'vbench' runs in VBench's own environment: export_for_vbench(...), run its "
                         "script, then read_vbench_results(...) (see docs/vbench.md)")
    labels = labels_for(backend)
    p = Path(video_path)
    if backend != "offline":
        require_vq()
    if networks is None and backend != "offline":
        networks = NetworkSettings.from_env(random_weights=backend == "networks:random")
    if networks is not None and backend == "networks" and networks.random_weights:
        raise ValueError("backend 'networks' is for real weights; random weights are backend 'networks:random'")
    if networks is not None and backend == "networks:random" and not networks.random_weights:
        networks = NetworkSettings(**{**networks.__dict__, "random_weights": True})
    if not p.is_file() or p.stat().st_size == 0:
        return error_row(p, backend, f"{p}: {'file is empty' if p.is_file() else 'file not found'}")
    key = content_key(p, backend, _settings_key(backend, offline, networks), CODE_VERSION)
    hit = cached(cache, key, p)
    if hit is not None:
        return hit
    try:
        clip = decode(p)
    except MediaError as e:
        return error_row(p, backend, str(e))
    out = score_clip_offline(clip, offline) if backend == "offline" else score_clip_networks(clip, networks)
    vq = VideoQuality(video_path=display_path(p), backend=backend,
                      proxy=any(is_proxy(labels[m], m) for m in METRICS),
                      **{m: (None if out[m] is None else round(float(out[m]), 6)) for m in METRICS},
                      labels=labels, n_frames=clip.n, fps=round(clip.fps, 4),
                      error="; ".join(out["notes"]) or None)
    if cache is not None:
        cache.put_json("vbench", key, vq)
    return vq


# --------------------------------------------------------------------------------------------- VBench
def export_name(task: str, run: str, pair_id: str) -> str:
    """The file name a creative gets in the VBench export (unique across tasks and runs, filename-safe)."""
    import re  # noqa: PLC0415

    return re.sub(r"[^A-Za-z0-9._-]+", "-", f"{task}__{run}__{pair_id}") + ".mp4"


def export_for_vbench(videos: Mapping[str, str | os.PathLike[str]] | Iterable[str | os.PathLike[str]],
                      out_dir: str | os.PathLike[str], *, link: bool = True) -> Path:
    """Write ``videos`` (name -> path, or paths named by their file names) into ``out_dir/videos/`` as VBench's
    ``custom_input`` mode reads a folder, plus ``index.json`` (export name -> original path) and
    ``run_vbench.sh``, which runs the four dimensions in VBench's environment and writes its results JSON files
    under ``out_dir/results/``. Files are hard-linked when possible (else copied). Returns the script's path."""
    out = Path(out_dir)
    vdir = out / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    items = videos.items() if isinstance(videos, Mapping) else ((Path(v).name, v) for v in videos)
    index: dict[str, str] = {}
    for name, src in items:
        name = name if name.endswith(".mp4") else f"{name}.mp4"
        if name in index:
            raise ValueError(f"export_for_vbench: two videos are named '{name}'")
        src_p = Path(src)
        if not src_p.is_file():
            raise FileNotFoundError(f"export_for_vbench: {src_p}: video not found (item '{name}')")
        dst = vdir / name
        if dst.exists():
            dst.unlink()
        try:
            if not link:
                raise OSError
            os.link(src_p, dst)
        except OSError:
            with atomic_path(dst) as tmp:
                shutil.copyfile(src_p, tmp)
        index[name] = display_path(src_p)
    for stale in vdir.glob("*.mp4"):
        if stale.name not in index:
            stale.unlink()
    write_json(out / "index.json", index)
    dims = " ".join(VBENCH_DIMENSIONS[m] for m in METRICS)
    script = f"""#!/usr/bin/env bash
# Runs VBench (custom_input mode) on the exported creatives, one dimension at a time, in VBench's OWN
# environment (see docs/vbench.md: `conda activate vbench`; weights under $VBENCH_CACHE_DIR or ~/.cache/vbench).
# Results: results/results_<time>_eval_results.json, one file per dimension. Read them back in the study's
# environment with nextads_lib.vbench.read_vbench_results(<those files>, index="index.json"), or rerun
# notebook 21 with backend = "vbench" (it calls score_runs(paths, task, "vbench")).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p results
for dim in {dims}; do
  vbench evaluate --videos_path videos --dimension "$dim" --mode=custom_input --output_path results
done
"""
    path = out / "run_vbench.sh"
    write_text(path, script)
    path.chmod(0o755)
    return path


def read_vbench_results(results_json: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], *,
                        index: str | os.PathLike[str] | Mapping[str, str] | None = None) -> list[VideoQuality]:
    """Read VBench's results JSON (``{dimension: [aggregate, [{"video_path", "video_results"}, ...]]}``; one file
    or several, e.g. one per dimension) into one :class:`VideoQuality` per video, backend ``vbench``, bare labels.
    DD's ``True``/``False`` becomes 1.0/0.0; IQ's per-video MUSIQ score (0-100) is divided by 100. ``index``
    (``index.json`` of :func:`export_for_vbench`, or its mapping) maps exported file names back to the originals.
    Dimensions VBench did not run stay ``None``; a malformed file raises :class:`ArtifactError` naming it."""
    files = [results_json] if isinstance(results_json, (str, os.PathLike)) else list(results_json)
    if isinstance(index, (str, os.PathLike)):
        index = read_json(index)
    index = dict(index or {})
    by_dim = {v: k for k, v in VBENCH_DIMENSIONS.items()}
    rows: dict[str, dict[str, Any]] = {}
    for f in files:
        data = read_json(f)
        if not isinstance(data, dict):
            raise ArtifactError(f"{f}: expected an object of dimensions, got {type(data).__name__}")
        for dim, res in data.items():
            if dim not in by_dim:
                continue
            m = by_dim[dim]
            if not (isinstance(res, list) and len(res) == 2 and isinstance(res[1], list)):
                raise ArtifactError(f"{f}: field '{dim}': expected [aggregate, [per-video results]]")
            for i, item in enumerate(res[1]):
                if not isinstance(item, dict) or "video_path" not in item or "video_results" not in item:
                    raise ArtifactError(f"{f}: field '{dim}.1.{i}': expected {{video_path, video_results}}")
                name = Path(str(item["video_path"])).name
                v = item["video_results"]
                if isinstance(v, bool) or m == "dd":
                    val = 1.0 if bool(v) else 0.0
                elif isinstance(v, (int, float)):
                    val = float(v) / 100.0 if m == "iq" else float(v)
                else:
                    raise ArtifactError(f"{f}: field '{dim}.1.{i}.video_results': not a number ({v!r})")
                row = rows.setdefault(name, {"video_path": index.get(name, str(item["video_path"]))})
                row[m] = round(val, 6)
    labels = labels_for("vbench")
    return [VideoQuality(backend="vbench", proxy=False, labels=labels, **{m: r.get(m) for m in METRICS},
                         video_path=r["video_path"]) for _, r in sorted(rows.items())]


def vbench_dir(paths: StudyPaths, task: str) -> Path:
    """Where the study exports a task's creatives for VBench and expects its results."""
    return paths.interim / "vbench" / task


# ------------------------------------------------------------------------------------------ score_runs
@dataclass(frozen=True)
class PairVideo:
    """One pair's creative in a run directory, with what its manifest says about it."""

    task: str
    run: str
    pair_dir: Path
    manifest: PairManifest | None
    skip_reason: str | None

    @property
    def video(self) -> Path:
        return self.pair_dir / "creative.mp4"


def list_pairs(paths: StudyPaths, task: str, runs: Sequence[str] | None = None) -> list[PairVideo]:
    """Every pair directory (with a ``manifest.json``) of every run of ``task`` (or of ``runs``), sorted; a failed
    pair, an unreadable manifest or a missing ``creative.mp4`` carries its skip reason."""
    root = paths.runs / task
    if not root.is_dir():
        return []
    out = []
    run_dirs = sorted(d for d in root.iterdir() if d.is_dir() and (runs is None or d.name in runs))
    for rd in run_dirs:
        for man_path in sorted(rd.glob("*/manifest.json")):
            pd_ = man_path.parent
            man, reason = None, None
            try:
                man = read_model(man_path, PairManifest)
            except ArtifactError as e:
                reason = f"manifest unreadable: {e}"
            if man is not None and man.status == "failed":
                reason = f"pair failed at {man.stage_failed or 'run'}: {man.failure or 'no reason recorded'}"
            elif man is not None and not (pd_ / "creative.mp4").is_file():
                reason = f"{display_path(pd_ / 'creative.mp4')}: file not found"
            out.append(PairVideo(task, rd.name, pd_, man, reason))
    return out


def _init_worker() -> None:
    """One thread per worker for OpenCV and BLAS (the parallelism comes from the processes); no torch import."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2  # noqa: PLC0415

    cv2.setNumThreads(1)


def _score_job(job: dict[str, Any]) -> dict[str, Any]:
    """Worker: score one video (picklable for the spawned pool)."""
    cache = Cache(job["cache"]) if job.get("cache") else None
    off = OfflineSettings(**job.get("offline", {}))
    nets = NetworkSettings(**job["networks"]) if job.get("networks") else None
    try:
        vq = score_video(job["video"], job["backend"], cache, offline=off, networks=nets)
    except VQDependencyError:
        raise
    except Exception as e:  # a defect or an exhausted machine on one video: recorded against it, the run goes on
        vq = error_row(job["video"], job["backend"], f"{job['video']}: scoring failed ({type(e).__name__}: {e})")
    return vq.model_dump(mode="json")


class VQScorer:
    """A video-quality scorer for a Ray Data actor (``actors.map_batches("nextads_lib.vbench:VQScorer", ...)``):
    one thread for OpenCV; a networks backend's models are loaded on the first video and kept by the actor.
    ``__call__(job_json)`` -> the ``VideoQuality`` as JSON."""

    def __init__(self) -> None:
        _init_worker()

    def __call__(self, job_json: str) -> str:
        import json  # noqa: PLC0415

        return json.dumps(_score_job(json.loads(job_json)))


def _dispatch(jobs: list[dict[str, Any]], workers: int, backend: str, bar: Any) -> list[dict[str, Any]]:
    """Score ``jobs`` through the current executor, results in the jobs' order: locally inline (one worker, or
    a networks backend) or a spawned pool of ``workers``; on Ray one task per video, or, with
    ``RayExecutor(model_actors=N)``, Ray Data ``map_batches`` over :class:`VQScorer` in N actors (each with
    ``gpus_per_actor`` GPUs for a networks backend)."""
    import json  # noqa: PLC0415

    from . import executor  # noqa: PLC0415

    ex = executor.current()
    if jobs and ex.kind == "ray" and getattr(ex, "model_actors", 0) > 0:
        from . import actors  # noqa: PLC0415

        ex.start()
        out = actors.map_batches("nextads_lib.vbench:VQScorer", [json.dumps(j) for j in jobs],
                                 concurrency=ex.model_actors, num_gpus=0.0 if backend == "offline" else ex.gpus_per_actor)
        if bar is not None:
            bar.update(len(jobs))
        return [json.loads(r) for r in out]
    return executor.map_ordered(_score_job, jobs, workers=workers if ex.kind == "local" else 0, init=_init_worker,
                                on_result=(lambda i, r: bar.update(1)) if bar is not None else None)


def rows_for(pair: PairVideo, vq: VideoQuality | None, backend: str) -> list[dict[str, Any]]:
    """The result rows (one per metric) of one pair."""
    m = pair.manifest
    labels = vq.labels if vq is not None else labels_for(backend)
    base = {"task": pair.task, "run": pair.run, "system": m.system if m else None,
            "director_backend": m.director_backend if m else None, "producer_backend": m.producer_backend if m else None,
            "vq_backend": backend, "pair_id": m.pair_id if m else pair.pair_dir.name,
            "user_id": m.user_id if m else None, "product_id": m.product_id if m else None}
    err = pair.skip_reason or (vq.error if vq is not None else None)
    return [{**base, "metric": k, "value": (vq.value(k) if vq is not None else None), "label": labels[k],
             "proxy": is_proxy(labels[k], k), "error": err} for k in METRICS]


def write_results(df: Any, path: str | os.PathLike[str]) -> Path:
    return write_parquet(path, df)


def results_frame(rows: list[dict[str, Any]]) -> Any:
    import pandas as pd  # noqa: PLC0415

    df = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    df["value"] = df["value"].astype("float64")
    df["proxy"] = df["proxy"].astype(bool)
    return df


def score_runs(paths: StudyPaths, task: str, backend: str = "offline", workers: int = 2, *,
               runs: Sequence[str] | None = None, use_cache: bool = True, progress: bool = False,
               offline: OfflineSettings = OfflineSettings(), networks: NetworkSettings | None = None,
               vbench_results: Sequence[str | os.PathLike[str]] | None = None) -> Any:
    """Score every pair's ``creative.mp4`` of every run of ``task`` and write
    ``paths.results / f"video_quality_{task}.parquet"`` (one row per pair x metric, :data:`RESULT_COLUMNS`);
    returns the DataFrame. Failed pairs get rows with ``value`` None and their reason in ``error``.
    ``backend="vbench"`` reads VBench's results (``vbench_results``, default every ``*_eval_results.json`` under
    :func:`vbench_dir`'s ``results/``) for the videos exported there by :func:`export_for_vbench`."""
    pairs = list_pairs(paths, task, runs)
    todo = [p for p in pairs if p.skip_reason is None]
    scored: dict[Path, VideoQuality] = {}
    if backend == "vbench":
        vdir = vbench_dir(paths, task)
        files = list(vbench_results) if vbench_results is not None else sorted((vdir / "results").glob(
            "*_eval_results.json"))
        if not files:
            raise ArtifactError(f"{display_path(vdir / 'results')}: no VBench results; run "
                                f"export_for_vbench then {display_path(vdir / 'run_vbench.sh')} (docs/vbench.md)")
        got = {resolve(r.video_path).resolve(): r for r in read_vbench_results(files, index=vdir / "index.json")}
        for p in todo:
            scored[p.video] = got.get(p.video.resolve()) or error_row(p.video, "vbench", "not in VBench's results")
    else:
        labels_for(backend)
        if backend != "offline":
            require_vq()
        cache = Cache(paths.cache) if use_cache else None
        if networks is None and backend != "offline":
            networks = NetworkSettings.from_env(random_weights=backend == "networks:random")
        skey = _settings_key(backend, offline, networks)
        misses = []
        for p in todo:  # finished videos are read from the cache here: a warm rerun starts no worker
            hit = cached(cache, content_key(p.video, backend, skey, CODE_VERSION), p.video)
            if hit is not None:
                scored[p.video] = hit
            else:
                misses.append(p)
        jobs = [{"video": str(p.video), "backend": backend, "cache": str(paths.cache) if use_cache else None,
                 "offline": offline.__dict__, "networks": networks.__dict__ if networks else None} for p in misses]
        n_workers = max(1, min(int(workers), len(jobs))) if jobs else 0
        bar = None
        if progress and jobs:
            from tqdm import tqdm  # noqa: PLC0415

            bar = tqdm(total=len(jobs), desc=f"video quality {task}")
        results = _dispatch(jobs, n_workers if backend == "offline" else 1, backend, bar)
        if bar is not None:
            bar.close()
        for p, r in zip(misses, results):
            scored[p.video] = VideoQuality.model_validate(r)
    rows = [r for p in pairs for r in rows_for(p, scored.get(p.video), backend)]
    df = results_frame(rows)
    paths.results.mkdir(parents=True, exist_ok=True)
    write_results(df, paths.results / f"video_quality_{task}.parquet")
    return df


def run_means(df: Any, decimals: int = 4) -> Any:
    """Per-run table of means: one row per run (with its backends), one column per metric named by its label
    (so a proxy is never shown under the bare name), plus the number of scored pairs and of errors."""
    import pandas as pd  # noqa: PLC0415

    keys = ["task", "run", "system", "director_backend", "producer_backend", "vq_backend"]
    if df.empty:
        return pd.DataFrame(columns=[*keys, "pairs", "errors"])
    d = df.fillna({k: "-" for k in keys})
    table = d.groupby(keys + ["label"], sort=True)["value"].mean().unstack("label")
    label_order = [lab for m in METRICS for lab in d.loc[d["metric"] == m, "label"].unique()]
    table = table.reindex(columns=label_order).round(decimals)
    first = d[d["metric"] == METRICS[0]].groupby(keys, sort=True)
    table["pairs"] = first["value"].count().astype(int)
    table["errors"] = first["error"].apply(lambda s: int(s.notna().sum())).astype(int)
    table.columns.name = None
    return table.reset_index()


__all__ = [
    "BACKENDS", "CODE_VERSION", "Clip", "METRICS", "NetworkSettings", "Networks", "OFFLINE_LABELS", "OfflineSettings",
    "PAPER_NAMES", "PairVideo", "RESULT_COLUMNS", "SHORT_NAMES", "VBENCH_DIMENSIONS", "VQDependencyError",
    "VideoQuality", "aesthetic_components", "aesthetic_proxy", "brisque_score", "dd_interval", "dd_params", "decode",
    "dis_flow", "error_row", "export_for_vbench", "export_name", "imaging_proxy", "is_dynamic", "is_proxy",
    "labels_for", "list_pairs", "middle_indices", "midpoint", "ms_score", "read_vbench_results", "require_vq",
    "resize_longer", "rows_for", "run_means", "score_clip_networks", "score_clip_offline", "score_runs",
    "score_video", "top5_mean", "vbench_dir", "write_results",
]
