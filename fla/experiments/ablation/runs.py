"""The ablation's runs: one task × mixer × learning rate × steps × seed each, under the presets, swept into
``OUT/ablation.csv`` (``fla ablate``, notebook 04). On the CPU the same seed and preset give the same numbers on
one machine; another CPU may round differently (docs/ablation.md, "What reproduces where").

A task's runs, in order:

1. **Tuning.** Every mixer at every learning rate of its grid on the tuning seeds (never in a reported mean);
   the rate with the best median over those seeds wins (a tie: the smaller). While the winner sits on an edge
   of its grid the grid grows one step past it (…, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, …), at most ``max_extend``
   times, so the chosen rate lies strictly inside the grid it was chosen from (``choose_lr``).
2. **Seeds.** Each mixer at its own chosen rate on the preset's seeds; ``reference`` mixers (softmax: in no
   contrast, a ceiling to read the others against) at ``reference_lr`` on ``reference_seeds`` only. With ``shared_lr`` the rule is the other one: every mixer of the task at one rate,
   the best median of the ``tune_mixers``' tuning runs pooled (where tuning every mixer costs too much).
3. **The 2×-steps check.** ``long_mixers`` at twice the steps, same rate, on ``long_seeds``: whether a
   verdict depends on the budget.
"""
from __future__ import annotations

import inspect
import json
import math
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ...files import read_csv, read_json
from ...results import HERE as RESULTS
from ...runtime import pick_device
from ..sweep import Sweep
from . import report
from .tuning import tuned_lrs
from .mixers import BASE, Mixer, MixerNet, Training, mixer_of, train_run
from .tasks import TASK_TYPES, HelmetTask

__all__ = ["TASKS", "Preset", "PRESETS", "COLUMNS", "KEY", "EVAL_NS", "SHIPPED", "make_task", "train_one",
           "find_data", "run_ablation", "sweep", "read_rows", "plan", "shipped"]

TASKS = ("retrieval", "recall", "helmet")
#: the retrieval task's scored sizes: every retrieval model is also scored on N = side² tokens for these sides
EVAL_SIDES = (8, 12, 16, 32)
EVAL_NS = tuple(s * s for s in EVAL_SIDES)
#: the CSV's columns and their types; p = 0 is softmax or no mixing, p = 1 no focusing, kernel_size = 0 no DWC.
#: The probe columns (mass, entropy; acc_N, mass_N, entropy_N: a retrieval model scored on N tokens) are empty
#: where they do not apply. train_s: wall time of the training steps; cpu_s: CPU time of the whole run.
COLUMNS = {"task": str, "setting": str, "variant": str, "p": float, "kernel_size": int, "focus_over": str, "lr": float,
           "seed": int, "steps": int, "metric": str, "value": float, "steps90": int, "mass": float, "entropy": float,
           **{f"{m}_{n}": float for n in EVAL_NS for m in ("acc", "mass", "entropy")},
           "params": int, "train_s": float, "cpu_s": float}
KEY = ("task", "setting", "variant", "p", "kernel_size", "focus_over", "lr", "seed", "steps")  # this run is done
#: the documented full run, shipped with the code that made it: ablation.csv and settings.json (with the machine)
SHIPPED = RESULTS / "ablation"


