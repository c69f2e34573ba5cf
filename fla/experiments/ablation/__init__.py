"""The paper's ablation on a CPU, put to a fair test: small models that differ only in their token mixer
(``fla ablate``, notebook 04).

The paper's ablation (DeiT-T, ImageNet top-1, one run each, read in order): linear 70.5 → + focusing
71.8 → + DWC 74.1; softmax 72.2. Here every linear kind is one module whose contrasts change one
argument (``mixers``: focusing is p = 1 → p > 1); three tasks (``tasks``): associative recall, where state
capacity binds; retrieval among keys of one distribution, where a query's leaked weight reaches the answer
(trained at N = 64, scored at N = 64 … 1024); and the helmet patches, with an attention-free control and DWC.
``runs`` tunes each mixer's learning rate on separate seeds and sweeps the seeds into ``OUT/ablation.csv``
(resumable), ``report`` pairs the seeds (``fla.experiments.stats``), ``probes`` reads the trained attention.
"""
from ..stats import median
from ..sweep import SettingsClash
from .mixers import (BASE, K_DEFAULT, P_DEFAULT, VARIANTS, Mixer, MixerNet, NoMixing, Training, mixer_args, mixer_of,
                     token_mixer, train_run)
from .report import (CONTRASTS, PAPER_DEIT_T, contrast_table, contrasts, dilution_table, docs_tables, markdown, plot,
                     power_table, reported, summary, summary_table, tuning_table, write_docs_tables)
from .runs import (COLUMNS, EVAL_NS, KEY, PRESETS, SHIPPED, TASKS, Preset, find_data, make_task, plan, read_rows,
                   run_ablation, shipped, sweep, train_one)
from .tuning import choose_lr, lr_step, tuned_lrs

__all__ = ["VARIANTS", "P_DEFAULT", "K_DEFAULT", "BASE", "Mixer", "Training", "NoMixing", "mixer_args", "token_mixer",
           "MixerNet", "train_run", "TASKS", "Preset", "PRESETS", "COLUMNS", "KEY", "EVAL_NS", "make_task", "train_one",
           "find_data", "run_ablation", "sweep", "read_rows", "choose_lr", "lr_step", "tuned_lrs", "plan", "SHIPPED",
           "shipped", "SettingsClash", "PAPER_DEIT_T", "CONTRASTS", "mixer_of", "median", "reported", "summary",
           "summary_table", "contrasts", "contrast_table", "power_table", "dilution_table", "tuning_table", "markdown",
           "docs_tables", "write_docs_tables", "plot"]
