"""What every Producer shares: the error type, the content-keyed render cache, grounding-image lookup,
palette, soundtrack and the hand-off to the post step.

Three protocol switches (:mod:`nextads_lib.protocol`) are Producer settings, so they are in every manifest and
render cache key:

- ``post_production``: on, the post step adds voice-over, music, subtitles, the CTA card and slot dissolves
  (today's ``extended`` creative); off (the paper), the Producer's own frames and audio are the creative and
  the only addition is the "AI Created" label (the layer :func:`post.burn_label` burns);
- ``frame_overwrite``: on, a request's ``first_frame`` / ``last_frame`` are pinned and blended into the first and
  last frames (PCI continuity pasted in); off, they only condition the model (where it takes them);
- ``slot_layouts``: on, a clip is conditioned on a layout of its slot's assets; off, on the reference collage.

The constructor's defaults are today's behaviour (all three on), so a Producer built by hand renders as before;
the PCG/PCI runs always pass the protocol's values.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..config import display_path, resolve
from ..media import MediaError, load_image
from ..schemas import ProducerManifest, ProducerRequest, Slot
from ..store import Cache, atomic_path, content_key, write_json

#: bump when a change to the producers or the post step changes the pixels or the sound they write
CODE_VERSION = 3  # 2: narration sped up at the same pitch (one synthesis per line); 3: protocol switches, label letters >= 5% of the shorter side


class ProducerError(RuntimeError):
    """A creative could not be produced; ``item`` names what failed (a slot, a field, a job) and ``reason``
    why. Moderation refusals have a reason starting with ``moderation:``."""

    def __init__(self, item: str, reason: str):
        self.item = item
        self.reason = reason
        super().__init__(f"{item}: {reason}")


def request_item(req: ProducerRequest) -> str:
    sb = req.storyboard
    return f"creative {sb.product_id} for {sb.user_id or 'generic'}"


def _key_paths(req: ProducerRequest) -> dict[str, Any]:
    """The request with every file it names replaced by its bytes' digest (so moved data keeps its cache)."""

    def p(x: str | None):
        return None if x is None else Path(resolve(x))

    d = req.model_dump(mode="json")
    d["collage_path"] = p(req.collage_path)
    d["assets"] = {k: p(v) for k, v in req.assets.items()}
    d["reference_images"] = [p(x) for x in req.reference_images]
    d["first_frame"] = p(req.first_frame)
    d["last_frame"] = p(req.last_frame)
    return d


#: environment variable: seconds between status polls of a video job (Sora, Veo) when a Producer is not given
#: ``poll_interval_s``; the tests' local servers answer at once, so they set it small
POLL_ENV = "NEXTADS_POLL_INTERVAL_S"


def poll_interval(given: float | None, default: float) -> float:
    """``given``, else ``$NEXTADS_POLL_INTERVAL_S``, else the Producer's ``default`` (seconds, >= 0)."""
    if given is not None:
        return max(0.0, float(given))
    env = os.environ.get(POLL_ENV, "").strip()
    if env:
        try:
            return max(0.0, float(env))
        except ValueError as e:
            raise ProducerError("producer settings", f"${POLL_ENV}={env!r} is not a number of seconds") from e
    return float(default)


def derive_palette(image_path: str | os.PathLike[str] | None, n: int = 4) -> list[str]:
    """The ``n`` most frequent colours of an image (median-cut on a thumbnail), hex, most frequent first."""
    if image_path is None:
        return []
    im = load_image(resolve(image_path)).resize((64, 64))
    q = im.quantize(colors=n, method=0)
    pal = q.getpalette() or []
    counts = sorted(q.getcolors() or [], reverse=True)
    out = []
    for _, idx in counts:
        r, g, b = pal[3 * idx : 3 * idx + 3]
        out.append(f"#{r:02X}{g:02X}{b:02X}")
    return out


