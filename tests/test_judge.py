"""The judge: each offline proxy on constructed inputs with a known ordering, the judgments on real tiny files
(labels, cache, undecodable video, failed pairs, the parquet), and the VLM path against the tests' local
OpenAI and Gemini wire-format servers (good answer, out-of-range re-asked then missing, 429 then success)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nextads_lib import judge, media
from nextads_lib.backends import get_backend
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import (
    Asset,
    AssetLicense,
    BenchPair,
    HistoryItem,
    PairManifest,
    Product,
    ProductLibrary,
    RunSummary,
    Slot,
    Storyboard,
    UserHistory,
)
from nextads_lib.store import write_json, write_jsonl

from fakeapi.model_routes import ModelServer, Reply, _camel

LIC = AssetLicense(license="made-here", source="drawn by the test")
W, H, FPS = 96, 160, 5.0
EARTH = [(139, 94, 60), (194, 168, 120), (107, 112, 92)]
NEON = [(255, 30, 140), (0, 240, 255), (20, 10, 40)]
COFFEE = ["Latte art practice at the cafe this morning", "Brewing espresso at home: grind the beans and pull the shot",
          "Cafe hopping route with great coffee", "Pour over coffee beans review", "Cold brew coffee recipe"]
GAMING = "Level up your console game night: controller in hand, boss fight on hard mode, esports finals"


# ------------------------------------------------------------------------------------------------ fixtures
def _solid(colour, w=W, h=H) -> np.ndarray:
    a = np.zeros((h, w, 3), np.uint8)
    a[:] = colour
    return a


def product_art(seed: int = 0, side: int = 64) -> np.ndarray:
    """A textured product image (blocks of colour): something a template match can find."""
    g = np.random.default_rng(seed)
    blocks = g.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((side // 8, side // 8, 1), np.uint8))


def frames_with(colours, product: np.ndarray | None = None, n: int = 10) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = _solid(colours[i % len(colours)])
        f[H // 2:, :, :] = colours[(i + 1) % len(colours)]
        if product is not None:
            p = np.asarray(Image.fromarray(product).resize((48, 48), Image.Resampling.NEAREST))
            f[20:68, 24:72] = p
        out.append(f)
    return out


def write_creative(path: Path, frames: list[np.ndarray]) -> Path:
    media.write_video(path, frames, fps=FPS)
    return path


def make_product(tmp: Path, pid: str = "brewco-beans") -> Product:
    d = tmp / "products" / pid
    d.mkdir(parents=True, exist_ok=True)
    Image.fromarray(product_art(1)).save(d / "logo.png")
    Image.fromarray(product_art(2)).save(d / "hero.png")
    Image.fromarray(product_art(3)).save(d / "side.png")
    return Product(
        id=pid, name="Brewco Beans", brand="Brewco", category="retail", subcategory="coffee beans",
        description="Whole coffee beans roasted in small batches for espresso and filter brewing.",
        selling_points=["Roasted in small batches", "Notes of cocoa", "Works for espresso and filter"],
        slogan="Better mornings, bean by bean.", facts={"price": "$14 per 250 g bag"},
        forbidden_claims=["cures tiredness"], topics=["coffee"], palette=["#5A3A22"],
        logo=Asset(path=str(d / "logo.png"), kind="logo", caption="logo", license=LIC),
        images=[Asset(path=str(d / "hero.png"), kind="image", caption="hero", license=LIC),
                Asset(path=str(d / "side.png"), kind="image", caption="side", license=LIC)])


def make_history(tmp: Path, user_id: str = "u1", colours=EARTH, texts=COFFEE) -> UserHistory:
    d = tmp / "history" / user_id
    d.mkdir(parents=True, exist_ok=True)
    items = []
    for i, t in enumerate(texts):
        p = d / f"{i}.png"
        Image.fromarray(_solid(colours[i % len(colours)], 48, 64)).save(p)
        items.append(HistoryItem(item_id=f"{user_id}_{i}", title=t.split(":")[0], text=t, image_paths=[str(p)]))
    return UserHistory(dataset="qilin", user_id=user_id, items=items)


def make_plan(product: Product, text: str, personalized: bool = True, user_id: str | None = "u1") -> Storyboard:
    return Storyboard(
        product_id=product.id, user_id=user_id if personalized else None, backend="offline", personalized=personalized,
        hook=text.split(".")[0], matched_topic="coffee" if personalized else None, duration_s=2.0, cta="Get it",
        slots=[Slot(index=0, start_s=0, end_s=2.0, role="cta", camera="static", composition="a table",
                    narration=text, on_screen_text=text.split(".")[0])])


def make_pair(run_dir: Path, pair_id: str, product: Product, frames, text: str, user_id: str = "u1",
              status: str = "done", task: str = "pcg", system: str = "nextads") -> Path:
    d = run_dir / pair_id
    d.mkdir(parents=True, exist_ok=True)
    write_json(d / "plan.json", make_plan(product, text, user_id=user_id))
    if frames is not None:
        write_creative(d / "creative.mp4", frames)
    write_json(d / "manifest.json", PairManifest(
        pair_id=pair_id, task=task, run_name=run_dir.name, system=system, director_backend="offline",
        producer_backend="compositor", user_id=user_id, product_id=product.id, status=status,
        stage_failed="render" if status == "failed" else None, failure="boom" if status == "failed" else None,
        seed=1))
    return d


PERSONAL = "Your coffee ritual at the cafe: Brewco Beans roasted in small batches for espresso and filter brewing."
GENERIC_OFF = "Level up game night with a new controller and esports finals."


def make_study(tmp: Path, task: str = "pcg") -> StudyPaths:
    """A tiny study: library, users, bench pairs, and a run of 2 users x 2 pairs (one failed pair)."""
    paths = StudyPaths(tmp)
    prod = make_product(tmp)
    write_json(paths.library_json, ProductLibrary(products_dir=str(tmp / "products"), products=[prod]))
    users = [make_history(tmp, "u1"), make_history(tmp, "u2", NEON, [GAMING] * 4)]
    write_jsonl(paths.bench_users(task), users)
    run = paths.run_dir(task, "nextads__offline__compositor")
    make_pair(run, "u1__a", prod, frames_with(EARTH, product_art(2)), PERSONAL, "u1", task=task)
    make_pair(run, "u1__b", prod, frames_with(NEON), GENERIC_OFF, "u1", task=task)
    make_pair(run, "u2__a", prod, frames_with(NEON, product_art(2)), PERSONAL, "u2", task=task)
    make_pair(run, "u2__b", prod, None, PERSONAL, "u2", status="failed", task=task)
    write_json(run / "summary.json", RunSummary(task=task, run_name=run.name, system="nextads", director_backend="offline",
                                                producer_backend="compositor", n_pairs=4, done=3, fallback=0, failed=1,
                                                seconds=1.0, cost_usd=0.0))
    return paths


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("judge_study"))


# ------------------------------------------------------------------------------------------ proxies alone
def test_presentation_prefers_the_users_palette():
    hist = [_solid(c, 48, 64) for c in EARTH]
    own, _ = judge.presentation_proxy(hist, np.stack(frames_with(EARTH)))
    clash, _ = judge.presentation_proxy(hist, np.stack(frames_with(NEON)))
    assert own > clash + 3 and 0 <= clash < own <= 10


def test_content_prefers_the_users_topics():
    on, t_on = judge.content_proxy(COFFEE, "A calm espresso at your favourite cafe, coffee beans freshly ground")
    off, t_off = judge.content_proxy(COFFEE, GAMING)
    assert on > off + 2 and t_on["interest"] > t_off["interest"]


def test_content_scores_against_the_users_own_interests_weighted_by_size():
    # four notes about sourdough baking, two about trail running, one stray: the creative is scored against
    # the interest it matches, and a minor interest counts less than the main one
    hist = ["Sourdough starter feeding schedule, day 4", "My sourdough loaf finally has an open crumb",
            "Shaping and scoring a sourdough boule", "Rye sourdough with caraway, baked in a dutch oven",
            "Trail running shoes for muddy hills", "Long trail run along the ridge at dawn", "New phone case arrived"]
    main, t_main = judge.content_proxy(hist, "Bake a crusty sourdough loaf with an open crumb from your own starter")
    minor, t_minor = judge.content_proxy(hist, "Trail running on muddy ridges at dawn in grippy shoes")
    off, t_off = judge.content_proxy(hist, GAMING)
    assert t_main["interests"] >= 2 and t_main["share"] > t_minor["share"]
    assert main > minor > off and t_minor["interest"] > t_off["interest"] + 0.2
    assert t_main["cos_interest"] > 0.5 and hist[int(t_main["example"])].lower().count("sourdough")


def test_product_alignment_needs_the_product_in_frames_and_text():
    art = [product_art(2), product_art(1)]
    rec = {"name": "Brewco Beans", "brand": "Brewco", "selling_points": ["Roasted in small batches", "Notes of cocoa"],
           "facts": {"price": "$14 per 250 g bag"}, "forbidden_claims": ["cures tiredness"], "description": "", "slogan": ""}
    good, tg = judge.product_proxy(np.stack(frames_with(EARTH, art[0])), art,
                                   "Brewco Beans, roasted in small batches, notes of cocoa. $14 per 250 g bag", rec)
    bare, tb = judge.product_proxy(np.stack(frames_with(EARTH)), art, "A cosy morning drink.", rec)
    assert good > bare + 4 and tg["visual"] > tb["visual"] and tg["points"] == 1.0 and tb["name"] == 0
    wrong, tw = judge.product_proxy(np.stack(frames_with(EARTH, art[0])), art,
                                    "Brewco Beans cures tiredness, only $9 per 250 g bag", rec)
    assert tw["forbidden"] == 1 and tw["unsupported"] == 1 and wrong < good - 3


def test_diversity_identical_near_zero_varied_higher():
    same = np.stack(frames_with(EARTH))
    zero, _ = judge.diversity_proxy([same, same, same], [PERSONAL] * 3)
    varied, _ = judge.diversity_proxy([same, np.stack(frames_with(NEON)), np.stack(frames_with([(250, 250, 250)]))],
                                      [PERSONAL, GAMING, "A quiet hike to a mountain lake with a tent"])
    assert zero < 0.2 and varied > zero + 3


def test_seam_continuity_bands():
    assert judge.seam_continuity(0.05, 0.05, 0.05) == 1.0
    assert judge.seam_continuity(0.8, 0.8, 0.05) == 0.0
    assert 0.4 < judge.seam_continuity(0.2, 0.2, 0.05) < 0.6  # 4x the host's own change
    assert judge.seam_continuity(None, None, 0.05) is None


# ------------------------------------------------------------------------------------ offline on real files
def test_offline_judgments_are_labelled_proxies_and_cached(study, tmp_path):
    prod = make_product(tmp_path)
    hist = make_history(tmp_path)
    b = get_backend("offline", cache_dir=tmp_path / "cache")
    run = study.run_dir("pcg", "nextads__offline__compositor")
    scores = {c: judge.judge_pair(c, run / "u1__a", task="pcg", product=prod, history=hist, backend=b, n_frames=4)
              for c in judge.PAIR_CRITERIA[:3]}
    for c, s in scores.items():
        assert s.score is not None and s.error is None and s.proxy and "proxy" in s.label and s.reason
        assert s.label.startswith(judge.PAPER_NAMES[c]) and s.backend == "offline"
    other = judge.judge_pair("personalization_presentation", run / "u1__b", task="pcg", product=prod, history=hist,
                             backend=b, n_frames=4)
    assert scores["personalization_presentation"].score > other.score  # user's palette beats the clashing one
    b2 = get_backend("offline", cache_dir=tmp_path / "cache")
    again = judge.judge_pair("product_alignment", run / "u1__a", task="pcg", product=prod, history=hist, backend=b2,
                             n_frames=4)
    assert again == scores["product_alignment"] and b2.usage[-1].cached
    pci_only = judge.judge_pair("integration_quality", run / "u1__a", task="pcg", product=prod, history=hist, backend=b)
    assert pci_only.score is None and "PCI only" in pci_only.error


def test_undecodable_video_is_recorded_not_zero(tmp_path):
    prod = make_product(tmp_path)
    d = make_pair(tmp_path / "run", "u1__x", prod, None, PERSONAL)
    (d / "creative.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    s = judge.judge_pair("personalization_presentation", d, task="pcg", product=prod, history=make_history(tmp_path),
                         backend=get_backend("offline"), n_frames=4)
    assert s.score is None and "undecodable" in s.error and "creative.mp4" in s.error


def test_judge_all_writes_the_parquet_with_failed_pairs_recorded(study):
    out = judge.judge_all(study, "pcg,pci", get_backend("offline", cache_dir=study.cache), n_frames=4, workers=2)
    assert set(out) == {"pcg"}  # no PCI runs: skipped
    df = pd.read_parquet(study.results / "judge_pcg.parquet")
    assert list(df.columns) == judge.COLUMNS
    assert set(df.criterion) == {"personalization_presentation", "personalization_content", "product_alignment",
                                 "diversity"}
    failed = df[df.pair_id == "u2__b"]
    assert len(failed) == 3 and failed.score.isna().all() and failed.error.str.contains("skipped: pair failed").all()
    div = df[df.criterion == "diversity"].set_index("user_id")
    assert np.isfinite(div.loc["u1", "score"]) and pd.isna(div.loc["u1", "pair_id"])
    assert np.isnan(div.loc["u2", "score"]) and "at least 2" in div.loc["u2", "error"]  # one creative left
    ok = df[df.error.isna()]
    assert ok.score.between(0, 10).all() and ok.proxy.all() and ok.label.str.contains("proxy").all()
    assert (df.judge_backend == "offline").all() and (df.run == "nextads__offline__compositor").all()
    means = judge.run_means(df)
    assert set(means.criterion) == set(df.criterion) and means["missing"].sum() == 4


def test_pci_integration_quality_from_seams(tmp_path):
    prod = make_product(tmp_path)
    run = tmp_path / "runs" / "pci" / "nextads__offline__compositor"
    hostc = [(90, 60, 40)] * 3
    results = {}
    for name, ad in (("smooth", EARTH), ("jarring", NEON)):
        d = make_pair(run, f"u1__{name}", prod, frames_with(ad), PERSONAL, task="pci")
        frames = [_solid(hostc[0])] * 10 + frames_with(ad) + [_solid(hostc[0])] * 10
        write_creative(d / "integrated.mp4", frames)
        ch = 0.05 if name == "smooth" else 0.6
        write_json(d / "integration.json", {"host_video": "h.mp4", "host_duration_s": 4.0, "insert_at_s": 2.0,
                                            "segment_duration_s": 2.0, "integrated_duration_s": 6.0, "seam_in_s": 2.0,
                                            "seam_out_s": 4.0, "seam_change_in": ch, "seam_change_out": ch,
                                            "host_median_change": 0.05, "width": W, "height": H, "fps": FPS})
        results[name] = judge.judge_pair("integration_quality", d, task="pci", product=prod, history=None,
                                         backend=get_backend("offline"), n_frames=4, host_title="Coffee at the cafe")
    assert results["smooth"].score > results["jarring"].score + 3
    assert "seam continuity 1.00" in results["smooth"].reason


# ------------------------------------------------------------------------------------- VLM wire formats
@pytest.fixture
def server():
    pytest.importorskip("openai")
    pytest.importorskip("google.genai")
    s = ModelServer(default=Reply('{"score": 8, "rationale": "warm palette like the covers"}'))
    yield s
    s.close()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL"):
        monkeypatch.delenv(k, raising=False)


def _pair(tmp_path):
    prod = make_product(tmp_path)
    d = make_pair(tmp_path / "run", "u1__a", prod, frames_with(EARTH, product_art(2)), PERSONAL)
    return prod, d, make_history(tmp_path)


def test_openai_judge_sends_n_frames_and_keeps_the_reason_given_as_rationale(server, tmp_path):
    prod, d, hist = _pair(tmp_path)
    b = get_backend("openai:gpt-4o", cache_dir=tmp_path / "c", base_url=server.openai_url, api_key="k", backoff_s=0.01)
    s = judge.judge_pair("personalization_presentation", d, task="pcg", product=prod, history=hist, backend=b, n_frames=3)
    assert s.score == 8 and s.reason.startswith("warm") and not s.proxy
    assert s.label == "Personalization-Presentation (judge: openai:gpt-4o)"
    msgs = server.log[0]["body"]["messages"]
    assert msgs[0]["content"] == judge.PROMPTS["personalization_presentation"]
    images = [c for c in msgs[1]["content"] if c["type"] == "image_url"]
    assert len(images) == len(hist.items) + 3  # the history covers + n_frames frames of the creative


def test_out_of_range_score_is_reasked_once_then_missing_never_zero(server, tmp_path):
    prod, d, hist = _pair(tmp_path)
    server.queue = [Reply('{"score": 14, "rationale": "x"}'), Reply('{"score": -1, "rationale": ""}')]
    b = get_backend("openai:gpt-4o", cache_dir=tmp_path / "c", base_url=server.openai_url, api_key="k", backoff_s=0.01)
    s = judge.judge_pair("product_alignment", d, task="pcg", product=prod, history=hist, backend=b, n_frames=2)
    assert s.score is None and "failed validation twice" in s.error and len(server.log) == 2
    assert "previous answer was invalid" in server.log[1]["body"]["messages"][1]["content"][-1]["text"]
    server.queue = [Reply('{"score": 11, "rationale": "x"}'), Reply('{"score": 6.5, "reason": "mostly the product"}')]
    s2 = judge.judge_pair("product_alignment", d, task="pcg", product=prod, history=hist, backend=b, n_frames=2)
    assert s2.score == 6.5 and s2.error is None  # repaired on the re-ask


def test_gemini_judge_gets_the_video_inline_and_survives_429(server, tmp_path):
    prod, d, hist = _pair(tmp_path)
    server.queue = [Reply(status=429, headers={"Retry-After": "0"})]
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "c", base_url=server.base, api_key="k",
                    backoff_s=0.01)
    s = judge.judge_pair("personalization_content", d, task="pcg", product=prod, history=hist, backend=b,
                         protocol="extended")
    assert s.score == 8 and s.label == "Personalization-Content" and s.backend == "gemini:gemini-2.5-flash"
    assert len(server.log) == 2
    body = server.log[-1]["body"]
    parts = body["contents"][0]["parts"]
    mimes = [p["inlineData"].get("mimeType", p["inlineData"].get("mime_type")) for p in parts if "inlineData" in p]
    assert "video/mp4" in mimes and mimes.count("image/png") == len(hist.items)
    assert body["systemInstruction"]["parts"][0]["text"] == judge.EXTENDED_PROMPTS["personalization_content"]
    assert any("Latte art" in p.get("text", "") for p in parts)  # judge extras: the history texts reach the judge


def test_diversity_through_a_vlm_sees_every_creative(server, tmp_path):
    prod = make_product(tmp_path)
    ds = [make_pair(tmp_path / "run", f"u1__{i}", prod, frames_with(c), PERSONAL) for i, c in enumerate((EARTH, NEON))]
    b = get_backend("openai:gpt-4o", cache_dir=tmp_path / "c", base_url=server.openai_url, api_key="k")
    s = judge.judge_diversity(ds, backend=b, n_frames=4)
    assert s.score == 8 and s.pair_id is None
    content = server.log[0]["body"]["messages"][1]["content"]
    assert sum(c["type"] == "image_url" for c in content) == 4  # 2 creatives x n_frames // 2
    assert json.dumps(content).count("Ad ") >= 2


def test_a_judge_without_its_key_stops_with_the_variable_name(tmp_path):
    from nextads_lib.backends import BackendError

    pytest.importorskip("openai")
    prod, d, hist = _pair(tmp_path)
    with pytest.raises(BackendError, match="OPENAI_API_KEY"):
        judge.judge_pair("product_alignment", d, task="pcg", product=prod, history=hist,
                         backend=get_backend("openai:gpt-4o"), n_frames=2)


# ------------------------------------------------------------------------------------------- protocols
MARKER = "Zorblax morning ritual with Brewco Beans"  # narration text found nowhere else
SUMMARY = "Quokka latte tutorial summary"  # the host summary's text


def _pci_pair(tmp_path: Path, prod: Product) -> Path:
    d = make_pair(tmp_path / "run_pci", "u1__p", prod, frames_with(EARTH, product_art(2)), MARKER, task="pci")
    write_creative(d / "integrated.mp4", [_solid((90, 60, 40))] * 10 + frames_with(EARTH) + [_solid((90, 60, 40))] * 10)
    write_json(d / "integration.json", {"host_video": "h.mp4", "host_duration_s": 4.0, "insert_at_s": 2.0,
                                        "segment_duration_s": 2.0, "integrated_duration_s": 6.0, "seam_in_s": 2.0,
                                        "seam_out_s": 4.0, "seam_change_in": 0.05, "seam_change_out": 0.05,
                                        "host_median_change": 0.05, "width": W, "height": H, "fps": FPS})
    write_json(d / "host_summary.json", {"title": "Cafe vlog", "summary": SUMMARY})
    return d


def test_paper_judge_sends_only_appendix_a_inputs_for_every_criterion(server, tmp_path):
    """The wire body an OpenAI-format judge receives: under ``paper`` no plan narration, no forbidden claims, no
    seam times or stills, no host summary, no history texts; under ``extended`` those extras are there."""
    prod = make_product(tmp_path)
    hist = make_history(tmp_path)
    d = make_pair(tmp_path / "run", "u1__a", prod, frames_with(EARTH, product_art(2)), MARKER)
    d2 = make_pair(tmp_path / "run", "u1__b", prod, frames_with(NEON), MARKER)
    dp = _pci_pair(tmp_path, prod)
    b = get_backend("openai:gpt-4o", cache_dir=tmp_path / "c", base_url=server.openai_url, api_key="k")
    cases = [(c, d, "pcg") for c in judge.PAIR_CRITERIA[:3]] + [("integration_quality", dp, "pci")]
    for proto in ("paper", "extended"):
        sent = {}
        for c, pair_dir, task in cases:
            n = len(server.log)
            s = judge.judge_pair(c, pair_dir, task=task, product=prod, history=hist, backend=b, n_frames=2,
                                 host_title="Cafe vlog", protocol=proto)
            assert s.score == 8 and s.protocol == proto
            assert len(server.log) == n + 1
            sent[c] = server.log[-1]["body"]["messages"]
        n = len(server.log)
        judge.judge_diversity([d, d2], backend=b, n_frames=2, protocol=proto)
        sent["diversity"] = server.log[n]["body"]["messages"]
        for c, msgs in sent.items():
            body = json.dumps(msgs)
            want = (judge.EXTENDED_PROMPTS if proto == "extended" else judge.PAPER_PROMPTS)[c]
            assert msgs[0]["content"] == want
            if proto == "paper":
                for extra in (MARKER, "narration", "never make", "cures tiredness", "Latte art", SUMMARY,
                              "Frame at", "runs from"):
                    assert extra not in body, (c, extra)
        if proto == "paper":
            # what Appendix A does give: the product, the covers, the video, the integration point
            assert "Brewco Beans" in json.dumps(sent["personalization_content"])
            assert "2.0 s into the original video" in json.dumps(sent["integration_quality"])
            covers = [x for x in sent["personalization_content"][1]["content"] if x["type"] == "image_url"]
            assert len(covers) == len(hist.items) + 2
        else:
            assert MARKER in json.dumps(sent["personalization_content"]) and MARKER in json.dumps(sent["diversity"])
            assert "cures tiredness" in json.dumps(sent["product_alignment"])
            integ = json.dumps(sent["integration_quality"])
            assert SUMMARY in integ and "Frame at" in integ and "2.00 s to 4.00 s" in integ


def test_answers_with_reason_validate_and_rationale_is_an_alias():
    a = judge.JudgeAnswer.model_validate_json('{"score": 7, "reason": "warm tones"}')
    b = judge.JudgeAnswer.model_validate_json('{"score": 7, "rationale": "warm tones"}')
    assert a == b and a.reason == "warm tones"
    assert judge.JudgeAnswer.model_json_schema()["required"] == ["score", "reason"]  # what the judge is asked for
    with pytest.raises(Exception):
        judge.JudgeAnswer.model_validate_json('{"score": 7}')
    with pytest.raises(Exception):
        judge.JudgeAnswer.model_validate_json('{"score": 11, "reason": "x"}')


def test_cache_keys_differ_by_protocol(tmp_path):
    prod = make_product(tmp_path)
    d = make_pair(tmp_path / "run", "u1__a", prod, frames_with(EARTH, product_art(2)), MARKER)
    b = get_backend("offline", cache_dir=tmp_path / "c")
    keys = {}
    for proto in ("paper", "paper+judge_extras", "extended", "paper+post_production"):
        req = judge.build_request("product_alignment", d, task="pcg", product=prod, history=None, n_frames=2,
                                  protocol=judge.protocol_from_label(proto))
        assert req.context["protocol"] == proto
        keys[proto] = b.cache_key(req)
    assert len(set(keys.values())) == 4
    # the offline proxy's forbidden-claims penalty is a judge extra: the paper context carries no claims
    paper = judge.build_request("product_alignment", d, task="pcg", product=prod, history=None, protocol="paper")
    ext = judge.build_request("product_alignment", d, task="pcg", product=prod, history=None, protocol="extended")
    assert paper.context["product"]["forbidden_claims"] == [] and ext.context["product"]["forbidden_claims"]


def test_judge_rows_record_the_run_and_the_judge_protocol(tmp_path):
    paths = make_study(tmp_path)
    prod = make_product(tmp_path)
    run = paths.run_dir("pcg", "nextads__offline__compositor__paper")
    make_pair(run, "u1__a", prod, frames_with(EARTH, product_art(2)), PERSONAL, "u1")
    make_pair(run, "u1__b", prod, frames_with(NEON), GENERIC_OFF, "u1")
    summ = RunSummary(task="pcg", run_name=run.name, system="nextads", director_backend="offline",
                      producer_backend="compositor", n_pairs=2, done=2, fallback=0, failed=0, seconds=1.0,
                      cost_usd=0.0).model_dump(mode="json")
    summ["protocol"] = "paper"  # what the protocol-aware runs record
    write_json(run / "summary.json", summ)
    out = judge.judge_all(paths, "pcg", get_backend("offline", cache_dir=paths.cache), n_frames=2, workers=1,
                          protocol="paper")["pcg"]
    assert list(out.columns) == judge.COLUMNS and (out.judge_protocol == "paper").all()
    by_run = out.groupby("run").agg(run_protocol=("run_protocol", "first"), protocol=("protocol", "first"))
    # the old run (no protocol recorded) was made with every extension on; the new one under the paper's
    assert by_run.loc["nextads__offline__compositor", "run_protocol"] == "extended"
    assert by_run.loc["nextads__offline__compositor", "protocol"] == "extended · judge: paper"
    assert by_run.loc["nextads__offline__compositor__paper", "run_protocol"] == "paper"
    assert by_run.loc["nextads__offline__compositor__paper", "protocol"] == "paper"
    assert out.reason[out.score.notna()].str.len().gt(0).all()
    means = judge.run_means(out)
    assert "protocol" in means.columns


def test_gemini_paper_judge_gets_no_plan_text(server, tmp_path):
    prod = make_product(tmp_path)
    hist = make_history(tmp_path)
    d = make_pair(tmp_path / "run", "u1__a", prod, frames_with(EARTH, product_art(2)), MARKER)
    b = get_backend("gemini:gemini-2.5-flash", cache_dir=tmp_path / "c", base_url=server.base, api_key="k")
    for c in judge.PAIR_CRITERIA[:3]:
        s = judge.judge_pair(c, d, task="pcg", product=prod, history=hist, backend=b, n_frames=2)
        assert s.score == 8 and s.protocol == "paper"
        body = server.log[-1]["body"]
        assert body["systemInstruction"]["parts"][0]["text"] == judge.PAPER_PROMPTS[c]
        texts = " ".join(p.get("text", "") for p in body["contents"][0]["parts"])
        assert MARKER not in texts and "never make" not in texts and "Latte art" not in texts
        assert "video/mp4" in json.dumps(body)  # the creative itself goes to the judge
        # a thinking budget is sent (Flash: 0), so thinking tokens cannot eat the answer's output budget
        assert _camel(body)["generationConfig"]["thinkingConfig"]["thinkingBudget"] == 0
