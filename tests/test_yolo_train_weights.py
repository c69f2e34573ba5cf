"""``fla train --weights PATH``: every variant starts from a pretrained checkpoint through fla.yolo.transfer."""
from __future__ import annotations

import re

import pytest
from ultralytics import YOLO

import fla.yolo as Y
from fla.__main__ import main

from yolo_common import HELMET, small_helmet

pytestmark = pytest.mark.skipif(not (HELMET / "data.yaml").is_file(), reason=f"helmet subset not at {HELMET}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return small_helmet(tmp_path_factory.mktemp("helmet"))


@pytest.fixture(scope="module")
def trained_base(data, tmp_path_factory):
    """best.pt of the YOLOv8n base after ``fla train --quick`` (one epoch on 8 photos)."""
    out = tmp_path_factory.mktemp("base")
    assert main(["train", "--quick", "--variants", "base", "--data", str(data), "--out", str(out)]) == 0
    (best,) = (out / "runs").glob("base-*/weights/best.pt")
    return best


def test_train_weights_option_transfers_and_prints_the_count(data, trained_base, tmp_path, capfd):
    out = tmp_path / "ft"
    code = main(["train", "--quick", "--variants", "neck_fla", "--data", str(data), "--out", str(out),
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
