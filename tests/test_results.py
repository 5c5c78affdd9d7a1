"""Table 1 assembly on small constructed result files (labels, missing cells, bootstrap intervals, the paper's
rows, determinism), user-modeling recovery against a constructed ground truth, fallback rates, and a case sheet
written from a tiny run."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from nextads_lib import results
from nextads_lib.config import StudyPaths
from nextads_lib.schemas import (
    GroundTruth,
    PresentationStyle,
    RunSummary,
    TopicPreference,
    UserProfile,
    VisualStyle,
)
from nextads_lib.store import write_json, write_jsonl

from test_judge import make_study  # noqa: E402  (shared tiny study)

PROXY = "Personalization-Presentation (proxy: palette/style stats)"


def judge_rows(run: str, system: str, scores: dict[str, list[float | None]], backend: str = "offline") -> list[dict]:
    rows = []
    for crit, vals in scores.items():
        for i, v in enumerate(vals):
            rows.append({"task": "pcg", "run": run, "system": system, "director_backend": "offline",
                         "producer_backend": "compositor", "judge_backend": backend,
                         "pair_id": None if crit == "diversity" else f"u{i}__p", "user_id": f"u{i}",
                         "product_id": "p", "criterion": crit, "score": v, "rationale": "r", "proxy": True,
                         "label": f"{crit} (proxy: x)", "error": None if v is not None else "BackendError: bad"})
    return rows


def write_results(paths: StudyPaths, with_vq: bool = True) -> None:
    rows = judge_rows("nextads__offline__compositor", "nextads",
                      {"personalization_presentation": [6.0, 7.0, 8.0, None], "personalization_content": [5.0, 5.5, 6.0, 6.5],
                       "product_alignment": [None, None, None, None], "diversity": [4.0, 5.0]})
    rows += judge_rows("generic__offline__compositor", "generic",
                       {"personalization_presentation": [2.0, 2.5, 3.0, 3.5], "personalization_content": [1.0, 1.0, 2.0, 2.0],
                        "product_alignment": [7.0, 7.5, 8.0, 8.5], "diversity": [6.0, 6.5]})
    paths.results.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_parquet(paths.results / "judge_pcg.parquet", index=False)
    if with_vq:
        vq = []
        for run, system in (("nextads__offline__compositor", "nextads"), ("generic__offline__compositor", "generic")):
            for i in range(4):
                for m, v in (("ms", 0.97 + i / 1000), ("dd", 0.5), ("aq", 0.45), ("iq", None if i == 0 else 0.6)):
                    vq.append({"task": "pcg", "run": run, "system": system, "director_backend": "offline",
                               "producer_backend": "compositor", "vq_backend": "offline", "pair_id": f"u{i}__p",
                               "user_id": f"u{i}", "product_id": "p", "metric": m, "value": v,
                               "label": f"{m.upper()} (proxy: y)", "proxy": True, "error": None})
        pd.DataFrame(vq).to_parquet(paths.results / "video_quality_pcg.parquet", index=False)


def test_table1_cells_labels_missing_and_intervals(tmp_path):
    paths = StudyPaths(tmp_path)
    write_results(paths)
    t = results.table1(paths, "pcg", n_boot=300, seed=7)
    cells = t["cells"]
    assert list(dict.fromkeys(cells.run)) == ["generic__offline__compositor", "nextads__offline__compositor"]
    c = cells.set_index(["run", "metric"])
    pres = c.loc[("nextads__offline__compositor", "personalization_presentation")]
    assert pres["mean"] == pytest.approx(7.0) and pres["n"] == 3 and pres["missing"] == 1  # None is missing, not 0
    assert pres["ci_low"] <= pres["mean"] <= pres["ci_high"] and pres["ci_low"] >= 6.0 and pres["ci_high"] <= 8.0
    assert pres["label"] == "personalization_presentation (proxy: x)" and pres["backend"] == "offline"
    pa = c.loc[("nextads__offline__compositor", "product_alignment")]
    assert math.isnan(pa["mean"]) and pa["missing"] == 4
    iq = c.loc[("generic__offline__compositor", "iq")]
    assert iq["mean"] == pytest.approx(0.6) and iq["missing"] == 1
    table = t["table"]
    assert table.loc["NextAds · offline · compositor", "Product Alignment (proxy)"] == "— (4 missing)"
    assert table.loc["NextAds · offline · compositor", "Integration Quality"] == "n/a"
    assert table.loc["GenericAds · offline · compositor", "Pers. Content (proxy)"].startswith("1.50 [")
    assert table.loc["paper: NextAds (Closed) · GPT-4o · Sora 2", "Pers. Presentation (proxy)"] == "7.12"
    assert table.loc["paper: NextAds (Open) · Qwen3-VL-8B · Wan2.2-TI2V-5B", "AQ (proxy)"] == "0.4064"
    assert t["legend"].loc["MS", "label"] == "MS (proxy: y)"
    assert (paths.results / "table1_pcg.csv").is_file() and (paths.results / "table1_cells_pcg.csv").is_file()


def test_table1_is_deterministic_and_seed_dependent(tmp_path):
    paths = StudyPaths(tmp_path)
    write_results(paths)
    a = results.table1(paths, "pcg", n_boot=200, seed=20260)["table"].to_string()
    csv_a = (paths.results / "table1_pcg.csv").read_text()
    c = results.table1(paths, "pcg", n_boot=200, seed=1)["table"].to_string()
    b = results.table1(paths, "pcg", n_boot=200, seed=20260)["table"].to_string()
    assert a == b and a != c
    assert (paths.results / "table1_pcg.csv").read_text() == csv_a  # same seed, same bytes


def test_missing_video_quality_shows_as_missing(tmp_path):
    paths = StudyPaths(tmp_path)
    write_results(paths, with_vq=False)
    t = results.table1(paths, "pcg", n_boot=50)
    assert any("video_quality_pcg.parquet is missing" in n for n in t["notes"])
    row = t["table"].loc["NextAds · offline · compositor"]
    assert (row[["MS", "DD", "AQ", "IQ"]] == "—").all()
    assert t["legend"].loc["MS", "label"] == "missing"


def test_paper_values_are_transcribed():
    p = results.paper_table("pci").set_index("row")
    assert p.loc["paper: NextAds (Closed)", "integration_quality"] == 8.67
    assert p.loc["paper: GenericAds (Closed)", "diversity"] == 9.64
    assert math.isnan(results.paper_table("pcg").set_index("row").loc["paper: NextAds (Open)", "integration_quality"])


def test_bootstrap_ci_contains_the_mean_and_handles_edges():
    m, lo, hi = results.bootstrap_ci([1.0, 2.0, 3.0, 10.0], 500, 3, "k")
    assert lo <= m <= hi and m == pytest.approx(4.0) and lo >= 1.0 and hi <= 10.0
    assert results.bootstrap_ci([5.0], 500, 3) == (5.0, 5.0, 5.0)
    assert all(math.isnan(x) for x in results.bootstrap_ci([None, float("nan")], 500, 3))


def _profile(uid: str, topics: dict[str, float], tone="calm", palette="earth", lighting="warm") -> UserProfile:
    return UserProfile(user_id=uid, dataset="qilin", backend="offline",
                       topics=[TopicPreference(topic=t, weight=w) for t, w in topics.items()],
                       presentation=PresentationStyle(tone=tone, narrative="vlog", information_density="low"),
                       visual=VisualStyle(palette_name=palette, lighting=lighting, motion="slow"))


def test_recovery_scores_against_constructed_truth():
    truth = GroundTruth(dataset="qilin", user_id="u1", topics={"coffee": 0.6, "food": 0.3, "travel": 0.1},
                        tone="calm", narrative="vlog", palette="earth", lighting="warm", motion="slow")
    perfect = results.recovery_scores(_profile("u1", {"coffee": 0.7, "food": 0.3}), truth)
    assert perfect["topic_precision"] == 1 and perfect["topic_recall"] == 1 and perfect["top1"] == 1
    assert all(perfect[k] == 1 for k in ("tone", "narrative", "palette", "lighting", "motion"))
    half = results.recovery_scores(_profile("u1", {"food": 0.5, "gaming": 0.5}, tone="energetic", palette=""), truth)
    assert half["topic_precision"] == 0.5 and half["topic_recall"] == 0.5 and half["top1"] == 0
    assert half["tone"] == 0 and math.isnan(half["palette"])
    free = results.recovery_scores(_profile("u1", {"Coffee & Cafés": 1.0}), truth)  # a VLM's display name
    assert free["top1"] == 1


def test_recovery_and_fallback_files(tmp_path):
    paths = StudyPaths(tmp_path)
    run = paths.run_dir("pcg", "nextads__offline__compositor")
    write_json(run / "users" / "u1" / "profile.json", _profile("u1", {"coffee": 1.0}))
    write_json(run / "users" / "u2" / "profile.json", _profile("u2", {"coffee": 1.0}))
    write_json(run / "summary.json", RunSummary(task="pcg", run_name=run.name, system="nextads", director_backend="offline",
                                                producer_backend="compositor", n_pairs=10, done=6, fallback=3, failed=1,
                                                seconds=1, cost_usd=0))
    write_jsonl(paths.ground_truth("qilin"), [
        GroundTruth(dataset="qilin", user_id="u1", topics={"coffee": 1.0}, tone="calm", narrative="vlog",
                    palette="earth", lighting="warm", motion="slow"),
        GroundTruth(dataset="qilin", user_id="u2", topics={"gaming": 1.0}, tone="energetic", narrative="montage",
                    palette="neon", lighting="neon", motion="dynamic")])
    r = results.recovery(paths, ("pcg", "pci"))
    row = r["runs"].iloc[0]
    assert row["users"] == 2 and row["top1"] == 0.5 and row["tone"] == 0.5 and any("pci" in n for n in r["notes"])
    assert pd.read_csv(paths.results / "recovery.csv").shape[0] == 1
    fb = results.fallback_table(paths)
    assert fb.iloc[0]["fallback_rate"] == 0.3 and fb.iloc[0]["failed_rate"] == 0.1
    assert (paths.results / "fallback.csv").is_file()


def test_case_sheets_pick_users_deterministically_and_save(tmp_path):
    paths = make_study(tmp_path)
    run = results.case_run(paths, "pcg")
    assert run == "nextads__offline__compositor"
    assert results.pick_case_users(paths, "pcg", run, 2) == ["u1", "u2"]  # u1 has 2 done pairs, u2 one
    out = results.case_figures(paths, "pcg", n_users=2)
    assert [p.name for p in out] == ["fig4_u1.png", "fig4_u2.png"]
    im = np.asarray(Image.open(out[0]).convert("RGB"))
    assert im.shape[0] > 300 and im.std() > 10
    assert results.case_figures(paths, "pci") == []  # no PCI run: nothing, no error


def test_pci_case_sheet_shows_frames_across_both_seams(tmp_path):
    from test_judge import EARTH, NEON, PERSONAL, _solid, frames_with, make_pair, make_product, write_creative

    paths = StudyPaths(tmp_path)
    prod = make_product(tmp_path)
    run = paths.run_dir("pci", "nextads__offline__compositor")
    d = make_pair(run, "u1__a", prod, frames_with(EARTH), PERSONAL, task="pci")
    write_creative(d / "integrated.mp4", [_solid((20, 20, 200))] * 10 + frames_with(NEON) + [_solid((20, 20, 200))] * 10)
    write_json(d / "integration.json", {"seam_in_s": 2.0, "seam_out_s": 4.0, "integrated_duration_s": 6.0})
    fig = results.case_sheet(paths, "pci", run.name, "u1")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any(t.startswith("host 1.0s") for t in titles) and any(t.startswith("ad (seam out)") for t in titles)
    assert titles[-1].startswith("host 4.3s")  # back in the host after the segment
    out = results.case_figures(paths, "pci")
    assert [p.name for p in out] == ["fig5_u1.png"]


def test_table1_has_a_protocol_column_per_row(tmp_path):
    """One system with the same backends under ``paper`` and ``extended`` is two rows told apart by the protocol
    column; a judge file from before protocols reads as the extended judge; a run without a recorded protocol is
    ``extended``; the judge's protocol shows where it differs from the run's."""
    paths = StudyPaths(tmp_path)
    rows = judge_rows("nextads__offline__compositor__paper", "nextads",
                      {"personalization_presentation": [6.0, 7.0, 6.5], "diversity": [4.0]})
    for r in rows:
        r.update(run_protocol="paper", judge_protocol="paper", protocol="paper")
    old = judge_rows("nextads__offline__compositor", "nextads",
                     {"personalization_presentation": [3.0, 4.0], "diversity": [5.0]})  # no protocol columns
    paths.results.mkdir(parents=True)
    pd.DataFrame(rows + old).to_parquet(paths.results / "judge_pcg.parquet", index=False)
    t = results.table1(paths, "pcg", n_boot=50)
    table = t["table"]
    assert table.columns[0] == "protocol"
    ours = table.loc["NextAds · offline · compositor"]
    assert sorted(ours["protocol"]) == ["extended", "paper"]  # same row name, two protocols
    assert list(ours["protocol"]) == ["paper", "extended"]  # the paper's protocol first
    assert table.loc["paper: NextAds (Closed) · GPT-4o · Sora 2", "protocol"] == "paper (published)"
    assert table.columns[1] == "pairs" and list(ours["pairs"]) == [3, 2]  # a row on fewer pairs says so
    assert table.loc["paper: NextAds (Closed) · GPT-4o · Sora 2", "pairs"] == 250
    cells = t["cells"].drop_duplicates("run").set_index("run")
    assert cells.loc["nextads__offline__compositor", "run_protocol"] == "extended"
    assert cells.loc["nextads__offline__compositor", "judge_protocol"] == "extended"
    # the extended run judged under the paper's judge: both protocols show
    for r in old:
        r.update(run_protocol="extended", judge_protocol="paper")
    pd.DataFrame(rows + old).to_parquet(paths.results / "judge_pcg.parquet", index=False)
    table = results.table1(paths, "pcg", n_boot=50)["table"]
    assert set(table.loc["NextAds · offline · compositor", "protocol"]) == {"paper", "extended · judge: paper"}
    csv = pd.read_csv(paths.results / "table1_pcg.csv")
    assert "protocol" in csv.columns and csv["protocol"].notna().all()


def test_run_protocol_comes_from_the_summary(tmp_path):
    paths = StudyPaths(tmp_path)
    for name, proto in (("nextads__offline__compositor", None), ("nextads__offline__compositor__paper", "paper"),
                        ("nextads__offline__compositor__paper+compat_threshold=0.2", "paper+compat_threshold=0.2")):
        summ = RunSummary(task="pcg", run_name=name, system="nextads", director_backend="offline",
                          producer_backend="compositor", n_pairs=10, done=8, fallback=2, failed=0, seconds=1,
                          cost_usd=0).model_dump(mode="json")
        if proto:
            summ["protocol"] = proto
        write_json(paths.run_dir("pcg", name) / "summary.json", summ)
    got = {r: results.run_protocol(paths, "pcg", r) for r in results.list_runs(paths, "pcg")}
    assert got == {"nextads__offline__compositor": "extended", "nextads__offline__compositor__paper": "paper",
                   "nextads__offline__compositor__paper+compat_threshold=0.2": "paper+compat_threshold=0.2"}
    fb = results.fallback_table(paths).set_index("run")
    assert fb.loc["nextads__offline__compositor__paper", "protocol"] == "paper" and len(fb) == 3
