"""Build the static course (``make book``): execute the notebooks, then render them with Sphinx + myst-nb.

    python tools/book.py [--only 02 03] [--quick] [--out _build/book]

- Notebooks 01–03 and 05 run in full mode; 04 and 06 in quick mode, where they analyse the runs shipped
  with the project (a full retraining is hours), and 06 trains nothing (``PARAMETERS``). ``--quick`` runs all
  in quick mode (the test's subset build).
- Every notebook runs with ``FLA_BOOK=1``: the sliders then also carry precomputed pictures, which the pages
  show through a plain range input (``fla.course.static``).
- The kernels draw with matplotlib's inline backend whatever ``MPLBACKEND`` says (a headless ``MPLBACKEND=Agg``
  would otherwise leave every page without figures), and a notebook that comes back without a single figure
  stops the build.
- A notebook may read settings from a cell tagged ``parameters``; ``PARAMETERS`` puts the book's values in a
  visible cell right after it (06 analyses the shipped runs and trains nothing).
- An executed notebook is kept under ``OUT/executed/`` with a key over its source, its mode, the book's parameters,
  the package's code, the settings that change outputs (``FLA_*`` variables, the versions of Python and of the
  libraries that compute and draw): a rebuild re-executes only what changed.
- Cells hidden in JupyterLab (solutions: ``source_hidden``) are collapsed on the pages too; printed text wraps at
  the column (``book/fla.css``); progress bars (widgets, which a page would show frozen at 0 %) are left out.
- The glossary and the notation table (``docs/``) are pages of the book too; the notebooks' links to them on GitHub
  point to those pages there.
- Pages: ``OUT/html/index.html``. Offline throughout; nothing is fetched.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
QUICK_IN_BOOK = {"04", "06"}  # these read the shipped full runs; their full mode retrains for minutes (04) or hours (06)
# the book's values of a notebook's `parameters` cell: 06 trains nothing here, not even quick mode's 1-epoch runs (their
# scores are 0), and analyses the shipped runs
PARAMETERS = {"06": 'EXPERIMENT = "none"  # set by the book\'s build (tools/book.py): this page analyses the shipped runs'}
INLINE = "module://matplotlib_inline.backend_inline"  # what a Jupyter kernel draws with when MPLBACKEND is unset
# what changes a notebook's outputs besides its source and the package: the libraries that compute and draw
LIBRARIES = ("torch", "numpy", "matplotlib", "matplotlib-inline", "ultralytics", "ipywidgets", "scipy", "pillow")
REFERENCE = ["glossary", "notation"]  # docs/NAME.md, pages of the book after the notebooks
# the notebooks link the reference pages on GitHub (so that the links work in JupyterLab and Colab); the book links its own
REFERENCE_URL = re.compile(r"https://github\.com/fla-teach/fla/blob/[^/\s)]+/docs/(" + "|".join(REFERENCE) + r")\.md")


def settings(env: dict) -> list[str]:
    """The settings an execution's outputs depend on: the kernel's ``FLA_*`` and ``MPL*`` variables and the versions of
    Python and ``LIBRARIES``, as sorted lines."""
    lines = [f"{k}={v}" for k, v in sorted(env.items()) if k.startswith(("FLA_", "MPL"))]
    for name in LIBRARIES:
        try:
            lines.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"{name} missing")
    return [f"python {sys.version.split()[0]}", *lines]


def _key(path: Path, quick: bool, package: Path = REPO / "fla", env: dict | None = None, parameters: str = "") -> str:
    """What an executed copy depends on: the notebook, its mode, the book's parameters for it, every file of the
    package (its code and the shipped runs in fla/results that 04 and 06 read) and ``settings(env)``."""
    h = hashlib.sha256(path.read_bytes())
    h.update(b"quick" if quick else b"full")
    h.update(parameters.encode())
    for p in sorted(package.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(package).as_posix().encode() + b"\0" + p.read_bytes())
    h.update("\n".join(settings(env or {})).encode())
    return h.hexdigest()


def kernel_env(quick: bool) -> dict:
    """The environment the notebooks execute in: this one, in book mode, drawing inline."""
    return {**os.environ, "FLA_BOOK": "1", "FLA_QUICK": "1" if quick else "0", "MPLBACKEND": INLINE,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}


def with_parameters(nb, source: str):
    """``nb`` with a cell holding ``source`` right after its cell tagged ``parameters`` (papermill's convention)."""
    import nbformat

    if not source:
        return nb
    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    if at is None:
        raise ValueError("the book has parameters for a notebook without a cell tagged 'parameters'")
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]}))
    return nb


def figures(nb) -> int:
    """Figures in an executed notebook's outputs: images, and the static sliders' frames."""
    count = 0
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            count += any(k.startswith("image/") for k in data) or "fla-static-frame" in str(data.get("text/html", ""))
    return count


def collapse_hidden(nb):
    """Cells hidden in JupyterLab (``jupyter.source_hidden``/``outputs_hidden``, e.g. the solutions) collapsed on the
    page too: myst-nb's ``hide-input``/``hide-output`` tags, a click opens them."""
    for cell in nb.cells:
        hidden = cell.metadata.get("jupyter", {})
        tags = cell.metadata.setdefault("tags", [])
        for key, tag in (("source_hidden", "hide-input"), ("outputs_hidden", "hide-output")):
            if hidden.get(key) and tag not in tags:
                tags.append(tag)
    return nb


