"""Model backends through the real openai and google-genai clients against a local wire-format server."""

from __future__ import annotations

import time

import pytest
from pydantic import BaseModel, Field

from nextads_lib.backends import (
    BackendError,
    ModelRequest,
    TextPart,
    get_backend,
    parse_spec,
    register_offline,
)
from nextads_lib.backends.pricing import cost_usd

from fakeapi.model_routes import ModelServer, Reply

pytest.importorskip("openai")
pytest.importorskip("google.genai")


class Score(BaseModel):
    score: float = Field(ge=0, le=10)
    rationale: str = Field(min_length=1)


GOOD = '{"score": 7, "rationale": "fits the user"}'


def req(item="pair 1", text="rate this"):
    return ModelRequest(task="test.score", system="You are a judge.", parts=[TextPart(text)], schema=Score,
                        context={"x": 1}, item=item)


@pytest.fixture
def server():
    s = ModelServer(default=Reply(GOOD))
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(k, raising=False)


def openai_backend(server, tmp_path, **kw):
    return get_backend("openai:gpt-4o", cache_dir=tmp_path, base_url=server.openai_url, api_key="k",
                       backoff_s=0.01, **kw)


def test_openai_good_answer_sends_temperature_zero_schema_and_records_cost(server, tmp_path):
    b = openai_backend(server, tmp_path)
    r = b.complete(req())
    assert r.value.score == 7 and not r.cached
    body = server.log[0]["body"]
    assert body["temperature"] == 0 and body["seed"] == 0 and body["model"] == "gpt-4o"
    assert body["response_format"]["type"] == "json_schema"
    assert body["messages"][0] == {"role": "system", "content": "You are a judge."}
    assert r.usage.input_tokens == 1000 and r.usage.cost_usd == pytest.approx(1000 / 1e6 * 2.5 + 200 / 1e6 * 10)
    assert b.usage_summary()["calls"] == 1


def test_cache_hit_makes_no_request(server, tmp_path):
    openai_backend(server, tmp_path).complete(req())
    b2 = openai_backend(server, tmp_path)  # a fresh process would see the same disk cache
    r = b2.complete(req())
    assert r.cached and r.value.score == 7 and len(server.log) == 1
    assert b2.usage_summary() == {"calls": 0, "cached": 1, "input_tokens": 1000, "output_tokens": 200,
                                  "cost_usd": 0.0, "latency_s": 0.0}
    openai_backend(server, tmp_path).complete(req(text="another content"))
    assert len(server.log) == 2  # a different request is a miss


def test_malformed_json_is_repaired_once_with_the_error(server, tmp_path):
    server.queue = [Reply("sure! {score: seven"), Reply(GOOD)]
    r = openai_backend(server, tmp_path).complete(req())
    assert r.value.score == 7 and len(server.log) == 2
    last = server.log[1]["body"]["messages"][1]["content"][-1]["text"]
    assert "previous answer was invalid" in last


def test_schema_violation_twice_is_a_failure_naming_item_and_task(server, tmp_path):
    server.queue = [Reply('{"score": 14, "rationale": "x"}'), Reply('{"score": 11, "rationale": "x"}')]
    with pytest.raises(BackendError) as e:
        openai_backend(server, tmp_path).complete(req(item="pair pcg-u1-p2"))
    assert "pair pcg-u1-p2" in str(e.value) and "test.score" in str(e.value) and "score" in str(e.value)
    assert len(server.log) == 2


def test_429_with_retry_after_and_500_are_retried(server, tmp_path):
    server.queue = [Reply(status=429, headers={"Retry-After": "0.2"}), Reply(status=500), Reply(GOOD)]
    t0 = time.time()
    r = openai_backend(server, tmp_path).complete(req())
    assert r.value.score == 7 and len(server.log) == 3
    assert time.time() - t0 >= 0.2  # Retry-After honoured


def test_persistent_5xx_gives_up_with_a_clear_error(server, tmp_path):
    server.default = Reply(status=503)
    with pytest.raises(BackendError, match="after 3 attempts"):
        openai_backend(server, tmp_path, max_attempts=3).complete(req())
    assert len(server.log) == 3


def test_timeout_is_retried(server, tmp_path):
    server.queue = [Reply(GOOD, delay_s=1.5)]
    r = openai_backend(server, tmp_path, timeout_s=0.5).complete(req())
    assert r.value.score == 7 and len(server.log) == 2


