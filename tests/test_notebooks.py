"""Every teaching notebook runs top to bottom in quick mode, headless, and keeps its widget state.

The notebooks are found by name (notebooks/NN-*.ipynb), so a new one is tested the day it lands.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import load_tool
from shared_data import private_helmet
from jupyter_env import KERNEL, isolated_jupyter_env, use_in_this_process

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
#: what a notebook's source calls for the helmet data: resolve_data() needs it (downloads it otherwise; the
#: kernels run offline), find_data() uses it when it is here
DATA_CALLS = {"resolve_data(": pytest.mark.needs_data, "find_data(": pytest.mark.needs_data(optional=True)}
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
setup_cell = load_tool("setup_cell")  # writes the notebooks' first cell

#: Sliders each notebook's saved widget state must hold: (model name, description).
# notebook -> the widgets it shows, and a line of text its view prints in its first state
SLIDERS = {
    "01-complexity": ({("SelectionSliderModel", "head size d")}, "cheaper from N = 65 on"),
    "02-focusing": ({("FloatSliderModel", "p"), ("IntSliderModel", "query row"), ("IntSliderModel", "query col"),
                     ("ToggleButtonsModel", "kernel")}, "p = 3.00"),
    "03-rank": ({("SelectionSliderModel", "DWC strength t")}, "t = 0: rank of A + t·D_0"),
}


#: name -> the notebook as the quick-mode test executed it, for test_prose_numbers (one execution serves both)
QUICK_RUNS: dict = {}

CHECK_FALSE = re.compile(r"(?<![=\w])False[.)]*\s*$")


def false_checks(nb) -> list[str]:
    """Printed lines of a notebook's code cells that end in False: a self-check that failed.

    Notebooks print measurements, and assert what holds by argument; a line such as
    "... agree: False" left in a notebook is a check that must fail the test, not scroll by.
    A keyword argument in a printed repr (``bias=False)``) is not a check.
    """
    lines = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                lines += [line for line in out["text"].splitlines() if CHECK_FALSE.search(line)]
    return lines


def test_false_checks_are_found():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cell = new_code_cell("print(...)", outputs=[new_output("stream", name="stdout", text="rank 64\nboth at N = 196: True False\n")])
    repr_ = new_output("stream", name="stdout", text="all agree: True\n(proj): Linear(in_features=8, out_features=8, bias=False)\n")
    nb = new_notebook(cells=[cell, new_code_cell("x", outputs=[repr_])])
    assert false_checks(nb) == ["both at N = 196: True False"]


def test_notebooks_are_found():
    names = [p.stem for p in NOTEBOOKS]
    assert {"01-complexity", "02-focusing", "03-rank"} <= set(names), names


def exercises_without_solution(nb) -> list[str]:
    """The checkers of coding exercises set inside a section (before "## Exercises", whose solutions are a collapsed
    block of their own) that no hidden cell right after the exercise solves: each such exercise is followed by a cell
    collapsed in JupyterLab (``jupyter.source_hidden``, collapsed on the pages too) that calls the same checker."""
    missing, in_exercises = [], False
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown" and re.search(r"(?m)^## ", cell.source):
            in_exercises = bool(re.search(r"(?m)^## Exercises", cell.source))
        if in_exercises or cell.cell_type != "code" or "raise NotImplementedError" not in cell.source:
            continue
        for checker in re.findall(r"\b(check_\w+)\(", cell.source):
            after = nb.cells[i + 1] if i + 1 < len(nb.cells) else None
            if not (after is not None and after.cell_type == "code" and after.metadata.get("jupyter", {}).get("source_hidden")
                    and f"{checker}(" in after.source):
                missing.append(f"cell {i}: {checker}")
    return missing


def test_an_exercise_without_its_collapsed_solution_is_found():
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    exercise = new_code_cell("def f(x):\n    raise NotImplementedError\n\ncheck_f(f)")
    solution = new_code_cell("def f(x):\n    return x\n\ncheck_f(f)", metadata={"jupyter": {"source_hidden": True}})
    shown = new_code_cell(solution.source)
    head = new_markdown_cell("## 1. A")
    assert exercises_without_solution(new_notebook(cells=[head, exercise, solution])) == []
    assert exercises_without_solution(new_notebook(cells=[head, exercise, shown])) == ["cell 1: check_f"]
    assert exercises_without_solution(new_notebook(cells=[head, exercise])) == ["cell 1: check_f"]
    assert exercises_without_solution(new_notebook(cells=[new_markdown_cell("## Exercises"), exercise])) == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_inside_sections_have_a_collapsed_solution(path):
    assert not exercises_without_solution(nbformat.read(path, as_version=4))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_and_first_cell_installs_this_project(path):
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), "commit notebooks without outputs"
    assert "widgets" not in nb.metadata, "commit notebooks without widget state"
    url, version = setup_cell.pin()  # tests/test_setup_cell.py runs this cell and checks the pin
    assert code[0].source == setup_cell.SETUP_CELL.format(url=url, version=version), "run tools/setup_cell.py"


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory, monkeypatch_module):
    env = isolated_jupyter_env(tmp_path_factory.mktemp("jupyter"))
    if "FLA_DATA" not in env:  # the kernels run offline: notebooks that train need a local copy
        if (data := private_helmet(tmp_path_factory.mktemp("helmet") / "helmet")) is not None:
            env["FLA_DATA"] = str(data)
    use_in_this_process(env, monkeypatch_module)
    return env


def test_kernel_is_this_interpreter(kernel_env):
    from jupyter_client.kernelspec import KernelSpecManager

    assert KernelSpecManager().get_kernel_spec(KERNEL).argv[0] == sys.executable


def _with_data_marks(path: Path):
    source = "".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    return pytest.param(path, marks=[mark for call, mark in DATA_CALLS.items() if call in source][:1], id=path.stem)


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("path", [_with_data_marks(p) for p in NOTEBOOKS])
def test_notebook_executes_in_quick_mode(path, kernel_env):
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}})
    t0 = time.perf_counter()
    client.execute(env=kernel_env)  # raises CellExecutionError on the first failing cell (a notebook's assert too)
    print(f"{path.name}: executed in quick mode in {time.perf_counter() - t0:.1f} s")
    assert not false_checks(nb), f"a self-check printed False: {false_checks(nb)}"

    first_code = next(c for c in nb.cells if c.cell_type == "code")
    setup_output = "".join(o.get("text", "") for o in first_code.outputs)
    assert "quick mode ON" in setup_output, setup_output  # FLA_QUICK reached the kernel; no pip install ran

    expected, first_text = SLIDERS.get(path.stem, (None, None))
    if expected:
        state = nb.metadata["widgets"][WIDGET_STATE]["state"]
        found = {(m["model_name"], m["state"].get("description")) for m in state.values()}
        assert expected <= found, f"missing widgets: {expected - found}"
        texts = [m["state"]["value"] for m in state.values() if m["model_name"] == "HTMLModel"]
        assert any(first_text in t for t in texts), texts  # the view rendered its first state
        json.dumps(nb.metadata["widgets"])  # the saved state is plain JSON
    QUICK_RUNS[path.stem] = nb


def test_test_kernels_refuse_non_loopback_connections(kernel_env):
    from nbformat.v4 import new_code_cell, new_notebook
    from nbclient import NotebookClient

    nb = new_notebook(cells=[new_code_cell(
        "import socket\n"
        "s = socket.socket()\n"
        "try:\n"
        "    s.connect(('192.0.2.1', 80))\n"  # TEST-NET-1: never routed
        "except ConnectionRefusedError as e:\n"
        "    print('refused:', e)\n"
        "s.close()\n"
        "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen(1)\n"
        "c = socket.socket(); c.connect(l.getsockname()); print('loopback ok'); c.close(); l.close()"
    )])
    NotebookClient(nb, timeout=120, kernel_name=KERNEL).execute(env=kernel_env)
    out = nb.cells[0].outputs[0]["text"]
    assert "refused: test kernel: non-loopback" in out and "loopback ok" in out
