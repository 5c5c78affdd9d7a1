"""Model backends through the real openai and google-genai clients against a local wire-format server."""

from __future__ import annotations

import json

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

from fakeapi.model_routes import ModelServer, Reply, _camel

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


@pytest.fixture
def waits(monkeypatch):
    """The waits the retry logic asks for between attempts, recorded instead of slept: tenacity sleeps through
    ``tenacity.nap.time.sleep``, so a test asserts the delay chosen (the server's 0.4 s against the 0.01 s
    backoff), which no load on the machine can fake, and takes no wall time for it."""
    import types

    import tenacity.nap

    got: list[float] = []
    monkeypatch.setattr(tenacity.nap, "time", types.SimpleNamespace(sleep=lambda s: got.append(round(s, 6))))
    return got


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


def test_429_retry_after_seconds_and_500_are_retried(server, tmp_path, waits):
    server.queue = [Reply(status=429, headers={"retry-after": "0.4"}), Reply(status=500), Reply(GOOD)]
    r = openai_backend(server, tmp_path).complete(req())
    assert r.value.score == 7 and len(server.log) == 3
    assert waits == [0.4, 0.02]  # the 429's retry-after, then the backoff of the 2nd attempt (0.01 * 2)


def test_persistent_5xx_gives_up_with_a_clear_error(server, tmp_path):
    server.default = Reply(status=503)
    with pytest.raises(BackendError, match="after 3 attempts"):
        openai_backend(server, tmp_path, max_attempts=3).complete(req())
    assert len(server.log) == 3


def test_timeout_is_retried(server, tmp_path):
    server.queue = [Reply(GOOD, delay_s=1.5)]
    r = openai_backend(server, tmp_path, timeout_s=0.5).complete(req())
    assert r.value.score == 7 and len(server.log) == 2


def test_server_without_json_schema_mode_steps_down_to_non_strict_then_json(server, tmp_path):
    server.queue = [Reply(status=400, error="response_format json_schema is not supported"),
                    Reply(status=400, error="response_format json_schema is not supported"), Reply(GOOD)]
    b = openai_backend(server, tmp_path)
    assert b.complete(req()).value.score == 7
    assert server.log[0]["body"]["response_format"]["json_schema"]["strict"] is True
    assert server.log[1]["body"]["response_format"]["json_schema"]["strict"] is False
    assert server.log[2]["body"]["response_format"] == {"type": "json_object"}


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


def test_gemini_generate_content_wire_format(server, tmp_path, waits):
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path, base_url=server.base, api_key="k", backoff_s=0.01)
    server.queue = [Reply(status=429, retry_delay_s=0.3), Reply("not json"), Reply(GOOD)]
    r = b.complete(req())
    assert waits == [0.3]  # RetryInfo.retryDelay honoured (the backoff alone is 0.01 s); a repair is no retry
    # the malformed answer was billed too: both answered calls are summed
    assert r.value.score == 7 and r.usage.input_tokens == 2000 and r.usage.output_tokens == 400
    assert r.usage.cost_usd == pytest.approx(2 * (1000 / 1e6 * 0.30 + 200 / 1e6 * 2.50))
    assert len(server.log) == 3 and server.log[0]["path"].endswith("models/gemini-2.5-flash:generateContent")
    cfg = server.log[-1]["body"]["generationConfig"]
    assert cfg["temperature"] == 0 and cfg["responseMimeType"] == "application/json"
    assert server.log[-1]["body"]["systemInstruction"]["parts"][0]["text"] == "You are a judge."
    # the re-ask carries the validation error after the request's own parts
    first = [_camel(x) for x in server.log[1]["body"]["contents"][0]["parts"]]
    again = [_camel(x) for x in server.log[2]["body"]["contents"][0]["parts"]]
    assert [p["text"] for p in again[:-1]] == [p["text"] for p in first] == ["rate this"]
    assert again[-1]["text"].startswith("Your previous answer was invalid (no JSON object in the answer")


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
    monkeypatch.delitem(sys.modules, "heur_mod", raising=False)  # a second run in one process imports afresh
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


# ------------------------------------------------------------------------ the stand-in is as strict as the API
def raw_openai(server, key="k"):
    import openai

    return openai.OpenAI(api_key=key, base_url=server.openai_url, max_retries=0)


