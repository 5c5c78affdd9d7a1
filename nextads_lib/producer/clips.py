"""Shared flow of the API Producers (sora, veo): plan clips of the lengths the API allows, condition each
on an image (the reference collage, or under ``slot_layouts`` a layout of the slot's assets; the first clip on
the request's ``first_frame`` when there is one), fetch them, and hand them to the post step, which retimes
them to the storyboard's slots. Without ``post_production`` the clips' own sound (decoded by
:func:`decode_clip`) is the creative's audio."""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..media import MediaError, probe, read_audio, read_frames
from ..schemas import ProducerRequest, Storyboard
from . import post
from .base import Producer, ProducerError, request_item
from .compositor import camera_source, canvas

CAMERA_WORDS = {
    "static": "locked-off static camera", "pan_left": "slow camera pan to the left",
    "pan_right": "slow camera pan to the right", "zoom_in": "smooth zoom in", "zoom_out": "smooth zoom out",
    "push_in": "dolly push-in towards the product", "tilt_up": "camera tilts up", "tilt_down": "camera tilts down",
}


def pick_seconds(need: float, allowed: tuple[int, ...]) -> int:
    """The shortest allowed clip length covering ``need`` seconds (the longest if none does)."""
    for s in sorted(allowed):
        if s + 1e-6 >= need:
            return s
    return max(allowed)


def creative_chunks(duration: float, allowed: tuple[int, ...]) -> list[int]:
    """Clip lengths whose sum covers ``duration`` with as few clips, then as little overshoot, as possible."""
    longest = max(allowed)
    n = max(1, math.ceil(duration / longest - 1e-9))
    chunks = [longest] * (n - 1)
    chunks.append(pick_seconds(duration - longest * (n - 1), allowed))
    return chunks


def prompt_for(storyboard: Storyboard, slot_indices: list[int], seconds_from: float = 0.0) -> str:
    """A shot list for the slots a clip covers, without on-screen text (the post step draws text)."""
    shots = []
    for s in storyboard.slots:
        if s.index in slot_indices:
            cam = CAMERA_WORDS.get(s.camera, s.camera.replace("_", " "))
            shots.append(f"[{max(0.0, s.start_s - seconds_from):.1f}s] {s.composition.strip().rstrip('.')}; {cam}; "
                         f"{s.pacing} pacing")
    head = (f"Short vertical-friendly product advertisement for {storyboard.product_id.replace('-', ' ')}. "
            f"{storyboard.hook.strip()} ")
    return head + " ".join(shots) + ". No on-screen text, no captions, no logos other than the product's."


class ClipFrames(np.ndarray):
    """A clip's frames (T, H, W, 3) that also carry its sound: ``audio`` (mono float32 at ``post.AUDIO_RATE``,
    empty when the clip has none). An ndarray, so ``frames, fps = decode_clip(...)`` callers need no change."""

    audio: np.ndarray


def clip_audio(frames: np.ndarray) -> np.ndarray:
    """The sound a decoded clip carries (empty for a plain array)."""
    a = getattr(frames, "audio", None)
    return np.zeros(0, np.float32) if a is None else np.asarray(a, np.float32)


def decode_clip(data: bytes, where: str) -> tuple[np.ndarray, float]:
    """Frames (a :class:`ClipFrames` carrying the clip's audio) and fps of downloaded mp4 bytes."""
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "clip.mp4"
        p.write_bytes(data)
        try:
            frames, fps = read_frames(p), probe(p).fps
            audio = read_audio(p, post.AUDIO_RATE)
        except MediaError as e:
            raise ProducerError(where, f"downloaded video is not decodable: {e}") from e
        out = np.asarray(frames).view(ClipFrames)
        out.audio = audio
        return out, fps


def keep_clip(data: bytes, kind: str, cache_dir: Path | None, out_path: Path) -> dict[str, str]:
    """Store a generated clip's bytes unchanged, content-addressed (``<kind>-<sha256[:16]>.mp4``) under the render
    cache's ``clips/`` folder, else beside the creative in ``<creative stem>_clips/``; returns the manifest's
    record of it (``video_file``, ``video_sha256``)."""
    from ..config import display_path  # noqa: PLC0415
    from ..store import write_bytes  # noqa: PLC0415

    digest = hashlib.sha256(data).hexdigest()
    folder = Path(cache_dir) / "clips" if cache_dir else out_path.parent / f"{out_path.stem}_clips"
    p = folder / f"{kind}-{digest[:16]}.mp4"
    if not p.is_file():
        write_bytes(p, data)
    return {"video_file": display_path(p), "video_sha256": digest}


