"""Loaders for the real Qilin and MicroLens releases, in their own file formats, streaming.

Both loaders yield one :class:`~nextads_lib.schemas.UserHistory` per user, items oldest first, with file
paths written through :func:`~nextads_lib.config.display_path` (project-relative when inside the project).
They never hold a whole release in memory: only what a user history needs (the clicks / interactions as
small integer arrays, and the titles and texts of the items that were clicked).

Qilin (the Hugging Face release: one folder of parquet shards per config)
-------------------------------------------------------------------------
``<qilin_dir>/notes/train-0000K-of-0000N.parquet``, ``recommendation_train/...``, ``recommendation_test/...``,
``user_feat/...``; images under a separate root (default ``<qilin_dir>/images``) that the notes'
``image_path`` lists are relative to.

**A user's history** is the set of notes the user clicked in the recommendation logs, ``recommendation_train``
and ``recommendation_test`` together: every struct of ``rec_result_details_with_idx`` whose ``click == 1``
(fields are stored as floats and the list is not sorted). The clicks are ordered by ``request_timestamp``, then
``position`` (then file order), and a note clicked twice is kept at its FIRST click. ``recent_clicked_note_idxs``
is not used (it repeats clicks of earlier requests and carries no time). Each history item takes
``note_title`` (title), ``note_content`` (text), the images of ``image_path`` resolved under the image root
(kept even when the file is missing: :func:`missing_media` reports those), ``timestamp`` = the click's
``request_timestamp`` as released (milliseconds). Qilin ships no videos, so ``video_path`` is None.
A clicked note that is absent from ``notes`` is skipped and recorded in the :class:`LoadReport`; a user
left with no items is skipped and recorded.

Pass 1 reads only ``user_idx`` and ``rec_result_details_with_idx`` of the recommendation shards with
``pyarrow.parquet.ParquetFile.iter_batches`` (column projection) and keeps the clicks as numpy arrays;
pass 2 reads ``notes`` the same way and keeps only the clicked notes.

MicroLens (any ``MicroLens-<size>`` prefix, detected)
-----------------------------------------------------
``<prefix>_pairs.tsv`` (no header; ``user_id<TAB>item item item ...`` oldest to newest) or
``<prefix>_pairs.csv`` (one row per interaction, header ``user,item,timestamp`` or ``userID,videoID,timestamp``,
rows in any order: sorted by timestamp per user, ties in file order); whichever is present (the tsv when
both are). ``<prefix>_title_en.csv`` (no header, ``id,title``, split on the first comma only, titles may be
empty), covers ``<prefix>_covers/<id>.jpg``, videos ``<prefix>_videos/<id>.mp4``. A user's history is ALL
interacted items, oldest first, so the last item is the PCI host video. Item and user ids are integers
in the release; a token that is not an integer is a malformed row.

Errors name the file, the row and the column (:class:`DatasetError`).
"""

from __future__ import annotations

import csv
import os
from array import array
import posixpath
import re
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .config import display_path, resolve
from .schemas import HistoryItem, UserHistory

__all__ = [
    "DatasetError", "LoadReport", "iter_qilin_users", "iter_microlens_users", "qilin_shards",
    "find_microlens_files", "MicroLensFiles", "read_microlens_titles", "missing_media",
    "QILIN_CONFIGS", "QILIN_REC_CONFIGS",
]

QILIN_CONFIGS = ("notes", "recommendation_train", "recommendation_test", "user_feat")
QILIN_REC_CONFIGS = ("recommendation_train", "recommendation_test")
_DETAILS = "rec_result_details_with_idx"
_DETAIL_FIELDS = ("note_idx", "position", "click", "request_timestamp")
_NOTE_COLUMNS = ("note_idx", "note_title", "note_content", "note_type", "image_path")
_INT_RE = re.compile(r"^-?\d+$")


