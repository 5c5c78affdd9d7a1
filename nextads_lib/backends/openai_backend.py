"""``openai:<model>``: GPT-4o and any OpenAI-compatible server (vLLM serving Qwen/Qwen3-VL-8B-Instruct,
Ollama) through the official ``openai`` client's chat completions.

The client's own settings work unchanged: ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``; the backend settings
``api_key`` / ``base_url`` override them only when given. Structured output uses the API's JSON-schema mode
(``structured="json_schema"``, the default); a server that rejects it with 400 is asked again in plain JSON
mode (``structured="json"``) and the answer validated by us. Images travel as data URLs, a video as
``n_frames`` sampled frames.
"""

from __future__ import annotations

import os
from typing import Any

from .base import BackendError, ImagePart, ModelBackend, ModelRequest, TextPart, TransientError, VideoPart, b64


def _retry_after(exc: Any) -> float | None:
    resp = getattr(exc, "response", None)
    if resp is None:
        return None
    try:
        return float(resp.headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


class OpenAIBackend(ModelBackend):
    kind = "openai"

    def __init__(self, model: str, cache_dir=None, **settings: Any):
        if not model:
            raise BackendError("", "setup", "openai: needs a model name, e.g. 'openai:gpt-4o'")
        super().__init__(model, cache_dir, **settings)
        self.structured = settings.get("structured", "json_schema")
        self._client = None

    def client(self):
        if self._client is None:
            try:
                import openai  # noqa: PLC0415
            except ImportError as e:
                raise BackendError("", "setup", "openai: install the API extra: pip install -e '.[api]'") from e
            base_url = self.settings.get("base_url") or os.environ.get("OPENAI_BASE_URL")
            key = self.settings.get("api_key") or os.environ.get("OPENAI_API_KEY")
            if not key:
                if not base_url:
                    raise BackendError("", "setup", "openai: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local "
                                                    "OpenAI-compatible server such as vLLM or Ollama)")
                key = "EMPTY"  # local servers accept any key
            self._client = openai.OpenAI(api_key=key, base_url=self.settings.get("base_url"),
                                         timeout=float(self.settings.get("timeout_s", 120)), max_retries=0)
        return self._client

    def messages(self, req: ModelRequest, repair: str | None) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        for p in req.parts:
            if isinstance(p, TextPart):
                content.append({"type": "text", "text": p.text})
            elif isinstance(p, ImagePart):
                content.append({"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(p.png_bytes())}})
            elif isinstance(p, VideoPart):
                n = int(self.settings.get("n_frames", p.n_frames))
                for fr in VideoPart(p.path, n).frames_png():
                    content.append({"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(fr)}})
        schema = req.schema_json()
        instr = "Answer with one JSON object only, matching this JSON schema:\n" + _compact(schema)
        if repair:
            instr += f"\nYour previous answer was invalid ({repair}). Answer again, valid JSON only."
        content.append({"type": "text", "text": instr})
        return [{"role": "system", "content": req.system}, {"role": "user", "content": content}]

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        import openai  # noqa: PLC0415

        kw: dict[str, Any] = dict(model=self.model, messages=self.messages(req, repair),
                                  temperature=float(self.settings.get("temperature", 0.0)),
                                  max_tokens=req.max_output_tokens)
        if self.settings.get("seed", 0) is not None:
            kw["seed"] = int(self.settings.get("seed", 0))
        if self.structured == "json_schema":
            kw["response_format"] = {"type": "json_schema", "json_schema": {
                "name": req.schema.__name__, "schema": req.schema_json(), "strict": False}}
        elif self.structured == "json":
            kw["response_format"] = {"type": "json_object"}
        try:
            r = self.client().chat.completions.create(**kw)
        except openai.BadRequestError as e:
            if self.structured == "json_schema" and "response_format" in str(e).lower() + str(getattr(e, "body", "")).lower() or (
                    self.structured == "json_schema" and "json_schema" in str(e)):
                self.structured = "json"  # this server has no JSON-schema mode: plain JSON + our validation
                return self._call(req, repair)
            raise BackendError(req.item, req.task, f"{self.name} rejected the request: {e}") from e
        except openai.AuthenticationError as e:
            raise BackendError(req.item, req.task, f"{self.name}: authentication failed; check OPENAI_API_KEY ({e})") from e
        except openai.RateLimitError as e:
            raise TransientError(f"429 rate limited: {e}", _retry_after(e)) from e
        except openai.APITimeoutError as e:
            raise TransientError(f"timeout: {e}") from e
        except openai.APIConnectionError as e:
            url = self.settings.get("base_url") or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
            raise TransientError(f"cannot reach {url} (set OPENAI_BASE_URL to your server): {e}") from e
        except openai.APIStatusError as e:
            if e.status_code >= 500 or e.status_code == 429:
                raise TransientError(f"{e.status_code}: {e}", _retry_after(e)) from e
            raise BackendError(req.item, req.task, f"{self.name} answered {e.status_code}: {e}") from e
        choice = r.choices[0] if r.choices else None
        text = (choice.message.content or "") if choice else ""
        refusal = getattr(choice.message, "refusal", None) if choice else None
        if refusal:
            raise BackendError(req.item, req.task, f"{self.name} refused: {refusal}")
        u = r.usage
        return text, int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0)


def _compact(schema: dict[str, Any]) -> str:
    import json  # noqa: PLC0415

    return json.dumps(schema, separators=(",", ":"))