class ClipProducer(Producer):
    """Subclasses set ``allowed_seconds``, ``api_size(aspect)`` and ``_clip(...)``."""

    allowed_seconds: tuple[int, ...] = (4, 8, 12)

    def __init__(self, model: str, cache_dir=None, *, per: str = "creative", condition: str = "collage",
                 **settings: Any):
        if per not in ("slot", "creative"):
            raise ProducerError(f"{self.kind} settings", f"per='{per}' must be 'slot' or 'creative'")
        if condition not in ("collage", "previous"):
            raise ProducerError(f"{self.kind} settings", f"condition='{condition}' must be 'collage' or 'previous'")
        super().__init__(model, cache_dir, per=per, condition=condition, **settings)
        self.per, self.condition = per, condition

    def api_size(self, aspect_ratio: str) -> tuple[int, int]:
        raise NotImplementedError

    def _clip(self, req: ProducerRequest, *, index: int, prompt: str, image: np.ndarray, last_image: np.ndarray | None,
              seconds: int, size: tuple[int, int]) -> tuple[np.ndarray, float, dict[str, Any]]:
        """Generate one clip: (frames, fps, info incl. cost_usd)."""
        raise NotImplementedError

    def _render(self, req: ProducerRequest, out_path: Path, width: int, height: int) -> dict[str, Any]:
        sb = req.storyboard
        spans = post.slot_spans(sb, req.fps)
        gw, gh = self.api_size(req.aspect_ratio)
        palette = self.palette(req)
        first = self.load(req, req.first_frame, "first_frame") if req.first_frame else None
        last = self.load(req, req.last_frame, "last_frame") if req.last_frame else None

        def grounding(sp: post.SlotSpan) -> np.ndarray:
            imgs = [self.load(req, p, f"slot {sp.slot.index} image")
                    for p in self.conditioning_images(req, sp.slot)]
            return camera_source(canvas(imgs, gw, gh, palette, sp.index), gw, gh, "static")(0, 1)

        # jobs: (seconds requested, spans covered, start time of the clip)
        jobs: list[tuple[int, list[post.SlotSpan], float]] = []
        if self.per == "slot":
            jobs = [(pick_seconds(sp.n / req.fps, self.allowed_seconds), [sp], sp.start / req.fps) for sp in spans]
        else:
            t = 0.0
            for secs in creative_chunks(sb.duration_s, self.allowed_seconds):
                covered = [sp for sp in spans if sp.start / req.fps < t + secs and sp.stop / req.fps > t]
                jobs.append((secs, covered or [spans[-1]], t))
                t += secs
        clips, infos, cost = [], [], 0.0
        sounds: list[np.ndarray] = []
        prev_last = None
        for j, (secs, js, t0) in enumerate(jobs):
            if j == 0 and first is not None:
                image = first
            elif self.condition == "previous" and prev_last is not None:
                image = prev_last
            else:
                image = grounding(js[0])
            last_image = last if (j == len(jobs) - 1 and last is not None) else None
            prompt = prompt_for(sb, [sp.slot.index for sp in js], t0)
            frames, fps, info = self._clip(req, index=j, prompt=prompt, image=post.fit_image(image, gw, gh),
                                           last_image=None if last_image is None else post.fit_image(last_image, gw, gh),
                                           seconds=secs, size=(gw, gh))
            if frames.shape[0] == 0:
                raise ProducerError(request_item(req), f"{self.kind} clip {j} has no frames")
            cost += float(info.get("cost_usd", 0.0))
            data = info.pop("_video_bytes", None)
            if data is not None:  # kept as the API returned it, for edits that send it back (Veo's extension)
                info.update(keep_clip(data, self.kind, self.cache_dir, out_path))
            prev_last = frames[-1]
            sounds.append(clip_audio(frames))
            clips.append((frames, fps))
            infos.append({"slots": [sp.slot.index for sp in js], "seconds": secs, "frames": int(frames.shape[0]),
                          "fps": fps, **{k: v for k, v in info.items() if k != "cost_usd"}})
        rate = post.AUDIO_RATE

        def sound(k: int, seconds: float) -> np.ndarray:  # clip k's sound, cut or padded to ``seconds``
            n = int(round(seconds * rate))
            a = sounds[k][:n]
            return np.pad(a, (0, n - a.size))

        if self.per == "slot":
            pieces, audio = [], []
            for k, ((frames, fps), sp) in enumerate(zip(clips, spans)):
                keep = max(1, min(frames.shape[0], int(round(sp.n / req.fps * fps))))
                pieces.append(np.asarray(frames[:keep]))
                audio.append(sound(k, sp.n / req.fps))
        else:
            whole = np.concatenate([np.asarray(f) for f, _ in clips])
            fps = clips[0][1]
            whole = whole[: max(len(spans), min(whole.shape[0], int(round(sb.duration_s * fps))))]
            pieces = post.split_clip(whole, spans)
            audio = [sound(k, f.shape[0] / f_fps) for k, (f, f_fps) in enumerate(clips)]
        has_sound = any(x.size and np.abs(x).max() > 0 for x in sounds)
        sources = [post.clip_source(p, width, height) for p in pieces]
        self.finish(req, out_path, sources, width, height,
                    clip_audio=np.concatenate(audio) if has_sound else None, clip_audio_rate=rate)
        return {"cost_usd": round(cost, 4), "settings": {"api_size": [gw, gh], "clips": infos, "palette": palette,
                                                         "clip_audio": bool(has_sound)}}
