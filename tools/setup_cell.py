"""Write the setup cell into the first code cell of every notebook (and nothing else).

    .venv/bin/python tools/setup_cell.py            # after changing SETUP_CELL or the version

The pin follows pyproject.toml: the repository URL of [project.urls] at the tag v<version>.
tests/test_notebooks.py checks that every notebook carries exactly this cell.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[1]

SETUP_CELL = '''\
FLA_SOURCE = "git+{url}@v{version}"  # where %pip gets fla: this release, or the project folder or .zip you uploaded, e.g. "/content/fla-main.zip"
from importlib.util import find_spec
if not find_spec("fla"):  # Colab or a fresh kernel (`make lab` has installed it already)
    %pip install "{{FLA_SOURCE}}"
    if not find_spec("fla"): raise SystemExit(f"fla did not install from {{FLA_SOURCE}}. Set FLA_SOURCE (first line) to a git URL you can reach, or upload the project (folder or .zip, Files pane) and set FLA_SOURCE to its path; then run this cell again.")
import fla.course; device = fla.course.setup()  # seeds, turns on Colab's widget manager, prints the device and the mode'''


def pin() -> tuple[str, str]:
    """(repository URL, version) from pyproject.toml."""
    text = (REPO / "pyproject.toml").read_text()
    url = re.search(r'^\[project\.urls\][^\[]*?^Repository = "([^"]+)"', text, re.M | re.S).group(1)
    version = re.search(r'^version = "([^"]+)"', text, re.M).group(1)
    return url, version


def main() -> int:
    url, version = pin()
    cell = SETUP_CELL.format(url=url, version=version)
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        first = next(c for c in nb.cells if c.cell_type == "code")
        if first.source != cell:
            first.source = cell
            nbformat.write(nb, path)
            print(f"{path.name}: setup cell written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
