"""The backends' shared pieces without a server: error texts, the content parts a model sees and their cache keys
(real PNG and MP4 files decoded back), the JSON extraction, the re-ask's validation text and the usage sums.
Expected values are written out here (known base64, a file's sha256 by hashlib, decoded pixel sizes)."""

from __future__ import annotations

import hashlib
import io
import time

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel, Field, RootModel, ValidationError

from nextads_lib import media
from nextads_lib.backends.base import (
    BackendError,
    ImagePart,
    ModelBackend,
    ModelRequest,
    TextPart,
    TransientError,
    VideoPart,
    b64,
    extract_json,
    summarize_usage,
    validation_errors,
)
from nextads_lib.schemas import Usage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Score(BaseModel):
    score: float = Field(ge=0, le=10)
    rationale: str = Field(min_length=1)


def decode_png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_MAGIC)
    im = Image.open(io.BytesIO(data))
    assert im.format == "PNG"
    return im


# ------------------------------------------------------------------------------------------------ errors
def test_backend_error_names_the_item_the_task_and_the_reason():
    e = BackendError("pair 3", "judge.content", "answered 400")
    assert str(e) == "pair 3 [judge.content]: answered 400"
    assert (e.item, e.task, e.reason) == ("pair 3", "judge.content", "answered 400")
    assert str(BackendError("", "setup", "no key")) == "request [setup]: no key"


def test_transient_error_keeps_its_message_and_delay():
    e = TransientError("429: slow down", 2.5)
    assert str(e) == "429: slow down" and e.retry_after == 2.5
    assert TransientError("timeout").retry_after is None


# ----------------------------------------------------------------------------------------- content parts
def test_b64_is_standard_base64():
    assert b64(b"\x00\xff\x10") == "AP8Q"
    assert b64(b"ab") == "YWI="


