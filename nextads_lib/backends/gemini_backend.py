"""``gemini:<model>``: Gemini 2.5 Flash (the paper's judge) through the official ``google-genai`` client.

The client's own settings work unchanged: ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``, and
``GOOGLE_GEMINI_BASE_URL``; the backend settings ``api_key`` / ``base_url`` override them only when given.
JSON answers through ``response_mime_type="application/json"`` with the schema; videos go as inline bytes up
to ``inline_video_mb`` (default 18 MB), else as ``n_frames`` sampled frames.

Thinking: the 2.5 models think by default, and their thinking tokens count against ``max_output_tokens``
(a long thought leaves an empty answer with ``finishReason: MAX_TOKENS``). Every 2.5 request therefore sends
``thinking_config.thinking_budget``: the setting ``thinking_budget`` when given, else 0 (off) for Flash /
Flash-Lite and 128 (the smallest allowed; Pro cannot switch thinking off) for Pro; the budget is added to
``max_output_tokens``. Thinking tokens (``usage_metadata.thoughts_token_count``) are billed at the output
rate and counted in the recorded output tokens and cost.

Errors: 429 and 5xx, timeouts and connection errors are transient; a 429's delay is read from the error
body's ``google.rpc.RetryInfo`` ``retryDelay`` (the Gemini API sends no Retry-After header), then from a
``retry-after`` header; 401/403 and an invalid key are a setup error; any other 4xx fails the item at once.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .base import BackendError, ImagePart, ModelBackend, ModelRequest, TextPart, TransientError, VideoPart

#: default thinking budget per model family (tokens): off where the model allows it, else the minimum
DEFAULT_THINKING_BUDGET = {"flash": 0, "flash-lite": 0, "pro": 128}


def default_thinking_budget(model: str) -> int | None:
    """0 for gemini-2.5-flash(-lite), 128 for gemini-2.5-pro, None for models without a thinking budget."""
    m = model.rsplit("/", 1)[-1].lower()
    if not m.startswith("gemini-2.5"):
        return None
    if "pro" in m:
        return DEFAULT_THINKING_BUDGET["pro"]
    return DEFAULT_THINKING_BUDGET["flash-lite" if "lite" in m else "flash"]


def parse_duration_s(value: Any) -> float | None:
    """A protobuf Duration as JSON (``"37s"``, ``"0.400s"``) or a number, in seconds; None if unreadable."""
    if isinstance(value, (int, float)):
        return max(0.0, float(value))
    if isinstance(value, dict):  # {"seconds": 1, "nanos": 5e8}
        return max(0.0, float(value.get("seconds", 0) or 0) + float(value.get("nanos", 0) or 0) / 1e9)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*s\s*", str(value or ""))
    return float(m.group(1)) if m else None


def retry_delay_s(details: Any) -> float | None:
    """The ``retryDelay`` of the ``google.rpc.RetryInfo`` entry of an error body's ``details``."""
    err = details.get("error", details) if isinstance(details, dict) else {}
    for d in (err.get("details") or []) if isinstance(err, dict) else []:
        if isinstance(d, dict) and str(d.get("@type", "")).endswith("google.rpc.RetryInfo"):
            return parse_duration_s(d.get("retryDelay"))
    return None


def _header_delay(e: Any) -> float | None:
    resp = getattr(e, "response", None)
    try:
        v = resp.headers.get("retry-after") if resp is not None else None
        return None if v is None else max(0.0, float(v))
    except (TypeError, ValueError, AttributeError):
        return None


