"""The notebooks' setup cell, run for real in a kernel that has no `fla`: it installs, or says what to do.

The cell comes from notebook 01 as stored, with only FLA_SOURCE replaced. The kernel runs this
interpreter with `fla` hidden (no editable finder, no repository on the path) and pip pointed at
a private --target folder, without index or dependencies, so nothing here touches .venv or the
network. tools/colab_check.sh runs the same cell in a Colab-like Python 3.13 with dependencies.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import load_tool
from jupyter_env import KERNEL, isolated_jupyter_env, use_in_this_process

import fla
import fla.course

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))

setup_cell = load_tool("setup_cell")

#: IPython startup for the test kernel: forget the editable install and the repository on the path.
HIDE_FLA = f"""\
import sys
sys.meta_path[:] = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
sys.path[:] = [p for p in sys.path if p not in ("", {str(REPO)!r}) and not p.startswith("__editable__")]
"""


def cell() -> str:
    return next(c for c in nbformat.read(NOTEBOOKS[0], as_version=4).cells if c.cell_type == "code").source


def with_source(source: str) -> str:
    text, n = re.subn(r'^FLA_SOURCE = "[^"]*"', f"FLA_SOURCE = {source!r}", cell(), flags=re.M)
    assert n == 1
    return text


def test_cell_pins_the_repository_url_at_this_version():
    url, version = setup_cell.pin()
    assert version == fla.__version__
    assert cell().splitlines()[0].startswith(f'FLA_SOURCE = "git+{url}@v{version}"')
    assert re.search(r'^    %pip install "\{FLA_SOURCE\}"$', cell(), re.M)  # %pip, no -q: Colab shows its restart prompt
    assert len(cell().splitlines()) <= 6
    readme = (REPO / "README.md").read_text()
    for path in NOTEBOOKS:  # the Colab badges open the notebooks of the same release
        badge = f"https://colab.research.google.com/github/{url.removeprefix('https://github.com/')}/blob/v{version}/notebooks/{path.name}"
        assert badge in readme, f"README: no Colab badge {badge}"
    assert "blob/main/notebooks" not in readme


def test_setup_enables_colabs_widget_manager_only_on_colab(monkeypatch, capsys):
    calls = []
    colab = type(sys)("google.colab")
    colab.output = type(sys)("google.colab.output")
    colab.output.enable_custom_widget_manager = lambda: calls.append("on")
    fla.course.setup()
    assert calls == [] and "Colab" not in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "google", type(sys)("google"))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setitem(sys.modules, "google.colab.output", colab.output)
    fla.course.setup(seed=3)
    assert calls == ["on"] and "· Colab ·" in capsys.readouterr().out


def test_setup_seeds_torch():
    import torch

    fla.course.setup(seed=5)
    a = torch.rand(3)
    fla.course.setup(seed=5)
    assert torch.equal(a, torch.rand(3))


@pytest.fixture
def bare_kernel(tmp_path, monkeypatch):
    """Run one cell in a kernel of this interpreter where `fla` cannot be imported; return its text output."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    env = isolated_jupyter_env(tmp_path / "jupyter")
    target = tmp_path / "site"
    target.mkdir()
    (Path(env["IPYTHONDIR"]) / "profile_default" / "startup" / "01-hide-fla.py").write_text(HIDE_FLA)
    env.update(PYTHONPATH=str(target), PIP_TARGET=str(target), PIP_NO_DEPS="1", PIP_NO_INDEX="1",
               PIP_NO_BUILD_ISOLATION="0")  # "0" turns isolation off: the build uses this env's setuptools
    use_in_this_process(env, monkeypatch)
    cwd = tmp_path / "content"
    cwd.mkdir()

    def run(source: str) -> tuple[bool, str]:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
            "from importlib.util import find_spec; assert not find_spec('fla'), 'fla still visible'"),
            nbformat.v4.new_code_cell(source)])
        client = NotebookClient(nb, timeout=300, kernel_name=KERNEL, resources={"metadata": {"path": str(cwd)}})
        try:
            client.execute(env=env)
            ok = True
        except CellExecutionError as e:
            if "fla still visible" in str(e):
                pytest.skip("fla is installed non-editable in this environment: cannot hide it from the kernel")
            ok = False
        out = nb.cells[1].outputs
        return ok, "".join(o.get("text", "") + o.get("evalue", "") + "".join(o.get("traceback", [])) for o in out)

    run.target = target
    return run


@pytest.mark.slow
def test_cell_install_failure_says_what_to_do(bare_kernel, tmp_path):
    missing = tmp_path / "not-uploaded" / "fla"
    ok, out = bare_kernel(with_source(str(missing)))
    assert not ok
    assert "SystemExit" in out and f"fla did not install from {missing}" in out
    assert "set FLA_SOURCE to its path" in out and "upload the project (folder or .zip" in out
    assert "Traceback" not in out  # one message, not a stack
    assert not list(bare_kernel.target.iterdir())  # nothing half-installed


@pytest.mark.slow
def test_cell_installs_from_a_git_clone_and_runs_setup(bare_kernel, tmp_path):
    if not (REPO / ".git").exists():
        pytest.skip("not a git clone")
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
    ok, out = bare_kernel(with_source(f"git+file://{REPO}@{head.stdout.strip()}")
                          + "\nprint('fla from', fla.__file__)")
    assert ok, out
    assert "Successfully installed fla-teach" in out  # pip's own line: what Colab's restart check reads
    assert f"fla from {bare_kernel.target}" in out
    assert f"fla {fla.__version__} · torch" in out and "quick mode ON" in out