class DatasetError(ValueError):
    """A release file is missing, unreadable or malformed; the message names the file, the row and the
    column (when they are known), which are also kept as attributes."""

    def __init__(self, file: str | os.PathLike[str], message: str, row: int | str | None = None,
                 column: str | None = None):
        self.file = str(file)
        self.row = row
        self.column = column
        where = self.file
        if row is not None:
            where += f": row {row}"
        if column is not None:
            where += f", column '{column}'" if row is not None else f": column '{column}'"
        super().__init__(f"{where}: {message}")


@dataclass
class LoadReport:
    """What a loader skipped and why (``skipped`` rows are ``{'user'|'item': id, 'reason': ...}`` as in
    :class:`~nextads_lib.schemas.BuildReport`), plus general notes (which files were read)."""

    skipped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def skip(self, reason: str, *, user: str | None = None, item: str | None = None) -> None:
        row: dict[str, str] = {}
        if user is not None:
            row["user"] = str(user)
        if item is not None:
            row["item"] = str(item)
        row["reason"] = reason
        self.skipped.append(row)


def _under(base: str, rel: str) -> str:
    """``rel`` joined to ``base`` (a :func:`display_path` string computed once per directory: resolving every
    item's path would dominate the load time of a full release); an absolute ``rel`` is displayed as such."""
    if rel.startswith("/"):
        return display_path(rel)
    return posixpath.normpath(posixpath.join(base, rel))


# ================================================================================================ Qilin
def qilin_shards(qilin_dir: str | os.PathLike[str], config: str) -> list[Path]:
    """The parquet shards of one Qilin config folder, in shard order (``train-00000-of-00002`` ...)."""
    d = resolve(qilin_dir) / config
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def _parquet(path: Path):
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        return pq.ParquetFile(str(path))
    except Exception as e:  # ArrowInvalid (truncated footer, not parquet), OSError
        raise DatasetError(path, f"not a readable parquet file ({type(e).__name__}: {str(e)[:200]})") from e


def _require_columns(path: Path, pf: Any, columns: Iterable[str]) -> None:
    names = set(pf.schema_arrow.names)
    for c in columns:
        if c not in names:
            raise DatasetError(path, f"missing column (has: {', '.join(sorted(names))})", column=c)


def _iter_batches(path: Path, pf: Any, columns: list[str], batch_size: int) -> Iterator[tuple[int, Any]]:
    """(first row index, RecordBatch) over the file; a read error names the file and the row range."""
    row0 = 0
    it = pf.iter_batches(batch_size=batch_size, columns=columns)
    while True:
        try:
            batch = next(it)
        except StopIteration:
            return
        except Exception as e:  # a corrupt page / truncated column chunk
            raise DatasetError(path, f"cannot read rows from {row0} on ({type(e).__name__}: {str(e)[:200]})",
                               row=f"{row0}+") from e
        yield row0, batch
        row0 += batch.num_rows


