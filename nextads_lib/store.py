"""Artifact store: atomic writes, validated JSON, and a content-addressed cache.

Every stage writes through here, so a crash never leaves a half-written file behind and a rerun finds
finished work by key. A key is the sha256 of a canonical JSON of everything that produced the artifact
(inputs, backend, its settings, and the stage's code version): change one of them and only what depends
on it is redone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ArtifactError(RuntimeError):
    """A stored artifact is missing or does not validate; the message names the file and the field."""


# ----------------------------------------------------------------------------------------- atomic writes
@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically, on error it is
    removed and ``path`` is left untouched. For writers that need a file name (video encoders, PIL)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return obj.as_posix()
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return obj.item()
    return obj


def dumps(obj: Any, indent: int | None = 2) -> str:
    """Canonical JSON: sorted keys, so the same content gives the same bytes."""
    return json.dumps(to_jsonable(obj), indent=indent, sort_keys=True, ensure_ascii=False)


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    return write_text(path, dumps(obj) + "\n")


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[Any]) -> Path:
    return write_text(path, "".join(dumps(r, indent=None) + "\n" for r in rows))


def write_parquet(path: str | os.PathLike[str], df: Any) -> Path:
    """A pandas frame as parquet, atomically (no index)."""
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def replace_rows(path: str | os.PathLike[str], df: Any, stale: Callable[[Any], Any]) -> Any:
    """Write ``df`` into the parquet table at ``path`` in place of the existing rows that ``stale(old)``
    marks (a boolean mask), keeping every other row; returns the whole table. For results files that gather
    several runs, where rerunning one run must not drop the others."""
    import pandas as pd  # noqa: PLC0415

    path = Path(path)
    if path.is_file():
        old = pd.read_parquet(path)
        old = old[~stale(old)]
        if len(old):
            df = pd.concat([old, df], ignore_index=True)
    write_parquet(path, df)
    return df


def read_json(path: str | os.PathLike[str]) -> Any:
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ArtifactError(f"{path}: missing (was the stage that writes it run?)") from e
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{path}: not valid JSON at line {e.lineno} column {e.colno}: {e.msg}") from e


def _validation_message(where: str, err: ValidationError) -> str:
    parts = []
    for e in err.errors()[:8]:
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        parts.append(f"field '{loc}': {e['msg']}")
    return f"{where}: " + "; ".join(parts)


def validate(model: type[M], data: Any, where: str) -> M:
    """Validate ``data`` as ``model``; an error names ``where`` (a file, a line, an item) and each field."""
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ArtifactError(_validation_message(where, e)) from e


def read_model(path: str | os.PathLike[str], model: type[M]) -> M:
    return validate(model, read_json(path), str(path))


def read_jsonl(path: str | os.PathLike[str], model: type[M]) -> list[M]:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: missing (was the stage that writes it run?)")
    out = []
    with path.open(encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as e:
                raise ArtifactError(f"{path} line {i}: not valid JSON: {e.msg}") from e
            out.append(validate(model, data, f"{path} line {i}"))
    return out


# ------------------------------------------------------------------------------------------ cache keys
_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes, memoised by (path, size, mtime)."""
    p = Path(path)
    st = p.stat()
    memo = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        _DIGESTS[memo] = h.hexdigest()
    return _DIGESTS[memo]


def content_key(*parts: Any) -> str:
    """sha256 over the canonical JSON of ``parts``. Paths are keyed by their bytes, not their names, so a
    moved data dir keeps its cache and an edited file invalidates it."""

    def norm(x: Any) -> Any:
        if isinstance(x, Path):
            return {"file_sha256": file_digest(x)} if x.is_file() else {"path": x.as_posix()}
        if isinstance(x, BaseModel):
            return x.model_dump(mode="json")
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        if isinstance(x, (bytes, bytearray)):
            return {"bytes_sha256": hashlib.sha256(x).hexdigest()}
        return to_jsonable(x)

    blob = json.dumps(norm(list(parts)), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


# ---------------------------------------------------------------------------------------------- cache
class Cache:
    """A content-addressed store under ``root``: ``<root>/<namespace>/<key[:2]>/<key><suffix>``.

    ``get_or_create_model`` and ``get_or_create_file`` run the producer only when the key is absent and
    write its result atomically, so an interrupted run leaves either nothing or a whole entry.
    """

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    def path(self, namespace: str, key: str, suffix: str = ".json") -> Path:
        return self.root / namespace / key[:2] / f"{key}{suffix}"

    def has(self, namespace: str, key: str, suffix: str = ".json") -> bool:
        return self.path(namespace, key, suffix).is_file()

    def get_json(self, namespace: str, key: str) -> Any | None:
        p = self.path(namespace, key)
        if not p.is_file():
            return None
        try:
            return json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError:  # a foreign or damaged entry: treat as a miss, it will be rewritten
            return None

    def put_json(self, namespace: str, key: str, obj: Any) -> Path:
        return write_json(self.path(namespace, key), obj)

    def get_or_create_model(self, namespace: str, key: str, model: type[M], create: Callable[[], M]) -> M:
        data = self.get_json(namespace, key)
        if data is not None:
            try:
                return model.model_validate(data)
            except ValidationError:
                pass  # schema moved on: recompute
        obj = create()
        self.put_json(namespace, key, obj)
        return obj

    def get_or_create_file(
        self, namespace: str, key: str, suffix: str, create: Callable[[Path], None]
    ) -> Path:
        """``create(tmp_path)`` writes the file; it becomes the cache entry only if it returns normally."""
        p = self.path(namespace, key, suffix)
        if p.is_file():
            return p
        with atomic_path(p) as tmp:
            create(tmp)
        return p
