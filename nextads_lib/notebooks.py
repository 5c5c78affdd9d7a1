"""Committed notebooks and their regression references: cleaning, hygiene checks, nbval comparison.

An executed notebook (papermill's copy under ``<data_dir>/runs/notebooks/``) is *cleaned* before it is
committed: outputs stay, but papermill's metadata and the per-cell timing metadata go, execution counts are
renumbered 1..n, the kernel is ``python3``,
(the injected cell gets the stable id ``injected-parameters``), absolute paths in outputs become project-relative (a path that
stays absolute is an error), tqdm progress bars on stderr are dropped, consecutive chunks of one stream are joined, and every PNG is re-encoded at most
:data:`MAX_PNG_WIDTH` pixels wide with Pillow's optimizer. The papermill ``injected-parameters`` cell is kept:
it documents what the outputs were computed with, and papermill replaces it on the next execution.

The regression check (``make test``): the smoke profile runs with papermill, then for every step a
*comparison notebook* is built from the fresh executed copy (current sources and parameters) with the
outputs of its ``# NBVAL_CHECK_OUTPUT`` cells taken from the committed reference ``tests/nbval/<step>.ipynb``
(matched by cell id), and ``pytest --nbval-lax`` re-executes it: a checked cell that prints something else
than its reference fails with nbval's diff.
"""

from __future__ import annotations

import ast
import base64
import copy
import difflib
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import nbformat
from nbformat import NotebookNode

#: The marker nbval-lax looks for; the cells that carry it are the regression-checked outputs.
CHECK_MARKER = "# NBVAL_CHECK_OUTPUT"
#: Committed PNGs are scaled down to at most this width (pixels) before they are re-encoded.
MAX_PNG_WIDTH = 900
KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
#: Cell metadata that records one execution (papermill's, nbclient's, JupyterLab's ExecuteTime).
VOLATILE_CELL_METADATA = ("papermill", "execution", "ExecuteTime")
VOLATILE_NOTEBOOK_METADATA = ("papermill", "widgets")
#: Roots that only exist on one machine; any of them in a committed notebook is a defect.
ABSOLUTE_PATH = re.compile(
    r"(?<![\w.~:/-])(?:/(?:work|home|root|tmp|Users|private|mnt|opt|srv|scratch|var/folders|var/tmp)/"
    r"|[A-Za-z]:\\\\?(?:Users|work)\\)"
)
_PROGRESS = re.compile(r"\d+%\|.*\||\|\s*\d+/\d+\s*\[[^\]]*\]|it/s\]|s/it\]")
#: The id the cleaner gives papermill's injected-parameters cell, so a refresh does not churn it.
INJECTED_ID = "injected-parameters"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


class NotebookHygieneError(ValueError):
    """A notebook that must not be committed as it is (an absolute path, an error output, ...)."""


# ---------------------------------------------------------------------------------------------- reading


def read(path: str | os.PathLike[str]) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


def write(nb: NotebookNode, path: str | os.PathLike[str]) -> Path:
    """Write atomically (a reader never sees half a notebook)."""
    from .store import atomic_path  # noqa: PLC0415

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        nbformat.write(nb, str(tmp))
        tmp.chmod(0o644)
    return path


def tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def is_checked(cell: NotebookNode) -> bool:
    return cell.cell_type == "code" and CHECK_MARKER in cell.source


def checked_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if is_checked(c)]


def parameters_cells(nb: NotebookNode) -> list[NotebookNode]:
    return [c for c in nb.cells if "parameters" in tags(c)]


def parameter_literals(source: str) -> dict[str, object]:
    """The ``name = literal`` assignments of a parameters cell; anything else raises ``ValueError``."""
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            raise ValueError(f"line {node.lineno}: only 'name = literal' assignments belong in a parameters cell")
        try:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        except ValueError:
            raise ValueError(f"line {node.lineno}: '{node.targets[0].id}' is not a literal") from None
    return values


def notebook_defaults(nb: NotebookNode) -> dict[str, object]:
    cells = parameters_cells(nb)
    if len(cells) != 1:
        raise NotebookHygieneError(f"{len(cells)} cells tagged 'parameters' (want exactly one)")
    return parameter_literals(cells[0].source)


# ---------------------------------------------------------------------------------------------- cleaning


