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
TINY_W, TINY_H = TINY["width"], TINY["height"]

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
    s1 = pcg.run_pcg(bench, "nextads", "offline", "compositor", workers=2, progress=False, protocol="extended",
                     **TINY)  # process pool; the extended protocol has the fallback
    stats1 = read_json(bench.run_dir("pcg", s1.run_name) / "stats.json")
    return s1, stats1


def test_nextads_end_to_end_writes_every_artifact(bench, nextads_run):
    s, stats = nextads_run
    assert s.run_name == "nextads__offline__compositor__extended" and s.n_pairs == 4
    assert s.protocol == "extended" and s.switches["compat_threshold"] == 0.35 and s.settings["protocol"] == "extended"
    assert s.failed == 0 and s.done + s.fallback == 4
    assert stats["user_model_calls"] == 2 and stats["workers"] == 2  # once per user, never per pair
    # both users' razor pairs fall back to the same generic plan and collage: one render is reused unless the
    # two workers rendered it at the same time
    assert stats["renders"] + stats["render_cache_hits"] == 4 and stats["renders"] >= 3
    run_dir = bench.run_dir("pcg", s.run_name)
    assert read_model(run_dir / "summary.json", RunSummary) == s
    for pair_id in ("u_coffee__brewco-beans", "u_gamer__edge-razor"):
        d = run_dir / pair_id
        for f in ("profile.json", "match.json", "plan.json", "collage.png", "grounding.json", "creative.mp4",
                  "producer.json", "manifest.json"):
            assert (d / f).is_file(), f"{pair_id}/{f}"
        man = read_model(d / "manifest.json", PairManifest)
        assert man.director_backend == "offline" and man.producer_backend == "compositor"
        assert man.protocol == "extended" and man.switches["post_production"] is True
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
    s2 = pcg.run_pcg(bench, "nextads", "offline", "compositor", workers=1, progress=False, protocol="extended",
                     **TINY)
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
    assert s.run_name == "retrieval__none__compositor__paper" and s.director_backend == "none" and s.done == 4
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
    assert s.n_pairs == 7 and s.failed == 3 and s.done == 4 and s.fallback == 0
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



def test_paper_protocol_keeps_the_producers_creative(bench, nextads_run):
    """The paper protocol: every pair personalized (no fallback), the creative is the compositor's picture with
    the label from the first frame, no voice or music (no audio track), no CTA end card; nothing is shared with
    the extended run's cache; manifests and the summary record the protocol."""
    from nextads_lib.producer import label_present, post  # noqa: PLC0415
    from nextads_lib.protocol import get_protocol  # noqa: PLC0415

    ext, _ = nextads_run
    s = pcg.run_pcg(bench, "nextads", "offline", "compositor", workers=1, progress=False, **TINY)
    run_dir = bench.run_dir("pcg", s.run_name)
    stats = read_json(run_dir / "stats.json")
    assert s.run_name == "nextads__offline__compositor__paper" and run_dir != bench.run_dir("pcg", ext.run_name)
    assert s.protocol == "paper" and s.switches == get_protocol("paper").model_dump(mode="json")
    assert (s.done, s.fallback, s.failed) == (4, 0, 0) and s.settings["compat_threshold"] == 0.0
    assert stats["pairs_executed"] == 4 and stats["renders"] == 4  # no cached pair or render of the extended run
    for d in sorted(run_dir.glob("u_*")):
        man = read_model(d / "manifest.json", PairManifest)
        assert man.protocol == "paper" and man.switches["post_production"] is False
        assert read_json(d / "producer.json")["settings"]["post_production"] is False
        assert not read_json(d / "match.json")["fallback"]
        assert read_model(d / "plan.json", Storyboard).personalized
        assert not media.probe(d / "creative.mp4").has_audio
    # the same personalized plan under both protocols: the extended creative ends on the CTA card, the paper's not
    pair = "u_coffee__brewco-beans"
    plan = read_model(run_dir / pair / "plan.json", Storyboard)
    accent = post.palette_accent(read_json(run_dir / pair / "producer.json")["settings"]["palette"])
    paper_f = media.read_frames(run_dir / pair / "creative.mp4")
    ext_f = media.read_frames(bench.run_dir("pcg", ext.run_name) / pair / "creative.mp4")
    card = post.cta_layer(plan.cta, TINY_W, TINY_H, accent)
    assert max(card.match(f) for f in ext_f[-3:]) < 30
    assert min(card.match(f) for f in paper_f[-5:]) > 40
    assert label_present(paper_f[0]) and all(label_present(f) for f in paper_f)
    # a threshold given to the run overrides the protocol's and the label (and the directory) say so
    s2 = pcg.run_pcg(bench, "retrieval", "offline", "compositor", workers=1, progress=False, compat_threshold=0.2,
                     **TINY)
    assert s2.protocol == "paper+compat_threshold=0.2" and s2.run_name.endswith("__paper-compat_threshold-0.2")