def _numeric(path: Path, arr: Any, column: str) -> np.ndarray:
    """A struct field / column as float64 numpy (nulls -> NaN); a non-numeric type names the column."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    t = arr.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_null(t)):
        try:
            arr = pc.cast(arr, pa.float64())
        except Exception as e:
            raise DatasetError(path, f"expected numbers, found type {t}", column=column) from e
    return np.asarray(pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False), np.float64)


def _read_qilin_clicks(
    files: list[Path], report: LoadReport, user_ids: set[int] | None, batch_size: int,
) -> tuple[np.ndarray, ...]:
    """Every click of the recommendation logs as arrays (user, note, timestamp, position, order)."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    users, notes, tss, poss, order = [], [], [], [], []
    seq = 0
    for path in files:
        pf = _parquet(path)
        _require_columns(path, pf, ("user_idx", _DETAILS))
        dtype = pf.schema_arrow.field(_DETAILS).type
        if not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)) or not pa.types.is_struct(dtype.value_type):
            raise DatasetError(path, f"expected a list of structs, found {dtype}", column=_DETAILS)
        st = dtype.value_type
        for f in _DETAIL_FIELDS:
            if st.get_field_index(f) < 0:
                raise DatasetError(path, f"struct has no field '{f}' (has: {', '.join(x.name for x in st)})",
                                   column=f"{_DETAILS}.{f}")
        for row0, batch in _iter_batches(path, pf, ["user_idx", _DETAILS], batch_size):
            ucol = _numeric(path, batch.column(0), "user_idx")
            det = batch.column(1)
            if det.null_count:
                det = pc.fill_null(det, pa.scalar([], type=det.type))
            flat = pc.list_flatten(det)
            if len(flat) == 0:
                continue
            parent = np.asarray(pc.list_parent_indices(det).to_numpy(zero_copy_only=False), np.int64)
            flat_s = flat if not isinstance(flat, pa.ChunkedArray) else flat.combine_chunks()
            # pc.struct_field (not StructArray.field) so that a null struct gives null fields, not stale values
            click = _numeric(path, pc.struct_field(flat_s, "click"), f"{_DETAILS}.click")
            hit = click == 1
            if not hit.any():
                continue
            note = _numeric(path, pc.struct_field(flat_s, "note_idx"), f"{_DETAILS}.note_idx")[hit]
            ts = _numeric(path, pc.struct_field(flat_s, "request_timestamp"), f"{_DETAILS}.request_timestamp")[hit]
            pos = _numeric(path, pc.struct_field(flat_s, "position"), f"{_DETAILS}.position")[hit]
            par = parent[hit]
            u = ucol[par]
            bad_u = np.isnan(u)
            for r in np.unique(par[bad_u]):
                report.skip(f"{display_path(path)} row {row0 + int(r)}: user_idx is null; its clicks are skipped")
            bad_n = np.isnan(note) & ~bad_u
            for r in par[bad_n]:
                report.skip(f"{display_path(path)} row {row0 + int(r)}: a click with a null note_idx is skipped",
                            user=str(int(u[np.where(par == r)[0][0]])))
            keep = ~bad_u & ~bad_n
            ui = u[keep].astype(np.int64)
            if user_ids is not None:
                sel = np.isin(ui, np.fromiter(user_ids, np.int64))
                keep_idx = np.where(keep)[0][sel]
                ui = ui[sel]
            else:
                keep_idx = np.where(keep)[0]
            users.append(ui)
            notes.append(note[keep_idx].astype(np.int64))
            # a missing timestamp/position sorts last within the user, in file order
            tss.append(np.nan_to_num(ts[keep_idx], nan=np.inf))
            poss.append(np.nan_to_num(pos[keep_idx], nan=np.inf))
            order.append(np.arange(seq, seq + len(keep_idx), dtype=np.int64))
            seq += len(keep_idx)
    if not users:
        z = np.zeros(0, np.int64)
        return z, z, np.zeros(0), np.zeros(0), z
    return (np.concatenate(users), np.concatenate(notes), np.concatenate(tss), np.concatenate(poss),
            np.concatenate(order))


@dataclass(frozen=True)
class _Note:
    title: str
    content: str
    note_type: int | None
    images: tuple[str, ...]


def _text(v: Any) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    return str(v)


