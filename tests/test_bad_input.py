"""Every bad argument, path or file of every verb: exit status 2, one line on stderr that ends with "(see fla VERB
--help)", no traceback, nothing written where the command would write. Checked in this process (``helpers.cli``),
before any long work: none of these cases trains or measures anything."""
from __future__ import annotations

import json

import pytest

from helpers import cli

VALID = "train: images/train\nval: images/val\nnames: {0: helmet, 1: head}\n"


def _setup(root):
    """Inputs the cases point at: files, a folder, data.yaml files good and bad."""
    (root / "a-file").write_text("not a folder\n")
    (root / "a-folder").mkdir()
    (root / "fake.pt").write_text("not a checkpoint\n")
    for name, text in {"corrupt": "train: [unclosed\n", "empty": "", "valid": VALID, "no-val": VALID,
                       "no-train": VALID}.items():
        (root / name).mkdir()
        (root / name / "data.yaml").write_text(text)
        for split in {"valid": ("train", "val"), "no-train": ("val",)}.get(name, ()):
            (root / name / "images" / split).mkdir(parents=True)
            (root / name / "images" / split / "0.jpg").write_bytes(b"\xff\xd8")
    (root / "other-start").mkdir()
    (root / "other-start" / "settings.json").write_text(json.dumps({"start": "yolov8n.pt sha256:0123456789ab"}))


#: (verb and arguments, with {t} for the test's folder) -> the one line's text after "fla VERB: error: "
CASES = [
    ("train --out {t}/a-file --data {t}/valid/data.yaml", "--out {t}/a-file: is a file, not a folder"),
    ("train --out {t}/a-file/runs --data {t}/valid/data.yaml", "--out {t}/a-file/runs: {t}/a-file is a file, so nothing can be written under it"),
    ("train --data {t}/missing", "{t}/missing (from --data): no such file or folder"),
    ("train --data {t}/corrupt/data.yaml", "--data {t}/corrupt/data.yaml: YAML syntax error in '{t}/corrupt/data.yaml': while parsing a flow sequence"),
    ("train --data {t}/empty/data.yaml", "--data {t}/empty/data.yaml: {t}/empty/data.yaml 'train:' key missing ❌"),
    ("train --data {t}/no-val/data.yaml", "--data {t}/no-val/data.yaml: Dataset '{t}/no-val/data.yaml' images not found, missing path '{t}/no-val/images/val'"),
    ("train --data {t}/no-train/data.yaml", "--data {t}/no-train/data.yaml: its train: split {t}/no-train/images/train is not there"),
    ("train --data {t}/valid/data.yaml --weights {t}/fake.pt", "--weights {t}/fake.pt: not a YOLO checkpoint (ERROR ❌️ {t}/fake.pt is not a loadable checkpoint — the file is empty, truncated or corrupted (UnpicklingError: invalid load key, 'n'.))"),
    ("train --data {t}/valid/data.yaml --weights {t}/none.pt", "--weights {t}/none.pt: no such file (nor an ultralytics checkpoint name such as yolov8n.pt)"),
    ("train --data {t}/valid/data.yaml --out {t}/other-start --quick", "{t}/other-start holds runs made with other settings for start (see {t}/other-start/settings.json): use another --out"),
    ("train --seeds -1", "argument --seeds: must be at least 0, got -1"),
    ("train --epochs 0", "argument --epochs: must be at least 1, got 0"),
    ("ablate --tasks nosuch", "--tasks nosuch: choose from retrieval, recall, helmet"),
    ("ablate --jobs 0", "argument --jobs: must be at least 1, got 0"),
    ("ablate --out {t}/a-file", "--out {t}/a-file: is a file, not a folder"),
    ("ablate --tasks helmet --data {t}/corrupt/data.yaml --out {t}/out", "{t}/corrupt/data.yaml: YAML syntax error in '{t}/corrupt/data.yaml': while parsing a flow sequence"),
    ("ablate --quick --out {t}/out", "the helmet task needs the helmet data, and there is none here: get it with `python -m fla data get --out DIR`, then pass --data DIR or set FLA_DATA=DIR; or leave it out: --tasks recall"),
    ("bench --csv {t}/a-file/bench.csv", "--csv {t}/a-file/bench.csv: {t}/a-file is a file, so nothing can be written under it"),
    ("bench --plot {t}/a-folder", "--plot {t}/a-folder: is a folder, not a file"),
    ("bench --repeats 0", "argument --repeats: must be at least 1, got 0"),
    ("models --csv {t}/a-folder", "--csv {t}/a-folder: is a folder, not a file"),
    ("models --imgsz 100", "argument --imgsz: must be a multiple of 32, got 100"),
    ("models --runs 0", "argument --runs: must be at least 1, got 0"),
    ("models --warmup -1", "argument --warmup: must be at least 0, got -1"),
    ("data get --out {t}/a-file", "--out {t}/a-file: is a file, not a folder"),
    ("data get --from {t}/missing --out {t}/out", "--from {t}/missing: no such folder"),
    ("data get --from {t}/a-folder --out {t}/out", "--from {t}/a-folder: neither a prepared helmet folder (images/train, labels/train, ...) nor a Roboflow YOLOv8 export (train/images, valid/images, ...)"),
]


def _files(root):
    """What is under ``root``, but the cache folder (matplotlib keeps its font cache there on first import)."""
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.relative_to(root).parts[0] != "cache")


@pytest.mark.parametrize("command, message", CASES, ids=[c for c, _ in CASES])
def test_a_bad_input_is_one_line_exit_2_and_writes_nothing(command, message, tmp_path, monkeypatch):
    monkeypatch.setenv("FLA_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no earlier download of the data
    _setup(tmp_path)
    before = _files(tmp_path)
    args = command.format(t=tmp_path).split()
    verb = args[0]
    out = cli(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2 and lines == [f"fla {verb}: error: {message.format(t=tmp_path)} (see fla {verb} --help)"], out.stderr
    assert out.stdout == ""
    assert _files(tmp_path) == before  # no output folder, no lock (settings.json), no half-written file


def test_ctrl_c_says_what_was_kept_and_how_to_resume(tmp_path, monkeypatch):
    import fla.experiments.training as T

    _setup(tmp_path)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(T, "train_all", interrupt)
    out = cli("train", "--quick", "--data", tmp_path / "valid" / "data.yaml", "--out", tmp_path / "runs")
    assert out.returncode == 130
    assert out.stderr.strip().splitlines() == [
        f"fla train: interrupted: 0 finished runs kept in {tmp_path / 'runs' / 'results.csv'}; the same command again "
        "resumes (finished runs are skipped, the one cut off starts again)"]
    assert not (tmp_path / "runs").exists()


def test_a_start_that_fails_leaves_no_lock(tmp_path, monkeypatch):
    """A first run that fails (here: at once) leaves no settings.json: the folder is free for any start."""
    import fla.experiments.training as T

    _setup(tmp_path)

    def fail(*args, **kwargs):
        raise RuntimeError("the first run failed")

    monkeypatch.setattr(T.runs, "train_detector", fail)
    with pytest.raises(RuntimeError, match="the first run failed"):
        cli("train", "--quick", "--data", tmp_path / "valid" / "data.yaml", "--out", tmp_path / "runs")
    assert not (tmp_path / "runs" / "settings.json").exists()
