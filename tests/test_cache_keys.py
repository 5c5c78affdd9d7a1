"""Cache invalidation: every component of every cache key changes the key, and every stage's ``CODE_VERSION``
in it does (a stale cached result after a code change would otherwise go unnoticed). Components that must NOT
change a key (retry settings, the API key, a pair's rank) are checked too.

A version is patched in the globals of the function that reads it (``fn.__globals__``), so the tests follow a
function when it moves to another module; the expected outcome (differs / equal) is stated here, never computed
by the code under test."""

from __future__ import annotations

import inspect

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel

from nextads_lib import bench, pcg, pci, reflector
from nextads_lib.backends import get_backend
from nextads_lib.backends.base import ImagePart, ModelBackend, ModelRequest, TextPart, VideoPart
from nextads_lib.producer import get_producer
from nextads_lib.producer.base import Producer
from nextads_lib.schemas import BenchPair, ProducerRequest, Slot, Storyboard
from nextads_lib.store import Cache

from test_director import make_history, make_product  # noqa: E402  (shared small fixtures)


class Answer(BaseModel):
    text: str


class Answer2(BaseModel):
    text: str
    n: int = 0


def differs(before: str, after: str) -> bool:
    return isinstance(before, str) and len(before) == 64 and before != after


def patch_version(monkeypatch, fn, value: str = "test-version-x") -> None:
    """Set the ``CODE_VERSION`` that ``fn`` reads (its module's global) to ``value``."""
    fn = inspect.unwrap(getattr(fn, "__func__", fn))  # a decorated function's own (mutmut wraps each one)
    assert "CODE_VERSION" in fn.__globals__, f"{fn.__qualname__} reads no CODE_VERSION global"
    monkeypatch.setitem(fn.__globals__, "CODE_VERSION", value)


# ------------------------------------------------------------------------------------- model backends
def _req(**kw: Any) -> ModelRequest:
    base = dict(task="director.storyboard", system="You plan ads.", parts=[TextPart("hello")], schema=Answer,
                context={"product": "p1"})
    base.update(kw)
    return ModelRequest(**base)


def test_model_cache_key_covers_version_model_request_and_settings(monkeypatch, tmp_path):
    img_a, img_b = tmp_path / "a.png", tmp_path / "b.png"
    from PIL import Image  # noqa: PLC0415

    Image.new("RGB", (8, 8), (255, 0, 0)).save(img_a)
    Image.new("RGB", (8, 8), (0, 0, 255)).save(img_b)
    b = ModelBackend("m1", None, temperature=0.0)
    b.kind = "openai"
    k0 = b.cache_key(_req())
    assert b.cache_key(_req()) == k0  # deterministic
    variants = {
        "task": _req(task="judge.pairwise"),
        "system": _req(system="You judge ads."),
        "parts text": _req(parts=[TextPart("hello!")]),
        "parts image": _req(parts=[TextPart("hello"), ImagePart(str(img_a))]),
        "context": _req(context={"product": "p2"}),
        "schema": _req(schema=Answer2),
    }
    for what, r in variants.items():
        assert differs(k0, b.cache_key(r)), what
    ka = b.cache_key(_req(parts=[ImagePart(str(img_a))]))
    assert differs(ka, b.cache_key(_req(parts=[ImagePart(str(img_b))]))), "image bytes"
    other_model = ModelBackend("m2", None, temperature=0.0)
    other_model.kind = "openai"
    assert differs(k0, other_model.cache_key(_req())), "model"
    other_kind = ModelBackend("m1", None, temperature=0.0)
    other_kind.kind = "gemini"
    assert differs(k0, other_kind.cache_key(_req())), "backend kind"
    hot = ModelBackend("m1", None, temperature=0.7)
    hot.kind = "openai"
    assert differs(k0, hot.cache_key(_req())), "a model setting"
    # retry, timeout, price and credentials do not change the answer: same key
    calm = ModelBackend("m1", None, temperature=0.0, max_attempts=9, backoff_s=3.0, max_backoff_s=4.0,
                        timeout_s=99, api_key="sk-other", price_table={"x": 1})
    calm.kind = "openai"
    assert calm.cache_key(_req()) == k0
    patch_version(monkeypatch, ModelBackend.cache_key)
    assert differs(k0, b.cache_key(_req())), "backends CODE_VERSION"


