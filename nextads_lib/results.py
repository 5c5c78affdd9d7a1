"""Results (paper section 5, Table 1, Figures 4-5): Table 1 for both benchmarks from the judge's and the video
quality's result files, with 95% bootstrap intervals, backend labels and the paper's values beside ours; and,
beyond the paper, how well user modeling recovers the embedded sample's hidden ground truth and how often the
Director fell back to a generic plan.

Inputs (all under ``data_dir``): ``results/judge_<task>.parquet`` (:mod:`nextads_lib.judge`),
``results/video_quality_<task>.parquet`` (notebook 21; when it is missing the video-quality columns show as
missing), ``runs/<task>/<run>/summary.json`` and ``users/<uid>/profile.json``, and the hidden
``raw/sample/<dataset>_ground_truth.jsonl``.

Every Table 1 row carries its ``protocol`` (:mod:`nextads_lib.protocol`): the protocol the run was made under (its
``summary.json``; ``extended`` for runs made before protocols existed), with `` · judge: <label>`` where the judge
ran with other judge inputs (``judge_extras``) than that protocol implies (:func:`nextads_lib.judge.combined_protocol`).
Rows are named by system · Director backend · Producer backend, so the same system under ``paper`` and
``extended`` is two rows told apart by the protocol column.

Table 1 cells: the mean over the cell's non-missing values (pairs for the judge's pair criteria and the video
metrics, users for diversity) and the 2.5 / 97.5 percentiles of ``n_boot`` bootstrap means, the resampling seeded
by ``seed.rng(seed, "table1", task, run, metric)`` so the same seed gives the same table. Missing values never
count as 0: a cell with no value shows "—" and says how many were missing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import DEFAULT_SEED, StudyPaths
from .judge import CRITERIA, PAPER_NAMES, combined_protocol, list_runs, run_protocol_of
from .schemas import GroundTruth, RunSummary, Storyboard, UserHistory, UserProfile
from .seed import rng
from .store import ArtifactError, atomic_path, read_json, read_jsonl, read_model

#: Table 1's columns in the paper's order: (metric id, the paper's column name)
TABLE1_COLUMNS: tuple[tuple[str, str], ...] = (
    ("personalization_presentation", "Pers. Presentation"),
    ("personalization_content", "Pers. Content"),
    ("product_alignment", "Product Alignment"),
    ("integration_quality", "Integration Quality"),
    ("diversity", "Diversity"),
    ("ms", "MS"),
    ("dd", "DD"),
    ("aq", "AQ"),
    ("iq", "IQ"),
)
COLUMN_NAMES = dict(TABLE1_COLUMNS)
JUDGE_METRICS = tuple(CRITERIA)
VQ_METRICS = ("ms", "dd", "aq", "iq")
SYSTEM_NAMES = {"nextads": "NextAds", "generic": "GenericAds", "retrieval": "Retrieval (floor)"}
SYSTEM_ORDER = {"retrieval": 0, "generic": 1, "nextads": 2}
DATASETS = {"pcg": "qilin", "pci": "microlens"}
MISSING = "—"
NOT_APPLICABLE = "n/a"

#: The paper's Table 1, transcribed from the text (NaN: "-" in the paper, integration is PCI only).
#: Closed = GPT-4o Director + Sora 2 Producer; Open = Qwen3-VL-8B Director + Wan2.2-TI2V-5B Producer.
PAPER_TABLE1: dict[str, list[dict[str, Any]]] = {
    "pcg": [
        {"row": "GenericAds (Closed)", "system": "generic", "director": "GPT-4o", "producer": "Sora 2",
         "values": [1.77, 1.52, 8.48, math.nan, 7.10, 0.9756, 0.9742, 0.5494, 0.6524]},
        {"row": "NextAds (Closed)", "system": "nextads", "director": "GPT-4o", "producer": "Sora 2",
         "values": [7.12, 5.09, 8.58, math.nan, 6.57, 0.9406, 0.9797, 0.5259, 0.6339]},
        {"row": "NextAds (Open)", "system": "nextads", "director": "Qwen3-VL-8B", "producer": "Wan2.2-TI2V-5B",
         "values": [6.01, 3.35, 3.44, math.nan, 5.40, 0.9693, 0.9800, 0.4064, 0.6199]},
    ],
    "pci": [
        {"row": "GenericAds (Closed)", "system": "generic", "director": "GPT-4o", "producer": "Sora 2",
         "values": [3.97, 2.24, 9.58, 3.89, 9.64, 0.9873, 0.9375, 0.5082, 0.6422]},
        {"row": "NextAds (Closed)", "system": "nextads", "director": "GPT-4o", "producer": "Sora 2",
         "values": [8.56, 8.32, 7.89, 8.67, 2.80, 0.9867, 0.9360, 0.5243, 0.6508]},
        {"row": "NextAds (Open)", "system": "nextads", "director": "Qwen3-VL-8B", "producer": "Wan2.2-TI2V-5B",
         "values": [5.44, 4.20, 6.26, 6.27, 7.58, 0.9771, 0.9320, 0.4385, 0.5986]},
    ],
}

LONG_COLUMNS = ["task", "run", "system", "director_backend", "producer_backend", "run_protocol", "judge_protocol",
                "pair_id", "user_id", "metric", "value", "label", "backend", "proxy", "error"]
#: the order of protocols within one system x backends (the paper's first)
PROTOCOL_ORDER = {"paper": 0, "extended": 2}


# ------------------------------------------------------------------------------------------------ loading
def paper_table(task: str) -> pd.DataFrame:
    """The paper's Table 1 rows of ``task`` (metric ids as columns, NaN where the paper has '-')."""
    rows = []
    for r in PAPER_TABLE1[task]:
        d = {"row": f"paper: {r['row']}", "system": r["system"], "director": r["director"], "producer": r["producer"],
             "protocol": "paper (published)"}
        d.update({m: v for (m, _), v in zip(TABLE1_COLUMNS, r["values"])})
        rows.append(d)
    return pd.DataFrame(rows)


