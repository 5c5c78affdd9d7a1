"""The mutation score per module and the surviving mutants, from the runs of ``scripts/mutation_run.py``.

    python scripts/mutation_report.py                # every module that has been run
    python scripts/mutation_report.py store --diff   # one module, with the diff of each survivor

**Score** = (killed + timeout) / (mutants - equivalent - skipped). A mutant no selected test executes ("no
tests") counts as surviving: the tests mapped to the module cannot catch it. A mutant listed in
``tests/mutation_equivalent.txt`` (one line ``<mutant id> <reason>``; ``#`` starts a comment) is equivalent:
it changes no observable behaviour, so it is left out of the score and listed with its reason; an entry whose
mutant no longer exists (the code moved on) is reported as stale. The exit status is 1 when a module scores
below ``--min`` (default 80%).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))
from mutation_run import MODULES, WORK, selected  # noqa: E402

EQUIVALENTS = ROOT / "tests" / "mutation_equivalent.txt"

#: mutmut's exit codes of a mutant run (mutmut.stats.status_by_exit_code), folded to the report's classes
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped", 36: "timeout",
          24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout", 37: "killed", None: "not checked"}


def read_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """mutant id -> reason. A line without a reason is an error (every equivalent says why)."""
    out: dict[str, str] = {}
    if not path.is_file():
        return out
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip() if line.lstrip().startswith("#") else line.strip()
        if not line:
            continue
        mid, _, reason = line.partition(" ")
        if not reason.strip():
            raise SystemExit(f"{path} line {i}: '{mid}' has no reason (format: <mutant id> <one-line reason>)")
        out[mid] = reason.strip()
    return out


def module_results(name: str) -> dict[str, str] | None:
    """mutant id -> status of the module's last run, or None when it has not been run."""
    target = MODULES[name][0]
    meta = WORK / name / "mutants" / (target + ".meta")
    if not meta.is_file():
        return None
    codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
    return {k: STATUS.get(v, "suspicious") for k, v in codes.items() if selected(name, k)}


def score(results: dict[str, str], equivalents: dict[str, str]) -> dict[str, float | int]:
    n = {s: 0 for s in ("killed", "timeout", "survived", "no tests", "skipped", "suspicious", "not checked")}
    eq = 0
    for k, s in results.items():
        if k in equivalents and s != "killed":
            eq += 1
            continue
        n[s] = n.get(s, 0) + 1
    total = len(results)
    denom = total - eq - n["skipped"]
    caught = n["killed"] + n["timeout"]
    return {"total": total, "equivalent": eq, **n, "score": (100.0 * caught / denom) if denom else 0.0}


def diff_of(name: str, mutant: str) -> str:
    """The mutant's diff, as ``mutmut show`` prints it (read in the module's work directory)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant  # noqa: PLC0415

    cwd = os.getcwd()
    try:
        os.chdir(WORK / name)
        return get_diff_for_mutant(mutant, path=MODULES[name][0])
    except Exception as e:  # noqa: BLE001  (a report line, not a crash)
        return f"    (no diff: {e})"
    finally:
        os.chdir(cwd)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help=f"some of: {' '.join(MODULES)} (default: every module run)")
    ap.add_argument("--diff", action="store_true", help="print each surviving mutant's diff")
    ap.add_argument("--min", type=float, default=80.0, help="the least acceptable score, percent")
    a = ap.parse_args(argv)
    eqs = read_equivalents()
    names = a.modules or list(MODULES)
    failed = []
    seen: set[str] = set()
    rows = []
    for name in names:
        res = module_results(name)
        if res is None:
            rows.append((name, None))
            continue
        seen.update(res)
        rows.append((name, score(res, eqs)))
        s = rows[-1][1]
        if s["score"] < a.min:
            failed.append(name)
    print(f"{'module':16s} {'file':42s} {'score':>7s} {'killed':>6s} {'t/o':>4s} {'surv':>5s} {'no-t':>5s} "
          f"{'equiv':>5s} {'total':>5s}")
    for name, s in rows:
        if s is None:
            print(f"{name:16s} {MODULES[name][0]:42s} {'not run':>7s}")
            continue
        print(f"{name:16s} {MODULES[name][0]:42s} {s['score']:6.1f}% {s['killed']:6d} {s['timeout']:4d} "
              f"{s['survived']:5d} {s['no tests']:5d} {s['equivalent']:5d} {s['total']:5d}")
    for name, s in rows:
        if s is None:
            continue
        res = module_results(name) or {}
        surv = sorted(k for k, v in res.items() if v in ("survived", "no tests", "suspicious") and k not in eqs)
        eq = sorted(k for k in res if k in eqs and res[k] != "killed")
        if surv:
            print(f"\n{name}: {len(surv)} surviving mutants")
            for k in surv:
                print(f"  {k} ({res[k]})")
                if a.diff:
                    print("    " + diff_of(name, k).replace("\n", "\n    "))
        if eq:
            print(f"\n{name}: {len(eq)} equivalent mutants ({EQUIVALENTS.relative_to(ROOT)})")
            for k in eq:
                print(f"  {k}: {eqs[k]}")
    prefixes = tuple(f"{MODULES[n][0][:-3].replace('/', '.')}." for n, s in rows if s is not None)
    stale = sorted(k for k in eqs if k.startswith(prefixes) and k not in seen)
    if stale:
        print(f"\nstale entries in {EQUIVALENTS.relative_to(ROOT)} (no such mutant any more): {' '.join(stale)}")
    if failed:
        print(f"\nbelow {a.min:.0f}%: {' '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
