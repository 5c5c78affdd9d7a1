"""The PCI run end to end on a tiny PCI-Bench (2 users x 2 products, 96x160 hosts at 8 fps with audio): the
annotations (once per video, shared videos once), the artifacts, the integrated video decoded (duration, seams,
label, audio), seam continuity nextads vs generic, the three systems, resume without new work, bad inputs
recorded per pair and retried, and a Director behind the OpenAI wire format (the tests' local server)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nextads_lib import director, media, pci
from nextads_lib import host as H
from nextads_lib.backends import get_backend
from nextads_lib.config import StudyPaths
from nextads_lib.producer.post import label_present
from nextads_lib.schemas import (
    BenchPair,
    HistoryItem,
    HostSummary,
    Integration,
    IntegrationDecision,
    PairManifest,
    ProductLibrary,
    SeamSummary,
    Storyboard,
    UserHistory,
    VideoAnnotation,
)
from nextads_lib.store import Cache, read_json, read_jsonl, read_model, write_json, write_jsonl

from test_director import _img, make_product, make_razor  # noqa: E402  (shared small fixtures)
from test_host import envelope, make_host  # noqa: E402
from test_pcg import ChatServer, _text, chat_server  # noqa: E402,F401  (the local OpenAI-compatible server)

TINY = {"duration_s": 4.0}
FPS = 8.0

COFFEE_VIDEOS = [("Latte art", "Latte art practice at the cafe, coffee and milk foam"),
                 ("Espresso", "Pulling an espresso shot at home with fresh coffee beans"),
                 ("Street walk", "A calm walk through the city at dusk")]
GAMER_VIDEOS = [("Boss fight", "Finally beat the boss on hard mode, controller in hand"),
                ("Console setup", "My console gaming corner with a new controller"),
                ("Street walk", "A calm walk through the city at dusk")]


def make_clip(path: Path, colour, moving: bool, seconds: float = 2.0, fps: float = FPS) -> str:
    """A 64x64 history video: flat colour with a square that moves (or not)."""
    frames = []
    for i in range(int(seconds * fps)):
        fr = np.zeros((64, 64, 3), np.uint8)
        fr[:] = colour
        x = 4 + (3 * i if moving else 0)
        fr[20:36, x : x + 16] = (240, 240, 240)
        frames.append(fr)
    media.write_video(path, frames, fps)
    return str(path)


def make_video_history(root: Path, user_id: str, videos, colour, shared: str) -> UserHistory:
    items = []
    for i, (title, text) in enumerate(videos):
        if title == "Street walk":  # the same item (same file) in both users' histories
            vp, iid = shared, "v_street"
        else:
            vp, iid = make_clip(root / f"{user_id}_{i}.mp4", colour, moving=i % 2 == 0), f"{user_id}_v{i}"
        cover = _img(root / f"{user_id}_{i}_cover.png", colour, patch=(230, 230, 230))
        items.append(HistoryItem(item_id=iid, title=title, text=text, image_paths=[cover], video_path=vp))
    return UserHistory(dataset="microlens", user_id=user_id, items=items)


def make_pci_bench(root: Path, extra_pairs=(), extra_users=(), extra_products=()) -> StudyPaths:
    """A tiny PCI-Bench under ``root``: a coffee user and a gamer user, each with a coffee product and a razor,
    one host video per user (6 s, 3 shots, audio)."""
    paths = StudyPaths(root)
    assets = root / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    products = [make_product(assets), make_razor(assets), *extra_products]
    write_json(paths.library_json, ProductLibrary(products_dir=str(assets), products=products))
    shared = make_clip(assets / "street.mp4", (60, 60, 70), moving=False)
    users = [make_video_history(assets, "u_coffee", COFFEE_VIDEOS, (139, 94, 60), shared),
             make_video_history(assets, "u_gamer", GAMER_VIDEOS, (20, 10, 40), shared), *extra_users]
    write_jsonl(paths.bench_users("pci"), users)
    hosts = {"u_coffee": make_host(assets / "host_coffee.mp4"),
             "u_gamer": make_host(assets / "host_gamer.mp4", shots=((10, 10, 30), (90, 20, 120), (20, 80, 140)))}
    pairs = []
    for u in ("u_coffee", "u_gamer"):
        for rank, pid in enumerate(("brewco-beans", "edge-razor"), 1):
            pairs.append(BenchPair(pair_id=f"{u}__{pid}", task="pci", user_id=u, product_id=pid, compatibility=0.5,
                                   matched_topic="coffee", rank=rank, host_item_id=f"h_{u}", host_video=str(hosts[u]),
                                   host_title="Morning coffee vlog" if u == "u_coffee" else "Game night stream"))
    write_jsonl(paths.bench_pairs("pci"), pairs + list(extra_pairs))
    return paths


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_pci_bench(tmp_path_factory.mktemp("pci_data"))


@pytest.fixture(scope="module")
def nextads_run(bench):
    s = pci.run_pci(bench, "nextads", "offline", "compositor", workers=2, progress=False, protocol="extended", **TINY)
    return s, read_json(bench.run_dir("pci", s.run_name) / "stats.json")


@pytest.fixture(scope="module")
def generic_run(bench, nextads_run):
    return pci.run_pci(bench, "generic", "offline", "compositor", workers=1, progress=False, protocol="extended",
                       **TINY)


# --------------------------------------------------------------------------------------------- user modeling
def test_annotations_once_per_video_and_profile_from_them(tmp_path):
    root = tmp_path / "a"
    root.mkdir()
    shared = make_clip(root / "street.mp4", (60, 60, 70), moving=False)
    hc = make_video_history(root, "u_coffee", COFFEE_VIDEOS, (139, 94, 60), shared)
    hg = make_video_history(root, "u_gamer", GAMER_VIDEOS, (20, 10, 40), shared)
    backend = get_backend("offline", cache_dir=tmp_path / "bc")
    cache = Cache(tmp_path / "cache")
    n0 = len(backend.usage)
    pc, ac, notes = director.model_user_from_videos(hc, backend, cache)
    assert len(backend.usage) - n0 == 3 + 1 and not notes  # 3 annotations + 1 aggregation
    n1 = len(backend.usage)
    pg, ag, _ = director.model_user_from_videos(hg, backend, cache)
    assert len(backend.usage) - n1 == 2 + 1  # the shared street video is not annotated again
    assert [a.item_id for a in ac] == ["u_coffee_v0", "u_coffee_v1", "v_street"]
    street = {a.item_id: a for a in ac}["v_street"]
    assert street == {a.item_id: a for a in ag}["v_street"] and street.motion == "static"
    assert isinstance(street, VideoAnnotation) and street.backend == "offline" and len(street.video_sha256) == 64
    assert {a.item_id: a for a in ac}["u_coffee_v0"].motion in ("slow", "dynamic")  # the square moves 3 px a frame
    assert pc.topics[0].topic == "coffee" and "u_coffee_v0" in pc.topics[0].evidence
    assert pg.topics[0].topic == "gaming"
    assert pc.visual.palette_name and pc.visual.palette and pc.summary.endswith("covers.")
    # a history video that is missing is skipped with a note; none left -> the text/cover profile
    gone = hc.model_copy(update={"items": [hc.items[0].model_copy(update={"video_path": str(root / "nope.mp4")})]})
    p, anns, notes = director.model_user_from_videos(gone, backend, cache)
    assert anns == [] and "nope.mp4" in notes[0] and "model_user" in notes[-1] and p.user_id == "u_coffee"


# ------------------------------------------------------------------------------------------------- the run
def test_nextads_writes_every_artifact(bench, nextads_run):
    s, stats = nextads_run
    assert s.run_name == "nextads__offline__compositor__extended" and s.n_pairs == 4 and s.task == "pci"
    assert s.failed == 0 and s.done == 4, s.failures
    assert stats["workers"] == 2 and stats["renders"] == 4
    run_dir = bench.run_dir("pci", s.run_name)
    for u in ("u_coffee", "u_gamer"):
        assert (run_dir / "users" / u / "profile.json").is_file()
        assert len(read_jsonl(run_dir / "users" / u / "annotations.jsonl", VideoAnnotation)) == 3
    for pair_id in ("u_coffee__brewco-beans", "u_gamer__edge-razor"):
        d = run_dir / pair_id
        for f in ("integrated.mp4", "creative.mp4", "decision.json", "host_summary.json", "plan.json", "collage.png",
                  "grounding.json", "integration.json", "manifest.json", "integration_frame.png", "profile.json"):
            assert (d / f).is_file(), f"{pair_id}/{f}"
        man = read_model(d / "manifest.json", PairManifest)
        assert man.task == "pci" and man.status == "done"
        assert set(man.seconds) >= {"profile", "host", "summary", "decide", "plan", "ground", "render", "insert"}
        hs = read_model(d / "host_summary.json", HostSummary)
        assert hs.backend == "offline" and hs.n_shots == 3 and hs.has_audio and hs.duration_s == pytest.approx(6.0)
        dec = read_model(d / "decision.json", IntegrationDecision)
        assert dec.backend == "offline" and dec.chosen_index is not None and len(dec.candidates) >= 3
        assert dec.candidates[dec.chosen_index].kind == "after_shot_boundary"  # the offline rule
        assert 1.0 <= dec.timestamp_s <= 5.0 and dec.rationale
        plan = read_model(d / "plan.json", Storyboard)
        assert plan.personalized and plan.returns_to_frame and plan.starts_from_frame and plan.host_connection
        assert "start_frame" in plan.slots[0].assets and "start_frame" in plan.slots[-1].assets
        kinds = {x["kind"] for x in read_json(d / "grounding.json")["sources"]}
        assert {"product_image", "logo", "start_frame", "user_visual"} <= kinds


def test_integrated_video_decoded(bench, nextads_run):
    s, _ = nextads_run
    d = bench.run_dir("pci", s.run_name) / "u_coffee__brewco-beans"
    integ = read_model(d / "integration.json", Integration)
    dec = read_model(d / "decision.json", IntegrationDecision)
    pair = [p for p in read_jsonl(bench.bench_pairs("pci"), BenchPair) if p.pair_id == "u_coffee__brewco-beans"][0]
    host_mp4 = Path(pair.host_video)
    n_host, n_seg = media.count_frames(host_mp4), media.count_frames(d / "creative.mp4")
    assert n_seg == int(TINY["duration_s"] * FPS)
    # duration = host + segment
    assert media.count_frames(d / "integrated.mp4") == n_host + n_seg
    info = media.probe(d / "integrated.mp4")
    assert abs(info.duration_s - (n_host + n_seg) / FPS) <= 1 / FPS + 1e-6
    assert (info.width, info.height) == (96, 160) and info.audio_rate == 16000  # the host's size and sample rate
    k = dec.frame_index
    assert integ.host_frame_index == k and integ.seam_in_s == pytest.approx((k + 1) / FPS)
    got = media.read_frames(d / "integrated.mp4")
    hf = media.read_frames(host_mp4)
    diff = lambda a, b: float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())  # noqa: E731
    assert diff(got[k], hf[k]) < 3  # the frame before the seam is the host frame at t
    frame_png = np.asarray(media.load_image(d / "integration_frame.png"))
    assert diff(frame_png, hf[k]) < 1  # the saved decision frame is that frame
    assert diff(got[k + 1], hf[k]) < 12  # the segment starts on it (the label on top)
    assert diff(got[k + n_seg], hf[k]) < 12  # ... and returns to it
    assert diff(got[k + 1 + n_seg], hf[k + 1]) < 3  # the host resumes
    assert all(label_present(got[i]) for i in range(k + 1, k + 1 + n_seg))
    assert not any(label_present(got[i]) for i in [*range(0, k + 1), *range(k + 1 + n_seg, len(got))])
    ha, ia, sa = (media.read_audio(p, 16000) for p in (host_mp4, d / "integrated.mp4", d / "creative.mp4"))
    a_in, a_out = round(integ.seam_in_s * 16000), round(integ.seam_out_s * 16000)
    assert np.corrcoef(envelope(ia[800 : a_in - 800]), envelope(ha[800 : a_in - 800]))[0, 1] > 0.95  # host before t
    n = a_out - a_in - 1600
    seg, ref = envelope(ia[a_in + 800 : a_in + 800 + n]), envelope(sa[800 : 800 + n])
    assert np.corrcoef(seg, ref)[0, 1] > 0.9 and np.abs(seg - ref).mean() < 0.01  # the segment's audio (host paused)
    n = min(ha.size - a_in, ia.size - a_out) - 1600
    after, ref = envelope(ia[a_out + 800 : a_out + 800 + n]), envelope(ha[a_in + 800 : a_in + 800 + n])
    assert np.corrcoef(after, ref)[0, 1] > 0.95  # host audio resumes where it paused


def test_seams_are_smoother_than_generic_mid_roll(bench, nextads_run, generic_run):
    s, _ = nextads_run
    g = generic_run
    assert g.done == 4 and g.failed == 0
    sn = read_model(bench.run_dir("pci", s.run_name) / "seams.json", SeamSummary)
    sg = read_model(bench.run_dir("pci", g.run_name) / "seams.json", SeamSummary)
    assert sn.n == sg.n == 4
    assert sn.seam_change_in_mean < sg.seam_change_in_mean
    assert sn.seam_change_out_mean < sg.seam_change_out_mean
    assert sn.smooth_fraction > sg.smooth_fraction
    rows = pci.seam_table_rows([sn, sg])
    assert rows[0]["system"] == "nextads" and rows[1]["integrated"] == 4


def test_generic_sees_no_user_or_host_and_is_a_mid_roll(bench, generic_run):
    run_dir = bench.run_dir("pci", generic_run.run_name)
    for d in sorted(run_dir.glob("u_*")):
        dec = read_model(d / "decision.json", IntegrationDecision)
        assert dec.backend == "rule:mid-roll" and dec.candidates == [] and dec.frame_index == 24  # 48 frames / 2
        assert not (d / "host_summary.json").exists() and not (d / "profile.json").exists()
        plan = read_model(d / "plan.json", Storyboard)
        assert not plan.personalized and plan.starts_from_frame is None and plan.host_connection is None
        assert {x["kind"] for x in read_json(d / "grounding.json")["sources"]} == {"product_image", "logo"}
        assert read_model(d / "integration.json", Integration).insert_at_s == pytest.approx(25 / FPS)


def test_retrieval_is_a_template_mid_roll(bench):
    s = pci.run_pci(bench, "retrieval", "offline", "wan:whatever", workers=1, progress=False, **TINY)
    assert s.run_name == "retrieval__none__compositor__paper" and s.done == 4
    plan = read_model(bench.run_dir("pci", s.run_name) / "u_gamer__brewco-beans" / "plan.json", Storyboard)
    assert plan.backend == "retrieval-template" and {sl.camera for sl in plan.slots} == {"static"}
    d = bench.run_dir("pci", s.run_name) / "u_gamer__brewco-beans"
    assert media.count_frames(d / "integrated.mp4") == 48 + 32


def test_rerun_costs_nothing(bench, nextads_run):
    s1, _ = nextads_run
    p = bench.run_dir("pci", s1.run_name) / "u_coffee__brewco-beans" / "integrated.mp4"
    mtime = p.stat().st_mtime_ns
    s2 = pci.run_pci(bench, "nextads", "offline", "compositor", workers=2, progress=False, protocol="extended",
                     **TINY)
    stats = read_json(bench.run_dir("pci", s2.run_name) / "stats.json")
    assert stats["pairs_executed"] == 0 and stats["renders"] == 0 and stats["user_model_calls"] == 0
    assert stats["pairs_reused"] == 4 and stats["workers"] == 0
    assert (s2.done, s2.failed) == (s1.done, s1.failed) and p.stat().st_mtime_ns == mtime


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_hosts_are_recorded_and_only_they_are_retried(tmp_path):
    assets = tmp_path / "bad"
    assets.mkdir()
    corrupt = assets / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"junk" * 100)
    short = make_host(assets / "short.mp4", seconds=2.0)
    mute = make_host(assets / "mute.mp4", audio=False)
    extra = [BenchPair(pair_id=f"u_coffee__{n}", task="pci", user_id="u_coffee", product_id=pid, compatibility=0.5,
                       matched_topic="coffee", rank=3, host_item_id=f"h_{n}", host_video=str(v))
             for n, v, pid in (("corrupt", corrupt, "brewco-beans"), ("short", short, "brewco-beans"),
                               ("mute", mute, "brewco-beans"), ("ghost", mute, "ghost-product"))]
    paths = make_pci_bench(tmp_path / "data", extra)
    s = pci.run_pci(paths, "nextads", "offline", "compositor", workers=1, progress=False, limit_users=1,
                    protocol="extended", **TINY)  # extended: the segment has sound (the voice-over)
    assert s.n_pairs == 6 and s.failed == 3 and s.done == 3, s.failures
    by = {f.pair_id: f for f in s.failures}
    assert by["u_coffee__corrupt"].stage == "host" and "corrupt.mp4" in by["u_coffee__corrupt"].reason
    assert by["u_coffee__short"].stage == "host" and "at least 3 s" in by["u_coffee__short"].reason
    assert by["u_coffee__ghost"].stage == "load" and "ghost-product" in by["u_coffee__ghost"].reason
    # a host without audio still works: the segment's audio over the segment, silence elsewhere
    d = paths.run_dir("pci", s.run_name) / "u_coffee__mute"
    integ = read_model(d / "integration.json", Integration)
    assert "no audio" in integ.audio and media.probe(d / "integrated.mp4").has_audio
    e = envelope(media.read_audio(d / "integrated.mp4", 16000))
    assert e[2 : int(integ.seam_in_s * 20) - 2].max() < 0.005
    assert e[int(integ.seam_in_s * 20) + 2 : int(integ.seam_out_s * 20) - 2].mean() > 0.005
    s2 = pci.run_pci(paths, "nextads", "offline", "compositor", workers=1, progress=False, limit_users=1,
                     protocol="extended", **TINY)
    stats = read_json(paths.run_dir("pci", s.run_name) / "stats.json")
    assert stats["pairs_executed"] == 3 and stats["pairs_reused"] == 3 and s2.failed == 3


def test_decision_outside_the_video_is_rejected(tmp_path):
    v = make_host(tmp_path / "h.mp4")
    an = H.analyze_host(v)
    base = dict(host_item_id="h", host_video=str(v), frame_path="x.png", rationale="r", backend="test")
    pci.validate_decision(IntegrationDecision(timestamp_s=3.0, frame_index=24, **base), an)
    for t, f in ((7.5, 60), (0.5, 4), (5.6, 45)):
        with pytest.raises(H.HostError, match=r"decision.timestamp_s: .* outside the host's allowed range"):
            pci.validate_decision(IntegrationDecision(timestamp_s=t, frame_index=f, **base), an)
    with pytest.raises(H.HostError, match="decision.frame_index"):
        pci.validate_decision(IntegrationDecision(timestamp_s=3.0, frame_index=60, **base), an)


# --------------------------------------------------------------------------- a Director behind the wire format
def pci_canned(body, bad_index: bool = False):
    """Canned answers for the PCI stages, picked by the system prompt."""
    text = _text(body)
    if "Annotate one short video" in text:
        gamer = "boss" in text.lower() or "console" in text.lower()
        return {"topic": "gaming" if gamer else "coffee", "topic_scores": {"gaming" if gamer else "coffee": 0.9},
                "tone": "calm", "narrative": "vlog", "information_density": "low", "visual_tone": "warm",
                "palette": ["#8B5E3C"], "palette_name": "earth", "motion": "slow", "camera": "pan_left",
                "motion_magnitude": 0.02, "summary": "canned"}
    if "annotated beforehand" in text:
        return {"topics": [{"topic": "coffee", "weight": 1.0, "evidence": []}],
                "presentation": {"tone": "calm", "narrative": "vlog", "information_density": "low"},
                "visual": {"palette": ["#8B5E3C"], "palette_name": "earth", "lighting": "warm", "motion": "slow",
                           "elements": [], "evidence": []}, "summary": "canned"}
    if "Summarise the host video" in text:
        return {"topic": "coffee", "content": "someone makes coffee", "visual_presentation": "warm, 3 shots",
                "audio_characteristics": "a tone"}
    if "candidate points found by video analysis" in text:
        return {"candidate_index": 99 if bad_index else 0, "rationale": "the first calm frame"}
    name = "Edge Three" if "Edge Three" in text else "Brewco Beans"
    slots = [{"index": 0, "start_s": 0.0, "end_s": 2.0, "role": "hook", "camera": "static", "composition": "from the host",
              "narration": f"Meet {name}.", "on_screen_text": name, "pacing": "medium", "assets": ["start_frame", "product_0"]},
             {"index": 1, "start_s": 2.0, "end_s": 4.0, "role": "cta", "camera": "static", "composition": "back to host",
              "narration": f"Get {name}.", "on_screen_text": name, "pacing": "medium", "assets": ["logo", "start_frame"]}]
    return {"hook": f"Meet {name}", "matched_topic": None, "slots": slots, "cta": f"Get {name}",
            "host_connection": "picks up the host's coffee moment"}


def test_pipeline_with_an_openai_director(tmp_path, chat_server):
    srv = chat_server(pci_canned)
    paths = make_pci_bench(tmp_path / "data")
    s = pci.run_pci(paths, "nextads", "openai:gpt-4o-test", "compositor", workers=1, progress=False, **TINY)
    assert s.run_name == "nextads__openai-gpt-4o-test__compositor__paper"
    assert s.failed == 0 and s.done == 4, s.failures
    assert s.input_tokens > 0
    point_calls = [b for b in srv.log if "candidate points found by video analysis" in _text(b)]
    assert len(point_calls) == 4
    # the integration-point request carries each candidate's frame as an image
    assert sum(1 for m in point_calls[0]["messages"] for p in (m["content"] if isinstance(m["content"], list) else [])
               if isinstance(p, dict) and p.get("type") == "image_url") >= 3
    assert len([b for b in srv.log if "Annotate one short video" in _text(b)]) == 5  # 6 videos, one shared
    d = paths.run_dir("pci", s.run_name) / "u_coffee__brewco-beans"
    dec = read_model(d / "decision.json", IntegrationDecision)
    assert dec.backend == "openai:gpt-4o-test" and dec.chosen_index == 0 and dec.rationale == "the first calm frame"
    assert read_model(d / "plan.json", Storyboard).host_connection == "picks up the host's coffee moment"
    assert media.count_frames(d / "integrated.mp4") == 48 + 32


def test_an_answer_naming_no_candidate_fails_the_pair(tmp_path, chat_server):
    chat_server(lambda body: pci_canned(body, bad_index=True))
    paths = make_pci_bench(tmp_path / "data")
    s = pci.run_pci(paths, "nextads", "openai:gpt-4o-test", "compositor", workers=1, progress=False,
                    limit_users=1, **TINY)
    assert s.failed == 2 and {f.stage for f in s.failures} == {"decide"}
    assert all("decision.candidate_index: 99 names no candidate" in f.reason for f in s.failures)
    assert json.loads((paths.run_dir("pci", s.run_name) / "summary.json").read_text())["failed"] == 2


# ------------------------------------------------------------------------------------------ the paper protocol
@pytest.fixture(scope="module")
def paper_run(bench, nextads_run):
    s = pci.run_pci(bench, "nextads", "offline", "compositor", workers=1, progress=False, **TINY)
    return s, read_json(bench.run_dir("pci", s.run_name) / "stats.json")


def test_paper_segment_is_the_producers_own(bench, nextads_run, paper_run):
    """Under the paper protocol no frame of the segment is the host frame or a blend into it, the start/return
    check is enforced and recorded, and the seams measure the Producer's output (rougher than the blend)."""
    from nextads_lib.producer.post import BOUNDARY_BLEND_S, burn_label, fit_image  # noqa: PLC0415
    from nextads_lib.schemas import HostContinuity  # noqa: PLC0415

    s, stats = paper_run
    ext, _ = nextads_run
    assert s.run_name == "nextads__offline__compositor__paper" and s.protocol == "paper"
    assert s.failed == 0 and s.done == 4, s.failures
    assert stats["pairs_executed"] == 4 and stats["renders"] == 4  # nothing reused from the extended run
    d = bench.run_dir("pci", s.run_name) / "u_coffee__brewco-beans"
    de = bench.run_dir("pci", ext.run_name) / "u_coffee__brewco-beans"
    man = read_model(d / "manifest.json", PairManifest)
    assert man.protocol == "paper" and man.switches["frame_overwrite"] is False
    assert man.artifacts["continuity"] == "continuity.json"
    assert read_json(d / "producer.json")["settings"]["post_production"] is False
    cont, cont_ext = (read_model(x / "continuity.json", HostContinuity) for x in (d, de))
    assert cont.enforced and not cont.errors and cont.plan_starts_from_frame and cont.plan_returns_to_frame
    assert not cont_ext.enforced
    paper, extended = media.read_frames(d / "creative.mp4"), media.read_frames(de / "creative.mp4")
    h, w = paper.shape[1:3]
    host = burn_label(fit_image(np.asarray(media.load_image(d / "integration_frame.png")), w, h)).astype(np.float32)
    diff = lambda a: float(np.abs(a.astype(np.float32) - host).mean())  # noqa: E731
    nb = int(round(BOUNDARY_BLEND_S * FPS))
    assert diff(extended[0]) < 12 and diff(extended[-1]) < 12  # the extended segment is pinned to the host frame
    assert min(diff(f) for f in paper[: nb + 1]) > 12 and min(diff(f) for f in paper[-nb - 1 :]) > 12
    assert label_present(paper[0]) and not media.probe(d / "creative.mp4").has_audio
    # measured on the output: the paper's ends are farther from the host frame, and so are its seams
    assert cont.start_change > 2 * cont_ext.start_change and cont.return_change > 2 * cont_ext.return_change
    ip, ie = (read_model(x / "integration.json", Integration) for x in (d, de))
    assert ip.seam_change_in > ie.seam_change_in and ip.seam_change_out > ie.seam_change_out
    assert "silence" in ip.audio  # the compositor's segment has no sound of its own
    seams = read_model(bench.run_dir("pci", s.run_name) / "seams.json", SeamSummary)
    assert seams.protocol == "paper" and seams.host_checked == 4 and seams.host_check_failed == 0


