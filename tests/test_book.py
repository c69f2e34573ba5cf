"""The static course (``make book``, tools/book.py) in a real browser, on a subset: notebooks 02, 04 and 06 in quick mode.

The full book executes 01–03 and 05 in full mode (minutes each on 2 cores); its pages are made by the same
code, so CI builds a notebook with sliders and the two with wide result tables (04's contrasts, 06's shipped helmet runs), with
``MPLBACKEND=Agg`` in the environment (common on servers and CI; it must not empty the pages), and checks what a
reader sees: every page loads without a page error; each notebook page shows its figures, none scaled below
60 % of the size it was drawn at; no result table is wider than the text column at 1300 px (its last columns would
hide behind a sideways scroll); the text under a slider wraps instead of scrolling sideways; moving each
static slider (with the keyboard) changes the picture and the numbers under it; the formulas are typeset by
the MathJax the book carries (the browser reaches nothing but the loopback server, so a CDN's MathJax would
leave them as TeX); each notebook page has a Colab button opening that notebook at the release tag (as the
README's badges do) and a download button for the notebook without outputs; 06 shows the shipped runs'
detections and no training log. Chromium is Debian's, driven by Playwright.
"""
from __future__ import annotations

import json
import re

import nbformat
import pytest
from conftest import REPO, load_tool
from helpers import serve
from test_browser import CHROMIUM_FLAGS, _chromium

NOTEBOOKS = ["02", "04", "06"]
MIN_SCALE = 0.6  # a figure shown below 60 % of the size it was drawn at has labels too small to read


@pytest.fixture(scope="module")
def book(tmp_path_factory, monkeypatch_module):
    pytest.importorskip("myst_nb", reason="the book needs the book extra: pip install -e '.[book]'")
    from jupyter_env import isolated_jupyter_env, use_in_this_process

    root = tmp_path_factory.mktemp("book")
    env = isolated_jupyter_env(root / "jupyter")
    use_in_this_process(env, monkeypatch_module, extra=("IPYTHONDIR",))  # the kernel: this interpreter, offline
    monkeypatch_module.setenv("MPLBACKEND", "Agg")  # a headless server's setting: the pages must keep their figures
    out = root / "out"
    assert load_tool("book").main(["--only", *NOTEBOOKS, "--quick", "--out", str(out)]) == 0
    return out / "html"


def _notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    path = tmp_path / "99-test.ipynb"
    nbformat.write(nb, path)
    return path


def test_the_kernels_draw_inline_whatever_mplbackend_says(tmp_path, monkeypatch):
    """Under MPLBACKEND=Agg a kernel's plt.show() draws nothing; the book pins the inline backend, and a notebook that
    still comes back without a figure stops the build instead of becoming a page without pictures."""
    from jupyter_env import isolated_jupyter_env, use_in_this_process

    book = load_tool("book")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    assert book.kernel_env(True)["MPLBACKEND"] == book.INLINE
    use_in_this_process(isolated_jupyter_env(tmp_path / "jupyter"), monkeypatch, extra=("IPYTHONDIR",))
    drawn = _notebook(tmp_path, "import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()")
    book.execute(drawn, tmp_path / "out" / drawn.name, quick=True, timeout=300)
    nb = nbformat.read(tmp_path / "out" / drawn.name, as_version=4)
    assert book.figures(nb) == 1 and "image/png" in nb.cells[0].outputs[0]["data"]
    plain = _notebook(tmp_path, "print('no picture')")
    with pytest.raises(RuntimeError, match="without a single figure"):
        book.execute(plain, tmp_path / "out2" / plain.name, quick=True, timeout=300)
    assert not (tmp_path / "out2" / plain.name).exists(), "a figure-less execution is not kept for the next build"


def test_an_executed_copy_is_redone_when_the_code_the_shipped_runs_or_the_settings_change(tmp_path):
    book = load_tool("book")
    key = book._key
    notebook, package = tmp_path / "02-x.ipynb", tmp_path / "fla"
    notebook.write_text("{}")
    (package / "results" / "helmet").mkdir(parents=True)
    (package / "a.py").write_text("x = 1")
    (package / "results" / "helmet" / "results.csv").write_text("map50\n0.4\n")
    first = key(notebook, True, package)
    assert key(notebook, True, package) == first and key(notebook, False, package) != first
    (package / "results" / "helmet" / "results.csv").write_text("map50\n0.5\n")
    shipped = key(notebook, True, package)
    assert shipped != first, "a new shipped run re-executes the notebooks that read it"
    (package / "a.py").write_text("x = 2")
    code = key(notebook, True, package)
    assert code not in (first, shipped)
    # the settings the outputs depend on: the book's parameters, FLA_* and MPL* variables, the libraries' versions
    assert key(notebook, True, package, parameters='EXPERIMENT = "none"') != code
    env = {"HOME": "/somewhere"}
    assert key(notebook, True, package, env=env) == key(notebook, True, package, env={"HOME": "/elsewhere"})
    for changed in ({"FLA_SHIPPED": "/other/runs"}, {"MPLBACKEND": "Agg"}, {"FLA_DATA": "/other/data.yaml"}):
        assert key(notebook, True, package, env={**env, **changed}) != key(notebook, True, package, env=env), changed
    assert any(line.startswith("matplotlib==") for line in book.settings({}))


