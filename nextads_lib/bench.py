"""PCG-Bench and PCI-Bench (paper section 4.2): select users with distinctive and consistent preferences and
pair each with the most compatible products of the library.

Everything here is measurable and written down, so a reader can recompute any number of the benchmarks.

**Topic tagging.** Each history item's text (``title. text``, the first :data:`TEXT_CHARS` characters) is
mapped to a distribution over the study's 16 taxonomy topics by :func:`nextads_lib.embed.topic_distribution`
(MiniLM cosine to each topic's description, softmax at temperature 0.05). An item with neither title nor text
cannot be tagged; it stays in the history but does not count. For PCI the host video (the last interacted
item) is set aside first: only the rest of the history is tagged and counted.

**Selection criterion** (per user, from the tagged items, oldest first; ``m`` = mean topic distribution, K = 16):

- ``n_items``: tagged items; ``length = min(1, n_items / min_items)``.
- ``concentration``: how much of the history sits on few topics, the top-3 mass of ``m`` rescaled so that a
  uniform history scores 0 and a history on at most three topics scores 1:
  ``(top3(m) - 3/K) / (1 - 3/K)``, clipped to [0, 1].
- ``consistency``: whether the first half of the history (items ``[: n // 2]``) and the second half
  (``[n // 2 :]``) are about the same topics: ``1 - total variation distance`` of their mean distributions,
  ``sum_t min(h1[t], h2[t])`` (0 with fewer than 2 tagged items).
- ``score = length * concentration * consistency`` in [0, 1]: a user weak on any one of the three ranks low.

A user *passes* when ``n_items >= min_items``, ``concentration >= min_concentration`` and ``consistency >=
min_consistency`` (:class:`Thresholds`). Users are ranked passing first, then by score (ties by user id), and
the best ``n_users`` are taken; when fewer pass than asked for, the best-ranked others fill up and the build
report says so.

**Compatibility** of user ``u`` with product ``p`` in [0, 1], from the user's top-3 topics ``T`` with weights
``w_t = m[t] / sum_{T} m`` (summing to 1):

- ``declared = sum_{t in T, t in p.topics} w_t``: the user's topic mass on the topics the product declares;
- ``semantic = sum_{t in T} w_t * sem(t, p)``, ``sem = clip((cos - 0.05) / 0.5, 0, 1)`` where ``cos`` is the
  MiniLM cosine of the topic's text with the product's name, subcategory, description and selling points (the
  same mapping the offline Director's matching uses);
- ``compatibility = 0.6 * declared + 0.4 * semantic`` (rounded to 4 decimals);
- ``matched_topic``: the topic of ``T`` with the largest contribution ``w_t * (0.6 * [t in p.topics] + 0.4 *
  sem(t, p))`` (ties: heavier topic first, then topic id).

Each user's products are ranked by compatibility (ties by product id) and the best ``products_per_user``
become the pairs ``<user_id>__<product_id>``.

**Files** (``StudyPaths``): ``bench_pairs(task)`` (:class:`~nextads_lib.schemas.BenchPair`), ``bench_users(task)``
(the selected users' :class:`~nextads_lib.schemas.UserHistory`, PCI without the host), ``bench_report(task)``
(:class:`~nextads_lib.schemas.BuildReport`) and :func:`user_stats_path` (one :class:`UserStats` row per user,
csv). Tags, the product similarities and the host-video checks are cached (``Cache``, keyed by content and
:data:`CODE_VERSION`), so a rerun embeds nothing and decodes nothing.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from .config import DEFAULT_SEED, StudyPaths, display_path, resolve
from .schemas import BenchPair, BuildReport, HistoryItem, Product, ProductLibrary, Schema, Task, UserHistory
from .seed import rng
from .store import Cache, content_key, read_json, read_jsonl, read_model, validate, write_json, write_jsonl, write_text
from .topics import TOPIC_IDS, topic_name, topic_text

#: bump when the tagging, the criterion or the compatibility changes: part of every cache key here
CODE_VERSION = "bench-1"
#: characters of ``title. text`` that are embedded per item (MiniLM reads 256 tokens at most anyway)
TEXT_CHARS = 300
#: softmax temperature of the per-item topic distribution
TEMPERATURE = 0.05
#: how many top topics describe a user (concentration, compatibility)
TOP_K = 3
#: compatibility weights: the user's mass on declared topics vs the text similarity
W_DECLARED, W_SEMANTIC = 0.6, 0.4
DATASET_OF_TASK: dict[str, str] = {"pcg": "qilin", "pci": "microlens"}
_R = 6  # decimals of stored statistics


class BenchError(ValueError):
    """A benchmark cannot be built (bad task, empty library, no usable user); the message says which."""


class Thresholds(Schema):
    """Selection thresholds (a user passes when all three hold).

    Defaults, read off the embedded sample's distribution: ``min_concentration=0.5`` (the top three topics hold
    at least ~60% of the history's topic mass) rejects the sample's deliberately diffuse users (0.25 to 0.42)
    and keeps users with one to three interests (0.5 to 1.0); ``min_consistency=0.4`` (the two halves share at
    least 40% of their topic mass) rejects histories whose interests change between halves while tolerating the
    sampling noise of a two- or three-topic user over 10 to 20 items; ``min_items=8`` is the least history
    the Director's user modeling is shown. Real MicroLens users average about 7 interactions, so on the real
    release many users miss ``min_items`` and the build report says how many were taken below it."""

    min_items: int = Field(default=8, ge=1, description="tagged history items (PCI: without the host)")
    min_concentration: float = Field(default=0.5, ge=0, le=1)
    min_consistency: float = Field(default=0.4, ge=0, le=1)


class UserStats(Schema):
    """One row of ``<task>_user_stats.csv``: the criterion of one user and what became of them."""

    user_id: str
    n_items: int = Field(description="history items (PCI: without the host)")
    n_tagged: int = Field(description="items with a title or text, the ones the criterion reads")
    length: float
    concentration: float
    consistency: float
    score: float
    top_topics: str = Field(description="top-3 topics with their share of m, e.g. 'coffee:0.61 home:0.20'")
    passes: bool
    rank: int = Field(description="1 = best; 0 = skipped")
    selected: bool
    status: str = Field(description="'selected', 'not selected', or 'skipped: <reason>'")


# --------------------------------------------------------------------------------------- tagging
def item_text(item: HistoryItem) -> str:
    """``title. text`` (empty when the item has neither), cut to :data:`TEXT_CHARS` characters."""
    title, text = item.title.strip(), item.text.strip()
    s = f"{title}. {text}" if title and text else (title or text)
    return " ".join(s.split())[:TEXT_CHARS]


def tag_items(texts: Sequence[str], cache: Cache | None = None) -> np.ndarray:
    """``(len(texts), K)`` topic distributions (rows sum to 1), cached under ``bench_tags`` by the texts."""
    if not texts:
        return np.zeros((0, len(TOPIC_IDS)))
    key = content_key(CODE_VERSION, "tags", TEMPERATURE, list(TOPIC_IDS), list(texts))
    if cache is not None:
        data = cache.get_json("bench_tags", key)
        if isinstance(data, dict) and len(data.get("dists", [])) == len(texts):
            return np.asarray(data["dists"], float)
    from . import embed  # noqa: PLC0415  (the model loads only on a cache miss)

    d = np.round(embed.topic_distribution(list(texts), temperature=TEMPERATURE).astype(float), _R)
    if cache is not None:
        cache.put_json("bench_tags", key, {"model": embed.MODEL_NAME, "dists": d.tolist()})
    return d


def user_criterion(dists: np.ndarray, th: Thresholds) -> dict[str, Any]:
    """The criterion of one user from the ``(n, K)`` distributions of its tagged items, oldest first."""
    n, k = dists.shape[0], len(TOPIC_IDS)
    if n == 0:
        m = np.zeros(k)
        conc = cons = 0.0
    else:
        m = dists.mean(axis=0)
        top3 = float(np.sort(m)[::-1][:TOP_K].sum())
        conc = float(np.clip((top3 - TOP_K / k) / (1 - TOP_K / k), 0, 1))
        if n >= 2:
            h1, h2 = dists[: n // 2].mean(axis=0), dists[n // 2:].mean(axis=0)
            cons = float(np.clip(np.minimum(h1, h2).sum(), 0, 1))
        else:
            cons = 0.0
    length = min(1.0, n / th.min_items)
    score = length * conc * cons
    order = sorted(range(k), key=lambda i: (-round(float(m[i]), _R), TOPIC_IDS[i]))[:TOP_K]
    return {
        "mean": np.round(m, _R), "top": [TOPIC_IDS[i] for i in order], "n_tagged": n,
        "length": round(length, _R), "concentration": round(conc, _R), "consistency": round(cons, _R),
        "score": round(score, _R),
        "passes": bool(n >= th.min_items and conc >= th.min_concentration and cons >= th.min_consistency),
    }


# ----------------------------------------------------------------------------------- compatibility
def product_text(p: Product) -> str:
    return f"{p.name} ({p.subcategory}). {p.description} {' '.join(p.selling_points)}"


def topic_product_similarity(products: Sequence[Product], cache: Cache | None = None) -> np.ndarray:
    """``(K, len(products))`` MiniLM cosine of each taxonomy topic's text with each product's text (cached)."""
    ttexts = [topic_text(t) for t in TOPIC_IDS]
    ptexts = [product_text(p) for p in products]
    key = content_key(CODE_VERSION, "topic_product", ttexts, ptexts)
    if cache is not None:
        data = cache.get_json("bench_products", key)
        if isinstance(data, dict) and np.shape(data.get("cos")) == (len(ttexts), len(ptexts)):
            return np.asarray(data["cos"], float)
    from . import embed  # noqa: PLC0415

    cos = np.round(embed.similarity(ttexts, ptexts).astype(float), _R)
    if cache is not None:
        cache.put_json("bench_products", key, {"model": embed.MODEL_NAME, "cos": cos.tolist()})
    return cos


def semantic_fit(cos: float | np.ndarray) -> Any:
    """``clip((cos - 0.05) / 0.5, 0, 1)``: a MiniLM cosine as a [0, 1] fit (as in the offline Director)."""
    return np.clip((np.asarray(cos, float) - 0.05) / 0.5, 0, 1)


def compatibility(user_mean: np.ndarray, product: Product, cos_col: np.ndarray) -> tuple[float, str]:
    """(compatibility in [0, 1], matched topic) of a user (mean topic distribution ``user_mean``) with
    ``product``; ``cos_col`` is the product's column of :func:`topic_product_similarity`."""
    m = np.asarray(user_mean, float)
    idx = sorted(range(len(TOPIC_IDS)), key=lambda i: (-round(float(m[i]), _R), TOPIC_IDS[i]))[:TOP_K]
    total = float(sum(m[i] for i in idx))
    w = {i: (float(m[i]) / total if total > 0 else 1.0 / len(idx)) for i in idx}
    declared_set = set(product.topics)
    contrib: list[tuple[float, int, str]] = []
    declared = semantic = 0.0
    for rank, i in enumerate(idx):
        t = TOPIC_IDS[i]
        listed = t in declared_set
        sem = float(semantic_fit(cos_col[i]))
        declared += w[i] * listed
        semantic += w[i] * sem
        contrib.append((round(w[i] * (W_DECLARED * listed + W_SEMANTIC * sem), _R), rank, t))
    score = round(float(np.clip(W_DECLARED * declared + W_SEMANTIC * semantic, 0, 1)), 4)
    matched = sorted(contrib, key=lambda c: (-c[0], c[1], c[2]))[0][2]
    return score, matched


