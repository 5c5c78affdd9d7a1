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
    monkeypatch.setenv("NEXTADS_POLL_INTERVAL_S", "0.01")  # producers a run builds from their names poll fast too
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


def test_veo_3_0_takes_no_last_frame_and_sets_generate_audio(env, image, tmp_path):
    n0 = len(env.log)
    prod = get_producer("veo:veo-3.0-fast-generate-001", poll_interval_s=0.01, narration=False)
    man = prod.render(_request(image, last_frame=image), tmp_path / "v.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "veo.create"]
    assert [c["parameters"]["durationSeconds"] for c in creates] == [8, 4]
    assert all(c["has_image"] for c in creates) and [c["has_last_frame"] for c in creates] == [False, False]
    assert [c["parameters"]["generateAudio"] for c in creates] == [True, True]
    assert creates[0]["parameters"]["aspectRatio"] == "9:16" and creates[0]["key"] == "gm-test"
    assert sum(e["route"] == "veo.operation" for e in env.log[n0:]) == 4  # two polls per clip
    assert media.count_frames(tmp_path / "v.mp4") == 60 == man.n_frames
    assert man.cost_usd == pytest.approx(12 * 0.15)  # veo-3.0-fast with audio, prices.yaml


def test_veo_3_1_takes_the_last_frame_on_the_last_clip(env, image, tmp_path):
    n0 = len(env.log)
    prod = get_producer("veo:veo-3.1-fast-generate-preview", poll_interval_s=0.01, narration=False,
                        generate_audio=False)
    man = prod.render(_request(image, last_frame=image), tmp_path / "v.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "veo.create"]
    assert [c["has_last_frame"] for c in creates] == [False, True]
    assert [c["parameters"]["generateAudio"] for c in creates] == [False, False]
    assert man.cost_usd == pytest.approx(12 * 0.10)  # the no-audio rate
    last = media.read_frames(tmp_path / "v.mp4", [59])[0].astype(np.float32)
    assert np.abs(last[60:, :, 2].mean() - 200) < 25  # pinned to the (blue) last frame


def test_veo_2_asks_only_for_lengths_it_takes_and_no_audio(env, image, tmp_path):
    n0 = len(env.log)
    prod = get_producer("veo:veo-2.0-generate-001", poll_interval_s=0.01, narration=False)
    prod.render(_request(image, last_frame=image), tmp_path / "v.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "veo.create"]
    assert [c["parameters"]["durationSeconds"] for c in creates] == [8, 5]
    assert all("generateAudio" not in c["parameters"] and not c["has_last_frame"] for c in creates)
    with pytest.raises(ProducerError, match=r"clip lengths \[4\]"):
        get_producer("veo:veo-2.0-generate-001", allowed_seconds=[4, 8])


def test_veo_polling_is_retried_on_transient_errors(env, image, tmp_path):
    n0 = len(env.log)
    env.fail_polls = [503, 429]
    prod = get_producer("veo:veo-3.0-generate-001", poll_interval_s=0.01, backoff_s=0.01, narration=False)
    man = prod.render(_request(image, duration=4.0), tmp_path / "v.mp4")
    assert env.fail_polls == [] and man.n_frames == 24
    assert sum(e["route"] == "veo.operation" for e in env.log[n0:]) == 4  # two failed + two answered polls


def test_veo_reference_images_only_where_the_model_takes_them(env, image, tmp_path):
    n0 = len(env.log)
    get_producer("veo:veo-3.1-generate-preview", poll_interval_s=0.01, narration=False,
                 collage_as="reference").render(_request(image, duration=4.0), tmp_path / "a.mp4")
    get_producer("veo:veo-3.0-generate-001", poll_interval_s=0.01, narration=False,
                 collage_as="reference").render(_request(image, duration=4.0), tmp_path / "b.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "veo.create"]
    assert creates[0]["reference_images"] == ["ASSET"] and not creates[0]["has_image"]
    assert creates[1]["reference_images"] == [] and creates[1]["has_image"]


def _vertex_client(server):
    from google import genai
    from google.genai import types

    return genai.Client(vertexai=True, api_key="gm-test", http_options=types.HttpOptions(base_url=server.url + "/"))


@pytest.mark.parametrize("model,cfg", [
    ("veo-3.0-generate-001", {"last_frame": "img"}),
    ("veo-2.0-generate-001", {"generate_audio": True}),
    ("veo-2.0-generate-001", {"duration_seconds": 4}),
    ("veo-3.0-generate-001", {"reference_images": "img"}),
])
def test_fake_veo_rejects_what_the_model_does_not_take(env, image, model, cfg):
    from google.genai import errors, types

    im = types.Image(image_bytes=Path(image).read_bytes(), mime_type="image/png")
    cfg = {k: (im if v == "img" and k == "last_frame" else
               [types.VideoGenerationReferenceImage(image=im, reference_type="asset")] if v == "img" else v)
           for k, v in cfg.items()}
    client = _vertex_client(env)  # kept alive: a collected client closes its connection pool
    with pytest.raises(errors.APIError) as e:
        client.models.generate_videos(model=model, source=types.GenerateVideosSource(prompt="x", image=im),
                                      config=types.GenerateVideosConfig(**cfg))
    assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT"


def test_fake_sora_rejects_a_reference_of_another_size_and_a_missing_key(env, image):
    import openai

    c = openai.OpenAI(api_key="sk-test", base_url=env.url + "/v1", max_retries=0)
    with pytest.raises(openai.BadRequestError) as e:
        c.videos.create(model="sora-2", prompt="x", seconds="4", size="720x1280",
                        input_reference=("r.png", Path(image).read_bytes(), "image/png"))  # 120x90
    assert e.value.body["param"] == "input_reference"
    with pytest.raises(openai.BadRequestError):
        c.videos.create(model="sora-2", prompt="x", seconds="4", size="1024x1792")  # a sora-2-pro size
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(urllib.request.Request(env.url + "/v1/videos/video_0001"))
    assert e.value.code == 401


def test_veo_filtered_output_is_moderation(env, image, tmp_path):
    prod = get_producer("veo:veo-3.0-generate-001", poll_interval_s=0.01, narration=False)
    with pytest.raises(ProducerError, match="moderation: Video was filtered"):
        prod.render(_request(image, composition="FORBIDDEN scene"), tmp_path / "m.mp4")


# ------------------------------------------------------------------------------------ conditioning
def _solid(path, color, size=(120, 90)):
    Image.new("RGB", size, color).save(path)
    return str(path)


def _ref_pixels(server, i=-1):
    import io

    return np.asarray(Image.open(io.BytesIO(server.references[i])).convert("RGB"))


def test_sora_paper_protocol_sends_the_collage_at_the_requested_size(env, tmp_path):
    collage = _solid(tmp_path / "collage.png", (30, 120, 200))
    logo = _solid(tmp_path / "logo.png", (220, 30, 30))
    req = _request(collage, assets={"logo": logo})
    req.storyboard.slots[0].assets.append("logo")
    req.storyboard.product_id = "brisa-soda"
    n0 = len(env.log)
    get_producer("sora:sora-2", poll_interval_s=0.01, narration=False, slot_layouts=False).render(req, tmp_path / "a.mp4")
    create = [e for e in env.log[n0:] if e["route"] == "sora.create"][0]
    assert create["reference_size"] == (720, 1280) and create["fields"]["size"] == "720x1280"
    ref = _ref_pixels(env)
    assert ref.shape == (1280, 720, 3) and np.abs(ref[640, 360].astype(int) - (30, 120, 200)).max() < 12
    assert "Brisa Citrus Fizz by Brisa" in create["fields"]["prompt"] and "brisa soda" not in create["fields"]["prompt"]
    # the extended protocol's per-slot layout: slot 0 shows its own asset (the red logo), not the collage
    n0 = len(env.log)
    get_producer("sora:sora-2", poll_interval_s=0.01, narration=False, slot_layouts=True).render(req, tmp_path / "b.mp4")
    assert [e["reference_size"] for e in env.log[n0:] if e["route"] == "sora.create"] == [(720, 1280)]
    assert np.abs(_ref_pixels(env)[640, 360].astype(int) - (220, 30, 30)).max() < 12


def test_sora_pci_first_clip_starts_from_the_integration_frame(env, tmp_path):
    collage = _solid(tmp_path / "collage.png", (30, 120, 200))
    frame = _solid(tmp_path / "frame.png", (40, 200, 40), (160, 90))
    n0 = len(env.log)
    get_producer("sora:sora-2", poll_interval_s=0.01, narration=False, per="slot").render(
        _request(collage, duration=14.0, first_frame=frame, last_frame=frame), tmp_path / "p.mp4")
    creates = [e for e in env.log[n0:] if e["route"] == "sora.create"]
    assert [c["reference_size"] for c in creates] == [(720, 1280)] * 2
    first, second = _ref_pixels(env, -2), _ref_pixels(env, -1)
    assert np.abs(first[640, 360].astype(int) - (40, 200, 40)).max() < 12  # the host's integration frame
    assert np.abs(second[640, 360].astype(int) - (30, 120, 200)).max() < 12  # then the collage


def test_sora_2_pro_high_res_is_priced_at_its_own_rate(env, image, tmp_path):
    n0 = len(env.log)
    man = get_producer("sora:sora-2-pro", poll_interval_s=0.01, narration=False, high_res=True).render(
        _request(image, duration=4.0), tmp_path / "h.mp4")
    create = [e for e in env.log[n0:] if e["route"] == "sora.create"][0]
    assert create["fields"]["size"] == "1024x1792" and create["reference_size"] == (1024, 1792)
    assert man.cost_usd == pytest.approx(4 * 0.50)
    with pytest.raises(ProducerError, match="only available on sora-2-pro"):
        get_producer("sora:sora-2", high_res=True)


@pytest.mark.slow
def test_pcg_run_with_sora_sends_each_pairs_collage_at_the_api_size(env, tmp_path):
    """A PCG run (default settings = the paper protocol's conditioning) through sora:sora-2 against the local
    videos server: every create carries the pair's own collage as input_reference, at exactly the API size."""
    from nextads_lib import pcg
    from nextads_lib.config import resolve
    from nextads_lib.store import read_json

    from test_pcg import TINY, make_bench

    bench = make_bench(tmp_path / "data")
    n0 = len(env.log)
    r0 = len(env.references)
    s = pcg.run_pcg(bench, "nextads", "offline", "sora:sora-2", workers=1, progress=False, limit_users=1, **TINY)
    creates = [e for e in env.log[n0:] if e["route"] == "sora.create"]
    assert s.n_pairs == 2 and s.failed == 0  # (one pair may be a fallback plan: extended threshold today)
    assert len(creates) == 2  # a 4 s plan is one 4 s clip per pair
    assert all(c["reference_size"] == (720, 1280) and c["fields"]["size"] == "720x1280" for c in creates)
    run_dir = bench.run_dir("pcg", s.run_name)
    collages = sorted(read_json(p)["collage_path"] for p in run_dir.rglob("grounding.json"))
    assert len(collages) == 2
    refs = [np.asarray(Image.open(__import__("io").BytesIO(b)).convert("RGB")).astype(float)
            for b in env.references[r0:]]
    for ref in refs:
        # the reference is one of the collages, letterboxed: its centre matches that collage's centre
        centre = ref[600:680, 320:400].mean(axis=(0, 1))
        diffs = []
        for c in collages:
            im = np.asarray(Image.open(resolve(c)).convert("RGB")).astype(float)
            h, w = im.shape[:2]
            diffs.append(np.abs(im[h // 2 - h // 32: h // 2 + h // 32, w // 2 - w // 18: w // 2 + w // 18]
                                .mean(axis=(0, 1)) - centre).max())
        assert min(diffs) < 25, diffs
    # the paper protocol's creative is the clip itself: Sora's own sound (its 440 Hz tone, no voice-over or music)
    # and Sora's own frames (the stand-in's vertical gradient, brighter at the bottom), no CTA card at the end
    from fakeapi.video_routes import SORA_TONE_HZ

    for d in sorted(p.parent for p in run_dir.rglob("creative.mp4")):
        audio = media.read_audio(d / "creative.mp4", rate=16000)
        assert audio.size > 0.9 * 16000 * TINY["duration_s"]
        spectrum = np.abs(np.fft.rfft(audio))
        peak_hz = np.argmax(spectrum) * 16000 / audio.size
        assert abs(peak_hz - SORA_TONE_HZ) < 5, peak_hz
        assert spectrum[np.fft.rfftfreq(audio.size, 1 / 16000) > 1000].max() < 0.05 * spectrum.max()
        frames = media.read_frames(d / "creative.mp4").astype(float)
        assert len(frames) == round(TINY["duration_s"] * TINY["fps"])
        h = frames.shape[1]
        top = frames[:, int(h * 0.35):int(h * 0.45)].mean(axis=(1, 2, 3))
        bottom = frames[:, int(h * 0.85):int(h * 0.95)].mean(axis=(1, 2, 3))
        assert (bottom > top * 1.15).all()  # the clip's gradient runs through every frame, the last one included


def test_render_cache_key_changes_with_the_conditioning_version(image, monkeypatch):
    from nextads_lib.producer import conditioning

    prod = get_producer("sora:sora-2")
    k1 = prod.cache_key(_request(image))
    monkeypatch.setattr(conditioning, "CODE_VERSION", conditioning.CODE_VERSION + 1)
    assert prod.cache_key(_request(image)) != k1
    monkeypatch.undo()
    assert prod.cache_key(_request(image)) == k1
    assert get_producer("sora:sora-2", slot_layouts=True).cache_key(_request(image)) != k1


# ------------------------------------------------------------------------------ slot-level edits (issue 17)
def _three(image, **kw):
    slots = [Slot(index=i, start_s=4.0 * i, end_s=4.0 * (i + 1), role=r, camera="static", composition=c,
                  narration="", on_screen_text="")
             for i, (r, c) in enumerate((("hook", "a mug on a table"), ("body", "beans poured"), ("cta", "end card")))]
    sb = Storyboard(product_id="p", backend="offline", personalized=False, hook="Hi", aspect_ratio="9:16",
                    duration_s=12.0, slots=slots, cta="Buy now")
    return ProducerRequest(storyboard=sb, collage_path=image, aspect_ratio="9:16", width=80, height=128, fps=6.0,
                           seed=1, **kw)


def _patched(req, slot=1, composition="beans poured in slow motion, warm light"):
    sb = req.storyboard
    slots = [s.model_copy(update={"composition": composition}) if s.index == slot else s for s in sb.slots]
    return req.model_copy(update={"storyboard": sb.model_copy(update={"slots": slots})})


def _diff(a, b):
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def test_sora_slot_edit_remixes_only_the_clip_of_that_slot(env, image, tmp_path):
    from nextads_lib.producer import edit, post

    p = get_producer("sora:sora-2", poll_interval_s=0.0, post_production=False)
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    job = man.settings["clips"][0]["job"]
    assert man.settings["clips"][0]["slots"] == [0, 1, 2]  # one 12 s clip covers the creative
    new_req = _patched(req)
    n_create = sum(e["route"] == "sora.create" for e in env.log)
    rep = edit.regenerate_slot(tmp_path / "a.mp4", new_req, 1, tmp_path / "b.mp4", p, man)
    remix = [e for e in env.log if e["route"] == "sora.remix"][-1]
    assert remix["id"] == job and set(remix["body"]) == {"prompt"} and "slow motion" in remix["body"]["prompt"]
    assert sum(e["route"] == "sora.create" for e in env.log) == n_create  # no new generation: the API's edit
    assert "remix" in rep.note
    a, b = media.read_frames(tmp_path / "a.mp4"), media.read_frames(tmp_path / "b.mp4")
    assert a.shape == b.shape
    sp = post.slot_spans(req.storyboard, req.fps)[1]
    outside = [i for i in range(len(a)) if not sp.start <= i < sp.stop]
    assert max(_diff(a[i], b[i]) for i in outside) < 2.0  # unchanged up to re-encoding
    assert np.mean([_diff(a[i], b[i]) for i in range(sp.start, sp.stop)]) > 5.0
    assert rep.frames_rendered == list(range(sp.start, sp.stop))
    assert all(label_present(f) for f in b[sp.start:sp.stop])


def test_sora_per_slot_edit_conditions_on_the_previous_slots_last_frame(env, image, tmp_path):
    from nextads_lib.producer import edit, post

    p = get_producer("sora:sora-2", poll_interval_s=0.0, post_production=False, per="slot")
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    rep = edit.regenerate_slot(tmp_path / "a.mp4", _patched(req, 2, "a bold end card"), 2, tmp_path / "b.mp4", p,
                               man, remix=False)
    create = [e for e in env.log if e["route"] == "sora.create"][-1]
    assert "a bold end card" in create["fields"]["prompt"] and create["reference_size"] == (720, 1280)
    assert create["fields"]["seconds"] == "4" and "previous slot" in rep.note
    a = media.read_frames(tmp_path / "a.mp4")
    sp = post.slot_spans(req.storyboard, req.fps)[2]
    ref = np.asarray(Image.open(__import__("io").BytesIO(env.references[-1])).convert("RGB"))
    # the reference is the creative's frame before the slot, fitted to the API size (no label re-added)
    want = post.fit_image(a[sp.start - 1], 720, 1280)
    assert _diff(ref[300:1000], want[300:1000]) < 6.0
    b = media.read_frames(tmp_path / "b.mp4")
    assert max(_diff(a[i], b[i]) for i in range(sp.start)) < 2.0


def test_fake_sora_remix_is_strict(env, image, tmp_path):
    import openai

    c = openai.OpenAI()
    with pytest.raises(openai.NotFoundError):
        c.videos.remix("video_nope", prompt="x")
    p = get_producer("sora:sora-2", poll_interval_s=0.0, post_production=False)
    man = p.render(_three(image), tmp_path / "a.mp4")
    with pytest.raises(openai.BadRequestError, match="Unrecognized request argument"):
        c.videos.remix(man.settings["clips"][0]["job"], prompt="x", extra_body={"seconds": "4"})
    done = c.videos.remix(man.settings["clips"][0]["job"], prompt="x")
    assert done.status == "queued" and getattr(done, "remixed_from_video_id", None) == man.settings["clips"][0]["job"]


def test_veo_slot_edit_sends_the_neighbouring_frames(env, image, tmp_path):
    from nextads_lib.producer import edit

    p = get_producer("veo:veo-3.1-generate-preview", poll_interval_s=0.0, post_production=False, per="slot")
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    edit.regenerate_slot(tmp_path / "a.mp4", _patched(req), 1, tmp_path / "b.mp4", p, man)
    create = [e for e in env.log if e["route"] == "veo.create"][-1]
    assert create["has_image"] and create["has_last_frame"] and "slow motion" in create["prompt"]


def test_edit_slots_dispatches_a_sora_creative_to_slot_regeneration(env, image, tmp_path):
    from nextads_lib.producer import edit
    from nextads_lib.schemas import ProducerManifest

    p = get_producer("sora:sora-2", poll_interval_s=0.0, post_production=False)
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    again = edit.producer_for(ProducerManifest.model_validate(man.model_dump()))
    assert again.kind == "sora" and again.per == "creative" and not again.post_production
    assert again.poll_interval_s == 0.01  # the manifest does not carry the polling interval: $NEXTADS_POLL_INTERVAL_S
    n = sum(e["route"] == "sora.remix" for e in env.log)
    rep = edit.edit_slots(tmp_path / "a.mp4", _patched(req, 0, "a mug, top view"), [0, 2], tmp_path / "b.mp4", again,
                          manifest=man)
    assert sum(e["route"] == "sora.remix" for e in env.log) == n + 2 and rep.slots == [0, 2]
    assert media.count_frames(tmp_path / "b.mp4") == media.count_frames(tmp_path / "a.mp4")
    assert not list(tmp_path.glob("*.slot*.mp4"))


# ----------------------------------------------------------------------- Veo's video extension (issue 17)
def _centre(frame):
    h, w = frame.shape[:2]
    return frame[h // 3: h // 2, w // 4: 3 * w // 4].reshape(-1, 3).astype(np.float32).mean(axis=0)


def test_veo_last_slot_edit_extends_the_clip_before_it(env, image, tmp_path):
    """A 12 s creative of Veo 3.1 clips (8 s for slots 0-1, 4 s for slot 2): an edit of the last slot sends the
    first clip, byte for byte as the API returned it, as the video to extend, with the patched prompt; the slot's
    frames are the continuation (not the input), every frame before it is unchanged up to re-encoding."""
    from nextads_lib.producer import edit, post

    p = get_producer("veo:veo-3.1-fast-generate-preview", poll_interval_s=0.0, post_production=False)
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    clips = man.settings["clips"]
    assert [c["slots"] for c in clips] == [[0, 1], [2]] and all(c["video_file"] and c["video_sha256"] for c in clips)
    n_image = sum(e["route"] == "veo.create" and e["has_image"] for e in env.log)
    rep = edit.edit_slots(tmp_path / "a.mp4", _patched(req, 2, "a bold end card with the mug"), [2],
                          tmp_path / "b.mp4", p, manifest=man)
    ext = [e for e in env.log if e["route"] == "veo.create"][-1]
    assert ext["instance_keys"] == ["prompt", "video"] and not ext["has_last_frame"]
    assert "a bold end card" in ext["prompt"] and "durationSeconds" not in ext["parameters"]
    assert ext["video_sha256"] == clips[0]["video_sha256"] and ext["video_seconds"] == 8.0  # the previous video
    assert sum(e["route"] == "veo.create" and e["has_image"] for e in env.log) == n_image  # nothing generated anew
    [rec] = rep.edits
    assert rec["operation"] == "extend" and rec["slots"] == [2] and rec["source"] == "clip 0 as generated"
    assert rec["extensions"] == 1 and rec["cost_usd"] == pytest.approx(7 * p.price) and "extension" in rep.note
    a, b = media.read_frames(tmp_path / "a.mp4"), media.read_frames(tmp_path / "b.mp4")
    sp = post.slot_spans(req.storyboard, req.fps)[2]
    assert a.shape == b.shape and rep.frames_rendered == list(range(sp.start, sp.stop))
    assert max(_diff(a[i], b[i]) for i in range(sp.start)) < 2.0  # unchanged up to re-encoding
    rgb = np.array(env.continuations[rec["result"][0]], np.float32)
    assert all(np.abs(_centre(b[i]) - rgb).max() < 12 for i in range(sp.start, sp.stop))  # the continuation
    assert np.mean([_diff(a[i], b[i]) for i in range(sp.start, sp.stop)]) > 5.0
    assert all(label_present(f) for f in b[sp.start:sp.stop])


def test_veo_tail_of_two_slots_is_extended_twice(env, image, tmp_path):
    """Per-slot clips: an edit of slots 1 and 2 (8 s) continues slot 0's clip by two 7 s extensions, the second
    one extending the API's first answer; slot 0 is untouched."""
    from nextads_lib.producer import edit, post

    p = get_producer("veo:veo-3.1-generate-preview", poll_interval_s=0.0, post_production=False, per="slot")
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    rep = edit.edit_slots(tmp_path / "a.mp4", _patched(req, 1), [1, 2], tmp_path / "b.mp4", p, manifest=man)
    exts = [e for e in env.log if e["route"] == "veo.create"][-2:]
    assert [e["instance_keys"] for e in exts] == [["prompt", "video"]] * 2
    assert exts[0]["video_sha256"] == man.settings["clips"][0]["video_sha256"] and exts[0]["video_seconds"] == 4.0
    assert exts[1]["video_seconds"] == 11.0 and "slow motion" in exts[0]["prompt"]
    [rec] = rep.edits
    assert rec["operation"] == "extend" and rec["slots"] == [1, 2] and rec["extensions"] == 2
    a, b = media.read_frames(tmp_path / "a.mp4"), media.read_frames(tmp_path / "b.mp4")
    spans = post.slot_spans(req.storyboard, req.fps)
    assert max(_diff(a[i], b[i]) for i in range(spans[1].start)) < 2.0
    c1, c2 = (np.array(env.continuations[r], np.float32) for r in rec["result"])
    # slot 1 (4..8 s) and slot 2 up to 11 s are the first continuation, slot 2's last second the second one
    assert np.abs(_centre(b[spans[1].start + 1]) - c1).max() < 12 and np.abs(_centre(b[spans[2].start]) - c1).max() < 12
    assert np.abs(_centre(b[spans[2].stop - 1]) - c2).max() < 12


def test_veo_mid_slot_keeps_regeneration_and_a_model_without_extension_regenerates(env, image, tmp_path):
    from nextads_lib.producer import edit

    p = get_producer("veo:veo-3.1-fast-generate-preview", poll_interval_s=0.0, post_production=False)
    req = _three(image)
    man = p.render(req, tmp_path / "a.mp4")
    rep = edit.edit_slots(tmp_path / "a.mp4", _patched(req, 0, "a mug, top view"), [0, 2], tmp_path / "b.mp4", p,
                          manifest=man)
    assert [e["operation"] for e in rep.edits] == ["extend", "regenerate"]  # the tail first, then slot 0
    assert [e["route"] == "veo.create" and e["has_image"] for e in env.log if e["route"] == "veo.create"][-2:] == \
        [False, True]
    q = get_producer("veo:veo-3.0-generate-001", poll_interval_s=0.0, post_production=False)
    man = q.render(req, tmp_path / "c.mp4")
    rep = edit.edit_slots(tmp_path / "c.mp4", _patched(req, 2, "x"), [2], tmp_path / "d.mp4", q, manifest=man)
    create = [e for e in env.log if e["route"] == "veo.create"][-1]
    assert create["has_image"] and "video" not in create["instance_keys"]
    assert [e["operation"] for e in rep.edits] == ["regenerate"] and "no extension" in rep.note


def test_fake_veo_extension_is_strict(env, image, tmp_path):
    from google.genai import errors, types

    client = _vertex_client(env)
    clip = video_routes.tiny_mp4(4, (720, 1280), 3)

    def extend(model="veo-3.1-generate-preview", data=clip, mime="video/mp4", **src):
        return client.models.generate_videos(model=model, source=types.GenerateVideosSource(
            prompt="more", video=types.Video(video_bytes=data, mime_type=mime), **src))

    for kw, msg in [({"model": "veo-3.0-generate-001"}, "does not support video extension"),
                    ({"data": b"not a video"}, "could not be decoded"),
                    ({"mime": "video/quicktime"}, "mimeType"),
                    ({"data": video_routes.tiny_mp4(31, (720, 1280), 3)}, "1 to 30 seconds"),
                    ({"data": video_routes.tiny_mp4(4, (720, 720), 3)}, "aspect ratio"),
                    ({"image": types.Image(image_bytes=Path(image).read_bytes(), mime_type="image/png")}, "both")]:
        with pytest.raises(errors.APIError) as e:
            extend(**kw)
        assert e.value.code == 400 and msg in e.value.message, (kw, e.value.message)
    op = extend()
    assert not op.done and env.log[-1]["video_seconds"] == 4.0


def test_the_poll_interval_comes_from_the_argument_then_the_environment_then_the_model(monkeypatch):
    from nextads_lib.producer.base import ProducerError

    monkeypatch.delenv("NEXTADS_POLL_INTERVAL_S", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    assert get_producer("sora:sora-2").poll_interval_s == 5.0
    assert get_producer("veo:veo-3.0-generate-001").poll_interval_s == 10.0
    monkeypatch.setenv("NEXTADS_POLL_INTERVAL_S", "0.5")
    assert get_producer("sora:sora-2").poll_interval_s == 0.5
    assert get_producer("veo:veo-3.0-generate-001").poll_interval_s == 0.5
    assert get_producer("sora:sora-2", poll_interval_s=2).poll_interval_s == 2.0
    monkeypatch.setenv("NEXTADS_POLL_INTERVAL_S", "soon")
    with pytest.raises(ProducerError, match="NEXTADS_POLL_INTERVAL_S='soon' is not a number"):
        get_producer("sora:sora-2")
