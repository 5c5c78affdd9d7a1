"""``gemini:<model>``: Gemini 2.5 Flash (the paper's judge) through the official ``google-genai`` client.

The client's own settings work unchanged: ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``, and
``GOOGLE_GEMINI_BASE_URL``; the backend settings ``api_key`` / ``base_url`` override them only when given.
JSON answers through ``response_mime_type="application/json"`` with the schema; videos go as inline bytes up
to ``inline_video_mb`` (default 18 MB), else as ``n_frames`` sampled frames.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .base import BackendError, ImagePart, ModelBackend, ModelRequest, TextPart, TransientError, VideoPart


class GeminiBackend(ModelBackend):
    kind = "gemini"

    def __init__(self, model: str, cache_dir=None, **settings: Any):
        if not model:
            raise BackendError("", "setup", "gemini: needs a model name, e.g. 'gemini:gemini-2.5-flash'")
        super().__init__(model, cache_dir, **settings)
        self._client = None

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

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        from google.genai import errors, types  # noqa: PLC0415

        cfg = types.GenerateContentConfig(
            system_instruction=req.system, temperature=float(self.settings.get("temperature", 0.0)),
            seed=int(self.settings.get("seed", 0)), max_output_tokens=req.max_output_tokens,
            response_mime_type="application/json", response_json_schema=req.schema_json(),
        )
        try:
            r = self.client().models.generate_content(model=self.model, contents=self.contents(req, repair), config=cfg)
        except errors.APIError as e:
            code = int(getattr(e, "code", 0) or 0)
            if code == 429 or code >= 500:
                ra = None
                resp = getattr(e, "response", None)
                try:
                    ra = float(resp.headers.get("retry-after")) if resp is not None else None
                except (TypeError, ValueError, AttributeError):
                    ra = None
                raise TransientError(f"{code}: {e}", ra) from e
            if code in (401, 403):
                raise BackendError(req.item, req.task, f"{self.name}: not authorised; check GEMINI_API_KEY ({e})") from e
            raise BackendError(req.item, req.task, f"{self.name} answered {code}: {e}") from e
        except Exception as e:  # httpx timeouts / connection errors
            name = type(e).__name__
            if "Timeout" in name or "Connect" in name:
                url = self.settings.get("base_url") or os.environ.get("GOOGLE_GEMINI_BASE_URL") or "the Gemini API"
                raise TransientError(f"{name} reaching {url}: {e}") from e
            raise
        text = r.text or ""
        um = r.usage_metadata
        tin = int(getattr(um, "prompt_token_count", 0) or 0) if um else 0
        tout = int(getattr(um, "candidates_token_count", 0) or 0) if um else 0
        return text, tin, tout
