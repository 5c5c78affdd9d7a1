"""Time a fully cached rerun of 100 model requests (target: under 1 s). The first pass answers through a
local OpenAI-compatible server (so the cache is filled by the real client path); the second pass must not
make a single request."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from pydantic import BaseModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from nextads_lib.backends import ModelRequest, TextPart, get_backend  # noqa: E402
from tests.fakeapi.model_routes import ModelServer, Reply  # noqa: E402


class Answer(BaseModel):
    score: float
    rationale: str


def main() -> None:
    server = ModelServer(default=Reply('{"score": 5, "rationale": "ok"}'))
    reqs = [ModelRequest(task="bench.cache", system="judge", parts=[TextPart(f"item {i}")], schema=Answer,
                         context={"i": i}, item=f"item {i}") for i in range(100)]
    with tempfile.TemporaryDirectory() as d:
        kw = dict(cache_dir=d, base_url=server.openai_url, api_key="k")
        t0 = time.perf_counter()
        b = get_backend("openai:gpt-4o", **kw)
        for r in reqs:
            b.complete(r)
        cold = time.perf_counter() - t0
        n_before = len(server.log)
        t0 = time.perf_counter()
        b2 = get_backend("openai:gpt-4o", **kw)
        for r in reqs:
            assert b2.complete(r).cached
        warm = time.perf_counter() - t0
    server.close()
    print(f"100 requests through the local server: {cold:.3f} s")
    print(f"100 requests fully cached:           {warm:.3f} s  (target < 1 s; requests made: {len(server.log) - n_before})")


if __name__ == "__main__":
    main()
