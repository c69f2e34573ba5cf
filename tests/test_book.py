"""The static course (``make book``, tools/book.py) in a real browser, on a subset: notebooks 02 and 03 in quick mode.

The full book executes 01–03 and 05 in full mode (minutes each on 2 cores); its pages are made by the same
code, so CI builds two of the notebooks with sliders and checks what a reader sees: every page loads without a
page error, each notebook page shows its figures, and moving each static slider (with the keyboard) changes
the picture and the numbers under it, and the formulas are typeset by the MathJax the book carries (the
browser reaches nothing but the loopback server, so a CDN's MathJax would leave them as TeX). Chromium is
Debian's, driven by Playwright.
"""
from __future__ import annotations

import pytest
from conftest import load_tool
from helpers import serve
from test_browser import CHROMIUM_FLAGS, _chromium

NOTEBOOKS = ["02", "03"]


@pytest.fixture(scope="module")
def book(tmp_path_factory, monkeypatch_module):
    pytest.importorskip("myst_nb", reason="the book needs the book extra: pip install -e '.[book]'")
    from jupyter_env import isolated_jupyter_env, use_in_this_process

    root = tmp_path_factory.mktemp("book")
    env = isolated_jupyter_env(root / "jupyter")
    use_in_this_process(env, monkeypatch_module, extra=("IPYTHONDIR",))  # the kernel: this interpreter, offline
    out = root / "out"
    assert load_tool("book").main(["--only", *NOTEBOOKS, "--quick", "--out", str(out)]) == 0
    return out / "html"


def test_an_executed_copy_is_redone_when_the_code_or_the_shipped_runs_change(tmp_path):
    key = load_tool("book")._key
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
    assert key(notebook, True, package) not in (first, shipped)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_book_pages_show_figures_and_static_sliders_change_the_picture(book, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")

    pages = sorted(p.name for p in book.glob("[0-9][0-9]-*.html"))
    assert [p[:2] for p in pages] == NOTEBOOKS
    index = (book / "index.html").read_text()
    assert all(p in index for p in pages), "the index links every notebook page"
    assert "prerequisites" in index and "quick mode, executed in" in index

    moved = 0
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
                # figures: images that loaded (a broken src has naturalWidth 0)
                shown = page.eval_on_selector_all("main img", "imgs => imgs.filter(i => !i.hidden && i.naturalWidth > 0).length")
                broken = page.eval_on_selector_all("main img", "imgs => imgs.filter(i => i.complete && i.naturalWidth === 0).length")
                assert shown >= 2 and broken == 0, (name, shown, broken)
                # formulas: MathJax (served from the book's _static, offline) turns \( … \) into mjx-container
                page.wait_for_function("document.querySelectorAll('main mjx-container').length > 0", timeout=30_000)
                assert "\\(" not in page.locator("main").inner_text(), f"{name}: TeX left untypeset"
                sliders = page.locator(".fla-static")
                assert sliders.count() >= 1, f"{name}: no static slider"
                for i in range(sliders.count()):
                    slider = sliders.nth(i)
                    visible = lambda: slider.evaluate(  # noqa: E731
                        "s => [...s.querySelectorAll('.fla-static-frame')].filter(i => !i.hidden).map(i => i.src)")
                    before, text = visible(), slider.locator("pre").inner_text()
                    assert len(before) == 1
                    slider.locator("input[type=range]").focus()
                    page.keyboard.press("End")  # keyboard: the last value of the grid
                    after = visible()
                    assert len(after) == 1 and after != before, f"{name}: the picture did not change"
                    assert slider.locator("pre").inner_text() != text, f"{name}: the numbers did not change"
                    assert slider.locator("output").inner_text() == slider.locator("input").get_attribute("aria-valuetext")
                    moved += 1
                shot = tmp_path / f"book-{name}.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
                assert not errors, f"{name}: {errors}"
                page.close()
        finally:
            browser.close()
    assert moved >= len(NOTEBOOKS)