def run_protocol(paths: StudyPaths, task: str, run: str) -> str:
    """The protocol label the run was made under, from its ``summary.json`` (``extended`` when it records none:
    runs made before protocols existed)."""
    p = paths.run_dir(task, run) / "summary.json"
    try:
        summ = read_json(p) if p.is_file() else {}
    except Exception:  # noqa: BLE001 - an unreadable summary is a run of unknown protocol: the old default
        summ = {}
    return run_protocol_of(summ if isinstance(summ, dict) else {})


def load_long(paths: StudyPaths, task: str) -> tuple[pd.DataFrame, list[str]]:
    """The judge's and the video quality's rows of ``task`` in one long frame (:data:`LONG_COLUMNS`, one row
    per pair x metric; diversity per user) and notes on what is missing. ``run_protocol`` comes from the judge's
    rows, else from the run's summary; ``judge_protocol`` is the judge's (``extended`` for a judge file written
    before protocols existed, whose judge saw the extras; empty for the video-quality rows)."""
    notes: list[str] = []
    frames = []
    jp = paths.results / f"judge_{task}.parquet"
    if jp.is_file():
        j = pd.read_parquet(jp)
        j = j.rename(columns={"criterion": "metric", "score": "value", "judge_backend": "backend"})
        j["judge_protocol"] = (j["judge_protocol"].astype(object).fillna("extended") if "judge_protocol" in j.columns
                               else "extended")
        frames.append(j.reindex(columns=LONG_COLUMNS))
    else:
        notes.append(f"judge_{task}.parquet is missing (run notebook 20): the judge's columns are missing")
    vp = paths.results / f"video_quality_{task}.parquet"
    if vp.is_file():
        v = pd.read_parquet(vp).rename(columns={"vq_backend": "backend"})
        frames.append(v.reindex(columns=LONG_COLUMNS))
    else:
        notes.append(f"video_quality_{task}.parquet is missing (run notebook 21): MS, DD, AQ, IQ are missing")
    if not frames:
        return pd.DataFrame(columns=LONG_COLUMNS), notes
    df = pd.concat(frames, ignore_index=True)
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    df["task"] = task
    known = {r: run_protocol(paths, task, r) for r in df["run"].dropna().unique()}
    rp = df["run_protocol"].astype(object)
    missing = rp.isna() | (rp.astype(str) == "")
    df["run_protocol"] = rp.where(~missing, df["run"].map(known)).astype(object)
    df["judge_protocol"] = df["judge_protocol"].astype(object)
    return df, notes


# ---------------------------------------------------------------------------------------------- bootstrap
def bootstrap_ci(values: Sequence[float], n_boot: int = 1000, seed: int = DEFAULT_SEED, *keys: object,
                 level: float = 0.95) -> tuple[float, float, float]:
    """Mean and the percentile bootstrap interval of the mean of ``values`` (NaNs dropped), resampled with
    ``seed.rng(seed, *keys)``. An empty input gives NaNs; one value gives a zero-width interval."""
    x = np.asarray([v for v in values if v is not None and np.isfinite(v)], np.float64)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if len(x) == 1 or n_boot <= 0:
        return m, m, m
    g = rng(seed, *keys)
    idx = g.integers(0, len(x), size=(int(n_boot), len(x)))
    means = x[idx].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return m, float(min(lo, m)), float(max(hi, m))