def test_server_without_json_schema_mode_falls_back_to_json(server, tmp_path):
    server.queue = [Reply(status=400, error="response_format json_schema is not supported"), Reply(GOOD)]
    b = openai_backend(server, tmp_path)
    assert b.complete(req()).value.score == 7
    assert server.log[1]["body"]["response_format"] == {"type": "json_object"}


def test_env_vars_of_the_client_work_unchanged(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert get_backend("openai:gpt-4o", cache_dir=tmp_path).complete(req()).value.score == 7


def test_missing_key_names_the_variable(tmp_path):
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        get_backend("openai:gpt-4o").complete(req())
    with pytest.raises(BackendError, match="GEMINI_API_KEY"):
        get_backend("gemini:gemini-2.5-flash").complete(req())


def test_unknown_kind_lists_valid_kinds():
    with pytest.raises(ValueError) as e:
        parse_spec("claude:x")
    for k in ("offline", "openai", "gemini", "hf"):
        assert f"'{k}'" in str(e.value)


def test_gemini_generate_content_wire_format(server, tmp_path):
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path, base_url=server.base, api_key="k", backoff_s=0.01)
    server.queue = [Reply(status=429, headers={"Retry-After": "0"}), Reply("not json"), Reply(GOOD)]
    r = b.complete(req())
    # the malformed answer was billed too: both answered calls are summed
    assert r.value.score == 7 and r.usage.input_tokens == 2000 and r.usage.output_tokens == 400
    assert r.usage.cost_usd == pytest.approx(2 * (1000 / 1e6 * 0.30 + 200 / 1e6 * 2.50))
    assert len(server.log) == 3 and server.log[0]["path"].endswith("models/gemini-2.5-flash:generateContent")
    cfg = server.log[-1]["body"]["generationConfig"]
    assert cfg["temperature"] == 0 and cfg["responseMimeType"] == "application/json"
    assert server.log[-1]["body"]["systemInstruction"]["parts"][0]["text"] == "You are a judge."


def test_offline_dispatches_to_registered_handler_and_caches(tmp_path):
    calls = []

    @register_offline("test.score")
    def _h(r):
        calls.append(r.context["x"])
        return Score(score=3, rationale="heuristic")

    b = get_backend("offline", cache_dir=tmp_path)
    assert b.name == "offline" and b.complete(req()).value.score == 3
    assert get_backend("offline", cache_dir=tmp_path).complete(req()).cached
    assert calls == [1]
    with pytest.raises(BackendError, match="no handler"):
        b.complete(ModelRequest(task="nobody.here", system="", parts=[], schema=Score))


def test_offline_answers_are_recomputed_when_the_handler_code_changes(tmp_path, monkeypatch):
    """A cached offline answer belongs to the code that computed it: edit the handler's module and the
    next call runs the new code instead of returning the old answer."""
    import importlib
    import sys

    mod = tmp_path / "mod" / "heur_mod.py"
    mod.parent.mkdir()
    src = ("from nextads_lib.backends import register_offline\n"
           "from test_backends import Score\n"
           "@register_offline('heur.score')\n"
           "def h(r):\n    return Score(score={n}, rationale='v{n}')\n")
    mod.write_text(src.format(n=1))
    monkeypatch.syspath_prepend(str(mod.parent))
    importlib.import_module("heur_mod")
    b = get_backend("offline", cache_dir=tmp_path / "c")
    r = ModelRequest(task="heur.score", system="", parts=[TextPart(text="x")], schema=Score)
    assert b.complete(r).value.score == 1 and b.complete(r).cached
    mod.write_text(src.format(n=2) + "# edited\n")
    importlib.reload(sys.modules["heur_mod"])
    again = get_backend("offline", cache_dir=tmp_path / "c").complete(r)
    assert not again.cached and again.value.score == 2


def test_price_table_is_editable(tmp_path):
    t = tmp_path / "p.yaml"
    t.write_text("my-model: {input: 1.0, output: 2.0}\n")
    assert cost_usd("openai:my-model", 1_000_000, 500_000, str(t)) == pytest.approx(2.0)
    assert cost_usd("openai:unknown", 10, 10) == 0.0
