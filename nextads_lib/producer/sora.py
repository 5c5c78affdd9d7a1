"""``sora:<model>``: OpenAI's videos API through the official ``openai`` client (create with an input
reference image, poll, download). ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` are read by the client as usual.
Allowed sizes 720x1280 / 1280x720 (and, with ``high_res=True``, 1024x1792 / 1792x1024 for sora-2-pro only,
billed at its own rate in ``backends/prices.yaml``) and clip lengths 4/8/12 s; the storyboard's duration is
covered with clips, which the post step retimes to the exact slot timing. A moderation refusal (at create, or
a failed job) raises ``ProducerError(item, "moderation: <reason>")``.

Conditioning: ``input_reference`` is one image of exactly the requested ``size`` (the API rejects any other):
under the paper protocol (``slot_layouts=False``, default) the pair's reference collage, letterboxed (PCI's
first clip: the integration frame); with ``slot_layouts=True`` a layout of the slot's assets. Sora takes no
last frame. The prompt names the product and describes it from its library record (``conditioning``)."""

from __future__ import annotations

import contextlib
import io
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from PIL import Image

from ..schemas import ProducerRequest
from ..backends.pricing import video_price_per_second
from . import conditioning
from .base import ProducerError, poll_interval, request_item
from .clips import ClipProducer, decode_clip

SIZES = {"9:16": (720, 1280), "16:9": (1280, 720), "1:1": (720, 1280)}  # 1:1 is cropped by the post step
PRO_SIZES = {"9:16": (1024, 1792), "16:9": (1792, 1024), "1:1": (1024, 1792)}
MODERATION_WORDS = ("moderation", "content_policy", "safety", "policy_violation")


def _is_moderation(code: str | None, message: str | None) -> bool:
    text = f"{code or ''} {message or ''}".lower()
    return any(w in text for w in MODERATION_WORDS)


@contextlib.contextmanager
def _job_errors(item: str, what: str) -> Iterator[None]:
    """A job request's API errors as :class:`ProducerError` naming the item: a 400 as moderation or as the
    rejection's code and message (from the error body), any other API error as ``<what> failed``."""
    import openai  # noqa: PLC0415

    try:
        yield
    except openai.BadRequestError as e:
        body = e.body if isinstance(e.body, dict) else {}
        err = body.get("error", body) if isinstance(body, dict) else {}
        code, msg = (err or {}).get("code"), (err or {}).get("message") or str(e)
        if _is_moderation(code, msg):
            raise ProducerError(item, f"moderation: {msg}") from e
        raise ProducerError(item, f"request rejected ({code}): {msg}") from e
    except openai.APIError as e:
        raise ProducerError(item, f"{what} failed: {type(e).__name__}: {e}") from e


