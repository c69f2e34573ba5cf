"""Long work killed halfway, then run again: every finished run is kept and none is done twice.

Each long verb runs in its own process, as a user starts it; the process is stopped once it has finished part of
the work (Ctrl-C, which it answers with one line, or SIGKILL, which it cannot answer at all), then the same
command runs again. Tiny settings keep each case to seconds of work.
"""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import fla.experiments.ablation as A
import fla.experiments.training as T
from fla.data import SPLITS, manifest
from fla.files import read_csv as fla_read_csv

from helpers import QuietHandler, run_fla, serve

STOPS = {"Ctrl-C": signal.SIGINT, "SIGKILL": signal.SIGKILL}


def start_fla(*args, env=None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fla", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def stop_when(proc: subprocess.Popen, ready, how: signal.Signals, timeout: float = 600) -> tuple[int, str]:
    """Send ``how`` to ``proc`` as soon as ``ready()`` holds; its exit status and stderr."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before it could be stopped: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "never got far enough to be stopped"
        time.sleep(0.05)
    proc.send_signal(how)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def rows_in(path: Path, columns: dict) -> list[dict]:
    """The rows of a sweep's CSV, typed and then written out as text (NaN == NaN), as they were recorded."""
    return [{c: repr(v) for c, v in r.items()} for r in fla_read_csv(path, columns)]


def check_stopped(code: int, err: str, how: signal.Signals, verb: str, kept: str):
    if how == signal.SIGINT:  # answered: one line saying what was kept and how to go on
        assert code == 130, err[-2000:]
        assert err.strip().splitlines()[-1].startswith(f"fla {verb}: interrupted: {kept}"), err[-2000:]
        assert "Traceback" not in err
    else:
        assert code == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("how", STOPS.values(), ids=STOPS)
def test_fla_ablate_stopped_then_rerun_keeps_every_finished_run(how, tmp_path):
    out = tmp_path / "out"
    command = ["ablate", "--quick", "--tasks", "recall", "--jobs", "1", "--out", out]
    env = {"FLA_DATA": "", "XDG_CACHE_HOME": str(tmp_path / "cache")}
    code, err = stop_when(start_fla(*command, env=env), lambda: len(rows_in(out / "ablation.csv", A.COLUMNS)) >= 2, how)
    kept = rows_in(out / "ablation.csv", A.COLUMNS)
    tuning = len(A.PRESETS["quick"]["recall"].lrs) * len(A.PRESETS["quick"]["recall"].mixers)  # the first phase
    assert 2 <= len(kept) < tuning, "stopped too late to test a resume"
    check_stopped(code, err, how, "ablate", f"{len(kept)} finished runs kept in {out / 'ablation.csv'}")

    again = run_fla(*command, env={**os.environ, **env}, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"{len(kept)} of {tuning} runs already in {out / 'ablation.csv'}: skipped" in again.stderr
    rows = rows_in(out / "ablation.csv", A.COLUMNS)
    key = lambda r: tuple(r[c] for c in A.KEY)  # noqa: E731
    assert len(rows) > tuning and len(rows) == len({key(r) for r in rows})  # every run once
    assert all(r in rows for r in kept)  # the finished ones as they were, timings included: not run again


@pytest.mark.slow
@pytest.mark.needs_data
def test_fla_train_killed_then_rerun_keeps_every_finished_run(helmet_copy, tmp_path):
    """SIGKILL, the stop nothing can answer (Ctrl-C's line: the ablate and data cases, and test_train.py)."""
    how = signal.SIGKILL
    out = tmp_path / "out"
    command = ["train", "--quick", "--imgsz", 64, "--variants", "base", "--seeds", 0, 1, "--data", helmet_copy, "--out", out]
    code, err = stop_when(start_fla(*command), lambda: len(rows_in(out / "results.csv", T.COLUMNS)) >= 1, how)
    kept = rows_in(out / "results.csv", T.COLUMNS)
    assert len(kept) == 1, "stopped too late to test a resume"
    check_stopped(code, err, how, "train", f"1 finished run kept in {out / 'results.csv'}")

    again = run_fla(*command, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"1 of 2 runs already in {out / 'results.csv'}: skipped" in again.stdout  # fla train logs to stdout
    rows = rows_in(out / "results.csv", T.COLUMNS)
    assert sorted(r["seed"] for r in rows) == ["0", "1"] and kept[0] in rows  # (as repr)


class SlowHost(QuietHandler):
    """The raw-file host, a little slow per file, so that the download is still under way when it is stopped."""

    def do_GET(self):
        time.sleep(0.01)
        super().do_GET()


def _finished(out: Path) -> set[str]:
    """The subset's files under ``out`` that are whole (their sha256 is the manifest's)."""
    want = {f"{sub}/{split}/{Path(e[key]).name}": e[sha] for split in SPLITS for e in manifest(split)
            for sub, key, sha in (("images", "source", "sha256"), ("labels", "label_source", "sha256_label"))}
    return {rel for rel, sha in want.items()
            if (out / rel).is_file() and hashlib.sha256((out / rel).read_bytes()).hexdigest() == sha}


@pytest.mark.slow
@pytest.mark.needs_data
@pytest.mark.parametrize("how", STOPS.values(), ids=STOPS)
def test_fla_data_get_stopped_then_rerun_fetches_only_the_rest(how, helmet, tmp_path):
    out = tmp_path / "helmet"
    env = {"no_proxy": "127.0.0.1,localhost"}
    with serve(helmet.parent / "helmet-source", SlowHost) as host:
        command = ["data", "get", "--out", out, "--base-url", host.url]
        code, err = stop_when(start_fla(*command, env=env), lambda: len(host.requests) >= 100, how)
        done = _finished(out)
        assert 50 <= len(done) < 600 and not (out / "data.yaml").exists()
        check_stopped(code, err, how, "data", f"the files fetched so far are kept in {out}")
        first = len(host.requests)

        again = run_fla(*command, env={**os.environ, **env}, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        assert again.stdout.strip().splitlines()[-1] == str(out / "data.yaml")
        refetched = [p for p in host.requests[first:]]
    names = {Path(p).name for p in refetched}
    assert len(refetched) == 600 - len(done)  # the rest, each once
    assert not names & {Path(p).name for p in done if p.startswith("images/")}  # nothing finished fetched again
    assert len(_finished(out)) == 600
    assert not list(out.rglob("*.part"))  # a file cut off by SIGKILL is fetched again, not kept
