"""``veo:<model>``: Google's Veo through the official ``google-genai`` client (``generate_videos`` with an
image, operation polling, download). The shipped client (3.x) generates videos only in Vertex AI mode, so
the client is made with ``vertexai=True``: an API key (``GOOGLE_API_KEY`` / ``GEMINI_API_KEY``, Vertex
express mode) or ``GOOGLE_CLOUD_PROJECT`` + ``GOOGLE_CLOUD_LOCATION`` with default credentials, and
``GOOGLE_VERTEX_BASE_URL`` for another server, all read by the client as usual. Clips of 4/6/8 s at 720p cover the storyboard,
and the post step retimes them to the exact slot timing. Filtered output (RAI) or a failed operation
raises ``ProducerError``; filtering is reported as ``moderation: <reasons>``."""

from __future__ import annotations

import io
import time
from typing import Any

import numpy as np
from PIL import Image

from ..schemas import ProducerRequest
from .base import ProducerError, request_item
from .clips import ClipProducer, decode_clip

#: USD per generated second (editable: pass price_per_second=... to override)
PRICE_PER_SECOND = {"veo-3.0-generate-001": 0.40, "veo-3.0-fast-generate-001": 0.15, "veo-3.1-generate-preview": 0.40,
                    "veo-3.1-fast-generate-preview": 0.15, "veo-2.0-generate-001": 0.35}
SIZES = {"9:16": (720, 1280), "16:9": (1280, 720), "1:1": (720, 1280)}  # 1:1 is cropped by the post step


class VeoProducer(ClipProducer):
    kind = "veo"
    allowed_seconds = (4, 6, 8)

    def __init__(self, model: str, cache_dir=None, *, poll_interval_s: float = 10.0, max_wait_s: float = 1800.0,
                 price_per_second: float | None = None, use_last_frame: bool = True, resolution: str | None = None,
                 negative_prompt: str = "captions, subtitles, watermark, distorted product", api_key: str | None = None,
                 allowed_seconds: tuple[int, ...] | list[int] | None = None, **settings: Any):
        super().__init__(model, cache_dir, use_last_frame=use_last_frame, resolution=resolution,
                         negative_prompt=negative_prompt, **settings)
        if allowed_seconds:
            self.allowed_seconds = tuple(int(s) for s in allowed_seconds)
        self.poll_interval_s, self.max_wait_s = float(poll_interval_s), float(max_wait_s)
        self.price = PRICE_PER_SECOND.get(model, 0.40) if price_per_second is None else float(price_per_second)
        self.use_last_frame, self.resolution, self.negative_prompt = use_last_frame, resolution, negative_prompt
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
                raise ProducerError(self.name, f"{e} (set GOOGLE_API_KEY or GEMINI_API_KEY for Vertex AI express "
                                    "mode, or GOOGLE_CLOUD_PROJECT + GOOGLE_CLOUD_LOCATION with application default "
                                    "credentials; GOOGLE_VERTEX_BASE_URL for another server)") from e
        return self._client

    def api_size(self, aspect_ratio: str) -> tuple[int, int]:
        return SIZES[aspect_ratio]

    def _clip(self, req: ProducerRequest, *, index: int, prompt: str, image: np.ndarray, last_image,
              seconds: int, size: tuple[int, int]) -> tuple[np.ndarray, float, dict[str, Any]]:
        from google.genai import errors, types  # noqa: PLC0415

        item = f"{request_item(req)}, veo clip {index}"

        def img(a: np.ndarray):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG")
            return types.Image(image_bytes=buf.getvalue(), mime_type="image/png")

        cfg: dict[str, Any] = {"aspect_ratio": "16:9" if size[0] > size[1] else "9:16", "duration_seconds": seconds,
                               "number_of_videos": 1, "negative_prompt": self.negative_prompt}
        if self.resolution:
            cfg["resolution"] = self.resolution
        if last_image is not None and self.use_last_frame:
            cfg["last_frame"] = img(last_image)
        try:
            op = self.client.models.generate_videos(model=self.model, prompt=prompt, image=img(image),
                                                    config=types.GenerateVideosConfig(**cfg))
            t0 = time.monotonic()
            while not op.done:
                if time.monotonic() - t0 > self.max_wait_s:
                    raise ProducerError(item, f"operation {op.name} not done after {self.max_wait_s:.0f}s")
                time.sleep(self.poll_interval_s)
                op = self.client.operations.get(op)
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
        frames, fps = decode_clip(data, item)
        return frames, fps, {"operation": op.name, "cost_usd": seconds * self.price}
