"""The study runner: executes the ordered notebooks with papermill for a named profile.

    python -m nextads_lib.study run   --profile embedded --data-dir data      # what `make study` does
    python -m nextads_lib.study run   --profile smoke    --data-dir build/smoke
    python -m nextads_lib.study nbval --profile smoke    --data-dir build/nbval  # what `make test` does
    python -m nextads_lib.study publish    --profile embedded --data-dir data    # `make notebooks`: notebooks/
    python -m nextads_lib.study references --profile smoke --data-dir build/nbval  # `make notebooks`: tests/nbval/
    python -m nextads_lib.study clean notebooks/30_results_table1.ipynb ...      # clean executed notebooks in place
    python -m nextads_lib.study list  --profile smoke

Each step writes its executed copy to ``<data_dir>/runs/notebooks/<step>.ipynb`` and a done-marker keyed by
the notebook's code (its cells' sources, not its outputs), its parameters and the bytes of the ``nextads_lib``
package. Run again after a failure and it resumes: finished steps whose notebook, parameters and library did
not change are skipped (until a step upstream of them runs again), and the steps that do run find their
finished work in the content-addressed cache (whose keys carry each stage's code version, so only what a
change touches is computed again). On failure the runner names the notebook and the cell, and stops.

``publish`` and ``references`` copy finished executions, cleaned (``nextads_lib.notebooks``), into the
committed notebooks and the committed nbval references; ``nbval`` compares a fresh smoke execution's checked
cells with those references.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .config import StudyPaths, display_path, project_root, resolve


@dataclass(frozen=True)
class Step:
    notebook: str  # file name under notebooks/
    params: dict[str, object] = field(default_factory=dict)
    tag: str = ""  # distinguishes several runs of one notebook (e.g. the system)
    needs: tuple[str, ...] = ()  # notebooks whose outputs this one reads
    #: name prefixes of the steps that must finish first (``run`` starts a step once they have, up to ``jobs``
    #: at a time); None: every step before it in the sequence
    after: tuple[str, ...] | None = None


    @property
    def name(self) -> str:
        stem = self.notebook.removesuffix(".ipynb")
        return f"{stem}__{self.tag}" if self.tag else stem


SYSTEMS = ("nextads", "generic", "retrieval")
#: the systems the study also runs under the ``extended`` protocol (:mod:`nextads_lib.protocol`)
EXTENDED_SYSTEMS = ("nextads",)


def _steps(overrides: dict[str, dict[str, object]]) -> list[Step]:
    """The notebook sequence; ``overrides`` maps a notebook stem to the parameters a profile changes."""

    def p(stem: str, **extra: object) -> dict[str, object]:
        return {**overrides.get(stem, {}), **extra}

    steps = [
        Step("00_build_product_library.ipynb", p("00_build_product_library"), after=()),
        Step("01_build_pcg_bench.ipynb", p("01_build_pcg_bench"), after=("00_",)),
        Step("02_build_pci_bench.ipynb", p("02_build_pci_bench"), after=("00_",)),
    ]
    pcg = ("00_build_product_library.ipynb", "01_build_pcg_bench.ipynb")
    pci = ("00_build_product_library.ipynb", "02_build_pci_bench.ipynb")
    # the paper's protocol for the three systems, plus nextads under the extended protocol as an extra row
    for nb, stem, needs, bench in (("10_run_pcg.ipynb", "10_run_pcg", pcg, "01_"),
                                   ("11_run_pci.ipynb", "11_run_pci", pci, "02_")):
        steps += [Step(nb, p(stem, system=s, protocol="paper"), tag=s, needs=needs, after=("00_", bench))
                  for s in SYSTEMS]
        steps += [Step(nb, p(stem, system=s, protocol="extended", **overrides.get(f"{stem}__extended", {})),
                       tag=f"{s}_extended", needs=needs, after=("00_", bench))
                  for s in EXTENDED_SYSTEMS]
    # evaluation and the closed loop read whichever runs exist (a task with no runs is reported and skipped), so
    # they start once every run has finished; the ablations keep their own workspace and need the benchmarks only
    runs_done = ("10_", "11_")
    after = {"12_verify_and_reflect": runs_done, "20_evaluate_judge": runs_done,
             "21_evaluate_video_quality": runs_done, "30_results_table1": (*runs_done, "12_", "20_", "21_"),
             "31_figures_cases": (*runs_done, "20_", "21_"), "41_protocol_ablations": ("00_", "01_", "02_"),
             "40_creative_evolution": (*runs_done, "12_")}
    steps += [Step(f"{stem}.ipynb", p(stem), needs=("10_run_pcg.ipynb", "11_run_pci.ipynb"), after=deps)
              for stem, deps in after.items()]
    return steps


#: ``embedded``: the full study on the offline default (every notebook's own defaults).
#: ``smoke``: a few users and small renders, for quick checks and for nbval in ``make test``.
PROFILES: dict[str, dict[str, dict[str, object]]] = {
    # the full study (both benchmarks, every system, every pair), within the 15-minute budget of `make study` on
    # 2 cores: PCG creatives at 270x480 and 12 fps (the notebook's default is 360x640 at 15 fps; PCI renders at its
    # hosts' size), the extra `extended` rows on the first 5 users (25 pairs; Table 1 gives every row's number of
    # pairs), verification (OCR, C2PA, up to two rounds) on the first 10 pairs of each nextads run, and the
    # ablations on 2 users x 2 products per task, in the kernel's own process (a pool per variant run cost more in
    # worker start-ups than its work; the runner keeps the other core busy)
    "embedded": {"10_run_pcg": {"width": 270, "height": 480, "fps": 12},
                 "10_run_pcg__extended": {"limit_users": 5}, "11_run_pci__extended": {"limit_users": 5},
                 "12_verify_and_reflect": {"limit_pairs": 10},
                 "41_protocol_ablations": {"n_users": 2, "products_per_user": 2, "workers": 1}},
    "smoke": {
        "01_build_pcg_bench": {"n_users": 3, "products_per_user": 2, "sample_users": 8},
        "02_build_pci_bench": {"n_users": 3, "products_per_user": 2, "sample_users": 8},
        "10_run_pcg": {"width": 180, "height": 320, "fps": 8, "duration_s": 10.0, "workers": 2},
        "11_run_pci": {"duration_s": 6.0, "workers": 2},
        "12_verify_and_reflect": {"limit_pairs": 2, "max_rounds": 1, "compliance_splits": "heldout"},
        "20_evaluate_judge": {"n_frames": 4},
        "40_creative_evolution": {"impressions": 3, "limit_users": 2, "loop_users": 1, "loop_impressions": 4},
        "41_protocol_ablations": {"n_users": 1, "products_per_user": 2, "thresholds": "0.35", "n_boot": 200},
    },
}


def steps_for(profile: str) -> list[Step]:
    if profile not in PROFILES:
        raise SystemExit(f"unknown profile '{profile}'; choose one of: {', '.join(PROFILES)}")
    return _steps(PROFILES[profile])


def notebooks_dir() -> Path:
    return project_root() / "notebooks"


#: Modules of the runner itself: they decide what runs and how executions are published, not what a
#: notebook computes (the parameters are in the marker on their own), so editing them re-runs nothing.
RUNNER_MODULES = ("study.py", "notebooks.py")


def library_digest() -> str:
    """SHA-256 over the ``nextads_lib`` package's files (code, prompts, prices, the product library), except
    :data:`RUNNER_MODULES`."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts
                    and p.relative_to(root).as_posix() not in RUNNER_MODULES):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def notebook_code_digest(path: Path) -> str:
    """SHA-256 over a notebook's cell types and sources, without outputs, metadata or the injected parameters
    cell: refreshing the committed outputs (``make notebooks``) does not make a finished step run again."""
    import nbformat  # noqa: PLC0415

    nb = nbformat.read(path, as_version=4)
    cells = [[c.cell_type, c.source] for c in nb.cells
             if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    return hashlib.sha256(json.dumps(cells).encode()).hexdigest()


def _marker_key(step: Step, params: dict[str, object], lib: str) -> str:
    nb = notebook_code_digest(notebooks_dir() / step.notebook)
    blob = json.dumps(params, sort_keys=True, default=str)
    return hashlib.sha256(f"{nb}\0{blob}\0{lib}".encode()).hexdigest()


def _present_steps(profile: str) -> tuple[list[Step], list[str]]:
    """The profile's steps whose notebook (and every notebook it reads from) is in this checkout, and the
    notebooks of the others."""

    def present(nb: str) -> bool:
        return (notebooks_dir() / nb).is_file()

    steps = [s for s in steps_for(profile) if present(s.notebook) and all(present(n) for n in s.needs)]
    return steps, [s.notebook for s in steps_for(profile) if s not in steps]


#: the notebooks that take the scale-out parameters (``executor``, ``ray_address``, ``max_cost_usd``): the runs and
#: the evaluation stages, each of which plans its cost and checks the budget before its first paid call
SCALE_OUT_NOTEBOOKS = ("10_run_pcg.ipynb", "11_run_pci.ipynb", "12_verify_and_reflect.ipynb",
                       "20_evaluate_judge.ipynb", "21_evaluate_video_quality.ipynb")


def _depends(step: Step, steps: list[Step]) -> list[Step]:
    """The steps of ``steps`` that ``step`` waits for: those named by its ``after`` prefixes, or every earlier one."""
    i = steps.index(step)
    if step.after is None:
        return steps[:i]
    return [s for s in steps if s is not step and any(s.name.startswith(a) for a in step.after)]


def run(profile: str, data_dir: str, only: list[str] | None = None, force: bool = False, *,
        executor: str = "local", ray_address: str = "", max_cost_usd: float = 0.0, jobs: int = 2) -> list[Path]:
    """Execute the profile's notebooks; returns the executed copies in sequence order. A step starts once the
    steps it reads from (:attr:`Step.after`) have finished, up to ``jobs`` notebooks at a time (each kernel
    also runs its own worker pool, so two fill a 2-core machine through kernel start-ups and serial phases;
    ``jobs=1`` is the plain sequence). ``executor="ray"`` (with ``ray_address``: empty starts a local Ray,
    ``"auto"`` or ``ray://host:port`` joins a cluster) and ``max_cost_usd`` (a budget per notebook, checked
    against its plan before its first paid call) go to the run and evaluation notebooks (``SCALE_OUT_NOTEBOOKS``). A failure stops new steps, lets running ones finish, and
    names the notebook and the cell."""
    scale = {k: v for k, v in (("executor", executor), ("ray_address", ray_address), ("max_cost_usd", max_cost_usd))
             if v and v != "local"}
    import threading  # noqa: PLC0415
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait  # noqa: PLC0415

    import papermill as pm  # noqa: PLC0415
    from papermill.exceptions import PapermillExecutionError  # noqa: PLC0415

    paths = StudyPaths.from_data_dir(data_dir)
    out_dir = paths.notebook_runs
    out_dir.mkdir(parents=True, exist_ok=True)
    steps, missing = _present_steps(profile)
    if only:
        steps = [s for s in steps if any(s.name.startswith(o) for o in only)]
    if missing:
        print(f"[study] skipped (the notebook, or one whose outputs it reads, is not in this checkout): "
              f"{', '.join(sorted(set(missing)))}", flush=True)
    lib = library_digest()
    deps = {s.name: _depends(s, steps) for s in steps}
    ran: set[str] = set()  # steps executed in this call: what depends on them runs again
    finished: set[str] = set()
    failures: list[str] = []
    lock = threading.Lock()
    t_all = time.time()

    def execute(i: int, step: Step, params: dict[str, object], out: Path, marker: Path, key: str) -> bool:
        print(f"[study] {i}/{len(steps)} {step.name} {json.dumps(step.params, sort_keys=True)}", flush=True)
        marker.unlink(missing_ok=True)
        t0 = time.time()
        try:
            pm.execute_notebook(  # no ``cwd``: papermill would chdir the whole process from each thread
                str(notebooks_dir() / step.notebook), str(out), parameters=params, kernel_name="python3",
                progress_bar=False, log_output=False,
            )
        except PapermillExecutionError as e:
            with lock:
                failures.append(
                    f"[study] FAILED in notebooks/{step.notebook} ({step.name}), cell {e.exec_count}: "
                    f"{e.ename}: {e.evalue}\n[study] the executed copy with the traceback: {display_path(out)}\n"
                    f"[study] fix it and run the same command again: finished work is cached and reused.")
            return False
        marker.write_text(key)
        print(f"[study]    {step.name} finished in {time.time() - t0:.1f} s", flush=True)
        return True

    todo = list(steps)
    running: dict[object, Step] = {}
    old_cwd = os.getcwd()
    os.chdir(project_root())  # kernels start in the project root; once, here, for every thread
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max_workers=max(1, int(jobs))) as pool:
        stack.callback(os.chdir, old_cwd)
        while todo or running:
            for step in [s for s in todo if all(d.name in finished for d in deps[s.name])]:
                if failures or len(running) >= max(1, int(jobs)):
                    break
                todo.remove(step)
                i = steps.index(step) + 1
                params = {"data_dir": data_dir, **step.params,
                          **(scale if step.notebook in SCALE_OUT_NOTEBOOKS else {})}
                out = out_dir / f"{step.name}.ipynb"
                marker = out_dir / f".{step.name}.done"
                key = _marker_key(step, params, lib)
                upstream = any(d.name in ran for d in deps[step.name])
                if not force and not upstream and out.is_file() and marker.is_file() and marker.read_text() == key:
                    print(f"[study] {i}/{len(steps)} {step.name}: done before, skipped", flush=True)
                    finished.add(step.name)
                    continue
                ran.add(step.name)
                running[pool.submit(execute, i, step, params, out, marker, key)] = step
            if failures and not running:
                break
            if not running:
                if not todo or any(all(d.name in finished for d in deps[s.name]) for s in todo):
                    continue  # steps that were done before: look again
                raise SystemExit(f"[study] the steps {[s.name for s in todo]} wait for each other")
            done, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for f in done:
                step = running.pop(f)
                if f.result():
                    finished.add(step.name)
    if failures:
        raise SystemExit("\n".join(failures))
    print(f"[study] profile '{profile}' complete in {time.time() - t_all:.1f} s", flush=True)
    print(f"[study] executed notebooks: {display_path(out_dir)}/", flush=True)
    print(f"[study] results:            {display_path(paths.results)}/", flush=True)
    print(f"[study] figures:            {display_path(paths.figures)}/", flush=True)
    print(f"[study] pipeline runs:      {display_path(paths.runs)}/", flush=True)
    return [out_dir / f"{s.name}.ipynb" for s in steps]