@dataclass(frozen=True)
class Preset:
    """One task's share of the ablation. ``task_args``: keyword arguments of the task's class (checked against
    it); ``lrs``: the starting learning-rate grid; ``failure``: a run whose metric ends below it failed (fixed
    before any run); the rest as in the module docstring."""

    task: str
    task_args: dict
    mixers: tuple[Mixer, ...]
    training: Training
    lrs: tuple[float, ...]
    seeds: tuple[int, ...]
    failure: float
    tune_seeds: tuple[int, ...] = (100, 101, 102)
    max_extend: int = 2
    reference: tuple[Mixer, ...] = ()
    reference_seeds: tuple[int, ...] = ()
    long_mixers: tuple[Mixer, ...] = ()
    long_seeds: tuple[int, ...] = ()
    shared_lr: bool = False
    tune_mixers: tuple[Mixer, ...] = ()
    reference_lr: float | None = None

    def __post_init__(self):
        if self.reference and self.reference_lr is None:
            raise ValueError("reference mixers run at a stated rate (reference_lr): they are in no contrast, so not tuned")
        if self.shared_lr != bool(self.tune_mixers):
            raise ValueError("shared_lr names the mixers it tunes (tune_mixers), and only it does")
        if self.task not in TASK_TYPES:
            raise ValueError(f"unknown task {self.task!r}: choose from {', '.join(TASKS)}")
        inspect.signature(TASK_TYPES[self.task]).bind_partial(**self.task_args)  # a TypeError names an unknown key
        if set(self.tune_seeds) & set(self.seeds + self.reference_seeds + self.long_seeds):
            raise ValueError("a tuning seed is never a reported seed")
        if not all(m in self.mixers + self.reference for m in self.long_mixers):
            raise ValueError("the 2×-steps check reruns mixers of the preset")

    @property
    def setting(self) -> str:
        """The CSV's setting of this preset's runs (the photos are not loaded to name it)."""
        if self.task == "helmet":
            return HelmetTask.setting_of(self.task_args.get("grid", 20))
        return make_task(self.task, self.task_args).setting

    @property
    def tuned(self) -> tuple[Mixer, ...]:
        """The mixers that run on the tuning seeds."""
        return self.tune_mixers if self.shared_lr else self.mixers

    def to_json(self) -> dict:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, d: dict) -> "Preset":
        """The preset that ``to_json`` wrote (``settings.json``); an unknown key is a TypeError."""
        d = dict(d)
        for k in ("mixers", "reference", "long_mixers", "tune_mixers"):
            d[k] = tuple(Mixer(**m) for m in d.get(k, ()))
        d["training"] = Training(**d["training"])
        d["task_args"] = {k: tuple(v) if isinstance(v, list) else v for k, v in d["task_args"].items()}
        for k in ("lrs", "seeds", "tune_seeds", "reference_seeds", "long_seeds"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)



_LINEAR, _FOCUS = BASE["linear"], BASE["linear+focus"]
_FIVE = tuple(BASE[v] for v in ("linear", "linear+focus", "linear+dwc", "fla"))
_RECALL = {"grid": (8, 8), "pairs": 16, "queries": 16, "keys": 32, "values": 16}
#: per task its preset, in the order they run; the quick ones are a smoke test of every phase (CI), not a measurement
PRESETS = {
    "full": {
        # dilution reaches the answer: trained on N = 64 (where both linear arms leave chance: the pilot in
        # docs/ablation.md), scored at N = 64-1024; failure: not leaving chance (accuracy < 1/4 + 0.05)
        "retrieval": Preset("retrieval", {"grid": (8, 8), "queries": 16, "values": 4, "key_dim": 16,
                                          "eval_sides": EVAL_SIDES},
                            (_LINEAR, _FOCUS), Training(dim=64, heads=1, depth=1, steps=400, batch=16),
                            lrs=(1e-3, 3e-3, 1e-2, 3e-2), seeds=tuple(range(20)), failure=0.3,
                            reference=(BASE["softmax"],), reference_seeds=(0, 1, 2), reference_lr=1e-2,
                            long_mixers=(_LINEAR, _FOCUS), long_seeds=tuple(range(6))),
        # MQAR: 16 pairs in d = 16 channels per head, state capacity binds; shuffled cells, so no DWC here
        "recall": Preset("recall", _RECALL, (_LINEAR, _FOCUS), Training(dim=32, heads=2, depth=1, steps=400, batch=32),
                         lrs=(3e-3, 1e-2, 3e-2), seeds=tuple(range(40)), failure=0.5, max_extend=1,
                         reference=(BASE["softmax"],), reference_seeds=(0, 1), reference_lr=1e-2,
                         long_mixers=(_LINEAR, _FOCUS), long_seeds=tuple(range(6))),
        # the photos: locality. "none" mixes no tokens (the attention-free control); no softmax (it has no
        # positional encoding, the linear mixers have one). One rate for all, tuned on linear and fla pooled;
        # failure: within 0.01 of the all-background floor (0.316 mIoU)
        "helmet": Preset("helmet", {"grid": 20, "patch": 8}, (BASE["none"], *_FIVE),
                         Training(dim=32, heads=2, depth=2, steps=400, batch=8), lrs=(1e-3, 3e-3, 1e-2),
                         seeds=tuple(range(20)), failure=0.326, max_extend=1, shared_lr=True,
                         tune_mixers=(_LINEAR, BASE["fla"]), long_mixers=(_LINEAR, _FOCUS), long_seeds=tuple(range(6))),
    },
    "quick": {
        "retrieval": Preset("retrieval", {"grid": (8, 8), "queries": 8, "values": 4, "key_dim": 16, "test_size": 32,
                                          "eval_sides": (8, 16)},
                            (_LINEAR, _FOCUS), Training(dim=32, heads=1, depth=1, steps=20, batch=8),
                            lrs=(1e-2,), seeds=(0, 1), failure=0.3, tune_seeds=(100,), max_extend=0,
                            reference=(BASE["softmax"],), reference_seeds=(0,), reference_lr=1e-2),
        "recall": Preset("recall", {**_RECALL, "test_size": 128}, (_LINEAR, _FOCUS),
                         Training(dim=32, heads=2, depth=1, steps=30, batch=16),
                         lrs=(1e-2, 3e-2), seeds=(0, 1), failure=0.5, tune_seeds=(100,), max_extend=1,
                         long_mixers=(_LINEAR,), long_seeds=(0,)),
        "helmet": Preset("helmet", {"grid": 20, "patch": 8}, (BASE["none"], _LINEAR, BASE["linear+dwc"]),
                         Training(dim=32, heads=2, depth=2, steps=10, batch=4), lrs=(3e-3,), seeds=(0,), failure=0.326,
                         tune_seeds=(100,), max_extend=0),
    },
}


