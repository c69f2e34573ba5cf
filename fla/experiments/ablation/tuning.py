"""Learning rates for the ablation's mixers (notebook 04): the median over the tuning seeds at each rate of a
1-3-10 grid, and a grid that grows one step past an edge that wins, so that the chosen rate lies strictly
inside the grid it was chosen from. The rule itself (``lr_step``, ``choose_lr``, ``bracket``) lives in
``fla.experiments.lr_grid``, which the kernel fit shares; here it is applied to the ablation's rows."""
from __future__ import annotations

from ..lr_grid import bracket, choose_lr, lr_step
from ..stats import median
from .mixers import Mixer, mixer_of

__all__ = ["lr_step", "choose_lr", "tuned_lrs"]


def tuned_lrs(rows: list[dict], preset) -> dict[Mixer, dict]:
    """Per mixer of ``preset`` (a ``runs.Preset``): {"lr": chosen, "grid": rates tried, "medians": rate -> median over
    the tuning runs, "next": the rate still to try or None (also once ``max_extend`` rates were added), "inside":
    whether the chosen rate is strictly inside the grid, "limit": whether it sits on an edge the grid may not grow
    past} (``fla.experiments.lr_grid.bracket``, the rule the kernel fit shares).
    With ``shared_lr`` every mixer gets the entry of the ``tune_mixers``' runs pooled."""
    setting = preset.setting
    groups = [(m,) for m in preset.tuned] if not preset.shared_lr else [preset.tune_mixers]
    out = {}
    for group in groups:
        by_lr: dict[float, list[float]] = {}
        for r in rows:
            if (r["task"], r["setting"], r["steps"]) == (preset.task, setting, preset.training.steps) \
                    and mixer_of(r) in group and r["seed"] in preset.tune_seeds:
                by_lr.setdefault(r["lr"], []).append(r["value"])
        full = {lr: median(v) for lr, v in by_lr.items() if len(v) == len(preset.tune_seeds) * len(group)}
        if not full:
            continue
        entry = bracket(full, preset.lrs, preset.max_extend)
        for m in (group if not preset.shared_lr else preset.mixers):
            out[m] = entry
    return out
