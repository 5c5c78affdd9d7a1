"""``openai:<model>``: GPT-4o, the reasoning models (o1/o3/o4*, gpt-5*) and any OpenAI-compatible server
(vLLM serving Qwen/Qwen3-VL-8B-Instruct, Ollama) through the official ``openai`` client's chat completions.

The client's own settings work unchanged: ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``; the backend settings
``api_key`` / ``base_url`` override them only when given.

Wire format, per model family (the installed client's ``chat.completions.create`` parameters):

* chat models (gpt-4o, gpt-4.1, local servers): ``temperature`` (0), ``seed``, ``max_tokens``;
* reasoning models (``o1``/``o3``/``o4*``, ``gpt-5*``; or the setting ``reasoning=True``): no temperature (the
  API accepts only its default), ``max_completion_tokens`` = the answer budget plus ``reasoning_tokens``
  (default 8192, since hidden reasoning counts against it), ``reasoning_effort`` when the setting is given.

Structured output uses the API's JSON-schema mode with the schema's ``name`` and ``strict`` (the schema made
strict by the client's own ``to_strict_json_schema``; setting ``structured="json_schema"``, the default). A 400
that rejects the ``response_format`` itself steps down once per answer: strict -> non-strict -> plain JSON mode
(``{"type": "json_object"}``, validated by us), so vLLM/Ollama work; a 400 for a *missing* field is our bug
and fails loudly instead. Images travel as data URLs, a video as ``n_frames`` sampled frames.

Errors: 408/409/429/5xx, timeouts and connection errors are transient (retried with backoff, honouring
``retry-after-ms`` then ``retry-after``, capped at ``max_backoff_s``); 401/403 are a setup error; any other 4xx
and a refusal fail the item at once.
"""

from __future__ import annotations

import email.utils
import os
import re
import time
from typing import Any

from .base import BackendError, ImagePart, ModelBackend, ModelRequest, TextPart, TransientError, VideoPart, b64

#: model names that take the reasoning models' parameters (max_completion_tokens, default temperature only)
REASONING_MODEL = re.compile(r"^(o\d+(-[\w.-]+)?|gpt-5([.\w-]*)?)$")
#: transient statuses besides 5xx (the openai client's own retry set)
TRANSIENT_STATUS = {408, 409, 429}


def is_reasoning_model(model: str) -> bool:
    """True for o1/o3/o4-mini/gpt-5/gpt-5-mini/... (a ``provider/`` prefix is ignored)."""
    return bool(REASONING_MODEL.match(model.rsplit("/", 1)[-1].lower()))


