"""The study runner: executes the ordered notebooks with papermill for a named profile.

    python -m nextads_lib.study run   --profile embedded --data-dir data      # what `make study` does
    python -m nextads_lib.study run   --profile smoke    --data-dir build/smoke
    python -m nextads_lib.study nbval --profile smoke    --data-dir build/nbval  # what `make test` does
    python -m nextads_lib.study list  --profile smoke

Each step writes its executed copy to ``<data_dir>/runs/notebooks/<step>.ipynb`` and a done-marker keyed by
the notebook's bytes, its parameters and the bytes of the ``nextads_lib`` package. Run again after a failure
and it resumes: finished steps whose notebook, parameters and library did not change are skipped (until a
step upstream of them runs again), and the steps that do run find their finished work in the
content-addressed cache (whose keys carry each stage's code version, so only what a change touches is
computed again). On failure the runner names the
notebook and the cell, and stops.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import StudyPaths, display_path, project_root


@dataclass(frozen=True)
class Step:
    notebook: str  # file name under notebooks/
    params: dict[str, object] = field(default_factory=dict)
    tag: str = ""  # distinguishes several runs of one notebook (e.g. the system)
    needs: tuple[str, ...] = ()  # notebooks whose outputs this one reads


    @property
    def name(self) -> str:
        stem = self.notebook.removesuffix(".ipynb")
        return f"{stem}__{self.tag}" if self.tag else stem


SYSTEMS = ("nextads", "generic", "retrieval")


def _steps(overrides: dict[str, dict[str, object]]) -> list[Step]:
    """The notebook sequence; ``overrides`` maps a notebook stem to the parameters a profile changes."""

    def p(stem: str, **extra: object) -> dict[str, object]:
        return {**overrides.get(stem, {}), **extra}

    steps = [
        Step("00_build_product_library.ipynb", p("00_build_product_library")),
        Step("01_build_pcg_bench.ipynb", p("01_build_pcg_bench")),
        Step("02_build_pci_bench.ipynb", p("02_build_pci_bench")),
    ]
    pcg = ("00_build_product_library.ipynb", "01_build_pcg_bench.ipynb")
    pci = ("00_build_product_library.ipynb", "02_build_pci_bench.ipynb")
    steps += [Step("10_run_pcg.ipynb", p("10_run_pcg", system=s), tag=s, needs=pcg) for s in SYSTEMS]
    steps += [Step("11_run_pci.ipynb", p("11_run_pci", system=s), tag=s, needs=pci) for s in SYSTEMS]
    # evaluation and the closed loop read whichever runs exist (a task with no runs is reported and skipped)
    steps += [
        Step(f"{stem}.ipynb", p(stem), needs=("10_run_pcg.ipynb", "11_run_pci.ipynb"))
        for stem in (
            "12_verify_and_reflect",
            "20_evaluate_judge",
            "21_evaluate_video_quality",
            "30_results_table1",
            "31_figures_cases",
            "40_creative_evolution",
        )
    ]
    return steps


#: ``embedded``: the full study on the offline default (every notebook's own defaults).
#: ``smoke``: a few users and small renders, for quick checks and for nbval in ``make test``.
PROFILES: dict[str, dict[str, dict[str, object]]] = {
    "embedded": {},
    "smoke": {
        "01_build_pcg_bench": {"n_users": 3, "products_per_user": 2, "sample_users": 8},
        "02_build_pci_bench": {"n_users": 3, "products_per_user": 2, "sample_users": 8},
        "10_run_pcg": {"width": 180, "height": 320, "fps": 8, "duration_s": 10.0, "workers": 2},
        "11_run_pci": {"duration_s": 6.0, "workers": 2},
        "12_verify_and_reflect": {"limit_pairs": 2, "max_rounds": 1},
        "20_evaluate_judge": {"n_frames": 4},
        "40_creative_evolution": {"impressions": 3, "limit_users": 2},
    },
}


def steps_for(profile: str) -> list[Step]:
    if profile not in PROFILES:
        raise SystemExit(f"unknown profile '{profile}'; choose one of: {', '.join(PROFILES)}")
    return _steps(PROFILES[profile])


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


def library_digest() -> str:
    """SHA-256 over the ``nextads_lib`` package's files (code, prompts, prices, the product library)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _marker_key(step: Step, params: dict[str, object], lib: str) -> str:
    nb = (notebooks_dir() / step.notebook).read_bytes()
    blob = json.dumps(params, sort_keys=True, default=str).encode()
    return hashlib.sha256(nb + b"\0" + blob + b"\0" + lib.encode()).hexdigest()