MSGS = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("kw,param,code", [
    ({"model": "o3", "max_tokens": 10}, "max_tokens", "unsupported_parameter"),
    ({"model": "gpt-5-mini", "temperature": 0}, "temperature", "unsupported_value"),
    ({"model": "gpt-4o", "response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}}},
     "response_format.json_schema.name", "missing_required_parameter"),
    ({"model": "gpt-4o", "response_format": {"type": "json_schema", "json_schema": {
        "name": "S", "strict": True, "schema": {"type": "object", "properties": {"a": {"type": "string"}}}}}},
     "response_format", "invalid_json_schema"),
])
def test_fake_openai_rejects_what_the_api_rejects(server, kw, param, code):
    import openai

    with pytest.raises(openai.BadRequestError) as e:
        raw_openai(server).chat.completions.create(messages=MSGS, **kw)
    assert e.value.status_code == 400 and e.value.body["param"] == param and e.value.body["code"] == code
    # the same request without the offending field is accepted
    ok = {k: v for k, v in kw.items() if k in ("model",)}
    assert raw_openai(server).chat.completions.create(messages=MSGS, **ok).choices[0].message.content == GOOD


def test_fake_openai_checks_route_auth_and_unknown_fields(server):
    import urllib.error
    import urllib.request

    def post(path, body, headers):
        r = urllib.request.Request(server.base + path, data=json.dumps(body).encode(), method="POST",
                                   headers={"Content-Type": "application/json", **headers})
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    body = {"model": "gpt-4o", "messages": MSGS}
    assert post("/v1/chat/completions", body, {})[0] == 401
    assert post("/v1/chat/completions", body, {"Authorization": "Bearer k"})[0] == 200
    assert post("/v1/chat/completion", body, {"Authorization": "Bearer k"})[0] == 404
    st, err = post("/v1/chat/completions", {**body, "max_output_tokens": 5}, {"Authorization": "Bearer k"})
    assert st == 400 and "max_output_tokens" in err["error"]["message"]
    assert post("/v1/chat/completions", {"model": "gpt-4o"}, {"Authorization": "Bearer k"})[0] == 400
    assert post("/v1/chat/completions", {"model": 4, "messages": MSGS}, {"Authorization": "Bearer k"})[0] == 400
    # Gemini: key header required, unknown generationConfig fields rejected
    gbody = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "generationConfig": {"maxOutputTokens": 10}}
    assert post("/v1beta/models/gemini-2.0-flash:generateContent", gbody, {})[0] == 403
    st, err = post("/v1beta/models/gemini-2.0-flash:generateContent",
                   {**gbody, "generationConfig": {"maxTokens": 5}}, {"x-goog-api-key": "k"})
    assert st == 400 and err["error"]["status"] == "INVALID_ARGUMENT" and "\"maxTokens\"" in err["error"]["message"]


def _post(server, path, body, headers, method="POST"):
    import urllib.error
    import urllib.request

    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = urllib.request.Request(server.base + path, data=None if method == "GET" else data, method=method,
                               headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.parametrize("body, param, code", [
    (b"{not json", None, None),
    ({"model": "gpt-4o", "messages": []}, "messages", "empty_array"),
    ({"model": "gpt-4o", "messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "invalid_value"),
    ({"model": "gpt-4o", "messages": MSGS, "temperature": "0"}, "temperature", "invalid_type"),
    ({"model": "gpt-4o", "messages": MSGS, "max_tokens": 1.5}, "max_tokens", "invalid_type"),
    ({"model": "gpt-4o", "messages": MSGS, "response_format": {"type": "xml"}}, "response_format.type",
     "invalid_value"),
    ({"model": "gpt-4o", "messages": MSGS, "response_format": {"type": "json_schema"}}, "response_format.json_schema",
     "missing_required_parameter"),
    ({"model": "gpt-4o", "messages": MSGS, "response_format": {"type": "json_schema", "json_schema": {
        "name": "my schema", "schema": {"type": "object"}}}}, "response_format.json_schema.name", "invalid_value"),
])
def test_fake_openai_rejects_malformed_bodies_with_the_apis_error_shape(server, body, param, code):
    st, err = _post(server, "/v1/chat/completions", body, {"Authorization": "Bearer k"})
    assert st == 400 and set(err["error"]) == {"message", "type", "param", "code"}
    assert (err["error"]["param"], err["error"]["code"], err["error"]["type"]) == (param, code, "invalid_request_error")
    assert server.log[-1]["status"] == 400


def test_fake_apis_check_the_method_the_route_and_the_gemini_body(server):
    ok = {"model": "gpt-4o", "messages": MSGS}
    assert _post(server, "/v1/chat/completions", ok, {"Authorization": "Bearer k"})[0] == 200
    assert _post(server, "/v1/chat/completions", ok, {"Authorization": "Bearer k"}, method="GET")[0] == 404
    assert _post(server, "/v1/completions", ok, {"Authorization": "Bearer k"})[0] == 404
    key = {"x-goog-api-key": "k"}
    gbody = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    path = "/v1beta/models/gemini-2.0-flash:generateContent"
    assert _post(server, path, gbody, key)[0] == 200
    assert _post(server, "/v1/models/gemini-2.0-flash:generateContent", gbody, key)[0] == 200  # the client 3.x route
    st, err = _post(server, "/v1beta/models/gemini-2.0-flash:generate", gbody, key)
    assert st == 404 and err["error"]["status"] == "NOT_FOUND"
    st, err = _post(server, path, {"generationConfig": {"maxOutputTokens": 10}}, key)
    assert st == 400 and "contents is not specified" in err["error"]["message"]
    st, err = _post(server, path, {**gbody, "generation_config": {"max_tokens": 5}}, key)  # snake_case is read too
    assert st == 400 and "Unknown name" in err["error"]["message"] and "'generation_config'" in err["error"]["message"]
    st, err = _post(server, path, {**gbody, "prompt": "hi"}, key)
    assert st == 400 and 'Unknown name "prompt"' in err["error"]["message"]
    st, err = _post(server, path, {**gbody, "generationConfig": {"maxOutputTokens": "10"}}, key)
    assert st == 400 and "max_output_tokens" in err["error"]["message"]
    st, err = _post(server, "/v1beta/models/gemini-2.5-flash:generateContent",
                    {**gbody, "generationConfig": {"thinkingConfig": {"thinkingBudget": 30000}}}, key)
    assert st == 400 and "between 1 and 24576" in err["error"]["message"]
    st, err = _post(server, path, gbody, {"x-goog-api-key": "bad-key"})
    assert st == 400 and err["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_fake_gemini_thinks_against_max_output_tokens_when_no_budget_is_sent(server):
    """The real 2.5 models think by default and the thoughts count against maxOutputTokens."""
    from google import genai
    from google.genai import types

    c = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=server.base))
    r = c.models.generate_content(model="gemini-2.5-flash", contents="hi",
                                  config=types.GenerateContentConfig(max_output_tokens=2048))
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS and not r.text
    assert r.usage_metadata.thoughts_token_count == 2048
    r = c.models.generate_content(model="gemini-2.5-flash", contents="hi", config=types.GenerateContentConfig(
        max_output_tokens=2048, thinking_config=types.ThinkingConfig(thinking_budget=0)))
    assert r.text == GOOD
    from google.genai import errors

    with pytest.raises(errors.APIError) as e:  # Pro cannot switch thinking off
        c.models.generate_content(model="gemini-2.5-pro", contents="hi", config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_budget=0)))
    assert e.value.code == 400