def test_start_return_check_can_fail(bench, paper_run):
    s, _ = paper_run
    plan = read_model(bench.run_dir("pci", s.run_name) / "u_coffee__brewco-beans" / "plan.json", Storyboard)
    assert pci.check_plan_host(plan)[1] == []
    last = plan.slots[-1]
    bad = plan.model_copy(update={"slots": [*plan.slots[:-1], last.model_copy(
        update={"assets": [a for a in last.assets if a != "start_frame"]})]})
    flags, errs = pci.check_plan_host(bad)
    assert flags == {"plan_starts_from_frame": True, "plan_returns_to_frame": False, "plan_host_connection": True}
    assert len(errs) == 1 and "does not return to the integration frame" in errs[0]
    out, rec = pci.apply_plan_host_check(bad, "f.png", enforce=True)
    assert out.returns_to_frame is False and out.starts_from_frame and rec.errors == errs and rec.enforced
    out2, rec2 = pci.apply_plan_host_check(bad, "f.png", enforce=False)
    assert out2.returns_to_frame is True and rec2.errors == errs and not rec2.enforced  # recorded, not enforced


def test_a_director_that_does_not_return_fails_the_paper_pair(tmp_path, chat_server):
    def no_return(body):
        ans = pci_canned(body)
        if isinstance(ans, dict) and "slots" in ans:
            ans["slots"][-1]["assets"] = [a for a in ans["slots"][-1]["assets"] if a != "start_frame"]
        return ans

    chat_server(no_return)
    paths = make_pci_bench(tmp_path / "data")
    s = pci.run_pci(paths, "nextads", "openai:gpt-4o-test", "compositor", workers=1, progress=False,
                    limit_users=1, **TINY)
    # the plan's flags are what its slots show, so the Director's validation refuses it (after one revision)
    assert s.failed == 2 and {f.stage for f in s.failures} == {"plan"}, s.failures
    assert all("must return to the integration frame" in f.reason for f in s.failures)
    ext = pci.run_pci(paths, "nextads", "openai:gpt-4o-test", "compositor", workers=1, progress=False,
                      limit_users=1, protocol="extended", **TINY)
    assert ext.failed == 0 and ext.done == 2  # frame_overwrite: the flags are set by code, as before
