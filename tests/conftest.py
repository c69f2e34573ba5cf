"""Suite-wide guards: the tests run offline, and ultralytics never reaches for the network."""
from __future__ import annotations

import importlib.util
import ipaddress
import os
import socket
from pathlib import Path

import pytest

from fla.env import offline_ultralytics

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FLA_SHARED", REPO.parent / "shared"))

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
