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

html_theme = "sphinx_book_theme"
html_title = "fla · Focused Linear Attention"
html_theme_options = {"show_toc_level": 2, "use_download_button": False}
html_show_sourcelink = False
html_copy_source = False  # the .ipynb copies would double the weight (the slider pictures are inline)
html_static_path = []
