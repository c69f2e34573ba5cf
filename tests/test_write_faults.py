"""Places that take no writes, for every output path of every verb: a parent that cannot be created, a read-only
place, a permission denied, a disk that fills during a write. Each is exit status 2 and one line on stderr ending
with "(see fla VERB --help)"; nothing is half-written, and a result file that was there stays as it was.

The suite may run as root, which the mode bits do not stop: a read-only mount and a permission denied are the
system's answers (``OSError`` with EROFS, EACCES) given by ``os.mkdir`` under a chosen folder.
"""
from __future__ import annotations

import errno
import os
import pathlib
import sys

import pytest

import fla.files as F

from helpers import cli

#: every output path of every verb, with {p} for the place that takes no writes
OUTPUTS = [
    "train --quick --out {p}/runs",
    "ablate --quick --tasks recall --out {p}/runs",
    "bench --csv {p}/bench.csv",
    "bench --plot {p}/bench.png",
    "models --no-latency --csv {p}/models.csv",
    "data get --out {p}/helmet",
]
#: (fault, the place, the system's answer there or None for the real one, the reason in the line)
PLACES = [
    ("parent cannot be created", "/proc/fla-x", None, "nothing can be written under /proc (No such file or directory)"),
    ("read-only place", "{t}/locked", errno.EROFS, "nothing can be written under {t}/locked (Read-only file system)"),
    ("permission denied", "{t}/locked", errno.EACCES, "nothing can be written under {t}/locked (Permission denied)"),
]


def refuse_writes_under(monkeypatch, folder: pathlib.Path, code: int):
    """From now on, creating anything under ``folder`` fails with ``code``, as on a read-only mount or in a folder
    of another user (the check before the work tries to create a folder there)."""
    real_mkdir = os.mkdir

    def mkdir(path, *args, **kwargs):
        if pathlib.Path(path).resolve().is_relative_to(folder):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)


def _tree(root: pathlib.Path) -> list:
    return sorted(p.relative_to(root) for p in root.rglob("*")) if root.is_dir() else []


@pytest.mark.parametrize("fault, place, code, reason", PLACES, ids=[p[0] for p in PLACES])
@pytest.mark.parametrize("command", OUTPUTS)
def test_a_place_that_takes_no_writes_is_one_line_exit_2_before_any_work(command, fault, place, code, reason, tmp_path,
                                                                          monkeypatch):
    if code is None and not pathlib.Path("/proc/self").is_dir():
        pytest.skip("no /proc on this system")
    monkeypatch.setenv("FLA_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    place = pathlib.Path(place.format(t=tmp_path))
    if code is not None:
        place.mkdir()
        refuse_writes_under(monkeypatch, place, code)
    args = command.format(p=place).split()
    verb = args[0]
    arg = next(a for a in args if a.startswith(str(place)))
    option = args[args.index(arg) - 1]
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines() == [
        f"fla {verb}: error: {option} {arg}: {reason.format(t=tmp_path)} (see fla {verb} --help)"], res.stderr
    assert _tree(place) == [] and not pathlib.Path(arg).exists()


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root writes whatever the mode bits say")
def test_a_folder_without_write_permission_is_refused_for_real(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    res = cli("bench", "--csv", locked / "bench.csv")
    assert res.returncode == 2 and "(Permission denied) (see fla bench --help)" in res.stderr, res.stderr


def fill_disk_at(monkeypatch, name: str):
    """Writing a file called ``name`` stops halfway with "No space left on device" (the rest of the disk is fine)."""
    real = pathlib.Path.write_bytes

    def write_bytes(self, data):
        if self.name in (name, f".{name}.part"):
            real(self, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", write_bytes)


@pytest.mark.parametrize("before", [None, b"the previous run's rows\n"], ids=["new file", "previous file"])
def test_a_full_disk_during_a_write_keeps_the_previous_file_and_says_so(before, tmp_path, monkeypatch):
    path = tmp_path / "results.csv"
    if before is not None:
        path.write_bytes(before)
    fill_disk_at(monkeypatch, "results.csv")
    with pytest.raises(F.WriteError) as caught:
        F.write_csv(path, ["a"], [{"a": 1}] * 1000)
    kept = "the previous results.csv is kept as it was" if before else "nothing was written"
    assert str(caught.value) == f"{path}: could not write it (No space left on device); {kept}"
    assert caught.value.errno == errno.ENOSPC
    assert (path.read_bytes() if path.exists() else None) == before
    assert _tree(tmp_path) == ([pathlib.Path("results.csv")] if before else [])  # no .part left behind


#: a verb that writes result files, the file the disk fills on, what was there before
FULL_DISK = [
    ("bench --sizes 8 --impl fla --repeats 1 --warmup 0 --no-memory --csv {t}/bench.csv", "bench.csv"),
    ("bench --sizes 8 --impl fla --repeats 1 --warmup 0 --no-memory --csv {t}/bench.csv", "bench.png"),
    pytest.param("models --no-latency --variants base --csv {t}/models.csv", "models.csv", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("command, name", FULL_DISK, ids=["bench-csv", "bench-plot", "models-csv"])
def test_a_full_disk_during_a_verb_is_one_line_exit_2_and_keeps_the_previous_file(command, name, tmp_path, monkeypatch):
    old = b"kept from the last run\n"
    (tmp_path / name).write_bytes(old)
    fill_disk_at(monkeypatch, name)
    args = command.format(t=tmp_path).split()
    res = cli(*args)
    assert res.returncode == 2, res.stderr
    assert res.stderr.strip().splitlines()[-1] == (  # after the progress bars: the one line
        f"fla {args[0]}: error: {tmp_path / name}: could not write it (No space left on device); "
        f"the previous {name} is kept as it was (see fla {args[0]} --help)") and "Traceback" not in res.stderr, res.stderr
    assert (tmp_path / name).read_bytes() == old
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_a_full_disk_during_a_sweep_keeps_every_finished_run(tmp_path, monkeypatch):
    """fla ablate (and fla train, the same sweep): the rows recorded before the disk filled stay in the CSV."""
    from fla.experiments.sweep import Sweep

    runs = Sweep(tmp_path, "results", {"run": int, "value": float}, ("run",), {"preset": "x"}, summary=lambda rows: "")
    runs.run([((0,), (0,)), ((1,), (1,))], lambda i: {"run": i, "value": i / 2}, log=lambda m: None)
    before = (tmp_path / "results.csv").read_bytes()
    fill_disk_at(monkeypatch, "results.csv")
    with pytest.raises(F.WriteError, match=r"results.csv: could not write it \(No space left on device\); the previous"):
        runs.run([((k,), (k,)) for k in range(4)], lambda i: {"run": i, "value": i / 2}, log=lambda m: None)
    assert (tmp_path / "results.csv").read_bytes() == before
    monkeypatch.undo()  # space freed: the same sweep again runs what is missing and only that
    ran = []
    again = Sweep(tmp_path, "results", {"run": int, "value": float}, ("run",), {"preset": "x"}, summary=lambda rows: "")
    again.run([((k,), (k,)) for k in range(4)], lambda i: ran.append(i) or {"run": i, "value": i / 2}, log=lambda m: None)
    assert ran == [2, 3] and [r["run"] for r in again.rows] == [0, 1, 2, 3]
