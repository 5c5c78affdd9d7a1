"""The PCG run end to end on a tiny benchmark (2 users x 2 products, tiny renders): artifacts, decoded creatives,
resume without new work, failures recorded per pair, the three systems, and a Director behind the OpenAI wire
format (the tests' local server)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nextads_lib import media, pcg
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import BenchPair, PairManifest, ProductLibrary, RunSummary, Storyboard, UserHistory
from nextads_lib.store import read_json, read_model, write_json, write_jsonl

from test_director import make_history, make_product, make_razor  # noqa: E402  (shared small fixtures)

TINY = {"width": 96, "height": 160, "fps": 5.0, "duration_s": 4.0}

GAMER_TEXTS = [("Boss fight", "Finally beat the boss on hard mode, controller in hand"),
               ("Console setup", "My console gaming corner with a new controller"),
               ("Esports night", "Watching the esports finals with friends, what a game"),
               ("Level up", "Grinding levels all weekend in my favourite game")]


def make_bench(root: Path, extra_pairs: list[BenchPair] | None = None, extra_users: list[UserHistory] | None = None,
               extra_products=None) -> StudyPaths:
    """A tiny PCG-Bench under ``root``: coffee user and gamer user, each with a coffee product and a razor."""
    paths = StudyPaths(root)
    assets = root / "assets"
    assets.mkdir(parents=True, exist_ok=True)
    products = [make_product(assets), make_razor(assets), *(extra_products or [])]
    write_json(paths.library_json, ProductLibrary(products_dir=str(assets), products=products))
    users = [make_history(assets, "u_coffee"),
             make_history(assets, "u_gamer", GAMER_TEXTS, colours=[(10, 10, 20), (255, 30, 140), (0, 240, 255)]),
             *(extra_users or [])]
    write_jsonl(paths.bench_users("pcg"), users)
    pairs = []
    for u in ("u_coffee", "u_gamer"):
        for rank, pid in enumerate(("brewco-beans", "edge-razor"), 1):
            pairs.append(BenchPair(pair_id=f"{u}__{pid}", task="pcg", user_id=u, product_id=pid, compatibility=0.5,
                                   matched_topic="coffee", rank=rank))
    write_jsonl(paths.bench_pairs("pcg"), pairs + list(extra_pairs or []))
    return paths


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("pcg_data"))


@pytest.fixture(scope="module")
def nextads_run(bench):
    s1 = pcg.run_pcg(bench, "nextads", "offline", "compositor", workers=1, progress=False, **TINY)
    stats1 = read_json(bench.run_dir("pcg", s1.run_name) / "stats.json")
    return s1, stats1


def test_nextads_end_to_end_writes_every_artifact(bench, nextads_run):
    s, stats = nextads_run
    assert s.run_name == "nextads__offline__compositor" and s.n_pairs == 4
    assert s.failed == 0 and s.done + s.fallback == 4
    assert stats["user_model_calls"] == 2  # once per user, never per pair
    # both users' razor pairs fall back to the same generic plan and collage: rendered once, reused once
    assert stats["renders"] == 3 and stats["render_cache_hits"] == 1
    run_dir = bench.run_dir("pcg", s.run_name)
    assert read_model(run_dir / "summary.json", RunSummary) == s
    for pair_id in ("u_coffee__brewco-beans", "u_gamer__edge-razor"):
        d = run_dir / pair_id
        for f in ("profile.json", "match.json", "plan.json", "collage.png", "grounding.json", "creative.mp4",
                  "producer.json", "manifest.json"):
            assert (d / f).is_file(), f"{pair_id}/{f}"
        man = read_model(d / "manifest.json", PairManifest)
        assert man.director_backend == "offline" and man.producer_backend == "compositor"
        assert set(man.seconds) >= {"profile", "match", "plan", "ground", "render"}
        assert read_json(d / "profile.json") == {"$ref": f"../users/{man.user_id}/profile.json"}
        assert pcg.read_profile(d).user_id == man.user_id
        info = media.probe(d / "creative.mp4")
        assert (info.width, info.height) == (96, 160)
        assert media.count_frames(d / "creative.mp4") == int(TINY["duration_s"] * TINY["fps"])
        frames = media.read_frames(d / "creative.mp4")
        assert frames.std() > 5  # a real picture, not a flat frame
    # the coffee user gets a personalized coffee plan; the gamer x razor pair falls back to the generic plan
    plan = read_model(run_dir / "u_coffee__brewco-beans" / "plan.json", Storyboard)
    assert plan.personalized and plan.matched_topic == "coffee" and plan.user_id == "u_coffee"
    gm = read_model(run_dir / "u_gamer__edge-razor" / "manifest.json", PairManifest)
    assert gm.status == "fallback"
    assert not read_model(run_dir / "u_gamer__edge-razor" / "plan.json", Storyboard).personalized


def test_rerun_costs_nothing(bench, nextads_run):
    s1, _ = nextads_run
    mtime = (bench.run_dir("pcg", s1.run_name) / "u_coffee__brewco-beans" / "creative.mp4").stat().st_mtime_ns
    s2 = pcg.run_pcg(bench, "nextads", "offline", "compositor", workers=1, progress=False, **TINY)
    stats = read_json(bench.run_dir("pcg", s2.run_name) / "stats.json")
    assert stats["pairs_executed"] == 0 and stats["renders"] == 0 and stats["user_model_calls"] == 0
    assert stats["pairs_reused"] == 4 and stats["workers"] == 0
    assert (s2.done, s2.fallback, s2.failed) == (s1.done, s1.fallback, s1.failed)
    assert (bench.run_dir("pcg", s1.run_name) / "u_coffee__brewco-beans" / "creative.mp4").stat().st_mtime_ns == mtime


def test_generic_sees_no_user_data_and_shares_renders(bench):
    s = pcg.run_pcg(bench, "generic", "offline", "compositor", workers=1, progress=False, **TINY)
    run_dir = bench.run_dir("pcg", s.run_name)
    stats = read_json(run_dir / "stats.json")
    assert s.done == 4 and s.failed == 0
    # one generic plan per product: at most 2 renders for 4 pairs (fewer when the nextads fallbacks made them)
    assert stats["user_model_calls"] == 0 and stats["renders"] <= 2
    assert stats["renders"] + stats["render_cache_hits"] == 4
    for d in run_dir.glob("u_*"):
        assert not (d / "profile.json").exists() and not (d / "match.json").exists()
        plan = read_model(d / "plan.json", Storyboard)
        assert plan.user_id is None and not plan.personalized
        blob = (d / "plan.json").read_text()
        assert "u_coffee" not in blob and "u_gamer" not in blob and "Marisol" not in blob
        g = read_json(d / "grounding.json")
        assert {x["kind"] for x in g["sources"]} == {"product_image", "logo"}  # no user visuals
    a = (run_dir / "u_coffee__brewco-beans" / "creative.mp4").read_bytes()
    assert a == (run_dir / "u_gamer__brewco-beans" / "creative.mp4").read_bytes()


def test_retrieval_is_a_fixed_template(bench):
    s = pcg.run_pcg(bench, "retrieval", "offline", "wan:whatever", workers=1, progress=False, **TINY)
    assert s.run_name == "retrieval__none__compositor" and s.director_backend == "none" and s.done == 4
    plan = read_model(bench.run_dir("pcg", s.run_name) / "u_coffee__brewco-beans" / "plan.json", Storyboard)
    assert plan.hook == "Better mornings, bean by bean." and {sl.camera for sl in plan.slots} == {"static"}


def test_bad_inputs_are_recorded_and_only_they_are_retried(tmp_path):
    broken = make_product(tmp_path / "b", pid="broken-beans", name="Broken Beans")
    Path(broken.images[0].path).unlink()
    extra_pairs = [
        BenchPair(pair_id="u_coffee__ghost", task="pcg", user_id="u_coffee", product_id="ghost-product",
                  compatibility=0.5, matched_topic="coffee", rank=3),
        BenchPair(pair_id="u_coffee__broken", task="pcg", user_id="u_coffee", product_id="broken-beans",
                  compatibility=0.5, matched_topic="coffee", rank=4),
        BenchPair(pair_id="u_empty__brewco", task="pcg", user_id="u_empty", product_id="brewco-beans",
                  compatibility=0.5, matched_topic="coffee", rank=1),
    ]
    paths = make_bench(tmp_path / "data", extra_pairs, [UserHistory(dataset="qilin", user_id="u_empty", items=[])],
                       [broken])
    s = pcg.run_pcg(paths, "nextads", "offline", "compositor", workers=1, progress=False, **TINY)
    assert s.n_pairs == 7 and s.failed == 3 and s.done + s.fallback == 4
    by = {f.pair_id: f for f in s.failures}
    assert by["u_coffee__ghost"].stage == "load" and "ghost-product" in by["u_coffee__ghost"].reason
    assert by["u_coffee__broken"].stage == "ground" and "images[0].path" in by["u_coffee__broken"].reason
    assert by["u_empty__brewco"].stage == "profile" and "empty history" in by["u_empty__brewco"].reason
    man = read_model(paths.run_dir("pcg", s.run_name) / "u_coffee__broken" / "manifest.json", PairManifest)
    assert man.status == "failed" and man.stage_failed == "ground"
    s2 = pcg.run_pcg(paths, "nextads", "offline", "compositor", workers=1, progress=False, **TINY)
    stats = read_json(paths.run_dir("pcg", s.run_name) / "stats.json")
    assert stats["pairs_executed"] == 3 and stats["pairs_reused"] == 4 and stats["renders"] == 0
    assert s2.failed == 3