def rank_products(user_mean: np.ndarray, products: Sequence[Product], cos: np.ndarray,
                  k: int) -> list[tuple[Product, float, str]]:
    """The ``k`` most compatible products (compatibility desc, ties by product id)."""
    scored = [(p, *compatibility(user_mean, p, cos[:, j])) for j, p in enumerate(products)]
    scored.sort(key=lambda x: (-x[1], x[0].id))
    return scored[:k]


# ------------------------------------------------------------------------------------------ PCI host
def check_video(path: str | Path, cache: Cache | None = None) -> str | None:
    """``None`` when ``path`` is a video that probes and whose first and last frames decode, else the reason.
    Results for existing files are cached by the file's bytes."""
    from .media import MediaError, probe, read_frames  # noqa: PLC0415

    p = resolve(path)
    if not p.is_file():
        return f"host video {display_path(p)} is missing"
    key = content_key(CODE_VERSION, "video_ok", p)
    if cache is not None:
        data = cache.get_json("bench_video", key)
        if isinstance(data, dict) and "error" in data:
            return data["error"]
    err: str | None
    try:
        info = probe(p)
        if info.n_frames < 1 or info.duration_s <= 0:
            raise MediaError(f"{p}: no frames (duration {info.duration_s:.2f})")
        from .media import count_frames  # noqa: PLC0415

        n = count_frames(p)
        read_frames(p, sorted({0, max(0, n - 1)}))
        err = None
    except (MediaError, OSError) as e:
        err = f"host video {display_path(p)} is undecodable: {str(e).replace(str(p), p.name)}"
    if cache is not None:
        cache.put_json("bench_video", key, {"error": err})
    return err