def make_task(name: str, task_args: dict, data=None):
    """The task ``name`` with ``task_args`` (a preset's); ``data``: the helmet data.yaml."""
    args = {k: tuple(v) if isinstance(v, list) else v for k, v in task_args.items()}  # grids read back from JSON
    if name == "helmet":
        return HelmetTask(data, **args)
    if name not in TASK_TYPES:
        raise ValueError(f"unknown task {name!r}: choose from {', '.join(TASKS)}")
    return TASK_TYPES[name](**args)


_TASK_CACHE: dict = {}


def _task(name: str, task_args: dict, data):
    """One task object per (name, arguments, data) and process: the helmet photos are decoded once."""
    key = (name, json.dumps(task_args, sort_keys=True), str(data))
    if key not in _TASK_CACHE:
        _TASK_CACHE[key] = make_task(name, task_args, data)
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


def train_one(preset: Preset, mixer: Mixer | str, seed: int = 0, lr: float | None = None, *, steps: int | None = None,
              data=None, device=None) -> tuple[dict, MixerNet]:
    """One run of ``preset``'s task, the trained model returned (notebook 04's attention pictures).

    ``mixer``: a :class:`Mixer` or a name of ``VARIANTS`` (its default p, k); ``lr``: default the middle of
    the preset's grid; ``steps``: default the preset's. On the CPU, a seed, rate and steps equal to a row
    of the CSV give that row's numbers again.
    """
    mixer = BASE[mixer] if isinstance(mixer, str) else mixer
    lr = preset.lrs[len(preset.lrs) // 2] if lr is None else lr
    training = preset.training if steps is None else replace(preset.training, steps=steps)
    task = _task(preset.task, preset.task_args, find_data(data) if preset.task == "helmet" else None)
    return train_run(task, mixer, seed, training, lr, device=device)


def _one(name: str, task_args: dict, data, mixer: Mixer, seed: int, lr: float, training: Training, device) -> dict:
    """One run, in this process or in a worker (top level, so that it pickles): its CSV row, every column filled."""
    row, _ = train_run(_task(name, task_args, data), mixer, seed, training, lr, device=device)
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
    """The ablation folder ``out`` for tasks run with ``presets`` (task -> Preset), their settings recorded."""
    return Sweep(out, "ablation", COLUMNS, KEY, {t: p.to_json() for t, p in presets.items()},
                 summary=lambda rows: report.markdown(rows, presets))


def plan(presets: dict, tasks=TASKS) -> list[tuple[str, str, Mixer]]:
    """(task, setting, mixer) of every group of seeded runs, in order (tuning and the 2×-steps check aside)."""
    return [(t, presets[t].setting, m) for t in tasks for m in presets[t].mixers + presets[t].reference]


def run_ablation(out, tasks=TASKS, *, quick: bool = False, data=None, device=None, jobs: int | None = None,
                 presets: dict | None = None, progress: bool = True, log=print) -> list[dict]:
    """Every run of ``tasks`` under ``presets`` (default ``PRESETS["quick" if quick else "full"]``) not yet in
    ``OUT/ablation.csv``; ``ablation.md`` rewritten after each run, ``ablation.png`` at the end (also when
    interrupted). Resumable: the same call again skips finished runs.

    The phases of the module docstring, task by task (one worker pool per phase). ``jobs``: runs
    in parallel on the CPU, one torch thread each (default: one per core, 1 with ``quick``); 1 runs them in this
    process. On a
    GPU they run one after the other in this process. The helmet task is skipped, with a message saying how to
    get the data, when there is none. A folder holding runs of a task made with other settings is a
    ``SettingsClash``. Returns the rows of the reported seeds (tuning runs stay in the CSV).
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
    mine = {t: presets[t] for t in tasks}
    runs = sweep(out, mine)
    # quick: in this process (a worker pool's start-up would cost more than its runs)
    jobs = 1 if device.type == "cuda" else jobs or (1 if quick else os.cpu_count() or 1)

    def job(p: Preset, mixer: Mixer, seed: int, lr: float, steps: int | None = None):
        training = p.training if steps is None else replace(p.training, steps=steps)
        key = (p.task, p.setting, mixer.variant, float(mixer.p), mixer.kernel_size, mixer.focus_over, float(lr), seed,
               training.steps)
        return key, (p.task, p.task_args, data if p.task == "helmet" else None, mixer, seed, lr, training, device.type)

    def describe(row):
        return (f"{row['task']} {mixer_of(row).label} lr {row['lr']:g} s{row['seed']} {row['steps']} steps:"
                f" {row['metric']} {row['value']:.3f}")

    def go(todo, what):
        nonlocal ran
        ran = ran or any(not runs.finished(key) for key, _ in todo)
        runs.run(todo, _one, jobs=jobs, describe=describe, progress=progress, log=log, desc=f"fla ablate: {what}")

    ran, todo = False, []
    try:
        for p in mine.values():  # task by task: an interrupted run leaves whole tasks behind it
            if len(p.lrs) > 1:
                go([job(p, m, s, lr) for m in p.tuned for lr in p.lrs for s in p.tune_seeds], f"{p.task}, tuning")
                for round_ in range(p.max_extend):
                    tuned = tuned_lrs(runs.rows, p)
                    nexts = {m: t["next"] for m, t in tuned.items() if m in p.tuned and t["next"] is not None}
                    if p.shared_lr and tuned:  # one pooled grid: its next rate for every tuned mixer
                        nexts = {m: next(iter(tuned.values()))["next"] for m in p.tune_mixers}
                    extra = [job(p, m, s, lr) for m, lr in nexts.items() if lr is not None for s in p.tune_seeds]
                    if not extra:
                        break
                    go(extra, f"{p.task}, tuning grid extended ({round_ + 1})")
            lrs = {m: t["lr"] for m, t in tuned_lrs(runs.rows, p).items()}
            if len(p.lrs) == 1:  # nothing to tune: the one rate
                lrs = {m: p.lrs[0] for m in p.mixers}
            untuned = [m.label for m in p.mixers if m not in lrs]
            if untuned:  # never fall back to a rate nobody chose
                raise RuntimeError(f"{p.task}: no tuned learning rate for {', '.join(untuned)} (its tuning runs are incomplete)")
            mine_todo = [job(p, m, s, lrs[m]) for m in p.mixers for s in p.seeds]
            lrs |= {m: p.reference_lr for m in p.reference}
            mine_todo += [job(p, m, s, lrs[m]) for m in p.reference for s in p.reference_seeds]
            mine_todo += [job(p, m, s, lrs[m], 2 * p.training.steps) for m in p.long_mixers
                          for s in p.long_seeds]
            go(mine_todo, f"{p.task}, seeds")
            todo += mine_todo
    finally:
        if ran and runs.rows:
            report.plot(runs.rows, out / "ablation.png", presets=presets)
    return runs.select(key for key, _ in todo)
