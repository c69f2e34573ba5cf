"""A learner's path through notebooks 01-03 in a real browser: JupyterLab, Run menu, move each slider.

JupyterLab is started here on 127.0.0.1 with isolated JUPYTER_* dirs; Debian's chromium is driven
by Playwright through ``executable_path`` (``playwright install`` would download a browser). The
host-resolver rule leaves chromium nothing but 127.0.0.1 to talk to.
"""
from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port
from jupyter_env import isolated_jupyter_env

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = [REPO / "notebooks" / f"{name}.ipynb" for name in ("01-complexity", "02-focusing", "03-rank")]
NOTEBOOK = NOTEBOOKS[1]
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _get(url: str):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
            value = None  # server still starting, or a transient 500
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on 127.0.0.1 serving copies of notebooks 01-03 (autosave must not touch the repo); one server for all."""
    tmp_path = tmp_path_factory.mktemp("lab")
    root = tmp_path / "root"
    root.mkdir()
    for nb in NOTEBOOKS:
        shutil.copy(nb, root / nb.name)
    env = isolated_jupyter_env(tmp_path / "jupyter")
    port, token = free_port(), secrets.token_hex(16)
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
        f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={token}",
        "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly", "--allow-root",
    ]  # fmt: skip
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen(cmd, env=env, cwd=root, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until(lambda: proc.poll() is None and _get(f"{base}/api/status?token={token}"), 120, "JupyterLab to answer")
        yield {"base": base, "token": token, "log": tmp_path / "jupyterlab.log"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _shutdown_kernels(base: str, token: str):
    """Stop the kernels an earlier test left on the shared server: 'an idle kernel with a connection' must be this page's."""
    for k in _get(f"{base}/api/kernels?token={token}"):
        req = urllib.request.Request(f"{base}/api/kernels/{k['id']}?token={token}", method="DELETE")
        urllib.request.urlopen(req, timeout=30).close()
    _wait_until(lambda: not _get(f"{base}/api/kernels?token={token}"), 60, "the old kernels to stop")


def _drag_in_jupyterlab(lab, shot, name, slider_label, fraction, shows):
    """A learner's path: open notebook ``name``, Run All, drag the slider labelled ``slider_label`` to ``fraction``
    of its track. A drag updates the view at every step, so wait until the view's text shows the value the slider
    ends on (``shows(readout)`` is how the text starts then). Returns (text before, readout after, text after)."""
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    base, token = lab["base"], lab["token"]

    def kernel_ready():
        kernels = _get(f"{base}/api/kernels?token={token}")
        return any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels)

    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        try:
            _shutdown_kernels(base, token)
            # a workspace of its own: the shared server would otherwise reopen the notebooks of earlier tests beside it
            page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            _wait_until(kernel_ready, 120, "an idle kernel with a connection")
            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            view_text = page.locator(".fla-view-text").first
            view_text.wait_for(timeout=240_000)  # the notebook has run up to the widget
            _wait_until(kernel_ready, 240, "Run All to finish")  # it scrolls the notebook while cells run
            view_text.scroll_into_view_if_needed()  # JupyterLab renders the cells in view only
            before = _wait_until(lambda: view_text.inner_text().strip(), 30, "the view's text")

            slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(f"^{re.escape(slider_label)}$")))
            handle = slider.locator(".noUi-handle")
            handle.scroll_into_view_if_needed()  # boxes are viewport coordinates: off screen, the drag misses
            track, grip = slider.locator(".noUi-target").bounding_box(), handle.bounding_box()
            page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] + fraction * track["width"], grip["y"] + grip["height"] / 2, steps=8)
            page.mouse.up()

            readout = slider.locator(".widget-readout")
            _wait_until(lambda: view_text.inner_text().strip().startswith(shows(readout.inner_text().strip())), 60,
                        "the view to show the slider's last value")
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            return before, readout.inner_text().strip(), view_text.inner_text().strip()
        finally:
            browser.close()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_p_slider_updates_the_view_in_jupyterlab(lab, tmp_path):
    from fla.course.tokens import image_tokens, load_image
    from fla.course.views import focusing_view

    before, value, shown = _drag_in_jupyterlab(lab, tmp_path / "browser-02-focusing.png", NOTEBOOK.name, "p", 0.72,
                                               lambda v: f"p = {float(v):.2f} ")
    p = float(value)
    assert before.startswith("p = 3.00 ") and p != 3.0
    expected = focusing_view(image_tokens(load_image()), p, (7, 7), "focused")
    numbers = [float(x) for x in re.findall(r"\d+\.\d{3}", shown)]
    wanted = [expected.entropy["focused"], *(expected.entropy[k] for k in ("softmax", "linear", "focused"))]
    assert shown.startswith(f"p = {p:.2f} · query (7, 7) · focused entropy"), shown
    assert numbers == pytest.approx(wanted, abs=2e-3), (shown, expected.text)  # same callback, another process


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("name,label,fraction,prefix", [
    ("01-complexity.ipynb", "head size d", 0.05, "d = "),     # to the smallest head: the crossover moves left
    ("03-rank.ipynb", "DWC strength t", 0.95, "t = "),        # to the strongest DWC: rank and effective rank rise
])
def test_each_slider_moves_its_view_in_jupyterlab(lab, tmp_path, name, label, fraction, prefix):
    before, value, after = _drag_in_jupyterlab(lab, tmp_path / f"browser-{Path(name).stem}.png", name, label, fraction,
                                               lambda v: f"{prefix}{v}:")
    assert before.startswith(prefix) and after.startswith(f"{prefix}{value}:"), (before, value, after)
    assert value != before[len(prefix):].split(":")[0] and after != before
