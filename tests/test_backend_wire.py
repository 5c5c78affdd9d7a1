"""The OpenAI and Gemini backends' request building and error reading, without a server: which parameters a
model family gets, the structured-output step-down, the delay a 429 asks for (headers, RetryInfo durations) and
the answer text. The stand-in server tests (test_backends.py) cover the same code end to end; these run in
milliseconds, so mutation testing can use them. Expected values are written out (the API's documented forms)."""

from __future__ import annotations

import base64
import email.utils
import io
import json
import time
from types import SimpleNamespace as NS

import pytest
from PIL import Image
from pydantic import BaseModel, Field

from nextads_lib.backends.base import BackendError, ImagePart, ModelRequest, TextPart, VideoPart
from nextads_lib.backends import gemini_backend as G
from nextads_lib.backends import openai_backend as O

pytest.importorskip("openai")
pytest.importorskip("google.genai")


class Score(BaseModel):
    score: float = Field(ge=0, le=10)
    rationale: str = Field(min_length=1)


def req(*parts, max_tokens=2048):
    return ModelRequest(task="t.score", system="You are a judge.", parts=list(parts) or [TextPart("rate")],
                        schema=Score, item="pair 1", max_output_tokens=max_tokens)


# ------------------------------------------------------------------------------------------------ OpenAI
@pytest.mark.parametrize("model, reasoning", [
    ("o1", True), ("o3", True), ("o4-mini", True), ("o3-2025-04-16", True), ("gpt-5", True), ("gpt-5-mini", True),
    ("gpt-5.1", True), ("openai/o3", True), ("openrouter/openai/o3", True), ("O3", True), ("gpt-4o", False),
    ("gpt-4.1-mini", False),
    ("o3x", False), ("Qwen/Qwen3-VL-8B-Instruct", False), ("my-o3", False)])
def test_reasoning_model_families(model, reasoning):
    assert O.is_reasoning_model(model) is reasoning