class SoraProducer(ClipProducer):
    kind = "sora"
    allowed_seconds = (4, 8, 12)

    def __init__(self, model: str, cache_dir=None, *, high_res: bool = False, poll_interval_s: float | None = None,
                 max_wait_s: float = 1800.0, price_per_second: float | None = None, api_key: str | None = None,
                 base_url: str | None = None, timeout_s: float = 120.0, max_retries: int = 3, **settings: Any):
        if high_res and model != "sora-2-pro":
            raise ProducerError(f"sora:{model} settings", "high_res=True (1024x1792 / 1792x1024) is only "
                                "available on sora-2-pro")
        super().__init__(model, cache_dir, high_res=high_res, **settings)
        self.poll_interval_s, self.max_wait_s = poll_interval(poll_interval_s, 5.0), float(max_wait_s)
        table = video_price_per_second(model, "high_res" if high_res else "default")
        self.price = (table if table is not None else 0.10) if price_per_second is None else float(price_per_second)
        self.high_res = bool(high_res)
        self._client_kw = {"timeout": timeout_s, "max_retries": max_retries}
        if api_key:
            self._client_kw["api_key"] = api_key
        if base_url:
            self._client_kw["base_url"] = base_url
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import openai  # noqa: PLC0415

            try:
                self._client = openai.OpenAI(**self._client_kw)
            except openai.OpenAIError as e:
                raise ProducerError(self.name, f"{e} (set OPENAI_API_KEY, and OPENAI_BASE_URL for another server)") from e
        return self._client

    def api_size(self, aspect_ratio: str) -> tuple[int, int]:
        return (PRO_SIZES if self.high_res else SIZES)[aspect_ratio]

    def cache_key(self, req: ProducerRequest) -> str:
        return conditioning.cache_key(self, req, super().cache_key(req))

    def _clip(self, req: ProducerRequest, *, index: int, prompt: str, image: np.ndarray, last_image,
              seconds: int, size: tuple[int, int]) -> tuple[np.ndarray, float, dict[str, Any]]:
        item = f"{request_item(req)}, sora clip {index}"
        prompt = conditioning.name_product(prompt, req, conditioning.product_record(
            req, self.extra.get("product"), self.extra.get("products_dir")))
        if image.shape[:2] != (size[1], size[0]):  # the API rejects a reference of another size than `size`
            image = conditioning.letterbox(image, size[0], size[1])
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        with _job_errors(item, "create"):
            job = self.client.videos.create(model=self.model, prompt=prompt, seconds=str(seconds),
                                            size=f"{size[0]}x{size[1]}",
                                            input_reference=("reference.png", buf.getvalue(), "image/png"))
        return self._finish_job(job, item, seconds, prompt, last_image)

    def remix(self, req: ProducerRequest, video_id: str, prompt: str, *, index: int = 0
              ) -> tuple[np.ndarray, float, dict[str, Any]]:
        """The API's own edit of a finished video: ``POST /videos/{video_id}/remix`` with ``prompt`` (the same
        model, size and length), polled and downloaded like a new clip; billed like one."""
        item = f"{request_item(req)}, sora remix of {video_id} (clip {index})"
        prompt = conditioning.name_product(prompt, req, conditioning.product_record(
            req, self.extra.get("product"), self.extra.get("products_dir")))
        with _job_errors(item, "remix"):
            job = self.client.videos.remix(video_id, prompt=prompt)
        frames, fps, info = self._finish_job(job, item, int(float(job.seconds)), prompt, None)
        return frames, fps, {**info, "remixed_from": video_id}

    def _finish_job(self, job: Any, item: str, seconds: int, prompt: str, last_image: Any
                    ) -> tuple[np.ndarray, float, dict[str, Any]]:
        import openai  # noqa: PLC0415

        t0 = time.monotonic()
        while job.status in ("queued", "in_progress"):
            if time.monotonic() - t0 > self.max_wait_s:
                raise ProducerError(item, f"job {job.id} still {job.status} after {self.max_wait_s:.0f}s")
            time.sleep(self.poll_interval_s)
            try:
                job = self.client.videos.retrieve(job.id)
            except openai.APIError as e:
                raise ProducerError(item, f"polling job {job.id} failed: {type(e).__name__}: {e}") from e
        if job.status != "completed":
            code = job.error.code if job.error else None
            msg = job.error.message if job.error else f"status {job.status}"
            if _is_moderation(code, msg):
                raise ProducerError(item, f"moderation: {msg}")
            raise ProducerError(item, f"job {job.id} failed ({code}): {msg}")
        try:
            data = self.client.videos.download_content(job.id, variant="video").content
        except openai.APIError as e:
            raise ProducerError(item, f"download of job {job.id} failed: {type(e).__name__}: {e}") from e
        frames, fps = decode_clip(data, item)
        billed = float(job.seconds) if str(job.seconds).replace(".", "", 1).isdigit() else float(seconds)
        return frames, fps, {"job": job.id, "cost_usd": billed * self.price, "prompt": prompt,
                             "last_frame": "not taken by sora" if last_image is not None else None}