def _read_qilin_notes(files: list[Path], wanted: np.ndarray, batch_size: int) -> dict[int, _Note]:
    """The clicked notes only (``note_idx`` in ``wanted``), streamed with column projection."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.compute as pc  # noqa: PLC0415

    out: dict[int, _Note] = {}
    want = pa.array(np.unique(wanted).astype(np.int64))
    for path in files:
        pf = _parquet(path)
        _require_columns(path, pf, ("note_idx",))
        cols = [c for c in _NOTE_COLUMNS if c in pf.schema_arrow.names]
        for row0, batch in _iter_batches(path, pf, cols, batch_size):
            idx = batch.column(cols.index("note_idx"))
            try:
                idx64 = pc.cast(idx, pa.int64())
            except Exception as e:
                raise DatasetError(path, f"note_idx is not an integer ({type(e).__name__})", column="note_idx") from e
            mask = pc.fill_null(pc.is_in(idx64, value_set=want), False)
            if not pc.any(mask).as_py():
                continue
            sub = batch.filter(mask)
            rows = np.where(np.asarray(mask.to_numpy(zero_copy_only=False)))[0]
            ids = pc.cast(sub.column(cols.index("note_idx")), pa.int64()).to_pylist()
            none = [None] * len(ids)
            data = {c: sub.column(i).to_pylist() for i, c in enumerate(cols)}
            titles, contents, types, images = (data.get(c, none) for c in
                                               ("note_title", "note_content", "note_type", "image_path"))
            for k, nid in enumerate(ids):
                if nid in out:
                    continue
                imgs = images[k]
                if imgs is None:
                    imgs = []
                elif isinstance(imgs, str):  # some dumps store one path, or a JSON-ish list, as text
                    imgs = [s for s in re.split(r"[\s,\[\]'\"]+", imgs) if s] if imgs.startswith("[") else [imgs]
                elif not isinstance(imgs, list):
                    raise DatasetError(path, f"expected a list of paths, found {type(imgs).__name__}",
                                       row=row0 + int(rows[k]), column="image_path")
                nt = types[k]
                try:
                    nt_i = None if nt is None or (isinstance(nt, float) and np.isnan(nt)) else int(nt)
                except (TypeError, ValueError) as e:
                    raise DatasetError(path, f"note_type {nt!r} is not an integer", row=row0 + int(rows[k]),
                                       column="note_type") from e
                out[int(nid)] = _Note(title=_text(titles[k]).strip(), content=_text(contents[k]).strip(),
                                      note_type=nt_i, images=tuple(str(p) for p in imgs if p))
    return out


def iter_qilin_users(
    qilin_dir: str | os.PathLike[str],
    image_dir: str | os.PathLike[str] | None = None,
    *,
    report: LoadReport | None = None,
    user_ids: Collection[str | int] | None = None,
    batch_size: int = 4096,
) -> Iterator[UserHistory]:
    """One :class:`UserHistory` (dataset ``qilin``) per user of the recommendation logs, users in
    ascending ``user_idx``; the history definition is in the module docstring.

    ``image_dir`` is the root that ``image_path`` is relative to (default ``<qilin_dir>/images``);
    ``report`` collects skipped items/users; ``user_ids`` restricts the users (less memory)."""
    report = report if report is not None else LoadReport()
    root = resolve(qilin_dir)
    if not root.is_dir():
        raise DatasetError(root, "Qilin directory not found")
    img_root = resolve(image_dir) if image_dir else root / "images"
    rec_files = [p for c in QILIN_REC_CONFIGS for p in qilin_shards(root, c)]
    if not rec_files:
        raise DatasetError(root, "no recommendation shards (expected recommendation_train/*.parquet or "
                                 "recommendation_test/*.parquet)")
    note_files = qilin_shards(root, "notes")
    if not note_files:
        raise DatasetError(root / "notes", "no notes shards (expected notes/train-*.parquet)")
    report.notes.append(f"qilin: {len(rec_files)} recommendation shard(s), {len(note_files)} notes shard(s), "
                        f"images under {display_path(img_root)}")
    wanted_users = {int(u) for u in user_ids} if user_ids is not None else None
    users, notes, ts, pos, order = _read_qilin_clicks(rec_files, report, wanted_users, batch_size)
    if len(users) == 0:
        return
    srt = np.lexsort((order, pos, ts, users))
    users, notes, ts = users[srt], notes[srt], ts[srt]
    meta = _read_qilin_notes(note_files, notes, batch_size)
    img_base = display_path(img_root)
    bounds = np.flatnonzero(np.diff(users)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(users)]):
        uid = str(int(users[lo]))
        seen: set[int] = set()
        items: list[HistoryItem] = []
        for n, t in zip(notes[lo:hi].tolist(), ts[lo:hi].tolist()):
            if n in seen:
                continue
            seen.add(n)
            m = meta.get(n)
            if m is None:
                report.skip("clicked note is missing from the notes table", user=uid, item=str(n))
                continue
            items.append(HistoryItem(
                item_id=str(n), title=m.title, text=m.content,
                image_paths=[_under(img_base, p) for p in m.images],
                video_path=None, timestamp=None if not np.isfinite(t) else float(t),
            ))
        if not items:
            report.skip("no clicked note of this user is in the notes table", user=uid)
            continue
        yield UserHistory(dataset="qilin", user_id=uid, items=items)


# ============================================================================================ MicroLens
@dataclass(frozen=True)
class MicroLensFiles:
    """The files of one MicroLens release directory (``prefix`` e.g. ``MicroLens-100k``)."""

    root: Path
    prefix: str
    pairs: Path
    pairs_format: Literal["tsv", "csv"]
    titles: Path | None
    covers: Path
    videos: Path

    def cover(self, item_id: str) -> Path:
        return self.covers / f"{item_id}.jpg"

    def video(self, item_id: str) -> Path:
        return self.videos / f"{item_id}.mp4"


def find_microlens_files(
    microlens_dir: str | os.PathLike[str], pairs: Literal["tsv", "csv"] | None = None, prefix: str | None = None,
) -> MicroLensFiles:
    """Detect the ``MicroLens-<size>`` prefix and the pairs file (the tsv when both exist, unless
    ``pairs`` names one)."""
    root = resolve(microlens_dir)
    if not root.is_dir():
        raise DatasetError(root, "MicroLens directory not found")
    cands: dict[str, dict[str, Path]] = {}
    for p in sorted(root.iterdir()):
        m = re.match(r"^(MicroLens-[^_/]+)_pairs\.(tsv|csv)$", p.name)
        if m and p.is_file():
            cands.setdefault(m.group(1), {})[m.group(2)] = p
    if prefix is not None:
        cands = {k: v for k, v in cands.items() if k == prefix}
    if not cands:
        raise DatasetError(root, "no MicroLens pairs file (expected MicroLens-<size>_pairs.tsv or _pairs.csv)")
    if len(cands) > 1:
        raise DatasetError(root, f"several MicroLens releases ({', '.join(sorted(cands))}): pass prefix=")
    pre, files = next(iter(cands.items()))
    fmt: Literal["tsv", "csv"]
    if pairs is not None:
        if pairs not in files:
            raise DatasetError(root / f"{pre}_pairs.{pairs}", "file not found")
        fmt = pairs
    else:
        fmt = "tsv" if "tsv" in files else "csv"
    titles = root / f"{pre}_title_en.csv"
    return MicroLensFiles(root=root, prefix=pre, pairs=files[fmt], pairs_format=fmt,
                          titles=titles if titles.is_file() else None,
                          covers=root / f"{pre}_covers", videos=root / f"{pre}_videos")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without newline); a decoding error names the line."""
    try:
        with path.open("r", encoding="utf-8-sig", newline="") as f:
            n = 0
            while True:
                try:
                    line = f.readline()
                except UnicodeDecodeError as e:
                    raise DatasetError(path, f"not UTF-8 ({e.reason})", row=n + 1) from e
                if not line:
                    return
                n += 1
                yield n, line.rstrip("\r\n")
    except OSError as e:
        raise DatasetError(path, f"cannot be read ({e})") from e


