"""Creative evolution across impressions: the ground-truth simulator's equations (relevance, style, fatigue,
determinism, common random numbers), the Reflector policy (message rotation with a session memory, hook
variation, progressive disclosure, valid plans), the static baseline, the run over a tiny benchmark with its
parquet, cache and bootstrap table, and a model-backed simulator behind the tests' local OpenAI server; the closed loop that learns (closed_loop.py)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from nextads_lib import closed_loop as L
from nextads_lib import evolution as E
from nextads_lib import media
from nextads_lib.director import validate_storyboard
from nextads_lib.reflector import profile_directives
from nextads_lib.schemas import GroundTruth, ImpressionFeedback, ProductLibrary, Storyboard, UserHistory
from nextads_lib.store import Cache, read_json, read_jsonl, read_model, write_jsonl

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


# =============================================================================== the closed loop (issue 17)
# perception reads the rendered creative (not a declared attribute), the Thompson bandit's posterior and
# exploration control, the held-out simulator's other fatigue shape, the Reflector's profile-update directives,
# and a run over the tiny benchmark (every shown creative rendered and verified, a rejected one never shown, the
# user state written per impression).
def _pair(paths):
    lib = read_model(paths.library_json, ProductLibrary)
    hist = {u.user_id: u for u in read_jsonl(paths.bench_users("pcg"), UserHistory)}
    d = paths.run_dir("pcg", RUN) / PAIR
    plan = read_model(d / "plan.json", Storyboard)
    prod = lib.get(plan.product_id)
    sh = L.Shower(d, prod, hist[plan.user_id or ""], lib, Cache(paths.cache), width=72, height=128, fps=4.0,
                  work=paths.interim / "loop_test")
    return sh, plan, prod


# ------------------------------------------------------------------------------------------ perception
def test_what_is_perceived_is_read_from_the_rendered_creative(paths):
    sh, plan, prod = _pair(paths)
    arm = L.Arm(facet="facts", hook="scene", tone="energetic", length="short", cta="strong")
    sh.text_verdicts(plan, L.arms_of(prod))
    assert sh.bad_lines == set() and sh.global_violations == []
    p = L.build_plan(plan, prod, arm)
    assert len(p.slots) == 3 and p.slots[1].on_screen_text.startswith(next(iter(prod.facts)))
    out = sh.show(p)
    c = out["features"]
    assert out["passed"] and not out["cached"]
    # the measured duration of the mp4 at 4 fps, the tone of the on-screen words, the strong CTA, facts = depth 2
    assert c.tone == "energetic" and c.cta_strength == 0.9 and c.depth == 2 and c.claims
    # what the oracle is scored on (the plan's text, the pair's palette, the planned duration) is what is perceived
    for a in (arm, L.Arm(facet="point0", hook="product", tone="calm", length="long", cta="soft")):
        shown = sh.show(sh.planned(plan, a, 1)[0])["features"]
        assert sh.planned(plan, a, 1)[1].model_dump() == {**shown.model_dump(), "duration_s": pytest.approx(shown.duration_s, abs=0.2)}
    d = paths.interim / "perceive_check"
    d.mkdir(parents=True, exist_ok=True)
    sh.producer.render(sh.req.model_copy(update={"storyboard": p}), d / "creative.mp4")
    n = media.probe(d / "creative.mp4").n_frames
    assert c.duration_s == pytest.approx(n / 4.0)
    # a declared attribute does not reach the simulator: a plan that claims 30 s and a calm tone in its fields
    # but shows the energetic text of the rendered video is perceived as what the video shows
    liar = p.model_copy(update={"duration_s": 30.0, "hook": "Slow down, enjoy your coffee ritual."})
    c2 = L.perceive(d / "creative.mp4", liar, prod, palette="earth")
    assert c2.duration_s == pytest.approx(n / 4.0) and c2.tone == "energetic"
    # cut the video after its first slot: the slots not in the video are not seen (no claims, no CTA)
    frames = media.read_frames(d / "creative.mp4")
    k = int(p.slots[0].end_s * 4)
    media.write_video(d / "cut.mp4", frames[:k], fps=4.0)
    c3 = L.perceive(d / "cut.mp4", p, prod, palette="earth")
    assert c3.duration_s == pytest.approx(k / 4.0) and c3.claims == [] and c3.depth == 0


def test_tone_and_cta_lexicons():
    assert L.tone_of_text("Plot twist for game night. Thank us later") == "humorous"
    assert L.tone_of_text("Elevate your coffee ritual") == "luxurious"
    assert L.tone_of_text("Nothing here") == "informative"


# ---------------------------------------------------------------------------------------------- bandit
def _arms():
    return [L.Arm(facet=f, hook=h, tone=t, length="long", cta="medium")
            for f in ("point0", "point1") for h in ("scene", "product") for t in ("calm", "energetic")]


def test_bandit_posterior_learns_the_rewarding_choice_and_explore_controls_randomness():
    arms = _arms()
    b = L.ThompsonBandit(arms, explore=0.0, seed=1)
    # greedy with a flat prior: the ties are broken at random, but the posterior mean is what is maximised
    for _ in range(30):
        for a in arms:
            b.update(a, 1.0 if a.tone == "energetic" else 0.0)
    m = b.means()
    assert m["tone=energetic"] > m["tone=calm"] + 0.5
    assert {b.choose().tone for _ in range(20)} == {"energetic"}
    # exact Bayesian linear regression (gamma = 1): the posterior mean solves the ridge normal equations
    b1 = L.ThompsonBandit(arms, explore=0.0, gamma=1.0, prior_sd=0.5, noise_sd=0.5, seed=1)
    X = np.stack([b1.x(a) for a in arms])
    r = np.arange(len(arms), dtype=float) / len(arms)
    for a, y in zip(arms, r, strict=True):
        b1.update(a, y)
    mu = np.linalg.solve(X.T @ X / 0.25 + np.eye(X.shape[1]) / 0.25, X.T @ r / 0.25)
    assert np.allclose(b1.posterior[0], mu)
    # explore = 0 is deterministic given the data; explore > 0 draws different arms from the same posterior
    fresh = [L.ThompsonBandit(arms, explore=e, seed=3) for e in (0.0, 2.0)]
    picks0 = {fresh[0].choose().key() for _ in range(30)}
    picks2 = {fresh[1].choose().key() for _ in range(30)}
    assert len(picks2) > 3 and len(picks2) >= len(picks0)
    # the prior mean favours the profile's choices
    pb = L.ThompsonBandit(arms, explore=0.0, prior_mean={"tone=calm": 0.3, "hook=product": 0.3}, seed=2)
    assert {(a.tone, a.hook) for a in (pb.choose() for _ in range(10))} == {("calm", "product")}


# --------------------------------------------------------------------------------------------- simulators
def test_heldout_simulator_has_another_fatigue_shape_and_weights():
    truths = {g.user_id: g for g in GT}
    sim = L.HeldOutSimulator(truths, seed=1)
    c = feats(claims=["a"])
    s = sim.start("u_coffee", c)
    sim.show("u_coffee", "p", c, 0, s)
    t1 = sim.terms("u_coffee", c, 1, s)
    x = L.HELDOUT.hook_weight + L.HELDOUT.claim_weight
    assert t1["fatigue"] == pytest.approx(x / (1 + x))  # hyperbolic, not 1 - exp(-x)
    sim.show("u_coffee", "p", feats(hook="Other.", claims=["b"]), 1, s)
    t2 = sim.terms("u_coffee", c, 2, s)  # the repeat is now one impression older: weighted by recency
    x2 = L.HELDOUT.recency * x
    assert t2["fatigue"] == pytest.approx(x2 / (1 + x2))
    # a preferred length per user: the gamer (dynamic) prefers short creatives, the coffee user (slow) long ones
    s2 = sim.start("u_gamer", c)
    assert sim.terms("u_gamer", feats(duration_s=6.0), 0, s2)["length_fit"] > sim.terms("u_gamer", feats(duration_s=14.0), 0, s2)["length_fit"]
    assert sim.terms("u_coffee", feats(duration_s=12.0), 0, s)["length_fit"] == pytest.approx(1.0)
    # the oracle's expected reward orders creatives like the simulator's probabilities
    d = L.make_simulator("default", truths, 1)
    sd = d.start("u_coffee", c)
    good = L.expected_reward(d, "u_coffee", feats(), 0, sd)
    bad = L.expected_reward(d, "u_coffee", feats(topics={"gaming": 1.0}, tone="energetic", palette="neon"), 0, sd)
    assert good > bad and 0 < bad < good < 2.5
    assert math.isclose(L.reward_of(ImpressionFeedback(dwell_s=1, watch_fraction=0.5, skipped=False, replayed=True,
                                                       converted=True)), 2.0)


def test_reflector_profile_directives():
    lt = {"tone": "calm", "hook": "scene", "length": "long", "cta": "medium"}
    fb = lambda **k: {"skipped": False, "watch_fraction": 0.8, "converted": False, **k}  # noqa: E731
    arm = {"facet": "point0", "hook": "product", "tone": "energetic", "length": "short", "cta": "strong"}
    st = [{"arm": arm, "perceived": {"tone": "energetic"}, "feedback": fb(), "reward": 0.8},
          {"arm": arm, "perceived": {"tone": "calm"}, "feedback": fb(skipped=True, watch_fraction=0.1), "reward": 0.1},
          {"arm": arm, "perceived": {"tone": "calm"}, "feedback": fb(skipped=True, watch_fraction=0.1), "reward": 0.1}]
    ups = profile_directives(lt, st, 2)
    assert [(u.field, u.value, u.source) for u in ups] == [("tone", "energetic", "reflector")]
    assert profile_directives(lt, st[:2], 1) == []  # one skip is not enough
    conv = st[:1] + [{**st[0], "feedback": fb(converted=True)}]
    assert {(u.field, u.value) for u in profile_directives(lt, conv, 1)} == {
        ("tone", "energetic"), ("hook", "product"), ("length", "short"), ("cta", "strong")}


# ------------------------------------------------------------------------------------------------- run
def test_closed_loop_run_renders_verifies_and_writes_the_user_state(paths, monkeypatch):
    real = L.Shower.text_verdicts

    def planted(self, base, arms):  # the Verifier flags every slogan hook line of this pair
        real(self, base, arms)
        self.bad_lines = self.bad_lines | {(s.narration, s.on_screen_text) for a in arms for v in (0, 1)
                                           for s in self.planned(base, a, v)[0].slots[:1] if a.hook == "slogan"}

    monkeypatch.setattr(L.Shower, "text_verdicts", planted)
    df = L.run_closed_loop(paths, "pcg", RUN, impressions=4, n_users=1, visits=2, explore=2.0, seed=20260)
    assert set(df.columns) == set(L.COLUMNS) and df["error"].isna().all(), df["error"].dropna().tolist()
    assert set(df["policy"]) == set(L.POLICIES) and set(df["simulator"]) == set(L.SIMULATORS)
    assert df["impression"].max() == 4 and df["visit"].max() == 1
    st = df[df.policy == "static"]
    assert st.groupby(["simulator", "pair_id"])["hook"].nunique().max() == 1
    # a rejected proposal is never shown: the static creative goes out instead
    b = df[df.policy == "bandit"]
    rejected = b[b["arm"].str.contains("slogan")]
    assert (~rejected["passed"]).all() and set(rejected["hook"]) <= set(st["hook"])
    assert (df[~df["arm"].str.contains("slogan")]["passed"]).all()
    # the continual user model: written per impression; the second visit starts from the first visit's profile
    d = paths.runs / "evolution" / "pcg" / RUN
    pair2 = df[df.visit == 1]["pair_id"].iloc[0]
    s0 = read_json(d / pair2 / "heldout" / "bandit" / "impression_0" / "user_state.json")
    assert len(s0["visits"]) == 1 and len(s0["short_term"]) == 1 and s0["long_term"]["stats"]
    s3 = read_json(d / pair2 / "heldout" / "bandit" / "impression_3" / "user_state.json")
    assert len(s3["short_term"]) == 4
    assert sum(v["n"] for k, v in s3["long_term"]["stats"].items() if k.startswith("tone=")) == 8
    tab = L.comparison_table(df, n_boot=200)
    assert set(tab["policy"]) == set(L.POLICIES) and (tab["compliance"] <= 1).all()
    assert (tab[tab.policy == "static"]["vs_static"] == 0).all() and (tab[tab.policy == "oracle"]["regret"] == 0).all()
    assert tab[tab.policy == "bandit"]["compliance"].iloc[0] < 1.0 or rejected.empty
    # cached: a second run renders nothing and gives the same rows
    df2 = L.run_closed_loop(paths, "pcg", RUN, impressions=4, n_users=1, visits=2, explore=2.0, seed=20260)
    assert (df2["seconds"] == 0).all()
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), df2.drop(columns="seconds"))