# --------------------------------------------------------------------------------------- OpenAI wire format
def test_openai_chat_model_sends_named_strict_schema(server, tmp_path):
    openai_backend(server, tmp_path).complete(req())
    body = server.log[0]["body"]
    js = body["response_format"]["json_schema"]
    assert js["name"] == "Score" and js["strict"] is True
    assert js["schema"]["additionalProperties"] is False and sorted(js["schema"]["required"]) == ["rationale", "score"]
    assert body["max_tokens"] == 2048 and "max_completion_tokens" not in body


@pytest.mark.parametrize("model", ["o3", "o4-mini", "gpt-5", "gpt-5-mini"])
def test_openai_reasoning_models_get_max_completion_tokens_and_no_temperature(server, tmp_path, model):
    b = get_backend(f"openai:{model}", cache_dir=tmp_path, base_url=server.openai_url, api_key="k",
                    reasoning_effort="low")
    assert b.complete(req()).value.score == 7 and len(server.log) == 1 and server.log[0]["status"] == 200
    body = server.log[0]["body"]
    assert "temperature" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 2048 + 8192 and body["reasoning_effort"] == "low"


def test_openai_plain_400_fails_at_once_and_is_not_retried(server, tmp_path):
    # a reasoning model forced to the chat parameters: the stand-in answers 400 as the API does
    b = get_backend("openai:o3", cache_dir=tmp_path, base_url=server.openai_url, api_key="k", reasoning=False,
                    backoff_s=0.01)
    with pytest.raises(BackendError, match="max_tokens") as e:
        b.complete(req(item="pair 9"))
    assert len(server.log) == 1 and e.value.item == "pair 9"


def test_openai_missing_schema_field_error_is_not_hidden_by_the_json_fallback(server, tmp_path):
    """A request whose schema lost its name is our bug: the API's 400 must surface, not a silent step down to
    plain JSON mode (the request is broken on purpose by replacing the backend's own response_format)."""
    b = openai_backend(server, tmp_path)
    good = b.response_format
    b.response_format = lambda r: {"type": "json_schema", "json_schema": {
        k: v for k, v in good(r)["json_schema"].items() if k != "name"}}
    with pytest.raises(BackendError, match="json_schema.name"):
        b.complete(req())
    assert len(server.log) == 1 and server.log[0]["status"] == 400


def test_openai_401_is_a_setup_error_and_not_retried(server, tmp_path):
    b = get_backend("openai:gpt-4o", cache_dir=tmp_path, base_url=server.openai_url, api_key="bad-key", backoff_s=0.01)
    with pytest.raises(BackendError, match="OPENAI_API_KEY") as e:
        b.complete(req())
    assert e.value.task == "setup" and len(server.log) == 1 and server.log[0]["status"] == 401


def test_openai_refusal_fails_the_item_without_retry(server, tmp_path):
    server.queue = [Reply(refusal="I can't help with that.")]
    with pytest.raises(BackendError, match="refused: I can't help"):
        openai_backend(server, tmp_path).complete(req())
    assert len(server.log) == 1


