"""Media helpers: probe, read frames (decord), read audio and write H.264/AAC mp4 (PyAV), load images.

Every error names the file. Writers are atomic: a crash mid-encode never leaves a truncated mp4 under the
final name.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from .store import atomic_path


class MediaError(RuntimeError):
    """A media file is missing, unreadable or not what was asked for; the message names it."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    width: int
    height: int
    fps: float
    n_frames: int
    duration_s: float
    has_audio: bool
    audio_rate: int | None

    @property
    def size(self) -> tuple[int, int]:
        return (self.width, self.height)


def _require_file(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise MediaError(f"{p}: file not found")
    if p.stat().st_size == 0:
        raise MediaError(f"{p}: file is empty")
    return p


def probe(path: str | os.PathLike[str]) -> VideoInfo:
    """Width, height, fps, frame count, duration and audio of a video (PyAV; decodes nothing)."""
    import av  # noqa: PLC0415

    p = _require_file(path)
    try:
        with av.open(str(p)) as c:
            if not c.streams.video:
                raise MediaError(f"{p}: no video stream")
            vs = c.streams.video[0]
            fps = float(vs.average_rate or vs.guessed_rate or 0) or 0.0
            if vs.duration is not None and vs.time_base is not None:
                dur = float(vs.duration * vs.time_base)
            elif c.duration is not None:
                dur = c.duration / 1e6
            else:
                dur = 0.0
            n = int(vs.frames) if vs.frames else int(round(dur * fps))
            a = c.streams.audio[0] if c.streams.audio else None
            return VideoInfo(
                path=str(p), width=int(vs.codec_context.width), height=int(vs.codec_context.height),
                fps=fps, n_frames=n, duration_s=dur, has_audio=a is not None,
                audio_rate=int(a.codec_context.sample_rate) if a is not None else None,
            )
    except MediaError:
        raise
    except Exception as e:  # av.error.InvalidDataError and friends
        raise MediaError(f"{p}: cannot be probed as a video ({type(e).__name__}: {e})") from e


def _reader(path: Path, size: tuple[int, int] | None = None):
    import decord  # noqa: PLC0415

    kw = {}
    if size is not None:
        kw = {"width": int(size[0]), "height": int(size[1])}
    try:
        return decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1, **kw)
    except Exception as e:  # decord.DECORDError
        raise MediaError(f"{path}: cannot be decoded ({type(e).__name__}: {str(e).splitlines()[0][:200]})") from e


def count_frames(path: str | os.PathLike[str]) -> int:
    return len(_reader(_require_file(path)))