class Producer:
    """Base of the four Producers. Subclasses implement ``_render(req, out_path, width, height) -> dict``
    (returning at least ``cost_usd``); ``render`` adds the cache, the timing and the manifest."""

    kind = ""
    #: native (width, height) per aspect ratio
    native: dict[str, tuple[int, int]] = {"9:16": (720, 1280), "16:9": (1280, 720), "1:1": (720, 720)}

    def __init__(self, model: str = "", cache_dir: str | os.PathLike[str] | None = None, *, music: bool = True,
                 subtitles: bool = True, narration: bool = True, crf: int | None = None,
                 preset: str | None = None, x264_params: str | None = None, voice: str | None = None,
                 post_production: bool = True, slot_layouts: bool = False, frame_overwrite: bool = True,
                 **settings: Any):
        from . import post  # noqa: PLC0415

        self.model = model
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.cache = Cache(self.cache_dir) if self.cache_dir else None
        self.post_settings = {"music": bool(music), "subtitles": bool(subtitles), "narration": bool(narration),
                              "crf": int(post.ENCODE_CRF if crf is None else crf),
                              "preset": str(post.ENCODE_PRESET if preset is None else preset),
                              "x264_params": str(post.ENCODE_X264_PARAMS if x264_params is None else x264_params),
                              "voice": voice, "post_production": bool(post_production),
                              "slot_layouts": bool(slot_layouts), "frame_overwrite": bool(frame_overwrite)}
        self.extra = dict(settings)
        self.last_cached = False
        self.renders = 0  # how many renders actually ran (cache hits excluded)
        self._tts = None

    # -------------------------------------------------------------------------------- identity
    @property
    def name(self) -> str:
        return f"{self.kind}:{self.model}" if self.model else self.kind

    @property
    def settings(self) -> dict[str, Any]:
        return {**self.post_settings, **{k: v for k, v in self.extra.items() if _jsonable(v)}}

    def cache_key(self, req: ProducerRequest) -> str:
        return content_key("producer", CODE_VERSION, self.name, self.settings, _key_paths(req))

    # -------------------------------------------------------------------------------- helpers
    @property
    def post_production(self) -> bool:
        return bool(self.post_settings["post_production"])

    @property
    def slot_layouts(self) -> bool:
        return bool(self.post_settings["slot_layouts"])

    @property
    def frame_overwrite(self) -> bool:
        return bool(self.post_settings["frame_overwrite"])

    @property
    def tts(self):
        if not (self.post_production and self.post_settings["narration"]):
            return None
        if self._tts is None:
            from .tts import PiperTTS  # noqa: PLC0415

            self._tts = PiperTTS(self.post_settings["voice"], cache_dir=self.cache_dir)
        return self._tts

    def size(self, req: ProducerRequest) -> tuple[int, int]:
        from .post import output_size  # noqa: PLC0415

        return output_size(req.aspect_ratio, req.width, req.height, self.native)

    def slot_images(self, req: ProducerRequest, slot: Slot) -> list[Path]:
        """The grounding images of a slot: its assets, else the collage, else the reference images."""
        item = request_item(req)
        paths: list[Path] = []
        for aid in slot.assets:
            if aid not in req.assets:
                raise ProducerError(item, f"slot {slot.index} field 'assets' names '{aid}', which is not in the "
                                    f"request's assets ({', '.join(sorted(req.assets)) or 'none'})")
            paths.append(resolve(req.assets[aid]))
        if not paths and req.collage_path:
            paths = [resolve(req.collage_path)]
        if not paths:
            paths = [resolve(x) for x in req.reference_images]
        if not paths:
            raise ProducerError(item, f"slot {slot.index} has no grounding image (no slot assets, collage_path "
                                "or reference_images)")
        for p in paths:
            if not p.is_file():
                raise ProducerError(item, f"slot {slot.index}: grounding image {p} not found")
        return paths

    def conditioning_images(self, req: ProducerRequest, slot: Slot) -> list[Path]:
        """What conditions a slot's clip: its own grounding images (:meth:`slot_images`) under ``slot_layouts``,
        else the reference collage (the paper's grounding, 5.1.1), falling back to the slot's images when the
        request has no collage."""
        if not self.slot_layouts and req.collage_path:
            p = resolve(req.collage_path)
            if not p.is_file():
                raise ProducerError(request_item(req), f"field 'collage_path': {p} not found")
            return [p]
        return self.slot_images(req, slot)

    def load(self, req: ProducerRequest, path: str | os.PathLike[str], field: str) -> np.ndarray:
        try:
            return np.asarray(load_image(resolve(path)))
        except MediaError as e:
            raise ProducerError(request_item(req), f"field '{field}': {e}") from e

    def palette(self, req: ProducerRequest) -> list[str]:
        if req.palette:
            return list(req.palette)
        src = req.collage_path or next(iter(req.assets.values()), None) or next(iter(req.reference_images), None)
        try:
            return derive_palette(src) or ["#1D3557", "#457B9D", "#E63946"]
        except MediaError as e:
            raise ProducerError(request_item(req), f"palette source: {e}") from e

    def finish(self, req: ProducerRequest, out_path: Path, sources, width: int, height: int, *,
               clip_audio: np.ndarray | None = None, clip_audio_rate: int | None = None,
               headlines: bool = False):
        """Hand the slot sources to the post step.

        With ``post_production`` the post step adds this request's soundtrack (narration over music), subtitles,
        the CTA card, slot dissolves and the slots' on-screen text. Without it (the paper) the creative is the
        sources on the storyboard's timing with the label burned in, the on-screen text only when
        ``headlines`` (the compositor draws the picture, so the text it puts on screen is part of it), and
        ``clip_audio`` (the generated clips' own sound at ``clip_audio_rate``) or no audio track. The first /
        last frames are pinned and blended only under ``frame_overwrite``."""
        from . import post  # noqa: PLC0415

        sb = req.storyboard
        overwrite = self.frame_overwrite
        ff = self.load(req, req.first_frame, "first_frame") if (req.first_frame and overwrite) else None
        lf = self.load(req, req.last_frame, "last_frame") if (req.last_frame and overwrite) else None
        enc = {"crf": self.post_settings["crf"], "preset": self.post_settings["preset"],
               "x264_params": self.post_settings["x264_params"]}
        if self.post_production:
            audio = post.soundtrack(sb, req.fps, self.tts, req.seed, music=self.post_settings["music"])
            return post.finish(out_path, sb, sources, width, height, req.fps, audio=audio, first_frame=ff,
                               last_frame=lf, accent=post.palette_accent(self.palette(req)),
                               subtitles=self.post_settings["subtitles"], **enc)
        audio, rate = None, post.AUDIO_RATE
        if clip_audio is not None and np.asarray(clip_audio).size:
            audio, rate = np.asarray(clip_audio, np.float32), int(clip_audio_rate or post.AUDIO_RATE)
        return post.finish(out_path, sb, sources, width, height, req.fps, audio=audio, audio_rate=rate,
                           first_frame=ff, last_frame=lf, post_production=False, headlines=headlines,
                           transitions=post.TRANSITION_S if headlines else {}, **enc)

    # -------------------------------------------------------------------------------- render
    def _render(self, req: ProducerRequest, out_path: Path, width: int, height: int) -> dict[str, Any]:
        raise NotImplementedError

    def render(self, req: ProducerRequest, out_path: str | os.PathLike[str]) -> ProducerManifest:
        """Produce the creative at ``out_path`` (mp4, atomic) and return its manifest; a request rendered
        before with the same settings is copied from the cache."""
        out_path = Path(out_path)
        key = self.cache_key(req)
        if self.cache is not None:
            cached_mp4 = self.cache.path("producer", key, ".mp4")
            data = self.cache.get_json("producer", key)
            if data is not None and cached_mp4.is_file():
                try:
                    man = ProducerManifest.model_validate(data)
                except ValueError:
                    man = None
                if man is not None:
                    if cached_mp4.resolve() != out_path.resolve():
                        with atomic_path(out_path) as tmp:
                            shutil.copyfile(cached_mp4, tmp)
                    self.last_cached = True
                    return man.model_copy(update={"video_path": display_path(out_path)})
        self.last_cached = False
        t0 = time.perf_counter()
        width, height = self.size(req)
        extra = self._render(req, out_path, width, height) or {}
        self.renders += 1
        from ..media import probe  # noqa: PLC0415

        info = probe(out_path)
        man = ProducerManifest(
            backend=self.name, model=self.model or self.kind,
            settings={**self.settings, **extra.get("settings", {})}, seed=req.seed,
            seconds=round(time.perf_counter() - t0, 3), cost_usd=float(extra.get("cost_usd", 0.0)),
            video_path=display_path(out_path), width=info.width, height=info.height, fps=req.fps,
            n_frames=info.n_frames, duration_s=round(info.n_frames / req.fps, 6),
        )
        if self.cache is not None:
            with atomic_path(self.cache.path("producer", key, ".mp4")) as tmp:
                shutil.copyfile(out_path, tmp)
            write_json(self.cache.path("producer", key), man)
        return man


def _jsonable(v: Any) -> bool:
    return isinstance(v, (str, int, float, bool, type(None), list, dict, tuple))