def test_the_book_gives_06_its_parameters_and_collapses_the_solutions():
    book = load_tool("book")
    six = nbformat.read(REPO / "notebooks" / "06-helmet-training.ipynb", as_version=4)
    (param,) = [c for c in six.cells if "parameters" in c.metadata.get("tags", [])]
    assert param.source.split("=")[0] == book.PARAMETERS["06"].split("=")[0], "the book sets the variable 06 reads"
    at = six.cells.index(param)
    injected = book.with_parameters(six, book.PARAMETERS["06"]).cells[at + 1]
    assert injected.source == book.PARAMETERS["06"] and "injected-parameters" in injected.metadata.tags
    four = nbformat.read(REPO / "notebooks" / "04-ablation.ipynb", as_version=4)
    hidden = [c for c in four.cells if c.metadata.get("jupyter", {}).get("source_hidden")]
    assert hidden, "04's solutions are hidden in JupyterLab"
    book.collapse_hidden(four)
    assert all("hide-input" in c.metadata.tags for c in hidden)
    assert not any("hide-input" in c.metadata.get("tags", []) for c in four.cells if c not in hidden)


def test_progress_bars_are_left_out_of_the_pages_and_the_rest_stays():
    book = load_tool("book")
    new = nbformat.v4
    bar = new.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "x"},
                                                "text/plain": "build, count, export:   0%|          | 0/10 [00:00<?, ?variant/s]"})
    slider = new.new_output("display_data", data={"application/vnd.jupyter.widget-view+json": {"model_id": "y"},
                                                   "text/plain": "VBox(children=(SelectionSlider(...),))"})
    table = new.new_output("display_data", data={"text/markdown": "| 0%| a |", "text/plain": "<Markdown>"})
    printed = new.new_output("stream", name="stdout", text="fused: base 8.74\n")
    nb = new.new_notebook(cells=[new.new_code_cell("x", outputs=[bar, table, printed, slider])])
    assert book.drop_progress_bars(nb).cells[0].outputs == [table, printed, slider]


def test_cells_of_numbers_wrap_only_between_numbers_and_words_wrap_freely():
    """A result table fits the column by wrapping its words (book/fla.css); a count such as "8 / 20" or an estimate
    "0.390 ± 0.048" must not come apart inside a number: their spaces become no-break spaces, except before a ±, an
    interval's bracket or a count in parentheses, and after an interval's comma."""
    book = load_tool("book")
    new = nbformat.v4
    md = ("| task | a > b | interval | 2× steps | score |\n|---|---|---|---|---|\n"
          "| linear+focus (p=3) − linear | 8 / 20 | [-0.050, -0.004] | -0.051 [-0.096, -0.018] (6) | 0.390 ± 0.048 |")
    nb = new.new_notebook(cells=[new.new_code_cell("x", outputs=[new.new_output("display_data", data={"text/markdown": md})])])
    header, rule, row = book.unbreakable_numbers(nb).cells[0].outputs[0]["data"]["text/markdown"].split("\n")
    assert (header, rule) == tuple(md.split("\n")[:2]), "headers keep their spaces: they wrap between words"
    nb_ = "\u00a0"
    assert row.split("|")[1:-1] == [" linear+focus (p=3) − linear ", f" 8{nb_}/{nb_}20 ", " [-0.050, -0.004] ",
                                     " -0.051 [-0.096, -0.018] (6) ", f" 0.390 ±{nb_}0.048 "]


SCALES = """imgs => imgs.filter(i => i.offsetParent !== null && i.naturalWidth > 0)
                      .map(i => [i.getBoundingClientRect().width / i.naturalWidth, i.naturalWidth, i.alt || i.src.slice(0, 60)])"""

TABLE_WIDTHS = """ts => ts.map(t => [Math.round(t.getBoundingClientRect().width),
                                     Math.round(t.closest('div.cell_output').getBoundingClientRect().width),
                                     t.querySelector('tr').innerText.replace(/\\s+/g, ' ').slice(0, 50)])"""


