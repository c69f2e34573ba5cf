"""The ablation's runs: one task × setting × mixer × learning rate × seed each, under the presets, swept into
``OUT/ablation.csv`` (``fla ablate``, notebook 04). On the CPU the same seed and preset give the same numbers on
one machine; another CPU may round differently (docs/ablation.md, "What reproduces where")."""
from __future__ import annotations

import math
import os
from pathlib import Path

from ...files import read_csv, read_json
from ...results import HERE as RESULTS
from ...runtime import pick_device
from ..sweep import Sweep
from . import report
from .mixers import BASE, VARIANTS, Config, MixerNet, configs, train_run
from .tasks import EVAL_SIDES, HelmetTask, NeedleTask, RecallTask

__all__ = ["TASKS", "PRESETS", "COLUMNS", "KEY", "TUNE_SEED", "SEEDS", "make_task", "train_one", "find_data",
           "run_ablation", "sweep", "read_rows", "best_lrs", "plan", "SHIPPED", "shipped"]

TASKS = ("recall", "needle", "helmet", "capacity")
#: the CSV's columns and their types; p = 0 is softmax, p = 1 no focusing, kernel_size = 0 no DWC. The probe
#: columns (mass, entropy, key_argmax, key_erank; acc_N and mass_N: a needle model scored on N tokens) are
#: empty where they do not apply (helmet; softmax's keys; acc_N on other tasks). train_s: wall time of the
#: training steps; cpu_s: CPU time of the whole run (training, checkpoints, probes) in its process.
COLUMNS = {"task": str, "setting": str, "variant": str, "p": float, "kernel_size": int, "per_head": int, "lr": float,
           "seed": int, "metric": str, "value": float, "steps90": int, "steps": int, "mass": float, "entropy": float,
           "key_argmax": float, "key_erank": float, **{f"{m}_{s * s}": float for m in ("acc", "mass") for s in EVAL_SIDES},
           "params": int, "train_s": float, "cpu_s": float}
KEY = ("task", "setting", "variant", "p", "kernel_size", "per_head", "lr", "seed")  # this run is done
#: the learning rate of each (task, setting, config) is picked on this seed, which no reported mean uses
TUNE_SEED = report.TUNE_SEED
#: the documented full run, shipped with the code that made it: ablation.csv and settings.json (with the machine)
SHIPPED = RESULTS / "ablation"
SEEDS = (0, 1, 2, 3, 4)

_RECALL = {"grid": (8, 8), "pairs": 16, "queries": 16, "keys": 32, "values": 16}
#: per task: the task's settings (``sizes``: one group of runs per entry, merged into ``task_args``), which
#: mixers (``configs``: variant names; "sweeps" adds linear+focus's p sweep and per-head focusing), the model,
#: the optimisation (``lrs``: tried on ``TUNE_SEED`` per mixer; one value: no tuning). ``--quick``: shorter.
PRESETS = {
    "full": {
        "recall": {"task_args": _RECALL, "sizes": [{}], "configs": ["all", "sweeps"],
                   "dim": 32, "heads": 2, "depth": 1, "steps": 400, "batch": 32, "lrs": [1e-2, 3e-2]},
        # trained at N = 64, every model also scored at N = 64, 256, 1024 (``NeedleTask.probe``)
        "needle": {"task_args": {"pairs": 4, "keys": 64, "values": 16, "width": 64}, "sizes": [{"grid": (8, 8)}],
                   "configs": ["softmax", "linear", "linear+focus"],
                   "dim": 64, "heads": 1, "depth": 1, "steps": 400, "batch": 16, "lrs": [1e-2, 3e-2]},
        # one learning rate (3e-3, tuned on linear and linear+dwc in the first version of this ablation): the
        # photos cost 15 CPU-s a run, and a second lr for five mixers did not fit the 30-minute budget
        "helmet": {"task_args": {"grid": 20, "patch": 8}, "sizes": [{}], "configs": ["all"],
                   "dim": 32, "heads": 2, "depth": 2, "steps": 300, "batch": 8, "lrs": [3e-3]},
        # pairs / d = 1/8 and 1/2 (d = 16 per head); 1 is the recall task itself
        "capacity": {"task_args": _RECALL, "sizes": [{"pairs": n, "queries": n} for n in (2, 8)],
                     "configs": ["linear", "linear+focus"],
                     "dim": 32, "heads": 2, "depth": 1, "steps": 400, "batch": 32, "lrs": [1e-2, 3e-2]},
    },
    "quick": {
        "recall": {"task_args": {**_RECALL, "test_size": 128}, "sizes": [{}], "configs": ["all"],
                   "dim": 32, "heads": 2, "depth": 1, "steps": 30, "batch": 16, "lrs": [1e-2]},
        "capacity": {"task_args": {**_RECALL, "test_size": 128}, "sizes": [{"pairs": 2, "queries": 2}],
                     "configs": ["linear", "linear+focus"],
                     "dim": 32, "heads": 2, "depth": 1, "steps": 30, "batch": 16, "lrs": [1e-2]},
        "needle": {"task_args": {"pairs": 4, "keys": 64, "values": 16, "width": 32, "test_size": 32, "eval_sides": (8, 16)},
                   "sizes": [{"grid": (8, 8)}, {"grid": (16, 16)}], "configs": ["softmax", "linear", "linear+focus"],
                   "dim": 32, "heads": 1, "depth": 1, "steps": 20, "batch": 8, "lrs": [1e-2]},
        "helmet": {"task_args": {"grid": 20, "patch": 8}, "sizes": [{}], "configs": ["linear", "linear+dwc"],
                   "dim": 32, "heads": 2, "depth": 2, "steps": 10, "batch": 4, "lrs": [3e-3]},
    },
}