# --------------------------------------------------------------------------------------------- build
def user_stats_path(paths: StudyPaths, task: str) -> Path:
    """The per-user criterion table (csv) beside the benchmark files."""
    return paths.benchmarks / f"{task}_user_stats.csv"


def _portable(item: HistoryItem) -> HistoryItem:
    """The item with its media paths as ``display_path`` strings (project-relative inside the project)."""
    return item.model_copy(update={
        "image_paths": [display_path(resolve(p)) for p in item.image_paths],
        "video_path": display_path(resolve(item.video_path)) if item.video_path else None,
    })


def _missing_media(h: UserHistory) -> list[dict[str, str]]:
    """Item-level records for the media of a selected user's history that is not an existing non-empty file
    (the item stays: its text still counts and the Director skips an unreadable image)."""
    out = []
    for it in h.items:
        refs = [("image_paths", p) for p in it.image_paths] + ([("video_path", it.video_path)] if it.video_path else [])
        for fld, p in refs:
            rp = resolve(p)
            reason = "not found" if not rp.is_file() else ("empty" if rp.stat().st_size == 0 else "")
            if reason:
                out.append({"level": "item", "user": h.user_id, "item": it.item_id, "field": fld,
                            "reason": f"{fld} {display_path(rp)} {reason} (item kept, its text still counts)"})
    return out