def colab_url(notebook: str) -> str:
    """The README's Colab badge link for ``notebook`` (e.g. 02-focusing.ipynb): where a page's Colab button must go."""
    (url,) = set(re.findall(r"\(https://colab\.research\.google\.com/github/[^)]*/" + re.escape(notebook) + r"\)",
                            (REPO / "README.md").read_text()))
    return url[1:-1]


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.needs_data  # the pages it builds include 06, which reads the helmet photos
def test_book_pages_show_legible_figures_buttons_and_static_sliders(book, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")

    pages = sorted(p.name for p in book.glob("[0-9][0-9]-*.html"))
    assert [p[:2] for p in pages] == NOTEBOOKS
    index = (book / "index.html").read_text()
    assert all(p in index for p in pages), "the index links every notebook page"
    assert "prerequisites" in index and "quick mode, executed in" in index

    moved, smallest = 0, {}
    with serve(book) as server, playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        try:
            for name in ["index.html", *pages]:
                page = browser.new_page(viewport={"width": 1300, "height": 900})
                errors = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                page.goto(f"{server.url}/{name}", wait_until="load")
                assert not errors, f"{name}: {errors}"
                if name == "index.html":
                    continue
                notebook = name.replace(".html", ".ipynb")
                # figures: images that loaded (a broken src has naturalWidth 0), none shown below MIN_SCALE of its size
                shown = page.eval_on_selector_all("main img", SCALES)
                broken = page.eval_on_selector_all("main img", "imgs => imgs.filter(i => i.complete && i.naturalWidth === 0).length")
                assert len(shown) >= (1 if name.startswith("04") else 2) and broken == 0, (name, shown, broken)  # 04: one figure
                small = [s for s in shown if s[0] < MIN_SCALE]
                assert not small, f"{name}: figures shown below {MIN_SCALE:.0%} of their size: {small}"
                smallest[name] = min(s[0] for s in shown)
                # formulas: MathJax (served from the book's _static, offline) turns \( … \) into mjx-container
                page.wait_for_function("document.querySelectorAll('main mjx-container').length > 0", timeout=30_000)
                assert "\\(" not in page.locator("main").inner_text(), f"{name}: TeX left untypeset"
                # the buttons: Colab at the README's link, download of the notebook as the repository holds it
                assert page.locator(f'a[href="{colab_url(notebook)}"]').count() == 1, f"{name}: no Colab button"
                download = page.locator(f'a[href$="_sources/{notebook}"]')
                assert download.count() == 1, f"{name}: no download button"
                served = page.request.get(f"{server.url}/_sources/{notebook}").body()
                assert served == (REPO / "notebooks" / notebook).read_bytes()
                assert all(not c.get("outputs") for c in json.loads(served)["cells"])
                # result tables (markdown outputs) within the column: none hides its last columns behind a sideways scroll
                tables = page.eval_on_selector_all("main div.cell_output table", TABLE_WIDTHS)
                wide = [t for t in tables if t[0] > t[1] + 1]
                assert not wide, f"{name}: tables wider than the column ([table px, column px, first row]): {wide}"
                if not name.startswith("02"):
                    assert tables, f"{name}: no result table measured"
                text = page.locator("main").inner_text()
                sliders = page.locator(".fla-static")
                for i in range(sliders.count()):
                    slider = sliders.nth(i)
                    visible = lambda: slider.evaluate(  # noqa: E731
                        "s => [...s.querySelectorAll('.fla-static-frame')].filter(i => !i.hidden).map(i => i.src)")
                    before, numbers = visible(), slider.locator("pre").inner_text()
                    assert len(before) == 1
                    slider.locator("input[type=range]").focus()
                    page.keyboard.press("End")  # keyboard: the last value of the grid
                    after = visible()
                    assert len(after) == 1 and after != before, f"{name}: the picture did not change"
                    assert slider.locator("pre").inner_text() != numbers, f"{name}: the numbers did not change"
                    assert slider.locator("output").inner_text() == slider.locator("input").get_attribute("aria-valuetext")
                    frame = slider.evaluate("s => { const i = [...s.querySelectorAll('.fla-static-frame')].find(i => !i.hidden);"
                                            " return i.getBoundingClientRect().width / i.naturalWidth; }")
                    assert frame >= MIN_SCALE, f"{name}: slider frame shown at {frame:.0%}"
                    overflow = slider.evaluate("s => { const p = s.querySelector('pre'); return p.scrollWidth - p.clientWidth; }")
                    assert overflow <= 1, f"{name}: the numbers under the slider scroll sideways ({overflow} px hidden)"
                    assert "live notebook" in slider.locator(".fla-static-note").inner_text()
                    moved += 1
                if name.startswith("06"):
                    # the shipped runs' detections, drawn on the test photos; no training on the page
                    pictures = page.locator("section#detections-side-by-side img")
                    assert pictures.count() >= 1, "06: no detection picture"
                    assert pictures.first.evaluate("i => i.naturalWidth") > 0
                    assert "c2f_fla, all 100 test images" in text
                    assert "GPU_mem" not in text and "box_loss   cls_loss" not in text, "06: a training log on the page"
                    assert "[+0.000, +0.000]" not in text, "06: a quick run's all-zero interval on the page"
                    assert "set by the book's build" in text
                elif name.startswith("02"):
                    assert sliders.count() >= 1, f"{name}: no static slider"
                shot = tmp_path / f"book-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}; smallest figure scale {smallest[name]:.2f}")
                assert not errors, f"{name}: {errors}"
                page.close()
        finally:
            browser.close()
    assert moved >= 1