def references_dir() -> Path:
    """The committed nbval references: the smoke profile's executions, cleaned, one per step."""
    return project_root() / "tests" / "nbval"


def sanitize_file() -> Path:
    return project_root() / "tests" / "nbval_sanitize.cfg"


def finished_copies(profile: str, data_dir: str) -> list[tuple[Step, Path]]:
    """Each present step's executed copy, which must be current (its done-marker matches the notebook's code,
    the parameters and the library now); otherwise this stops and says to run the profile first."""
    out_dir = StudyPaths.from_data_dir(data_dir).notebook_runs
    lib = library_digest()
    found, stale = [], []
    for step in _present_steps(profile)[0]:
        out, marker = out_dir / f"{step.name}.ipynb", out_dir / f".{step.name}.done"
        key = _marker_key(step, {"data_dir": data_dir, **step.params}, lib)
        if out.is_file() and marker.is_file() and marker.read_text() == key:
            found.append((step, out))
        else:
            stale.append(step.name)
    if stale:
        raise SystemExit(f"[study] no current execution of {', '.join(stale)} under {display_path(out_dir)}/: "
                         f"run `python -m nextads_lib.study run --profile {profile} --data-dir {data_dir}` first")
    return found


def published_step(notebook: str, steps: list[Step]) -> Step:
    """Of several runs of one notebook (``10_run_pcg`` for three systems), the one committed under
    ``notebooks/``: the run whose parameters differ least from the notebook's own defaults (so
    ``system="nextads"`` for ``10_run_pcg``), the first on a tie."""
    from . import notebooks as nbs  # noqa: PLC0415

    defaults = nbs.notebook_defaults(nbs.read(notebooks_dir() / notebook))
    return min(steps, key=lambda s: sum(defaults.get(k, object()) != v for k, v in s.params.items()))


