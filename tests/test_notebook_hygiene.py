"""Committed notebooks and nbval references: hygiene, the cleaner, and that the regression check can fail."""

from __future__ import annotations

import ast
import base64
import io
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from PIL import Image

from nextads_lib import notebooks as nbs
from nextads_lib import study

ROOT = Path(__file__).resolve().parent.parent
COMMITTED = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "tests" / "nbval").glob("*.ipynb"))
FORBIDDEN = ("/work/", "/home/", "/root/", "/tmp/", "/Users/")
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


def _texts(nb):
    """Every source and every non-image output text, independent of the code under test."""
    for cell in nb.cells:
        yield cell.source
        for out in cell.get("outputs", []):
            if "text" in out:
                yield "".join(out["text"])
            for mime, value in out.get("data", {}).items():
                if not mime.startswith("image/"):
                    yield value if isinstance(value, str) else str(value)
            yield "\n".join(out.get("traceback", []))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_committed_notebook_is_clean(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1, "exactly one cell tagged 'parameters'"
    for stmt in ast.parse(params[0].source).body:  # literals only
        assert isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name), ast.dump(stmt)
        ast.literal_eval(stmt.value)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "papermill" not in nb.metadata
    for cell in nb.cells:
        assert not {"papermill", "execution", "ExecuteTime"} & set(cell.metadata), cell.get("id")
        assert all(o.get("output_type") != "error" for o in cell.get("outputs", [])), cell.get("id")
    for text in _texts(nb):
        for bad in FORBIDDEN:
            assert bad not in text, f"{bad!r} in {path.name}: ...{text[max(0, text.find(bad) - 40):][:120]}..."
    assert nbs.hygiene_problems(nb) == []


def test_committed_notebooks_stay_small() -> None:
    total = sum(p.stat().st_size for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert total < 10 * 2**20, f"notebooks/ holds {total / 2**20:.1f} MiB (keep under 10 MiB)"


def test_every_reference_is_a_smoke_step_with_checked_outputs() -> None:
    names = {s.name for s in study.steps_for("smoke")}
    for path in sorted((ROOT / "tests" / "nbval").glob("*.ipynb")):
        assert path.stem in names, f"{path.name} is no step of the smoke profile"
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and "# NBVAL_CHECK_OUTPUT" in cell.source:
                assert cell.outputs, f"{path.name}: checked cell {cell.id} has no reference output"
        injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1 and 'data_dir = "build/nbval"' in injected[0].source


# ------------------------------------------------------------------------------------------ the cleaner


def _png(width: int, height: int) -> str:
    im = Image.new("RGBA", (width, height), (255, 255, 255, 255))
    for x in range(0, width, 7):  # some content, so the encoder has work to do
        for y in range(0, height, 5):
            im.putpixel((x, y), (x % 256, y % 256, 90, 255))
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def _executed(root: Path) -> nbformat.NotebookNode:
    """A notebook as papermill leaves it: metadata, timings, counts 5 and 9, a path, a progress bar, a figure."""
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                                "language_info": {"name": "python", "version": "3.11.7"},
                                "papermill": {"duration": 3.2, "input_path": f"{root}/notebooks/x.ipynb"}})
    params = new_code_cell('data_dir = "data"', metadata={"tags": ["parameters"]})
    injected = new_code_cell('# Parameters\ndata_dir = "build/nbval"\n', metadata={"tags": ["injected-parameters"]})
    work = new_code_cell("run()", execution_count=5, metadata={
        "papermill": {"duration": 1.5, "status": "completed"},
        "execution": {"iopub.execute_input": "2026-11-30T06:00:00Z"}})
    work.outputs = [
        new_output("stream", name="stdout", text=f"wrote {root}/build/nbval/results/t.csv\nroot {root}\n"),
        new_output("stream", name="stderr", text="\r  0%|          | 0/6 [00:00<?, ?it/s]\r100%|##########| 6/6 [00:01<00:00,  5.1it/s]\n"),
    ]
    fig = new_code_cell("# NBVAL_CHECK_OUTPUT\nfig", execution_count=9)
    fig.outputs = [new_output("display_data", data={"image/png": _png(2000, 400), "text/plain": "<Figure>"})]
    nb.cells = [new_markdown_cell("# x"), params, injected, work, fig]
    return nb


