"""fla.data: the three ways to the helmet subset, checked against the prepared copy in ../shared.

The download is tested for real but offline: ../shared/data/helmet-source is laid out like the
raw-file host at the pinned commit, so an http.server on 127.0.0.1 stands in for it.
"""
from __future__ import annotations

import http.server
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import fla.data as D
from fla.data import DataError, get_data, resolve_data

from conftest import REPO, SHARED
from helpers import QuietHandler, serve

PREPARED = SHARED / "data" / "helmet"
SOURCE = SHARED / "data" / "helmet-source"


class Host(QuietHandler):
    """Serves helmet-source; records each GET, can corrupt chosen files or fail after k requests."""

    def do_GET(self):
        server = self.server
        with server.lock:
            server.requests.append(self.path)
            failing = server.fail_after is not None and len(server.requests) > server.fail_after
        if failing:
            self.send_error(503)
            return
        if self.path.lstrip("/") in server.corrupt:
            body = bytearray((SOURCE / self.path.lstrip("/")).read_bytes())
            body[len(body) // 2] ^= 0xFF
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        http.server.SimpleHTTPRequestHandler.do_GET(self)


@pytest.fixture
def host(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")  # a proxy setting must not capture loopback
    with serve(SOURCE, Host) as server:
        server.fail_after, server.corrupt = None, set()
        yield server


def files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for sub in ("images", "labels") for p in (root / sub).rglob("*")
            if p.is_file()}


def assert_same_subset(root: Path):
    """Images byte-identical to the prepared copy, labels equal as numbers, no other files."""
    assert files(root) == files(PREPARED)
    for rel in sorted(files(PREPARED)):
        got, want = root / rel, PREPARED / rel
        if rel.startswith("images/"):
            assert got.read_bytes() == want.read_bytes(), rel
        else:
            np.testing.assert_array_equal(np.loadtxt(got, ndmin=2), np.loadtxt(want, ndmin=2), err_msg=rel)


def assert_no_partial(root: Path):
    assert not [p for p in root.rglob("*.part")]


def test_remap_labels_swaps_classes_drops_person_keeps_text():
    src = "0 0.5 0.25 0.1 0.2\n2 0.1 0.1 0.1 0.1\n1 0.30000000000000004 0.4 0.05 0.06\n"
    assert D.remap_labels(src) == "1 0.5 0.25 0.1 0.2\n0 0.30000000000000004 0.4 0.05 0.06\n"


def test_manifest_lists_100_per_split_with_hashes():
    for split in D.SPLITS:
        entries = D.manifest(split)
        assert len(entries) == 100
        assert all(len(e[k]) == 64 for e in entries for k in ("sha256", "sha256_label_src", "sha256_label"))


@pytest.mark.slow
@pytest.mark.needs_data
def test_download_equals_prepared(host, tmp_path):
    out = tmp_path / "helmet"
    yaml_path = get_data(out=out, base_url=host.url, progress=False)
    assert yaml_path == out.resolve() / "data.yaml"
    assert_same_subset(out)
    assert_no_partial(out)
    assert len(host.requests) == 600  # exactly the listed files: 300 images + 300 source labels
    cfg = yaml.safe_load(yaml_path.read_text())
    assert Path(cfg["path"]).is_absolute() and Path(cfg["path"]) == out.resolve()
    assert cfg["names"] == {0: "helmet", 1: "head"}
    # a second call verifies the files and touches no network
    assert get_data(out=out, base_url=host.url, progress=False) == yaml_path
    assert len(host.requests) == 600


@pytest.mark.slow
@pytest.mark.needs_data
def test_ultralytics_accepts_data_yaml(host, tmp_path):
    from ultralytics.data.utils import check_det_dataset

    yaml_path = get_data(out=tmp_path / "helmet", base_url=host.url, progress=False)
    data = check_det_dataset(str(yaml_path), autodownload=False)
    assert data["nc"] == 2 and data["names"] == {0: "helmet", 1: "head"}
    assert Path(data["train"]) == tmp_path.resolve() / "helmet" / "images" / "train"
    assert Path(data["test"]) == tmp_path.resolve() / "helmet" / "images" / "test"  # the held-out split


@pytest.mark.slow
@pytest.mark.needs_data
def test_corrupted_file_is_named_and_nothing_left_behind(host, tmp_path):
    bad = D.manifest("val")[7]["source"]
    host.corrupt.add(bad)
    out = tmp_path / "helmet"
    with pytest.raises(DataError, match=Path(bad).name):
        get_data(out=out, base_url=host.url, progress=False)
    assert not (out / "images" / "val" / Path(bad).name).exists()
    assert not (out / "data.yaml").exists()
    assert_no_partial(out)


@pytest.mark.slow
@pytest.mark.needs_data
def test_interrupted_download_resumes_without_refetching(host, tmp_path):
    out = tmp_path / "helmet"
    host.fail_after = 150
    with pytest.raises(DataError, match="HTTP 503"):
        get_data(out=out, base_url=host.url, progress=False)
    have = files(out)
    assert 0 < len(have) < 600 and not (out / "data.yaml").exists()
    assert_no_partial(out)

    host.fail_after, host.requests = None, []
    get_data(out=out, base_url=host.url, progress=False)
    assert_same_subset(out)
    fetched = {Path(p).name for p in host.requests}
    assert len(host.requests) == 600 - len(have)
    assert not fetched & {Path(p).name for p in have if p.startswith("images/")}


def test_offline_download_fails_fast_with_how_to(tmp_path, monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    with socket.socket() as s:  # a port nobody listens on: connection refused, as offline
        s.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(DataError, match="python -m fla data get --out DIR --from"):
        get_data(out=tmp_path / "helmet", base_url=url, progress=False)


def test_missing_folder_says_how_to_get_the_data(tmp_path, monkeypatch):
    missing = tmp_path / "nope"
    with pytest.raises(DataError, match=r"(?s)nope.*python -m fla data get"):
        resolve_data(missing)
    monkeypatch.setenv("FLA_DATA", str(missing))
    with pytest.raises(DataError, match=r"(?s)FLA_DATA.*python -m fla data get"):
        resolve_data()
    with pytest.raises(DataError, match="python -m fla data get"):
        get_data(source=missing)


@pytest.mark.needs_data
def test_way2_prepared_folder_is_verified_and_used_in_place(tmp_path, monkeypatch):
    assert get_data(source=PREPARED) == PREPARED.resolve() / "data.yaml"
    monkeypatch.setenv("FLA_DATA", str(PREPARED))
    assert resolve_data() == PREPARED.resolve() / "data.yaml"
    assert resolve_data(PREPARED / "data.yaml") == PREPARED.resolve() / "data.yaml"

    copy = tmp_path / "copy"
    get_data(out=copy, source=PREPARED, progress=False)
    assert_same_subset(copy)

    tampered = tmp_path / "tampered"
    shutil.copytree(PREPARED, tampered)
    label = sorted((tampered / "labels" / "train").iterdir())[3]
    label.write_text(label.read_text().replace("0 ", "1 ", 1))
    with pytest.raises(DataError, match=label.name):
        get_data(source=tampered)


@pytest.mark.needs_data
def test_way3_full_export_builds_the_subset(tmp_path):
    export = SOURCE / "Hard-Hat-Workers-1"
    out = tmp_path / "helmet"
    assert get_data(out=out, source=export, progress=False) == out.resolve() / "data.yaml"
    assert_same_subset(out)

    partial = tmp_path / "partial"
    shutil.copytree(export, partial)
    gone = sorted((partial / "valid" / "images").iterdir())[0]
    gone.unlink()
    with pytest.raises(DataError, match=gone.name):
        get_data(out=tmp_path / "other", source=partial, progress=False)


@pytest.mark.slow
@pytest.mark.needs_data
def test_cli_prints_data_yaml_path_last(host, tmp_path):
    env = {**os.environ, "no_proxy": "127.0.0.1,localhost"}
    out = tmp_path / "helmet"
    run = subprocess.run([sys.executable, "-m", "fla", "data", "get", "--out", str(out), "--base-url", host.url],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert Path(run.stdout.strip().splitlines()[-1]) == out.resolve() / "data.yaml"
    assert_same_subset(out)

    run = subprocess.run([sys.executable, "-m", "fla", "data", "get", "--from", str(tmp_path / "nope")],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 2  # a bad path: one line, see tests/test_bad_input.py
    assert run.stderr.strip().splitlines() == [f"fla data: error: --from {tmp_path / 'nope'}: no such folder (see fla data --help)"]


@pytest.mark.slow
@pytest.mark.needs_data
def test_resolve_data_defaults_to_the_cache(host, tmp_path, monkeypatch):
    monkeypatch.delenv("FLA_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    yaml_path = get_data(out=D.cache_dir(), base_url=host.url, progress=False)
    assert yaml_path == tmp_path.resolve() / "fla" / "helmet" / "data.yaml"
    assert resolve_data() == yaml_path  # complete cache: verified, nothing fetched (the default host is unreachable here)
    assert len(host.requests) == 600