def test_openai_retry_after_ms_wins_over_retry_after(server, tmp_path, waits):
    server.queue = [Reply(status=429, headers={"retry-after-ms": "400", "retry-after": "20"}), Reply(GOOD)]
    assert openai_backend(server, tmp_path, max_backoff_s=60).complete(req()).value.score == 7
    assert waits == [0.4]  # from retry-after-ms; 20 s had retry-after been read, 0.01 s had both been ignored


def test_backoff_cap_bounds_a_long_server_delay(server, tmp_path, waits):
    server.queue = [Reply(status=429, headers={"retry-after": "120"}), Reply(GOOD)]
    assert openai_backend(server, tmp_path, max_backoff_s=0.4).complete(req()).value.score == 7
    assert waits == [0.4]  # the cap, not the server's 120 s


# --------------------------------------------------------------------------------------- Gemini wire format
def gemini_backend(server, tmp_path, model="gemini-2.5-flash", **kw):
    return get_backend(f"gemini:{model}", cache_dir=tmp_path, base_url=server.base, api_key="k", backoff_s=0.01, **kw)


def test_gemini_flash_sends_thinking_budget_zero(server, tmp_path):
    r = gemini_backend(server, tmp_path).complete(req())
    cfg = _camel(server.log[0]["body"])["generationConfig"]
    assert cfg["thinkingConfig"] == {"thinkingBudget": 0} and cfg["maxOutputTokens"] == 2048
    assert r.value.score == 7 and r.usage.output_tokens == 200


def test_gemini_pro_thinks_at_least_the_minimum_and_thoughts_are_billed(server, tmp_path):
    r = gemini_backend(server, tmp_path, model="gemini-2.5-pro").complete(req())
    cfg = _camel(server.log[0]["body"])["generationConfig"]
    assert cfg["thinkingConfig"] == {"thinkingBudget": 128} and cfg["maxOutputTokens"] == 2048 + 128
    assert r.usage.output_tokens == 200 + 128
    assert r.usage.cost_usd == pytest.approx(1000 / 1e6 * 1.25 + 328 / 1e6 * 10.0)


def test_gemini_dynamic_thinking_that_eats_the_budget_is_a_clear_failure(server, tmp_path):
    with pytest.raises(BackendError, match="max_output_tokens with no answer"):
        gemini_backend(server, tmp_path, thinking_budget=-1).complete(req())
    assert _camel(server.log[0]["body"])["generationConfig"]["thinkingConfig"] == {"thinkingBudget": -1}


def test_gemini_429_delay_comes_from_retry_info_in_the_body(server, tmp_path, waits):
    server.queue = [Reply(status=429, retry_delay_s=0.4, error="Resource has been exhausted"), Reply(GOOD)]
    assert gemini_backend(server, tmp_path).complete(req()).value.score == 7
    assert waits == [0.4] and len(server.log) == 2  # the backoff alone is 0.01 s
    assert "retry-after" not in {k.lower() for k in server.log[0]["headers"]}


@pytest.mark.parametrize("status", [400, 404])
def test_gemini_client_errors_are_not_retried(server, tmp_path, status):
    server.queue = [Reply(status=status, error="Request contains an invalid argument.")]
    with pytest.raises(BackendError, match=f"answered {status}"):
        gemini_backend(server, tmp_path).complete(req())
    assert len(server.log) == 1


def test_gemini_invalid_key_is_a_setup_error(server, tmp_path):
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path, base_url=server.base, api_key="bad-key")
    with pytest.raises(BackendError, match="GEMINI_API_KEY") as e:
        b.complete(req())
    assert e.value.task == "setup" and len(server.log) == 1


def test_gemini_blocked_prompt_is_a_refusal(server, tmp_path):
    server.queue = [Reply(refusal="SAFETY")]
    with pytest.raises(BackendError, match="refused: .*SAFETY"):
        gemini_backend(server, tmp_path).complete(req())


def test_gemini_video_goes_inline_when_small_else_as_frames(server, tmp_path):
    import numpy as np

    from nextads_lib.backends import VideoPart
    from nextads_lib.media import write_video

    v = tmp_path / "v.mp4"
    write_video(v, [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(12)], 6)
    r = ModelRequest(task="test.score", system="s", parts=[TextPart("x"), VideoPart(v, n_frames=3)], schema=Score)
    gemini_backend(server, tmp_path / "a").complete(r)
    parts = [_camel(p) for p in server.log[-1]["body"]["contents"][0]["parts"]]
    assert [p["inlineData"]["mimeType"] for p in parts if "inlineData" in p] == ["video/mp4"]
    gemini_backend(server, tmp_path / "b", inline_video_mb=0).complete(r)
    parts = [_camel(p) for p in server.log[-1]["body"]["contents"][0]["parts"]]
    assert [p["inlineData"]["mimeType"] for p in parts if "inlineData" in p] == ["image/png"] * 3


def test_gemini_timeout_is_retried(server, tmp_path):
    server.queue = [Reply(GOOD, delay_s=2.5)]
    r = gemini_backend(server, tmp_path, timeout_s=1).complete(req())
    assert r.value.score == 7 and len(server.log) == 2