def test_retry_after_headers_in_the_clients_order():
    assert O.retry_after_s(None) is None and O.retry_after_s({}) is None
    assert O.retry_after_s({"retry-after-ms": "400"}) == pytest.approx(0.4)
    assert O.retry_after_s({"retry-after": "3"}) == 3.0
    assert O.retry_after_s({"retry-after-ms": "250", "retry-after": "20"}) == pytest.approx(0.25)
    assert O.retry_after_s({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0
    assert O.retry_after_s({"retry-after": "-5"}) == 0.0
    assert O.retry_after_s({"retry-after": "whenever"}) is None
    future = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= O.retry_after_s({"retry-after": future}) <= 31
    past = email.utils.formatdate(time.time() - 300, usegmt=True)
    assert O.retry_after_s({"retry-after": past}) == 0.0


def test_error_fields_and_message_of_an_api_error():
    inner = {"message": "Invalid schema", "param": "response_format", "code": "invalid_value"}
    e = NS(body={"error": inner})
    assert O._error_fields(e) == inner and O._message(e) == "Invalid schema"
    assert O._error_fields(NS(body={"message": "flat"})) == {"message": "flat"}  # some servers send no wrapper
    assert O._error_fields(NS(body={"error": "text only"})) == {}
    assert O._error_fields(NS(body="<html>")) == {} and O._error_fields(Exception("x")) == {}
    assert O._message(ValueError("plain")) == "plain"
    assert O._message(NS(body={"error": {"message": ""}})) != ""  # falls back to the exception's text


def test_schema_name_follows_the_api_rule():
    assert O._schema_name("Score") == "Score"
    assert O._schema_name("List[judge.Answer v2]") == "List_judge_Answer_v2_"
    assert O._schema_name("") == "answer"
    assert O._schema_name("A" * 100) == "A" * 64
    assert O._compact({"a": [1, 2], "b": {"c": "d"}}) == '{"a":[1,2],"b":{"c":"d"}}'


def test_openai_setup_errors():
    with pytest.raises(BackendError) as e:
        O.OpenAIBackend("")
    assert (e.value.item, e.value.task, e.value.reason) == ("", "setup", "openai: needs a model name, e.g. 'openai:gpt-4o'")
    with pytest.raises(BackendError) as e:
        O.OpenAIBackend("gpt-4o", structured="xml")
    assert (e.value.item, e.value.task) == ("", "setup")
    assert e.value.reason == "openai: structured='xml' must be json_schema, json or none"


def test_chat_model_request_kwargs():
    b = O.OpenAIBackend("gpt-4o", api_key="k")
    kw = b.request_kwargs(req(), None)
    assert set(kw) == {"model", "messages", "temperature", "max_tokens", "seed", "response_format"}
    assert kw["model"] == "gpt-4o" and kw["temperature"] == 0.0 and kw["max_tokens"] == 2048 and kw["seed"] == 0
    assert isinstance(kw["temperature"], float)
    rf = kw["response_format"]
    assert rf["type"] == "json_schema" and rf["json_schema"]["name"] == "Score" and rf["json_schema"]["strict"] is True
    assert rf["json_schema"]["schema"]["additionalProperties"] is False
    kw = O.OpenAIBackend("gpt-4o", temperature=0.3, seed=7).request_kwargs(req(max_tokens=100), None)
    assert kw["temperature"] == 0.3 and kw["seed"] == 7 and kw["max_tokens"] == 100
    assert "seed" not in O.OpenAIBackend("gpt-4o", seed=None).request_kwargs(req(), None)


def test_reasoning_model_request_kwargs():
    kw = O.OpenAIBackend("o3").request_kwargs(req(), None)
    assert "temperature" not in kw and "max_tokens" not in kw and "reasoning_effort" not in kw
    assert kw["max_completion_tokens"] == 2048 + 8192
    kw = O.OpenAIBackend("gpt-5", reasoning_tokens=100, reasoning_effort="low").request_kwargs(req(), None)
    assert kw["max_completion_tokens"] == 2148 and kw["reasoning_effort"] == "low"
    # the setting overrides the name in both directions
    assert "max_completion_tokens" in O.OpenAIBackend("my-model", reasoning=True).request_kwargs(req(), None)
    assert "max_tokens" in O.OpenAIBackend("o3", reasoning=False).request_kwargs(req(), None)


def test_structured_modes():
    r = req()
    assert O.OpenAIBackend("m", strict=False).response_format(r) == {
        "type": "json_schema", "json_schema": {"name": "Score", "schema": Score.model_json_schema(), "strict": False}}
    assert O.OpenAIBackend("m", structured="json").response_format(r) == {"type": "json_object"}
    b = O.OpenAIBackend("m", structured="none")
    assert b.response_format(r) is None and "response_format" not in b.request_kwargs(r, None)


def test_messages_carry_system_parts_schema_and_the_repair(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (40, 20), (0, 255, 0)).save(p)
    b = O.OpenAIBackend("gpt-4o")
    sysm, user = b.messages(req(TextPart("look:"), ImagePart(p)), None)
    assert sysm == {"role": "system", "content": "You are a judge."} and user["role"] == "user"
    c = user["content"]
    assert c[0] == {"type": "text", "text": "look:"} and c[1]["type"] == "image_url"
    url = c[1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    im = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert im.size == (40, 20) and im.getpixel((5, 5)) == (0, 255, 0)
    instr = c[-1]["text"]
    assert instr.startswith("Answer with one JSON object only, matching this JSON schema:\n")
    assert json.loads(instr.split("\n", 1)[1]) == Score.model_json_schema() and "invalid" not in instr
    again = b.messages(req(), "score: too big")[1]["content"][-1]["text"]
    assert again == ("Answer with one JSON object only, matching this JSON schema:\n"
                     + O._compact(Score.model_json_schema()) + "\nYour previous answer was invalid (score: too big). Answer again, valid JSON only.")
    assert c[-1]["type"] == "text" and len(c) == 3


def test_a_video_goes_to_openai_as_n_frames(tmp_path):
    import numpy as np

    from nextads_lib.media import write_video

    v = tmp_path / "v.mp4"
    write_video(v, [np.full((32, 48, 3), 20 * i, np.uint8) for i in range(10)], 5)
    imgs = lambda b: [x for x in b.messages(req(VideoPart(v, n_frames=3)), None)[1]["content"]  # noqa: E731
                      if x["type"] == "image_url"]
    assert len(imgs(O.OpenAIBackend("gpt-4o"))) == 3
    frames = imgs(O.OpenAIBackend("gpt-4o", n_frames=5))
    assert len(frames) == 5
    for x in frames:  # each a PNG data URL of the video's frame size
        url = x["image_url"]["url"]
        assert url.startswith("data:image/png;base64,")
        assert Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size == (48, 32)


class _BadRequest(Exception):
    """An API error whose text says nothing but its status (the details are in its body only)."""

    def __init__(self, body):
        super().__init__("Error code: 400")
        self.body = body


def _bad_request(message="", param=None, code=None):
    return _BadRequest({"error": {"message": message, "param": param, "code": code}})


def test_step_down_reads_the_param_and_the_message_of_the_body():
    assert O.OpenAIBackend("m")._step_down(_bad_request("Invalid value", param="response_format"))
    assert O.OpenAIBackend("m")._step_down(_bad_request("Invalid json_schema: 'strict' is not supported"))
    assert not O.OpenAIBackend("m")._step_down(_bad_request("Invalid value", param="messages"))


def test_retry_after_of_an_api_error():
    assert O._retry_after(NS(response=NS(headers={"retry-after": "3"}))) == 3.0
    assert O._retry_after(NS(response=None)) is None and O._retry_after(ValueError()) is None


def test_step_down_strict_then_non_strict_then_json_then_nothing():
    b = O.OpenAIBackend("local-model")
    e = _bad_request("Invalid value for response_format", param="response_format")
    assert b._step_down(e) and (b.structured, b.strict) == ("json_schema", False)
    assert b._step_down(e) and b.structured == "json"
    assert not b._step_down(e) and b.structured == "json"
    b = O.OpenAIBackend("local-model")
    assert b._step_down(_bad_request("json_schema is not supported")) and b.strict is False
    b = O.OpenAIBackend("local-model")
    assert not b._step_down(_bad_request("max_tokens is not supported with this model", param="max_tokens"))
    assert not b._step_down(_bad_request("Missing required parameter: 'response_format.json_schema.name'",
                                         param="response_format.json_schema.name", code="missing_required_parameter"))
    assert (b.structured, b.strict) == ("json_schema", True)


# ------------------------------------------------------------------------------------------------ Gemini
@pytest.mark.parametrize("model, budget", [
    ("gemini-2.5-flash", 0), ("gemini-2.5-flash-lite", 0), ("gemini-2.5-pro", 128), ("models/gemini-2.5-pro", 128),
    ("GEMINI-2.5-PRO", 128), ("gemini-2.0-flash", None), ("gemini-1.5-pro", None),
    ("publishers/google/models/gemini-2.5-pro", 128)])  # a Vertex AI resource name
def test_default_thinking_budget(model, budget):
    assert G.default_thinking_budget(model) == budget


def test_effective_budget_is_a_setting_so_it_is_in_the_cache_key():
    assert G.GeminiBackend("gemini-2.5-flash").settings["thinking_budget"] == 0
    assert G.GeminiBackend("gemini-2.5-flash").thinking_budget == 0
    assert G.GeminiBackend("gemini-2.5-pro", thinking_budget=512).thinking_budget == 512
    assert "thinking_budget" not in G.GeminiBackend("gemini-2.0-flash").settings
    assert G.GeminiBackend("gemini-2.0-flash").thinking_budget is None
    a, b = G.GeminiBackend("gemini-2.5-flash"), G.GeminiBackend("gemini-2.5-flash", thinking_budget=64)
    assert a.cache_key(req()) != b.cache_key(req())
    with pytest.raises(BackendError) as e:
        G.GeminiBackend("")
    assert (e.value.item, e.value.task) == ("", "setup")
    assert e.value.reason == "gemini: needs a model name, e.g. 'gemini:gemini-2.5-flash'"


def test_gemini_client_timeout_is_the_setting_in_milliseconds():
    # read back from the client's own options (google-genai keeps them on its API client)
    opts = lambda b: b.client()._api_client._http_options  # noqa: E731
    assert opts(G.GeminiBackend("gemini-2.5-flash", api_key="k")).timeout == 120_000
    assert opts(G.GeminiBackend("gemini-2.5-flash", api_key="k", timeout_s=2.5)).timeout == 2_500


@pytest.mark.parametrize("value, seconds", [
    ("37s", 37.0), ("0.400s", 0.4), (" 2 s ", 2.0), (".5s", 0.5), (3, 3.0), (1.5, 1.5), (-1, 0.0),
    ({"seconds": 1, "nanos": 500000000}, 1.5), ({"seconds": "2"}, 2.0), ({"nanos": 250000000}, 0.25),
    ({"seconds": -3}, 0.0), ({"seconds": None, "nanos": None}, 0.0), ("abc", None), ("5", None), ("", None),
    (None, None)])
def test_parse_duration(value, seconds):
    assert G.parse_duration_s(value) == seconds  # exact: each expected value is a float the input spells exactly


def test_retry_delay_from_retry_info():
    info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}
    other = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "retryDelay": "99s"}
    assert G.retry_delay_s({"error": {"code": 429, "details": [other, info]}}) == 12.0
    assert G.retry_delay_s({"code": 429, "details": [info]}) == 12.0  # the client's details without the wrapper
    assert G.retry_delay_s({"error": {"details": [other]}}) is None
    assert G.retry_delay_s({"error": {"details": None}}) is None
    assert G.retry_delay_s({"error": "text"}) is None and G.retry_delay_s(None) is None
    assert G.retry_delay_s({"error": {"details": ["x", info]}}) == 12.0


def test_header_delay():
    assert G._header_delay(NS(response=NS(headers={"retry-after": "3"}))) == 3.0
    assert G._header_delay(NS(response=NS(headers={"retry-after": "-2"}))) == 0.0
    assert G._header_delay(NS(response=NS(headers={"retry-after": "soon"}))) is None
    assert G._header_delay(NS(response=NS(headers={}))) is None
    assert G._header_delay(NS(response=None)) is None and G._header_delay(Exception()) is None


def test_answer_text_leaves_out_thoughts():
    part = lambda text, thought=None: NS(text=text, thought=thought)  # noqa: E731
    r = NS(candidates=[NS(content=NS(parts=[part("{\"a\":"), part("thinking...", True), part(None), part(" 1}")]))])
    assert G._answer_text(r) == '{"a": 1}'
    assert G._answer_text(NS(candidates=[])) == "" and G._answer_text(NS(candidates=None)) == ""
    assert G._answer_text(NS(candidates=[NS(content=None)])) == ""
    assert G._answer_text(NS(candidates=[NS(content=NS(parts=None))])) == ""


def test_gemini_config():
    c = G.GeminiBackend("gemini-2.5-pro").config(req())
    assert c.system_instruction == "You are a judge." and c.temperature == 0.0 and c.seed == 0
    assert c.max_output_tokens == 2048 + 128 and c.thinking_config.thinking_budget == 128
    assert c.response_mime_type == "application/json" and c.response_json_schema == Score.model_json_schema()
    c = G.GeminiBackend("gemini-2.0-flash", temperature=0.5, seed=3).config(req(max_tokens=100))
    assert c.thinking_config is None and c.max_output_tokens == 100 and c.temperature == 0.5 and c.seed == 3
    c = G.GeminiBackend("gemini-2.5-flash", thinking_budget=-1).config(req())  # dynamic: nothing reserved
    assert c.max_output_tokens == 2048 and c.thinking_config.thinking_budget == -1


def test_gemini_contents(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (8, 4), (255, 0, 0)).save(p)
    (content,) = G.GeminiBackend("gemini-2.5-flash").contents(req(TextPart("look:"), ImagePart(p)), None)
    assert content.role == "user" and content.parts[0].text == "look:"
    blob = content.parts[1].inline_data
    assert blob.mime_type == "image/png" and Image.open(io.BytesIO(blob.data)).size == (8, 4)
    assert len(content.parts) == 2
    (content,) = G.GeminiBackend("gemini-2.5-flash").contents(req(), "score: too big")
    assert content.parts[-1].text == ("Your previous answer was invalid (score: too big). "
                                      "Answer again, valid JSON only.")


def test_gemini_video_inline_up_to_the_limit_else_frames(tmp_path):
    import numpy as np

    from nextads_lib.media import write_video

    v = tmp_path / "v.mp4"
    write_video(v, [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(10)], 5)
    mb = v.stat().st_size / 2**20
    inline = lambda **kw: [p.inline_data.mime_type for p in  # noqa: E731
                           G.GeminiBackend("gemini-2.5-flash", **kw).contents(req(VideoPart(v, 3)), None)[0].parts
                           if p.inline_data is not None]
    assert inline(inline_video_mb=mb) == ["video/mp4"]  # exactly at the limit: inline
    assert inline(inline_video_mb=mb * 0.99) == ["image/png"] * 3
    assert inline(inline_video_mb=0, n_frames=4) == ["image/png"] * 4
    frames = [p.inline_data.data for p in G.GeminiBackend("gemini-2.5-flash", inline_video_mb=0).contents(
        req(VideoPart(v, 3)), None)[0].parts if p.inline_data is not None]
    assert [Image.open(io.BytesIO(b)).size for b in frames] == [(32, 32)] * 3  # each a PNG of a frame
    (content,) = G.GeminiBackend("gemini-2.5-flash").contents(req(VideoPart(v, 3)), None)
    assert content.parts[0].inline_data.data == v.read_bytes()


def test_gemini_error_without_a_message_reports_the_clients_error_text():
    """A gateway's 400/502 can come without an error message (an empty or message-less body): the failure then
    quotes the client's own text of the error (code, status, body), never "None"."""
    from google.genai import errors

    b = G.GeminiBackend("gemini-2.5-flash", api_key="k")

    def fail(**_):
        raise errors.APIError(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}})

    b._client = NS(models=NS(generate_content=fail))
    with pytest.raises(BackendError) as e:
        b._call(req(), None)
    assert e.value.reason.startswith("gemini:gemini-2.5-flash answered 400: 400 INVALID_ARGUMENT. {")


