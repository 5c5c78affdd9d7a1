"""sora and veo Producers against local wire-format servers (tests/fakeapi/video_routes.py), with the
official openai and google-genai clients as shipped, configured only through their environment variables."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nextads_lib import media
from nextads_lib.producer import ProducerError, get_producer, label_present
from nextads_lib.schemas import ProducerRequest, Slot, Storyboard

_spec = importlib.util.spec_from_file_location("video_routes", Path(__file__).parent / "fakeapi" / "video_routes.py")
video_routes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(video_routes)


@pytest.fixture(scope="module")
def server():
    with video_routes.VideoServer() as s:
        yield s


@pytest.fixture
def env(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/v1")
    monkeypatch.setenv("GEMINI_API_KEY", "gm-test")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_VERTEX_BASE_URL", server.url + "/")
    for var in ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GENAI_API_VERSION"):
        monkeypatch.delenv(var, raising=False)
    return server


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    p = tmp_path_factory.mktemp("img") / "collage.png"
    Image.new("RGB", (120, 90), (30, 120, 200)).save(p)
    return str(p)


def _request(image, composition="product hero shot", aspect="9:16", duration=10.0, **kw):
    cut = round(duration / 2, 2)
    slots = [Slot(index=0, start_s=0.0, end_s=cut, role="hook", camera="zoom_in", composition=composition,
                  narration="Meet it.", on_screen_text="New"),
             Slot(index=1, start_s=cut, end_s=duration, role="cta", camera="static", composition="end card")]
    sb = Storyboard(product_id="p", backend="offline", personalized=False, hook="Hi", aspect_ratio=aspect,
                    duration_s=duration, slots=slots, cta="Buy now")
    return ProducerRequest(storyboard=sb, collage_path=image, aspect_ratio=aspect, width=80, height=128, fps=6.0,
                           seed=1, **kw)


def test_sora_creates_polls_downloads_and_retimes(env, image, tmp_path):
    n0 = len(env.log)
    prod = get_producer("sora:sora-2", poll_interval_s=0.01, narration=False)
    man = prod.render(_request(image), tmp_path / "s.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "sora.create"]
    assert [c["fields"]["seconds"] for c in creates] == ["12"]  # 10 s covered by one 12 s clip
    assert creates[0]["fields"]["size"] == "720x1280" and creates[0]["files"]["input_reference"] > 0
    assert creates[0]["auth"] == "Bearer sk-test"
    assert any(e["route"] == "sora.retrieve" for e in env.log[n0:])
    frames = media.read_frames(tmp_path / "s.mp4")
    assert frames.shape == (60, 128, 80, 3) and man.n_frames == 60
    assert man.cost_usd == pytest.approx(1.2) and man.backend == "sora:sora-2"
    assert all(label_present(f) for f in frames[::10])


def test_sora_per_slot_and_16x9(env, image, tmp_path):
    n0 = len(env.log)
    prod = get_producer("sora:sora-2", poll_interval_s=0.01, per="slot", narration=False)
    man = prod.render(_request(image, aspect="16:9", duration=14.0).model_copy(update={"width": 128, "height": 80}),
                      tmp_path / "s.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "sora.create"]
    assert [c["fields"]["seconds"] for c in creates] == ["8", "8"] and creates[0]["fields"]["size"] == "1280x720"
    assert media.count_frames(tmp_path / "s.mp4") == 84 == man.n_frames


@pytest.mark.parametrize("word", ["REJECT", "FORBIDDEN"])
def test_sora_moderation_is_the_items_failure(env, image, tmp_path, word):
    prod = get_producer("sora:sora-2", poll_interval_s=0.01, narration=False)
    with pytest.raises(ProducerError) as ei:
        prod.render(_request(image, composition=f"{word} scene"), tmp_path / "m.mp4")
    assert ei.value.reason.startswith("moderation: ") and "creative p" in ei.value.item
    assert not (tmp_path / "m.mp4").exists()


def test_sora_missing_key_names_the_variable(monkeypatch, image, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ProducerError, match="OPENAI_API_KEY"):
        get_producer("sora:sora-2").render(_request(image), tmp_path / "x.mp4")


def test_veo_generates_with_image_and_last_frame(env, image, tmp_path):
    n0 = len(env.log)
    prod = get_producer("veo:veo-3.0-fast-generate-001", poll_interval_s=0.01, narration=False)
    man = prod.render(_request(image, last_frame=image), tmp_path / "v.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "veo.create"]
    assert [c["parameters"]["durationSeconds"] for c in creates] == [8, 4]
    assert all(c["has_image"] for c in creates) and [c["has_last_frame"] for c in creates] == [False, True]
    assert creates[0]["parameters"]["aspectRatio"] == "9:16" and creates[0]["key"] == "gm-test"
    assert sum(e["route"] == "veo.operation" for e in env.log[n0:]) == 4  # two polls per clip
    assert media.count_frames(tmp_path / "v.mp4") == 60 == man.n_frames
    assert man.cost_usd == pytest.approx(12 * 0.15)
    last = media.read_frames(tmp_path / "v.mp4", [59])[0].astype(np.float32)
    assert np.abs(last[60:, :, 2].mean() - 200) < 25  # pinned to the (blue) last frame


def test_veo_filtered_output_is_moderation(env, image, tmp_path):
    prod = get_producer("veo:veo-3.0-generate-001", poll_interval_s=0.01, narration=False)
    with pytest.raises(ProducerError, match="moderation: Video was filtered"):
        prod.render(_request(image, composition="FORBIDDEN scene"), tmp_path / "m.mp4")