def run(profile: str, data_dir: str, only: list[str] | None = None, force: bool = False) -> list[Path]:
    """Execute the profile's notebooks in order; returns the executed copies."""
    import papermill as pm  # noqa: PLC0415
    from papermill.exceptions import PapermillExecutionError  # noqa: PLC0415

    paths = StudyPaths.from_data_dir(data_dir)
    out_dir = paths.notebook_runs
    out_dir.mkdir(parents=True, exist_ok=True)
    def present(nb: str) -> bool:
        return (notebooks_dir() / nb).is_file()

    steps = [s for s in steps_for(profile) if present(s.notebook) and all(present(n) for n in s.needs)]
    missing = [s.notebook for s in steps_for(profile) if s not in steps]
    if only:
        steps = [s for s in steps if any(s.name.startswith(o) for o in only)]
    if missing:
        print(f"[study] skipped (the notebook, or one whose outputs it reads, is not in this checkout): "
              f"{', '.join(sorted(set(missing)))}", flush=True)
    executed: list[Path] = []
    upstream_ran = False
    lib = library_digest()
    t_all = time.time()
    for i, step in enumerate(steps, 1):
        params = {"data_dir": data_dir, **step.params}
        out = out_dir / f"{step.name}.ipynb"
        marker = out_dir / f".{step.name}.done"
        key = _marker_key(step, params, lib)
        if not force and not upstream_ran and out.is_file() and marker.is_file() and marker.read_text() == key:
            print(f"[study] {i}/{len(steps)} {step.name}: done before, skipped", flush=True)
            executed.append(out)
            continue
        print(f"[study] {i}/{len(steps)} {step.name} {json.dumps(step.params, sort_keys=True)}", flush=True)
        marker.unlink(missing_ok=True)
        t0 = time.time()
        try:
            pm.execute_notebook(
                str(notebooks_dir() / step.notebook), str(out), parameters=params, kernel_name="python3",
                cwd=str(project_root()), progress_bar=False, log_output=False,
            )
        except PapermillExecutionError as e:
            raise SystemExit(
                f"[study] FAILED in notebooks/{step.notebook} ({step.name}), cell {e.exec_count}: "
                f"{e.ename}: {e.evalue}\n[study] the executed copy with the traceback: {display_path(out)}\n"
                f"[study] fix it and run the same command again: finished work is cached and reused."
            ) from None
        marker.write_text(key)
        upstream_ran = True
        executed.append(out)
        print(f"[study]    finished in {time.time() - t0:.1f} s", flush=True)
    print(f"[study] profile '{profile}' complete in {time.time() - t_all:.1f} s", flush=True)
    print(f"[study] executed notebooks: {display_path(out_dir)}/", flush=True)
    print(f"[study] results:            {display_path(paths.results)}/", flush=True)
    print(f"[study] figures:            {display_path(paths.figures)}/", flush=True)
    print(f"[study] pipeline runs:      {display_path(paths.runs)}/", flush=True)
    return executed


def nbval(profile: str, data_dir: str) -> int:
    """Execute the profile with papermill, then let nbval re-run every executed copy: every cell must run
    and the cells marked ``# NBVAL_CHECK_OUTPUT`` must print what they printed the first time."""
    executed = run(profile, data_dir)
    sanitize = project_root() / "tests" / "nbval_sanitize.cfg"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
           "--nbval-sanitize-with", str(sanitize), "--nbval-cell-timeout", "1200", *map(str, executed)]
    print("[study] nbval:", " ".join(cmd[3:6]), f"... {len(executed)} notebooks", flush=True)
    return subprocess.call(cmd, cwd=str(project_root()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextads_lib.study", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "nbval", "list"):
        sp = sub.add_parser(name)
        sp.add_argument("--profile", default="embedded", choices=sorted(PROFILES))
        sp.add_argument("--data-dir", default="data")
        if name == "run":
            sp.add_argument("--only", nargs="*", help="run only the steps whose name starts with these")
            sp.add_argument("--force", action="store_true", help="re-execute finished steps too")
    from .planner import add_plan_arguments, plan_command  # noqa: PLC0415

    add_plan_arguments(sub.add_parser("plan", help="what a run will do and cost, before any paid or GPU call"))
    a = ap.parse_args(argv)
    if a.cmd == "plan":
        return plan_command(a)
    if a.cmd == "list":
        for s in steps_for(a.profile):
            print(f"{s.name:40s} {json.dumps(s.params, sort_keys=True)}")
        return 0
    if a.cmd == "nbval":
        return nbval(a.profile, a.data_dir)
    run(a.profile, a.data_dir, a.only, a.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
