"""Learning rates for the ablation's mixers (notebook 04): the median over the tuning seeds at each rate of a
1-3-10 grid, and a grid that grows one step past an edge that wins, so that the chosen rate lies strictly
inside the grid it was chosen from."""
from __future__ import annotations

import math

from ..stats import median
from .mixers import Mixer, mixer_of

__all__ = ["lr_step", "choose_lr", "tuned_lrs"]


def lr_step(lr: float, up: bool) -> float:
    """The next rate of the 1-3-10 grid above (``up``) or below ``lr``: 1e-2 -> 3e-2 -> 1e-1, 3e-3 <- 1e-2."""
    e = math.floor(math.log10(lr) + 1e-9)
    m = round(lr / 10 ** e)
    if up:
        return float(f"{3 if m < 3 else 1}e{e if m < 3 else e + 1}")
    return float(f"{1 if m > 1 else 3}e{e if m > 1 else e - 1}")


def choose_lr(medians: dict[float, float]) -> tuple[float, float | None]:
    """(the rate with the best median, the rate to try next or None): a best rate on an edge of the grid asks
    for one step past that edge; a tie goes to the smaller rate."""
    grid = sorted(medians)
    best = max(grid, key=lambda lr: (medians[lr], -lr))
    if len(grid) > 1 and best == grid[-1]:
        return best, lr_step(best, up=True)
    if len(grid) > 1 and best == grid[0]:
        return best, lr_step(best, up=False)
    return best, None


def tuned_lrs(rows: list[dict], preset) -> dict[Mixer, dict]:
    """Per mixer of ``preset`` (a ``runs.Preset``): {"lr": chosen, "grid": rates tried, "medians": rate -> median over the tuning
    runs, "next": the rate still to try or None (also once ``max_extend`` rates were added), "inside": whether the chosen rate is strictly inside the grid}.
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
        best, nxt = choose_lr(full)
        grid = sorted(full)
        if len(set(grid) - set(preset.lrs)) >= preset.max_extend:  # the grid has grown as far as it may
            nxt = None
        entry = {"lr": best, "grid": grid, "medians": full, "next": nxt, "inside": grid[0] < best < grid[-1]}
        for m in (group if not preset.shared_lr else preset.mixers):
            out[m] = entry
    return out