def publish(profile: str, data_dir: str) -> list[Path]:
    """Write every notebook's finished execution, cleaned, over ``notebooks/<notebook>`` (outputs kept)."""
    from . import notebooks as nbs  # noqa: PLC0415

    by_nb: dict[str, list[tuple[Step, Path]]] = {}
    for step, out in finished_copies(profile, data_dir):
        by_nb.setdefault(step.notebook, []).append((step, out))
    written = []
    for notebook, runs in by_nb.items():
        chosen = published_step(notebook, [s for s, _ in runs])
        src = dict((s.name, o) for s, o in runs)[chosen.name]
        dst = nbs.clean_file(src, notebooks_dir() / notebook, data_dir=resolve(data_dir))
        written.append(dst)
        kb = dst.stat().st_size / 1024
        print(f"[study] notebooks/{notebook} <- {chosen.name} ({profile}), {kb:.0f} KiB", flush=True)
    total = sum(p.stat().st_size for p in notebooks_dir().glob("*.ipynb")) / 2**20
    print(f"[study] notebooks/ holds {total:.1f} MiB of notebooks", flush=True)
    return written


def _committed(path: Path) -> "object | None":
    """The committed (git HEAD) version of a notebook, else the file on disk, else None."""
    from . import notebooks as nbs  # noqa: PLC0415

    root = project_root()
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    try:
        shown = subprocess.run(["git", "show", f"HEAD:{rel}"], cwd=root, capture_output=True, check=False)
    except OSError:
        shown = None
    if shown is not None and shown.returncode == 0:
        import nbformat  # noqa: PLC0415

        return nbformat.reads(shown.stdout.decode("utf-8"), as_version=4)
    return nbs.read(path) if path.is_file() else None


