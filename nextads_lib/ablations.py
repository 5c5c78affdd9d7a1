"""Protocol ablations (issue 13, notebook 41): each departure from the paper's protocol switched on alone, and what
it moves in every Table 1 column.

The ``nextads`` system runs on a small subset of both benchmarks (the first ``n_users`` users of each, their
``products_per_user`` best-ranked products) under ``get_protocol("paper")`` and under ``get_protocol("paper",
<switch>=...)`` for one switch at a time:

==========================  =======================================================================  ==========
variant                     what changes                                                              tasks
==========================  =======================================================================  ==========
``slot_layouts``            each slot's clip is conditioned on a layout of its assets, not the         PCG, PCI
                            reference collage
``post_production``         voice-over, music, subtitles, text cards, a CTA card (PCI: seam blend)     PCG, PCI
``frame_overwrite``         PCI continuity pasted in: first/last frames overwritten by the host frame  PCI
``judge_extras``            no new run: the paper run judged with the extras (narration, forbidden     PCG, PCI
                            claims, seam times, host summary)
``compat_threshold=<t>``    the generic-ad fallback below compatibility ``t``                          PCG, PCI
==========================  =======================================================================  ==========

Every run goes through the pipeline's own functions (``pcg.run_pcg`` / ``pci.run_pci`` with ``protocol=``), the
judge (:func:`nextads_lib.judge.judge_run` under the paper's judge, or ``paper+judge_extras`` for that variant) and
video quality (:func:`nextads_lib.vbench.score_runs`), in a workspace of its own, ``<data_dir>/ablations/``
(:class:`AblationPaths`: its own benchmarks subset, runs and results; the product library, the raw sample and the
content-addressed cache are the study's, so whatever the study already computed is reused). Nothing there is read
by Table 1 (notebook 30), which only reads ``<data_dir>/runs``.

Effects (:func:`effect_table`): for each variant, task and Table 1 column, the paired difference ``variant -
paper`` over the units present (finite) in both, a pair for the pair-level criteria and the video metrics, a
user for diversity; its mean and the 2.5 / 97.5 percentiles of ``n_boot`` bootstrap means of the differences
(units resampled with replacement, ``seed.rng(seed, "ablation", task, variant, metric)``). Pairing removes the
spread between units, so a deviation that shifts every pair by the same amount has a zero-width interval.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .config import DEFAULT_SEED, StudyPaths
from .protocol import Protocol, get_protocol
from .seed import rng
from .store import read_jsonl, write_jsonl

#: the single switches ablated (besides the fallback thresholds), and the tasks each applies to
SWITCH_TASKS: dict[str, tuple[str, ...]] = {
    "slot_layouts": ("pcg", "pci"),
    "post_production": ("pcg", "pci"),
    "frame_overwrite": ("pci",),
    "judge_extras": ("pcg", "pci"),
}
#: the fallback thresholds tried by default
THRESHOLDS: tuple[float, ...] = (0.2, 0.35, 0.5)
BASELINE = "paper"
#: the effect table's columns
EFFECT_COLUMNS = ["task", "variant", "metric", "column", "label", "n", "baseline_mean", "variant_mean", "diff",
                  "ci_low", "ci_high"]


# ------------------------------------------------------------------------------------------ workspace
@dataclass(frozen=True)
class AblationPaths(StudyPaths):
    """The ablation workspace ``<data_dir>/ablations``: its own benchmarks, runs, results and figures; the
    study's raw sample, products and cache (``base``)."""

    base: Path = Path("data")

    @classmethod
    def under(cls, paths: StudyPaths) -> "AblationPaths":
        return cls(root=paths.root / "ablations", base=paths.root)

    @property
    def _study(self) -> StudyPaths:
        return StudyPaths(self.base)

    @property
    def raw(self) -> Path:
        return self._study.raw

    @property
    def interim(self) -> Path:
        return self._study.interim

    @property
    def products(self) -> Path:
        return self._study.products