def test_gemini_persistent_503_gives_up(server, tmp_path):
    server.default = Reply(status=503)
    with pytest.raises(BackendError, match="after 2 attempts"):
        gemini_backend(server, tmp_path, max_attempts=2).complete(req())
    assert len(server.log) == 2


def test_wire_version_is_in_api_cache_keys_but_not_offline_ones(tmp_path, monkeypatch):
    from nextads_lib.backends.base import ModelBackend
    from nextads_lib.backends.openai_backend import OpenAIBackend

    b = get_backend("openai:gpt-4o", api_key="k")
    k1 = b.cache_key(req())
    monkeypatch.setattr(OpenAIBackend, "wire_version", "other")
    assert b.cache_key(req()) != k1
    # the offline backend's base key is the key format of before (no wire version), so existing caches hold
    from nextads_lib.backends.base import CODE_VERSION
    from nextads_lib.store import content_key

    r = req()
    old_format = content_key(CODE_VERSION, "offline", r.task, r.system, r.cache_parts(), r.context, r.schema_json(), {})
    assert ModelBackend.cache_key(get_backend("offline"), r) == old_format


# ------------------------------------------------------------------- OpenAI: what a failure says, odd answers
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _auth(entry: dict) -> str:
    return {k.lower(): v for k, v in entry["headers"].items()}["authorization"]


def test_openai_other_4xx_fails_the_item_at_once_with_the_servers_message(server, tmp_path):
    server.queue = [Reply(status=404, error="The model `gpt-4o` does not exist or you do not have access to it.")]
    with pytest.raises(BackendError) as e:
        openai_backend(server, tmp_path).complete(req(item="pair 4"))
    assert (e.value.item, e.value.task) == ("pair 4", "test.score") and len(server.log) == 1
    assert e.value.reason == ("openai:gpt-4o answered 404: The model `gpt-4o` does not exist or you do not have "
                              "access to it.")


def test_openai_400_names_item_task_and_the_servers_message(server, tmp_path):
    b = get_backend("openai:o3", cache_dir=tmp_path, base_url=server.openai_url, api_key="k", reasoning=False)
    with pytest.raises(BackendError) as e:
        b.complete(req(item="pair 9"))
    assert (e.value.item, e.value.task) == ("pair 9", "test.score")
    assert e.value.reason == ("openai:o3 rejected the request (400): Unsupported parameter: 'max_tokens' is not "
                              "supported with this model. Use 'max_completion_tokens' instead.")


@pytest.mark.parametrize("status", [401, 403])
def test_openai_401_and_403_are_setup_errors_naming_the_item_and_the_message(server, tmp_path, status):
    if status == 401:
        b = get_backend("openai:gpt-4o", cache_dir=tmp_path, base_url=server.openai_url, api_key="bad-key")
        msg = "Incorrect API key provided: bad-key."
    else:
        server.queue = [Reply(status=403, error="Project does not have access to model gpt-4o")]
        b = openai_backend(server, tmp_path)
        msg = "Project does not have access to model gpt-4o"
    with pytest.raises(BackendError) as e:
        b.complete(req(item="pair 2"))
    assert (e.value.item, e.value.task) == ("pair 2", "setup") and len(server.log) == 1
    assert e.value.reason == f"openai:gpt-4o: not authorised ({status}); check OPENAI_API_KEY ({msg})"


def test_openai_refusal_names_item_and_task(server, tmp_path):
    server.queue = [Reply(refusal="I can't help with that.")]
    with pytest.raises(BackendError) as e:
        openai_backend(server, tmp_path).complete(req(item="pair 3"))
    assert (e.value.item, e.value.task, e.value.reason) == ("pair 3", "test.score",
                                                            "openai:gpt-4o refused: I can't help with that.")


@pytest.mark.parametrize("status", [408, 409, 503])
def test_openai_transient_statuses_are_retried_and_the_last_error_is_reported(server, tmp_path, status):
    server.default = Reply(status=status, error="The server is overloaded.")
    with pytest.raises(BackendError) as e:
        openai_backend(server, tmp_path, max_attempts=2).complete(req(item="pair 5"))
    assert len(server.log) == 2 and (e.value.item, e.value.task) == ("pair 5", "test.score")
    assert e.value.reason == f"openai:gpt-4o still failing after 2 attempts: {status}: The server is overloaded."


def test_openai_persistent_timeout_says_timeout(server, tmp_path):
    server.default = Reply(GOOD, delay_s=1.0)
    with pytest.raises(BackendError) as e:
        openai_backend(server, tmp_path, timeout_s=0.2, max_attempts=2).complete(req())
    assert e.value.reason.startswith("openai:gpt-4o still failing after 2 attempts: timeout: ")


def _refusing_proxy(monkeypatch) -> None:
    """Route HTTPS through a local port where nothing listens, so a request to a public API fails on this
    machine and never leaves it."""
    for k in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{_free_port()}")