def _top_str(mean: np.ndarray, top: list[str]) -> str:
    return " ".join(f"{t}:{float(mean[TOPIC_IDS.index(t)]):.2f}" for t in top)


def build_bench(
    task: Task, users: Iterable[UserHistory], library: ProductLibrary, paths: StudyPaths, *,
    n_users: int = 50, products_per_user: int = 5, seed: int = DEFAULT_SEED,
    thresholds: Thresholds | dict[str, Any] | None = None, source: str = "embedded sample",
    max_candidates: int = 0, loader_report: Any | None = None, progress: bool = False,
) -> BuildReport:
    """Build PCG-Bench (``task="pcg"``, Qilin users) or PCI-Bench (``"pci"``, MicroLens users, the last item is
    the host) and write its four files; returns the :class:`BuildReport`. ``max_candidates`` > 0 reads only the
    first that many users of ``users`` (for the full releases). ``loader_report`` (a
    :class:`nextads_lib.datasets.LoadReport` filled while ``users`` is read) adds what the loader skipped to
    the build report. Same inputs -> the same bytes. ``seed`` draws nothing here (the selection is
    deterministic); it is recorded in the report."""
    if task not in DATASET_OF_TASK:
        raise BenchError(f"task '{task}' is not one of {sorted(DATASET_OF_TASK)}")
    if n_users < 1 or products_per_user < 1:
        raise BenchError(f"n_users ({n_users}) and products_per_user ({products_per_user}) must be >= 1")
    th = thresholds if isinstance(thresholds, Thresholds) else Thresholds(**(thresholds or {}))
    products = sorted(library.products, key=lambda p: p.id)
    if len(products) < products_per_user:
        raise BenchError(f"the library has {len(products)} valid products; {products_per_user} per user asked for")
    cache = Cache(paths.cache)
    cos = topic_product_similarity(products, cache)

    skipped: list[dict[str, str]] = []
    notes: list[str] = []
    rows: dict[str, dict[str, Any]] = {}
    kept: dict[str, tuple[UserHistory, HistoryItem | None]] = {}
    seen: set[str] = set()
    n_read = 0
    it: Iterable[UserHistory] = users
    if progress:
        from tqdm.auto import tqdm  # noqa: PLC0415

        it = tqdm(users, desc=f"{task}: tagging users", unit="user", mininterval=2.0)
    for u in it:
        if max_candidates and n_read >= max_candidates:
            notes.append(f"max_candidates={max_candidates}: only the first {max_candidates} users of the source were read")
            break
        n_read += 1
        if u.user_id in seen:
            skipped.append({"level": "user", "user": u.user_id, "reason": "duplicate user id: only its first history is used"})
            continue
        seen.add(u.user_id)
        items = list(u.items)
        if not items:
            skipped.append({"level": "user", "user": u.user_id, "reason": "empty history"})
            continue
        host = None
        if task == "pci":
            host, items = items[-1], items[:-1]
            if not host.video_path:
                skipped.append({"level": "user", "user": u.user_id, "reason": f"host item {host.item_id}: no video_path"})
                continue
            if not items:
                skipped.append({"level": "user", "user": u.user_id, "reason": f"only the host video {host.item_id}: no history besides it"})
                continue
        texts = [item_text(x) for x in items]
        tagged = [t for t in texts if t]
        if not tagged:
            skipped.append({"level": "user", "user": u.user_id, "reason": f"all {len(items)} history items have no title or text "
                            "(missing from the notes/titles table?)"})
            continue
        crit = user_criterion(tag_items(tagged, cache), th)
        rows[u.user_id] = {"user_id": u.user_id, "n_items": len(items), **crit}
        kept[u.user_id] = (u.model_copy(update={"items": items}), host)

    if loader_report is not None:
        _merge_loader(loader_report, skipped, notes)
    if not rows:
        raise BenchError(f"{task}: no usable user in {source} ({len(skipped)} skipped: "
                         + "; ".join(f"{s.get('user', s.get('item'))}: {s['reason']}" for s in skipped[:5]) + ")")

    ranked = sorted(rows.values(), key=lambda r: (not r["passes"], -r["score"], r["user_id"]))
    status: dict[str, str] = {}
    selected: list[str] = []
    for r in ranked:
        uid = r["user_id"]
        if len(selected) >= n_users:
            status[uid] = "not selected"
            continue
        host = kept[uid][1]
        if host is not None:
            err = check_video(host.video_path or "", cache)
            if err:
                status[uid] = f"skipped: {err}"
                skipped.append({"level": "user", "user": uid, "item": host.item_id, "reason": err})
                continue
        status[uid] = "selected"
        selected.append(uid)
    bad_host = {u for u, s in status.items() if s.startswith("skipped")}
    n_available = len(rows) - len(bad_host)
    n_passing = sum(1 for r in rows.values() if r["passes"] and r["user_id"] not in bad_host)
    unchecked = sum(1 for s in status.values() if s == "not selected")
    if task == "pci" and unchecked:
        notes.append(f"host videos were checked walking down the ranking; the {unchecked} users below the last "
                     "selected one were not checked (counted as available)")

    # pairs and users
    pairs: list[BenchPair] = []
    out_users: list[UserHistory] = []
    for uid in selected:
        r = rows[uid]
        hist, host = kept[uid]
        for rank, (p, score, topic) in enumerate(rank_products(r["mean"], products, cos, products_per_user), 1):
            extra = {}
            if host is not None:
                extra = {"host_item_id": host.item_id, "host_video": display_path(resolve(host.video_path or "")),
                         "host_title": host.title or None}
            pairs.append(BenchPair(pair_id=f"{uid}__{p.id}", task=task, user_id=uid, product_id=p.id,
                                   compatibility=score, matched_topic=topic, rank=rank, **extra))
        out_users.append(hist.model_copy(update={"items": [_portable(x) for x in hist.items]}))
        skipped.extend(_missing_media(hist))

    # report
    if n_passing < n_users:
        short = min(n_users, n_available) - min(n_passing, n_users)
        notes.append(f"only {n_passing} of {n_available} users pass the thresholds (min_items={th.min_items}, "
                     f"min_concentration={th.min_concentration}, min_consistency={th.min_consistency}); "
                     f"{short} best-ranked users below them were taken to reach {len(selected)}")
    if len(selected) < n_users:
        notes.append(f"{n_users} users asked for, only {len(selected)} usable: the benchmark is smaller")
    lengths = [rows[u]["n_items"] for u in rows]
    notes.append(f"history length of the available users (PCI: without the host): mean {np.mean(lengths):.1f}, "
                 f"median {float(np.median(lengths)):.1f}, min {min(lengths)}, max {max(lengths)}")
    if selected:
        cut = rows[selected[-1]]["score"]
        notes.append(f"selection cut: score >= {cut:.4f} (the last selected user's score)")
    notes.append(f"seed {seed}: the selection and pairing draw nothing at random (ties by id)")
    report = BuildReport(
        task=task, source=source, n_users_available=n_available, n_users_passing=n_passing,
        n_users_selected=len(selected),
        thresholds={"min_items": float(th.min_items), "min_concentration": th.min_concentration,
                    "min_consistency": th.min_consistency},
        notes=notes, skipped=skipped,
    )
    stats = []
    for i, r in enumerate(ranked, 1):
        st = status.get(r["user_id"], "not selected")
        stats.append(UserStats(
            user_id=r["user_id"], n_items=r["n_items"], n_tagged=r["n_tagged"], length=r["length"],
            concentration=r["concentration"], consistency=r["consistency"], score=r["score"],
            top_topics=_top_str(r["mean"], r["top"]), passes=r["passes"], rank=i, selected=st == "selected",
            status=st))
    for s in skipped:
        if s.get("level") == "user" and s["user"] not in rows and not s["reason"].startswith("duplicate"):
            stats.append(UserStats(user_id=s["user"], n_items=0, n_tagged=0, length=0, concentration=0,
                                   consistency=0, score=0, top_topics="", passes=False, rank=0, selected=False,
                                   status=f"skipped: {s['reason']}"))
    write_jsonl(paths.bench_pairs(task), pairs)
    write_jsonl(paths.bench_users(task), out_users)
    write_text(user_stats_path(paths, task), _stats_csv(stats))
    write_json(paths.bench_report(task), report)
    return report