def make_task(name: str, settings: dict, data=None):
    """The task ``name`` with ``settings`` (a preset's "task_args" entry); ``data``: the helmet data.yaml."""
    if name in ("recall", "capacity"):
        return RecallTask(**settings)
    if name == "needle":
        return NeedleTask(**settings)
    if name == "helmet":
        return HelmetTask(data, **settings)
    raise ValueError(f"unknown task {name!r}: choose from {', '.join(TASKS)}")


_TASK_CACHE: dict = {}


def _task(name: str, settings: dict, data):
    """One task object per (name, settings, data) and process: the helmet photos are decoded once."""
    key = (name, repr(sorted(settings.items())), str(data))
    settings = {k: tuple(v) if isinstance(v, list) else v for k, v in settings.items()}  # grids read back from JSON
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


def _preset(task: str, quick: bool, overrides: dict) -> dict:
    preset = {**PRESETS["quick" if quick else "full"][task], **overrides}
    preset["task_args"] = {**preset["task_args"], **preset.get("sizes", [{}])[0], **overrides.get("task_args", {})}
    return preset


def train_one(task: str, variant: str | Config, seed: int = 0, *, quick: bool = False, data=None, device=None,
              **overrides) -> tuple[dict, MixerNet]:
    """One run of the ablation with its preset, model returned (notebook 04's attention maps and ranks).

    ``variant``: a name of ``VARIANTS`` (its default p, k) or a :class:`Config`; ``overrides``
    replace preset entries (e.g. ``steps=100``, ``lr=1e-2``, ``task_args={"grid": (16, 16)}``; default:
    the first size and the first learning rate). On the CPU, seed and settings equal to a row of the
    CSV give that row's value again.
    """
    preset = _preset(task, quick, overrides)
    preset.setdefault("lr", preset["lrs"][0])
    cfg = BASE[variant] if isinstance(variant, str) else variant
    return train_run(_task(task, preset["task_args"], find_data(data) if task == "helmet" else None), cfg, seed,
                     device=device, **{k: v for k, v in preset.items() if k not in ("task_args", "sizes", "configs", "lrs")})


def _one(name: str, task_args: dict, settings: dict, data, cfg: Config, seed: int, lr: float, device) -> dict:
    """One run, in this process or in a worker (top level, so that it pickles): its CSV row, every column filled."""
    row, _ = train_run(_task(name, task_args, data), cfg, seed, device=device, lr=lr, **settings)
    row["task"] = name  # the preset's name: "capacity" runs the recall task at other sizes
    return {c: row.get(c, math.nan) for c in COLUMNS}


def shipped(folder=None) -> tuple[list[dict], dict]:
    """The rows and the settings (presets, plus "run": machine, date, commit, times) of the shipped full run."""
    folder = Path(folder or SHIPPED)
    if not (folder / "ablation.csv").is_file():
        raise FileNotFoundError(f"no shipped run at {folder}: rerun it (RETRAIN = True)")
    return read_rows(folder), read_json(folder / "settings.json")


def read_rows(out) -> list[dict]:
    """The rows of ``OUT/ablation.csv``, typed; ``[]`` when there is none."""
    return read_csv(Path(out) / "ablation.csv", COLUMNS)


def sweep(out, presets: dict) -> Sweep:
    """The ablation folder ``out`` for tasks run with ``presets`` (task -> preset), their settings."""
    return Sweep(out, "ablation", COLUMNS, KEY, presets, summary=report.markdown)


def _configs(preset: dict, variants) -> list[Config]:
    names = [v for v in (VARIANTS if "all" in preset["configs"] else preset["configs"]) if v in variants]
    return configs(names, sweeps="sweeps" in preset["configs"])