def variants(tasks: Sequence[str] = ("pcg", "pci"), thresholds: Sequence[float] = THRESHOLDS,
             switches: Sequence[str] = tuple(SWITCH_TASKS)) -> list[tuple[str, Protocol]]:
    """``(task, protocol)`` for the paper and each deviation alone, in table order (the paper first)."""
    out: list[tuple[str, Protocol]] = []
    for task in tasks:
        out.append((task, get_protocol(BASELINE)))
        for sw in switches:
            if task in SWITCH_TASKS.get(sw, ()):
                out.append((task, get_protocol(BASELINE, **{sw: True})))
        for t in thresholds:
            out.append((task, get_protocol(BASELINE, compat_threshold=float(t))))
    return out


def write_subset(paths: StudyPaths, ab: AblationPaths, task: str, n_users: int, products_per_user: int) -> int:
    """Write the benchmark subset of ``task`` into the workspace: the first ``n_users`` users in benchmark order,
    each with their ``products_per_user`` best-ranked pairs; returns the number of pairs. Pair directories of the
    workspace's earlier runs that left the subset (a larger ``n_users`` before) are removed, so the variants'
    runs hold exactly the subset's pairs (their finished work stays in the shared cache). Raises
    FileNotFoundError naming the notebook when the study's benchmark is missing."""
    from .schemas import BenchPair, UserHistory  # noqa: PLC0415

    src_pairs, src_users = paths.bench_pairs(task), paths.bench_users(task)
    for p in (src_pairs, src_users):
        if not p.is_file():
            nb = "01_build_pcg_bench" if task == "pcg" else "02_build_pci_bench"
            raise FileNotFoundError(f"{p}: missing; run notebook {nb} first")
    by_user: dict[str, list[BenchPair]] = {}
    for bp in read_jsonl(src_pairs, BenchPair):
        by_user.setdefault(bp.user_id, []).append(bp)
    chosen = list(by_user)[: int(n_users)] if n_users else list(by_user)
    k = int(products_per_user)
    pairs = [bp for u in chosen for bp in sorted(by_user[u], key=lambda b: (b.rank, b.pair_id))[:k]]
    users = [u for u in read_jsonl(src_users, UserHistory) if u.user_id in set(chosen)]
    write_jsonl(ab.bench_pairs(task), pairs)
    write_jsonl(ab.bench_users(task), users)
    keep = {bp.pair_id for bp in pairs}
    task_runs = ab.runs / task
    for man in sorted(task_runs.glob("*/*/manifest.json")) if task_runs.is_dir() else []:
        if man.parent.name not in keep:
            shutil.rmtree(man.parent)
    return len(pairs)


# ------------------------------------------------------------------------------------------ statistics
def paired_bootstrap(baseline: pd.Series, variant: pd.Series, n_boot: int = 1000, seed: int = DEFAULT_SEED,
                     *keys: object, level: float = 0.95) -> tuple[float, float, float, int]:
    """Paired difference ``variant - baseline`` over the units (the index) both have a finite value for: its
    mean, the percentile bootstrap interval of that mean (:func:`nextads_lib.results.bootstrap_ci` over the
    differences, units resampled with replacement, ``seed.rng(seed, *keys)``) and the number of units. No common
    unit: NaNs and 0; one: a zero-width interval."""
    from .results import bootstrap_ci  # noqa: PLC0415

    both = pd.concat([pd.to_numeric(baseline, errors="coerce").rename("b"),
                      pd.to_numeric(variant, errors="coerce").rename("w")], axis=1, join="inner")
    both = both[np.isfinite(both["b"]) & np.isfinite(both["w"])].sort_index()
    d = (both["w"] - both["b"]).to_numpy(np.float64)
    mean, lo, hi = bootstrap_ci(d, n_boot, seed, *keys, level=level)
    return mean, lo, hi, int(len(d))


def _unit(df: pd.DataFrame) -> pd.Series:
    """The unit a value belongs to: the pair, or the user for per-user metrics (diversity)."""
    pair = df["pair_id"].astype(object)
    user = df["user_id"].astype(object)
    return pair.where(pair.notna() & (pair.astype(str) != ""), "user:" + user.astype(str))


