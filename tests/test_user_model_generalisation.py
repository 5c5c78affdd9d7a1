"""The offline user model on histories no one here generated: twelve hand-written users in the Qilin and
MicroLens formats (``tests/data/handwritten_histories``), with hand-labelled interests. Recovery is measured
with the same scorer as the study's (``results.recovery_scores``) and must reach the issue's target."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nextads_lib.backends import get_backend
from nextads_lib.director import model_user
from nextads_lib.results import recovery_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from handwritten import HERE, load_handwritten  # noqa: E402

SETS = load_handwritten()


def test_the_set_is_twelve_users_in_both_formats():
    assert (HERE / "qilin_notes.jsonl").is_file() and (HERE / "microlens_pairs.csv").is_file()
    assert sum(len(h) for h, _ in SETS.values()) >= 12
    for hist, truth in SETS.values():
        assert {h.user_id for h in hist} == set(truth)
        assert all(len(h.items) >= 5 for h in hist)


@pytest.mark.parametrize("dataset", ["qilin", "microlens"])
def test_interest_recovery_on_hand_written_histories(dataset):
    hist, truth = SETS[dataset]
    backend = get_backend("offline")
    names = sorted({n for g in truth.values() for n in g.interests})
    rows = []
    for h in hist:
        prof = model_user(h, backend)
        assert prof.backend == "offline" and all(t.label for t in prof.topics)
        ids = {it.item_id for it in h.items}
        assert all(set(t.evidence) <= ids for t in prof.topics)
        rows.append(recovery_scores(prof, truth[h.user_id], interest_names=names))
    recall = float(np.mean([r["interest"] for r in rows]))
    top1 = float(np.mean([r["interest_top1"] for r in rows]))
    print(f"{dataset}: interest recovery {recall:.2f} (top-1 {top1:.2f}) over {len(rows)} users")
    assert recall >= 0.8
    assert top1 >= 0.7
