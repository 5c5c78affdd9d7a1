"""Reader of the hand-written histories in ``tests/data/handwritten_histories`` (see its README)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nextads_lib.schemas import GroundTruth, HistoryItem, UserHistory

HERE = Path(__file__).resolve().parent / "data" / "handwritten_histories"


def load_handwritten(root: Path = HERE) -> dict[str, tuple[list[UserHistory], dict[str, GroundTruth]]]:
    """``{dataset: (histories, truth by user id)}`` for ``qilin`` and ``microlens``."""
    truth = [GroundTruth.model_validate(json.loads(x)) for x in (root / "truth.jsonl").read_text().splitlines() if x]
    q: dict[str, list[HistoryItem]] = {}
    for line in (root / "qilin_notes.jsonl").read_text().splitlines():
        if line.strip():
            r = json.loads(line)
            q.setdefault(r["user_idx"], []).append(HistoryItem(item_id=str(r["note_idx"]), title=r["note_title"],
                                                               text=r["note_content"]))
    with open(root / "microlens_titles.csv", newline="") as f:
        titles = {r["item"]: r["title"] for r in csv.DictReader(f)}
    m: dict[str, list[HistoryItem]] = {}
    with open(root / "microlens_pairs.csv", newline="") as f:
        for r in sorted(csv.DictReader(f), key=lambda r: (r["user"], float(r["timestamp"]))):
            m.setdefault(r["user"], []).append(HistoryItem(item_id=r["item"], title=titles[r["item"]],
                                                           timestamp=float(r["timestamp"])))
    out = {}
    for ds, users in (("qilin", q), ("microlens", m)):
        hist = [UserHistory(dataset=ds, user_id=u, items=items) for u, items in sorted(users.items())]
        out[ds] = (hist, {g.user_id: g for g in truth if g.dataset == ds})
    return out
