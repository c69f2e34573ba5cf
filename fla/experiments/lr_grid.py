"""Learning-rate grids that bracket the optimum, one rule for every experiment that tunes (the ablation, the
kernel fit): the rate with the best median over the tuning seeds wins, and while it sits on an edge of its grid
the grid grows one step past that edge (…, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, …), at most ``max_extend`` rates, so
that the chosen rate lies strictly inside the grid it was chosen from, or the limit says why it does not."""
from __future__ import annotations

import math

__all__ = ["lr_step", "choose_lr", "bracket"]


def lr_step(lr: float, up: bool) -> float:
    """The next rate of the 1-3-10 grid above (``up``) or below ``lr``: 1e-2 -> 3e-2 -> 1e-1, 3e-3 <- 1e-2."""
    e = math.floor(math.log10(lr) + 1e-9)
    m = round(lr / 10 ** e)
    if up:
        return float(f"{3 if m < 3 else 1}e{e if m < 3 else e + 1}")
    return float(f"{1 if m > 1 else 3}e{e if m > 1 else e - 1}")


def choose_lr(medians: dict[float, float], lower: bool = False) -> tuple[float, float | None]:
    """(the rate with the best median, the rate to try next or None): the highest median wins (the lowest with
    ``lower``, for a loss); a best rate on an edge of the grid asks for one step past that edge; a tie goes to
    the smaller rate."""
    grid = sorted(medians)
    best = max(grid, key=lambda lr: (-medians[lr] if lower else medians[lr], -lr))
    if len(grid) > 1 and best == grid[-1]:
        return best, lr_step(best, up=True)
    if len(grid) > 1 and best == grid[0]:
        return best, lr_step(best, up=False)
    return best, None


def bracket(medians: dict[float, float], base, max_extend: int, lower: bool = False) -> dict:
    """One arm's tuning from its medians (rate -> median over the tuning seeds) and the grid it started from
    (``base``): {"lr": chosen, "grid": rates tried, "medians", "next": the rate still to try or None, "inside":
    whether the chosen rate is strictly inside the grid, "limit": whether it sits on an edge that may not grow,
    ``max_extend`` rates having been added already}."""
    best, nxt = choose_lr(medians, lower)
    grid = sorted(medians)
    limit = nxt is not None and len(set(grid) - set(base)) >= max_extend
    return {"lr": best, "grid": grid, "medians": dict(medians), "next": None if limit else nxt,
            "inside": grid[0] < best < grid[-1], "limit": limit}
