"""A local wire-format stand-in for the chat APIs the model backends call (stdlib only, 127.0.0.1):

- OpenAI ``POST /v1/chat/completions`` (chat.completion objects with usage),
- Gemini ``POST /{version}/models/{model}:generateContent`` (candidates + usageMetadata).

Behaviour is scripted per test: ``server.queue`` holds :class:`Reply` items served in order (then the
``default``): an answer text, an HTTP error status with optional ``Retry-After``, or a delay beyond the
client's timeout. Every request is kept in ``server.log`` (path + JSON body) for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    text: str = "{}"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    error: str = ""


class ModelServer:
    def __init__(self, default: Reply | None = None):
        self.queue: list[Reply] = []
        self.default = default or Reply()
        self.log: list[dict] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(n) or b"{}")
                outer.log.append({"path": self.path, "body": body})
                rep = outer.queue.pop(0) if outer.queue else outer.default
                if rep.delay_s:
                    time.sleep(rep.delay_s)
                if rep.status != 200:
                    payload = {"error": {"message": rep.error or f"status {rep.status}", "code": rep.status,
                                         "type": "server_error", "status": "UNAVAILABLE"}}
                else:
                    payload = outer._gemini(rep.text) if ":generateContent" in self.path else outer._openai(body, rep.text)
                data = json.dumps(payload).encode()
                try:
                    self.send_response(rep.status)
                    self.send_header("Content-Type", "application/json")
                    for k, v in rep.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._t = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._t.start()

    @property
    def openai_url(self) -> str:
        return self.base + "/v1"

    @staticmethod
    def _openai(body: dict, text: str) -> dict:
        return {"id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body.get("model", "m"),
                "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200}}

    @staticmethod
    def _gemini(text: str) -> dict:
        return {"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
                "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 200, "totalTokenCount": 1200}}

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
