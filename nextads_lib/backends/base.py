"""One interface for every multimodal model call of the study (Director stages, judges, verifiers).

A stage builds a :class:`ModelRequest` (system prompt, user content of text, images and video, the pydantic
model the answer must satisfy, and ``context``: the structured inputs the request was built from) and calls
``backend.complete(req)``. Every backend then does the same things around its own API call:

* the answer is validated against ``req.schema``; malformed JSON or a schema violation is re-asked ONCE
  with the validation error, then raised as :class:`BackendError` naming the item and the task;
* transient failures (429, 5xx, timeouts, connection errors) are retried with exponential backoff
  (tenacity), honouring ``Retry-After``;
* temperature 0 and a seed are sent where the API allows;
* request and answer are cached on disk under a content key of (backend, model, task, system, parts by
  content, context, schema, settings), so a rerun makes no call;
* tokens, latency and estimated cost (``prices.yaml``) are recorded per call in ``backend.usage``.
"""

from __future__ import annotations

import base64
import io
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from ..schemas import Usage
from ..store import Cache, content_key, file_digest

T = TypeVar("T", bound=BaseModel)
CODE_VERSION = "backends-1"


class BackendError(RuntimeError):
    """A model call that finally failed: names the item, the task and the reason."""

    def __init__(self, item: str, task: str, reason: str):
        self.item, self.task, self.reason = item, task, reason
        super().__init__(f"{item or 'request'} [{task}]: {reason}")


class TransientError(RuntimeError):
    """A failure worth retrying (rate limit, 5xx, timeout); ``retry_after`` in seconds if the server said."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


# ------------------------------------------------------------------------------------------ content parts
@dataclass(frozen=True)
class TextPart:
    text: str


@dataclass(frozen=True)
class ImagePart:
    image: Any  # a path (str / Path) or a PIL.Image

    def png_bytes(self, max_side: int = 768) -> bytes:
        from PIL import Image  # noqa: PLC0415

        from ..media import load_image  # noqa: PLC0415

        im = self.image if isinstance(self.image, Image.Image) else load_image(self.image)
        im = im.convert("RGB")
        im.thumbnail((max_side, max_side))
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        return buf.getvalue()

    def key(self) -> Any:
        if isinstance(self.image, (str, Path)):
            return {"image_sha256": file_digest(self.image)}
        return {"image_png": content_key(self.png_bytes())}


@dataclass(frozen=True)
class VideoPart:
    path: str | Path
    n_frames: int = 8

    def frames_png(self, max_side: int = 512) -> list[bytes]:
        from PIL import Image  # noqa: PLC0415

        from ..media import sample_frames  # noqa: PLC0415

        out = []
        for fr in sample_frames(self.path, self.n_frames):
            im = Image.fromarray(fr)
            im.thumbnail((max_side, max_side))
            buf = io.BytesIO()
            im.save(buf, format="PNG")
            out.append(buf.getvalue())
        return out

    def key(self) -> Any:
        return {"video_sha256": file_digest(self.path), "n_frames": self.n_frames}


Part = TextPart | ImagePart | VideoPart


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@dataclass
class ModelRequest(Generic[T]):
    task: str
    system: str
    parts: list[Part]
    schema: type[T]
    context: dict[str, Any] = field(default_factory=dict)
    item: str = ""
    max_output_tokens: int = 2048

    def cache_parts(self) -> list[Any]:
        out = []
        for p in self.parts:
            if isinstance(p, TextPart):
                out.append({"text": p.text})
            else:
                out.append(p.key())
        return out

    def schema_json(self) -> dict[str, Any]:
        return self.schema.model_json_schema()

    def user_text(self) -> str:
        return "\n".join(p.text for p in self.parts if isinstance(p, TextPart))


@dataclass
class ModelResult(Generic[T]):
    value: T
    usage: Usage
    cached: bool = False
    raw: str = ""


# ------------------------------------------------------------------------------------- offline registry
OFFLINE_HANDLERS: dict[str, Callable[[ModelRequest], BaseModel | dict]] = {}


def register_offline(task: str) -> Callable:
    """Register the offline handler of ``task``: ``handler(req) -> req.schema instance (or dict)``."""

    def deco(fn: Callable[[ModelRequest], BaseModel | dict]) -> Callable:
        OFFLINE_HANDLERS[task] = fn
        return fn

    return deco


# ------------------------------------------------------------------------------------------ JSON parsing
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.S)


def extract_json(text: str) -> Any:
    """The JSON object in a model's text: the whole text, a fenced block, or the outermost {...}."""
    text = (text or "").strip()
    candidates = [text]
    candidates += _FENCE.findall(text)
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{"): text.rindex("}") + 1])
    err: Exception | None = None
    for c in candidates:
        try:
            return json.loads(c)
        except json.JSONDecodeError as e:
            err = e
    raise ValueError(f"no JSON object in the answer ({err}): {text[:200]!r}")


def validation_errors(e: Exception) -> str:
    if isinstance(e, ValidationError):
        return "; ".join(f"{'.'.join(map(str, x['loc'])) or '<root>'}: {x['msg']}" for x in e.errors()[:10])
    return str(e)


