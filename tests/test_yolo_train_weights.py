"""``fla train --weights PATH``: every variant starts from a pretrained checkpoint through fla.yolo.transfer."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import fla.experiments.training as T
from fla.cli import main

from helpers import HELMET, closed_port, serve

pytestmark = pytest.mark.needs_data


@pytest.mark.slow
def test_train_weights_option_transfers_and_prints_the_count(helmet_copy, trained_base, tmp_path, capfd):
    out = tmp_path / "ft"
    code = main(["train", "--quick", "--variants", "neck_fla", "--data", str(helmet_copy), "--out", str(out),
                 "--weights", str(trained_base)])
    assert code == 0
    logged = capfd.readouterr()
    n, total = map(int, re.search(r"fla: transferred (\d+)/(\d+) tensors", logged.out + logged.err).groups())
    print(f"fla train --weights (neck_fla): {n}/{total}")
    assert 0 < n < total  # the attention's own tensors are new


def test_train_weights_option_refuses_a_missing_file(tmp_path, capsys):
    assert main(["train", "--quick", "--data", str(HELMET), "--out", str(tmp_path), "--weights", str(tmp_path / "no.pt")]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err


@pytest.fixture
def weights_host(tmp_path, trained_base, monkeypatch):
    """A loopback HTTP host serving ``yolov8n.pt`` (a real checkpoint: the trained base) and a 10-byte ``yolo11n.pt``;
    the requests it answered are in ``.requests``."""
    root = tmp_path / "host"
    root.mkdir()
    (root / "yolov8n.pt").write_bytes(trained_base.read_bytes())
    (root / "yolo11n.pt").write_bytes(b"not a file")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.chdir(tmp_path)  # no yolov8n.pt in the current folder
    with serve(root) as server:
        yield server


@pytest.mark.slow
def test_pretrained_downloads_once_then_uses_the_local_copy(weights_host, trained_base, tmp_path):
    folder, lines = tmp_path / "weights", []
    path = T.pretrained("yolov8n.pt", base_url=weights_host.url, folder=folder, log=lines.append)
    assert path == folder / "yolov8n.pt" and path.read_bytes() == trained_base.read_bytes()
    assert weights_host.requests == ["/yolov8n.pt"] and "downloaded" in lines[0]
    assert [p.name for p in folder.iterdir()] == ["yolov8n.pt"]  # no partial file left
    assert T.pretrained("yolov8n.pt", base_url=weights_host.url, folder=folder) == path
    assert weights_host.requests == ["/yolov8n.pt"]  # the second call read the disk


@pytest.mark.slow
@pytest.mark.parametrize("case", ["offline", "404", "too small"])
def test_pretrained_is_none_with_a_reason_when_it_cannot_be_had(weights_host, tmp_path, case):
    url = closed_port() if case == "offline" else weights_host.url
    name = {"offline": "yolov8n.pt", "404": "yolov8s.pt", "too small": "yolo11n.pt"}[case]
    lines = []
    assert T.pretrained(name, base_url=url, folder=tmp_path / "w", log=lines.append) is None
    assert len(lines) == 1 and name in lines[0]
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_pretrained_refuses_a_name_ultralytics_does_not_publish(tmp_path):
    with pytest.raises(T.NotACheckpointName, match="not an ultralytics checkpoint name"):
        T.pretrained("yolov8n-fla.pt", folder=tmp_path)


def test_train_weights_option_says_when_a_checkpoint_name_cannot_be_downloaded(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(T.download, "PRETRAINED_URL", closed_port())
    monkeypatch.chdir(tmp_path)
    from ultralytics.utils import SETTINGS

    if (Path(SETTINGS["weights_dir"]) / "yolov8s.pt").is_file():
        pytest.skip("yolov8s.pt is on this machine")
    assert main(["train", "--quick", "--data", str(HELMET), "--out", str(tmp_path), "--weights", "yolov8s.pt"]) == 2
    err = capsys.readouterr().err
    assert "could not download" in err and "not available" in err and "Traceback" not in err