#: at most this many item-level records of the loader go into the build report (a count is noted)
MAX_ITEM_RECORDS = 100


def _merge_loader(loader_report: Any, skipped: list[dict[str, str]], notes: list[str]) -> None:
    for n in getattr(loader_report, "notes", []):
        notes.append(f"loader: {n}")
    rows = [dict(s) for s in getattr(loader_report, "skipped", [])]
    users = [s for s in rows if "user" in s and "item" not in s]
    items = [s for s in rows if not ("user" in s and "item" not in s)]
    for s in users:
        skipped.append({"level": "user", **s, "reason": f"loader: {s.get('reason', '')}"})
    for s in items[:MAX_ITEM_RECORDS]:
        skipped.append({"level": "item", **s, "reason": f"loader: {s.get('reason', '')}"})
    if len(items) > MAX_ITEM_RECORDS:
        notes.append(f"loader: {len(items)} item-level records, the first {MAX_ITEM_RECORDS} are listed in skipped")


def _stats_csv(stats: Sequence[UserStats]) -> str:
    buf = io.StringIO()
    cols = list(UserStats.model_fields)
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for s in stats:
        w.writerow({k: (f"{v:.6f}" if isinstance(v, float) else v) for k, v in s.model_dump().items()})
    return buf.getvalue()