# ---------------------------------------------------------------------------------------------- backend
class ModelBackend:
    """Base of every backend: caching, validation with one repair, usage. Subclasses implement ``_call``."""

    kind = "base"

    def __init__(self, model: str = "", cache_dir: str | Path | None = None, **settings: Any):
        self.model = model
        self.settings = settings
        self.cache = Cache(cache_dir) if cache_dir else None
        self.usage: list[Usage] = []
        self.calls = 0  # real (uncached) API calls

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.model}" if self.model else self.kind

    # --- subclasses
    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        """One API call: returns (answer text, input tokens, output tokens). Raise TransientError to retry."""
        raise NotImplementedError

    # --- shared
    #: bumped by a backend when its request format changes (answers cached under the old one are stale);
    #: left out of the key when empty, so the offline backend's cached answers keep their keys
    wire_version = ""

    def cache_key(self, req: ModelRequest) -> str:
        extra = [self.wire_version] if self.wire_version else []
        return content_key(CODE_VERSION, self.name, req.task, req.system, req.cache_parts(), req.context,
                           req.schema_json(), {k: v for k, v in sorted(self.settings.items()) if k not in _NOKEY},
                           *extra)

    def _retrying(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        from tenacity import Retrying, retry_if_exception_type, stop_after_attempt  # noqa: PLC0415

        max_attempts = int(self.settings.get("max_attempts", 5))
        base = float(self.settings.get("backoff_s", 1.0))
        cap = float(self.settings.get("max_backoff_s", 30.0))

        def wait(state) -> float:
            exc = state.outcome.exception()
            ra = getattr(exc, "retry_after", None)
            if ra is not None:
                return min(float(ra), cap)
            return min(base * 2 ** (state.attempt_number - 1), cap)

        try:
            for attempt in Retrying(stop=stop_after_attempt(max_attempts), wait=wait,
                                    retry=retry_if_exception_type(TransientError), reraise=True):
                with attempt:
                    if self.kind != "offline":  # the cluster-wide window of this API (docs/scale_out.md)
                        from ..ratelimit import acquire, estimate_tokens  # noqa: PLC0415

                        acquire(self.name, estimate_tokens(req))
                    self.calls += 1
                    return self._call(req, repair)
        except TransientError as e:
            raise BackendError(req.item, req.task, f"{self.name} still failing after {max_attempts} attempts: {e}") from e
        raise AssertionError("unreachable")

    def complete(self, req: ModelRequest[T]) -> ModelResult[T]:
        key = self.cache_key(req)
        if self.cache is not None:
            hit = self.cache.get_json("model", key)
            if hit is not None:
                try:
                    value = req.schema.model_validate(hit["value"])
                    u = Usage(backend=self.name, model=self.model, input_tokens=hit.get("input_tokens", 0),
                              output_tokens=hit.get("output_tokens", 0), latency_s=0.0, cost_usd=0.0, cached=True)
                    self.usage.append(u)
                    return ModelResult(value=value, usage=u, cached=True, raw=hit.get("raw", ""))
                except (ValidationError, KeyError, TypeError):
                    pass
        t0 = time.time()
        tin = tout = 0
        repair: str | None = None
        value = None
        raw = ""
        for attempt in range(2):
            raw, i, o = self._retrying(req, repair)
            tin, tout = tin + i, tout + o
            try:
                value = self._parse(req, raw)
                break
            except (ValueError, ValidationError) as e:
                repair = validation_errors(e)
                if attempt == 1:
                    self._record(req, tin, tout, time.time() - t0)
                    raise BackendError(req.item, req.task,
                                       f"{self.name} answer failed validation twice: {repair}") from e
        u = self._record(req, tin, tout, time.time() - t0)
        if self.cache is not None:
            self.cache.put_json("model", key, {"value": value.model_dump(mode="json"), "raw": raw,
                                               "input_tokens": tin, "output_tokens": tout,
                                               "backend": self.name, "task": req.task})
        return ModelResult(value=value, usage=u, cached=False, raw=raw)

    def _parse(self, req: ModelRequest[T], raw: str) -> T:
        return req.schema.model_validate(extract_json(raw))

    def _record(self, req: ModelRequest, tin: int, tout: int, latency: float) -> Usage:
        from .pricing import cost_usd  # noqa: PLC0415

        u = Usage(backend=self.name, model=self.model, input_tokens=tin, output_tokens=tout,
                  latency_s=round(latency, 4), cost_usd=cost_usd(self.name, tin, tout,
                                                                  self.settings.get("price_table")))
        self.usage.append(u)
        return u

    def usage_summary(self) -> dict[str, Any]:
        return summarize_usage(self.usage)


def summarize_usage(usage: list[Usage]) -> dict[str, Any]:
    return {
        "calls": sum(not u.cached for u in usage),
        "cached": sum(u.cached for u in usage),
        "input_tokens": sum(u.input_tokens for u in usage),
        "output_tokens": sum(u.output_tokens for u in usage),
        "cost_usd": round(sum(u.cost_usd for u in usage), 6),
        "latency_s": round(sum(u.latency_s for u in usage), 3),
    }


# settings that do not change an answer, so they stay out of cache keys
_NOKEY = {"max_attempts", "backoff_s", "max_backoff_s", "timeout_s", "price_table", "api_key"}