def effect_table(long: pd.DataFrame, n_boot: int = 1000, seed: int = DEFAULT_SEED,
                 baseline: str = BASELINE) -> pd.DataFrame:
    """Per task x variant (≠ ``baseline``) x Table 1 column: the paired difference to the baseline over the units
    both have a finite value for (``n``), the two means over those units, and the bootstrap interval of the
    mean difference (:func:`paired_bootstrap`). ``long`` has columns ``task, variant, metric, pair_id, user_id,
    value`` (and optionally ``label``)."""
    from .results import TABLE1_COLUMNS  # noqa: PLC0415

    rows = []
    if long is None or len(long) == 0:
        return pd.DataFrame(columns=EFFECT_COLUMNS)
    df = long.copy()
    df["value"] = pd.to_numeric(df["value"], errors="coerce").astype("float64")
    df["unit"] = _unit(df)
    if "label" not in df.columns:
        df["label"] = df["metric"]
    for task in dict.fromkeys(df["task"]):
        t = df[df["task"] == task]
        base = t[t["variant"] == baseline]
        for variant in [v for v in dict.fromkeys(t["variant"]) if v != baseline]:
            v = t[t["variant"] == variant]
            for metric, column in TABLE1_COLUMNS:
                b = base[base["metric"] == metric].groupby("unit")["value"].mean()
                w = v[v["metric"] == metric].groupby("unit")["value"].mean()
                if len(b) == 0 and len(w) == 0:
                    continue  # a column the task does not have (integration quality in PCG)
                mean, lo, hi, n = paired_bootstrap(b, w, n_boot, seed, "ablation", task, variant, metric)
                common = b.index.intersection(w.index)
                ok = common[np.isfinite(b.loc[common].to_numpy(float)) & np.isfinite(w.loc[common].to_numpy(float))]
                labels = sorted({str(x) for x in v.loc[v["metric"] == metric, "label"].dropna()})
                rows.append({"task": task, "variant": variant, "metric": metric, "column": column,
                             "label": " | ".join(labels), "n": n,
                             "baseline_mean": float(b.loc[ok].mean()) if n else math.nan,
                             "variant_mean": float(w.loc[ok].mean()) if n else math.nan,
                             "diff": mean, "ci_low": lo, "ci_high": hi})
    return pd.DataFrame(rows, columns=EFFECT_COLUMNS)


def _fmt(diff: float, lo: float, hi: float, metric: str) -> str:
    if not np.isfinite(diff):
        return "—"
    d = 4 if metric in ("ms", "dd", "aq", "iq") else 2
    return f"{diff:+.{d}f} [{lo:+.{d}f}, {hi:+.{d}f}]"


def summary_table(effects: pd.DataFrame, task: str) -> pd.DataFrame:
    """The printed table of one task: one row per variant, one column per Table 1 column (a proxy column says
    ``(proxy)`` in its header), each cell ``diff [95% CI]`` against the paper's protocol; ``n`` is the number of
    pairs compared (the most over the columns)."""
    from .results import TABLE1_COLUMNS  # noqa: PLC0415

    e = effects[effects["task"] == task]
    cols = []
    for metric, name in TABLE1_COLUMNS:
        m = e[e["metric"] == metric]
        if len(m) == 0:
            continue
        proxy = any("proxy" in str(lab) for lab in m["label"])
        cols.append((metric, f"{name} (proxy)" if proxy else name))
    rows = []
    for variant in dict.fromkeys(e["variant"]):
        g = e[e["variant"] == variant].set_index("metric")
        d: dict[str, Any] = {"variant": variant, "n": int(g["n"].max()) if len(g) else 0}
        for metric, header in cols:
            d[header] = _fmt(*(g.loc[metric, ["diff", "ci_low", "ci_high"]].astype(float)), metric) \
                if metric in g.index else "—"
        rows.append(d)
    return pd.DataFrame(rows, columns=["variant", "n", *[h for _, h in cols]]).set_index("variant")