def test_openai_unreachable_server_is_transient_and_names_the_url(tmp_path, monkeypatch):
    url = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    b = get_backend("openai:gpt-4o", cache_dir=tmp_path / "a", base_url=url, api_key="k", backoff_s=0.01,
                    max_attempts=2)
    with pytest.raises(BackendError) as e:
        b.complete(req())
    assert e.value.reason.startswith(f"openai:gpt-4o still failing after 2 attempts: cannot reach {url} "
                                     "(set OPENAI_BASE_URL to your server): ")
    # the client's own variable: the message names the URL the client used
    monkeypatch.setenv("OPENAI_BASE_URL", url)
    with pytest.raises(BackendError) as e:
        get_backend("openai:gpt-4o", cache_dir=tmp_path / "b", api_key="k", max_attempts=1).complete(req())
    assert f"cannot reach {url} (set OPENAI_BASE_URL" in e.value.reason
    # neither: the public API, here behind a proxy that refuses (no request leaves the machine)
    monkeypatch.delenv("OPENAI_BASE_URL")
    _refusing_proxy(monkeypatch)
    with pytest.raises(BackendError) as e:
        get_backend("openai:gpt-4o", cache_dir=tmp_path / "c", api_key="k", max_attempts=1).complete(req())
    assert "cannot reach https://api.openai.com/v1 (set OPENAI_BASE_URL" in e.value.reason


def test_openai_local_server_without_a_key_sends_a_placeholder(server, tmp_path, monkeypatch):
    """vLLM / Ollama need no key: a base URL (setting or OPENAI_BASE_URL) without OPENAI_API_KEY works and
    sends the placeholder key 'EMPTY' that their docs use."""
    b = get_backend("openai:Qwen/Qwen3-VL-8B-Instruct", cache_dir=tmp_path / "a", base_url=server.openai_url)
    assert b.complete(req()).value.score == 7
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    assert get_backend("openai:Qwen/Qwen3-VL-8B-Instruct", cache_dir=tmp_path / "b").complete(req()).value.score == 7
    assert [_auth(x) for x in server.log] == ["Bearer EMPTY"] * 2


def test_openai_key_from_the_environment_is_the_one_sent(server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_url)
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    assert get_backend("openai:gpt-4o", cache_dir=tmp_path).complete(req()).value.score == 7
    assert _auth(server.log[0]) == "Bearer from-env"


def test_openai_missing_key_is_a_setup_error_with_the_whole_hint(tmp_path):
    with pytest.raises(BackendError) as e:
        get_backend("openai:gpt-4o").complete(req(item="pair 1"))
    assert (e.value.item, e.value.task) == ("", "setup")
    assert e.value.reason == ("openai: set OPENAI_API_KEY (or OPENAI_BASE_URL for a local OpenAI-compatible server "
                              "such as vLLM or Ollama)")


def test_openai_without_the_client_library_is_a_setup_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "openai", None)  # as if the api extra were not installed
    with pytest.raises(BackendError) as e:
        get_backend("openai:gpt-4o", api_key="k").client()
    assert (e.value.item, e.value.task) == ("", "setup")
    assert e.value.reason == "openai: install the API extra: pip install -e '.[api]'"


def test_openai_client_has_our_timeout_and_no_retries_of_its_own():
    c = get_backend("openai:gpt-4o", api_key="k").client()
    assert c.timeout == 120.0 and c.max_retries == 0
    assert get_backend("openai:gpt-4o", api_key="k", timeout_s=7).client().timeout == 7.0


def test_openai_answer_without_usage_counts_zero_tokens(server, tmp_path):
    server.queue = [Reply(GOOD, usage=False)]
    r = openai_backend(server, tmp_path).complete(req())
    assert r.value.score == 7 and (r.usage.input_tokens, r.usage.output_tokens) == (0, 0)
    assert r.usage.cost_usd == 0.0


def test_openai_answer_without_choices_is_an_empty_answer_and_is_repaired(server, tmp_path):
    server.queue = [Reply(GOOD, choices=False), Reply(GOOD)]
    assert openai_backend(server, tmp_path / "a").complete(req()).value.score == 7 and len(server.log) == 2
    assert "previous answer was invalid" in server.log[1]["body"]["messages"][1]["content"][-1]["text"]
    server.queue = [Reply(GOOD, choices=False), Reply(GOOD, choices=False)]
    with pytest.raises(BackendError) as e:
        openai_backend(server, tmp_path / "b").complete(req())
    assert e.value.reason.endswith("answer failed validation twice: no JSON object in the answer "
                                   "(Expecting value: line 1 column 1 (char 0)): ''")


@pytest.mark.parametrize("model, budget", [("o3", 2048 + 8192), ("gpt-4o", 2048)])
@pytest.mark.parametrize("content", ["", None])
def test_openai_output_budget_spent_without_an_answer_is_a_clear_failure(server, tmp_path, model, budget, content):
    server.queue = [Reply(content, finish_reason="length")]
    b = get_backend(f"openai:{model}", cache_dir=tmp_path, base_url=server.openai_url, api_key="k")
    with pytest.raises(BackendError) as e:
        b.complete(req(item="pair 6"))
    assert len(server.log) == 1 and (e.value.item, e.value.task) == ("pair 6", "test.score")
    assert e.value.reason == (f"openai:{model} spent its whole output budget ({budget} tokens) without answering; "
                              "raise reasoning_tokens or lower reasoning_effort")