def write_references(profile: str, data_dir: str) -> list[Path]:
    """Write the profile's finished executions, cleaned, as ``tests/nbval/<step>.ipynb``; remove references of
    steps that no longer exist; print each checked cell whose output changed against the committed reference
    (after the sanitize rules, so only what nbval would flag)."""
    from . import notebooks as nbs  # noqa: PLC0415

    ref_dir = references_dir()
    sanitizers = nbs.load_sanitizers(sanitize_file())
    written, changed = [], 0
    for step, out in finished_copies(profile, data_dir):
        dst = ref_dir / f"{step.name}.ipynb"
        try:
            new = nbs.clean(nbs.read(out), project_root(), resolve(data_dir))
        except nbs.NotebookHygieneError as e:
            raise SystemExit(f"[study] {display_path(out)}: {e}") from None
        old = _committed(dst)
        diffs = nbs.checked_diffs(old, new, step.name, sanitizers)
        nbs.write(new, dst)
        written.append(dst)
        n = len(nbs.checked_cells(new))
        if old is None:
            print(f"[study] {display_path(dst)}: new reference, {n} checked cells", flush=True)
            continue
        print(f"[study] {display_path(dst)}: {n} checked cells, {len(diffs) or 'none'} changed", flush=True)
        for diff in diffs.values():
            print(diff, flush=True)
        changed += len(diffs)
    keep = {p.name for p in written}
    for old in sorted(ref_dir.glob("*.ipynb")):
        if old.name not in keep:
            old.unlink()
            print(f"[study] removed {display_path(old)} (no such step in profile '{profile}')", flush=True)
    print(f"[study] {len(written)} references in {display_path(ref_dir)}/, {changed} checked outputs changed; "
          f"review with `git diff --stat -- notebooks tests/nbval` and `nbdiff`", flush=True)
    return written


