"""Director stages on small real files: profile heuristics, matching + fallback, storyboard validation rule by
rule, the re-ask-once-then-fail path, generic requests free of user data, and the collage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nextads_lib import director
from nextads_lib.backends import get_backend
from nextads_lib.schemas import (
    Asset,
    AssetLicense,
    HistoryItem,
    PresentationStyle,
    Product,
    TopicPreference,
    UserHistory,
    UserProfile,
    VideoAnnotation,
    VisualStyle,
)
from nextads_lib.store import Cache

LIC = AssetLicense(license="made-here", source="drawn by the test")


def _img(path: Path, colour, size=(96, 128), patch=None) -> str:
    a = np.zeros((size[1], size[0], 3), np.uint8)
    a[:] = colour
    if patch is not None:
        a[size[1] // 4: size[1] // 2, size[0] // 4: size[0] // 2] = patch
    Image.fromarray(a).save(path)
    return str(path)


def make_product(tmp: Path, pid: str = "brewco-beans", topics=("coffee",), name="Brewco Beans") -> Product:
    d = tmp / pid
    d.mkdir(parents=True, exist_ok=True)
    return Product(
        id=pid, name=name, brand="Brewco", category="retail", subcategory="coffee beans",
        description="Whole coffee beans roasted in small batches for espresso and filter brewing.",
        selling_points=["Roasted in small batches", "Notes of cocoa", "Works for espresso and filter"],
        slogan="Better mornings, bean by bean.", facts={"price": "$14 per 250 g bag", "origin": "Colombia"},
        forbidden_claims=["cures tiredness", "zero caffeine"], topics=list(topics), palette=["#5A3A22", "#E8D5B5"],
        logo=Asset(path=_img(d / "logo.png", (90, 58, 34)), kind="logo", caption="logo", license=LIC),
        images=[Asset(path=_img(d / "hero.png", (232, 213, 181), patch=(90, 58, 34)), kind="image", caption="hero", license=LIC),
                Asset(path=_img(d / "feature.png", (200, 180, 150)), kind="image", caption="feature", license=LIC)],
    )


def make_razor(tmp: Path) -> Product:
    d = tmp / "edge-razor"
    d.mkdir(parents=True, exist_ok=True)
    return Product(
        id="edge-razor", name="Edge Three", brand="Edgeline", category="retail", subcategory="razor",
        description="A three-blade manual razor with a pivoting head and an aloe strip.",
        selling_points=["Three flexible blades", "Pivoting head", "Aloe strip"], slogan="Clean lines.",
        facts={"price": "$11.99"}, forbidden_claims=["no nicks ever"], topics=["skincare"], palette=["#0D1B2A"],
        logo=Asset(path=_img(d / "logo.png", (13, 27, 42)), kind="logo", caption="logo", license=LIC),
        images=[Asset(path=_img(d / "a.png", (141, 153, 174)), kind="image", caption="a", license=LIC),
                Asset(path=_img(d / "b.png", (224, 225, 221)), kind="image", caption="b", license=LIC)],
    )


COFFEE_TEXTS = [
    ("Latte art practice", "Latte art practice this morning with Marisol at the cafe in Portland, follow @beanqueen"),
    ("Espresso at home", "Brewing espresso at home: grind the beans, tamp, then pull the shot"),
    ("Cafe hopping", "My favourite café hopping route: three cafes with great coffee"),
    ("Pour over", "Pour over coffee beans review: comparing brews and roasts"),
    ("Cold brew", "Cold brew coffee recipe for summer, steep the beans overnight"),
]


def make_history(tmp: Path, user_id: str = "u_coffee", texts=COFFEE_TEXTS, colours=None) -> UserHistory:
    colours = colours or [(139, 94, 60), (194, 168, 120), (221, 190, 169), (107, 112, 92), (139, 94, 60)]
    items = []
    for i, (title, text) in enumerate(texts):
        p = _img(tmp / f"{user_id}_{i}.png", colours[i % len(colours)], patch=(221, 190, 169))
        items.append(HistoryItem(item_id=f"{user_id}_n{i}", title=title, text=text, image_paths=[p]))
    return UserHistory(dataset="qilin", user_id=user_id, items=items)


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    return get_backend("offline", cache_dir=tmp_path_factory.mktemp("backend_cache"))


# --------------------------------------------------------------------------------------------- profile
def test_profile_once_cached_with_evidence_and_palette(tmp_path, offline):
    h = make_history(tmp_path)
    cache = Cache(tmp_path / "cache")
    n0 = len(offline.usage)
    p1 = director.model_user(h, offline, cache)
    n1 = len(offline.usage)
    p2 = director.model_user(h, offline, cache)
    assert n1 - n0 == 1 and len(offline.usage) == n1  # the second call never reaches the backend
    assert p1 == p2 and p1.backend == "offline" and p1.user_id == "u_coffee"
    assert p1.topics[0].topic == "coffee"
    assert abs(sum(t.weight for t in p1.topics) - 1) < 1e-3
    ids = {it.item_id for it in h.items}
    assert set(p1.topics[0].evidence) <= ids and p1.topics[0].evidence
    assert p1.visual.palette_name == "earth"  # brown/tan images map to the earth palette
    assert p1.visual.lighting == "warm"
    assert all(c.startswith("#") and len(c) == 7 for c in p1.visual.palette)


def test_empty_history_is_a_named_error(offline, tmp_path):
    with pytest.raises(director.DirectorError, match="user u_empty.*empty history"):
        director.model_user(UserHistory(dataset="qilin", user_id="u_empty", items=[]), offline, Cache(tmp_path))


def test_palette_and_lighting_heuristics():
    neon = np.concatenate([np.tile([[10, 10, 20]], (800, 1)), np.tile([[255, 30, 140]], (200, 1))]).astype(np.float32)
    assert director.lighting_of(neon) == "neon"
    assert director.lighting_of(np.tile([[40, 40, 45]], (100, 1)).astype(np.float32)) == "dim"
    assert director.lighting_of(np.tile([[150, 200, 240]], (100, 1)).astype(np.float32)) == "cool"
    ocean = np.array([[3, 4, 94], [0, 119, 182], [144, 224, 239]], np.float32)
    assert director.nearest_palette(ocean, np.array([0.4, 0.3, 0.3]))[0] == "ocean"



def _read(colours, shares):
    d = director.user_modeling.palette_distances(np.array(colours, np.float32), np.array(shares, np.float64))
    return min(d, key=d.get)


def test_palette_reading_discounts_captions_and_reads_dim_colours():
    # dominant colours of two embedded MicroLens videos: a pastel scene under dim light (chroma of a few RGB
    # units, not grey) with a dark caption bar and grey text, once read as mono; a grey scene, once read as earth
    dim_pastel = [(69, 63, 63), (61, 67, 69), (3, 15, 11), (30, 29, 27), (103, 102, 101), (140, 140, 138)]
    assert _read(dim_pastel, [0.49, 0.331, 0.086, 0.079, 0.007, 0.007]) == "pastel"
    grey = [(129, 129, 129), (169, 169, 169), (99, 99, 99), (69, 69, 69), (239, 239, 239), (205, 205, 205)]
    assert _read(grey, [0.325, 0.298, 0.173, 0.116, 0.047, 0.042]) == "mono"
    assert _read([(60, 60, 61), (30, 30, 30), (15, 15, 16)], [0.5, 0.3, 0.2]) == "mono"  # grey under dim light
    # a vivid scene with a caption stays vivid
    assert _read([(255, 89, 94), (255, 202, 58), (138, 201, 38), (25, 130, 196), (10, 10, 10)],
                 [0.25, 0.25, 0.2, 0.2, 0.1]) == "vivid"
    mask = director.user_modeling.neutral_colours(np.array(dim_pastel))
    assert mask.tolist() == [False, False, False, True, True, True]


def _stripes(path: Path, colours, size=(160, 90)) -> str:
    a = np.zeros((size[1], size[0], 3), np.uint8)
    for j, c in enumerate(colours):
        a[:, j * size[0] // len(colours):(j + 1) * size[0] // len(colours)] = c
    Image.fromarray(a).save(path)
    return str(path)


def test_video_history_palette_votes_once_per_item_cover_first(tmp_path, offline):
    # three videos whose covers are vivid and whose (weaker, compressed-frame) annotations say mono, and one
    # video without a cover whose annotation says ocean: each item votes once, with its cover when it has one
    vivid = [(255, 89, 94), (255, 202, 58), (138, 201, 38), (25, 130, 196)]
    items = [HistoryItem(item_id=f"v{i}", title=f"clip {i}", video_path=str(tmp_path / f"v{i}.mp4"),
                         image_paths=[_stripes(tmp_path / f"c{i}.png", vivid[i:] + vivid[:i])]) for i in range(3)]
    items.append(HistoryItem(item_id="v3", title="clip 3", video_path=str(tmp_path / "v3.mp4"),
                             image_paths=[str(tmp_path / "missing.jpg")]))
    h = UserHistory(dataset="microlens", user_id="u_vid", items=items)
    anns = [VideoAnnotation(item_id=it.item_id, video_path=it.video_path or "", video_sha256="0" * 64,
                            backend="offline", topic="tech", tone="calm", narrative="vlog",
                            information_density="low", visual_tone="bright", palette=["#777777"],
                            palette_name="ocean" if it.item_id == "v3" else "mono", motion="slow")
            for it in items]
    req = director.user_modeling.build_video_profile_request(h, anns)
    assert [x["item_id"] for x in req.context["palette_images"]] == ["v0", "v1", "v2"]  # one cover per item
    ans = offline.complete(req).value
    # counting each video's annotation beside its cover would tie 3 vivid - 3 mono (and mono wins ties)
    assert ans.visual.palette_name == "vivid"
    assert ans.visual.evidence[:3] == ["v0", "v1", "v2"]
    _, _, _, votes = director.palette_vote(
        [(x["item_id"], x["path"]) for x in req.context["palette_images"]] + [("v3", tmp_path / "missing.jpg")],
        fallback=[(a.item_id, a.palette_name) for a in anns])
    assert votes == {"vivid": 3, "ocean": 1}  # the annotation votes only for the item without a readable cover

# -------------------------------------------------------------------------------------------- matching
def _profile(user_id: str, topics: dict[str, float]) -> UserProfile:
    return UserProfile(
        user_id=user_id, dataset="qilin", backend="offline",
        topics=[TopicPreference(topic=t, weight=w) for t, w in topics.items()],
        presentation=PresentationStyle(tone="energetic", narrative="tutorial", information_density="medium"),
        visual=VisualStyle(palette=["#FF595E", "#FFCA3A"], palette_name="vivid", lighting="bright", motion="dynamic"))


def test_compatible_pair_matches_its_topic(tmp_path, offline):
    m = director.match_product(_profile("u1", {"fitness": 0.6, "coffee": 0.4}), make_product(tmp_path), offline)
    assert m.best_topic == "coffee"  # compatibility first, not the strongest interest
    assert not m.fallback and m.best_score >= director.DEFAULT_COMPAT_THRESHOLD
    assert sorted(m.selling_points) == sorted(make_product(tmp_path).selling_points)
    assert {c.topic for c in m.candidates} == {"fitness", "coffee"} and all(c.reason for c in m.candidates)


def test_planted_low_compatibility_pair_falls_back(tmp_path, offline):
    prof = _profile("u_gamer", {"gaming": 0.7, "music": 0.3})
    razor = make_razor(tmp_path)
    m = director.match_product(prof, razor, offline)
    assert m.fallback and m.best_score < director.DEFAULT_COMPAT_THRESHOLD
    assert "below the threshold" in m.fallback_reason
    sb = director.plan_storyboard(razor, offline, profile=prof, match=m)
    assert not sb.personalized and sb.user_id is None and sb.matched_topic is None
    # the fallback plan is the generic plan, request for request
    assert sb.slots == director.plan_storyboard(razor, offline).slots
    # and a threshold of 0 forces the match (what the paper warns against)
    assert not director.match_product(prof, razor, offline, threshold=0.0).fallback


# ---------------------------------------------------------------------------------------- storyboards
def test_offline_storyboard_is_valid_for_many_settings(tmp_path, offline):
    prod, h = make_product(tmp_path), make_history(tmp_path)
    prof = director.model_user(h, offline, Cache(tmp_path / "c"))
    m = director.match_product(prof, prod, offline)
    for dur in (10.0, 12.0, 13.0, 15.0, 6.0, 2.5):
        sb = director.plan_storyboard(prod, offline, profile=prof, match=m, duration_s=dur, history=h)
        assert director.validate_storyboard(sb, prod, h, dur) == []
        assert sb.slots[-1].end_s == pytest.approx(dur) and sb.personalized and sb.matched_topic == "coffee"
        assert sb.disclosure == "AI Created"
    sb = director.plan_storyboard(prod, offline, profile=prof, match=m, aspect_ratio="16:9", history=h)
    assert sb.aspect_ratio == "16:9"
    with pytest.raises(ValueError, match="cannot be cut"):
        director.slot_times(3.5)


def test_offline_narration_fits_its_slot_for_every_tone_and_narrative(tmp_path, offline):
    prod = make_product(tmp_path)
    for tone in director.TONE_TEMPLATES:
        for narrative in director.NARRATIVE_PREFIX:
            for topic in ("home", "coffee"):  # the longest scenario phrase, and the matched one
                prof = _profile("u1", {topic: 1.0})
                prof = prof.model_copy(update={"presentation": prof.presentation.model_copy(
                    update={"tone": tone, "narrative": narrative})})
                m = director.match_product(prof, prod, offline)
                for dur in (10.0, 12.0):
                    sb = director.plan_storyboard(prod, offline, profile=prof, match=m, duration_s=dur)
                    for sl in sb.slots:
                        assert len(sl.narration.split()) <= director.narration_budget(sl.duration_s), sl
                        assert sl.narration.rstrip()[-1] in ".!?" and sl.narration.split()[-1].lower() not in {
                            "and", "of", "with", "to", "the", "a"}, sl.narration


@pytest.mark.parametrize("text, n, want", [
    ("Half the sugar of a regular cola (5 g per 100 ml).", 7, "Half the sugar of a regular cola."),
    ("8 h per charge, 32 h with the case.", 7, "8 h per charge."),
    ("Get Brewco Beans. Seriously, go.", 4, "Get Brewco Beans."),
    ("5% niacinamide to even out the look of skin tone.", 7, "5% niacinamide to even out the look."),
    ("Meet Brewco Beans.", 7, "Meet Brewco Beans."),
    ("Waterproof 10,000 mm membrane with taped seams.", 5, "Waterproof 10,000 mm membrane."),
])
def test_fit_line_cuts_at_the_natural_boundary(text, n, want):
    assert director.fit_line(text, n) == want


def _valid(tmp_path, offline):
    prod, h = make_product(tmp_path), make_history(tmp_path)
    prof = director.model_user(h, offline, Cache(tmp_path / "c"))
    sb = director.plan_storyboard(prod, offline, profile=prof, match=director.match_product(prof, prod, offline),
                                  history=h)
    return prod, h, sb


def _slot(sb, i, **upd):
    slots = list(sb.slots)
    slots[i] = slots[i].model_copy(update=upd)
    return sb.model_copy(update={"slots": slots})


@pytest.mark.parametrize("rule", ["gap", "long", "short", "cta_not_last", "no_hook", "unnamed", "number",
                                  "forbidden", "absolute", "user_id", "handle", "name", "place", "duration", "asset",
                                  "wordy"])
def test_each_validation_rule_catches_its_defect(tmp_path, offline, rule):
    prod, h, sb = _valid(tmp_path, offline)
    assert director.validate_storyboard(sb, prod, h, 12.0) == []
    n = len(sb.slots)
    bad, expect = {
        "gap": (_slot(sb, 1, start_s=sb.slots[1].start_s + 0.5), "not contiguous"),
        "long": (_slot(_slot(sb, 0, end_s=3.5), 1, start_s=3.5), "outside 2-3 s"),
        "short": (_slot(_slot(sb, 0, end_s=1.5), 1, start_s=1.5), "outside 2-3 s"),
        "cta_not_last": (_slot(_slot(sb, n - 1, role="body"), 1, role="cta"), "call to action"),
        "no_hook": (_slot(sb, 0, role="body"), "role 'hook'"),
        "unnamed": (sb.model_copy(update={"hook": "Hi", "cta": "Buy now", "slots": [
            s.model_copy(update={"narration": "Great stuff", "on_screen_text": "Wow"}) for s in sb.slots]}),
            "never named"),
        "number": (_slot(sb, 1, on_screen_text="Now 50% off"), "numbers not in the product's facts"),
        "forbidden": (_slot(sb, 1, narration="It cures tiredness"), "forbidden claim"),
        "absolute": (_slot(sb, 1, narration="Guaranteed to please"), "absolute claim"),
        "user_id": (_slot(sb, 1, on_screen_text="Made for u_coffee"), "personal data"),
        "handle": (_slot(sb, 1, narration="Hi @beanqueen"), "personal data"),
        "name": (_slot(sb, 1, narration="Marisol loves it"), "personal data"),
        "place": (_slot(sb, 1, narration="Back home in Portland"), "personal data"),
        "duration": (sb, "must last 15"),
        "asset": (_slot(sb, 1, assets=["product_9"]), "unknown asset ids"),
        # ten words in a 3 s slot cannot be spoken at a natural pace
        "wordy": (_slot(sb, 1, narration="Brewco Beans brings you a truly great cup every single morning."),
                  "narration has 11 words, more than the 9"),
    }[rule]
    errs = director.validate_storyboard(bad, prod, h, 15.0 if rule == "duration" else 12.0,
                                        asset_ids={a["id"] for a in director.asset_catalog(prod, personalized=True, history=h)})
    assert any(expect in e for e in errs), errs


def test_pci_rules_need_host_fields(tmp_path, offline):
    prod = make_product(tmp_path)
    frame = _img(tmp_path / "frame.png", (30, 60, 90))
    host = director.HostContext(item_id="v1", topic="coffee", summary="The host pours a latte.", frame_path=frame,
                                timestamp_s=4.2)
    sb = director.plan_storyboard(prod, offline, host=host, duration_s=10.0)
    assert sb.returns_to_frame and sb.starts_from_frame and sb.host_connection
    assert "start_frame" in sb.slots[0].assets and "start_frame" in sb.slots[-1].assets
    assert director.validate_storyboard(sb, prod, duration_s=10.0, host=host) == []
    bad = sb.model_copy(update={"returns_to_frame": False, "host_connection": ""})
    errs = director.validate_storyboard(bad, prod, duration_s=10.0, host=host)
    assert any("return" in e for e in errs) and any("host_connection" in e for e in errs)


def test_generic_and_fallback_requests_carry_no_user_data(tmp_path, offline):
    prod, h = make_product(tmp_path), make_history(tmp_path)
    prof = director.model_user(h, offline, Cache(tmp_path / "c"))
    m = director.match_product(prof, prod, offline)
    fallback = m.model_copy(update={"fallback": True})
    personal = {"u_coffee", "Marisol", "Portland", "@beanqueen", "coffee ritual", *[it.item_id for it in h.items],
                *[it.text for it in h.items], prof.presentation.tone, prof.visual.palette_name}
    for req in (director.build_storyboard_request(prod),
                director.build_storyboard_request(prod, profile=prof, match=fallback)):
        blob = json.dumps(req.context) + " ".join(getattr(p, "text", "") for p in req.parts) + req.item
        assert not [s for s in personal if s in blob], [s for s in personal if s in blob]
        assert req.context["personalized"] is False and "user" not in req.context
    req = director.build_storyboard_request(prod, profile=prof, match=m)
    assert req.context["personalized"] and req.context["user"]["presentation"]["tone"] == prof.presentation.tone


# ------------------------------------------------------------------------------------------- grounding
def test_collage_has_product_user_and_start_frame_sources(tmp_path, offline):
    prod, h = make_product(tmp_path), make_history(tmp_path)
    prof = director.model_user(h, offline, Cache(tmp_path / "c"))
    frame = _img(tmp_path / "frame.png", (30, 60, 90))
    g = director.ground_assets(prod, tmp_path / "pair", profile=prof, history=h, start_frame=frame)
    kinds = [s.kind for s in g.sources]
    assert kinds.count("product_image") == 2 and "logo" in kinds and kinds.count("user_visual") == 3
    assert "palette" in kinds and "start_frame" in kinds
    assert {s.origin for s in g.sources if s.kind == "user_visual"} <= {it.item_id for it in h.items}
    col = Image.open(tmp_path / "pair" / "collage.png")
    assert col.size == (720, 768)
    # the start frame is the lead tile: its colour fills the top-left
    assert np.abs(np.asarray(col)[200, 200].astype(int) - [30, 60, 90]).max() < 12
    ids = {s.asset_id for s in g.sources}
    assert ids == {a["id"] for a in director.asset_catalog(prod, personalized=True, history=h, start_frame=frame)}
    for p in director.grounding_asset_paths(g).values():
        assert Path(p).is_file() or (Path.cwd() / p).is_file()
    # same inputs, same bytes
    g2 = director.ground_assets(prod, tmp_path / "pair2", profile=prof, history=h, start_frame=frame)
    assert (tmp_path / "pair" / "collage.png").read_bytes() == (tmp_path / "pair2" / "collage.png").read_bytes()
    assert len(g2.sources) == len(g.sources)


def test_product_without_images_fails_naming_the_field(tmp_path):
    prod = make_product(tmp_path)
    Path(prod.images[0].path).unlink()
    with pytest.raises(director.DirectorError, match=r"brewco-beans.*images\[0\]\.path"):
        director.ground_assets(prod, tmp_path / "pair")


def test_every_shipped_product_gets_valid_plans_at_every_slot_length(offline):
    """The offline Director and the retrieval template stay valid for all 18 products at slot lengths from
    2 to 3 s (cut narration keeps its numbers whole: "10,000 mm" is not "10")."""
    from nextads_lib import pcg, products
    from nextads_lib.config import DEFAULT_PRODUCTS_DIR

    lib = products.load_library(DEFAULT_PRODUCTS_DIR)
    assert len(lib.products) == 18
    for prod in lib.products:
        for dur in (6.0, 8.0, 10.0, 12.0):
            sb = director.plan_storyboard(prod, offline, duration_s=dur)
            assert director.validate_storyboard(sb, prod, duration_s=dur) == [], (prod.id, dur)
            rt = pcg.retrieval_storyboard(prod, dur)
            assert director.validate_storyboard(rt, prod, duration_s=dur) == [], (prod.id, dur)


def test_offline_interests_are_read_from_the_history_words():
    """Two interests written by hand (no taxonomy keyword lists) and a noise note: two interests, named with
    phrases of the history, their evidence their own items (the coarse topic each maps to is not asserted:
    the taxonomy's coffee text is nearer this baking than its food text, a known weakness of the mapping)."""
    from nextads_lib.schemas import HistoryItem

    bread = ["Sourdough loaf with an open crumb", "Feeding the starter before work", "Shaping the dough for the banneton",
             "Baking two loaves in the dutch oven"]
    cats = ["The kitten knocked the plant over again", "Kitten litter training, day three", "Vet check for the kitten"]
    items = [HistoryItem(item_id=f"b{i}", title=t) for i, t in enumerate(bread)]
    items += [HistoryItem(item_id=f"c{i}", title=t) for i, t in enumerate(cats)]
    items.append(HistoryItem(item_id="n0", title="monday again, why is it raining"))
    h = UserHistory(dataset="qilin", user_id="u_read", items=items)
    prof = director.model_user(h, get_backend("offline"))
    assert len(prof.topics) == 2
    words = " ".join(it.title.lower() for it in items)
    first, second = prof.topics
    assert {e[0] for e in first.evidence} == {"b"} and {e[0] for e in second.evidence} == {"c"}
    assert second.topic == "pets" and first.weight >= second.weight
    for t in prof.topics:
        assert t.label and all(p in words for p in t.label.split(", "))
