"""The paper's ablation on a CPU, put to a fair test: small models that differ only in their token mixer
(``fla ablate``, notebook 04).

The paper's ablation (DeiT-T, ImageNet top-1, one run each, read in order): linear 70.5 → + focusing
71.8 → + DWC 74.1; softmax 72.2. Here every linear kind is one module whose contrasts change one
argument (``mixers``: focusing is p = 1 → p > 1); four tasks (``tasks``): associative recall with a
p sweep and a capacity sweep (pairs per head dim), a needle task where few pairs hide among many
distractors (N = 64 … 1024), and the helmet patches. ``runs`` tunes the learning rate per mixer on
a separate seed and sweeps the seeds into ``OUT/ablation.csv`` (resumable), ``report`` pairs the
seeds (``fla.experiments.stats``), ``probes`` looks inside the trained models.
"""
from .mixers import BASE, K_DEFAULT, P_DEFAULT, P_SWEEP, VARIANTS, Config, MixerNet, PerHeadFocus, configs, mixer_args, token_mixer, train_run
from .report import (CONTRASTS, NEEDLE_NS, PAPER_DEIT_T, config_of, contrast, contrast_table, contrasts, markdown, needle_slopes,
                     p_trend, plot, seeded, summary, summary_table, tuning_table)
from .runs import (COLUMNS, KEY, PRESETS, SEEDS, SHIPPED, TASKS, TUNE_SEED, best_lrs, find_data, make_task, plan,
                   read_rows, run_ablation, shipped, sweep, train_one)
from ..sweep import SettingsClash

__all__ = ["VARIANTS", "P_DEFAULT", "K_DEFAULT", "P_SWEEP", "BASE", "Config", "configs", "mixer_args", "token_mixer",
           "PerHeadFocus", "MixerNet", "train_run", "TASKS", "PRESETS", "COLUMNS", "KEY", "SEEDS", "TUNE_SEED",
           "make_task", "train_one", "find_data", "run_ablation", "sweep", "read_rows", "best_lrs", "plan", "SHIPPED",
           "shipped", "seeded", "tuning_table",
           "SettingsClash", "PAPER_DEIT_T", "CONTRASTS", "config_of", "summary", "summary_table", "contrast", "contrasts",
           "contrast_table", "p_trend", "NEEDLE_NS", "needle_slopes", "markdown", "plot"]