# ------------------------------------------------------------------------------------------- reading
def read_pairs(paths: StudyPaths, task: str) -> list[BenchPair]:
    return read_jsonl(paths.bench_pairs(task), BenchPair)


def read_users(paths: StudyPaths, task: str) -> list[UserHistory]:
    return read_jsonl(paths.bench_users(task), UserHistory)


def read_report(paths: StudyPaths, task: str) -> BuildReport:
    return read_model(paths.bench_report(task), BuildReport)


def read_user_stats(paths: StudyPaths, task: str) -> list[UserStats]:
    """The per-user criterion table, validated row by row (an error names the file and row)."""
    p = user_stats_path(paths, task)
    if not p.is_file():
        read_json(p)  # raises the usual "missing" ArtifactError
    out = []
    with p.open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f), 2):
            row = {k: (v == "True") if k in ("passes", "selected") else v for k, v in row.items()}
            out.append(validate(UserStats, row, f"{p} row {i}"))
    return out


def stats_frame(stats: Sequence[UserStats]):
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame([s.model_dump() for s in stats], columns=list(UserStats.model_fields))


# ------------------------------------------------------------------------------------------- looking
def criterion_figure(stats: Sequence[UserStats], thresholds: dict[str, float] | Thresholds | None = None,
                     title: str = ""):
    """Three panels: history length, concentration vs consistency (selected users filled), and the score
    histogram with the selection cut (the lowest selected score)."""
    from matplotlib.figure import Figure  # noqa: PLC0415

    th = thresholds.model_dump() if isinstance(thresholds, Thresholds) else dict(thresholds or Thresholds().model_dump())
    rows = [s for s in stats if s.rank > 0]
    fig = Figure(figsize=(13, 3.6), dpi=100)
    a1, a2, a3 = fig.subplots(1, 3)
    n = [s.n_items for s in rows]
    a1.hist(n, bins=min(30, max(5, len(set(n)))), color="#8da0cb", edgecolor="white")
    a1.axvline(th["min_items"] - 0.5, color="#d62728", ls="--", label=f"min_items = {int(th['min_items'])}")
    a1.set_xlabel("history items (PCI: without the host)")
    a1.set_ylabel("users")
    a1.legend(fontsize=8)
    sel = [s for s in rows if s.selected]
    oth = [s for s in rows if not s.selected]
    a2.scatter([s.concentration for s in oth], [s.consistency for s in oth], s=18, facecolors="none",
               edgecolors="#777777", label=f"not selected ({len(oth)})")
    a2.scatter([s.concentration for s in sel], [s.consistency for s in sel], s=18, color="#1b9e77",
               label=f"selected ({len(sel)})")
    a2.axvline(th["min_concentration"], color="#d62728", ls="--", lw=1)
    a2.axhline(th["min_consistency"], color="#d62728", ls="--", lw=1)
    a2.set_xlim(-0.02, 1.02)
    a2.set_ylim(-0.02, 1.02)
    a2.set_xlabel("concentration (top-3 topic mass, rescaled)")
    a2.set_ylabel("consistency (1 - TV distance of halves)")
    a2.legend(fontsize=8, loc="lower left")
    scores = [s.score for s in rows]
    a3.hist(scores, bins=20, range=(0, 1), color="#8da0cb", edgecolor="white")
    if sel:
        cut = min(s.score for s in sel)
        a3.axvline(cut, color="#1b9e77", lw=2, label=f"cut: score >= {cut:.3f}")
        a3.legend(fontsize=8)
    a3.set_xlabel("score = length x concentration x consistency")
    a3.set_ylabel("users")
    fig.suptitle(title or f"selection criterion over {len(rows)} users", fontsize=10)
    fig.tight_layout()
    return fig


