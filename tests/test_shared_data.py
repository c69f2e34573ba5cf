"""`make data` (tests/shared_data.py): a newcomer without ../shared gets the helmet data once, or a how-to.

Offline like test_data.py: the raw files in ../shared/data/helmet-source are served on 127.0.0.1
in place of the carrier host, and a closed loopback port stands in for no network.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import REPO, SHARED
from helpers import serve
from shared_data import present

SCRIPT = REPO / "tests" / "shared_data.py"


def make_data(shared: Path, base_url: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "FLA_SHARED": str(shared), "no_proxy": "127.0.0.1,localhost"}
    return subprocess.run([sys.executable, str(SCRIPT), "--base-url", base_url, *extra],
                          env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture
def host():
    with serve(SHARED / "data" / "helmet-source") as server:
        yield server, server.url


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` but ultralytics' label caches."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and p.suffix != ".cache"}


@pytest.mark.slow
@pytest.mark.needs_data
def test_make_data_fetches_the_shared_folders_once(host, tmp_path):
    server, url = host
    shared = tmp_path / "shared"
    done = make_data(shared, url)
    assert done.returncode == 0, done.stderr
    assert present(shared), done.stdout
    assert len(server.requests) == 600  # 300 images + 300 source labels, each once
    assert tree(shared / "data" / "helmet-source") == tree(SHARED / "data" / "helmet-source")
    ours, theirs = (tree(root / "data" / "helmet") for root in (shared, SHARED))
    subset = {k for k in theirs if k.startswith(("images/", "labels/"))}
    assert len(subset) == 600 and subset == {k for k in ours if k.startswith(("images/", "labels/"))}
    for k in sorted(subset):  # images byte for byte, labels as numbers (as test_data.py compares them)
        if k.startswith("images/"):
            assert ours[k] == theirs[k], k
        else:
            np.testing.assert_array_equal(np.loadtxt(ours[k].splitlines(), ndmin=2),
                                          np.loadtxt(theirs[k].splitlines(), ndmin=2), err_msg=k)
    assert done.stdout.strip().splitlines()[-1] == f"helmet data: {shared / 'data' / 'helmet'}"
    assert "path" not in yaml.safe_load((shared / "data" / "helmet" / "data.yaml").read_text())  # copies stay self-contained

    again = make_data(shared, url)
    assert again.returncode == 0 and len(server.requests) == 600  # present: no request at all
    assert again.stdout.strip() == f"helmet data: {shared}/data"


def test_without_network_make_data_gives_up_fast_and_says_how(tmp_path):
    with socket.socket() as s:  # a port nobody listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    t0 = time.perf_counter()
    done = make_data(tmp_path / "shared", url, "--timeout", "3")
    assert time.perf_counter() - t0 < 30  # interpreter start + the refused connect
    assert done.returncode == 0  # `make test` goes on; the tests that need the data skip
    assert "127.0.0.1 not reachable" in done.stdout and "make data" in done.stdout
    assert not (tmp_path / "shared").exists()


PROBE = """
import pytest

@pytest.mark.needs_data
def test_reads_the_data():
    raise AssertionError("ran without the data")

@pytest.mark.needs_data(optional=True)
def test_skips_for_another_reason():
    pytest.skip("no GPU")

@pytest.mark.needs_data(optional=True)
def test_has_a_no_data_path():
    pass

def test_takes_the_fixture(helmet):
    raise AssertionError("ran without the data")

def test_of_something_else():  # not in the lane
    pass
"""


@pytest.mark.slow
def test_a_test_skipped_for_want_of_data_says_how_to_get_it(tmp_path):
    """The no-data lane (.ci/run: ``-m needs_data --no-data``): every data test skips with the how-to or passes;
    one that skips for another reason fails the lane."""
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {**os.environ, "FLA_SHARED": str(tmp_path / "none"), "PYTHONPATH": str(REPO / "tests")}
    env.pop("FLA_DATA", None)
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "conftest", "-m", "needs_data", "--no-data", "-q", "-rs",
                           "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    skips = [line for line in done.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skips) == 1 and "[2]" in skips[0], done.stdout  # the test marked, the test taking the fixture
    assert "make data" in skips[0] and str(tmp_path / "none") in skips[0], done.stdout
    summary = done.stdout.strip().splitlines()[-1]
    assert done.returncode == 1 and summary.startswith("1 failed, 1 passed, ") and "deselected" in summary, done.stdout
    assert "_ test_skips_for_another_reason _" in done.stdout and "(Skipped: no GPU)" in done.stdout, done.stdout