def path_replacements(root: Path, data_dir: Path | None = None) -> list[tuple[str, str]]:
    """(absolute, relative) pairs, longest first: the data dir, the project root, the Python prefix, home."""
    pairs: list[tuple[str, str]] = []

    def add(p: Path, rel: str) -> None:
        for form in {str(p), str(p.resolve())}:
            if len(form) > 1:
                pairs.append((form, rel))

    if data_dir is not None:
        try:
            rel = data_dir.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            rel = "<data_dir>"
        add(data_dir, rel)
    add(root, ".")
    for prefix in {sys.prefix, sys.base_prefix}:
        add(Path(prefix), "<python>")
    add(Path.home(), "~")
    pairs.sort(key=lambda kv: -len(kv[0]))
    return pairs


def relativize(text: str, replacements: list[tuple[str, str]]) -> str:
    for absolute, rel in replacements:
        if absolute not in text:
            continue
        if rel == ".":  # '<root>/x' -> 'x', a bare '<root>' -> '.'
            text = text.replace(absolute + "/", "").replace(absolute, ".")
        else:
            text = text.replace(absolute, rel)
    return text


def _strip_progress(text: str) -> str:
    """Drop tqdm-style progress bars (segments between carriage returns / newlines) from a stderr text."""
    kept = []
    for line in text.split("\n"):
        parts = [p for p in line.split("\r") if p.strip() and not _PROGRESS.search(p)]
        if parts:
            kept.append(parts[-1])
        elif not line.strip() and kept:
            kept.append("")
    out = "\n".join(kept).strip("\n")
    return out + "\n" if out else ""


_ENV_WARNING = re.compile(r"^<python>/\S+:\d+: \w*Warning: .*(?:\n[ \t]+.*)*\n?", re.MULTILINE)


def _strip_env_warnings(text: str) -> str:
    """Drop warnings raised inside installed packages (``<python>/...: XWarning: ...`` and the quoted source
    line under it): they depend on the environment (tqdm without ipywidgets, a library's deprecations)."""
    return _ENV_WARNING.sub("", text)


def recompress_png(b64: str, max_width: int = MAX_PNG_WIDTH) -> tuple[str, tuple[int, int]]:
    """Re-encode a base64 PNG for committing: flattened on white, scaled down to ``max_width`` when wider,
    reduced to a 256-colour palette (median cut, no dithering: plots and rendered frames stay legible at a
    quarter of the bytes) with Pillow's optimizer. Returns the base64 text and the image size; the same
    input gives the same bytes, and
    an image cleaned before is kept as it is."""
    from PIL import Image  # noqa: PLC0415

    with Image.open(io.BytesIO(base64.b64decode(b64))) as src:
        if src.mode == "P" and src.width <= max_width:  # cleaned before: keep its bytes (idempotent)
            return b64, src.size
        im = src.convert("RGBA")
    flat = Image.new("RGB", im.size, "white")
    flat.paste(im, mask=im.getchannel("A"))
    if flat.width > max_width:
        flat = flat.resize((max_width, max(1, round(flat.height * max_width / flat.width))), Image.LANCZOS)
    pal = flat.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    buf = io.BytesIO()
    pal.save(buf, format="PNG", optimize=True)
    return base64.b64encode(buf.getvalue()).decode("ascii"), pal.size


def _map_strings(obj: object, fn) -> object:
    if isinstance(obj, str):
        return fn(obj)
    if isinstance(obj, list):
        return [_map_strings(x, fn) for x in obj]
    if isinstance(obj, dict):
        return type(obj)((k, _map_strings(v, fn)) for k, v in obj.items())
    return obj


def _clean_output(out: NotebookNode, fix) -> NotebookNode | None:
    kind = out.get("output_type")
    if kind == "error":
        raise NotebookHygieneError(f"an error output ({out.get('ename')}: {out.get('evalue')})")
    if kind == "stream":
        text = fix(out.text if isinstance(out.text, str) else "".join(out.text))
        if out.get("name") == "stderr":
            text = _strip_progress(_strip_env_warnings(text))
            if not text:
                return None
        out.text = text
        return out
    if kind in ("display_data", "execute_result"):
        data = out.get("data", {})
        data.pop(WIDGET_MIME, None)
        if not data:
            return None
        if "image/png" in data:
            png, (w, _h) = recompress_png(data["image/png"])
            data["image/png"] = png
            meta = out.setdefault("metadata", {}).get("image/png")
            if isinstance(meta, dict) and "width" in meta:  # a retina figure: shown at half its pixels
                meta["width"] = min(meta["width"], w)
                meta.pop("height", None)
        for mime in list(data):
            if mime.startswith("text/") or mime in ("application/json",):
                data[mime] = _map_strings(data[mime], fix)
        return out
    return out