class GeminiBackend(ModelBackend):
    kind = "gemini"
    wire_version = "gemini-2: thinking budget sent"

    def __init__(self, model: str, cache_dir=None, **settings: Any):
        if not model:
            raise BackendError("", "setup", "gemini: needs a model name, e.g. 'gemini:gemini-2.5-flash'")
        tb = settings.get("thinking_budget")
        if tb is None and default_thinking_budget(model) is not None:
            # the effective budget is part of the settings, so it is in the cache key and the manifests
            settings = {**settings, "thinking_budget": default_thinking_budget(model)}
        super().__init__(model, cache_dir, **settings)
        self._client = None

    @property
    def thinking_budget(self) -> int | None:
        tb = self.settings.get("thinking_budget")
        return None if tb is None else int(tb)

    def client(self):
        if self._client is None:
            try:
                from google import genai  # noqa: PLC0415
                from google.genai import types  # noqa: PLC0415
            except ImportError as e:
                raise BackendError("", "setup", "gemini: install the API extra: pip install -e '.[api]'") from e
            key = self.settings.get("api_key") or os.environ.get("GOOGLE_API_KEY") or os.environ.get("GEMINI_API_KEY")
            if not key:
                raise BackendError("", "setup", "gemini: set GEMINI_API_KEY (or GOOGLE_API_KEY)")
            opts: dict[str, Any] = {"timeout": int(float(self.settings.get("timeout_s", 120)) * 1000)}
            if self.settings.get("base_url"):
                opts["base_url"] = self.settings["base_url"]
            self._client = genai.Client(api_key=key, http_options=types.HttpOptions(**opts))
        return self._client

    def contents(self, req: ModelRequest, repair: str | None) -> list[Any]:
        from google.genai import types  # noqa: PLC0415

        parts: list[Any] = []
        for p in req.parts:
            if isinstance(p, TextPart):
                parts.append(types.Part.from_text(text=p.text))
            elif isinstance(p, ImagePart):
                parts.append(types.Part.from_bytes(data=p.png_bytes(), mime_type="image/png"))
            elif isinstance(p, VideoPart):
                size = Path(p.path).stat().st_size
                if size <= float(self.settings.get("inline_video_mb", 18)) * 2**20:
                    parts.append(types.Part.from_bytes(data=Path(p.path).read_bytes(), mime_type="video/mp4"))
                else:
                    for fr in VideoPart(p.path, int(self.settings.get("n_frames", p.n_frames))).frames_png():
                        parts.append(types.Part.from_bytes(data=fr, mime_type="image/png"))
        if repair:
            parts.append(types.Part.from_text(text=f"Your previous answer was invalid ({repair}). Answer again, valid JSON only."))
        return [types.Content(role="user", parts=parts)]

    def config(self, req: ModelRequest):
        from google.genai import types  # noqa: PLC0415

        budget = self.thinking_budget
        kw: dict[str, Any] = dict(
            system_instruction=req.system, temperature=float(self.settings.get("temperature", 0.0)),
            seed=int(self.settings.get("seed", 0)), max_output_tokens=int(req.max_output_tokens) + max(0, budget or 0),
            response_mime_type="application/json", response_json_schema=req.schema_json(),
        )
        if budget is not None:
            kw["thinking_config"] = types.ThinkingConfig(thinking_budget=budget)
        return types.GenerateContentConfig(**kw)

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        from google.genai import errors  # noqa: PLC0415

        try:
            r = self.client().models.generate_content(model=self.model, contents=self.contents(req, repair),
                                                      config=self.config(req))
        except errors.APIError as e:
            code = int(getattr(e, "code", 0) or 0)
            msg = getattr(e, "message", None) or str(e)
            if code == 429 or code >= 500:
                delay = retry_delay_s(getattr(e, "details", None))
                raise TransientError(f"{code} {getattr(e, 'status', '')}: {msg}",
                                     delay if delay is not None else _header_delay(e)) from e
            if code in (401, 403) or "API_KEY_INVALID" in str(getattr(e, "details", "")):
                raise BackendError(req.item, "setup", f"{self.name}: not authorised ({code}); check GEMINI_API_KEY "
                                                      f"({msg})") from e
            raise BackendError(req.item, req.task, f"{self.name} answered {code}: {msg}") from e
        except Exception as e:  # httpx timeouts / connection errors
            name = type(e).__name__
            if "Timeout" in name or "Connect" in name:
                url = self.settings.get("base_url") or os.environ.get("GOOGLE_GEMINI_BASE_URL") or "the Gemini API"
                raise TransientError(f"{name} reaching {url}: {e}") from e
            raise
        um = r.usage_metadata
        tin = int(getattr(um, "prompt_token_count", 0) or 0) if um else 0
        thoughts = int(getattr(um, "thoughts_token_count", 0) or 0) if um else 0
        tout = (int(getattr(um, "candidates_token_count", 0) or 0) if um else 0) + thoughts
        text = _answer_text(r)
        finish = str(getattr(r.candidates[0], "finish_reason", "") or "") if r.candidates else ""
        if not text.strip() and "MAX_TOKENS" in finish:
            raise BackendError(req.item, req.task, f"{self.name} stopped at max_output_tokens with no answer "
                                                   f"({thoughts} thinking tokens); set a smaller thinking_budget")
        if not r.candidates:  # the prompt itself was blocked
            fb = getattr(r, "prompt_feedback", None)
            raise BackendError(req.item, req.task, f"{self.name} refused: {getattr(fb, 'block_reason', None) or 'no candidates'}")
        if not text.strip() and any(w in finish for w in ("SAFETY", "PROHIBITED", "BLOCKLIST", "RECITATION")):
            raise BackendError(req.item, req.task, f"{self.name} refused: finishReason {finish}")
        return text, tin, tout


def _answer_text(r: Any) -> str:
    """The answer's text parts, without thought summaries (``r.text`` warns and skips them the same way)."""
    if not r.candidates or r.candidates[0].content is None:
        return ""
    return "".join(p.text for p in (r.candidates[0].content.parts or []) if p.text and not p.thought)
