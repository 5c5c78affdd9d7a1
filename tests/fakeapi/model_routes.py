"""A local wire-format stand-in for the chat APIs the model backends call (stdlib only, 127.0.0.1), as strict
as the real APIs about what a request may contain:

- OpenAI ``POST /v1/chat/completions`` (chat.completion objects with usage). Rejects, with the real error
  JSON (``{"error": {"message", "type", "param", "code"}}``) and status: no ``Authorization: Bearer`` (401)
  or the key ``"bad-key"`` (401 ``invalid_api_key``); a missing or mistyped ``model`` / ``messages``;
  unknown top-level parameters; on a reasoning model (o1/o3/o4*, gpt-5*) ``max_tokens`` and a
  ``temperature`` other than 1; a ``response_format`` ``json_schema`` without ``name`` or ``schema``.
- Gemini (field names in lowerCamelCase or snake_case, as proto3 JSON allows) ``POST /v1beta/models/{model}:generateContent`` (or ``/v1/``, the client 3.x default) (candidates + usageMetadata). Rejects a missing
  ``x-goog-api-key`` (403 PERMISSION_DENIED) or the key ``"bad-key"`` (400 API_KEY_INVALID), unknown
  fields of the body and of ``generationConfig`` (400 INVALID_ARGUMENT, the real "Unknown name" message), a
  thinking budget outside the model's range. A 2.5 model that gets no ``thinkingConfig.thinkingBudget``
  thinks ``server.default_thinking`` tokens against ``maxOutputTokens``: when they do not fit, the answer is
  empty with ``finishReason: MAX_TOKENS``, as the real API answers.

Behaviour is scripted per test: ``server.queue`` holds :class:`Reply` items served in order (then the
``default``): an answer text, an HTTP error status with optional headers (OpenAI ``retry-after`` /
``retry-after-ms``) and, for Gemini, ``retry_delay_s`` (sent as ``google.rpc.RetryInfo.retryDelay`` in the
error body, as the real API does), or a delay beyond the client's timeout; for OpenAI also a ``content: null``
answer, one without ``usage`` or with ``choices: []``; for Gemini one without ``usageMetadata`` or candidates.
Requests that break the rules above are answered with their error before the queue is consulted. Every request
is kept in ``server.log`` (path, JSON body, headers, and the status answered) for assertions.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: OpenAI chat.completions.create body fields (the installed client's CompletionCreateParams)
OPENAI_CHAT_FIELDS = {
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "n", "parallel_tool_calls", "prediction",
    "presence_penalty", "prompt_cache_key", "prompt_cache_retention", "reasoning_effort", "response_format",
    "safety_identifier", "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
}
REASONING = re.compile(r"^(o\d+(-[\w.-]+)?|gpt-5([.\w-]*)?)$")
GEMINI_BODY_FIELDS = {"contents", "systemInstruction", "generationConfig", "safetySettings", "tools", "toolConfig",
                      "cachedContent", "labels"}
GEMINI_GEN_FIELDS = {
    "temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences", "responseMimeType",
    "responseSchema", "responseJsonSchema", "seed", "thinkingConfig", "presencePenalty", "frequencyPenalty",
    "responseLogprobs", "logprobs", "mediaResolution", "speechConfig", "responseModalities", "audioTimestamp",
    "enableEnhancedCivicAnswers", "imageConfig", "routingConfig", "modelSelectionConfig",
}
#: thinking budget ranges (min, max, can be 0) of the 2.5 models
THINKING_RANGE = {"flash-lite": (512, 24576, True), "flash": (1, 24576, True), "pro": (128, 32768, False)}


@dataclass
class Reply:
    text: str | None = "{}"  # OpenAI: None sends ``content: null``
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    error: str = ""
    retry_delay_s: float | None = None  # Gemini: google.rpc.RetryInfo.retryDelay in the 429/5xx error body
    refusal: str | None = None  # OpenAI: message.refusal; Gemini: a prompt blocked (no candidates)
    finish_reason: str | None = None
    usage: bool = True  # False leaves ``usage`` / ``usageMetadata`` out (some OpenAI-compatible servers send none)
    choices: bool = True  # False answers OpenAI ``choices: []`` (Azure's content filter), Gemini no candidates


class ModelServer:
    def __init__(self, default: Reply | None = None, default_thinking: int = 4096):
        self.queue: list[Reply] = []
        self.default = default or Reply()
        self.default_thinking = default_thinking
        self.log: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None):
                data = json.dumps(payload).encode()
                outer.log[-1]["status"] = status
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

            def do_GET(self):  # noqa: N802
                outer.log.append({"path": self.path, "method": "GET", "body": None, "headers": dict(self.headers)})
                self._send(404, {"error": {"message": f"Invalid URL (GET {self.path})", "type": "invalid_request_error",
                                           "param": None, "code": None}})

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(n) or b"{}"
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = None
                outer.log.append({"path": self.path, "method": "POST", "body": body, "headers": dict(self.headers)})
                path = self.path.split("?")[0]
                m = re.fullmatch(r"/v1(?:beta)?/models/([^/:]+):generateContent", path)
                if path == "/v1/chat/completions":
                    err = outer._openai_check(self.headers, body)
                    if err:
                        return self._send(*err)
                elif m:
                    err = outer._gemini_check(m.group(1), self.headers, body)
                    if err:
                        return self._send(*err)
                else:
                    if path.startswith("/v1/"):
                        return self._send(404, {"error": {"message": f"Invalid URL (POST {self.path})",
                                                          "type": "invalid_request_error", "param": None, "code": None}})
                    return self._send(404, _gerr(404, "NOT_FOUND", f"Requested entity was not found: {self.path}"))
                rep = outer.queue.pop(0) if outer.queue else outer.default
                if rep.delay_s:
                    time.sleep(rep.delay_s)
                if rep.status != 200:
                    return self._send(rep.status, outer._error(bool(m), rep), rep.headers)
                payload = outer._gemini(m.group(1), body, rep) if m else outer._openai(body, rep)
                self._send(200, payload, rep.headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._t = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self._t.start()

    @property
    def openai_url(self) -> str:
        return self.base + "/v1"

    # ---------------------------------------------------------------------------------------- OpenAI
    @staticmethod
    def _openai_check(headers: Any, body: Any) -> tuple[int, dict] | None:
        def bad(msg: str, param: str | None, code: str | None, status: int = 400, typ: str = "invalid_request_error"):
            return status, {"error": {"message": msg, "type": typ, "param": param, "code": code}}

        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer ") or not auth[7:].strip():
            return bad("You didn't provide an API key. You need to provide your API key in an Authorization header "
                       "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).", None, None, 401)
        if auth[7:].strip() == "bad-key":
            return bad("Incorrect API key provided: bad-key.", None, "invalid_api_key", 401)
        if not isinstance(body, dict):
            return bad("We could not parse the JSON body of your request.", None, None)
        unknown = sorted(set(body) - OPENAI_CHAT_FIELDS)
        if unknown:
            return bad(f"Unrecognized request argument supplied: {unknown[0]}", None, None)
        if "model" not in body:
            return bad("you must provide a model parameter", None, None)
        if not isinstance(body["model"], str):
            return bad(f"Invalid type for 'model': expected a string, but got {type(body['model']).__name__} instead.",
                       "model", "invalid_type")
        if "messages" not in body:
            return bad("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
        if not isinstance(body["messages"], list) or not body["messages"]:
            return bad("Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages",
                       "empty_array")
        for i, msg in enumerate(body["messages"]):
            if not isinstance(msg, dict) or msg.get("role") not in ("system", "developer", "user", "assistant", "tool"):
                return bad(f"Invalid value for 'messages[{i}].role'.", f"messages[{i}].role", "invalid_value")
        for k in ("temperature", "top_p"):
            if k in body and not isinstance(body[k], (int, float)):
                return bad(f"Invalid type for '{k}': expected a decimal.", k, "invalid_type")
        for k in ("max_tokens", "max_completion_tokens", "seed"):
            if k in body and not isinstance(body[k], int):
                return bad(f"Invalid type for '{k}': expected an integer.", k, "invalid_type")
        if REASONING.match(body["model"]):
            if "max_tokens" in body:
                return bad("Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                           "'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
            if "temperature" in body and body["temperature"] != 1:
                return bad(f"Unsupported value: 'temperature' does not support {body['temperature']} with this model. "
                           "Only the default (1) value is supported.", "temperature", "unsupported_value")
        rf = body.get("response_format")
        if rf is not None:
            if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object", "json_schema"):
                return bad("Invalid value for 'response_format.type'.", "response_format.type", "invalid_value")
            if rf["type"] == "json_schema":
                js = rf.get("json_schema")
                if not isinstance(js, dict):
                    return bad("Missing required parameter: 'response_format.json_schema'.",
                               "response_format.json_schema", "missing_required_parameter")
                if "name" not in js:
                    return bad("Missing required parameter: 'response_format.json_schema.name'.",
                               "response_format.json_schema.name", "missing_required_parameter")
                if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(js["name"])):
                    return bad("Invalid 'response_format.json_schema.name': string does not match pattern.",
                               "response_format.json_schema.name", "invalid_value")
                if js.get("strict") and isinstance(js.get("schema"), dict):
                    why = _strict_violation(js["schema"])
                    if why:
                        return bad(f"Invalid schema for response_format '{js['name']}': {why}", "response_format",
                                   "invalid_json_schema")
        return None

    @staticmethod
    def _openai(body: dict, rep: Reply) -> dict:
        msg: dict[str, Any] = {"role": "assistant", "content": None if rep.refusal else rep.text, "refusal": rep.refusal}
        out = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
               "choices": [{"index": 0, "finish_reason": rep.finish_reason or "stop", "message": msg}] if rep.choices
               else []}
        if rep.usage:
            out["usage"] = {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}
        return out

    # ---------------------------------------------------------------------------------------- Gemini
    @staticmethod
    def _gemini_check(model: str, headers: Any, body: Any) -> tuple[int, dict] | None:
        key = headers.get("x-goog-api-key")
        if not key:
            return 403, _gerr(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without "
                                                        "established identity). Please use API Key or other form of API "
                                                        "consumer identity to call this API.")
        if key == "bad-key":
            e = _gerr(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.")
            e["error"]["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                      "domain": "googleapis.com"}]
            return 400, e
        if not isinstance(body, dict):
            return 400, _gerr(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        body = _camel(body)  # proto3 JSON: snake_case names are read as the lowerCamelCase ones
        for k in sorted(set(body) - GEMINI_BODY_FIELDS):
            return 400, _gerr(400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{k}": Cannot find field.')
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            return 400, _gerr(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: contents is not specified")
        gc = body.get("generationConfig") or {}
        for k in sorted(set(gc) - GEMINI_GEN_FIELDS):
            return 400, _gerr(400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{k}" at '
                                                       f"'generation_config': Cannot find field.")
        if "maxOutputTokens" in gc and not isinstance(gc["maxOutputTokens"], int):
            return 400, _gerr(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)")
        tc = gc.get("thinkingConfig")
        if tc is not None:
            for k in sorted(set(tc) - {"thinkingBudget", "includeThoughts", "thinkingLevel"}):
                return 400, _gerr(400, "INVALID_ARGUMENT", f'Invalid JSON payload received. Unknown name "{k}" at '
                                                           f"'generation_config.thinking_config': Cannot find field.")
            fam = _family(model)
            b = tc.get("thinkingBudget")
            if fam and b is not None and b != -1:
                lo, hi, can_off = THINKING_RANGE[fam]
                if b == 0 and not can_off:
                    return 400, _gerr(400, "INVALID_ARGUMENT", "Budget 0 is invalid. This model only works in thinking mode.")
                if b != 0 and not lo <= b <= hi:
                    return 400, _gerr(400, "INVALID_ARGUMENT", f"The thinking budget {b} is invalid. Please choose a "
                                                               f"value between {lo} and {hi}.")
        return None

    def _gemini(self, model: str, body: dict, rep: Reply) -> dict:
        gc = _camel(body).get("generationConfig") or {}
        usage = {"promptTokenCount": 1000, "candidatesTokenCount": 200, "totalTokenCount": 1200}
        if rep.refusal:
            return {"promptFeedback": {"blockReason": rep.refusal}, "usageMetadata": {"promptTokenCount": 1000,
                                                                                     "totalTokenCount": 1000}}
        thoughts = 0
        if _family(model):
            b = (gc.get("thinkingConfig") or {}).get("thinkingBudget")
            thoughts = self.default_thinking if b is None or b == -1 else min(int(b), self.default_thinking)
        limit = int(gc.get("maxOutputTokens", 65536))
        if thoughts:
            usage["thoughtsTokenCount"] = min(thoughts, limit)
        if thoughts + 200 > limit:  # the thoughts ate the output budget: no answer
            usage.pop("candidatesTokenCount")
            usage["totalTokenCount"] = 1000 + usage["thoughtsTokenCount"]
            return {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS", "index": 0}],
                    "usageMetadata": usage, "modelVersion": model}
        usage["totalTokenCount"] = 1000 + 200 + thoughts
        out: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [{"text": rep.text}]},
                                               "finishReason": rep.finish_reason or "STOP", "index": 0}]
                               if rep.choices else [], "modelVersion": model}
        if rep.usage:
            out["usageMetadata"] = usage
        return out

    # ---------------------------------------------------------------------------------------- errors
    @staticmethod
    def _error(gemini: bool, rep: Reply) -> dict:
        if gemini:
            status = {429: "RESOURCE_EXHAUSTED", 400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED",
                      403: "PERMISSION_DENIED", 404: "NOT_FOUND", 500: "INTERNAL", 503: "UNAVAILABLE",
                      504: "DEADLINE_EXCEEDED"}.get(rep.status, "UNKNOWN")
            e = _gerr(rep.status, status, rep.error or f"status {rep.status}")
            if rep.retry_delay_s is not None:
                e["error"]["details"] = [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                     "violations": [{"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                                     "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{rep.retry_delay_s:g}s"}]
            return e
        typ = {429: "requests", 401: "invalid_request_error", 400: "invalid_request_error"}.get(rep.status, "server_error")
        code = {429: "rate_limit_exceeded", 401: "invalid_api_key"}.get(rep.status)
        return {"error": {"message": rep.error or f"status {rep.status}", "type": typ, "param": None, "code": code}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _camel(d: Any) -> Any:
    """Field names as the API reads them: proto3 JSON accepts lowerCamelCase and the proto's snake_case names
    alike (google-genai 3.x sends ``thinkingConfig: {"thinking_budget": ...}``). Only the request's own
    structure is renamed, not the keys inside a JSON schema."""
    if not isinstance(d, dict):
        return d
    out = {}
    for k, v in d.items():
        ck = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), k)
        out[ck] = v if ck in ("responseJsonSchema", "responseSchema", "contents") else _camel(v)
    return out


def _gerr(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


def _family(model: str) -> str | None:
    if not model.startswith("gemini-2.5"):
        return None
    return "pro" if "pro" in model else ("flash-lite" if "lite" in model else "flash")


def _strict_violation(schema: Any, path: str = "") -> str | None:
    """Why a schema is not valid in strict mode (objects need additionalProperties false and every property
    required), or None."""
    if isinstance(schema, dict):
        if schema.get("type") == "object" and "properties" in schema:
            if schema.get("additionalProperties") is not False:
                return f"In context=({path!r}), 'additionalProperties' is required to be supplied and to be false."
            missing = sorted(set(schema["properties"]) - set(schema.get("required") or []))
            if missing:
                return f"In context=({path!r}), 'required' is required to include every key; missing '{missing[0]}'."
        for k, v in schema.items():
            why = _strict_violation(v, f"{path}/{k}" if path else k)
            if why:
                return why
    elif isinstance(schema, list):
        for i, v in enumerate(schema):
            why = _strict_violation(v, f"{path}/{i}")
            if why:
                return why
    return None