def compare(profile: str, data_dir: str, only: list[str] | None = None) -> int:
    """nbval-lax over comparison notebooks: each finished smoke execution's cells, with the committed
    reference's outputs on the checked cells; nbval re-executes them and fails a checked cell that prints
    something else. A step with no reference, or a checked cell missing from its reference, fails too."""
    from . import notebooks as nbs  # noqa: PLC0415

    cmp_dir = StudyPaths.from_data_dir(data_dir).runs / "nbval"
    todo, problems = [], []
    for step, out in finished_copies(profile, data_dir):
        if only and not any(step.name.startswith(o) for o in only):
            continue
        ref = references_dir() / f"{step.name}.ipynb"
        if not ref.is_file():
            problems.append(f"{step.name}: no reference {display_path(ref)}")
            continue
        executed, reference = nbs.read(out), nbs.read(ref)
        try:
            nb = nbs.comparison_notebook(executed, reference)
        except nbs.MissingReferenceError as e:
            problems.append(f"{step.name}: {e} (in {display_path(ref)})")
            continue
        if nbs.injected_parameters(executed) != nbs.injected_parameters(reference):
            print(f"[study] note: {step.name} ran with other parameters than its reference "
                  f"({display_path(ref)}); a difference below may come from that", flush=True)
        todo.append(nbs.write(nb, cmp_dir / f"{step.name}.ipynb"))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "verbosity_assertions=2", "--nbval-lax",
           "--nbval-sanitize-with", str(sanitize_file()), "--nbval-cell-timeout", "1200",
           *(display_path(p) for p in todo)]
    print(f"[study] nbval: {len(todo)} notebooks against {display_path(references_dir())}/", flush=True)
    rc = subprocess.call(cmd, cwd=str(project_root())) if todo else 0
    for p in problems:
        print(f"[study] FAILED {p}: run `make notebooks` to write the references", flush=True)
    return rc or (1 if problems else 0)


