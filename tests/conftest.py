"""Suite-wide guards: the tests run offline, ultralytics never reaches for the network, and a test
skipped for want of the helmet data says how to get it."""
from __future__ import annotations

import importlib.util
import ipaddress
import socket
from pathlib import Path

import pytest

from fla.yolo.patches import offline_ultralytics

from shared_data import HOW_TO, SHARED, present  # ../shared, else what `make data` fetched

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


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test skipped for want of the helmet data says how to get it (the skip reasons name the folder)."""
    report = (yield).get_result()
    if report.skipped and isinstance(report.longrepr, tuple) and str(SHARED) in report.longrepr[2] and not present():
        path, line, reason = report.longrepr
        report.longrepr = (path, line, f"{reason} — {HOW_TO}")


@pytest.fixture(scope="module")
def monkeypatch_module():
    """``monkeypatch`` for module-scoped fixtures."""
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def helmet_copy(tmp_path_factory):
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

