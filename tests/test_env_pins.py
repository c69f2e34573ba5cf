"""Settings of the environment that would change what the course shows: pinned where they must not matter.

``MPLBACKEND=Agg`` (a headless server's setting) reaches every kernel Jupyter starts there: ``plt.show()`` then
draws nothing, and the notebooks would run, and be rendered into the book, without their figures. Every
notebook's first cell calls ``fla.course.setup()``, which puts the kernel back on the inline backend.
(The thread count of CPU training is named in its rows instead: tests/test_train.py.)
"""
from __future__ import annotations

import nbformat
import pytest

from fla.course import inline_figures

from jupyter_env import KERNEL, isolated_jupyter_env, use_in_this_process

PLOT = "import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()"


def _images(cell) -> int:
    return sum("image/png" in o.get("data", {}) for o in cell.outputs)


@pytest.mark.slow
def test_setup_shows_figures_inline_in_a_kernel_started_with_mplbackend_agg(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    env = isolated_jupyter_env(tmp_path / "jupyter")
    env["MPLBACKEND"] = "Agg"
    use_in_this_process(env, monkeypatch)
    cells = [PLOT, "import fla.course\nfla.course.setup()", PLOT]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=300, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}}).execute(env=env)
    before, setup, after = nb.cells
    assert _images(before) == 0  # what MPLBACKEND=Agg does to a notebook: no figure at all
    printed = "".join(o.get("text", "") for o in setup.outputs)
    assert "figures inline: matplotlib's backend was Agg (MPLBACKEND=Agg)" in printed, printed
    assert _images(after) == 1


def test_outside_a_kernel_the_backend_is_left_alone(monkeypatch):
    import matplotlib

    monkeypatch.setenv("MPLBACKEND", "Agg")
    before = matplotlib.get_backend()
    assert inline_figures() is None and matplotlib.get_backend() == before