def test_gemini_default_inline_limit_is_18_mb(tmp_path):
    """The documented default (docs/backends.md): a video of 18 MiB goes inline, one of 18.5 MiB as frames. The
    clip is padded with zeros past its end (the decoder reads up to its index and ignores the rest)."""
    import numpy as np

    from nextads_lib.media import write_video

    def parts(size: int) -> list[str]:
        v = tmp_path / f"v{size}.mp4"
        write_video(v, [np.full((32, 32, 3), 20 * i, np.uint8) for i in range(10)], 5)
        with open(v, "r+b") as f:
            f.truncate(size)
        (content,) = G.GeminiBackend("gemini-2.5-flash").contents(req(VideoPart(v, 3)), None)
        return [p.inline_data.mime_type for p in content.parts if p.inline_data is not None]

    assert parts(18 * 2**20) == ["video/mp4"]
    assert parts(int(18.5 * 2**20)) == ["image/png"] * 3


def test_gemini_usage_fields_left_out_count_zero_tokens():
    """usageMetadata may leave out a count (an answer of no tokens, a blocked prompt): the call then bills 0 of
    that kind, not 1 and not an error."""
    b = G.GeminiBackend("gemini-2.5-flash", api_key="k")
    cand = NS(content=NS(parts=[NS(text='{"score": 7, "rationale": "ok"}', thought=None)]), finish_reason="STOP")
    um = NS(prompt_token_count=None, thoughts_token_count=None, candidates_token_count=None)
    b._client = NS(models=NS(generate_content=lambda **_: NS(usage_metadata=um, candidates=[cand])))
    assert b._call(req(), None) == ('{"score": 7, "rationale": "ok"}', 0, 0)
    um.prompt_token_count, um.candidates_token_count, um.thoughts_token_count = 1000, 200, 30
    assert b._call(req(), None) == ('{"score": 7, "rationale": "ok"}', 1000, 230)