def test_clean_keeps_outputs_and_drops_what_varies(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    out = nbs.clean(_executed(root), root, root / "build" / "nbval")
    assert "papermill" not in out.metadata and out.metadata["language_info"] == {"name": "python"}
    assert out.metadata["kernelspec"]["name"] == "python3"
    code = [c for c in out.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == [None, None, 1, 2]
    assert all(not ({"papermill", "execution"} & set(c.metadata)) for c in out.cells)
    work, fig = code[2], code[3]
    assert [o.name for o in work.outputs] == ["stdout"]  # the progress bar is gone
    assert work.outputs[0].text == "wrote build/nbval/results/t.csv\nroot .\n"
    png = Image.open(io.BytesIO(base64.b64decode(fig.outputs[0].data["image/png"])))
    assert png.size == (900, 180) and png.format == "PNG"
    assert out.cells[2].source == '# Parameters\ndata_dir = "build/nbval"\n'  # the injected cell is kept
    assert nbs.hygiene_problems(out) == []
    again = nbs.clean(out, root, root / "build" / "nbval")
    assert nbformat.writes(again) == nbformat.writes(out)  # cleaning is idempotent


def test_clean_refuses_a_path_outside_the_project(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    nb = _executed(root)
    nb.cells[3].outputs.append(new_output("stream", name="stdout", text="cache in /home/someone/.cache/x\n"))
    with pytest.raises(nbs.NotebookHygieneError, match="/home/someone"):
        nbs.clean(nb, root)
    src = tmp_path / "bad.ipynb"
    nbformat.write(nb, src)
    res = subprocess.run([sys.executable, "-m", "nextads_lib.study", "clean", str(src)], cwd=ROOT,
                         capture_output=True, text=True)
    assert res.returncode == 1 and "bad.ipynb" in res.stderr and "/home/someone" in res.stderr


def test_marker_ignores_outputs_but_not_code(tmp_path: Path) -> None:
    nb = _executed(tmp_path)
    a = tmp_path / "a.ipynb"
    nbformat.write(nb, a)
    before = study.notebook_code_digest(a)
    nb.cells[3].outputs = []
    nb.cells[2].source = 'data_dir = "data"'  # the injected parameters are part of the marker's params instead
    nbformat.write(nb, a)
    assert study.notebook_code_digest(a) == before
    nb.cells[3].source = "run(2)"
    nbformat.write(nb, a)
    assert study.notebook_code_digest(a) != before


def test_the_committed_run_of_10_run_pcg_is_nextads() -> None:
    steps = [s for s in study.steps_for("embedded") if s.notebook == "10_run_pcg.ipynb"]
    assert len(steps) == 4  # three systems under the paper protocol, nextads under the extended one
    chosen = study.published_step("10_run_pcg.ipynb", steps).params
    assert chosen["system"] == "nextads" and chosen.get("protocol", "paper") == "paper"


# ------------------------------------------------------------------------------------ the regression check


def _tiny(checked_output: str | None) -> nbformat.NotebookNode:
    """A three-cell notebook; ``checked_output`` is the reference output of its checked cell."""
    nb = new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    checked = new_code_cell('# NBVAL_CHECK_OUTPUT\nprint(f"answer {x * 14}, took 0.31 s")')
    free = new_code_cell('print("unchecked", x + 1)')
    if checked_output is not None:
        checked.outputs = [new_output("stream", name="stdout", text=checked_output)]
        free.outputs = [new_output("stream", name="stdout", text="not compared\n")]
    nb.cells = [new_code_cell("x = 2", metadata={"tags": ["parameters"]}),
                new_code_cell("# Parameters\nx = 3\n", metadata={"tags": ["injected-parameters"]}),
                checked, free]
    for i, cell in enumerate(nb.cells):  # stable ids, as the committed notebooks have
        cell.id = f"tiny-{i}"
    return nb


def _nbval(nb: nbformat.NotebookNode, where: Path) -> subprocess.CompletedProcess[str]:
    path = where / "cmp.ipynb"
    nbformat.write(nb, path)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                           "--nbval-sanitize-with", str(SANITIZE), "--rootdir", str(where), str(path)],
                          cwd=where, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_nbval_compares_checked_cells_with_the_reference(tmp_path: Path) -> None:
    executed = _tiny(None)  # current sources, as the smoke run executed them (x = 3 injected)
    good = nbs.comparison_notebook(executed, _tiny("answer 42, took 1.8 s\n"))
    res = _nbval(good, tmp_path)
    assert res.returncode == 0, res.stdout[-3000:]
    edited = nbs.comparison_notebook(executed, _tiny("answer 41, took 1.8 s\n"))  # one checked output edited
    res = _nbval(edited, tmp_path)
    assert res.returncode != 0
    assert "cmp.ipynb::Cell 2" in res.stdout  # the checked cell, by its index
    assert "answer 41" in res.stdout and "answer 42" in res.stdout  # the diff shows both


def test_a_checked_cell_without_reference_is_reported() -> None:
    reference = _tiny("answer 42\n")
    reference.cells[2].id = "other-id"
    with pytest.raises(nbs.MissingReferenceError, match="tiny-2"):
        nbs.comparison_notebook(_tiny(None), reference)


def test_checked_diffs_names_the_changed_cell() -> None:
    old, new = _tiny("answer 42\n"), _tiny("answer 41\n")
    new.cells[3].outputs[0].text = "moved too, but unchecked\n"
    diffs = nbs.checked_diffs(old, new, "tiny")
    assert list(diffs) == ["tiny-2"]
    assert "-answer 42" in diffs["tiny-2"] and "+answer 41" in diffs["tiny-2"]
    assert nbs.checked_diffs(old, old, "tiny") == {}


@pytest.mark.slow
def test_references_then_compare_then_publish(monkeypatch, tmp_path: Path, capfd) -> None:
    """The whole flow on a two-step study in a scratch project: run, write references, compare (passes), edit
    one checked reference output (fails at that cell), refresh (passes again), publish into notebooks/."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "tests" / "nbval_sanitize.cfg").write_text(SANITIZE.read_text())
    monkeypatch.setenv("NEXTADS_ROOT", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    nb = _tiny(None)
    nb.cells[0].source = 'x = 2\ndata_dir = "data"'
    nb.cells = [nb.cells[0], nb.cells[2], nb.cells[3]]  # no injected cell: papermill adds it
    nb.cells.insert(1, new_code_cell('from pathlib import Path\nprint(f"wrote {Path(data_dir).resolve()}/t.csv")'))
    nb.cells[1].id = "tiny-path"
    nbformat.write(nb, tmp_path / "notebooks" / "50_tiny.ipynb")
    monkeypatch.setattr(study, "steps_for", lambda profile: [
        study.Step("50_tiny.ipynb", {"x": 3}, tag="a"), study.Step("50_tiny.ipynb", {"x": 2}, tag="b")])

    study.run("smoke", "build/nbval")
    study.write_references("smoke", "build/nbval")
    refs = tmp_path / "tests" / "nbval"
    assert sorted(p.name for p in refs.glob("*.ipynb")) == ["50_tiny__a.ipynb", "50_tiny__b.ipynb"]
    ref = nbformat.read(refs / "50_tiny__a.ipynb", as_version=4)
    assert "".join(ref.cells[2].outputs[0]["text"]) == "wrote build/nbval/t.csv\n"  # relative, not /tmp/...
    assert "".join(ref.cells[3].outputs[0]["text"]) == "answer 42, took 0.31 s\n"
    assert nbs.hygiene_problems(ref) == []
    capfd.readouterr()
    assert study.compare("smoke", "build/nbval") == 0

    ref.cells[3].outputs[0]["text"] = "answer 43, took 0.31 s\n"
    nbformat.write(ref, refs / "50_tiny__a.ipynb")
    assert study.compare("smoke", "build/nbval") != 0
    assert "50_tiny__a.ipynb::Cell 3" in capfd.readouterr().out

    study.write_references("smoke", "build/nbval")  # `make notebooks` restores a passing state
    assert study.compare("smoke", "build/nbval") == 0

    study.publish("smoke", "build/nbval")
    published = nbformat.read(tmp_path / "notebooks" / "50_tiny.ipynb", as_version=4)
    injected = [c for c in published.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert 'x = 2' in injected[0].source  # the run with the notebook's default x
    assert "".join(published.cells[3].outputs[0]["text"]) == "answer 28, took 0.31 s\n"
    assert nbs.hygiene_problems(published) == []