def nbval(profile: str, data_dir: str) -> int:
    """Execute the profile with papermill (producing the data under ``data_dir``), then :func:`compare`."""
    run(profile, data_dir)
    return compare(profile, data_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m nextads_lib.study", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    for name in ("run", "nbval", "compare", "publish", "references", "list"):
        sp = sub.add_parser(name)
        sp.add_argument("--profile", default="smoke" if name in ("nbval", "compare", "references") else "embedded",
                        choices=sorted(PROFILES))
        sp.add_argument("--data-dir", default="build/nbval" if name in ("nbval", "compare", "references") else "data")
        if name == "compare":
            sp.add_argument("--only", nargs="*", help="compare only the steps whose name starts with these")
        if name == "run":
            sp.add_argument("--only", nargs="*", help="run only the steps whose name starts with these")
            sp.add_argument("--force", action="store_true", help="re-execute finished steps too")
            sp.add_argument("--executor", default="local", choices=("local", "ray"),
                            help="where the run notebooks' users' jobs run (docs/scale_out.md)")
            sp.add_argument("--ray-address", default="", help="empty: a local Ray; 'auto' or ray://host:port: a cluster")
            sp.add_argument("--max-cost-usd", type=float, default=0.0, help="stop a run notebook before it passes this")
            sp.add_argument("--jobs", type=int, default=2, help="notebooks executed at a time (1: one after another)")
    sp = sub.add_parser("clean", help="clean executed notebooks for committing (in place, or into --out)")
    sp.add_argument("notebooks", nargs="+")
    sp.add_argument("--data-dir", default=None, help="the data dir they ran with (shown relative)")
    sp.add_argument("--out", default=None, help="a folder to write the cleaned copies into")
    from .planner import add_plan_arguments, plan_command  # noqa: PLC0415

    add_plan_arguments(sub.add_parser("plan", help="what a run will do and cost, before any paid or GPU call"))
    a = ap.parse_args(argv)
    if a.cmd == "plan":
        return plan_command(a)
    if a.cmd == "list":
        for s in steps_for(a.profile):
            print(f"{s.name:40s} {json.dumps(s.params, sort_keys=True)}")
        return 0
    if a.cmd == "clean":
        from . import notebooks as nbs  # noqa: PLC0415

        for f in a.notebooks:
            dst = Path(a.out) / Path(f).name if a.out else None
            try:
                done = nbs.clean_file(f, dst, data_dir=resolve(a.data_dir) if a.data_dir else None)
            except nbs.NotebookHygieneError as e:
                print(f"[study] {e}", file=sys.stderr)
                return 1
            print(f"[study] cleaned {display_path(done)}")
        return 0
    if a.cmd == "nbval":
        return nbval(a.profile, a.data_dir)
    if a.cmd == "compare":
        return compare(a.profile, a.data_dir, a.only)
    if a.cmd == "publish":
        publish(a.profile, a.data_dir)
        return 0
    if a.cmd == "references":
        write_references(a.profile, a.data_dir)
        return 0
    run(a.profile, a.data_dir, a.only, a.force, executor=a.executor, ray_address=a.ray_address,
        max_cost_usd=a.max_cost_usd, jobs=a.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