#: tqdm's text: "build, count, export:  40%|████      | 4/10 [00:02<00:03, ...]"
PROGRESS_BAR = re.compile(r"\d+%\|.*\|\s*\d+/\d*")


def drop_progress_bars(nb):
    """Progress bars left out of the pages. In a notebook a tqdm bar is a widget; a page has no widget state, so it would
    show the bar's text as first drawn, frozen at 0 %. The work it tracked is done when the page is built, and what the
    cell printed besides stays."""
    def bar(output) -> bool:
        data = output.get("data", {})
        return "application/vnd.jupyter.widget-view+json" in data and bool(PROGRESS_BAR.search(data.get("text/plain", "")))

    for cell in nb.cells:
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if not bar(o)]
    return nb


def join_streams(nb):
    """Adjacent pieces of one stream in one output: a print split by the kernel (``"--- a"`` then ``"\\n"``) would be
    two boxes on the page, one of them empty. Pieces with a table or figure between them stay apart, in order."""
    for cell in nb.cells:
        joined = []
        for output in cell.get("outputs", []):
            last = joined[-1] if joined else None
            if (output.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream"
                    and last.get("name") == output.get("name")):
                last["text"] += output["text"]
            else:
                joined.append(output)
        if "outputs" in cell:
            cell["outputs"] = joined
    return nb


def execute(path: Path, target: Path, quick: bool, timeout: int = 3600) -> float:
    """Run ``path`` top to bottom into ``target``; seconds it took (0 when the kept copy is current)."""
    import nbformat
    from nbclient import NotebookClient

    key_file = target.with_suffix(".key")
    env, parameters = kernel_env(quick), PARAMETERS.get(path.name[:2], "")
    key = _key(path, quick, env=env, parameters=parameters)
    if target.is_file() and key_file.is_file() and key_file.read_text() == key:
        return 0.0
    nb = with_parameters(nbformat.read(path, as_version=4), parameters)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    seconds = time.perf_counter() - t0
    if not figures(nb):  # kept, this copy would be a page without pictures until the next change
        raise RuntimeError(f"{path.name} executed without a single figure: does the kernel draw with {INLINE}? "
                           f"(MPLBACKEND here: {os.environ.get('MPLBACKEND', 'unset')})")
    nb.metadata.pop("widgets", None)  # the pages show the static fallback; the live widget state would only add weight
    nb.metadata["fla_book"] = {"mode": "quick" if quick else "full", "seconds": round(seconds, 1)}
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    key_file.write_text(key)
    return seconds


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", metavar="NN", help="notebook numbers to build (default: all)")
    ap.add_argument("--quick", action="store_true", help="every notebook in quick mode")
    ap.add_argument("--out", default=str(REPO / "_build" / "book"))
    args = ap.parse_args(argv)
    out = Path(args.out).resolve()
    paths = [p for p in sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")) if not args.only or p.name[:2] in args.only]
    if not paths:
        ap.error(f"no notebook matches {args.only}")

    import nbformat

    if not os.environ.get("FLA_DATA"):  # the helmet photos `make data` put in place (the kernels run offline)
        sys.path.insert(0, str(REPO / "tests"))
        from shared_data import private_helmet

        if (data := private_helmet(out / "helmet")) is not None:
            os.environ["FLA_DATA"] = str(data)
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    src.mkdir(parents=True)
    shutil.copy(REPO / "book" / "conf.py", src / "conf.py")
    (src / "_static").mkdir()
    shutil.copy(REPO / "book" / "fla.css", src / "_static" / "fla.css")
    lines, times = [], {}
    for path in paths:
        quick = args.quick or path.name[:2] in QUICK_IN_BOOK
        executed = out / "executed" / path.name
        print(f"{path.name}: executing in {'quick' if quick else 'full'} mode ...", flush=True)
        seconds = execute(path, executed, quick)
        print(f"{path.name}: {'executed in %.0f s' % seconds if seconds else 'unchanged, kept'}", flush=True)
        nb = nbformat.read(executed, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = REFERENCE_URL.sub(r"\1.md", cell.source)
        nbformat.write(join_streams(drop_progress_bars(collapse_hidden(nb))), src / path.name)
        meta = nb.metadata["fla_book"]
        lines.append(f"- `{path.name}`: {meta['mode']} mode, executed in {meta['seconds']:.0f} s")
        times[path.name[:2]] = f"{meta['seconds']:.0f} s, {meta['mode']} mode"
    for name in REFERENCE:
        shutil.copy(REPO / "docs" / f"{name}.md", src / f"{name}.md")
    index = (REPO / "book" / "index.md").read_text()
    index = index.replace("NOTEBOOKS", "\n".join(p.stem for p in paths))
    for n in range(1, 10):
        index = index.replace(f"TIME{n:02d}", times.get(f"{n:02d}", "not in this build"))
    index = index.replace("BUILD", "Each notebook was executed top to bottom (`python tools/book.py`, Sphinx + myst-nb) "
                          f"with Python {sys.version.split()[0]} on the CPU of the build machine:\n\n" + "\n".join(lines))
    (src / "index.md").write_text(index)

    html = out / "html"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", str(src), str(html)], check=True,
                   env={**os.environ, "FLA_PROJECT": str(REPO)})  # conf.py reads the release from pyproject.toml
    for path in paths:  # the download button's file: the notebook to run, as the repository holds it (no outputs)
        shutil.copy(path, html / "_sources" / path.name)
    print(f"pages rendered in {time.perf_counter() - t0:.0f} s: open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
