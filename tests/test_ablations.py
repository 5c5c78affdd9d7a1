"""Protocol ablations: the paired statistics on synthetic frames (expected values computed here, by hand or with
numpy), the variants, the benchmark subset and the workspace layout, the printed table and the figure."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nextads_lib import ablations
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import BenchPair, HistoryItem, UserHistory
from nextads_lib.seed import rng
from nextads_lib.store import read_jsonl, write_jsonl


def test_paired_bootstrap_pairs_units_and_drops_unpaired_or_missing():
    base = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=["u1", "u2", "u3", "u4", "u5"])
    var = pd.Series([2.0, 2.0, 5.0, 4.0, np.nan, 9.0], index=["u1", "u2", "u3", "u4", "u5", "u9"])
    mean, lo, hi, n = ablations.paired_bootstrap(base, var, 2000, 7, "k")
    assert n == 4 and mean == pytest.approx(0.75)  # diffs 1, 0, 2, 0 (u5 missing, u9 unpaired)
    # the percentile bootstrap of the mean difference, written out here
    d = np.array([1.0, 0.0, 2.0, 0.0])
    means = d[rng(7, "k").integers(0, 4, size=(2000, 4))].mean(axis=1)
    assert (lo, hi) == pytest.approx(tuple(np.quantile(means, [0.025, 0.975])))
    assert 0.0 <= lo < 0.75 < hi <= 2.0


def test_pairing_removes_the_spread_between_units():
    base = pd.Series([0.5, 9.0, 3.0, 7.5, 1.0], index=list("abcde"))
    mean, lo, hi, n = ablations.paired_bootstrap(base, base + 1.5, 500, 1)
    assert (mean, lo, hi, n) == (pytest.approx(1.5), pytest.approx(1.5), pytest.approx(1.5), 5)
    empty = ablations.paired_bootstrap(base, pd.Series([1.0], index=["z"]), 100, 1)
    assert all(math.isnan(x) for x in empty[:3]) and empty[3] == 0


def _long() -> pd.DataFrame:
    rows = []

    def add(task, variant, metric, unit_vals, per_user=False, label=None):
        for u, v in unit_vals.items():
            rows.append({"task": task, "variant": variant, "metric": metric,
                         "pair_id": None if per_user else u, "user_id": u.split("__")[0], "value": v,
                         "label": label or f"{metric} (proxy: x)"})

    pairs = {"u1__a": 5.0, "u1__b": 6.0, "u2__a": 7.0, "u2__b": 8.0}
    add("pcg", "paper", "personalization_content", pairs)
    add("pcg", "paper+post_production", "personalization_content", {k: v + 1 for k, v in pairs.items()})
    add("pcg", "paper+compat_threshold=0.5", "personalization_content",
        {"u1__a": 5.0, "u1__b": 2.0, "u2__a": 7.0, "u2__b": None})  # one fallback pair, one missing
    add("pcg", "paper", "diversity", {"u1": 4.0, "u2": 6.0}, per_user=True)
    add("pcg", "paper+post_production", "diversity", {"u1": 3.0, "u2": 6.0}, per_user=True)
    add("pcg", "paper", "ms", {"u1__a": 0.95, "u1__b": 0.97}, label="MS (proxy: DIS interp.)")
    add("pcg", "paper+post_production", "ms", {"u1__a": 0.90, "u1__b": 0.96}, label="MS (proxy: DIS interp.)")
    add("pci", "paper", "integration_quality", {"u1__a": 4.0, "u1__b": 5.0})
    add("pci", "paper+frame_overwrite", "integration_quality", {"u1__a": 8.0, "u1__b": 9.0})
    return pd.DataFrame(rows)


def test_effect_table_on_synthetic_results():
    e = ablations.effect_table(_long(), n_boot=300, seed=3)
    assert list(e.columns) == ablations.EFFECT_COLUMNS
    k = e.set_index(["task", "variant", "metric"])
    post = k.loc[("pcg", "paper+post_production", "personalization_content")]
    assert (post["diff"], post["ci_low"], post["ci_high"], post["n"]) == (1.0, 1.0, 1.0, 4)
    assert post["baseline_mean"] == pytest.approx(6.5) and post["variant_mean"] == pytest.approx(7.5)
    fb = k.loc[("pcg", "paper+compat_threshold=0.5", "personalization_content")]
    assert fb["n"] == 3 and fb["diff"] == pytest.approx(-4.0 / 3)  # diffs 0, -4, 0 over the 3 paired pairs
    div = k.loc[("pcg", "paper+post_production", "diversity")]
    assert div["n"] == 2 and div["diff"] == pytest.approx(-0.5)  # per user: -1, 0
    ms = k.loc[("pcg", "paper+post_production", "ms")]
    assert ms["diff"] == pytest.approx(-0.03) and ms["label"] == "MS (proxy: DIS interp.)"
    assert ("pcg", "paper+post_production", "integration_quality") not in k.index  # PCG has no integration
    assert k.loc[("pci", "paper+frame_overwrite", "integration_quality"), "diff"] == pytest.approx(4.0)
    fin = e[np.isfinite(e["diff"])]
    assert (fin["ci_low"] <= fin["diff"] + 1e-12).all() and (fin["diff"] <= fin["ci_high"] + 1e-12).all()
    # a column the baseline has but the variant lacks is a missing effect, never 0
    nodiv = k.loc[("pcg", "paper+compat_threshold=0.5", "diversity")]
    assert nodiv["n"] == 0 and math.isnan(nodiv["diff"])


def test_summary_table_and_what_each_deviation_moves():
    e = ablations.effect_table(_long(), n_boot=300, seed=3)
    t = ablations.summary_table(e, "pcg")
    assert list(t.index) == ["paper+post_production", "paper+compat_threshold=0.5"]
    assert t.loc["paper+post_production", "Pers. Content (proxy)"] == "+1.00 [+1.00, +1.00]"
    assert t.loc["paper+post_production", "MS (proxy)"].startswith("-0.0300 [")
    assert t.loc["paper+compat_threshold=0.5", "Diversity (proxy)"] == "—"
    assert t.loc["paper+post_production", "n"] == 4
    mv = ablations.moved(e).set_index(["task", "variant"])["moves"]
    assert "Pers. Content +" in mv[("pcg", "paper+post_production")]
    assert mv[("pci", "paper+frame_overwrite")] == "Integration Quality +"


def test_variants_one_switch_at_a_time():
    v = ablations.variants(("pcg", "pci"), thresholds=(0.2, 0.5))
    labels = {t: [p.label for tt, p in v if tt == t] for t in ("pcg", "pci")}
    assert labels["pcg"] == ["paper", "paper+slot_layouts", "paper+post_production", "paper+judge_extras",
                             "paper+compat_threshold=0.2", "paper+compat_threshold=0.5"]
    assert labels["pci"] == ["paper", "paper+slot_layouts", "paper+post_production", "paper+frame_overwrite",
                             "paper+judge_extras", "paper+compat_threshold=0.2", "paper+compat_threshold=0.5"]
    for _, p in v:  # every variant differs from the paper's protocol in one switch at most
        diff = [k for k in ("post_production", "slot_layouts", "frame_overwrite", "judge_extras", "compat_threshold")
                if getattr(p, k) != getattr(ablations.get_protocol("paper"), k)]
        assert len(diff) <= 1


def test_subset_and_workspace(tmp_path):
    paths = StudyPaths(tmp_path / "data")
    pairs, users = [], []
    for u in range(4):
        img = tmp_path / f"h{u}.png"
        Image.new("RGB", (8, 8)).save(img)
        users.append(UserHistory(dataset="qilin", user_id=f"u{u}", items=[
            HistoryItem(item_id=f"i{u}", title="t", text="x", image_paths=[str(img)])]))
        for r, prod in enumerate(["p3", "p1", "p2"]):  # listed out of rank order
            pairs.append(BenchPair(pair_id=f"u{u}__{prod}", task="pcg", user_id=f"u{u}", product_id=prod,
                                   compatibility=0.5, matched_topic="coffee", rank=int(prod[1])))
    write_jsonl(paths.bench_pairs("pcg"), pairs)
    write_jsonl(paths.bench_users("pcg"), users)
    ab = ablations.AblationPaths.under(paths)
    assert ablations.write_subset(paths, ab, "pcg", n_users=2, products_per_user=2) == 4
    got = read_jsonl(ab.bench_pairs("pcg"), BenchPair)
    assert [p.pair_id for p in got] == ["u0__p1", "u0__p2", "u1__p1", "u1__p2"]
    assert [u.user_id for u in read_jsonl(ab.bench_users("pcg"), UserHistory)] == ["u0", "u1"]
    # the workspace has its own runs/benchmarks/results, and the study's library, sample and cache
    assert ab.runs == tmp_path / "data" / "ablations" / "runs" and ab.results.parent == ab.root
    assert ab.library_json == paths.library_json and ab.cache == paths.cache and ab.raw == paths.raw
    with pytest.raises(FileNotFoundError, match="02_build_pci_bench"):
        ablations.write_subset(paths, ab, "pci", 2, 2)
    # a smaller subset later: the variants' pair directories that left it go, the others and the user profiles stay
    for run in ("nextads__offline__compositor__paper", "nextads__offline__compositor__paper+post_production"):
        for p in got:
            (ab.runs / "pcg" / run / p.pair_id).mkdir(parents=True)
            (ab.runs / "pcg" / run / p.pair_id / "manifest.json").write_text("{}")
        (ab.runs / "pcg" / run / "users" / "u1").mkdir(parents=True)
    assert ablations.write_subset(paths, ab, "pcg", n_users=1, products_per_user=2) == 2
    left = sorted(str(m.parent.relative_to(ab.runs)) for m in ab.runs.glob("pcg/*/*/manifest.json"))
    assert left == sorted(f"pcg/{run}/u0__{p}" for run in ("nextads__offline__compositor__paper",
                                                           "nextads__offline__compositor__paper+post_production")
                          for p in ("p1", "p2"))
    assert (ab.runs / "pcg" / "nextads__offline__compositor__paper" / "users" / "u1").is_dir()


def test_effects_figure(tmp_path):
    from nextads_lib.results import save_figure

    e = ablations.effect_table(_long(), n_boot=100, seed=3)
    fig = ablations.plot_effects(e)
    out = save_figure(fig, tmp_path / "ablations.png", dpi=50)
    with Image.open(out) as im:
        assert im.size == (650, 360)  # 13 x 7.2 in at 50 dpi: two tasks, two panels each
    assert len(fig.axes) == 4


def test_run_ablations_judges_and_scores_every_variant_on_real_files(tmp_path, monkeypatch):
    """The orchestration on real tiny files: the pipeline call is replaced by one that writes a run of real mp4s
    (the pipeline's ``protocol=`` keyword is exercised by the study); judging (offline proxies) and video quality
    (offline) run for real in the workspace, and ``judge_extras`` re-judges the paper run."""
    from test_judge import EARTH, NEON, PERSONAL, frames_with, make_pair, make_product, make_study, product_art

    from nextads_lib.store import write_json

    paths = make_study(tmp_path / "data")
    prod = make_product(tmp_path / "data")
    write_jsonl(paths.bench_pairs("pcg"), [
        BenchPair(pair_id=f"{u}__{x}", task="pcg", user_id=u, product_id=prod.id, compatibility=0.5,
                  matched_topic="coffee", rank=i + 1) for u in ("u1", "u2") for i, x in enumerate("ab")])
    calls = []

    def fake_run(task, ab, proto, director, producer, workers, render):
        calls.append((task, proto.label, render))
        name = f"nextads__offline__compositor__{proto.label}"
        run = ab.run_dir(task, name)
        colours = NEON if proto.post_production else EARTH
        for bp in read_jsonl(ab.bench_pairs(task), BenchPair):
            make_pair(run, bp.pair_id, prod, frames_with(colours, product_art(2)), PERSONAL, bp.user_id)
        write_json(run / "summary.json", {"task": task, "run_name": name, "system": "nextads",
                                          "director_backend": director, "producer_backend": producer, "n_pairs": 4,
                                          "done": 4, "fallback": 0, "failed": 0, "seconds": 1.0, "cost_usd": 0.0,
                                          "protocol": proto.label})
        return name

    monkeypatch.setattr(ablations, "_run", fake_run)
    res = ablations.run_ablations(paths, tasks=("pcg",), n_users=1, products_per_user=2, thresholds=(0.5,),
                                  switches=("post_production", "judge_extras"), n_frames=2, workers=1, n_boot=50,
                                  pcg_render={"fps": 5})
    # one run per protocol that changes what is made; judge_extras reuses the paper run
    assert [c[1] for c in calls] == ["paper", "paper+post_production", "paper+compat_threshold=0.5"]
    assert calls[0][2] == {"fps": 5}
    runs = res["runs"].set_index("variant")
    assert runs.loc["paper+judge_extras", "run"] == runs.loc["paper", "run"]
    assert runs.loc["paper+judge_extras", "judge_protocol"] == "paper+judge_extras"
    long = res["long"]
    assert set(long.variant) == {"paper", "paper+post_production", "paper+judge_extras", "paper+compat_threshold=0.5"}
    assert {"personalization_presentation", "product_alignment", "diversity", "ms", "iq"} <= set(long.metric)
    assert long.label.dropna().str.contains("proxy").all()
    e = res["effects"].set_index(["variant", "metric"])
    # identical creatives: the same scores, a zero effect; the clashing palette moves presentation down
    assert e.loc[("paper+compat_threshold=0.5", "personalization_presentation"), "diff"] == pytest.approx(0.0)
    assert e.loc[("paper+judge_extras", "ms"), "diff"] == pytest.approx(0.0)
    assert e.loc[("paper+post_production", "personalization_presentation"), "ci_high"] < 0
    assert (paths.results / "ablations.csv").is_file()
    assert (paths.root / "ablations" / "results" / "ablations_long.parquet").is_file()
    assert not (paths.runs / "pcg" / "nextads__offline__compositor__paper").exists()  # Table 1 never sees them