def retry_after_s(headers: Any) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms`` first, then ``retry-after`` (seconds or an HTTP
    date), as the openai client reads them; None when absent or unreadable."""
    if headers is None:
        return None
    for name, div in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        v = headers.get(name)
        if v is None:
            continue
        try:
            return max(0.0, float(v) / div)
        except ValueError:
            continue
    v = headers.get("retry-after")
    try:
        t = email.utils.parsedate_tz(v) if v else None
        return None if t is None else max(0.0, email.utils.mktime_tz(t) - time.time())
    except (TypeError, ValueError, OverflowError):
        return None


def _retry_after(exc: Any) -> float | None:
    resp = getattr(exc, "response", None)
    return retry_after_s(getattr(resp, "headers", None))


def _error_fields(exc: Any) -> dict[str, Any]:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        return err if isinstance(err, dict) else {}
    return {}


class OpenAIBackend(ModelBackend):
    kind = "openai"
    wire_version = "openai-2: named strict json_schema; reasoning-model parameters"

    def __init__(self, model: str, cache_dir=None, **settings: Any):
        if not model:
            raise BackendError("", "setup", "openai: needs a model name, e.g. 'openai:gpt-4o'")
        super().__init__(model, cache_dir, **settings)
        self.structured = settings.get("structured", "json_schema")
        if self.structured not in ("json_schema", "json", "none"):
            raise BackendError("", "setup", f"openai: structured='{self.structured}' must be json_schema, json or none")
        self.strict = bool(settings.get("strict", True))
        r = settings.get("reasoning")
        self.reasoning = is_reasoning_model(model) if r is None else bool(r)
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

    def response_format(self, req: ModelRequest) -> dict[str, Any] | None:
        if self.structured == "json_schema":
            if self.strict:
                from openai.lib._pydantic import to_strict_json_schema  # noqa: PLC0415

                schema = to_strict_json_schema(req.schema)
            else:
                schema = req.schema_json()
            return {"type": "json_schema", "json_schema": {"name": _schema_name(req.schema.__name__),
                                                           "schema": schema, "strict": self.strict}}
        if self.structured == "json":
            return {"type": "json_object"}
        return None

    def request_kwargs(self, req: ModelRequest, repair: str | None) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for this model family."""
        kw: dict[str, Any] = dict(model=self.model, messages=self.messages(req, repair))
        if self.reasoning:
            kw["max_completion_tokens"] = int(req.max_output_tokens) + int(self.settings.get("reasoning_tokens", 8192))
            if self.settings.get("reasoning_effort"):
                kw["reasoning_effort"] = str(self.settings["reasoning_effort"])
        else:
            kw["temperature"] = float(self.settings.get("temperature", 0.0))
            kw["max_tokens"] = int(req.max_output_tokens)
        if self.settings.get("seed", 0) is not None:
            kw["seed"] = int(self.settings.get("seed", 0))
        rf = self.response_format(req)
        if rf is not None:
            kw["response_format"] = rf
        return kw

    def _step_down(self, e: Any) -> bool:
        """A 400 about ``response_format`` from a server that cannot do what we asked: use the next weaker
        structured mode (strict -> non-strict -> json_object). False when there is nothing weaker, or when
        the error says a required field is missing (our request is wrong; stepping down would hide it)."""
        err = _error_fields(e)
        text = f"{err.get('param') or ''} {err.get('message') or ''} {e}".lower()
        if "response_format" not in text and "json_schema" not in text:
            return False
        if err.get("code") == "missing_required_parameter":
            return False
        if self.structured == "json_schema" and self.strict:
            self.strict = False
        elif self.structured == "json_schema":
            self.structured = "json"
        else:
            return False
        return True

    def _call(self, req: ModelRequest, repair: str | None) -> tuple[str, int, int]:
        import openai  # noqa: PLC0415

        kw = self.request_kwargs(req, repair)
        try:
            r = self.client().chat.completions.create(**kw)
        except openai.BadRequestError as e:
            if self._step_down(e):
                return self._call(req, repair)
            raise BackendError(req.item, req.task, f"{self.name} rejected the request (400): {_message(e)}") from e
        except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
            raise BackendError(req.item, "setup", f"{self.name}: not authorised ({e.status_code}); check "
                                                  f"OPENAI_API_KEY ({_message(e)})") from e
        except openai.APITimeoutError as e:
            raise TransientError(f"timeout: {e}") from e
        except openai.APIConnectionError as e:
            url = self.settings.get("base_url") or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"
            raise TransientError(f"cannot reach {url} (set OPENAI_BASE_URL to your server): {e}") from e
        except openai.APIStatusError as e:
            if e.status_code >= 500 or e.status_code in TRANSIENT_STATUS:
                raise TransientError(f"{e.status_code}: {_message(e)}", _retry_after(e)) from e
            raise BackendError(req.item, req.task, f"{self.name} answered {e.status_code}: {_message(e)}") from e
        choice = r.choices[0] if r.choices else None
        text = (choice.message.content or "") if choice else ""
        refusal = getattr(choice.message, "refusal", None) if choice else None
        if refusal:
            raise BackendError(req.item, req.task, f"{self.name} refused: {refusal}")
        u = r.usage
        tin, tout = int(getattr(u, "prompt_tokens", 0) or 0), int(getattr(u, "completion_tokens", 0) or 0)
        if not text.strip() and choice is not None and choice.finish_reason == "length":
            budget = kw.get("max_completion_tokens", kw.get("max_tokens"))
            raise BackendError(req.item, req.task, f"{self.name} spent its whole output budget ({budget} tokens) "
                                                   "without answering; raise reasoning_tokens or lower reasoning_effort")
        return text, tin, tout


def _message(e: Any) -> str:
    return str(_error_fields(e).get("message") or e)


def _schema_name(name: str) -> str:
    """The API's name rule for a schema: a-z, A-Z, 0-9, _ and -, at most 64 characters."""
    return (re.sub(r"[^A-Za-z0-9_-]", "_", name) or "answer")[:64]


def _compact(schema: dict[str, Any]) -> str:
    import json  # noqa: PLC0415

    return json.dumps(schema, separators=(",", ":"))
