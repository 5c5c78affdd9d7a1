"""Paths, seeds and study profiles: the one place where a location under ``data/`` is spelled."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
#: The product library that ships with the repository (one folder per product).
DEFAULT_PRODUCTS_DIR = PACKAGE_DIR / "product_library"
DEFAULT_SEED = 20260
AI_LABEL = "AI Created"


def project_root() -> Path:
    """The study's root: ``$NEXTADS_ROOT``, else the nearest ancestor of the working directory that holds
    both ``notebooks/`` and ``pyproject.toml``, else the package's parent (editable install), else cwd.
    Memoised per (``$NEXTADS_ROOT``, working directory): every artifact path goes through it."""
    return _project_root(os.environ.get("NEXTADS_ROOT") or "", os.getcwd())


@functools.lru_cache(maxsize=64)
def _project_root(env: str, cwd_: str) -> Path:
    if env:
        return Path(env).resolve()
    cwd = Path(cwd_).resolve()
    for cand in (cwd, *cwd.parents):
        if (cand / "pyproject.toml").is_file() and (cand / "notebooks").is_dir():
            return cand
    if (PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return PACKAGE_DIR.parent
    return cwd


def resolve(path: str | os.PathLike[str]) -> Path:
    """Resolve a user-given path: absolute stays, relative is taken from the project root, so a notebook
    run from ``notebooks/`` and a script run from the root see the same ``data``."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else (project_root() / p)


def display_path(path: str | os.PathLike[str]) -> str:
    """A path as shown in notebooks and artifacts: relative to the project root when inside it."""
    p = Path(path).resolve()
    try:
        return p.relative_to(project_root()).as_posix()
    except ValueError:
        return p.as_posix()


@dataclass(frozen=True)
class StudyPaths:
    """Every location of the study below one ``data_dir`` (cookiecutter-data-science layout)."""

    root: Path

    @classmethod
    def from_data_dir(cls, data_dir: str | os.PathLike[str] = "data") -> "StudyPaths":
        return cls(resolve(data_dir))

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    def sample_dir(self, dataset: str) -> Path:
        """Where the embedded sample of ``dataset`` (``qilin`` or ``microlens``) is generated."""
        return self.raw / "sample" / dataset

    def ground_truth(self, dataset: str) -> Path:
        """Hidden per-user ground truth of the embedded sample; the pipelines never read it."""
        return self.raw / "sample" / f"{dataset}_ground_truth.jsonl"

    @property
    def interim(self) -> Path:
        return self.root / "interim"

    @property
    def cache(self) -> Path:
        return self.interim / "cache"

    @property
    def products(self) -> Path:
        return self.root / "products"

    @property
    def library_json(self) -> Path:
        return self.products / "library.json"

    @property
    def benchmarks(self) -> Path:
        return self.root / "benchmarks"

    def bench_pairs(self, task: str) -> Path:
        return self.benchmarks / f"{task}_bench.jsonl"

    def bench_users(self, task: str) -> Path:
        return self.benchmarks / f"{task}_users.jsonl"

    def bench_report(self, task: str) -> Path:
        return self.benchmarks / f"{task}_build_report.json"

    @property
    def runs(self) -> Path:
        return self.root / "runs"

    def run_dir(self, task: str, run_name: str) -> Path:
        return self.runs / task / run_name

    @property
    def notebook_runs(self) -> Path:
        """Executed copies of the notebooks written by the study runner."""
        return self.runs / "notebooks"

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def figures(self) -> Path:
        """Figures go to the top-level ``figures/`` for the default data dir, else beside the data."""
        default = resolve("data")
        return resolve("figures") if self.root == default else self.root / "figures"
