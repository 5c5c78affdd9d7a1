"""The unplanned-text finding and the OCR's cost on real creatives of a run (read only): for each pair, the
frames' OCR (one frame per slot, timed, no cache), the Verifier's unplanned-text finding as stored in its
verification.json (before) and as the current code finds it (after), and the decision recomputed with the
stored utility score and the other stored checks.

    python scripts/bench_unplanned.py --run data/runs/pcg/nextads__offline__compositor__paper --pairs 20
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nextads_lib import verifier as V
from nextads_lib.config import DEFAULT_PRODUCTS_DIR, project_root, resolve
from nextads_lib.products import load_library
from nextads_lib.schemas import ComplianceCheck, Grounding, Storyboard, Verification
from nextads_lib.store import read_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="data/runs/pcg/nextads__offline__compositor__paper")
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--root", default="", help="where the run's relative asset paths start (default: the project)")
    ap.add_argument("--show", action="store_true", help="print every unplanned-text finding left")
    args = ap.parse_args()
    run = resolve(args.run)
    root = Path(args.root) if args.root else project_root()
    lib = {p.id: p for p in load_library(DEFAULT_PRODUCTS_DIR).products}
    dirs = sorted(d for d in run.iterdir() if (d / "verify" / "round_0" / "verification.json").is_file())[: args.pairs]
    tot = {"before": {}, "after": {}, "unpl_before": 0, "unpl_after": 0, "ocr_s": [], "asset_s": []}
    for d in dirs:
        ver = read_model(d / "verify" / "round_0" / "verification.json", Verification)
        plan = read_model(d / "plan.json", Storyboard)
        product = lib[d.name.split("__", 1)[1]]
        g = read_model(d / "grounding.json", Grounding) if (d / "grounding.json").is_file() else None
        c0, t0 = time.process_time(), time.perf_counter()
        units, info = V.frame_units(plan, d / "creative.mp4", per_slot=int(ver.thresholds.get("ocr_frames_per_slot", 1)))
        c1, t1 = time.process_time(), time.perf_counter()
        planned = [u.text for u in V.text_units(plan, composition=False)]
        new = V.unplanned_text(planned, units, product)
        if new and g is not None:  # as the Verifier does: the assets' text only when some line is not planned
            new = V.unplanned_text(planned, units, product, asset_texts=V.grounding_texts(g, root=root))
        t2 = time.perf_counter()
        comp: list[ComplianceCheck] = []
        n_old = 0
        for c in ver.compliance:
            if c.check == "rendering":
                keep = [v for v in c.violations if v.rule != "unplanned_text"]
                n_old = len(c.violations) - len(keep)
                c = c.model_copy(update={"violations": keep + new, "passed": not (keep + new)})
            comp.append(c)
        dec, _ = V.decide(comp, ver.utility_score, {**V.THRESHOLDS, **ver.thresholds})
        tot["before"][ver.decision] = tot["before"].get(ver.decision, 0) + 1
        tot["after"][dec] = tot["after"].get(dec, 0) + 1
        tot["unpl_before"] += n_old
        tot["unpl_after"] += len(new)
        tot["ocr_s"].append(t1 - t0)
        tot.setdefault("ocr_cpu", []).append(c1 - c0)
        tot["asset_s"].append(t2 - t1)
        print(f"{d.name:32} {ver.decision:>7} -> {dec:7} unplanned {n_old:2d} -> {len(new):2d}  OCR {c1 - c0:4.2f} CPU s "
              f"{t1 - t0:5.2f} wall s ({info.get('frames', 0)} frames)  assets {t2 - t1:4.2f} s")
        if args.show:
            for v in new:
                print(f"    {v.evidence.text!r}")
    n = len(dirs)
    print(f"{n} pairs: decisions before {json.dumps(tot['before'])} after {json.dumps(tot['after'])}; unplanned-text "
          f"findings {tot['unpl_before']} -> {tot['unpl_after']}; frame OCR {sum(tot['ocr_cpu']) / n:.2f} CPU s per "
          f"creative (max {max(tot['ocr_cpu']):.2f}; wall {sum(tot['ocr_s']) / n:.2f} s under this machine's load), grounding assets' OCR {sum(tot['asset_s']) / n:.2f} s per creative (uncached)")


if __name__ == "__main__":
    main()
