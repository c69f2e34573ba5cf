"""The pieces every experiment shares: the resumable sweep, the device picker and thread switch, the data.yaml reader."""
from __future__ import annotations

import json
import math
import os

import pytest
import torch

from fla.data import DataError
from fla.experiments.sweep import SETTINGS, SettingsClash, Sweep
from fla.files import markdown_table, read_csv
from fla.runtime import pick_device, torch_threads, ultralytics_device

COLUMNS = {"name": str, "seed": int, "score": float}


def _sweep(out, settings=None, **kwargs) -> Sweep:
    return Sweep(out, "runs", COLUMNS, ("name", "seed"), settings or {"steps": 10},
                 summary=lambda rows: f"{len(rows)} rows\n", **kwargs)


def _score(name: str, seed: int) -> dict:
    """One run (top level: it pickles for the worker processes)."""
    return {"name": name, "seed": seed, "score": seed / 10 + len(name), "pid": os.getpid()}


def test_rows_are_written_typed_after_each_run_and_read_back(tmp_path):
    runs = _sweep(tmp_path)
    runs.run([(("a", s), ("a", s)) for s in (0, 1)], _score)
    assert read_csv(tmp_path / "runs.csv", COLUMNS) == [{"name": "a", "seed": 0, "score": 1.0},
                                                        {"name": "a", "seed": 1, "score": 1.1}]
    assert (tmp_path / "runs.md").read_text() == "2 rows\n"
    assert _sweep(tmp_path).rows == [{k: r[k] for k in COLUMNS} for r in runs.rows]  # a new sweep reads them
    assert not list(tmp_path.glob(".*.part"))  # written whole, no temp file left


def test_done_runs_are_skipped_and_said_so(tmp_path):
    _sweep(tmp_path).run([(("a", 0), ("a", 0))], _score)
    calls, lines = [], []

    def one(name, seed):
        calls.append((name, seed))
        return _score(name, seed)

    runs = _sweep(tmp_path)
    runs.run([(("a", s), ("a", s)) for s in (0, 1)], one, log=lines.append)
    assert calls == [("a", 1)] and lines == [f"1 of 2 runs already in {tmp_path / 'runs.csv'}: skipped"]
    assert [r["seed"] for r in runs.select([("a", 1), ("a", 0), ("b", 0)])] == [1, 0]


def test_an_incomplete_row_runs_again_and_is_replaced(tmp_path):
    runs = _sweep(tmp_path, complete=lambda row: math.isfinite(row["score"]))
    runs.record({"name": "a", "seed": 0, "score": math.nan})
    assert not runs.finished(("a", 0))
    runs.run([(("a", 0), ("a", 0))], _score)
    assert runs.rows == [{"name": "a", "seed": 0, "score": 1.0, "pid": os.getpid()}]
    assert runs.finished(("a", 0))


def test_one_setting_per_folder_claimed_by_the_first_row(tmp_path):
    _sweep(tmp_path, {"steps": 10, "lr": [1, 2]}).run([], _score)
    assert not (tmp_path / SETTINGS).exists()  # nothing ran: no claim, a later sweep may take the folder
    first = _sweep(tmp_path, {"steps": 10, "lr": (1, 2)})
    first.record(_score("a", 0))
    assert json.loads((tmp_path / SETTINGS).read_text()) == {"steps": 10, "lr": [1, 2]}  # tuples as JSON lists
    _sweep(tmp_path, {"steps": 10, "lr": [1, 2]})  # the same settings again
    with pytest.raises(SettingsClash, match="other settings for steps .*use another --out"):
        _sweep(tmp_path, {"steps": 20})
    _sweep(tmp_path, {"other": 1}).record(_score("b", 0))  # a new name joins the recorded ones
    assert json.loads((tmp_path / SETTINGS).read_text()) == {"steps": 10, "lr": [1, 2], "other": 1}


def test_an_interrupted_sweep_keeps_the_rows_before_the_interruption(tmp_path):
    def one(name, seed):
        if seed == 1:
            raise KeyboardInterrupt
        return _score(name, seed)

    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path).run([(("a", s), ("a", s)) for s in (0, 1, 2)], one)
    assert [r["seed"] for r in read_csv(tmp_path / "runs.csv", COLUMNS)] == [0]


def test_parallel_runs_happen_in_worker_processes_and_are_all_recorded(tmp_path):
    runs = _sweep(tmp_path)
    after = []
    runs.run([(("p", s), ("p", s)) for s in range(4)], _score, jobs=2, after=after.append)
    assert sorted(r["seed"] for r in runs.rows) == [0, 1, 2, 3] and len(after) == 4
    assert all(r["pid"] != os.getpid() for r in runs.rows)


