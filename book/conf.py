"""Sphinx + myst-nb configuration of the static course (`make book`; tools/book.py copies this file next to the
executed notebooks and runs sphinx-build). The notebooks arrive executed: Sphinx only renders them."""
project = "fla — Focused Linear Attention, taught by running it"
author = "fla-teach"
extensions = ["myst_nb"]
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

nb_execution_mode = "off"  # tools/book.py executed each notebook in its own mode (full, or quick with shipped runs)
# a live slider's output carries the widget's view and a static text/html fallback (fla.course.static):
# a page without a kernel shows the fallback
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_ipywidgets_js = {}  # no widget manager scripts: nothing on the pages needs a kernel
nb_merge_streams = False  # merged, a cell's prints would all move above its displayed tables and figures
nb_render_markdown_format = "myst"  # the notebooks display markdown tables (commonmark has none)
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 2  # the glossary's terms are headings; notebooks link them as glossary.md#term, as GitHub does



def _release():
    """The repository and the release tag the notebooks belong to, from pyproject.toml (tools/book.py says where the
    project is: this file runs from a copy): the Colab buttons open the notebooks there, as the README's badges
    and the setup cell's FLA_SOURCE do."""
    import os
    from pathlib import Path

    try:
        import tomllib
    except ImportError:  # Python 3.10: Sphinx brings tomli there
        import tomli as tomllib

    project = Path(os.environ.get("FLA_PROJECT") or Path(__file__).resolve().parents[1])
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    return meta["urls"]["Repository"], f"v{meta['version']}"


repository_url, release_tag = _release()
html_theme = "sphinx_book_theme"
html_title = "fla · Focused Linear Attention"
html_theme_options = {
    "show_toc_level": 2,
    "repository_url": repository_url,
    "repository_branch": release_tag,
    "path_to_docs": "notebooks",
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},  # a notebook page's rocket: open it in Colab
    "use_download_button": True,  # the notebook as stored in the repository (tools/book.py puts it in _sources)
}
html_show_sourcelink = False
html_copy_source = True  # tools/book.py replaces each executed copy by the notebook without outputs (the slider pictures
html_sourcelink_suffix = ""  # would double the weight): the download is the notebook to run
html_static_path = ["_static"]  # fla.css, which tools/book.py copies there
html_css_files = ["fla.css"]

# MathJax 3 from the book extra (sphinx-mathjax-offline ships MathJax 3.2.2) instead of Sphinx's CDN default, so the
# formulas typeset on a machine without network; only what TeX input and HTML output load is copied (3 MB of its 24).
mathjax_path = "mathjax/tex-chtml.js"
mathjax3_config = {"options": {}}  # MathJax 3's key (Sphinx 9 writes v4's by default); myst adds its classes here
MATHJAX_PARTS = ["tex-chtml.js", "input/tex/extensions", "output/chtml/fonts/woff-v2", "ui", "a11y"]


def copy_mathjax(app, exception):
    import importlib.metadata
    import shutil
    from pathlib import Path

    if exception is not None or app.builder.format != "html":
        return
    source = Path(importlib.metadata.distribution("sphinx-mathjax-offline").locate_file(
        "sphinx-mathjax-offline/static/mathjax"))
    for part in MATHJAX_PARTS:
        src, dst = source / part, Path(app.outdir) / "_static" / "mathjax" / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)


def setup(app):
    app.connect("build-finished", copy_mathjax)
