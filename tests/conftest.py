"""Suite-wide guards: the tests run offline, ultralytics never reaches for the network, and one place decides
whether the helmet data is here.

A test that reads the helmet data says so: it takes the ``helmet`` fixture (or one built on it, such as
``helmet_copy``), or carries ``@pytest.mark.needs_data``; without the data it skips, saying how to get it
(``shared_data.NO_DATA``). ``needs_data(optional=True)`` marks a test that runs either way, with the data
when it is here and its no-data path otherwise. ``pytest -m needs_data --no-data`` is the CI lane that
runs all of them with the data hidden: each must pass or skip with that how-to.
"""
from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
from pathlib import Path

import pytest

from fla.yolo.patches import offline_ultralytics

from shared_data import NO_DATA, SHARED, present  # ../shared, else what `make data` fetched

REPO = Path(__file__).resolve().parents[1]

offline_ultralytics()


def load_tool(name: str):
    """A script of tools/ as a module (tools/ is not a package), e.g. ``load_tool("setup_cell")``."""
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost would need DNS: not offline


@pytest.fixture(autouse=True, scope="session")
def _loopback_only():
    """Any connect() to a non-loopback address fails the test that made it."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address):
            raise AssertionError(f"test opened a non-loopback socket to {address!r}")

    def connect(self, address):
        check(self, address)
        return real_connect(self, address)

    def connect_ex(self, address):
        check(self, address)
        return real_connect_ex(self, address)

    socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
    yield
    socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


def pytest_addoption(parser):
    parser.addoption("--no-data", action="store_true",
                     help="the no-data lane: FLA_SHARED and FLA_DATA hold no helmet data, and a test marked needs_data "
                          "that skips for another reason than the missing data fails")


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_data(optional=False): reads the helmet data; skips without it, saying "
                                       "how to get it (optional=True: runs its no-data path instead)")
    if config.getoption("no_data") and (present() or os.environ.get("FLA_DATA")):
        raise pytest.UsageError(f"--no-data: the helmet data is within reach (FLA_SHARED={SHARED}, "
                                f"FLA_DATA={os.environ.get('FLA_DATA', '')}): point FLA_SHARED at an empty folder, unset FLA_DATA")


def pytest_collection_modifyitems(config, items):
    for item in items:  # a test that takes the data fixture needs the data, marked or not
        if "helmet" in item.fixturenames and item.get_closest_marker("needs_data") is None:
            item.add_marker(pytest.mark.needs_data)


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("needs_data")
    if marker is not None and not marker.kwargs.get("optional") and not present():
        pytest.skip(NO_DATA)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In the no-data lane, a data test that skips must skip for want of the data, saying how to get it."""
    report = (yield).get_result()
    if (report.skipped and item.config.getoption("no_data") and item.get_closest_marker("needs_data") is not None
            and isinstance(report.longrepr, tuple) and NO_DATA not in report.longrepr[2]):
        report.outcome = "failed"
        report.longrepr = f"skipped without the how-to of the missing data ({report.longrepr[2]}); expected: {NO_DATA}"


@pytest.fixture(scope="session")
def helmet():
    """The shared helmet subset's folder (read only: copy it before training on it); skips without the data."""
    if not present():
        pytest.skip(NO_DATA)
    return SHARED / "data" / "helmet"


@pytest.fixture(scope="module")
def monkeypatch_module():
    """``monkeypatch`` for module-scoped fixtures."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def helmet_copy(helmet, tmp_path_factory):
    """data.yaml of a small writable helmet copy, 8 images per split (helpers.small_helmet)."""
    from helpers import small_helmet

    return small_helmet(tmp_path_factory.mktemp("helmet"))


@pytest.fixture(scope="session")
def trained_base(helmet_copy, tmp_path_factory):
    """best.pt of the YOLOv8n base after ``fla train --quick`` (one epoch at imgsz 160 on ``helmet_copy``)."""
    from fla.cli import main

    out = tmp_path_factory.mktemp("base")
    assert main(["train", "--quick", "--variants", "base", "--data", str(helmet_copy), "--out", str(out)]) == 0
    (best,) = out.glob("base-*/weights/best.pt")
    return best