def test_image_part_from_a_file_and_from_pixels(tmp_path):
    a = np.zeros((500, 1000, 4), np.uint8)
    a[..., 0], a[..., 3] = 200, 255
    p = tmp_path / "wide.png"
    Image.fromarray(a, "RGBA").save(p)
    im = decode_png(ImagePart(str(p)).png_bytes())
    assert im.size == (768, 384) and im.mode == "RGB"  # thumbnail to 768 on the long side, alpha dropped
    assert im.getpixel((10, 10)) == (200, 0, 0)
    assert decode_png(ImagePart(p).png_bytes(max_side=100)).size == (100, 50)
    pil = Image.fromarray(a, "RGBA")
    small = decode_png(ImagePart(pil).png_bytes(max_side=200))
    assert small.size == (200, 100) and small.mode == "RGB"
    # a file is keyed by its bytes, pixels by their PNG: the same content gives the same key, other content another
    assert ImagePart(str(p)).key() == {"image_sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    assert ImagePart(p).key() == ImagePart(str(p)).key()
    k = ImagePart(pil).key()
    assert list(k) == ["image_png"] and k == ImagePart(Image.fromarray(a, "RGBA")).key()
    b = a.copy()
    b[0, 0, 1] = 9
    assert ImagePart(Image.fromarray(b, "RGBA")).key() != k


def test_video_part_frames_and_key(tmp_path):
    frames = [np.full((64, 96, 3), 20 * i, np.uint8) for i in range(10)]
    v = tmp_path / "v.mp4"
    media.write_video(v, frames, fps=5.0)
    pngs = VideoPart(str(v), n_frames=4).frames_png(max_side=48)
    assert len(pngs) == 4
    ims = [decode_png(x) for x in pngs]
    assert all(im.size == (48, 32) for im in ims)
    greys = [np.asarray(im.convert("L"), float).mean() for im in ims]
    # frames 1, 3, 6, 8 of 10 (bin centres): greys 20, 60, 120, 160 give or take the codec
    assert greys == sorted(greys) and greys[0] == pytest.approx(20, abs=8) and greys[-1] == pytest.approx(160, abs=8)
    assert len(VideoPart(v).frames_png()) == 8
    assert decode_png(VideoPart(v, 1).frames_png()[0]).size == (96, 64)  # never enlarged
    assert VideoPart(v, n_frames=4).key() == {"video_sha256": hashlib.sha256(v.read_bytes()).hexdigest(),
                                              "n_frames": 4}


def test_request_user_text_and_cache_parts(tmp_path):
    p = tmp_path / "a.png"
    Image.new("RGB", (4, 4)).save(p)
    r = ModelRequest(task="t", system="s", parts=[TextPart("one"), ImagePart(p), TextPart("two")], schema=Score)
    assert r.user_text() == "one\ntwo"
    assert r.cache_parts() == [{"text": "one"}, {"image_sha256": hashlib.sha256(p.read_bytes()).hexdigest()},
                               {"text": "two"}]


# ------------------------------------------------------------------------------------------ JSON answers
def test_extract_json_from_whole_fenced_and_embedded_answers():
    assert extract_json('{"score": 7, "rationale": "ok"}') == {"score": 7, "rationale": "ok"}
    assert extract_json('Here:\n```json\n{"score": 3}\n```\nthanks') == {"score": 3}
    assert extract_json('Here:\n```\n{"score": 4}\n```') == {"score": 4}
    # the OUTERMOST braces of an answer wrapped in prose, nested objects kept
    assert extract_json('Sure! {"a": {"b": 1}, "c": 2} Hope it helps.') == {"a": {"b": 1}, "c": 2}
    assert extract_json('  [1, 2]  ') == [1, 2]


@pytest.mark.parametrize("text, shown", [(None, "''"), ("", "''"), ("no json } here", "'no json } here'"),
                                         ("half { open", "'half { open'")])
def test_extract_json_failure_says_so_and_quotes_the_answer(text, shown):
    with pytest.raises(ValueError) as ei:
        extract_json(text)
    msg = str(ei.value)
    assert msg.startswith("no JSON object in the answer (") and msg.endswith(f"): {shown}")


def test_extract_json_quotes_at_most_200_characters():
    with pytest.raises(ValueError) as ei:
        extract_json("x" * 500)
    assert str(ei.value).endswith(": '" + "x" * 200 + "'")


def test_validation_errors_name_each_field_for_the_reask():
    with pytest.raises(ValidationError) as ei:
        Score.model_validate({"score": 11, "rationale": ""})
    assert validation_errors(ei.value) == ("score: Input should be less than or equal to 10; "
                                           "rationale: String should have at least 1 character")
    with pytest.raises(ValidationError) as ei:
        Score.model_validate([1, 2])
    assert validation_errors(ei.value).startswith("<root>: Input should be a valid dictionary")

    class Many(RootModel[list[int]]):
        pass

    with pytest.raises(ValidationError) as ei:
        Many.model_validate(["x"] * 12)
    text = validation_errors(ei.value)
    assert text.count("; ") == 9 and text.startswith("0: Input should be a valid integer")  # the first ten only
    assert validation_errors(ValueError("no JSON object in the answer")) == "no JSON object in the answer"


# ----------------------------------------------------------------------------------------------- usage
def test_usage_summary_counts_calls_and_rounds_cost_and_latency():
    us = [Usage(backend="b", model="m", input_tokens=10, output_tokens=2, latency_s=1.23456, cost_usd=0.1234567),
          Usage(backend="b", model="m", input_tokens=5, output_tokens=1, latency_s=0.0, cost_usd=0.0, cached=True)]
    assert summarize_usage(us) == {"calls": 1, "cached": 1, "input_tokens": 15, "output_tokens": 3,
                                   "cost_usd": 0.123457, "latency_s": 1.235}
    assert summarize_usage([]) == {"calls": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0,
                                   "cost_usd": 0.0, "latency_s": 0.0}


def test_more_json_answers():
    assert extract_json('Answer: {"a": 1}.') == {"a": 1}  # the object ends at the last brace, not after it
    with pytest.raises(ValueError, match=r"\(Expecting value: line 1 column 1"):  # the parser's own reason
        extract_json("")

    class Inner(BaseModel):
        score: int

    class Outer(BaseModel):
        items: list[Inner]

    with pytest.raises(ValidationError) as ei:
        Outer.model_validate({"items": [{"score": 1}, {"score": "high"}]})
    assert validation_errors(ei.value) == ("items.1.score: Input should be a valid integer, unable to parse string "
                                           "as an integer")


def test_video_frames_are_at_most_512_wide_by_default(tmp_path):
    v = tmp_path / "wide.mp4"
    media.write_video(v, [np.full((64, 640, 3), 100, np.uint8)] * 2, fps=2.0)
    (png,) = VideoPart(v, n_frames=1).frames_png()
    assert decode_png(png).size[0] == 512


# ------------------------------------------------------------------------------------- retry and record
class Scripted(ModelBackend):
    """A backend that gives the answers it was given, in order (an exception is raised); each call takes
    ``call_s`` seconds."""

    kind = "scripted"

    def __init__(self, *answers, model="my-model", call_s=0.0, **kw):
        super().__init__(model, **kw)
        self.answers, self.call_s = list(answers), call_s

    def _call(self, req, repair):
        if self.call_s:
            time.sleep(self.call_s)
        a = self.answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a, 10, 5


GOOD = '{"score": 7, "rationale": "ok"}'


def req1():
    return ModelRequest(task="t.score", system="s", parts=[TextPart("x")], schema=Score, item="pair 1")


@pytest.fixture
def sleeps(monkeypatch):
    """time.sleep recorded instead of slept (tenacity waits through it)."""
    got = []
    monkeypatch.setattr(time, "sleep", lambda s: got.append(round(s, 6)))
    return got


def test_transient_failures_back_off_exponentially_up_to_the_cap(sleeps):
    b = Scripted(*[TransientError("503")] * 3, GOOD)
    assert b.complete(req1()).value.score == 7 and b.calls == 4
    assert sleeps == [1.0, 2.0, 4.0]  # the default base delay doubles
    sleeps.clear()
    Scripted(*[TransientError("503")] * 3, GOOD, backoff_s=0.5, max_backoff_s=1.0).complete(req1())
    assert sleeps == [0.5, 1.0, 1.0]


def test_the_servers_delay_is_honoured_up_to_the_cap(sleeps):
    Scripted(TransientError("429", retry_after=7.0), TransientError("429", retry_after=100.0), GOOD).complete(req1())
    assert sleeps == [7.0, 30.0]  # the default cap: 30 s
    sleeps.clear()
    Scripted(TransientError("429", retry_after=0.0), GOOD, backoff_s=3.0).complete(req1())
    assert sleeps == [0.0]  # "retry now" is not replaced by the backoff


def test_five_attempts_by_default_then_a_named_failure(sleeps):
    b = Scripted(*[TransientError("503 busy")] * 6)
    with pytest.raises(BackendError) as ei:
        b.complete(req1())
    assert b.calls == 5 and len(sleeps) == 4
    assert str(ei.value) == "pair 1 [t.score]: scripted:my-model still failing after 5 attempts: 503 busy"
    b = Scripted(*[TransientError("503")] * 3, max_attempts=2)
    with pytest.raises(BackendError, match="after 2 attempts"):
        b.complete(req1())
    assert b.calls == 2


def test_a_non_transient_failure_is_not_retried(sleeps):
    b = Scripted(BackendError("pair 1", "t.score", "answered 400"), GOOD)
    with pytest.raises(BackendError, match="answered 400"):
        b.complete(req1())
    assert b.calls == 1 and sleeps == []


def test_usage_records_latency_and_the_price_table(tmp_path):
    t = tmp_path / "p.yaml"
    t.write_text("my-model: {input: 1.0, output: 2.0}\n")
    b = Scripted(GOOD, call_s=0.02, price_table=str(t))
    u = b.complete(req1()).usage
    assert 0.02 <= u.latency_s < 2 and u.latency_s == round(u.latency_s, 4)
    assert (u.input_tokens, u.output_tokens, u.cached) == (10, 5, False)
    assert u.cost_usd == pytest.approx(10 / 1e6 * 1.0 + 5 / 1e6 * 2.0)
    assert u.backend == "scripted:my-model" and u.model == "my-model"
    assert Scripted(GOOD).complete(req1()).usage.cost_usd == 0.0  # not in the default table
    # a measured latency is kept to 0.1 ms (a clock read, checked on a fixed value: one read ends in a 0 in 10)
    assert Scripted()._record(req1(), 1, 1, 0.123456).latency_s == 0.1235


# ------------------------------------------------------------------------------- complete: cache and repair
def test_an_answer_is_cached_with_its_tokens_and_served_without_a_call(tmp_path):
    b = Scripted("Here it is: " + GOOD, cache_dir=tmp_path)
    r = b.complete(req1())
    assert (r.value.score, r.cached, r.raw) == (7, False, "Here it is: " + GOOD) and b.calls == 1
    again = Scripted(cache_dir=tmp_path)  # no answers left: a call would fail
    hit = again.complete(req1())
    assert (hit.value.score, hit.cached, hit.raw, again.calls) == (7, True, "Here it is: " + GOOD, 0)
    assert hit.usage.model_dump() == {"backend": "scripted:my-model", "model": "my-model", "input_tokens": 10,
                                      "output_tokens": 5, "latency_s": 0.0, "cost_usd": 0.0, "cached": True}
    assert again.usage == [hit.usage] and again.usage_summary()["cached"] == 1
    assert Scripted(GOOD).complete(req1()).cached is False  # no cache dir: nothing kept


def test_a_cached_answer_the_schema_no_longer_accepts_is_asked_again(tmp_path):
    b = Scripted(GOOD, cache_dir=tmp_path)
    b.complete(req1())
    key = b.cache_key(req1())
    b.cache.put_json("model", key, {"value": {"score": 99, "rationale": "stale"}, "raw": "", "input_tokens": 1})
    fresh = Scripted('{"score": 2, "rationale": "new"}', cache_dir=tmp_path)
    r = fresh.complete(req1())
    assert r.value.score == 2 and not r.cached and fresh.calls == 1
    b.cache.put_json("model", key, {"raw": "no value at all"})
    assert Scripted('{"score": 3, "rationale": "x"}', cache_dir=tmp_path).complete(req1()).value.score == 3
    # and the new answer replaced the broken entry
    hit = Scripted(cache_dir=tmp_path).complete(req1())
    assert hit.cached and hit.value.score == 3 and hit.usage.input_tokens == 10 and hit.usage.output_tokens == 5


def test_an_invalid_answer_is_reasked_once_with_the_error_and_tokens_add_up(tmp_path):
    seen = []

    class Recording(Scripted):
        def _call(self, req, repair):
            seen.append(repair)
            return super()._call(req, repair)

    b = Recording("not json", '{"score": 12, "rationale": "x"}', GOOD, cache_dir=tmp_path)
    with pytest.raises(BackendError) as ei:
        b.complete(req1())
    assert seen[0] is None and seen[1].startswith("no JSON object in the answer")
    e = ei.value
    assert (e.item, e.task) == ("pair 1", "t.score")
    assert e.reason == ("scripted:my-model answer failed validation twice: "
                        "score: Input should be less than or equal to 10")
    assert len(b.usage) == 1 and (b.usage[0].input_tokens, b.usage[0].output_tokens) == (20, 10)
    assert not b.cache.has("model", b.cache_key(req1()))  # a failure is not cached
    r = b.complete(req1())  # the next request starts afresh (no repair text)
    assert seen[2] is None and r.value.score == 7


def test_a_repaired_answer_counts_both_calls(tmp_path):
    b = Scripted('{"score": 7}', GOOD, cache_dir=tmp_path)
    r = b.complete(req1())
    assert r.value.score == 7 and r.raw == GOOD and b.calls == 2
    assert (r.usage.input_tokens, r.usage.output_tokens) == (20, 10)
    assert Scripted(cache_dir=tmp_path).complete(req1()).usage.input_tokens == 20


def test_backend_names():
    assert Scripted(model="m").name == "scripted:m"
    assert Scripted(model="").name == "scripted"
    assert ModelBackend("x").name == "base:x"


def test_each_attempt_takes_its_turn_in_the_apis_window_except_offline(monkeypatch, sleeps):
    from nextads_lib import ratelimit

    turns, seen = [], []
    monkeypatch.setattr(ratelimit, "acquire", lambda name, tokens=0.0, **kw: turns.append((name, tokens)))

    class Recording(Scripted):
        def _call(self, req, repair):
            seen.append(req)
            return super()._call(req, repair)

    r = req1()
    Recording(TransientError("503"), GOOD).complete(r)
    assert turns == [("scripted:my-model", ratelimit.estimate_tokens(r))] * 2 and turns[0][1] >= 2048
    assert seen == [r, r]  # the request itself is what each attempt sends

    class Offline(Scripted):
        kind = "offline"

    turns.clear()
    Offline(GOOD).complete(req1())
    assert turns == []  # offline answers are computed here: no API window


def test_the_cache_entry_names_its_backend_and_task(tmp_path):
    b = Scripted(GOOD, cache_dir=tmp_path)
    b.complete(req1())
    entry = b.cache.get_json("model", b.cache_key(req1()))
    assert entry == {"value": {"score": 7.0, "rationale": "ok"}, "raw": GOOD, "input_tokens": 10, "output_tokens": 5,
                     "backend": "scripted:my-model", "task": "t.score"}


def test_a_cache_entry_without_tokens_or_raw_text_reads_as_zero_and_empty(tmp_path):
    b = Scripted(cache_dir=tmp_path)
    b.cache.put_json("model", b.cache_key(req1()), {"value": {"score": 4, "rationale": "old"}})
    hit = b.complete(req1())
    assert hit.cached and hit.value.score == 4 and hit.raw == ""
    assert (hit.usage.input_tokens, hit.usage.output_tokens, b.calls) == (0, 0, 0)


def test_a_failed_answer_records_its_latency(sleeps):
    b = Scripted("nope", "still nope")
    with pytest.raises(BackendError):
        b.complete(req1())
    assert 0 <= b.usage[0].latency_s < 60


def test_the_wire_version_is_in_the_key():
    class V1(Scripted):
        wire_version = "wire-1"

    class V2(Scripted):
        wire_version = "wire-2"

    assert V1().cache_key(req1()) != V2().cache_key(req1())
    assert V1().cache_key(req1()) != Scripted().cache_key(req1())


def test_register_offline_keeps_the_handler():
    from nextads_lib.backends.base import OFFLINE_HANDLERS, register_offline

    def handler(req):
        return Score(score=1, rationale="r")

    assert register_offline("test_core.score")(handler) is handler
    try:
        assert OFFLINE_HANDLERS["test_core.score"] is handler
    finally:
        OFFLINE_HANDLERS.pop("test_core.score", None)


def test_usage_summary_counts_uncached_calls():
    us = [Usage(backend="b", model="m"), Usage(backend="b", model="m"), Usage(backend="b", model="m", cached=True)]
    assert summarize_usage(us)["calls"] == 2 and summarize_usage(us)["cached"] == 1
    assert ModelBackend().name == "base"


def test_an_answer_with_a_date_is_cached_as_json(tmp_path):
    import datetime as dt

    class When(BaseModel):
        at: dt.datetime

    r = ModelRequest(task="t.when", system="s", parts=[TextPart("x")], schema=When)
    assert Scripted('{"at": "2026-01-02T03:04:05"}', cache_dir=tmp_path).complete(r).value.at.day == 2
    hit = Scripted(cache_dir=tmp_path).complete(r)
    assert hit.cached and hit.value.at == dt.datetime(2026, 1, 2, 3, 4, 5)