def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == '"' and s[-1] == '"':
        return s[1:-1].replace('""', '"')
    return s


def read_microlens_titles(path: Path | None, report: LoadReport | None = None) -> dict[str, str]:
    """``id -> title`` from ``<prefix>_title_en.csv`` (no header; split on the first comma only; a quoted
    title is unquoted; an empty title stays empty). A header-like first line is skipped."""
    out: dict[str, str] = {}
    if path is None:
        return out
    for n, line in _lines(path):
        if not line.strip():
            continue
        iid, sep, title = line.partition(",")
        iid = _unquote(iid)
        if not _INT_RE.match(iid):
            if n == 1 and iid.lower() in {"id", "item", "item_id", "videoid", "video_id"}:
                continue
            raise DatasetError(path, f"item id {iid!r} is not an integer", row=n, column="id")
        if iid in out:
            if report is not None:
                report.skip(f"{path.name} line {n}: duplicate title row; the first is kept", item=iid)
            continue
        out[iid] = _unquote(title) if sep else ""
    return out


def _iter_tsv_pairs(path: Path, report: LoadReport) -> Iterator[tuple[str, list[str], list[float | None]]]:
    for n, line in _lines(path):
        if not line.strip():
            continue
        uid, sep, rest = line.partition("\t")
        uid = uid.strip()
        if not sep:
            raise DatasetError(path, "expected 'user_id<TAB>item item ...' (no tab)", row=n, column="items")
        if not _INT_RE.match(uid):
            raise DatasetError(path, f"user id {uid!r} is not an integer", row=n, column="user_id")
        toks = rest.split()
        for t in toks:
            if not _INT_RE.match(t):
                raise DatasetError(path, f"item {t!r} is not an integer id", row=n, column="items")
        if not toks:
            report.skip(f"{path.name} line {n}: empty item list", user=uid)
            continue
        yield uid, toks, [None] * len(toks)