def test_model_cache_key_covers_video_bytes_and_frame_count(tmp_path):
    va, vb = tmp_path / "a.mp4", tmp_path / "b.mp4"
    va.write_bytes(b"not really a video a")
    vb.write_bytes(b"not really a video b")
    b = ModelBackend("m", None)
    k = b.cache_key(_req(parts=[VideoPart(va, 8)]))
    assert differs(k, b.cache_key(_req(parts=[VideoPart(vb, 8)])))
    assert differs(k, b.cache_key(_req(parts=[VideoPart(va, 4)])))


def test_offline_key_follows_the_bytes_of_the_handler_module(tmp_path, monkeypatch):
    """Editing the file that computes an offline answer invalidates the cached answers."""
    from nextads_lib.backends import base as bbase  # noqa: PLC0415

    mod_path = tmp_path / "fake_handler_mod.py"
    mod_path.write_text("def handle(req):\n    return {'text': 'one'}\n")
    spec = importlib.util.spec_from_file_location("fake_handler_mod", mod_path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setitem(sys.modules, "fake_handler_mod", mod)
    monkeypatch.setitem(bbase.OFFLINE_HANDLERS, "test.fake", mod.handle)
    off = get_backend("offline")
    req = _req(task="test.fake")
    k0 = off.cache_key(req)
    assert differs(ModelBackend.cache_key(off, req), k0)  # the handler's bytes are in the key
    mod_path.write_text("def handle(req):\n    return {'text': 'two'}  # edited\n")
    assert differs(k0, off.cache_key(req))


# ------------------------------------------------------------------------------------------ producers
def _storyboard(hook: str = "Meet Aurora") -> Storyboard:
    slots = [Slot(index=0, start_s=0.0, end_s=2.0, role="hook", camera="static", composition="hero",
                  narration="", on_screen_text="Hi", assets=["a"], pacing="fast"),
             Slot(index=1, start_s=2.0, end_s=4.0, role="cta", camera="static", composition="end card",
                  narration="", on_screen_text="", assets=["a"], pacing="fast")]
    return Storyboard(product_id="aurora", user_id="u1", backend="offline", personalized=True, hook=hook,
                      duration_s=4.0, slots=slots, cta="Shop now")


def test_producer_cache_key_covers_version_name_settings_request_and_asset_bytes(monkeypatch, tmp_path):
    from PIL import Image  # noqa: PLC0415

    a, a2 = tmp_path / "a.png", tmp_path / "a2.png"
    Image.new("RGB", (8, 8), (255, 0, 0)).save(a)
    Image.new("RGB", (8, 8), (255, 0, 0)).save(a2)  # same bytes, other name
    prod = get_producer("compositor", music=False, narration=False)

    def req(**kw: Any) -> ProducerRequest:
        base = dict(storyboard=_storyboard(), assets={"a": str(a)}, width=64, height=96, fps=5.0, seed=1)
        base.update(kw)
        return ProducerRequest(**base)

    k0 = prod.cache_key(req())
    assert prod.cache_key(req(assets={"a": str(a2)})) == k0  # keyed by bytes, not by name
    for what, r in {"storyboard": req(storyboard=_storyboard("Meet Aurora!")), "seed": req(seed=2),
                    "fps": req(fps=6.0), "size": req(width=96, height=64)}.items():
        assert differs(k0, prod.cache_key(r)), what
    Image.new("RGB", (8, 8), (0, 255, 0)).save(a2)
    assert differs(k0, prod.cache_key(req(assets={"a": str(a2)}))), "asset bytes"
    assert differs(k0, get_producer("compositor", music=True, narration=False).cache_key(req())), "settings"
    patch_version(monkeypatch, Producer.cache_key)
    assert differs(k0, prod.cache_key(req())), "producer CODE_VERSION"


# ------------------------------------------------------------------------------------------ pair keys
def _pair(task: str = "pcg", **kw: Any) -> BenchPair:
    base = dict(pair_id="u1__p1", task=task, user_id="u1", product_id="p1", compatibility=0.5,
                matched_topic="coffee", rank=1)
    base.update(kw)
    return BenchPair(**base)


@pytest.fixture(scope="module")
def things(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    return {"product": make_product(root), "product2": make_product(root, pid="other-beans", name="Other Beans"),
            "history": make_history(root, "u1"), "history2": make_history(root, "u2")}


def _versions_of_pair_key(monkeypatch, fn, key, *, module_name: str) -> None:
    """The stage's own version, the Director's and the Producer's each change the key."""
    import nextads_lib.director as director_pkg  # noqa: PLC0415
    import nextads_lib.producer as producer_pkg  # noqa: PLC0415

    k0 = key()
    with monkeypatch.context() as m:
        patch_version(m, fn)
        assert differs(k0, key()), f"{module_name} CODE_VERSION"
    with monkeypatch.context() as m:
        m.setattr(director_pkg, "CODE_VERSION", "director-test")
        assert differs(k0, key()), "director CODE_VERSION"
    with monkeypatch.context() as m:
        m.setattr(producer_pkg, "CODE_VERSION", "producer-test")
        assert differs(k0, key()), "producer CODE_VERSION"
    assert key() == k0


def test_pcg_pair_key_covers_versions_settings_pair_product_and_history(monkeypatch, things):
    s = pcg._settings("nextads", "offline", "compositor", 0.3, 8.0, "9:16", 7, None, None, 10.0)
    p, h = things["product"], things["history"]
    k0 = pcg._pair_key(s, _pair(), p, h)
    _versions_of_pair_key(monkeypatch, pcg._pair_key, lambda: pcg._pair_key(s, _pair(), p, h), module_name="pcg")
    for field, value in {"director_backend": "openai:gpt-4o", "producer_backend": "wan:x", "compat_threshold": 0.4,
                         "duration_s": 9.0, "aspect_ratio": "16:9", "seed": 8, "width": 64, "height": 64,
                         "fps": 12.0}.items():
        assert differs(k0, pcg._pair_key({**s, field: value}, _pair(), p, h)), field
    assert differs(k0, pcg._pair_key(s, _pair(pair_id="u1__p2", product_id="p2"), p, h)), "pair"
    assert differs(k0, pcg._pair_key(s, _pair(), things["product2"], h)), "product"
    assert differs(k0, pcg._pair_key(s, _pair(), p, things["history2"])), "history (nextads)"
    # the benchmark's ranking fields do not change what is rendered
    assert pcg._pair_key(s, _pair(compatibility=0.9, rank=3, matched_topic="gaming"), p, h) == k0
    # a generic plan sees no user history: another history, same key
    g = {**s, "system": "generic"}
    assert pcg._pair_key(g, _pair(), p, h) == pcg._pair_key(g, _pair(), p, things["history2"])
    assert differs(k0, pcg._pair_key(g, _pair(), p, h)), "system"


def test_pci_pair_key_covers_versions_settings_pair_product_history_and_host_bytes(monkeypatch, things, tmp_path):
    host = tmp_path / "host.mp4"
    host.write_bytes(b"host video bytes, version 1")
    s = pci._settings("nextads", "offline", "compositor", 6.0, 7, None)
    p, h = things["product"], things["history"]

    def pair(**kw: Any) -> BenchPair:
        return _pair("pci", host_item_id="v9", host_video=str(host), **kw)

    k0 = pci._pair_key(s, pair(), p, h)
    _versions_of_pair_key(monkeypatch, pci._pair_key, lambda: pci._pair_key(s, pair(), p, h), module_name="pci")
    for field, value in {"director_backend": "gemini:g", "producer_backend": "veo:v", "duration_s": 5.0, "seed": 8,
                         "fps": 12.0}.items():
        assert differs(k0, pci._pair_key({**s, field: value}, pair(), p, h)), field
    assert differs(k0, pci._pair_key(s, pair(), things["product2"], h)), "product"
    assert differs(k0, pci._pair_key(s, pair(), p, things["history2"])), "history"
    assert pci._pair_key(s, pair(rank=4, compatibility=0.1), p, h) == k0
    host.write_bytes(b"host video bytes, version 2")
    assert differs(k0, pci._pair_key(s, pair(), p, h)), "host video bytes"


def test_verify_pair_key_covers_both_versions_settings_files_product_and_history(monkeypatch, things, tmp_path):
    d = tmp_path / "u1__p1"
    d.mkdir()
    (d / "plan.json").write_text('{"v": 1}')
    (d / "creative.mp4").write_bytes(b"video 1")
    settings = {"judge": "offline", "max_rounds": 2}
    p, h = things["product"], things["history"]
    k0 = reflector._pair_key(settings, d, p, h)
    with monkeypatch.context() as m:
        patch_version(m, reflector._pair_key)
        assert differs(k0, reflector._pair_key(settings, d, p, h)), "reflector CODE_VERSION"
    with monkeypatch.context() as m:
        m.setattr(reflector.V, "CODE_VERSION", "verifier-test")
        assert differs(k0, reflector._pair_key(settings, d, p, h)), "verifier CODE_VERSION"
    assert reflector._pair_key(settings, d, p, h) == k0
    assert differs(k0, reflector._pair_key({**settings, "max_rounds": 3}, d, p, h)), "settings"
    assert differs(k0, reflector._pair_key(settings, d, things["product2"], h)), "product"
    assert differs(k0, reflector._pair_key(settings, d, p, things["history2"])), "history"
    (d / "creative.mp4").write_bytes(b"video 2")
    k1 = reflector._pair_key(settings, d, p, h)
    assert differs(k0, k1), "creative bytes"
    (d / "integrated.mp4").write_bytes(b"spliced")
    assert differs(k1, reflector._pair_key(settings, d, p, h)), "a PCI pair's integrated video"


# -------------------------------------------------------------------------------------------- bench
def test_bench_caches_are_keyed_by_content_and_version(monkeypatch, tmp_path):
    """The tags, the product similarities and the host checks are recomputed when their input or
    bench.CODE_VERSION changes, and read from the cache otherwise (the embedder is counted, not run)."""
    from nextads_lib import embed  # noqa: PLC0415

    calls: list[str] = []

    def fake_dist(texts, temperature):
        calls.append("tags")
        return np.full((len(texts), 16), 1 / 16)

    def fake_sim(a, b):
        calls.append("sim")
        return np.zeros((len(a), len(b)))

    monkeypatch.setattr(embed, "topic_distribution", fake_dist)
    monkeypatch.setattr(embed, "similarity", fake_sim)
    cache = Cache(tmp_path / "cache")
    bench.tag_items(["a coffee", "a game"], cache)
    bench.tag_items(["a coffee", "a game"], cache)
    assert calls == ["tags"]
    bench.tag_items(["a coffee", "a games"], cache)
    assert calls == ["tags", "tags"]
    prod = make_product(tmp_path)
    bench.topic_product_similarity([prod], cache)
    bench.topic_product_similarity([prod], cache)
    assert calls == ["tags", "tags", "sim"]
    bench.topic_product_similarity([prod.model_copy(update={"description": "Other words."})], cache)
    assert calls == ["tags", "tags", "sim", "sim"]
    patch_version(monkeypatch, bench.tag_items)
    bench.tag_items(["a coffee", "a game"], cache)
    bench.topic_product_similarity([prod], cache)
    assert calls == ["tags", "tags", "sim", "sim", "tags", "sim"]


def test_bench_host_check_is_keyed_by_bytes_and_version(monkeypatch, tmp_path):
    import nextads_lib.media as media  # noqa: PLC0415

    probes: list[str] = []
    real_probe = media.probe

    def counting_probe(p):
        probes.append(str(p))
        return real_probe(p)

    monkeypatch.setattr(media, "probe", counting_probe)
    cache = Cache(tmp_path / "cache")
    v = tmp_path / "host.mp4"
    v.write_bytes(b"garbage, not a video")
    err = bench.check_video(v, cache)
    assert err and "undecodable" in err
    assert bench.check_video(v, cache) == err and len(probes) == 1
    v.write_bytes(b"other garbage")
    bench.check_video(v, cache)
    assert len(probes) == 2
    patch_version(monkeypatch, bench.check_video)
    bench.check_video(v, cache)
    assert len(probes) == 3



# ------------------------------------------------------------------------------------------- director
def test_director_profile_and_annotation_caches_follow_version_backend_and_inputs(monkeypatch, tmp_path):
    """model_user, annotate_video and model_user_from_videos: a second call is served by the cache (no model
    call); the Director's CODE_VERSION, the history and the video's bytes each force a new call."""
    from nextads_lib import director  # noqa: PLC0415

    from test_pci import make_clip, make_video_history  # noqa: PLC0415

    root = tmp_path / "h"
    root.mkdir()
    shared = make_clip(root / "street.mp4", (60, 60, 70), moving=False)
    hist = make_video_history(root, "u1", [("Latte art", "Latte art practice at the cafe, coffee and milk foam"),
                                           ("Street walk", "A calm walk through the city at dusk")], (139, 94, 60),
                              shared)
    backend = get_backend("offline")  # no model cache: every call the Director makes is counted
    cache = Cache(tmp_path / "cache")

    def calls() -> int:
        return len(backend.usage)

    director.model_user(hist, backend, cache)
    n = calls()
    director.model_user(hist, backend, cache)
    assert calls() == n, "model_user: cached"
    director.model_user(hist.model_copy(update={"items": hist.items[:1]}), backend, cache)
    assert calls() == n + 1, "model_user: another history"
    item = hist.items[0]
    director.annotate_video(item, backend, cache)
    n = calls()
    director.annotate_video(item, backend, cache)
    assert calls() == n, "annotate_video: cached"
    director.annotate_video(item, backend, cache, n_frames=4)
    assert calls() == n + 1, "annotate_video: frame count"
    director.model_user_from_videos(hist, backend, cache)
    n = calls()
    director.model_user_from_videos(hist, backend, cache)
    assert calls() == n, "model_user_from_videos: cached"
    make_clip(Path(item.video_path), (10, 200, 10), moving=True)  # the same file, other bytes
    director.model_user_from_videos(hist, backend, cache)
    assert calls() == n + 2, "a changed video: annotated again and the profile recomputed"
    n = calls()
    patch_version(monkeypatch, director.model_user)
    patch_version(monkeypatch, director.annotate_video)
    patch_version(monkeypatch, director.model_user_from_videos)
    director.model_user(hist, backend, cache)
    assert calls() == n + 1, "model_user: director CODE_VERSION"
    director.annotate_video(item, backend, cache)
    assert calls() == n + 2, "annotate_video: director CODE_VERSION"
    n = calls()
    director.model_user_from_videos(hist, backend, cache)
    assert calls() == n + 2, "model_user_from_videos: director CODE_VERSION (the street video's annotation and " \
        "the profile; the first video's annotation was redone above)"