def read_frames(
    path: str | os.PathLike[str],
    indices: Sequence[int] | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 RGB; all frames when ``indices`` is None. ``size`` is (width, height)."""
    p = _require_file(path)
    try:
        vr = _reader(p, size)
    except ImportError:  # decord has no wheel for this platform: decode with PyAV
        n = probe(p).n_frames
        return _read_frames_av(p, list(range(n)) if indices is None else [int(i) for i in indices], size)
    n = len(vr)
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    bad = [i for i in idx if not 0 <= i < n]
    if bad:
        raise MediaError(f"{p}: frame index {bad[0]} outside 0..{n - 1}")
    if not idx:
        return np.zeros((0, 0, 0, 3), np.uint8)
    try:
        return vr.get_batch(idx).asnumpy()
    except Exception as e:  # decord rejects a few frame widths (e.g. 72 px): decode those with PyAV
        try:
            return _read_frames_av(p, idx, size)
        except Exception:
            raise MediaError(f"{p}: decoding frames failed ({type(e).__name__})") from e


def _read_frames_av(path: Path, idx: list[int], size: tuple[int, int] | None) -> np.ndarray:
    import av  # noqa: PLC0415

    want = set(idx)
    got: dict[int, np.ndarray] = {}
    with av.open(str(path)) as c:
        for i, fr in enumerate(c.decode(video=0)):
            if i in want:
                kw = {"width": size[0], "height": size[1]} if size else {}
                got[i] = fr.to_ndarray(format="rgb24", threads=1, **kw)
            if i >= max(idx):
                break
    return np.stack([got[i] for i in idx])


def sample_indices(n_frames: int, n: int) -> list[int]:
    """``n`` evenly spaced indices over ``n_frames`` (centres of equal bins)."""
    if n_frames <= 0 or n <= 0:
        return []
    n = min(n, n_frames)
    return [int((i + 0.5) * n_frames / n) for i in range(n)]


def sample_frames(path: str | os.PathLike[str], n: int, size: tuple[int, int] | None = None) -> np.ndarray:
    p = _require_file(path)
    return read_frames(p, sample_indices(count_frames(p), n), size)


def frame_at(path: str | os.PathLike[str], t: float) -> np.ndarray:
    """The frame shown at time ``t`` seconds."""
    info = probe(path)
    i = min(max(int(round(t * info.fps)), 0), max(count_frames(path) - 1, 0))
    return read_frames(path, [i])[0]


def read_audio(path: str | os.PathLike[str], rate: int = 16000) -> np.ndarray:
    """The first audio stream as mono float32 in [-1, 1] at ``rate``; an empty array if there is none."""
    import av  # noqa: PLC0415

    p = _require_file(path)
    try:
        with av.open(str(p)) as c:
            if not c.streams.audio:
                return np.zeros(0, np.float32)
            res = av.AudioResampler(format="flt", layout="mono", rate=rate)
            chunks = []
            for frame in c.decode(c.streams.audio[0]):
                for out in res.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in res.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
            return np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    except Exception as e:
        raise MediaError(f"{p}: audio cannot be decoded ({type(e).__name__}: {e})") from e


_ENCODE_THREADS = 0


def set_encode_threads(n: int) -> None:
    """x264 threads per encode for this process (0 = x264 chooses). Worker pools set 1: the processes are
    the parallelism, and extra encoder threads on busy cores only cost CPU."""
    global _ENCODE_THREADS
    _ENCODE_THREADS = max(0, int(n))


def time_stretch(audio: np.ndarray, rate: int, factor: float) -> np.ndarray:
    """Mono float32 ``audio`` played ``factor`` times faster at the same pitch (ffmpeg's ``atempo`` through
    PyAV; deterministic). ``factor`` must lie in [0.5, 2]; 1 returns the input."""
    import av  # noqa: PLC0415
    import av.filter  # noqa: PLC0415

    a = np.ascontiguousarray(np.asarray(audio, np.float32).reshape(-1))
    if not 0.5 <= factor <= 2.0:
        raise MediaError(f"time_stretch: factor {factor} outside [0.5, 2]")
    if a.size == 0 or abs(factor - 1.0) < 1e-6:
        return a
    g = av.filter.Graph()
    src = g.add_abuffer(format="flt", sample_rate=int(rate), layout="mono", time_base=f"1/{int(rate)}")
    tempo = g.add("atempo", f"{factor:.6f}")
    sink = g.add("abuffersink")
    src.link_to(tempo)
    tempo.link_to(sink)
    g.configure()
    step = 4096
    for s in range(0, a.size, step):
        fr = av.AudioFrame.from_ndarray(a[None, s : s + step].copy(), format="flt", layout="mono")
        fr.sample_rate, fr.pts = int(rate), s
        src.push(fr)
    src.push(None)
    out: list[np.ndarray] = []
    while True:
        try:
            out.append(sink.pull().to_ndarray().reshape(-1))
        except (av.error.EOFError, av.error.BlockingIOError):
            break
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    audio_rate: int = 22050,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int | None = None,
    x264_params: str = "",
) -> VideoInfo:
    """Encode RGB frames (H, W, 3 uint8, even sizes) as H.264 yuv420p, with mono AAC ``audio`` if given
    (padded or cut to the video's length). ``x264_params`` overrides single x264 options of the preset
    (``key=value:...``); ``threads`` defaults to :func:`set_encode_threads`' value (0 = x264 chooses).
    Written atomically; returns the probe of the result."""
    import av  # noqa: PLC0415

    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    n = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as c:
            vs = None
            for fr in frames:
                fr = np.asarray(fr)
                if fr.ndim != 3 or fr.shape[2] != 3 or fr.dtype != np.uint8:
                    raise MediaError(f"{path}: frame {n} is {fr.shape} {fr.dtype}, expected (H, W, 3) uint8")
                if vs is None:
                    h, w = fr.shape[:2]
                    if h % 2 or w % 2:
                        raise MediaError(f"{path}: frame size {w}x{h} must be even for yuv420p")
                    vs = c.add_stream("libx264", rate=rate)
                    vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
                    vs.options = {"crf": str(crf), "preset": preset,
                                  **({"x264-params": x264_params} if x264_params else {})}
                    vs.codec_context.thread_count = _ENCODE_THREADS if threads is None else int(threads)
                    if audio is not None:  # every stream must exist before the first packet is muxed
                        ast = c.add_stream("aac", rate=audio_rate)
                        ast.layout = "mono"
                        ast.options = {"aac_coder": "fast"}  # half the CPU of the default two-loop search
                elif fr.shape[:2] != (vs.height, vs.width):
                    raise MediaError(f"{path}: frame {n} is {fr.shape[1]}x{fr.shape[0]}, expected {vs.width}x{vs.height}")
                for pkt in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(fr), format="rgb24")):
                    c.mux(pkt)
                n += 1
            if vs is None:
                raise MediaError(f"{path}: no frames to write")
            for pkt in vs.encode(None):
                c.mux(pkt)
            if audio is not None:
                want = int(round(n / float(rate) * audio_rate))
                a = np.zeros(want, np.float32)
                src = np.asarray(audio, np.float32).reshape(-1)[:want]
                a[: len(src)] = np.clip(src, -1.0, 1.0)
                step = 1024
                for s in range(0, want, step):
                    af = av.AudioFrame.from_ndarray(a[None, s : s + step], format="flt", layout="mono")
                    af.sample_rate = audio_rate
                    af.pts = s
                    for pkt in ast.encode(af):
                        c.mux(pkt)
                for pkt in ast.encode(None):
                    c.mux(pkt)
    return probe(path)


_IMAGES: OrderedDict[tuple[str, int, int, str], Image.Image] = OrderedDict()
_IMAGES_LOCK = threading.Lock()
_IMAGES_MAX_BYTES = 128 << 20
_IMAGES_BYTES = [0]


def load_image(path: str | os.PathLike[str], mode: str = "RGB") -> Image.Image:
    """Open and fully decode an image; an error names the file. Decoded images are memoised per (file, mtime,
    size, mode), up to 128 MB per process (a product's images and a user's history are read for every pair);
    each call returns its own copy."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        st = None
    if st is None or not p.is_file():
        raise MediaError(f"{p}: image not found")
    key = (str(p), st.st_mtime_ns, st.st_size, mode)
    with _IMAGES_LOCK:
        hit = _IMAGES.get(key)
        if hit is not None:
            _IMAGES.move_to_end(key)
    if hit is not None:
        return hit.copy()
    try:
        with Image.open(p) as im:
            im.load()
            out = im.convert(mode)
    except (UnidentifiedImageError, OSError) as e:
        raise MediaError(f"{p}: unreadable image ({e})") from e
    nbytes = out.width * out.height * len(out.getbands())
    if nbytes <= _IMAGES_MAX_BYTES // 8:
        with _IMAGES_LOCK:
            if key not in _IMAGES:
                _IMAGES[key] = out.copy()
                _IMAGES_BYTES[0] += nbytes
            while _IMAGES_BYTES[0] > _IMAGES_MAX_BYTES and _IMAGES:
                _, old = _IMAGES.popitem(last=False)
                _IMAGES_BYTES[0] -= old.width * old.height * len(old.getbands())
    return out


def save_image(path: str | os.PathLike[str], image: Image.Image | np.ndarray, **kw) -> Path:
    """Write an image atomically, its format from the suffix (PNG when there is none). PNGs are written at
    zlib level 1 unless told otherwise: a few times faster than PIL's default for ~20% more bytes."""
    im = Image.fromarray(image) if isinstance(image, np.ndarray) else image
    path = Path(path)
    fmt = (path.suffix.lstrip(".") or "png").upper().replace("JPG", "JPEG")
    if fmt == "PNG" and "optimize" not in kw:
        kw.setdefault("compress_level", 1)
    with atomic_path(path) as tmp:
        im.save(tmp, format=fmt, **kw)
    return path
