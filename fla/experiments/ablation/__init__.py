"""The paper's ablation on a CPU: small models that differ only in their token mixer (``fla ablate``, notebook 04).

The paper's central table (DeiT-T, ImageNet top-1): linear 70.5 → + focusing 71.8 → + DWC
74.1, softmax 72.2. Here the same five mixers go into one small network (``mixers``) and are
trained on two tasks (``tasks``: associative recall, helmet patches), plus the sweeps of ``fla``
over p ∈ {1, 2, 3, 4, 8} (k = 5) and k ∈ {3, 5, 7} (p = 3). ``runs`` sweeps them into
``OUT/ablation.csv`` (an interrupted sweep keeps what finished and a rerun skips it), ``report``
says what the rows show, ``probes`` looks inside the trained models.
"""
from .mixers import BASE, K_DEFAULT, K_SWEEP, P_DEFAULT, P_SWEEP, VARIANTS, Config, MixerNet, configs, token_mixer, train_run
from .report import COMPARISONS, PAPER_DEIT_T, compare, markdown, plot, summary, summary_table, verdicts
from .runs import COLUMNS, KEY, PRESETS, TASKS, find_data, make_task, read_rows, run_ablation, sweep, train_one
from ..sweep import SettingsClash

__all__ = ["VARIANTS", "P_DEFAULT", "K_DEFAULT", "P_SWEEP", "K_SWEEP", "BASE", "Config", "configs", "token_mixer",
           "MixerNet", "train_run", "TASKS", "PRESETS", "COLUMNS", "KEY", "make_task", "train_one", "find_data",
           "run_ablation", "sweep", "read_rows", "SettingsClash", "PAPER_DEIT_T", "COMPARISONS", "summary", "summary_table",
           "compare", "verdicts", "markdown", "plot"]