def contact_users(users: Sequence[UserHistory], seed: int = DEFAULT_SEED, task: str = "pcg",
                  k: int = 3) -> list[UserHistory]:
    """``k`` of the selected users, drawn with ``seed`` (the same three on every run)."""
    if len(users) <= k:
        return list(users)
    idx = sorted(rng(seed, "bench", task, "contact_sheet").choice(len(users), size=k, replace=False).tolist())
    return [users[i] for i in idx]


def contact_sheet(users: Sequence[UserHistory], per_user: int = 6, cell: float = 1.9,
                  hosts: dict[str, BenchPair] | None = None):
    """One row per user: thumbnails of the first ``per_user`` history items (the first image or cover of
    each, titled with user id and item title); for PCI the last cell is the host video's middle frame."""
    from .viz import image_grid  # noqa: PLC0415

    blank = np.full((64, 64, 3), 235, np.uint8)
    imgs: list[Any] = []
    titles: list[str] = []
    for u in users:
        host = (hosts or {}).get(u.user_id)
        n = per_user - 1 if host is not None else per_user
        for i in range(n):
            if i < len(u.items):
                it = u.items[i]
                imgs.append(it.image_paths[0] if it.image_paths else blank)
                titles.append(f"{u.user_id} · {it.title or it.item_id}")
            else:
                imgs.append(blank)
                titles.append("")
        if host is not None:
            imgs.append(_host_frame(host.host_video or ""))
            titles.append(f"HOST · {host.host_title or host.host_item_id}")
    what = (f"first {per_user - 1} history items and the HOST video (middle frame) per row" if hosts
            else f"first {per_user} history items per row")
    return image_grid(imgs, titles, ncols=per_user, cell=cell, suptitle=f"{len(users)} selected users: {what}")