def test_openai_a_complete_answer_cut_at_length_is_used_and_an_empty_stop_is_repaired(server, tmp_path):
    server.queue = [Reply(GOOD, finish_reason="length")]
    assert openai_backend(server, tmp_path / "a").complete(req()).value.score == 7 and len(server.log) == 1
    server.queue = [Reply("", finish_reason="stop"), Reply(GOOD)]
    assert openai_backend(server, tmp_path / "b").complete(req()).value.score == 7 and len(server.log) == 3


def test_openai_step_down_during_a_repair_keeps_the_repair(server, tmp_path):
    server.queue = [Reply("not json"), Reply(status=400, error="response_format json_schema is not supported"),
                    Reply(GOOD)]
    assert openai_backend(server, tmp_path).complete(req()).value.score == 7 and len(server.log) == 3
    third = server.log[2]["body"]
    assert third["response_format"]["json_schema"]["strict"] is False
    assert "Your previous answer was invalid (no JSON object" in third["messages"][1]["content"][-1]["text"]


# ------------------------------------------------------------------- Gemini: what a failure says, odd answers
@pytest.mark.parametrize("status", [500, 503])
def test_gemini_5xx_is_retried_with_the_header_delay_and_the_last_error_is_reported(server, tmp_path, status,
                                                                                     waits):
    server.queue = [Reply(status=status, error="The model is overloaded.", headers={"retry-after": "0.4"}),
                    Reply(GOOD)]
    assert gemini_backend(server, tmp_path / "a").complete(req()).value.score == 7 and len(server.log) == 2
    assert waits == [0.4]  # no RetryInfo: the retry-after header's 0.4 s (the backoff is 0.01 s)
    server.default = Reply(status=status, error="The model is overloaded.")
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path / "b", max_attempts=2).complete(req(item="pair 5"))
    state = {500: "INTERNAL", 503: "UNAVAILABLE"}[status]
    assert (e.value.item, e.value.task) == ("pair 5", "test.score")
    assert e.value.reason == (f"gemini:gemini-2.5-flash still failing after 2 attempts: {status} {state}: "
                              "The model is overloaded.")


def test_gemini_retry_info_wins_over_a_retry_after_header(server, tmp_path, waits):
    server.queue = [Reply(status=429, retry_delay_s=0.4, headers={"retry-after": "30"}), Reply(GOOD)]
    assert gemini_backend(server, tmp_path, max_backoff_s=60).complete(req()).value.score == 7
    assert waits == [0.4]  # RetryInfo's 0.4 s, not the header's 30 s


@pytest.mark.parametrize("status", [401, 403])
def test_gemini_401_and_403_are_setup_errors(server, tmp_path, status):
    server.queue = [Reply(status=status, error="The caller does not have permission")]
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path).complete(req(item="pair 2"))
    state = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}[status]
    assert (e.value.item, e.value.task) == ("pair 2", "setup") and len(server.log) == 1
    assert e.value.reason == (f"gemini:gemini-2.5-flash: not authorised ({status}); check GEMINI_API_KEY "
                              "(The caller does not have permission)")
    assert state in str(e.value.__cause__)


def test_gemini_invalid_key_names_the_item_and_the_message(server, tmp_path):
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path, base_url=server.base, api_key="bad-key")
    with pytest.raises(BackendError) as e:
        b.complete(req(item="pair 8"))
    assert (e.value.item, e.value.task) == ("pair 8", "setup")
    assert e.value.reason == ("gemini:gemini-2.5-flash: not authorised (400); check GEMINI_API_KEY "
                              "(API key not valid. Please pass a valid API key.)")


def test_gemini_other_4xx_names_item_task_and_the_message(server, tmp_path):
    server.queue = [Reply(status=400, error="Request contains an invalid argument.")]
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path).complete(req(item="pair 4"))
    assert (e.value.item, e.value.task) == ("pair 4", "test.score")
    assert e.value.reason == "gemini:gemini-2.5-flash answered 400: Request contains an invalid argument."


def test_gemini_persistent_timeout_and_unreachable_server_name_the_error_and_the_url(server, tmp_path, monkeypatch):
    server.default = Reply(GOOD, delay_s=2.5)
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path / "a", timeout_s=1, max_attempts=1).complete(req())
    assert e.value.reason.startswith(f"gemini:gemini-2.5-flash still failing after 1 attempts: ReadTimeout reaching "
                                     f"{server.base}: ")
    url = f"http://127.0.0.1:{_free_port()}"  # nothing listens there
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "b", base_url=url, api_key="k", max_attempts=1)
    with pytest.raises(BackendError) as e:
        b.complete(req())
    assert e.value.reason.startswith(f"gemini:gemini-2.5-flash still failing after 1 attempts: ConnectError "
                                     f"reaching {url}: ")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", url)  # the client's own variable
    with pytest.raises(BackendError) as e:
        get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "c", api_key="k", max_attempts=1).complete(req())
    assert f"ConnectError reaching {url}: " in e.value.reason
    monkeypatch.delenv("GOOGLE_GEMINI_BASE_URL")
    _refusing_proxy(monkeypatch)  # the public API: nothing leaves
    with pytest.raises(BackendError) as e:
        get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "d", api_key="k", max_attempts=1).complete(req())
    assert "Error reaching the Gemini API: " in e.value.reason