def clean(nb: NotebookNode, root: Path, data_dir: Path | None = None) -> NotebookNode:
    """The committed form of an executed notebook (see the module docstring); raises
    :class:`NotebookHygieneError` if an absolute path or an error output remains."""
    nb = copy.deepcopy(nb)
    reps = path_replacements(root, data_dir)

    def fix(text: str) -> str:
        return relativize(text, reps)

    for key in VOLATILE_NOTEBOOK_METADATA:
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    nb.metadata["language_info"] = {"name": "python"}
    count = 0
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
        if "injected-parameters" in tags(cell):  # papermill draws a new random id on every execution
            cell.id = INJECTED_ID
        if cell.metadata.get("tags") == []:  # papermill adds an empty list to every cell
            del cell.metadata["tags"]
        if cell.cell_type != "code":
            continue
        executed = cell.get("execution_count") is not None or bool(cell.outputs)
        count += executed
        cell.execution_count = count if executed else None
        outs = []
        for out in cell.outputs:
            out = _clean_output(out, fix)
            if out is None:
                continue
            if out.get("output_type") == "execute_result":
                out.execution_count = cell.execution_count
            prev = outs[-1] if outs else None
            if (prev is not None and out.get("output_type") == "stream" and prev.get("output_type") == "stream"
                    and prev.get("name") == out.get("name")):  # how a print is split in chunks is timing
                prev.text += out.text
                continue
            outs.append(out)
        cell.outputs = outs
    problems = absolute_paths(nb)
    if problems:
        raise NotebookHygieneError("absolute path left after cleaning:\n  " + "\n  ".join(problems[:10]))
    return nb


def clean_file(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None = None,
               root: Path | None = None, data_dir: Path | None = None) -> Path:
    """Clean ``src`` into ``dst`` (default: in place). The error names the file."""
    from .config import project_root  # noqa: PLC0415

    src = Path(src)
    try:
        nb = clean(read(src), root or project_root(), data_dir)
    except NotebookHygieneError as e:
        raise NotebookHygieneError(f"{src}: {e}") from None
    return write(nb, dst or src)


# ---------------------------------------------------------------------------------------------- hygiene


def _strings(nb: NotebookNode) -> Iterator[tuple[str, str]]:
    """(where, text) for every source and every non-image output text of a notebook."""
    for i, cell in enumerate(nb.cells):
        where = f"cell {i} ({cell.get('id', '?')})"
        yield f"{where} source", cell.source
        for out in cell.get("outputs", []):
            if "text" in out:
                yield f"{where} {out.get('name', 'stream')}", "".join(out.text)
            for mime, value in out.get("data", {}).items():
                if not mime.startswith("image/"):
                    yield f"{where} {mime}", value if isinstance(value, str) else str(value)
            if "traceback" in out:
                yield f"{where} traceback", "\n".join(out.traceback)


def absolute_paths(nb: NotebookNode) -> list[str]:
    """Where a machine-specific absolute path occurs (sources and outputs): ``'cell 3 (id) stdout: /home/..'``."""
    found = []
    for where, text in _strings(nb):
        for m in ABSOLUTE_PATH.finditer(text):
            line = text[max(0, m.start() - 30): m.start() + 50].replace("\n", " ")
            found.append(f"{where}: ...{line}...")
    return found


def hygiene_problems(nb: NotebookNode) -> list[str]:
    """Everything that keeps a notebook from being committed: the parameters cell, kernel, paths, timings."""
    problems = []
    try:
        notebook_defaults(nb)
    except (NotebookHygieneError, ValueError, SyntaxError) as e:
        problems.append(f"parameters cell: {e}")
    if nb.metadata.get("kernelspec", {}).get("name") != "python3":
        problems.append(f"kernel is {nb.metadata.get('kernelspec', {}).get('name')!r}, not 'python3'")
    for key in VOLATILE_NOTEBOOK_METADATA:
        if key in nb.metadata:
            problems.append(f"notebook metadata '{key}'")
    for i, cell in enumerate(nb.cells):
        for key in VOLATILE_CELL_METADATA:
            if key in cell.metadata:
                problems.append(f"cell {i} ({cell.get('id', '?')}): metadata '{key}'")
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                problems.append(f"cell {i} ({cell.get('id', '?')}): an error output")
    problems += [f"absolute path in {p}" for p in absolute_paths(nb)]
    return problems


