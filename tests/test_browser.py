"""A learner's path through notebook 02 in a real browser: JupyterLab, Run menu, move the p slider.

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
NOTEBOOK = REPO / "notebooks" / "02-focusing.ipynb"
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


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 serving a copy of notebook 02 (autosave must not touch the repo)."""
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
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


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_p_slider_updates_the_view_in_jupyterlab(lab, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install -y chromium)")
    playwright = pytest.importorskip("playwright.sync_api")

    from fla.course.tokens import image_tokens, load_image
    from fla.course.views import focusing_view

    base, token = lab["base"], lab["token"]

    def kernel_ready():
        kernels = _get(f"{base}/api/kernels?token={token}")
        return any(k["execution_state"] == "idle" and k["connections"] > 0 for k in kernels)

    with playwright.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1500, "height": 1000})
        try:
            page.goto(f"{base}/lab/tree/{NOTEBOOK.name}?token={token}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            _wait_until(kernel_ready, 120, "an idle kernel with a connection")

            page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
            page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()

            view_text = page.locator(".fla-view-text")
            view_text.wait_for(timeout=240_000)  # the whole notebook has run, up to the widget
            assert view_text.inner_text().startswith("p = 3.00 ")

            _wait_until(kernel_ready, 120, "Run All to finish")  # it scrolls the notebook while cells run

            slider = page.locator(".widget-slider", has=page.locator(".widget-label", has_text=re.compile(r"^p$")))
            handle = slider.locator(".noUi-handle")
            handle.scroll_into_view_if_needed()  # boxes are viewport coordinates: off screen, the drag misses
            track = slider.locator(".noUi-target").bounding_box()
            grip = handle.bounding_box()
            page.mouse.move(grip["x"] + grip["width"] / 2, grip["y"] + grip["height"] / 2)
            page.mouse.down()
            page.mouse.move(track["x"] + 0.72 * track["width"], grip["y"] + grip["height"] / 2, steps=8)
            page.mouse.up()

            readout = slider.locator(".widget-readout")
            _wait_until(lambda: readout.inner_text().strip() != "3.00", 30, "the readout to leave 3.00")
            p = float(readout.inner_text())
            page.wait_for_function(
                "p => [...document.querySelectorAll('.fla-view-text')].some(e => e.innerText.startsWith(p))",
                arg=f"p = {p:.2f} ",
                timeout=60_000,
            )
            shown = view_text.inner_text().strip()
            shot = tmp_path / "browser-02-focusing.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        finally:
            browser.close()

    expected = focusing_view(image_tokens(load_image()), p, (7, 7), "focused")
    numbers = [float(x) for x in re.findall(r"\d+\.\d{3}", shown)]
    wanted = [expected.entropy["focused"], *(expected.entropy[k] for k in ("softmax", "linear", "focused"))]
    assert shown.startswith(f"p = {p:.2f} · query (7, 7) · focused entropy"), shown
    assert numbers == pytest.approx(wanted, abs=2e-3), (shown, expected.text)  # same callback, another process
    assert p != 3.0
