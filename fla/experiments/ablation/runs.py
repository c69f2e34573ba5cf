"""The ablation's runs: one task × mixer × seed each, under the presets, swept into ``OUT/ablation.csv``
(``fla ablate``, notebook 04). On the CPU the same seed and preset give the same numbers."""
from __future__ import annotations

import os
from pathlib import Path

from ...files import read_csv
from ...runtime import pick_device
from ..sweep import Sweep
from . import report
from .mixers import BASE, VARIANTS, Config, MixerNet, configs, train_run
from .tasks import HelmetTask, RecallTask

__all__ = ["TASKS", "PRESETS", "COLUMNS", "KEY", "make_task", "train_one", "find_data", "run_ablation", "sweep", "read_rows"]

TASKS = ("recall", "helmet")
#: the CSV's columns and their types; p = 0 means no focusing and kernel_size = 0 no DWC
COLUMNS = {"task": str, "variant": str, "p": float, "kernel_size": int, "seed": int, "metric": str, "value": float,
           "params": int, "train_s": float}
KEY = ("task", "variant", "p", "kernel_size", "seed")  # a row with these values means: this run is done

#: per task: the task's own settings, the model, the optimisation. ``--quick``: the same tasks, shorter.
PRESETS = {
    "full": {
        "recall": {"task_args": {"grid": (8, 8), "pairs": 16, "queries": 16, "keys": 32, "values": 16},
                   "dim": 32, "heads": 2, "depth": 1, "steps": 300, "batch": 32, "lr": 1e-2},
        "helmet": {"task_args": {"grid": 20, "patch": 8}, "dim": 32, "heads": 2, "depth": 2,
                   "steps": 300, "batch": 8, "lr": 3e-3},
    },
    "quick": {
        "recall": {"task_args": {"grid": (8, 8), "pairs": 16, "queries": 16, "keys": 32, "values": 16, "test_size": 128},
                   "dim": 32, "heads": 2, "depth": 1, "steps": 30, "batch": 16, "lr": 1e-2},
        "helmet": {"task_args": {"grid": 20, "patch": 8}, "dim": 32, "heads": 2, "depth": 2,
                   "steps": 15, "batch": 4, "lr": 3e-3},
    },
}


def make_task(name: str, settings: dict, data=None):
    """The task ``name`` with ``settings`` (a preset's "task_args" entry); ``data``: the helmet data.yaml."""
    if name == "recall":
        return RecallTask(**settings)
    if name == "helmet":
        return HelmetTask(data, **settings)
    raise ValueError(f"unknown task {name!r}: choose from {', '.join(TASKS)}")


_TASK_CACHE: dict = {}


def _task(name: str, settings: dict, data):
    """One task object per (name, settings, data) and process: the helmet photos are decoded once."""
    key = (name, repr(sorted(settings.items())), str(data))
    if key not in _TASK_CACHE:
        _TASK_CACHE[key] = make_task(name, settings, data)
    return _TASK_CACHE[key]


def find_data(data=None):
    """The helmet data.yaml: ``data``, else ``$FLA_DATA``, else an earlier download; None when there is none.

    Never downloads (``python -m fla data get`` does): the ablation must run offline.
    Raises ``fla.data.DataError`` when ``data`` / ``$FLA_DATA`` name something that is not the subset.
    """
    from ...data import cache_dir, resolve_data

    if data or os.environ.get("FLA_DATA"):
        return resolve_data(data)
    cached = cache_dir() / "data.yaml"
    return resolve_data(cached) if cached.is_file() else None


def train_one(task: str, variant: str | Config, seed: int = 0, *, quick: bool = False, data=None, device=None,
              **overrides) -> tuple[dict, MixerNet]:
    """One run of the ablation with its preset, model returned (notebook 04's attention maps and ranks).

    ``variant``: a name of ``VARIANTS`` (its default p, k) or a :class:`Config`; ``overrides``
    replace preset entries (e.g. ``steps=100``, ``task_args={...}``). On the CPU, seed and
    preset equal to a row of the CSV give that row's value again.
    """
    preset = {**PRESETS["quick" if quick else "full"][task], **overrides}
    cfg = BASE[variant] if isinstance(variant, str) else variant
    return train_run(_task(task, preset["task_args"], find_data(data) if task == "helmet" else None), cfg, seed,
                     device=device, **preset)


def _one(name: str, preset: dict, data, cfg: Config, seed: int, device) -> dict:
    """One run, in this process or in a worker (top level, so that it pickles): its CSV row."""
    settings = {k: v for k, v in preset.items() if k != "task_args"}
    row, _ = train_run(_task(name, preset["task_args"], data), cfg, seed, device=device, **settings)
    return row


def read_rows(out) -> list[dict]:
    """The rows of ``OUT/ablation.csv``, typed; ``[]`` when there is none."""
    return read_csv(Path(out) / "ablation.csv", COLUMNS)


def sweep(out, presets: dict) -> Sweep:
    """The ablation folder ``out`` for tasks run with ``presets`` (task -> preset), their settings."""
    return Sweep(out, "ablation", COLUMNS, KEY, presets, summary=report.markdown)


def run_ablation(out, tasks=TASKS, variants=VARIANTS, seeds=(0, 1, 2), *, quick: bool = False, sweeps: bool = True,
                 data=None, device=None, jobs: int | None = None, presets: dict | None = None, progress: bool = True,
                 log=print) -> list[dict]:
    """Every task × config × seed not yet in ``OUT/ablation.csv``; ``ablation.md`` rewritten after each run,
    ``ablation.png`` at the end (also when interrupted).

    ``jobs``: runs in parallel on the CPU, one torch thread each (default: one per core); 1 runs
    them in this process. On a GPU they run one after the other in this process. ``presets``:
    per-task settings (default ``PRESETS["quick" if quick else "full"]``). The helmet task is
    skipped, with a message saying how to get the data, when there is none (see :func:`find_data`).
    A folder holding runs of a task made with other settings is a ``SettingsClash``.
    Returns the rows of the requested tasks, configs and seeds (done earlier or now).
    """
    out = Path(out)
    presets = presets or PRESETS["quick" if quick else "full"]
    device = pick_device(device)
    tasks = list(tasks)
    if "helmet" in tasks:
        data = find_data(data)
        if data is None:
            from ...data import HOW_TO

            log(f"helmet task skipped: no helmet data here.\n{HOW_TO}")
            tasks.remove("helmet")
    runs = sweep(out, {t: presets[t] for t in tasks})
    wanted = [(t, cfg, s) for t in tasks for cfg in configs(variants, sweeps) for s in seeds]
    todo = [((t, cfg.variant, float(cfg.p), cfg.kernel_size, s), (t, presets[t], data, cfg, s, device.type))
            for t, cfg, s in wanted]
    jobs = 1 if device.type == "cuda" else jobs or os.cpu_count() or 1
    ran = any(not runs.finished(key) for key, _ in todo)

    def describe(row):
        return (f"{row['task']} {Config(row['variant'], row['p'], row['kernel_size']).label} s{row['seed']}: "
                f"{row['metric']} {row['value']:.3f}")

    try:
        runs.run(todo, _one, jobs=jobs, describe=describe, progress=progress, log=log, desc="fla ablate")
    finally:
        if ran and runs.rows:
            report.plot(runs.rows, out / "ablation.png")
    return runs.select(key for key, _ in todo)