_CSV_USER = ("user", "userid", "user_id")
_CSV_ITEM = ("item", "videoid", "item_id", "video_id")
_CSV_TIME = ("timestamp", "time", "ts")


def _iter_csv_pairs(path: Path, report: LoadReport) -> Iterator[tuple[str, list[str], list[float | None]]]:
    """Group the interaction rows per user (kept as typed arrays), each user sorted by timestamp, ties in
    file order."""
    # compact typed arrays (8 bytes an interaction), not lists of Python ints: a 1M-user release has millions
    users, items, times = array("q"), array("q"), array("d")
    cols: tuple[int, int, int] | None = None
    try:
        f = path.open("r", encoding="utf-8-sig", newline="")
    except OSError as e:
        raise DatasetError(path, f"cannot be read ({e})") from e
    with f:
        reader = csv.reader(f)
        try:
            for row in reader:
                n = reader.line_num
                if not row or not any(c.strip() for c in row):
                    continue
                if cols is None:
                    head = [c.strip().lower() for c in row]

                    def find(names: tuple[str, ...], what: str) -> int:
                        for nm in names:
                            if nm in head:
                                return head.index(nm)
                        raise DatasetError(path, f"header {row} has no {what} column (expected one of "
                                                 f"{', '.join(names)})", row=n, column=what)

                    cols = (find(_CSV_USER, "user"), find(_CSV_ITEM, "item"), find(_CSV_TIME, "timestamp"))
                    names = (row[cols[0]].strip(), row[cols[1]].strip(), row[cols[2]].strip())
                    continue
                if len(row) <= max(cols):
                    raise DatasetError(path, f"expected {len(head)} fields, found {len(row)}", row=n,
                                       column=names[min(len(row), 2)])
                vals = []
                for c, nm in zip(cols[:2], names[:2]):
                    v = row[c].strip()
                    if not _INT_RE.match(v):
                        raise DatasetError(path, f"{v!r} is not an integer id", row=n, column=nm)
                    vals.append(int(v))
                try:
                    t = float(row[cols[2]])
                except ValueError as e:
                    raise DatasetError(path, f"{row[cols[2]]!r} is not a number", row=n, column=names[2]) from e
                users.append(vals[0])
                items.append(vals[1])
                times.append(t)
        except csv.Error as e:
            raise DatasetError(path, f"malformed CSV ({e})", row=reader.line_num) from e
    if cols is None:
        raise DatasetError(path, "empty file (no header)")
    u = np.frombuffer(users, np.int64) if len(users) else np.zeros(0, np.int64)
    it = np.frombuffer(items, np.int64) if len(items) else np.zeros(0, np.int64)
    tm = np.frombuffer(times, np.float64) if len(times) else np.zeros(0, np.float64)
    srt = np.lexsort((np.arange(len(u)), tm, u))
    u, it, tm = u[srt], it[srt], tm[srt]
    bounds = np.flatnonzero(np.diff(u)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(u)]):
        if hi <= lo:
            continue
        yield str(int(u[lo])), [str(x) for x in it[lo:hi].tolist()], [float(x) for x in tm[lo:hi].tolist()]


