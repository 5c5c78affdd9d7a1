"""``veo:<model>``: Google's Veo through the official ``google-genai`` client (``generate_videos`` with a
``GenerateVideosSource`` of prompt and image, operation polling, download).

The shipped client (3.x) generates videos only in Vertex AI mode, so the client is made with
``vertexai=True``: either Vertex AI *express mode* with an API key created for it in the Google Cloud console
(``GOOGLE_API_KEY``; a Gemini API key from Google AI Studio is a different key and is refused by Vertex AI),
or ``GOOGLE_CLOUD_PROJECT`` + ``GOOGLE_CLOUD_LOCATION`` with application default credentials;
``GOOGLE_VERTEX_BASE_URL`` points the client at another server. All are read by the client as usual.

What each model takes is in :data:`CAPABILITIES` (clip lengths, ``lastFrame``, ``generateAudio``,
``referenceImages``, resolutions): a clip length the model does not take is never asked for, ``lastFrame``
is sent only to a model that takes one, ``generateAudio`` is set (``generate_audio``, default True) only on
models that make sound, and the collage goes as ``referenceImages`` (asset) only where the model takes them
and ``collage_as="reference"`` is chosen (default ``"image"``: the collage is the clip's image). The clips
cover the storyboard, and the post step retimes them to the exact slot timing. Polling is retried on
transient errors (429, 5xx, timeouts); a 429 at create is retried too (nothing was started). Filtered output
(RAI) or a failed operation raises ``ProducerError``; filtering is reported as ``moderation: <reasons>``.

**Video extension** (:meth:`VeoProducer.extend`, the API's own edit operation): ``generate_videos`` with
``GenerateVideosSource(prompt=..., video=Video(video_bytes=<mp4>, mime_type="video/mp4"))``, which the client
sends as ``instances[0].video.bytesBase64Encoded``. Veo continues a Veo-generated video of 1 to 30 s by
:data:`EXTEND_SECONDS` and answers with the input and its continuation as one video (up to 37 s). Only the
models whose :data:`CAPABILITIES` row says ``extend`` take it. The slot editor (:mod:`.edit`) uses it for an
edit of the last slot(s): the footage of the slots before them, as generated, is continued. Every generated
clip's bytes are therefore kept as returned (``video_file`` / ``video_sha256`` in the manifest's clip record).
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from ..backends.pricing import video_price_per_second
from ..schemas import ProducerRequest
from . import conditioning
from .base import ProducerError, poll_interval, request_item
from .clips import ClipProducer, decode_clip

SIZES = {"9:16": (720, 1280), "16:9": (1280, 720), "1:1": (720, 1280)}  # 1:1 is cropped by the post step


@dataclass(frozen=True)
class VeoCapabilities:
    """What one Veo model takes (Vertex AI ``predictLongRunning``)."""

    seconds: tuple[int, ...]
    last_frame: bool = False
    audio: bool = False
    reference_images: bool = False
    resolutions: tuple[str, ...] = ("720p",)
    aspect_ratios: tuple[str, ...] = ("16:9", "9:16")
    extend: bool = False


#: per model: clip lengths, lastFrame, generateAudio, referenceImages, resolutions, video extension
#: (docs/backends.md). ``extend``: Google's list of the models that extend videos, "Extend Veo on Vertex
#: AI-generated videos", https://cloud.google.com/vertex-ai/generative-ai/docs/video/extend-a-veo-video
#: (veo-2.0-generate-exp, veo-2.0-generate-preview, veo-3.1-generate-preview, veo-3.1-fast-generate-preview,
#: veo-3.1-generate-001, veo-3.1-fast-generate-001, veo-3.1-lite-generate-001; not veo-2.0-generate-001 nor
#: the 3.0 models). Of this table's models, the two 3.1 previews.
CAPABILITIES: dict[str, VeoCapabilities] = {
    "veo-2.0-generate-001": VeoCapabilities(seconds=(5, 6, 7, 8)),
    "veo-3.0-generate-001": VeoCapabilities(seconds=(4, 6, 8), audio=True, resolutions=("720p", "1080p")),
    "veo-3.0-fast-generate-001": VeoCapabilities(seconds=(4, 6, 8), audio=True, resolutions=("720p", "1080p")),
    "veo-3.1-generate-preview": VeoCapabilities(seconds=(4, 6, 8), last_frame=True, audio=True,
                                                reference_images=True, resolutions=("720p", "1080p"), extend=True),
    "veo-3.1-fast-generate-preview": VeoCapabilities(seconds=(4, 6, 8), last_frame=True, audio=True,
                                                     resolutions=("720p", "1080p"), extend=True),
}
#: seconds one extension adds to the input video, and the input's allowed length (same page as above)
EXTEND_SECONDS = 7
EXTEND_INPUT_S = (1.0, 30.0)
#: a model missing from the table: what every Veo takes, nothing more
UNKNOWN = VeoCapabilities(seconds=(6, 8))


def capabilities(model: str) -> VeoCapabilities:
    return CAPABILITIES.get(model.rsplit("/", 1)[-1], UNKNOWN)


def _transient(e: BaseException) -> bool:
    from google.genai import errors  # noqa: PLC0415

    if isinstance(e, errors.APIError):
        code = int(getattr(e, "code", 0) or 0)
        return code == 429 or code >= 500
    name = type(e).__name__
    return "Timeout" in name or "Connect" in name or "RemoteProtocol" in name


class VeoProducer(ClipProducer):
    kind = "veo"
    allowed_seconds = (4, 6, 8)

    def __init__(self, model: str, cache_dir=None, *, poll_interval_s: float | None = None, max_wait_s: float = 1800.0,
                 price_per_second: float | None = None, use_last_frame: bool = True, resolution: str | None = None,
                 negative_prompt: str = "captions, subtitles, watermark, distorted product", api_key: str | None = None,
                 allowed_seconds: tuple[int, ...] | list[int] | None = None, generate_audio: bool = True,
                 collage_as: str = "image", max_attempts: int = 5, backoff_s: float = 2.0, **settings: Any):
        cap = capabilities(model)
        if collage_as not in ("image", "reference"):
            raise ProducerError(f"veo:{model} settings", f"collage_as='{collage_as}' must be 'image' or 'reference'")
        if resolution and resolution not in cap.resolutions:
            raise ProducerError(f"veo:{model} settings", f"resolution '{resolution}' is not one of {', '.join(cap.resolutions)}")
        secs = tuple(int(s) for s in allowed_seconds) if allowed_seconds else cap.seconds
        bad = sorted(set(secs) - set(cap.seconds))
        if bad:
            raise ProducerError(f"veo:{model} settings", f"clip lengths {bad} s are not taken by {model} "
                                f"(allowed: {', '.join(map(str, cap.seconds))} s)")
        audio = bool(generate_audio) and cap.audio
        super().__init__(model, cache_dir, use_last_frame=use_last_frame, resolution=resolution,
                         negative_prompt=negative_prompt, generate_audio=audio, collage_as=collage_as, **settings)
        self.cap = cap
        self.allowed_seconds = secs
        self.poll_interval_s, self.max_wait_s = poll_interval(poll_interval_s, 10.0), float(max_wait_s)
        self.generate_audio = audio
        table = video_price_per_second(model, "default" if audio or not cap.audio else "no_audio")
        self.price = (table if table is not None else 0.40) if price_per_second is None else float(price_per_second)
        self.use_last_frame, self.resolution, self.negative_prompt = use_last_frame, resolution, negative_prompt
        self.collage_as = collage_as
        self.max_attempts, self.backoff_s = int(max_attempts), float(backoff_s)
        self._api_key = api_key
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from google import genai  # noqa: PLC0415

            try:
                kw: dict[str, Any] = {"vertexai": True}
                if self._api_key:
                    kw["api_key"] = self._api_key
                self._client = genai.Client(**kw)
            except ValueError as e:
                raise ProducerError(self.name, f"{e} (Veo runs through Vertex AI: set GOOGLE_API_KEY to a Vertex AI "
                                    "express-mode key from the Google Cloud console (a Gemini API key from AI Studio "
                                    "does not work there), or GOOGLE_CLOUD_PROJECT + GOOGLE_CLOUD_LOCATION with "
                                    "application default credentials; GOOGLE_VERTEX_BASE_URL for another server)") from e
        return self._client

    def api_size(self, aspect_ratio: str) -> tuple[int, int]:
        return SIZES[aspect_ratio]

    def cache_key(self, req: ProducerRequest) -> str:
        return conditioning.cache_key(self, req, super().cache_key(req))

    def _retry(self, fn, *, transient=_transient):
        """``fn()``, retried on ``transient`` errors with exponential backoff."""
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential  # noqa: PLC0415

        return Retrying(stop=stop_after_attempt(self.max_attempts), reraise=True,
                        wait=wait_exponential(multiplier=self.backoff_s, max=60.0),
                        retry=retry_if_exception(transient))(fn)

    def config(self, req: ProducerRequest, *, seconds: int, size: tuple[int, int], last_image, first_given: bool):
        """The ``GenerateVideosConfig`` of one clip, with only the fields this model takes."""
        from google.genai import types  # noqa: PLC0415

        cfg: dict[str, Any] = {"aspect_ratio": "16:9" if size[0] > size[1] else "9:16", "duration_seconds": seconds,
                               "number_of_videos": 1, "negative_prompt": self.negative_prompt}
        if self.resolution:
            cfg["resolution"] = self.resolution
        if self.cap.audio:
            cfg["generate_audio"] = self.generate_audio
        if last_image is not None and self.use_last_frame and self.cap.last_frame:
            cfg["last_frame"] = _image(last_image)
        if (self.collage_as == "reference" and self.cap.reference_images and not first_given
                and conditioning.uses_collage(self) and req.collage_path):
            cfg["reference_images"] = [types.VideoGenerationReferenceImage(
                image=_image(conditioning.collage_array(req, *size)), reference_type=types.VideoGenerationReferenceType.ASSET)]
        return types.GenerateVideosConfig(**cfg)

    def _clip(self, req: ProducerRequest, *, index: int, prompt: str, image: np.ndarray, last_image,
              seconds: int, size: tuple[int, int]) -> tuple[np.ndarray, float, dict[str, Any]]:
        from google.genai import types  # noqa: PLC0415

        item = f"{request_item(req)}, veo clip {index}"
        prompt = conditioning.name_product(prompt, req, conditioning.product_record(
            req, self.extra.get("product"), self.extra.get("products_dir")))
        first_given = index == 0 and req.first_frame is not None
        cfg = self.config(req, seconds=seconds, size=size, last_image=last_image, first_given=first_given)
        # with reference images the collage is the asset and the clip starts from no fixed frame
        source = types.GenerateVideosSource(prompt=prompt, image=None if cfg.reference_images else _image(image))
        data, op_name = self._generate(item, source, cfg)
        frames, fps = decode_clip(data, item)
        return frames, fps, {"operation": op_name, "cost_usd": seconds * self.price, "prompt": prompt,
                             "last_frame": cfg.last_frame is not None, "reference_images": bool(cfg.reference_images),
                             "generate_audio": cfg.generate_audio, "_video_bytes": data}

    def extend(self, req: ProducerRequest, video: bytes, prompt: str, *, index: int = 0
               ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """The API's own continuation of a Veo video: ``generate_videos`` with ``source.video`` = ``video`` (mp4
        bytes, 1 to 30 s, generated by Veo) and ``prompt`` (what follows). Returns the answer's frames (the input
        and :data:`EXTEND_SECONDS` more, as the API returns them), fps, and info (``operation``, ``cost_usd``:
        the added seconds at the model's rate, ``_video_bytes``: the answer as returned)."""
        from google.genai import types  # noqa: PLC0415

        item = f"{request_item(req)}, veo extension {index}"
        if not self.cap.extend:
            raise ProducerError(item, f"{self.model} does not extend videos (CAPABILITIES: models that do are "
                                f"{', '.join(m for m, c in CAPABILITIES.items() if c.extend)})")
        prompt = conditioning.name_product(prompt, req, conditioning.product_record(
            req, self.extra.get("product"), self.extra.get("products_dir")))
        w, h = self.api_size(req.aspect_ratio)
        cfg = types.GenerateVideosConfig(aspect_ratio="16:9" if w > h else "9:16", number_of_videos=1,
                                         negative_prompt=self.negative_prompt)
        source = types.GenerateVideosSource(prompt=prompt, video=types.Video(video_bytes=video, mime_type="video/mp4"))
        data, op_name = self._generate(item, source, cfg)
        frames, fps = decode_clip(data, item)
        return frames, fps, {"operation": op_name, "cost_usd": EXTEND_SECONDS * self.price, "prompt": prompt,
                             "extension_of_bytes": len(video), "_video_bytes": data}

    def _generate(self, item: str, source: Any, cfg: Any) -> tuple[bytes, str]:
        """One ``generate_videos`` operation, polled to the end: the video's bytes and the operation's name."""
        from google.genai import errors  # noqa: PLC0415

        try:
            op = self._retry(lambda: self.client.models.generate_videos(model=self.model, source=source, config=cfg),
                             transient=lambda e: isinstance(e, errors.APIError) and int(getattr(e, "code", 0) or 0) == 429)
            t0 = time.monotonic()
            while not op.done:
                if time.monotonic() - t0 > self.max_wait_s:
                    raise ProducerError(item, f"operation {op.name} not done after {self.max_wait_s:.0f}s")
                time.sleep(self.poll_interval_s)
                op = self._retry(lambda o=op: self.client.operations.get(o))
        except errors.APIError as e:
            msg = getattr(e, "message", None) or str(e)
            if "safety" in msg.lower() or "moderation" in msg.lower() or "blocked" in msg.lower():
                raise ProducerError(item, f"moderation: {msg}") from e
            raise ProducerError(item, f"generate_videos failed ({getattr(e, 'code', '?')}): {msg}") from e
        if op.error:
            msg = op.error.get("message", str(op.error)) if isinstance(op.error, dict) else str(op.error)
            raise ProducerError(item, f"operation {op.name} failed: {msg}")
        res = op.response or op.result
        if res is None or not res.generated_videos:
            reasons = "; ".join(res.rai_media_filtered_reasons or []) if res is not None else ""
            if res is not None and (res.rai_media_filtered_count or reasons):
                raise ProducerError(item, f"moderation: {reasons or 'output filtered'}")
            raise ProducerError(item, f"operation {op.name} returned no video")
        video = res.generated_videos[0].video
        try:
            data = video.video_bytes or self.client.files.download(file=video)
        except errors.APIError as e:
            raise ProducerError(item, f"download failed: {e}") from e
        return data, str(op.name)


def _image(a: np.ndarray):
    from google.genai import types  # noqa: PLC0415

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return types.Image(image_bytes=buf.getvalue(), mime_type="image/png")
