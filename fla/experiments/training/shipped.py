"""The helmet runs shipped with the project (notebook 06): the result files of the documented CPU experiment, small
enough for git, with where and when they ran.

``ship(out, dest)`` copies from a ``fla train`` folder what the analysis needs and nothing else: ``results.csv``,
``paired.csv``, ``settings.json``, and per run ultralytics' per-epoch log (``results.csv``, for the curves) and
the matched test predictions (``test_detections.npz``, for the paired bootstrap); no checkpoints. It writes
``provenance.json``: machine, date, commit, command, and how many of the planned runs are there (``complete``).
``shipped_folder()`` finds the folder: ``$FLA_SHIPPED``, else ``fla/results/helmet-cpu60``, package data of this installation.
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from datetime import datetime, timezone
from pathlib import Path

from ...files import read_json, write_atomic
from ...results import HERE as RESULTS
from .folders import DETECTIONS, read_results, run_dir

__all__ = ["NAME", "shipped_folder", "provenance", "ship", "describe"]

NAME = "helmet-cpu60"
PLANNED_RUNS = 9  # base, c2f_fla, neck_fla × seeds 0 1 2
COMMAND = ("python -m fla train --data <helmet>/data.yaml --variants base c2f_fla neck_fla --seeds S --epochs 60 "
           "--imgsz 320 --out <dir> --bootstrap 0   (S = 0, then 1, then 2)")


def shipped_folder(name: str = NAME) -> Path | None:
    """The shipped runs' folder, or None when this installation has none."""
    folder = Path(os.environ["FLA_SHIPPED"]) if os.environ.get("FLA_SHIPPED") else RESULTS / name
    return folder if (folder / "results.csv").is_file() else None


def provenance(folder) -> dict:
    """What ``provenance.json`` says about the runs (``{}`` when there is none)."""
    return read_json(Path(folder) / "provenance.json", {})


def describe(folder) -> str:
    """One line: how many runs, where and when they ran, and whether the experiment is complete."""
    p, rows = provenance(folder), read_results(folder)
    state = "the complete experiment" if p.get("complete") else f"PARTIAL: {len(rows)} of {p.get('planned', PLANNED_RUNS)} runs"
    return (f"shipped runs ({state}): {p.get('machine', 'machine unknown')}, {p.get('date', 'date unknown')}, "
            f"commit {p.get('commit', 'unknown')}")


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(RESULTS), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}"


def ship(out, dest, *, planned: int = PLANNED_RUNS, command: str = COMMAND, note: str = "",
         commit: str | None = None) -> Path:
    """Copy the analysable result files of the ``fla train`` folder ``out`` into ``dest`` (replaced) and write
    ``provenance.json``; returns ``dest``. The date is that of the newest run log; ``commit`` is the code the runs
    ran (default: this checkout's HEAD, right when shipping straight after training)."""
    out, dest = Path(out), Path(dest)
    rows = read_results(out)
    if not rows:
        raise FileNotFoundError(f"{out}/results.csv: no finished run to ship")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("results.csv", "paired.csv", "settings.json", "results.md"):
        if (out / name).is_file():
            shutil.copy(out / name, dest / name)
    logs = []
    for r in rows:
        src = run_dir(out, r["variant"], r["seed"], r["epochs"], r["imgsz"])
        to = run_dir(dest, r["variant"], r["seed"], r["epochs"], r["imgsz"])
        to.mkdir(parents=True)
        for name in ("results.csv", DETECTIONS):
            if (src / name).is_file():
                shutil.copy(src / name, to / name)
        logs.append((src / "results.csv").stat().st_mtime)
    date = datetime.fromtimestamp(max(logs), timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    write_atomic(dest / "provenance.json", json.dumps({
        "machine": _machine(), "date": date, "commit": commit or _commit(), "command": command, "runs": len(rows),
        "planned": planned, "complete": len(rows) >= planned, "note": note}, indent=1))
    return dest