@pytest.mark.slow
def test_a_progress_bar_does_not_turn_the_command_lines_fork_into_spawn(tmp_path):
    """fork from a single-threaded process (fast); tqdm's monitor thread, started by the bar, must not count."""
    import subprocess
    import sys

    script = (
        "import multiprocessing, fla.experiments.sweep as S\n"
        "seen = []\n"
        "real = multiprocessing.get_context\n"
        "S.multiprocessing = type('M', (), {'get_context': staticmethod(lambda m: seen.append(m) or real(m))})\n"
        "from fla.experiments.sweep import Sweep\n"
        f"runs = Sweep({str(tmp_path)!r}, 'runs', {{'name': str, 'seed': int, 'score': float}}, ('name', 'seed'), {{}}, str)\n"
        "runs.run([(('a', s), ({'name': 'a', 'seed': s, 'score': 1.0},)) for s in range(2)], dict, jobs=2, progress=True)\n"
        "print(seen)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "['fork']", out.stdout


def test_markdown_table():
    assert markdown_table(["a", "b"], [[1, "x"]], numeric=True) == "| a | b |\n|---|---:|\n| 1 | x |"


def test_read_csv_types_and_missing_columns(tmp_path):
    (tmp_path / "r.csv").write_text("name,seed\nx,3\n")
    (row,) = read_csv(tmp_path / "r.csv", COLUMNS)  # a float column the file lacks reads as NaN
    assert (row["name"], row["seed"]) == ("x", 3) and math.isnan(row["score"])
    with pytest.raises(ValueError, match="column 'absent' is empty or missing"):
        read_csv(tmp_path / "r.csv", {"absent": str})
    assert read_csv(tmp_path / "none.csv", COLUMNS) == []


# --- device and threads -------------------------------------------------------------------------


def test_pick_device():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device() == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert ultralytics_device(torch.device("cpu")) == "cpu" and ultralytics_device(torch.device("cuda:1")) == "1"
    if not torch.cuda.is_available():
        for gpu in ("cuda", "0", "cuda:1"):
            with pytest.raises(ValueError, match="torch sees none"):
                pick_device(gpu)


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
        with torch_threads(None):
            torch.set_num_threads(2)  # what ultralytics does inside a training run
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


# --- the data.yaml reader -----------------------------------------------------------------------


def _dataset(root, yaml_text: str):
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True, exist_ok=True)
        (root / "labels" / split).mkdir(parents=True, exist_ok=True)
    (root / "images" / "val" / "a.jpg").write_bytes(b"")
    (root / "labels" / "val" / "a.txt").write_text("1 0.5 0.5 0.2 0.2\n")
    (root / "data.yaml").write_text(yaml_text)
    return root / "data.yaml"


def test_data_yaml_splits_resolve_as_ultralytics_resolves_them(tmp_path, monkeypatch):
    from ultralytics.data.utils import check_det_dataset

    from fla.yolo.datasets import has_split, label_path, read_data, split_images

    beside = _dataset(tmp_path / "beside", "train: images/train\nval: images/val\nnames: {0: helmet, 1: head}\n")
    assert split_images(beside, "val") == [tmp_path / "beside" / "images" / "val" / "a.jpg"]
    assert label_path(split_images(beside, "val")[0]) == tmp_path / "beside" / "labels" / "val" / "a.txt"
    assert read_data(beside)["names"] == {0: "helmet", 1: "head"} and not has_split(beside, "test")
    # a relative path: is taken from the current folder, as the trainer takes it (not from the yaml's folder)
    relative = _dataset(tmp_path / "rel", "path: rel\ntrain: images/train\nval: images/val\nnames: {0: a}\n")
    monkeypatch.chdir(tmp_path)
    assert split_images(relative, "val")[0] == tmp_path / "rel" / "images" / "val" / "a.jpg"
    assert read_data(relative)["val"] == check_det_dataset(str(relative), autodownload=False)["val"]


@pytest.mark.parametrize("text, message", [
    ("train: [unclosed\n", "data.yaml: "),
    ("val: images/val\nnames: {0: a}\n", "'train:' key missing"),
    ("train: images/train\nval: images/nowhere\nnames: {0: a}\n", "images not found"),
])
def test_a_bad_data_yaml_is_one_line_naming_the_file(tmp_path, text, message):
    from fla.yolo.datasets import read_data

    path = _dataset(tmp_path, text)
    with pytest.raises(DataError, match=message) as error:
        read_data(path)
    assert str(error.value).startswith(str(path)) and "\n" not in str(error.value)
    with pytest.raises(DataError, match="no such file"):
        read_data(tmp_path / "absent.yaml")
