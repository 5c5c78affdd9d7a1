"""Creative evolution across impressions: the ground-truth simulator's equations (relevance, style, fatigue,
determinism, common random numbers), the Reflector policy (message rotation with a session memory, hook
variation, progressive disclosure, valid plans), the static baseline, the run over a tiny benchmark with its
parquet, cache and bootstrap table, and a model-backed simulator behind the tests' local OpenAI server."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from nextads_lib import evolution as E
from nextads_lib.director import validate_storyboard
from nextads_lib.schemas import GroundTruth, ImpressionFeedback, ProductLibrary, Storyboard
from nextads_lib.store import read_json, read_model, write_jsonl

from test_pcg import chat_server  # noqa: F401  (fixture)
from test_verifier import PAIR, RUN, tiny_run  # noqa: E402

GT = [GroundTruth(dataset="qilin", user_id="u_coffee", topics={"coffee": 0.7, "food": 0.3}, tone="calm",
                  narrative="story", palette="earth", lighting="warm", motion="slow"),
      GroundTruth(dataset="qilin", user_id="u_gamer", topics={"gaming": 0.8, "tech": 0.2}, tone="energetic",
                  narrative="montage", palette="neon", lighting="neon", motion="dynamic")]


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    p = tiny_run(tmp_path_factory.mktemp("evo_data"))
    write_jsonl(p.ground_truth("qilin"), GT)
    return p


def feats(**kw):
    base = dict(topics={"coffee": 1.0}, tone="calm", narrative="story", palette="earth", hook="Hello.",
                claims=["a", "b"], depth=1, cta_strength=0.6, duration_s=10.0)
    return E.CreativeFeatures(**{**base, **kw})


# ------------------------------------------------------------------------------------------- simulator
def test_simulator_terms_follow_the_equations():
    sim = E.GroundTruthSimulator({g.user_id: g for g in GT}, seed=1)
    c = feats()
    s = sim.start("u_coffee", c)
    assert s.interest == pytest.approx(0.2 + 0.5 * 1.0)
    t0 = sim.terms("u_coffee", c, 0, s)
    assert t0["relevance"] == pytest.approx(1.0) and t0["style"] == pytest.approx(1.0) and t0["fatigue"] == 0.0
    assert sim.terms("u_coffee", feats(topics={"food": 1.0}), 0, s)["relevance"] == pytest.approx(0.3 / 0.7)
    assert sim.terms("u_coffee", feats(tone="humorous", palette="neon"), 0, s)["style"] == pytest.approx(1 / 3)
    sim.show("u_coffee", "p", c, 0, s)
    t1 = sim.terms("u_coffee", c, 1, s)  # same hook, same claims: h = 1, novelty 0
    assert t1["hook_repeats"] == 1 and t1["novelty"] == 0.0
    import math
    assert t1["fatigue"] == pytest.approx(1 - math.exp(-(0.45 + 0.8)))
    fresh = sim.terms("u_coffee", feats(hook="Other.", claims=["c"]), 1, s)
    assert fresh["fatigue"] == 0.0


def test_simulator_is_deterministic_with_common_random_numbers():
    truths = {g.user_id: g for g in GT}
    runs = []
    for _ in range(2):
        sim = E.GroundTruthSimulator(truths, seed=7)
        s = sim.start("u_gamer", feats())
        runs.append([sim.show("u_gamer", "p", feats(), k, s)[0] for k in range(4)])
    assert runs[0] == runs[1]
    other = E.GroundTruthSimulator(truths, seed=8)
    s = other.start("u_gamer", feats())
    assert [other.show("u_gamer", "p", feats(), k, s)[0] for k in range(4)] != runs[0]
    # a relevant, fresh creative is watched more than an irrelevant one under the same draws
    sim = E.GroundTruthSimulator(truths, seed=7)
    good = sim.show("u_coffee", "p", feats(), 0, sim.start("u_coffee", feats()))[1]["p_watch"]
    bad_c = feats(topics={"gaming": 1.0}, tone="humorous", palette="neon", narrative="listicle")
    bad = sim.show("u_coffee", "p", bad_c, 0, sim.start("u_coffee", bad_c))[1]["p_watch"]
    assert good > bad + 0.2


def test_conversion_happens_at_most_once_per_session():
    sim = E.GroundTruthSimulator({g.user_id: g for g in GT}, seed=3)
    s = sim.start("u_coffee", feats())
    s.converted = True
    assert not any(sim.show("u_coffee", "p", feats(cta_strength=1.0, depth=2), k, s)[0].converted for k in range(6))


# ---------------------------------------------------------------------------------------------- policy
def test_reflector_policy_rotates_claims_varies_hooks_and_deepens(paths):
    lib = read_model(paths.library_json, ProductLibrary)
    product = lib.get("brewco-beans")
    plan = read_model(paths.run_dir("pcg", RUN) / PAIR / "plan.json", Storyboard)
    pol = E.ReflectorPolicy(plan, product, list(product.selling_points), "calm", "story", "earth")
    seen_claims, hooks, depths = [], [], []
    for k in range(4):
        p, c = pol.next(k)
        assert not validate_storyboard(p, product, duration_s=p.duration_s)  # every shown plan is valid
        assert c.claims == E.claims_in(p, product)  # the memory records what the plan really says
        hooks.append(c.hook)
        depths.append((c.depth, c.cta_strength))
        if k < 3:
            assert not set(c.claims) & set(seen_claims), (k, c.claims, seen_claims)  # complements, never repeats
        seen_claims += c.claims
        pol.observe(c, ImpressionFeedback(dwell_s=7.0, watch_fraction=0.9, skipped=False, replayed=False,
                                          converted=False))
    assert len(set(hooks)) == 4
    assert depths[0] == (0, 0.3) and depths[1] == (1, 0.6) and depths[2] == (2, 0.9)
    assert any(":" in x for x in seen_claims)  # deeper impressions bring facts ("price: $14 ...")


def test_a_skip_keeps_the_hook_light_and_tries_another_tone(paths):
    lib = read_model(paths.library_json, ProductLibrary)
    product = lib.get("brewco-beans")
    plan = read_model(paths.run_dir("pcg", RUN) / PAIR / "plan.json", Storyboard)
    pol = E.ReflectorPolicy(plan, product, list(product.selling_points), "calm", "story", "earth")
    _, c = pol.next(0)
    pol.observe(c, ImpressionFeedback(dwell_s=1.0, watch_fraction=0.1, skipped=True, replayed=False, converted=False))
    _, c2 = pol.next(1)
    assert c2.depth == 0 and c2.tone != "calm"


# ------------------------------------------------------------------------------------------------- run
def test_run_writes_rows_plans_and_resumes(paths):
    df = E.run_evolution(paths, "pcg", RUN, impressions=4, seed=20260)
    assert set(df.columns) == set(E.COLUMNS) and df["error"].isna().all()
    assert set(df["policy"]) == {"static", "reflector"} and df["impression"].max() == 4
    assert (df["simulator_backend"] == "offline-gt").all()
    st = df[df.policy == "static"]
    assert st.groupby("pair_id")["hook"].nunique().max() == 1  # the same creative replayed
    assert (st[st.impression > 1]["new_claims"] == 0).all()
    plans = sorted((paths.runs / "evolution" / "pcg" / RUN / PAIR).glob("impression_*.json"))
    assert len(plans) == 4 and "feedback" in read_json(plans[0])
    on_disk = pd.read_parquet(paths.results / "evolution_pcg.parquet")
    assert len(on_disk) == len(df)
    m = plans[0].stat().st_mtime_ns
    df2 = E.run_evolution(paths, "pcg", RUN, impressions=4, seed=20260)
    pd.testing.assert_frame_equal(df.reset_index(drop=True), df2.reset_index(drop=True))
    assert plans[0].stat().st_mtime_ns == m  # cached: nothing simulated again
    tab = E.comparison_table(df, n_boot=200)
    assert list(tab["metric"])[:2] == ["cumulative watch after 4 impressions", "conversion rate after 4 impressions"]
    assert (tab["diff_lo"] <= tab["diff"]).all() and (tab["diff"] <= tab["diff_hi"]).all()
    cur = E.bootstrap_curves(df, "cum_watch", n_boot=200)
    assert len(cur) == 2 * 4 and (cur["lo"] <= cur["mean"] + 1e-9).all() and (cur["mean"] <= cur["hi"] + 1e-9).all()
    assert E.bootstrap_curves(df, n_boot=200).equals(cur)  # seeded


def test_users_without_ground_truth_are_recorded(paths, tmp_path):
    write_jsonl(paths.ground_truth("qilin"), GT[1:])  # the run's only user, u_coffee, loses its ground truth
    try:
        df = E.run_evolution(paths, "pcg", RUN, impressions=2, seed=5)
    finally:
        write_jsonl(paths.ground_truth("qilin"), GT)
    errs = df[df["error"].notna()]
    # one error row per pair of u_coffee (its two products), nothing simulated for it
    assert sorted(errs["pair_id"]) == ["u_coffee__brewco-beans", "u_coffee__edge-razor"] and len(df) == 2
    assert set(errs["error"]) == {"no ground truth for this user"} and set(errs["policy"]) == {"-"}


def test_model_backed_simulator_on_the_local_openai_server(paths, chat_server):  # noqa: F811
    srv = chat_server(lambda body: {"dwell_s": 30.0, "watch_fraction": 0.8, "skipped": False, "replayed": True,
                                    "converted": True, "rationale": "likes coffee"})
    df = E.run_evolution(paths, "pcg", RUN, impressions=2, limit_users=1, simulator_backend="openai:gpt-4o-test",
                         seed=1)
    ok = df[df["error"].isna()]
    assert len(ok) and (ok["simulator_backend"] == "openai:gpt-4o-test").all()
    assert (ok["dwell_s"] <= 7.0).all()  # clipped to the creative's duration
    first = ok[ok.impression == 1]
    assert first["converted"].all() and not ok[ok.impression == 2]["converted"].any()  # once per session
    body = json.dumps(srv.log[0])
    assert "simulate one user" in body and "ground" not in body.lower()  # a persona, never the ground truth
