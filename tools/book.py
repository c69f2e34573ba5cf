"""Build the static course (``make book``): execute the notebooks, then render them with Sphinx + myst-nb.

    python tools/book.py [--only 02 03] [--quick] [--out _build/book]

- Notebooks 01–03 and 05 run in full mode; 04 and 06 in quick mode, where they analyse the runs shipped
  with the project (a full retraining is hours). ``--quick`` runs all in quick mode (the test's subset build).
- Every notebook runs with ``FLA_BOOK=1``: the sliders then also carry precomputed pictures, which the pages
  show through a plain range input (``fla.course.static``).
- An executed notebook is kept under ``OUT/executed/`` with a key over its source, its mode and the package's
  code: a rebuild re-executes only what changed.
- The glossary and the notation table (``docs/``) are pages of the book too; the notebooks' links to them on GitHub
  point to those pages there.
- Pages: ``OUT/html/index.html``. Offline throughout; nothing is fetched.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
QUICK_IN_BOOK = {"04", "06"}  # these read the shipped full runs; their full mode retrains for hours
REFERENCE = ["glossary", "notation"]  # docs/NAME.md, pages of the book after the notebooks
# the notebooks link the reference pages on GitHub (so that the links work in JupyterLab and Colab); the book links its own
REFERENCE_URL = re.compile(r"https://github\.com/fla-teach/fla/blob/[^/\s)]+/docs/(" + "|".join(REFERENCE) + r")\.md")


def _key(path: Path, quick: bool, package: Path = REPO / "fla") -> str:
    """What an executed copy depends on: the notebook, its mode, and every file of the package (its code and the
    shipped runs in fla/results that 04 and 06 read)."""
    h = hashlib.sha256(path.read_bytes())
    h.update(b"quick" if quick else b"full")
    for p in sorted(package.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(package).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def execute(path: Path, target: Path, quick: bool, timeout: int = 3600) -> float:
    """Run ``path`` top to bottom into ``target``; seconds it took (0 when the kept copy is current)."""
    import nbformat
    from nbclient import NotebookClient

    key_file = target.with_suffix(".key")
    key = _key(path, quick)
    if target.is_file() and key_file.is_file() and key_file.read_text() == key:
        return 0.0
    env = {**os.environ, "FLA_BOOK": "1", "FLA_QUICK": "1" if quick else "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    nb = nbformat.read(path, as_version=4)
    t0 = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=env)
    seconds = time.perf_counter() - t0
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
        nbformat.write(nb, src / path.name)
        meta = nbformat.read(executed, as_version=4).metadata["fla_book"]
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
    subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-q", "-j", "1", str(src), str(html)], check=True)
    print(f"pages rendered in {time.perf_counter() - t0:.0f} s: open {html / 'index.html'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