def iter_microlens_users(
    microlens_dir: str | os.PathLike[str],
    *,
    pairs: Literal["tsv", "csv"] | None = None,
    prefix: str | None = None,
    report: LoadReport | None = None,
    user_ids: Collection[str | int] | None = None,
) -> Iterator[UserHistory]:
    """One :class:`UserHistory` (dataset ``microlens``) per user: ALL interacted items oldest first (the
    host video of PCI is the last), each with ``video_path`` and ``image_paths=[cover]`` (paths kept even
    when the file is missing: :func:`missing_media`), ``title`` from the titles file (empty when absent).

    Users come in file order for the tsv and in ascending user id for the csv (the sample writes the tsv
    in ascending id, so both give the same sequence). ``pairs`` forces one pairs file."""
    report = report if report is not None else LoadReport()
    files = find_microlens_files(microlens_dir, pairs=pairs, prefix=prefix)
    titles = read_microlens_titles(files.titles, report)
    report.notes.append(f"microlens: {files.prefix}, pairs from {files.pairs.name}"
                        + ("" if files.titles else f"; no {files.prefix}_title_en.csv: titles are empty"))
    wanted = {str(int(u)) for u in user_ids} if user_ids is not None else None
    rows = _iter_tsv_pairs(files.pairs, report) if files.pairs_format == "tsv" else _iter_csv_pairs(files.pairs, report)
    untitled: set[str] = set()
    covers, videos = display_path(files.covers), display_path(files.videos)
    for uid, toks, tss in rows:
        if wanted is not None and uid not in wanted:
            continue
        items = []
        for iid, t in zip(toks, tss):
            if files.titles is not None and iid not in titles and iid not in untitled:
                untitled.add(iid)
                report.skip(f"no row in {files.titles.name}: title left empty", item=iid)
            items.append(HistoryItem(
                item_id=iid, title=titles.get(iid, ""), text="",
                image_paths=[_under(covers, f"{iid}.jpg")], video_path=_under(videos, f"{iid}.mp4"),
                timestamp=t,
            ))
        yield UserHistory(dataset="microlens", user_id=uid, items=items)


# ============================================================================================== media
def missing_media(histories: Iterable[UserHistory]) -> list[dict[str, str]]:
    """Every image / video path of the histories that is not an existing non-empty file:
    ``{'user', 'item', 'field' ('image_paths' | 'video_path'), 'path', 'reason'}`` (each path once per user)."""
    out = []
    for h in histories:
        seen: set[str] = set()
        for it in h.items:
            refs = [("image_paths", p) for p in it.image_paths] + ([("video_path", it.video_path)] if it.video_path else [])
            for fld, p in refs:
                if p in seen:
                    continue
                seen.add(p)
                rp = resolve(p)
                if not rp.is_file():
                    reason = "file not found"
                elif rp.stat().st_size == 0:
                    reason = "file is empty"
                else:
                    continue
                out.append({"user": h.user_id, "item": it.item_id, "field": fld, "path": p, "reason": reason})
    return out