# ------------------------------------------------------------------------ a Director behind the OpenAI wire format
class ChatServer:
    """A local OpenAI-compatible ``/v1/chat/completions`` endpoint (stdlib, 127.0.0.1) answering with canned JSON
    chosen by ``script(body) -> dict``; every request body is kept in ``log``."""

    def __init__(self, script):
        import threading  # noqa: PLC0415
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

        self.script, self.log = script, []
        outer = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.log.append(body)
                answer = json.dumps(outer.script(body))
                out = json.dumps({
                    "id": f"chatcmpl-{len(outer.log)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", "m"), "choices": [{"index": 0, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": answer}}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def _text(body) -> str:
    out = []
    for m in body.get("messages", []):
        c = m.get("content")
        if isinstance(c, str):
            out.append(c)
        elif isinstance(c, list):
            out += [p.get("text", "") for p in c if isinstance(p, dict)]
    return "\n".join(out)


def canned(body, bad_storyboards: int = 0, counter={"sb": 0}):  # noqa: B006 - a per-process call counter
    """Canned Director answers for the tiny bench, picked by the stage's system prompt and the product named."""
    from nextads_lib import director  # noqa: PLC0415

    text = _text(body)
    if "infer a structured profile" in text:
        gamer = "boss" in text.lower()
        return {"topics": [{"topic": "gaming" if gamer else "coffee", "weight": 1.0, "evidence": []}],
                "presentation": {"tone": "energetic" if gamer else "calm", "narrative": "montage",
                                 "information_density": "low"},
                "visual": {"palette": ["#FF2E88"] if gamer else ["#8B5E3C"], "palette_name": "neon" if gamer else "earth",
                           "lighting": "neon" if gamer else "warm", "motion": "dynamic", "elements": [], "evidence": []},
                "summary": "canned"}
    razor = "Edge Three" in text
    name = "Edge Three" if razor else "Brewco Beans"
    if "score the compatibility" in text:
        topic = "gaming" if "gaming" in text else "coffee"
        score = 0.9 if (topic == "coffee" and not razor) else 0.1
        pts = (["Three flexible blades", "Pivoting head", "Aloe strip"] if razor
               else ["Notes of cocoa", "Roasted in small batches", "Works for espresso and filter"])
        return {"candidates": [{"topic": topic, "score": score, "reason": "canned"}], "best_topic": topic,
                "selling_points": pts}
    counter["sb"] += 1
    slots = [{"index": 0, "start_s": 0.0, "end_s": 2.0, "role": "hook", "camera": "push_in", "composition": "hero",
              "narration": f"Meet {name}.", "on_screen_text": name, "pacing": "fast", "assets": ["product_0"]},
             {"index": 1, "start_s": 2.0, "end_s": 4.0, "role": "cta", "camera": "static", "composition": "logo",
              "narration": f"Get {name}.", "on_screen_text": name, "pacing": "medium", "assets": ["logo"]}]
    if counter["sb"] <= bad_storyboards:
        slots[1]["end_s"] = 5.5  # too long, and past the requested duration
    return {"hook": f"Meet {name}", "matched_topic": None, "slots": slots, "cta": f"Get {name}", "host_connection": None}


@pytest.fixture()
def chat_server(monkeypatch):
    servers = []

    def start(script):
        s = ChatServer(script)
        servers.append(s)
        monkeypatch.setenv("OPENAI_BASE_URL", s.url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-local")
        return s

    yield start
    for s in servers:
        s.close()


def test_pipeline_with_an_openai_director(tmp_path, chat_server):
    srv = chat_server(canned)
    paths = make_bench(tmp_path / "data")
    s = pcg.run_pcg(paths, "nextads", "openai:gpt-4o-test", "compositor", workers=1, progress=False, **TINY)
    assert s.run_name == "nextads__openai-gpt-4o-test__compositor__paper"
    assert s.failed == 0 and (s.done, s.fallback) == (4, 0), s.failures  # the paper: no fallback
    assert s.input_tokens > 0 and s.output_tokens > 0
    profile_calls = [b for b in srv.log if "infer a structured profile" in _text(b)]
    assert len(profile_calls) == 2  # once per user
    run_dir = paths.run_dir("pcg", s.run_name)
    plan = read_model(run_dir / "u_coffee__brewco-beans" / "plan.json", Storyboard)
    assert plan.backend == "openai:gpt-4o-test" and plan.personalized
    man = read_model(run_dir / "u_coffee__brewco-beans" / "manifest.json", PairManifest)
    assert man.director_backend == "openai:gpt-4o-test" and man.usage and man.usage[0].input_tokens > 0
    assert media.count_frames(run_dir / "u_coffee__brewco-beans" / "creative.mp4") == 20


def test_generic_requests_on_the_wire_carry_no_user_data(tmp_path, chat_server):
    srv = chat_server(canned)
    paths = make_bench(tmp_path / "data")
    s = pcg.run_pcg(paths, "generic", "openai:gpt-4o-test", "compositor", workers=1, progress=False, **TINY)
    assert s.done == 4 and srv.log
    users = [UserHistory.model_validate_json(x) for x in paths.bench_users("pcg").read_text().splitlines()]
    personal = {u.user_id for u in users} | {it.item_id for u in users for it in u.items} | {"Marisol", "Portland"}
    for body in srv.log:
        blob = json.dumps(body)
        assert not [p for p in personal if p in blob]
        assert "infer a structured profile" not in blob and "score the compatibility" not in blob


@pytest.mark.parametrize("bad, ok", [(1, True), (2, False)])
def test_invalid_storyboard_is_sent_back_once_then_fails(tmp_path, chat_server, bad, ok):
    from nextads_lib import director  # noqa: PLC0415
    from nextads_lib.backends import get_backend  # noqa: PLC0415

    counter = {"sb": 0}
    srv = chat_server(lambda body: canned(body, bad_storyboards=bad, counter=counter))
    backend = get_backend("openai:gpt-4o-test", cache_dir=tmp_path / "cache")
    prod = make_product(tmp_path)
    if ok:
        sb = director.plan_storyboard(prod, backend, duration_s=4.0)
        assert sb.slots[-1].end_s == 4.0
    else:
        with pytest.raises(director.StoryboardError, match="outside 2-3 s") as e:
            director.plan_storyboard(prod, backend, duration_s=4.0)
        assert e.value.errors
    assert counter["sb"] == 2  # the first answer and exactly one revision
    assert "failed validation" in _text(srv.log[-1])


def test_failed_storyboards_are_recorded_in_the_run(tmp_path, chat_server):
    counter = {"sb": 0}
    chat_server(lambda body: canned(body, bad_storyboards=10**6, counter=counter))
    paths = make_bench(tmp_path / "data")
    s = pcg.run_pcg(paths, "generic", "openai:gpt-4o-test", "compositor", workers=1, progress=False, **TINY)
    assert s.failed == 4 and {f.stage for f in s.failures} == {"plan"}
    assert all("invalid after one revision" in f.reason for f in s.failures)