def plan(tasks, variants=VARIANTS, presets: dict | None = None, quick: bool = False):
    """(task, task_args, setting, config) of every group of runs, in order; the setting as the CSV writes it."""
    presets = presets or PRESETS["quick" if quick else "full"]
    out = []
    for t in tasks:
        p = presets[t]
        for size in p.get("sizes", [{}]):
            args = {**p["task_args"], **size}
            setting = _task(t, args, None).setting if t != "helmet" else f"grid={args['grid']}"  # photos not loaded
            out += [(t, args, setting, cfg) for cfg in _configs(p, variants)]
    return out


def best_lrs(rows: list[dict], seed: int = TUNE_SEED) -> dict:
    """(task, setting, Config) -> the learning rate with the highest value on ``seed``; on a tie the smallest
    (rows arrive in the order parallel runs finish, so the tie must not depend on that order)."""
    best = {}
    for r in rows:
        if r["seed"] != seed:
            continue
        k = (r["task"], r["setting"], Config(r["variant"], r["p"], r["kernel_size"], bool(r["per_head"])))
        if k not in best or (r["value"], -r["lr"]) > (best[k]["value"], -best[k]["lr"]):
            best[k] = r
    return {k: r["lr"] for k, r in best.items()}


def run_ablation(out, tasks=TASKS, variants=VARIANTS, seeds=SEEDS, *, quick: bool = False, sweeps: bool = True,
                 data=None, device=None, jobs: int | None = None, presets: dict | None = None, progress: bool = True,
                 log=print) -> list[dict]:
    """Every task × setting × config × seed not yet in ``OUT/ablation.csv``; ``ablation.md`` rewritten after
    each run, ``ablation.png`` at the end (also when interrupted).

    With several ``lrs`` in a task's preset, each config first runs once per learning rate on
    ``TUNE_SEED``; the best one is then run on ``seeds``. ``jobs``: runs in parallel on the CPU,
    one torch thread each (default: one per core); 1 runs them in this process. On a GPU they run
    one after the other in this process. ``presets``: per-task settings (default
    ``PRESETS["quick" if quick else "full"]``). ``sweeps=False`` leaves out the p sweep and
    per-head focusing. The helmet task is skipped, with a message saying how to get the data,
    when there is none. A folder holding runs of a task made with other settings is a ``SettingsClash``.
    Returns the rows of the requested seeds (the tuning runs stay in the CSV).
    """
    out = Path(out)
    presets = presets or PRESETS["quick" if quick else "full"]
    if not sweeps:
        presets = {t: {**p, "configs": [c for c in p["configs"] if c != "sweeps"]} for t, p in presets.items()}
    device = pick_device(device)
    tasks = list(tasks)
    if "helmet" in tasks:
        data = find_data(data)
        if data is None:
            from ...data import HOW_TO

            log(f"helmet task skipped: no helmet data here.\n{HOW_TO}")
            tasks.remove("helmet")
    runs = sweep(out, {t: presets[t] for t in tasks})
    jobs = 1 if device.type == "cuda" else jobs or os.cpu_count() or 1
    groups = plan(tasks, variants, presets)

    def job(t, args, setting, cfg, seed, lr):
        settings = {k: v for k, v in presets[t].items() if k not in ("task_args", "sizes", "configs", "lrs")}
        key = (t, setting, cfg.variant, float(cfg.p), cfg.kernel_size, int(cfg.per_head), float(lr), seed)
        return key, (t, args, settings, data if t == "helmet" else None, cfg, seed, lr, device.type)

    def describe(row):
        return (f"{row['task']} {row['setting']} {Config(row['variant'], row['p'], row['kernel_size'], bool(row['per_head'])).label}"
                f" lr {row['lr']:g} s{row['seed']}: {row['metric']} {row['value']:.3f}")

    todo, ran = [], False
    try:
        for task in tasks:  # task by task: an interrupted run leaves whole tasks behind it
            mine = [g for g in groups if g[0] == task]
            lrs = presets[task]["lrs"]
            tune = [job(t, a, s, c, TUNE_SEED, lr) for t, a, s, c in mine if len(lrs) > 1 for lr in lrs]
            ran = ran or any(not runs.finished(key) for key, _ in tune)
            runs.run(tune, _one, jobs=jobs, describe=describe, progress=progress, log=log, desc=f"fla ablate {task}: lr")
            best = best_lrs(runs.rows)
            seeded = [job(t, a, s, c, seed, best.get((t, s, c), lrs[0])) for t, a, s, c in mine for seed in seeds]
            ran = ran or any(not runs.finished(key) for key, _ in seeded)
            runs.run(seeded, _one, jobs=jobs, describe=describe, progress=progress, log=log, desc=f"fla ablate {task}")
            todo += seeded
    finally:
        if ran and runs.rows:
            report.plot(runs.rows, out / "ablation.png")
    return runs.select(key for key, _ in todo)
