"""Precision and recall of each compliance check on the labelled set, on the build split
(tests/data/compliance/cases.jsonl, cases_v2.jsonl and cases_v3.jsonl: what the checks were written and calibrated
and the learned head fitted on, including the v1, v2 and v3 held-out parts that developers read) and the held-out
split (tests/data/compliance/heldout_v4.jsonl, written without sight of the checks);
``nextads_lib.compliance.bench.split_of`` is the split.

    python scripts/bench_compliance.py --split build  # the table, build split only (no held-out file needed)
    python scripts/bench_compliance.py              # the table, both splits
    python scripts/bench_compliance.py --calibrate  # MiniLM policy thresholds from the build split only
    python scripts/bench_compliance.py --errors     # also list every case a check gets wrong
    python scripts/bench_compliance.py --train-head # fit the learned head on the build split (compliance/head.json)

Each table is printed twice: the checks as shipped (``rules``) and with the learned head's findings added
(``rules+head``: the ``learned_head`` switch of the Verifier).
"""

from __future__ import annotations

import argparse
import json
import time

from nextads_lib.compliance import bench, head
from nextads_lib.compliance import text as T
from nextads_lib.store import write_json


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calibrate", action="store_true", help="write nextads_lib/compliance/calibration.json")
    ap.add_argument("--errors", action="store_true", help="print the misclassified cases")
    ap.add_argument("--split", default="build,heldout", help="comma list of splits to score")
    ap.add_argument("--train-head", action="store_true", help="write nextads_lib/compliance/head.json")
    args = ap.parse_args()
    if args.train_head:
        ctx = bench.load_context()
        fitted = head.train(bench.load_cases(splits=("build",)), ctx["products"], ctx["default"])
        write_json(head.HEAD_PATH, fitted)
        head.load.cache_clear()
        print("learned head (build split):", {k: {"n": v["n"], "positives": v["positives"]}
                                               for k, v in fitted["checks"].items()})
    if args.calibrate:
        cal = bench.calibrate()
        write_json(T.CALIBRATION_PATH, cal)
        T._calibration_file.cache_clear()
        print("calibration (build split):", json.dumps(cal["detail"], indent=1))
    t0 = time.perf_counter()
    rows = bench.evaluate(splits=tuple(s.strip() for s in args.split.split(",")))
    dt = time.perf_counter() - t0
    print(f"{'checks':10} {'split':8} {'check':11} {'n':>4} {'pos':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'precision':>9} "
          f"{'recall':>7}")
    for name, learned in (("rules", False), ("rules+head", True)):
        for s in bench.scores(rows, learned=learned):
            print(f"{name:10} {s['split']:8} {s['check']:11} {s['n']:4d} {s['positives']:4d} {s['tp']:4d} {s['fp']:4d} "
                  f"{s['fn']:4d} {s['precision']:9.3f} {s['recall']:7.3f}")
    print(f"{len(rows)} cases in {dt:.1f} s")
    if args.errors:
        for r in rows:
            if r["label"] != r["flagged"]:
                print(f"  {r['split']:7} {r['id']:15} label={r['label']} flagged={r['flagged']} {r['rules']} "
                      f"{r['text']!r}" + (f" read={r['read']!r}" if r["read"] else ""))


if __name__ == "__main__":
    main()