def _host_frame(path: str) -> Any:
    from .media import MediaError, count_frames, read_frames  # noqa: PLC0415

    try:
        p = resolve(path)
        return read_frames(p, [count_frames(p) // 2])[0]
    except (MediaError, OSError):
        return np.full((64, 64, 3), 200, np.uint8)


def summary_table(paths: StudyPaths, task: str):
    """Counts that do not vary between runs: users available / passing / selected, pairs, products used,
    users per matched topic (top 5), the mean compatibility and rank-1 compatibility range."""
    import pandas as pd  # noqa: PLC0415

    rep = read_report(paths, task)
    pairs = read_pairs(paths, task)
    topics = Counter(p.matched_topic for p in pairs)
    rows: list[tuple[str, str]] = [
        ("task", task), ("source", rep.source), ("users available", str(rep.n_users_available)),
        ("users passing the thresholds", str(rep.n_users_passing)), ("users selected", str(rep.n_users_selected)),
        ("users skipped", str(sum(1 for s in rep.skipped if s.get("level") == "user"))),
        ("pairs", str(len(pairs))), ("products used", str(len({p.product_id for p in pairs}))),
        ("mean compatibility", f"{np.mean([p.compatibility for p in pairs]):.3f}" if pairs else "-"),
    ]
    for t, c in sorted(topics.items(), key=lambda x: (-x[1], x[0]))[:5]:
        rows.append((f"pairs matched on: {topic_name(t)}", str(c)))
    if task == "pci":
        rows.append(("pairs with a host video", str(sum(1 for p in pairs if p.host_video))))
    return pd.DataFrame(rows, columns=["quantity", "value"]).set_index("quantity")


def pairs_frame(pairs: Sequence[BenchPair], library: ProductLibrary | None = None):
    """The pairs as a table (product names when ``library`` is given)."""
    import pandas as pd  # noqa: PLC0415

    names = {p.id: p.name for p in library.products} if library else {}
    cols = ["pair_id", "user_id", "rank", "product_id", "product", "compatibility", "matched_topic", "host_item_id",
            "host_title"]
    return pd.DataFrame([{**p.model_dump(), "product": names.get(p.product_id, p.product_id)} for p in pairs],
                        columns=cols)


def products_used(pairs: Sequence[BenchPair]) -> dict[str, int]:
    """product id -> number of pairs (descending, ties by id)."""
    c = Counter(p.product_id for p in pairs)
    return dict(sorted(c.items(), key=lambda x: (-x[1], x[0])))


__all__ = [
    "BenchError", "CODE_VERSION", "Thresholds", "UserStats", "build_bench", "check_video", "compatibility",
    "contact_sheet", "contact_users", "criterion_figure", "item_text", "pairs_frame", "product_text",
    "products_used", "rank_products", "read_pairs", "read_report", "read_user_stats", "read_users",
    "semantic_fit", "stats_frame", "summary_table", "tag_items", "topic_product_similarity", "user_criterion",
    "user_stats_path",
]
