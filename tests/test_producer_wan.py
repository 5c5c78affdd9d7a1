"""The wan Producer on CPU with a tiny randomly initialised pipeline of the real diffusers classes, saved
with save_pretrained and loaded back through the producer's own from_pretrained path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from nextads_lib import media
from nextads_lib.producer import ProducerError, burn_label, get_producer, label_present, post
from nextads_lib.schemas import ProducerRequest, Slot, Storyboard

pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from nextads_lib.producer.wan import build_tiny_pipeline

    d = tmp_path_factory.mktemp("wan")
    return {v: build_tiny_pipeline(d / v, v) for v in ("ti2v", "i2v")}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    out = {}
    for name, c in {"a0": (200, 40, 40), "a1": (40, 170, 60), "host": (240, 220, 20)}.items():
        Image.new("RGB", (96, 96), c).save(d / f"{name}.png")
        out[name] = str(d / f"{name}.png")
    return out


def _request(images, aspect="1:1", size=(64, 64), fps=8.0, **kw):
    slots = [
        Slot(index=0, start_s=0.0, end_s=1.0, role="hook", camera="zoom_in", composition="product hero shot",
             narration="Hi there.", on_screen_text="Wow", assets=["a0"]),
        Slot(index=1, start_s=1.0, end_s=2.0, role="cta", camera="pan_left", composition="close up", assets=["a1"]),
    ]
    sb = Storyboard(product_id="p", backend="offline", personalized=False, hook="New", aspect_ratio=aspect,
                    duration_s=2.0, slots=slots, cta="Buy now")
    return ProducerRequest(storyboard=sb, assets={"a0": images["a0"], "a1": images["a1"]}, aspect_ratio=aspect,
                           width=size[0], height=size[1], fps=fps, seed=5, **kw)


def test_tiny_ti2v_per_slot_writes_the_requested_frames(tiny, images, tmp_path):
    prod = get_producer(f"wan:{tiny['ti2v']}", num_inference_steps=2, gen_fps=8, cache_dir=tmp_path / "c")
    out = tmp_path / "wan.mp4"
    man = prod.render(_request(images), out)
    frames = media.read_frames(out)
    assert frames.shape == (16, 64, 64, 3) and man.n_frames == 16
    assert man.backend == f"wan:{tiny['ti2v']}" and man.settings["gen_size"] == [64, 64]
    assert [c["num_frames"] for c in man.settings["clips"]] == [9, 9]  # 4k+1 covering 8 frames
    assert media.probe(out).has_audio
    assert all(label_present(f) for f in frames)
    # cached: the same request renders nothing
    prod.render(_request(images), tmp_path / "again.mp4")
    assert prod.renders == 1 and prod.last_cached


def test_tiny_per_creative_previous_and_9x16(tiny, images, tmp_path):
    prod = get_producer(f"wan:{tiny['ti2v']}", num_inference_steps=2, gen_fps=8, per="creative",
                        condition="previous", narration=False)
    out = tmp_path / "wan916.mp4"
    man = prod.render(_request(images, "9:16", (64, 128), fps=6.0), out)
    info = media.probe(out)
    assert (info.width, info.height) == (64, 128) and media.count_frames(out) == 12 == man.n_frames
    assert len(man.settings["clips"]) == 1 and man.settings["clips"][0]["slots"] == [0, 1]


def test_tiny_i2v_first_last_frame(tiny, images, tmp_path):
    prod = get_producer(f"wan:{tiny['i2v']}", num_inference_steps=2, gen_fps=8, condition="previous")
    out = tmp_path / "pci.mp4"
    man = prod.render(_request(images, first_frame=images["host"], last_frame=images["host"]), out)
    assert [c["last_image"] for c in man.settings["clips"]] == [False, True]
    frames = media.read_frames(out)
    want = burn_label(post.fit_image(images["host"], 64, 64)).astype(np.float32)
    assert np.abs(frames[0] - want).mean() < 8 and np.abs(frames[-1] - want).mean() < 8
    assert len(frames) == 16


def test_missing_model_dir_is_named(tmp_path, images):
    with pytest.raises(ProducerError, match="not found"):
        get_producer(f"wan:{tmp_path / 'nope'}").render(_request(images), tmp_path / "x.mp4")


def test_paper_protocol_conditions_every_clip_on_the_collage(tiny, images, tmp_path):
    """Under the paper protocol the collage is each clip's image (the integration frame for PCI's first clip);
    the slot layouts only with slot_layouts=True. The image reaches the pipeline: another collage gives
    another video with the same seed."""
    col = tmp_path / "collage.png"
    Image.new("RGB", (120, 90), (30, 120, 200)).save(col)
    col2 = tmp_path / "collage2.png"
    Image.new("RGB", (120, 90), (250, 250, 250)).save(col2)
    prod = get_producer(f"wan:{tiny['ti2v']}", num_inference_steps=2, gen_fps=8, narration=False, music=False)
    man = prod.render(_request(images, collage_path=str(col)), tmp_path / "a.mp4")
    assert [c["image"] for c in man.settings["clips"]] == ["collage", "collage"]
    other = prod.render(_request(images, collage_path=str(col2)), tmp_path / "b.mp4")
    assert np.abs(media.read_frames(tmp_path / "a.mp4").astype(int)
                  - media.read_frames(tmp_path / "b.mp4").astype(int)).mean() > 1
    assert other.settings["clips"][0]["image"] == "collage"
    slots = get_producer(f"wan:{tiny['ti2v']}", num_inference_steps=2, gen_fps=8, narration=False, music=False,
                         slot_layouts=True).render(_request(images, collage_path=str(col)), tmp_path / "c.mp4")
    assert [c["image"] for c in slots.settings["clips"]] == ["slot_layout", "slot_layout"]
    pci = prod.render(_request(images, collage_path=str(col), first_frame=images["host"], last_frame=images["host"]),
                      tmp_path / "d.mp4")
    # TI2V-5B takes no last image: the last frame is not sent
    assert [(c["image"], c["last_image"]) for c in pci.settings["clips"]] == [("first_frame", False), ("collage", False)]
    assert pci.settings["takes_last_image"] is False


def test_prompt_names_the_product_from_its_record(tiny, images, tmp_path):
    req = _request(images)
    req.storyboard.product_id = "brisa-soda"
    man = get_producer(f"wan:{tiny['ti2v']}", num_inference_steps=1, gen_fps=8, narration=False,
                       music=False).render(req, tmp_path / "p.mp4")
    p = man.settings["clips"][0]["prompt"]
    assert "Brisa Citrus Fizz by Brisa" in p and "lime and grapefruit" in p and "brisa soda" not in p


def test_tiny_slot_edit_regenerates_only_that_slot_from_its_neighbours(tiny, images, tmp_path):
    """Slot-level edit (issue 17): the slot's clip is generated again with the same per-slot seed, its first frame
    the previous slot's last frame and its last frame the next slot's first (the i2v pipeline takes one)."""
    from nextads_lib.producer import edit
    from nextads_lib.seed import derive_seed

    prod = get_producer(f"wan:{tiny['i2v']}", num_inference_steps=2, gen_fps=8, post_production=False)
    slots = [Slot(index=i, start_s=float(i), end_s=float(i + 1), role=r, camera="static", composition=c,
                  assets=[a]) for i, (r, c, a) in enumerate((("hook", "hero", "a0"), ("body", "close up", "a1"),
                                                             ("cta", "end card", "a0")))]
    sb = Storyboard(product_id="p", backend="offline", personalized=False, hook="New", aspect_ratio="1:1",
                    duration_s=3.0, slots=slots, cta="Buy now")
    req = ProducerRequest(storyboard=sb, assets={"a0": images["a0"], "a1": images["a1"]}, aspect_ratio="1:1",
                          width=64, height=64, fps=8.0, seed=5)
    out = tmp_path / "w.mp4"
    man = prod.render(req, out)
    orig = media.read_frames(out)
    seen = {}
    real = prod._generate

    def spy(pipe, **kw):
        seen.update(kw)
        return real(pipe, **kw)

    prod._generate = spy
    sb2 = sb.model_copy(update={"slots": [s.model_copy(update={"composition": "macro close up, steam"})
                                          if s.index == 1 else s for s in sb.slots]})
    rep = edit.regenerate_slot(out, req.model_copy(update={"storyboard": sb2}), 1, tmp_path / "w2.mp4", prod, man)
    assert np.array_equal(seen["image"], orig[7]) and np.array_equal(seen["last_image"], orig[16])
    assert seen["seed"] == derive_seed(5, "wan", 1) and "steam" in seen["prompt"]
    new = media.read_frames(tmp_path / "w2.mp4")
    assert new.shape == orig.shape and rep.frames_rendered == list(range(8, 16))
    assert max(np.abs(new[i].astype(float) - orig[i]).mean() for i in [*range(8), *range(16, 24)]) < 2.0
    assert all(label_present(f) for f in new[8:16])