def test_gemini_keys_from_the_environment_google_first(server, tmp_path, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key")
    get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "a", base_url=server.base).complete(req())
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key")
    get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "b", base_url=server.base).complete(req())
    keys = [{k.lower(): v for k, v in x["headers"].items()}["x-goog-api-key"] for x in server.log]
    assert keys == ["gemini-key", "google-key"]


def test_gemini_missing_key_and_missing_library_are_setup_errors(monkeypatch):
    with pytest.raises(BackendError) as e:
        get_backend("gemini:gemini-2.5-flash").complete(req(item="pair 1"))
    assert (e.value.item, e.value.task) == ("", "setup")
    assert e.value.reason == "gemini: set GEMINI_API_KEY (or GOOGLE_API_KEY)"
    import sys

    import google

    monkeypatch.setitem(sys.modules, "google.genai", None)  # as if the api extra were not installed
    monkeypatch.delattr(google, "genai", raising=False)
    with pytest.raises(BackendError) as e:
        get_backend("gemini:gemini-2.5-flash", api_key="k").client()
    assert (e.value.item, e.value.task) == ("", "setup")
    assert e.value.reason == "gemini: install the API extra: pip install -e '.[api]'"


def test_gemini_answer_without_usage_counts_zero_tokens(server, tmp_path):
    server.queue = [Reply(GOOD, usage=False)]
    r = gemini_backend(server, tmp_path).complete(req())
    assert r.value.score == 7 and (r.usage.input_tokens, r.usage.output_tokens, r.usage.cost_usd) == (0, 0, 0.0)


def test_gemini_no_candidates_without_feedback_is_a_refusal(server, tmp_path):
    server.queue = [Reply(GOOD, choices=False)]
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path).complete(req(item="pair 7"))
    assert (e.value.item, e.value.task) == ("pair 7", "test.score") and len(server.log) == 1
    assert e.value.reason == "gemini:gemini-2.5-flash refused: no candidates"


def test_gemini_blocked_prompt_names_item_task_and_the_reason(server, tmp_path):
    server.queue = [Reply(refusal="SAFETY")]
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path).complete(req(item="pair 7"))
    assert (e.value.item, e.value.task) == ("pair 7", "test.score")
    assert e.value.reason == "gemini:gemini-2.5-flash refused: BlockedReason.SAFETY"


@pytest.mark.parametrize("finish", ["SAFETY", "PROHIBITED_CONTENT", "BLOCKLIST", "RECITATION"])
def test_gemini_empty_answer_stopped_by_a_filter_is_a_refusal(server, tmp_path, finish):
    server.queue = [Reply("", finish_reason=finish)]
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path).complete(req(item="pair 7"))
    assert (e.value.item, e.value.task) == ("pair 7", "test.score") and len(server.log) == 1
    assert e.value.reason == f"gemini:gemini-2.5-flash refused: finishReason FinishReason.{finish}"


def test_gemini_an_answer_with_a_filter_reason_but_text_is_used_and_an_empty_stop_is_repaired(server, tmp_path):
    server.queue = [Reply(GOOD, finish_reason="SAFETY")]
    assert gemini_backend(server, tmp_path / "a").complete(req()).value.score == 7 and len(server.log) == 1
    server.queue = [Reply("", finish_reason="STOP"), Reply(GOOD)]
    assert gemini_backend(server, tmp_path / "b").complete(req()).value.score == 7 and len(server.log) == 3
    server.queue = [Reply(GOOD, finish_reason="MAX_TOKENS")]  # a complete answer at the limit is still an answer
    assert gemini_backend(server, tmp_path / "c").complete(req()).value.score == 7 and len(server.log) == 4


def test_gemini_thinking_that_eats_the_budget_names_item_task_and_the_thoughts(server, tmp_path):
    with pytest.raises(BackendError) as e:
        gemini_backend(server, tmp_path, thinking_budget=-1).complete(req(item="pair 6"))
    assert (e.value.item, e.value.task) == ("pair 6", "test.score") and len(server.log) == 1
    assert e.value.reason == ("gemini:gemini-2.5-flash stopped at max_output_tokens with no answer (2048 thinking "
                              "tokens); set a smaller thinking_budget")


def test_gemini_cache_hit_makes_no_request(server, tmp_path):
    assert gemini_backend(server, tmp_path).complete(req()).value.score == 7
    r = gemini_backend(server, tmp_path).complete(req())
    assert r.cached and r.value.score == 7 and len(server.log) == 1