def moved(effects: pd.DataFrame) -> pd.DataFrame:
    """Per task x variant: the Table 1 columns whose interval excludes 0 (what the deviation moves), with the
    sign of the move."""
    rows = []
    for (task, variant), g in effects.groupby(["task", "variant"], sort=False):
        sig = g[(g["ci_low"] > 0) | (g["ci_high"] < 0)]
        rows.append({"task": task, "variant": variant,
                     "moves": ", ".join(f"{c} {'+' if dv > 0 else '-'}" for c, dv in zip(sig["column"], sig["diff"]))
                     or "nothing (every interval contains 0)"})
    return pd.DataFrame(rows, columns=["task", "variant", "moves"])


# ------------------------------------------------------------------------------------------ figure
def plot_effects(effects: pd.DataFrame):
    """Forest plot of the effects: one panel per task x scale (judge criteria 0-10, video quality 0-1), one
    marker per variant with its 95% interval, per Table 1 column; the zero line is the paper's protocol. Fixed
    size, deterministic."""
    import matplotlib.pyplot as plt  # noqa: PLC0415

    from .results import JUDGE_METRICS, TABLE1_COLUMNS, VQ_METRICS  # noqa: PLC0415

    names = dict(TABLE1_COLUMNS)
    tasks = list(dict.fromkeys(effects["task"])) or ["pcg"]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(13, 3.6 * len(tasks)), squeeze=False,
                             gridspec_kw={"width_ratios": [5, 4]})
    colours = plt.get_cmap("tab10")
    all_variants = list(dict.fromkeys(effects["variant"]))
    for r, task in enumerate(tasks):
        e = effects[effects["task"] == task]
        for c, metrics, title in ((0, JUDGE_METRICS, "judge criteria (difference, 0-10 scale)"),
                                  (1, VQ_METRICS, "video quality (difference, 0-1 scale)")):
            ax = axes[r][c]
            metrics = [m for m in metrics if m in set(e["metric"])]
            x = np.arange(len(metrics))
            w = 0.8 / max(1, len(all_variants))
            for i, variant in enumerate(all_variants):
                g = e[e["variant"] == variant].set_index("metric")
                ys = np.array([g.loc[m, "diff"] if m in g.index else np.nan for m in metrics], float)
                lo = np.array([g.loc[m, "ci_low"] if m in g.index else np.nan for m in metrics], float)
                hi = np.array([g.loc[m, "ci_high"] if m in g.index else np.nan for m in metrics], float)
                if not np.isfinite(ys).any():
                    continue
                err = np.vstack([np.nan_to_num(ys - lo), np.nan_to_num(hi - ys)])
                ax.errorbar(x - 0.4 + w * (i + 0.5), ys, yerr=err, fmt="o", ms=4, capsize=2, color=colours(i % 10),
                            label=variant)
            ax.axhline(0, color="black", lw=0.8)
            ax.set_xticks(x)
            ax.set_xticklabels([names[m] for m in metrics], fontsize=8)
            ax.set_title(f"{task.upper()}: {title}", fontsize=9)
            ax.tick_params(axis="y", labelsize=8)
    handles, labels = [], []
    for ax in axes.flat:
        h, lab = ax.get_legend_handles_labels()
        for hh, ll in zip(h, lab):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("Each deviation alone minus the paper's protocol (paired over pairs / users, 95% bootstrap CI)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


# ------------------------------------------------------------------------------------------ runner
def _run(task: str, ab: AblationPaths, proto: Protocol, director_backend: str, producer_backend: str,
         workers: int, render: dict[str, Any]) -> str:
    """One run of ``nextads`` under ``proto`` through the pipeline's own function; returns its run name."""
    from . import pcg, pci  # noqa: PLC0415

    fn = pcg.run_pcg if task == "pcg" else pci.run_pci
    try:
        summary = fn(ab, "nextads", director_backend, producer_backend, protocol=proto, workers=workers,
                     progress=False, **render)
    except TypeError as e:
        if "protocol" in str(e):
            raise TypeError(f"{fn.__module__}.{fn.__name__} takes no protocol= keyword yet: the ablations need the "
                            "protocol-aware pipeline (issue 13)") from e
        raise
    return summary.run_name


def run_ablations(paths: StudyPaths, *, tasks: Sequence[str] = ("pcg", "pci"), n_users: int = 6,
                  products_per_user: int = 5, thresholds: Sequence[float] = THRESHOLDS,
                  switches: Sequence[str] = tuple(SWITCH_TASKS), director_backend: str = "offline",
                  producer_backend: str = "compositor", judge_backend: str = "offline", vq_backend: str = "offline",
                  n_frames: int = 4, workers: int = 2, pcg_render: dict[str, Any] | None = None,
                  pci_render: dict[str, Any] | None = None, n_boot: int = 1000, seed: int = DEFAULT_SEED
                  ) -> dict[str, Any]:
    """Run every variant of :func:`variants` on the subset, judge it and score its video quality; returns
    ``{"long", "effects", "runs", "workspace"}`` and writes ``<workspace>/results/ablations_long.parquet`` and the
    study's ``results/ablations.csv`` (the effects)."""
    from . import judge, vbench  # noqa: PLC0415
    from .backends import get_backend  # noqa: PLC0415
    from .results import write_csv  # noqa: PLC0415
    from .store import write_parquet  # noqa: PLC0415

    ab = AblationPaths.under(paths)
    jb = get_backend(judge_backend, cache_dir=paths.cache)
    frames, run_rows = [], []
    for task in tasks:
        write_subset(paths, ab, task, n_users, products_per_user)
        render = dict((pcg_render if task == "pcg" else pci_render) or {})
        made: dict[str, str] = {}  # run protocol label -> run name
        jobs = []
        for t, proto in variants([task], thresholds, switches):
            variant = proto.label
            run_proto = get_protocol(BASELINE) if proto.judge_extras else proto  # a judge switch needs no run
            if run_proto.label not in made:
                made[run_proto.label] = _run(task, ab, run_proto, director_backend, producer_backend, workers, render)
            jobs.append((variant, run_proto.label, proto))
        vq = vbench.score_runs(ab, task, vq_backend, workers=workers, runs=sorted(set(made.values())))
        vq = vq.rename(columns={"vq_backend": "backend"})
        for variant, run_label, proto in jobs:
            run = made[run_label]
            judge_proto = get_protocol(BASELINE, judge_extras=proto.judge_extras)
            j = pd.DataFrame(judge.judge_run(ab, task, run, jb, n_frames=n_frames, workers=workers,
                                             protocol=judge_proto), columns=judge.COLUMNS)
            j = j.rename(columns={"criterion": "metric", "score": "value", "judge_backend": "backend"})
            v = vq[vq["run"] == run]
            part = pd.concat([j, v], ignore_index=True)
            part["variant"] = variant
            part["task"] = task
            frames.append(part[["task", "variant", "run", "metric", "pair_id", "user_id", "value", "label", "backend",
                                "proxy", "error"]])
            run_rows.append({"task": task, "variant": variant, "run": run, "judge_protocol": judge_proto.label})
    long = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["task", "variant", "run", "metric", "pair_id", "user_id", "value", "label", "backend", "proxy",
                 "error"])
    long["value"] = pd.to_numeric(long["value"], errors="coerce").astype("float64")
    write_parquet(ab.results / "ablations_long.parquet", long.astype({"proxy": "boolean"}))
    effects = effect_table(long, n_boot=n_boot, seed=seed)
    write_csv(paths.results / "ablations.csv", effects)
    return {"long": long, "effects": effects, "runs": pd.DataFrame(run_rows), "workspace": ab}


__all__ = ["SWITCH_TASKS", "THRESHOLDS", "BASELINE", "EFFECT_COLUMNS", "AblationPaths", "variants", "write_subset",
           "paired_bootstrap", "effect_table", "summary_table", "moved", "plot_effects", "run_ablations"]
