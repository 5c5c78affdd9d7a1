"""The compositor and the shared post step, checked on decoded output: size, fps, frame count, slot cuts,
the "AI Created" label in every frame, the CTA card only in the last slot, narration audio, first/last
frame pinning, the render cache and byte-for-byte determinism."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nextads_lib import media
from nextads_lib.producer import ProducerError, burn_label, get_producer, label_box, label_present, post
from nextads_lib.schemas import ProducerRequest, Slot, Storyboard

FPS = 12.0
SIZES = {"9:16": (144, 256), "16:9": (256, 144), "1:1": (160, 160)}
PALETTE = ["#1982C4", "#FFCA3A", "#8AC926"]


def _image(path, color, shape="ellipse"):
    im = Image.new("RGB", (320, 240), color)
    d = ImageDraw.Draw(im)
    if shape == "ellipse":
        d.ellipse((90, 40, 230, 200), fill=(245, 245, 245))
    else:
        d.rectangle((60, 60, 260, 180), fill=(20, 20, 20))
    im.save(path)
    return str(path)


def _storyboard(aspect="9:16"):
    slots = [
        Slot(index=0, start_s=0.0, end_s=2.0, role="hook", camera="zoom_in", composition="hero",
             narration="Meet the Aurora phone.", on_screen_text="All-week battery", assets=["red"], pacing="fast"),
        Slot(index=1, start_s=2.0, end_s=4.0, role="body", camera="pan_left", composition="detail",
             narration="", on_screen_text="Bright screen", assets=["green"], pacing="medium"),
        Slot(index=2, start_s=4.0, end_s=6.0, role="cta", camera="push_in", composition="end card",
             narration="Get yours today and save twenty percent on every colour this week only.",
             assets=["blue"], pacing="fast"),
    ]
    return Storyboard(product_id="aurora", user_id="u1", backend="offline", personalized=True, hook="Meet Aurora",
                      aspect_ratio=aspect, duration_s=6.0, slots=slots, cta="Shop now")


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    d = tmp_path_factory.mktemp("assets")
    return {
        "red": _image(d / "red.png", (200, 40, 40)),
        "green": _image(d / "green.png", (40, 170, 60), "rect"),
        "blue": _image(d / "blue.png", (30, 60, 200)),
        "first": _image(d / "first.png", (250, 200, 30), "rect"),
        "last": _image(d / "last.png", (120, 20, 160)),
    }


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


def _request(assets, aspect="9:16", **kw):
    w, h = SIZES[aspect]
    base = dict(storyboard=_storyboard(aspect), assets={k: assets[k] for k in ("red", "green", "blue")},
                aspect_ratio=aspect, width=w, height=h, fps=FPS, seed=3, palette=PALETTE)
    base.update(kw)
    return ProducerRequest(**base)


@pytest.fixture(scope="module")
def renders(assets, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("renders")
    prod = get_producer("compositor", cache_dir=cache_dir)
    res = {}
    for aspect in SIZES:
        path = out / f"{aspect.replace(':', 'x')}.mp4"
        man = prod.render(_request(assets, aspect), path)
        res[aspect] = (path, man, media.read_frames(path))
    return res


@pytest.mark.parametrize("aspect", list(SIZES))
def test_size_fps_duration_and_frame_count(renders, aspect):
    path, man, frames = renders[aspect]
    w, h = SIZES[aspect]
    info = media.probe(path)
    assert (info.width, info.height) == (w, h) == (man.width, man.height)
    assert info.fps == pytest.approx(FPS)
    assert frames.shape == (72, h, w, 3) and man.n_frames == 72
    assert info.duration_s == pytest.approx(6.0, abs=0.1) and man.duration_s == pytest.approx(6.0)
    assert info.has_audio and man.backend == "compositor" and man.cost_usd == 0.0


@pytest.mark.parametrize("aspect", list(SIZES))
def test_slot_boundaries_are_the_biggest_changes(renders, aspect):
    frames = renders[aspect][2].astype(np.float32)
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))  # diff[i]: frame i -> i+1
    boundaries = [24, 48]  # slots start at 2 s and 4 s at 12 fps
    for b in boundaries:
        assert diff[b - 1] > 4 * np.median(diff) and diff[b - 1] > 8, (b, diff[b - 1], np.median(diff))
    top2 = sorted(np.argsort(diff)[-2:] + 1)
    assert top2 == boundaries


@pytest.mark.parametrize("aspect", list(SIZES))
def test_label_in_every_frame(renders, aspect):
    frames = renders[aspect][2]
    h, w = frames.shape[1:3]
    lay = post.label_layer(w, h)
    assert lay.box == label_box(w, h)
    x0, y0, x1, y1 = lay.box
    # letters >= 5% of the shorter side (GB 45438-2025) make "AI Created" about half a portrait frame wide
    assert 0 <= x0 < x1 <= 0.6 * w and 0 <= y0 < y1 <= h // 3
    rows = np.nonzero((burn_label(np.zeros((h, w, 3), np.uint8))[y0:y1, x0:x1].mean(axis=2) > 200).any(axis=1))[0]
    assert rows[-1] - rows[0] + 1 >= 0.05 * min(w, h)
    for f in frames:
        assert label_present(f)
        assert lay.match(f) < 45  # the letters are white where the reference label has them
    # the check can fail: a frame without the label
    raw = post.fit_image(np.full((100, 100, 3), 200, np.uint8), w, h)
    assert not label_present(raw)
    assert label_present(burn_label(raw))


@pytest.mark.parametrize("aspect", list(SIZES))
def test_cta_card_only_in_last_slot(renders, aspect):
    frames = renders[aspect][2]
    h, w = frames.shape[1:3]
    card = post.cta_layer("Shop now", w, h, post.palette_accent(PALETTE))
    scores = np.array([card.match(f) for f in frames])
    assert scores[48:].max() < 25, scores[48:]
    assert scores[:48].min() > 40, scores[:48]


def test_narration_audio_in_narrated_slots(renders):
    path = renders["9:16"][0]
    rate = 16000
    a = media.read_audio(path, rate=rate)
    assert a.size == pytest.approx(6.0 * rate, abs=0.05 * rate)

    def rms(t0, t1):
        seg = a[int(t0 * rate) : int(t1 * rate)]
        return float(np.sqrt(np.mean(seg**2)))

    spoken0, quiet, spoken2 = rms(0, 2), rms(2, 4), rms(4, 6)
    assert quiet > 1e-3  # the music bed
    assert spoken0 > 3 * quiet and spoken2 > 3 * quiet, (spoken0, quiet, spoken2)


def test_long_narration_is_fitted_to_its_slot():
    from nextads_lib.producer.tts import PiperTTS

    tts = PiperTTS()
    line = "Get yours today and save twenty percent on every colour this week only."
    full = tts.speak(line)
    fitted = tts.fit(line, 1.5)
    assert full.size > 1.5 * tts.sample_rate
    assert fitted.size <= 1.5 * tts.sample_rate
    assert np.sqrt(np.mean(fitted**2)) > 0.05
    assert np.array_equal(tts.speak(line), full)  # deterministic voice
    # a modest overrun is sped up, not cut: the whole line stays, within the slot
    slot = full.size / 1.2 / tts.sample_rate
    sped = tts.fit(line, slot)
    assert 0.97 * slot * tts.sample_rate <= sped.size <= slot * tts.sample_rate
    assert np.sqrt(np.mean(sped[-int(0.3 * tts.sample_rate):] ** 2)) > 0.02  # the last word is still spoken


def test_first_and_last_frame_are_pinned(assets, cache_dir, tmp_path):
    req = _request(assets, "16:9", first_frame=assets["first"], last_frame=assets["last"])
    out = tmp_path / "pci.mp4"
    get_producer("compositor", cache_dir=cache_dir).render(req, out)
    frames = media.read_frames(out)
    w, h = SIZES["16:9"]
    want0 = burn_label(post.fit_image(assets["first"], w, h)).astype(np.float32)
    want1 = burn_label(post.fit_image(assets["last"], w, h)).astype(np.float32)
    assert np.abs(frames[0] - want0).mean() < 6
    assert np.abs(frames[-1] - want1).mean() < 6
    assert np.abs(frames[-1] - want0).mean() > 40  # the comparison tells the two images apart
    assert np.abs(frames[36] - want0).mean() > 20  # the middle is the creative, not the host frame
    assert len(frames) == 72


def test_cache_hit_skips_rendering_and_output_is_deterministic(assets, tmp_path):
    req = _request(assets, "1:1")
    cache = tmp_path / "cache"
    p1 = get_producer("compositor", cache_dir=cache)
    m1 = p1.render(req, tmp_path / "a.mp4")
    assert p1.renders == 1 and not p1.last_cached
    p2 = get_producer("compositor", cache_dir=cache)
    m2 = p2.render(req, tmp_path / "b.mp4")
    assert p2.renders == 0 and p2.last_cached
    assert (tmp_path / "a.mp4").read_bytes() == (tmp_path / "b.mp4").read_bytes()
    assert m2.seconds == m1.seconds and m2.video_path.endswith("b.mp4")
    # without a cache the same request renders the same bytes again
    p3 = get_producer("compositor")
    p3.render(req, tmp_path / "c.mp4")
    assert p3.renders == 1
    assert (tmp_path / "c.mp4").read_bytes() == (tmp_path / "a.mp4").read_bytes()
    # a different seed is a different creative (the music bed changes key)
    p2.render(req.model_copy(update={"seed": 4}), tmp_path / "d.mp4")
    assert p2.renders == 1 and not p2.last_cached


def test_bad_requests_name_the_field(assets, tmp_path):
    req = _request(assets)
    bad = req.model_copy(update={"assets": {"red": assets["red"], "green": assets["green"]}})
    with pytest.raises(ProducerError, match=r"slot 2 field 'assets' names 'blue'"):
        get_producer("compositor").render(bad, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()
    missing = req.model_copy(update={"assets": {**req.assets, "blue": str(tmp_path / "nope.png")}})
    with pytest.raises(ProducerError, match="nope.png"):
        get_producer("compositor").render(missing, tmp_path / "x.mp4")
    with pytest.raises(ProducerError, match="valid: compositor"):
        get_producer("blender:3")
    with pytest.raises(ProducerError, match="needs a model"):
        get_producer("sora")


def test_native_size_and_exact_frame_count_at_odd_durations(assets, tmp_path):
    sb = _storyboard("9:16").model_copy(update={"duration_s": 5.3})
    slots = [s.model_copy(update={"end_s": min(s.end_s, 5.3)}) for s in sb.slots]
    sb = sb.model_copy(update={"slots": slots})
    req = _request(assets, "9:16", storyboard=sb, fps=7.0, width=None, height=180)
    man = get_producer("compositor", narration=False, music=False).render(req, tmp_path / "odd.mp4")
    assert (man.width, man.height) == (100, 180)
    assert media.count_frames(tmp_path / "odd.mp4") == round(5.3 * 7.0) == man.n_frames
    assert post.output_size("16:9", None, None) == (1280, 720)


def test_camera_window_matches_an_affine_warp_at_sub_pixel_precision():
    import cv2

    from nextads_lib.producer.compositor import _window

    g = np.random.default_rng(3)
    cv = cv2.GaussianBlur((g.random((200, 130, 3)) * 255).astype(np.uint8), (0, 0), 2.0)
    w, h = 96, 160
    for s, cx, cy in [(1.0, 65.3, 100.7), (1.12, 64.2, 98.1), (0.87, 66.9, 101.4)]:
        m = np.array([[s, 0.0, cx - s * w / 2], [0.0, s, cy - s * h / 2]])
        want = cv2.warpAffine(cv, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        got = _window(cv, s, cx, cy, w, h)
        assert got.shape == (h, w, 3) and got.dtype == np.uint8
        assert np.abs(got - want).mean() < 1.0, (s, np.abs(got - want).mean())
    # half a pixel of pan moves the picture by half a pixel, not by zero or one
    edge = np.zeros((200, 130, 3), np.uint8)
    edge[:, 65:] = 200
    a, b, c = (_window(edge, 1.0, cx, 100.0, w, h)[80, :, 0].astype(float) for cx in (65.0, 65.5, 66.0))
    assert a.sum() < b.sum() < c.sum() and b.sum() == pytest.approx((a.sum() + c.sum()) / 2, abs=2)


# ------------------------------------------------------------------------------------ the paper protocol
def test_paper_creative_is_the_picture_and_the_label_only(assets, cache_dir, tmp_path):
    """``post_production`` off (the paper): the compositor's shots with their on-screen text and the label from
    the first frame; no voice, no music (no audio track), no subtitles, no CTA card; the first/last frames are
    not pinned to the given images without ``frame_overwrite``."""
    req = _request(assets, "16:9", first_frame=assets["first"], last_frame=assets["last"])
    paper = get_producer("compositor", cache_dir=cache_dir, post_production=False, slot_layouts=False,
                         frame_overwrite=False)
    extended = get_producer("compositor", cache_dir=cache_dir)
    assert paper.cache_key(req) != extended.cache_key(req)
    out = tmp_path / "paper.mp4"
    man = paper.render(req, out)
    assert man.settings["post_production"] is False and man.settings["frame_overwrite"] is False
    info = media.probe(out)
    assert not info.has_audio and media.read_audio(out).size == 0
    frames = media.read_frames(out)
    w, h = SIZES["16:9"]
    assert frames.shape == (72, h, w, 3)
    assert all(label_present(f) for f in frames)  # from the first frame on
    card = post.cta_layer("Shop now", w, h, post.palette_accent(PALETTE))
    assert min(card.match(f) for f in frames[48:]) > 40  # no CTA end card
    sub = post.subtitle_layer("Meet the Aurora phone.", w, h)
    assert min(sub.match(f) for f in frames[:24]) > 40  # no narration subtitle
    head = post.headline_layer("All-week battery", w, h)
    assert max(head.match(f) for f in frames[:24]) < 25  # the compositor's on-screen text is its picture
    want0 = burn_label(post.fit_image(assets["first"], w, h)).astype(np.float32)
    want1 = burn_label(post.fit_image(assets["last"], w, h)).astype(np.float32)
    assert np.abs(frames[0] - want0).mean() > 20 and np.abs(frames[-1] - want1).mean() > 20
    # the extended creative of the same request: voice and music, CTA card, pinned frames
    ext = tmp_path / "extended.mp4"
    extended.render(req, ext)
    ef = media.read_frames(ext)
    assert media.probe(ext).has_audio and max(card.match(f) for f in ef[60:66]) < 25
    assert np.abs(ef[0] - want0).mean() < 6


def test_paper_clip_producer_keeps_the_clips_frames_and_sound(assets, tmp_path):
    """A clip Producer (the sora/veo flow, with a stand-in model that returns a fixed clip with a 440 Hz tone)
    under the paper protocol: the creative's sound is the clip's own, its frames the clip's (plus the label), no
    text is drawn, and every clip is conditioned on the reference collage (``slot_layouts`` off)."""
    from nextads_lib.producer.clips import ClipProducer, decode_clip  # noqa: PLC0415

    w, h = SIZES["9:16"]
    rate = post.AUDIO_RATE
    clip_path = tmp_path / "clip.mp4"
    t = np.arange(int(4.0 * rate)) / rate
    media.write_video(clip_path, (np.full((h, w, 3), (30, 160, 90), np.uint8) for _ in range(48)), 12.0,
                      audio=(0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), audio_rate=rate)
    seen: list[np.ndarray] = []

    class ToneClips(ClipProducer):
        kind = "tone"
        allowed_seconds = (4,)

        def api_size(self, aspect_ratio):
            return (w, h)

        def _clip(self, req, *, index, prompt, image, last_image, seconds, size):
            seen.append(image)
            frames, fps = decode_clip(clip_path.read_bytes(), "tone clip")
            return frames, fps, {"cost_usd": 0.0}

    collage = str(tmp_path / "collage.png")
    Image.new("RGB", (720, 720), (250, 120, 10)).save(collage)  # a plain orange collage, easy to find
    req = _request(assets, "9:16", collage_path=collage)
    prod = ToneClips("m", None, post_production=False, slot_layouts=False, frame_overwrite=False)
    out = tmp_path / "paper.mp4"
    man = prod.render(req, out)
    assert man.settings["clip_audio"] is True and len(seen) == 2  # 6 s in two 4 s clips

    def orange(im):  # share of the conditioning image that is the collage's colour
        return float((np.abs(im.astype(np.int16) - np.array([250, 120, 10])).max(axis=2) < 12).mean())

    assert all(orange(im) > 0.4 for im in seen)  # the whole collage, contained in the API's frame
    a = media.read_audio(out, rate)
    spec = np.abs(np.fft.rfft(a[:rate]))  # 1 s window: bin k is k Hz
    assert abs(int(np.argmax(spec)) - 440) < 3 and np.sqrt(np.mean(a**2)) > 0.2  # the clip's tone
    frames = media.read_frames(out)
    assert all(label_present(f) for f in frames)
    outside = np.ones((h, w), bool)
    x0, y0, x1, y1 = label_box(w, h)
    outside[y0:y1, x0:x1] = False
    assert np.abs(frames[:, outside].astype(np.float32) - np.array([30, 160, 90])).mean() < 4  # no text drawn
    # the same request with slot layouts: each clip is conditioned on its slot's own assets
    seen.clear()
    ToneClips("m", None, post_production=False, slot_layouts=True, frame_overwrite=False).render(req, tmp_path / "s.mp4")
    assert orange(seen[0]) < 0.01