def _run_key(r: pd.Series | dict[str, Any]) -> tuple:
    proto = str(r.get("run_protocol") or "")
    return (SYSTEM_ORDER.get(r["system"], 9), str(r["director_backend"]), str(r["producer_backend"]),
            PROTOCOL_ORDER.get(proto, 1), proto, str(r["run"]))


def _judge_protocol(sub: pd.DataFrame) -> str:
    vals = sorted({str(x) for x in sub["judge_protocol"].dropna() if str(x)}) if "judge_protocol" in sub else []
    return " | ".join(vals)


def cell_stats(long: pd.DataFrame, task: str, n_boot: int = 1000, seed: int = DEFAULT_SEED) -> pd.DataFrame:
    """One row per run x Table 1 column: system, backends, the run's number of pairs, metric, label(s),
    backend(s), proxy, n, missing, mean, ci_low, ci_high. Every run gets every column (absent ones as missing
    cells)."""
    cols = ["task", "run", "system", "director_backend", "producer_backend", "protocol", "run_protocol",
            "judge_protocol", "pairs", "metric", "column", "label", "backend", "proxy", "n", "missing", "mean", "ci_low",
            "ci_high"]
    if long is None or len(long) == 0:
        return pd.DataFrame(columns=cols)
    if "run_protocol" not in long.columns:
        long = long.assign(run_protocol="extended")
    runs = (long[["run", "system", "director_backend", "producer_backend", "run_protocol"]].drop_duplicates("run")
            .to_dict("records"))
    runs.sort(key=_run_key)
    out = []
    for r in runs:
        sub = long[long["run"] == r["run"]]
        r["run_protocol"] = str(r["run_protocol"]) if isinstance(r["run_protocol"], str) else "extended"
        r["judge_protocol"] = _judge_protocol(sub)
        r["pairs"] = int(sub["pair_id"].dropna().nunique()) if "pair_id" in sub else 0
        r["protocol"] = (combined_protocol(r["run_protocol"], r["judge_protocol"])
                         if r["judge_protocol"] and " | " not in r["judge_protocol"]
                         else r["run_protocol"] + (f" · judge: {r['judge_protocol']}" if r["judge_protocol"] else ""))
        for metric, colname in TABLE1_COLUMNS:
            s = sub[sub["metric"] == metric]
            s = s.sort_values(["pair_id", "user_id"], na_position="first", kind="stable")
            labels = sorted({str(x) for x in s["label"].dropna()})
            backends = sorted({str(x) for x in s["backend"].dropna()})
            proxy = bool(s["proxy"].fillna(False).astype(bool).any()) if len(s) else False
            vals = s["value"].to_numpy(np.float64)
            mean, lo, hi = bootstrap_ci(vals, n_boot, seed, "table1", task, r["run"], metric)
            if metric == "integration_quality" and task != "pci":
                label = NOT_APPLICABLE
            else:
                label = " | ".join(labels) if labels else "missing"
            out.append({"task": task, **r, "metric": metric, "column": colname, "label": label,
                        "backend": " | ".join(backends), "proxy": proxy, "n": int(np.isfinite(vals).sum()),
                        "missing": int((~np.isfinite(vals)).sum()), "mean": mean, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(out, columns=cols)


def _decimals(metric: str) -> int:
    return 4 if metric in VQ_METRICS else 2


def _fmt_cell(c: dict[str, Any], mixed_proxy: bool) -> str:
    if c["metric"] == "integration_quality" and c["task"] != "pci":
        return NOT_APPLICABLE
    if not np.isfinite(c["mean"]):
        return MISSING if not c["missing"] else f"{MISSING} ({c['missing']} missing)"
    d = _decimals(c["metric"])
    s = f"{c['mean']:.{d}f} [{c['ci_low']:.{d}f}, {c['ci_high']:.{d}f}]"
    if c["missing"]:
        s += f" ({c['missing']} missing)"
    if mixed_proxy and c["proxy"]:
        s += " (proxy)"
    return s


#: the paper's rows are over its whole benchmarks: 50 users x 5 products per task
PAPER_PAIRS = 250


def row_name(system: str, director: str, producer: str) -> str:
    return f"{SYSTEM_NAMES.get(system, system)} · {director} · {producer}"


def format_table1(cells: pd.DataFrame, task: str, include_paper: bool = True) -> pd.DataFrame:
    """The printed Table 1: rows = system · Director · Producer (ours, then the paper's as reference), the
    ``protocol`` and ``pairs`` columns (a row on a subset says so), then the paper's columns, each cell ``mean [95% CI]``; a column whose values are
    proxies says ``(proxy)`` in its header (in the cell when the column mixes proxies and real metrics)."""
    headers = {}
    for metric, name in TABLE1_COLUMNS:
        c = cells[cells["metric"] == metric] if len(cells) else cells
        finite = c[np.isfinite(c["mean"].astype(float))] if len(c) else c
        proxies = set(finite["proxy"].astype(bool)) if len(finite) else set()
        headers[metric] = f"{name} (proxy)" if proxies == {True} else name
    rows = []
    if len(cells):
        for run, g in cells.groupby("run", sort=False):
            first = g.iloc[0]
            d = {"row": row_name(first["system"], first["director_backend"], first["producer_backend"]),
                 "protocol": first.get("protocol", "extended"), "pairs": int(first.get("pairs", 0) or 0)}
            for metric, _ in TABLE1_COLUMNS:
                c = g[g["metric"] == metric].iloc[0].to_dict()
                col = cells[cells["metric"] == metric]
                fin = col[np.isfinite(col["mean"].astype(float))]
                mixed = len(set(fin["proxy"].astype(bool))) > 1
                d[headers[metric]] = _fmt_cell(c, mixed)
            rows.append(d)
    if include_paper:
        for _, p in paper_table(task).iterrows():
            d = {"row": f"{p['row']} · {p['director']} · {p['producer']}", "protocol": p["protocol"],
                 "pairs": PAPER_PAIRS}
            for metric, _ in TABLE1_COLUMNS:
                v = p[metric]
                d[headers[metric]] = (f"{v:.{_decimals(metric)}f}" if np.isfinite(v) else
                                      (NOT_APPLICABLE if metric == "integration_quality" else MISSING))
            rows.append(d)
    return pd.DataFrame(rows, columns=["row", "protocol", "pairs", *headers.values()]).set_index("row")


def legend_table(cells: pd.DataFrame) -> pd.DataFrame:
    """Per Table 1 column: the label(s) and backend(s) its cells carry (what each number is)."""
    rows = []
    for metric, name in TABLE1_COLUMNS:
        c = cells[cells["metric"] == metric] if len(cells) else cells
        labels = sorted({x for lab in c["label"] for x in str(lab).split(" | ")}) if len(c) else ["missing"]
        backends = sorted({x for b in c["backend"] for x in str(b).split(" | ") if x}) if len(c) else []
        rows.append({"column": name, "label": " | ".join(labels), "backend": " | ".join(backends) or MISSING})
    return pd.DataFrame(rows).set_index("column")


def table1(paths: StudyPaths, task: str, n_boot: int = 1000, seed: int = DEFAULT_SEED, write: bool = True
           ) -> dict[str, Any]:
    """Table 1 of ``task``: ``{"cells", "table", "legend", "notes"}``; written (when ``write``) to
    ``results/table1_<task>.csv`` (the printed table) and ``results/table1_cells_<task>.csv`` (tidy cells)."""
    long, notes = load_long(paths, task)
    cells = cell_stats(long, task, n_boot=n_boot, seed=seed)
    table = format_table1(cells, task)
    legend = legend_table(cells)
    if write:
        write_csv(paths.results / f"table1_{task}.csv", table.reset_index())
        write_csv(paths.results / f"table1_cells_{task}.csv", cells)
    return {"cells": cells, "table": table, "legend": legend, "notes": notes}


def write_csv(path: Path, df: pd.DataFrame) -> Path:
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.6g")
    return path


# ------------------------------------------------------------------------------------------------ figure
def plot_table1(cells: pd.DataFrame, task: str, include_paper: bool = True):
    """Bar chart of Table 1: judge criteria (0-10) and video quality (0-1) side by side, one bar per run with
    its 95% interval, the paper's values as hollow markers. Fixed size, deterministic."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [5, 4]})
    runs = list(dict.fromkeys(cells["run"])) if len(cells) else []
    paper = paper_table(task) if include_paper else None
    colours = plt.get_cmap("tab10")
    for ax, metrics, ylim, title in ((axes[0], JUDGE_METRICS, (0, 10), "judge criteria (0-10)"),
                                      (axes[1], VQ_METRICS, (0, 1.05), "video quality (0-1)")):
        metrics = [m for m in metrics if not (m == "integration_quality" and task != "pci")]
        x = np.arange(len(metrics))
        w = 0.8 / max(1, len(runs))
        for i, run in enumerate(runs):
            g = cells[cells["run"] == run].set_index("metric")
            first = g.iloc[0]
            means = np.array([g.loc[m, "mean"] if m in g.index else np.nan for m in metrics], float)
            lo = np.array([g.loc[m, "ci_low"] if m in g.index else np.nan for m in metrics], float)
            hi = np.array([g.loc[m, "ci_high"] if m in g.index else np.nan for m in metrics], float)
            err = np.vstack([np.nan_to_num(means - lo), np.nan_to_num(hi - means)])
            ax.bar(x - 0.4 + w * (i + 0.5), np.nan_to_num(means), w, yerr=err, capsize=2, color=colours(i % 10),
                   label=f"{row_name(first['system'], first['director_backend'], first['producer_backend'])} "
                         f"[{first.get('protocol', 'extended')}]")
        if paper is not None:
            marks = ["o", "s", "^"]
            for k, (_, p) in enumerate(paper.iterrows()):
                ax.scatter(x, [p[m] for m in metrics], marker=marks[k % 3], facecolors="none", edgecolors="black",
                           zorder=3, label=f"{p['row']}")
        names = [COLUMN_NAMES[m] for m in metrics]
        proxy = {m: bool(cells[(cells["metric"] == m)]["proxy"].any()) for m in metrics} if len(cells) else {}
        ax.set_xticks(x, [f"{n}\n(proxy)" if proxy.get(m) else n for n, m in zip(names, metrics)], fontsize=8)
        ax.set_ylim(*ylim)
        ax.set_title(title, fontsize=10)
    h, lab = axes[0].get_legend_handles_labels()
    fig.legend(h, lab, loc="lower center", ncol=3, fontsize=7, frameon=False)
    fig.suptitle(f"Table 1 ({task.upper()}-Bench): ours (bars, 95% bootstrap CI) and the paper (markers)", fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig


def save_figure(fig: Any, path: Path, dpi: int = 110) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", metadata={"Software": None})
    return path


# ---------------------------------------------------------------------------------- user-modeling recovery
def _topic_id(t: str) -> str:
    """A profile topic as a taxonomy id (free text from a VLM Director is mapped by MiniLM)."""
    from .topics import TOPIC_IDS  # noqa: PLC0415

    if t in TOPIC_IDS:
        return t
    low = t.strip().lower()
    from .topics import TOPICS  # noqa: PLC0415

    for tid, (name, _, _) in TOPICS.items():
        if low == name.lower():
            return tid
    from . import embed  # noqa: PLC0415

    return TOPIC_IDS[int(np.argmax(embed.topic_scores([t])[0]))]


def _agree(pred: str, truth: str) -> float:
    p, t = (pred or "").strip().lower(), (truth or "").strip().lower()
    if not p or not t:
        return math.nan
    return float(p == t or t in p.replace("-", " ").split())


def interest_hits(profile: UserProfile, truth: GroundTruth, names: Sequence[str], *, top: int = 3,
                  min_weight: float = 0.15) -> dict[str, float]:
    """Recovery of the fine-grained interests (``truth.interests``) by embedding similarity: each profile
    interest is represented by its label (``TopicPreference.label``, else its topic's name); a true interest of
    weight >= ``min_weight`` (at least the top one) is recovered when, for some profile interest, it is among
    the ``top`` most similar (MiniLM cosine) of ``names``, every interest of the dataset's ground truth.
    ``interest`` is that recall; ``interest_top1`` the same with ``top=1``. NaN without fine-grained truth."""
    if not truth.interests:
        return {"interest": math.nan, "interest_top1": math.nan}
    from . import embed  # noqa: PLC0415

    true_sorted = sorted(truth.interests.items(), key=lambda kv: (-kv[1], kv[0]))
    want = [n for n, w in true_sorted if w >= min_weight] or [true_sorted[0][0]]
    names = list(dict.fromkeys([*names, *truth.interests]))
    labels = [t.label or _topic_label(t.topic) for t in profile.topics]
    sim = embed.similarity(labels, names)  # (labels, names)
    out = {}
    for key, k in (("interest", top), ("interest_top1", 1)):
        hits = 0
        for n in want:
            j = names.index(n)
            hits += any(int((sim[i] > sim[i, j]).sum()) < k for i in range(len(labels)))
        out[key] = hits / len(want)
    return out


def _topic_label(topic: str) -> str:
    from .topics import topic_name  # noqa: PLC0415

    return topic_name(topic)


def recovery_scores(profile: UserProfile, truth: GroundTruth, k: int = 3, min_weight: float = 0.15,
                    interest_names: Sequence[str] = ()) -> dict[str, float]:
    """Recovery of one user's hidden truth: topic precision / recall of the profile's top-``k`` topics against
    the truth's topics of weight >= ``min_weight`` (at least its top one), top-1 hit, agreement (1/0) of
    tone, narrative, palette name, lighting and motion (NaN when the profile leaves one empty), and the
    fine-grained interests recovered (:func:`interest_hits` against ``interest_names``, the dataset's)."""
    truth_sorted = sorted(truth.topics.items(), key=lambda kv: (-kv[1], kv[0]))
    true_set = {t for t, w in truth_sorted if w >= min_weight} or {truth_sorted[0][0]}
    pred = [_topic_id(t.topic) for t in sorted(profile.topics, key=lambda t: (-t.weight, t.topic))]
    pred = list(dict.fromkeys(pred))[:k]
    hit = len(set(pred) & true_set)
    return {
        "topic_precision": hit / len(pred) if pred else math.nan,
        "topic_recall": hit / len(true_set),
        "top1": float(bool(pred) and pred[0] == truth_sorted[0][0]),
        "tone": _agree(profile.presentation.tone, truth.tone),
        "narrative": _agree(profile.presentation.narrative, truth.narrative),
        "palette": _agree(profile.visual.palette_name, truth.palette),
        "lighting": _agree(profile.visual.lighting, truth.lighting),
        "motion": _agree(profile.visual.motion, truth.motion),
        **interest_hits(profile, truth, interest_names),
    }


RECOVERY_METRICS = ("interest", "interest_top1", "topic_precision", "topic_recall", "top1", "tone", "narrative",
                    "palette", "lighting", "motion")


def recovery(paths: StudyPaths, tasks: Sequence[str] = ("pcg", "pci"), k: int = 3) -> dict[str, Any]:
    """User-modeling recovery for every run with profiles: ``{"users": per-user rows, "runs": per-run means,
    "notes": [...]}``; writes ``results/recovery.csv`` and ``results/recovery_users.csv``."""
    rows, notes = [], []
    for task in tasks:
        dataset = DATASETS[task]
        gt_path = paths.ground_truth(dataset)
        runs = list_runs(paths, task)
        if not runs:
            notes.append(f"{task}: no runs")
            continue
        if not gt_path.is_file():
            notes.append(f"{task}: no hidden ground truth at {gt_path.name} (not the embedded sample): skipped")
            continue
        truth = {g.user_id: g for g in read_jsonl(gt_path, GroundTruth)}
        names = sorted({n for g in truth.values() for n in g.interests})
        for run in runs:
            for pf in sorted((paths.run_dir(task, run) / "users").glob("*/profile.json")):
                try:
                    prof = read_model(pf, UserProfile)
                except ArtifactError as e:
                    notes.append(f"{task}/{run}: {e}")
                    continue
                g = truth.get(prof.user_id)
                if g is None:
                    notes.append(f"{task}/{run}: user {prof.user_id} has no ground-truth row")
                    continue
                summ = _summary(paths, task, run)
                rows.append({"task": task, "run": run, "director_backend": summ.director_backend if summ else prof.backend,
                             "user_id": prof.user_id, **recovery_scores(prof, g, k=k, interest_names=names)})
    users = pd.DataFrame(rows, columns=["task", "run", "director_backend", "user_id", *RECOVERY_METRICS])
    if len(users):
        per_run = users.groupby(["task", "run", "director_backend"], sort=True)[list(RECOVERY_METRICS)].mean()
        per_run.insert(0, "users", users.groupby(["task", "run", "director_backend"], sort=True).size())
        per_run = per_run.reset_index()
    else:
        per_run = pd.DataFrame(columns=["task", "run", "director_backend", "users", *RECOVERY_METRICS])
    write_csv(paths.results / "recovery.csv", per_run)
    write_csv(paths.results / "recovery_users.csv", users)
    return {"users": users, "runs": per_run, "notes": notes}


def _summary(paths: StudyPaths, task: str, run: str) -> RunSummary | None:
    p = paths.run_dir(task, run) / "summary.json"
    try:
        return read_model(p, RunSummary) if p.is_file() else None
    except ArtifactError:
        return None


def _summary_fields(paths: StudyPaths, task: str, run: str) -> RunSummary | None:
    """The run's summary validated on the fields this module reads (fields a newer run records, such as its
    protocol, are read by :func:`run_protocol`), None when it is missing or broken."""
    p = paths.run_dir(task, run) / "summary.json"
    try:
        d = read_json(p) if p.is_file() else None
        return RunSummary.model_validate({k: v for k, v in d.items() if k in RunSummary.model_fields}) if d else None
    except Exception:  # noqa: BLE001 - a broken summary leaves the run out of the table
        return None


def fallback_table(paths: StudyPaths, tasks: Sequence[str] = ("pcg", "pci")) -> pd.DataFrame:
    """Per run: its protocol, pairs, done, fallback, failed and the fallback rate ``fallback / n_pairs`` (from
    ``summary.json``); written to ``results/fallback.csv``."""
    rows = []
    for task in tasks:
        for run in list_runs(paths, task):
            s = _summary_fields(paths, task, run)
            if s is None:
                continue
            rows.append({"task": task, "run": run, "system": s.system, "director": s.director_backend,
                         "producer": s.producer_backend, "protocol": run_protocol(paths, task, run), "pairs": s.n_pairs,
                         "done": s.done, "fallback": s.fallback,
                         "failed": s.failed, "fallback_rate": round(s.fallback / s.n_pairs, 4) if s.n_pairs else math.nan,
                         "failed_rate": round(s.failed / s.n_pairs, 4) if s.n_pairs else math.nan})
    df = pd.DataFrame(rows, columns=["task", "run", "system", "director", "producer", "protocol", "pairs", "done",
                                     "fallback", "failed", "fallback_rate", "failed_rate"])
    write_csv(paths.results / "fallback.csv", df)
    return df


# ------------------------------------------------------------------------------------------- case sheets
def case_run(paths: StudyPaths, task: str, prefer: Sequence[str] = ("nextads",), protocol: str = "paper") -> str | None:
    """The run the case figures show: a run of the first preferred system, its ``protocol`` run first (the
    directory name ends in the protocol label), else its first by name; else the first run."""
    runs = list_runs(paths, task)
    for sysname in prefer:
        mine = [r for r in runs if r.startswith(f"{sysname}__")]
        if mine:
            return next((r for r in mine if r.endswith(f"__{protocol}")), mine[0])
    return runs[0] if runs else None


def pick_case_users(paths: StudyPaths, task: str, run: str, n: int = 2) -> list[str]:
    """``n`` users for the case sheets, deterministically: most personalized (status done) pairs with a
    creative first, then most pairs, then user id."""
    from .schemas import PairManifest  # noqa: PLC0415

    stats: dict[str, list[int]] = {}
    for mp in sorted(paths.run_dir(task, run).glob("*/manifest.json")):
        try:
            m = read_model(mp, PairManifest)
        except ArtifactError:
            continue
        s = stats.setdefault(m.user_id, [0, 0])
        ok = (mp.parent / "creative.mp4").is_file()
        s[0] += int(m.status == "done" and ok)
        s[1] += int(m.status != "failed" and ok)
    ranked = sorted(stats.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
    return [u for u, s in ranked if s[1] > 0][:n]


def _user_pairs(paths: StudyPaths, task: str, run: str, user_id: str, n: int) -> list[Path]:
    from .schemas import PairManifest  # noqa: PLC0415

    found = []
    for mp in sorted(paths.run_dir(task, run).glob("*/manifest.json")):
        try:
            m = read_model(mp, PairManifest)
        except ArtifactError:
            continue
        if m.user_id == user_id and m.status != "failed" and (mp.parent / "creative.mp4").is_file():
            found.append((0 if m.status == "done" else 1, mp.parent.name, mp.parent))
    return [d for _, _, d in sorted(found)][:n]


def _wrap(text: str, width: int = 48, max_lines: int = 9) -> str:
    import textwrap  # noqa: PLC0415

    lines = [x for line in text.split("\n") for x in (textwrap.wrap(line, width) or [""])]
    if len(lines) > max_lines:
        lines = lines[:max_lines - 1] + [lines[max_lines - 1][: width - 1] + "…"]
    return "\n".join(lines)


def case_sheet(paths: StudyPaths, task: str, run: str, user_id: str, n_pairs: int = 2, n_frames: int = 6):
    """A Figure 4 (PCG) / Figure 5 (PCI) style sheet for one user: history thumbnails, the inferred
    preferences, and per pair the plan summary and frames of the creative (PCI: frames across both seams of
    the integrated video). Returns a matplotlib Figure of fixed size."""
    import matplotlib.pyplot as plt  # noqa: PLC0415
    from matplotlib.patches import Rectangle  # noqa: PLC0415

    from . import viz  # noqa: PLC0415
    from .judge import frames_at, video_frames  # noqa: PLC0415

    run_dir = paths.run_dir(task, run)
    history = None
    if paths.bench_users(task).is_file():
        history = next((u for u in read_jsonl(paths.bench_users(task), UserHistory) if u.user_id == user_id), None)
    prof_path = run_dir / "users" / user_id / "profile.json"
    profile = read_model(prof_path, UserProfile) if prof_path.is_file() else None
    pair_dirs = _user_pairs(paths, task, run, user_id, n_pairs)
    ncols = 6
    nrows = 1 + max(1, len(pair_dirs))
    row_h = 3.0  # portrait creatives; landscape ones (PCI hosts are often 16:9) need less height per row
    if pair_dirs:
        try:
            from .media import probe  # noqa: PLC0415

            info = probe(pair_dirs[0] / ("integrated.mp4" if (pair_dirs[0] / "integrated.mp4").is_file() else "creative.mp4"))
            row_h = 3.0 if info.height >= info.width else 1.9
        except Exception:  # noqa: BLE001 - the sheet shows the undecodable video itself
            pass
    fig = plt.figure(figsize=(15, row_h * nrows))
    gs = fig.add_gridspec(nrows, ncols + 2, width_ratios=[1] * ncols + [1.3, 1.3])
    # row 0: history thumbnails + preferences
    thumbs = []
    if history is not None:
        for it in history.items:
            if it.image_paths:
                thumbs.append((it.image_paths[0], it.title or it.item_id))
            if len(thumbs) >= ncols:
                break
    for i in range(ncols):
        ax = fig.add_subplot(gs[0, i])
        ax.axis("off")
        if i < len(thumbs):
            arr = viz._load(thumbs[i][0], 200)
            if arr is not None:
                ax.imshow(arr)
            ax.set_title(viz._clip(str(thumbs[i][1]), 22), fontsize=7)
    ax = fig.add_subplot(gs[0, ncols:])
    ax.axis("off")
    if profile is not None:
        topics = ", ".join(f"{t.topic} {t.weight:.2f}" for t in profile.topics)
        pres = profile.presentation
        txt = (f"Inferred preferences ({profile.backend})\ntopics: {topics}\ntone: {pres.tone}; narrative: "
               f"{pres.narrative}\npalette: {profile.visual.palette_name or '?'}; lighting: "
               f"{profile.visual.lighting or '?'}; motion: {profile.visual.motion or '?'}")
        ax.text(0, 1, _wrap(txt, 60, 8), va="top", fontsize=8, family="monospace")
        for j, h in enumerate(profile.visual.palette[:6]):
            ax.add_patch(Rectangle((0.05 + 0.12 * j, 0.02), 0.1, 0.12, color=h, transform=ax.transAxes))
    else:
        ax.text(0, 1, "no profile in this run\n(the Director saw no user data)", va="top", fontsize=8)
    # pair rows
    for r, d in enumerate(pair_dirs, start=1):
        plan = read_model(d / "plan.json", Storyboard)
        ax = fig.add_subplot(gs[r, ncols:])
        ax.axis("off")
        narr = " / ".join(s.narration for s in plan.slots if s.narration)
        txt = (f"{plan.product_id}  [{'personalized' if plan.personalized else 'generic'}]\n"
               f"topic: {plan.matched_topic or '-'}\nhook: {plan.hook}\nnarration: {narr}")
        ax.text(0, 1, _wrap(txt, 60, 10), va="top", fontsize=8, family="monospace")
        try:
            if task == "pci" and (d / "integration.json").is_file() and (d / "integrated.mp4").is_file():
                integ = read_json(d / "integration.json")
                si, so = float(integ["seam_in_s"]), float(integ["seam_out_s"])
                dur = float(integ.get("integrated_duration_s") or so + 1)
                times = [max(0.0, si - 1.0), max(0.0, si - 0.2), si + 0.3, (si + so) / 2, max(si, so - 0.3),
                         min(dur - 0.05, so + 0.3)]
                frames = frames_at(d / "integrated.mp4", times, width=240)
                titles = ["host", "host (seam in)", "ad", "ad", "ad (seam out)", "host"]
                titles = [f"{t} {x:.1f}s" for t, x in zip(titles, times)]
            else:
                frames = video_frames(d / "creative.mp4", min(n_frames, ncols), width=240)
                titles = [f"frame {i + 1}" for i in range(len(frames))]
        except Exception as e:  # noqa: BLE001 - an undecodable video is shown as such
            frames, titles = [], [f"undecodable: {type(e).__name__}"]
        for i in range(ncols):
            ax = fig.add_subplot(gs[r, i])
            ax.axis("off")
            if i < len(frames):
                ax.imshow(frames[i])
                ax.set_title(titles[i], fontsize=7)
            elif i == 0 and not len(frames):
                ax.text(0.5, 0.5, titles[0], ha="center", fontsize=7)
    fig.suptitle(f"{'Figure 4 (PCG)' if task == 'pcg' else 'Figure 5 (PCI)'} style case: user {user_id}, run {run}",
                 fontsize=11)
    fig.tight_layout()
    return fig


def case_figures(paths: StudyPaths, task: str, run: str | None = None, n_users: int = 2) -> list[Path]:
    """Case sheets of ``n_users`` users of ``task`` saved to ``figures/fig4_<uid>.png`` (PCG) or
    ``fig5_<uid>.png`` (PCI); [] when the task has no run."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    run = run or case_run(paths, task)
    if run is None:
        return []
    out = []
    prefix = "fig4" if task == "pcg" else "fig5"
    for uid in pick_case_users(paths, task, run, n_users):
        fig = case_sheet(paths, task, run, uid)
        out.append(save_figure(fig, paths.figures / f"{prefix}_{uid}.png", dpi=80))
        plt.close(fig)
    return out


__all__ = ["TABLE1_COLUMNS", "PAPER_TABLE1", "paper_table", "run_protocol", "load_long", "bootstrap_ci", "cell_stats",
           "format_table1", "legend_table", "table1", "plot_table1", "save_figure", "recovery_scores", "recovery",
           "fallback_table", "case_run", "pick_case_users", "case_sheet", "case_figures", "PAPER_NAMES"]