# ---------------------------------------------------------------------------------------------- comparison


def output_text(cell: NotebookNode) -> str:
    """A cell's outputs as a reader sees them in text (streams, text/plain; images named, not inlined)."""
    parts = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type")
        if kind == "stream":
            parts.append(("[stderr] " if out.get("name") == "stderr" else "") + "".join(out.text))
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            if "text/plain" in data:
                parts.append("".join(data["text/plain"]) + "\n")
            elif any(k.startswith("image/") for k in data):
                parts.append(f"<{', '.join(k for k in data if k.startswith('image/'))}>\n")
        elif kind == "error":
            parts.append(f"{out.get('ename')}: {out.get('evalue')}\n")
    return "".join(parts)


def _by_id(nb: NotebookNode) -> dict[str, NotebookNode]:
    return {c.get("id"): c for c in nb.cells if c.get("id")}


class MissingReferenceError(ValueError):
    """A checked cell with no counterpart (same cell id) in the committed reference."""


def comparison_notebook(executed: NotebookNode, reference: NotebookNode) -> NotebookNode:
    """The notebook nbval re-executes: ``executed``'s cells (current sources, injected parameters) with each
    checked cell's outputs replaced by the reference's outputs of the cell with the same id. A checked cell
    missing from the reference raises :class:`MissingReferenceError` (refresh with ``make notebooks``)."""
    nb = copy.deepcopy(executed)
    ref = _by_id(reference)
    missing = []
    for cell in checked_cells(nb):
        match = ref.get(cell.get("id"))
        if match is None or not is_checked(match):
            missing.append(cell.get("id", "?"))
            continue
        cell.outputs = copy.deepcopy(match.outputs)
        # nbval takes a cell with outputs and no count for an unrun cell with stale outputs
        cell.execution_count = cell.get("execution_count") or match.get("execution_count") or 1
    if missing:
        raise MissingReferenceError(f"checked cells with no reference output: {', '.join(missing)}")
    for cell in nb.cells:
        for key in VOLATILE_CELL_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata.pop("papermill", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)
    return nb


def load_sanitizers(cfg: str | os.PathLike[str] | None) -> list[tuple[re.Pattern[str], str]]:
    """The regex -> replacement pairs of an nbval sanitize file, parsed by nbval itself."""
    if cfg is None or not Path(cfg).is_file():
        return []
    from nbval.plugin import get_sanitize_patterns  # noqa: PLC0415

    return [(re.compile(rx), rep) for rx, rep in get_sanitize_patterns(Path(cfg).read_text())]


def sanitize(text: str, sanitizers: Iterable[tuple[re.Pattern[str], str]]) -> str:
    for rx, rep in sanitizers:
        text = rx.sub(rep, text)
    return text


def checked_diffs(old: NotebookNode | None, new: NotebookNode, label: str = "",
                  sanitizers: Iterable[tuple[re.Pattern[str], str]] = ()) -> dict[str, str]:
    """A unified diff per checked cell whose (sanitized) output text differs between ``old`` and ``new``
    (cell id -> diff); a checked cell that is new, or an ``old`` of None, is reported against nothing."""
    sanitizers = list(sanitizers)
    before = _by_id(old) if old is not None else {}
    diffs = {}
    for cell in checked_cells(new):
        cid = cell.get("id", "?")
        a = sanitize(output_text(before[cid]), sanitizers) if cid in before else ""
        b = sanitize(output_text(cell), sanitizers)
        if a != b:
            diff = difflib.unified_diff(a.splitlines(), b.splitlines(), f"{label} {cid} (committed)",
                                        f"{label} {cid} (new)", lineterm="", n=1)
            diffs[cid] = "\n".join(diff)
    return diffs


def injected_parameters(nb: NotebookNode) -> dict[str, object]:
    """The parameters papermill injected (its ``injected-parameters`` cell), {} when there is none."""
    for cell in nb.cells:
        if "injected-parameters" in tags(cell):
            return parameter_literals(cell.source)
    return {}
