"""A result file that does not read back as it was written (cut off by a crash of another tool, edited by hand,
damaged): one line naming the file and how to make it again, exit status 2 from a verb, no traceback, nothing
written. Our own writes cannot cut a file (fla.files writes whole or not at all), so each case is made by hand."""
from __future__ import annotations

import pytest

import fla.experiments.ablation as A
import fla.experiments.training as T
from fla.files import CorruptFile, read_csv, read_json
from fla.results import HERE

from helpers import cli

VALID = "train: images/train\nval: images/val\nnames: {0: helmet, 1: head}\n"
REMAKE = "move it away and run the command that wrote it again, with the same --out, to make it anew"


def _header(columns) -> str:
    return ",".join(columns) + "\n"


#: (file under --out, its damaged text, the problem the line names)
DAMAGE = {
    "cut row": (lambda cols: _header(cols) + "x," * (len(cols) - 1) + "x\n" + "x,y\n",
                lambda cols: f"line 3 has fewer cells than the header's {len(cols)} (cut off or damaged)"),
    "rows run together": (lambda cols: _header(cols) + "x," * (2 * len(cols) - 1) + "x\n",
                          lambda cols: f"line 2 has more cells than the header's {len(cols)} (cut off or damaged)"),
    "empty": (lambda cols: "", lambda cols: "empty, not even a header"),
}
#: verb (with {t}: the test's folder, {out}: the output folder), its result CSV and columns
VERBS = {
    "ablate": ("ablate --quick --tasks recall --out {out}", "ablation.csv", list(A.COLUMNS)),
    "train": ("train --quick --data {t}/data/data.yaml --out {out}", "results.csv", list(T.COLUMNS)),
}


def _data(root):
    """A data.yaml that passes fla train's checks (each split a folder holding an image): nothing trains on it."""
    (root / "data").mkdir()
    (root / "data" / "data.yaml").write_text(VALID)
    for split in ("train", "val"):
        (root / "data" / "images" / split).mkdir(parents=True)
        (root / "data" / "images" / split / "0.jpg").write_bytes(b"\xff\xd8")


def _one_line(res, verb: str) -> str:
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert lines[0].startswith(f"fla {verb}: error: ") and lines[0].endswith(f" (see fla {verb} --help)"), lines[0]
    return lines[0][len(f"fla {verb}: error: "):-len(f" (see fla {verb} --help)")]


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("verb", VERBS)
def test_a_damaged_results_csv_is_one_line_naming_it_and_how_to_remake_it(verb, damage, tmp_path, monkeypatch):
    monkeypatch.setenv("FLA_DATA", "")
    command, name, columns = VERBS[verb]
    text, problem = DAMAGE[damage]
    _data(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / name).write_text(text(columns))
    before = _snapshot(tmp_path)
    message = _one_line(cli(*command.format(t=tmp_path, out=out).split()), verb)
    assert message == f"{out / name}: {problem(columns)}; {REMAKE}"
    assert _snapshot(tmp_path) == before  # the damaged file left as it was, nothing beside it


@pytest.mark.parametrize("verb", VERBS)
def test_a_damaged_settings_json_is_one_line_naming_it(verb, tmp_path, monkeypatch):
    monkeypatch.setenv("FLA_DATA", "")
    command = VERBS[verb][0]
    _data(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    (out / "settings.json").write_text('{"start": "yolov8n.pt sha256:01')  # cut off
    message = _one_line(cli(*command.format(t=tmp_path, out=out).split()), verb)
    assert message.startswith(f"{out / 'settings.json'}: not JSON (Unterminated string") and message.endswith(REMAKE)


def test_a_value_not_of_its_column_type_names_the_line_and_column(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("seed,value\n0,0.5\nl,0.25\n")
    with pytest.raises(CorruptFile) as caught:
        read_csv(path, {"seed": int, "value": float})
    assert str(caught.value) == f"{path}: line 3: column 'seed' holds 'l', not an integer; {REMAKE}"


def test_a_damaged_shipped_file_says_to_restore_it():
    """The shipped runs are package data: the way back is the package, not a rerun of hours of training."""
    for path in (HERE / "ablation" / "ablation.csv", HERE / "helmet-cpu60" / "settings.json"):
        assert str(CorruptFile(path, "x")) == f"{path}: x; it is shipped with fla: restore it (git checkout -- " \
                                              "fla/results, or reinstall fla)"


def test_the_shipped_files_read_back():
    rows, settings = A.shipped()
    assert rows and settings["run"]
    assert read_json(HERE / "ablation" / "settings.json") == settings
