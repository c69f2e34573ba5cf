"""The focusing mechanism alone: can f_p features fit sharp softmax rows better than ReLU features? (docs/kernelfit.md, notebook 02)

A feature map φ(Wx + b) of width d is fitted so that its normalised rows
a_ij = φ(q_i)·φ(k_j) / Σ_l φ(q_i)·φ(k_l) match the softmax rows softmax_j(β q_i·k_j) of random
unit queries and keys (N = 128 keys a row, head size h = 16, width d = 16 or 64; one map for queries
and keys, as a kernel).
The arms differ only in φ:

- ``relu``: φ(x) = ReLU(x) + 1e-6 (``fla.functional.relu_kernel``);
- ``focused`` with p ∈ {1, 2, 3, 5, 8}: φ_p(x) = f_p((ReLU(x) + 1e-6) / softplus(s)) with a learned
  per-channel scale s, the module's focused kernel (``fla.kernels.focused_kernel``). f_1 is the identity,
  so p = 1 is ReLU with a per-channel scale that W and b could absorb: a control, not a contrast.

Every arm starts from the same W, b and sees the same queries and keys for a seed (paired); the
target sharpness β runs from diffuse rows (β = 1: entropy ≈ log N) to nearly one-hot rows
(β = 128: ~0.9 of the mass on the top key). Measured on queries and keys the fit never saw:
``kl_heldout`` = mean over rows of KL(target row ‖ fitted row) in nats, the fitted rows' entropy
and their mass on the target's top key.

**Prediction, written before the first full run.** (1) For diffuse targets (β ≤ 4) every arm fits
well (a bias can make features nearly constant) and f_p gains nothing. (2) ReLU's held-out KL grows
with β: a row φ(q)·φ(k_j) of bias-carrying ReLU features cannot put most of its mass on one of 128
keys. (3) f_p with p > 1 lowers the KL at sharp targets, the more so the larger β (its power turns
the feature vectors towards axes and so separates the dot products). (4) p = 1 matches ReLU within
noise. (5) The largest p (8) may lose to p = 3 at intermediate β (its rows are too peaked, and its
gradients harder).

The learning rate, one rule for every arm, the ablation's (``fla.experiments.lr_grid``): each (d, β, arm)
runs on ``TUNE_SEEDS`` at every rate of ``LRS`` and takes the rate with the lowest median held-out KL
there; while that rate sits on an edge of the arm's grid, the grid grows one step past that edge, at
most ``MAX_EXTEND`` rates, so that the chosen rate lies strictly inside the grid it was chosen from
(``tuning``). The reported seeds never take part. The report gives each arm's grid, its chosen rate and
whether the rate is inside (or the limit stopped the grid). The paired statistics (``paired_interval``,
``holm``) sit in one place below.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .. import functional as Fn
from .. import kernels
from ..files import markdown_table, read_csv
from ..runtime import torch_threads
from .lr_grid import bracket
from .stats import holm
from .sweep import Sweep

__all__ = ["PRESETS", "COLUMNS", "KEY", "SEEDS", "TUNE_SEEDS", "LRS", "MAX_EXTEND", "ARMS", "targets", "fit",
           "run_kernelfit", "read_rows", "tuning", "best_lrs", "reported", "paired_interval", "contrasts", "table",
           "markdown", "plot", "SHIPPED", "shipped"]

#: (kernel, p) of every arm: ReLU, then the focused kernel at each p (p = 1: the control)
ARMS = (("relu", 1.0), ("focused", 1.0), ("focused", 2.0), ("focused", 3.0), ("focused", 5.0), ("focused", 8.0))
LRS = (3e-3, 1e-2, 3e-2)
#: at most this many rates are added to an arm's grid past a winning edge
MAX_EXTEND = 2
SEEDS = tuple(range(20))
QUICK_SEEDS = (0, 1, 2)
#: the learning rate is chosen on these seeds; no reported median uses them
TUNE_SEEDS = (1000, 1001, 1002)
SHIPPED = Path(__file__).resolve().parents[1] / "results" / "kernelfit"

#: ``keys``: N keys per row; ``groups``/``queries``: key sets and queries per set in a training batch;
#: ``test_groups``/``test_queries``: the held-out rows (their own draws); ``steps`` of Adam at a constant rate;
#: ``lrs``: the grid every arm starts from, ``max_extend``: how many rates it may grow by.
PRESETS = {
    "full": {"ds": [16, 64], "betas": [1.0, 4.0, 16.0, 64.0, 128.0], "arms": [list(a) for a in ARMS],
             "lrs": list(LRS), "max_extend": MAX_EXTEND, "head": 16, "keys": 128, "groups": 2, "queries": 32,
             "test_groups": 8, "test_queries": 32, "steps": 250},
    "quick": {"ds": [16], "betas": [1.0, 64.0], "arms": [["relu", 1.0], ["focused", 3.0]], "lrs": list(LRS),
              "max_extend": MAX_EXTEND, "head": 16, "keys": 128, "groups": 2, "queries": 16, "test_groups": 2,
              "test_queries": 16, "steps": 40},
}

COLUMNS = {"d": int, "beta": float, "kernel": str, "p": float, "lr": float, "seed": int, "steps": int,
           "kl_heldout": float, "entropy": float, "top_mass": float, "target_entropy": float,
           "target_top_mass": float, "train_kl": float, "cpu_s": float}
KEY = ("d", "beta", "kernel", "p", "lr", "seed")


# --- the task ---------------------------------------------------------------------------------------


def unit_vectors(shape, generator) -> torch.Tensor:
    """Random directions: Gaussian vectors normalised over the last dim."""
    return F.normalize(torch.randn(*shape, generator=generator), dim=-1)


def targets(q: torch.Tensor, k: torch.Tensor, beta: float) -> torch.Tensor:
    """softmax_j(β q_i·k_j): (G, Q, d) queries on (G, N, d) keys -> (G, Q, N) rows summing to 1.

    β → 0 gives uniform rows 1/N; large β puts the mass on the key nearest each query.
    """
    return torch.softmax(beta * q @ k.transpose(-2, -1), dim=-1)


class FeatureMap(torch.nn.Module):
    """φ(Wx + b), x of head size h, width d: ReLU (``kernel="relu"``) or the module's focused kernel with exponent
    p and a learned per-channel scale. One independent map per seed of ``generators`` (a batch of fits: Adam's
    update is elementwise, so each seed's map trains as if alone)."""

    def __init__(self, h: int, d: int, kernel: str, p: float, generators: list[torch.Generator]):
        super().__init__()
        bound = h ** -0.5  # nn.Linear's default init, from each seed's generator: the same W, b for every arm of a seed
        draw = lambda *shape: torch.stack([(torch.rand(*shape, generator=g) * 2 - 1) * bound for g in generators])  # noqa: E731
        self.weight = torch.nn.Parameter(draw(h, d))  # (S, h, d)
        self.bias = torch.nn.Parameter(draw(d)[:, None, None])  # (S, 1, 1, d)
        self.kernel, self.p = kernel, float(p)
        self.scale = torch.nn.Parameter(torch.zeros(d)) if kernel == "focused" else None  # softplus(0), as the module
        if self.scale is not None:
            self.scale = torch.nn.Parameter(torch.zeros(len(generators), 1, 1, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (S, G, n, h) -> features (S, G, n, d)."""
        z = torch.einsum("sgnh,shd->sgnd", x, self.weight) + self.bias
        if self.kernel == "relu":
            return Fn.relu_kernel(z)
        return kernels.focused_kernel(z, F.softplus(self.scale), self.p)


def rows(phi: FeatureMap, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The fitted rows: φ(q)·φ(k_j) normalised over the keys, (..., Q, N)."""
    return Fn.normalise_rows(phi(q) @ phi(k).transpose(-2, -1))


def kl_rows(target: torch.Tensor, fitted: torch.Tensor) -> torch.Tensor:
    """KL(target ‖ fitted) of each row, nats (0 log 0 = 0)."""
    return (torch.xlogy(target, target) - target * fitted.clamp_min(torch.finfo(fitted.dtype).tiny).log()).sum(-1)


def draw(generators, groups: int, queries: int, keys: int, h: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Queries (S, G, Q, h) and keys (S, G, N, h), each seed's from its own generator."""
    q = torch.stack([unit_vectors((groups, queries, h), g) for g in generators])
    k = torch.stack([unit_vectors((groups, keys, h), g) for g in generators])
    return q, k


def fit(d: int, beta: float, kernel: str, p: float, lr: float, seeds, *, head: int, keys: int, groups: int,
        queries: int, test_groups: int, test_queries: int, steps: int) -> list[dict]:
    """Fit one arm on each of ``seeds`` (a batch, trained together but independently); their CSV rows.

    Deterministic per seed: a seed's initial map, training rows and held-out rows come from its own
    generators, so its result does not depend on the other seeds of the batch (up to float rounding).
    """
    t0 = time.process_time()
    with torch_threads(1):
        init = [torch.Generator().manual_seed(s) for s in seeds]
        data = [torch.Generator().manual_seed(s + 7919) for s in seeds]
        test = [torch.Generator().manual_seed(s + 104729) for s in seeds]  # the held-out rows: never trained on
        phi = FeatureMap(head, d, kernel, p, init)
        opt = torch.optim.Adam(phi.parameters(), lr=lr)
        loss = torch.full((len(seeds),), math.nan)  # the last training batch's KL per seed (none at 0 steps)
        for _ in range(steps):
            q, k = draw(data, groups, queries, keys, head)
            loss = kl_rows(targets(q, k, beta), rows(phi, q, k)).mean(dim=(1, 2))  # (S,)
            opt.zero_grad()
            loss.sum().backward()  # the seeds' losses add: each map gets its own gradient
            opt.step()
        with torch.no_grad():
            q, k = draw(test, test_groups, test_queries, keys, head)
            t, a = targets(q, k, beta), rows(phi, q, k)
            top = t.argmax(-1, keepdim=True)
            per_seed = lambda x: x.flatten(1).mean(1).tolist()  # noqa: E731
            cols = {"kl_heldout": per_seed(kl_rows(t, a)), "entropy": per_seed(Fn.row_entropy(a)),
                    "top_mass": per_seed(a.gather(-1, top)), "target_entropy": per_seed(Fn.row_entropy(t)),
                    "target_top_mass": per_seed(t.gather(-1, top)), "train_kl": loss.tolist()}
    cpu = (time.process_time() - t0) / len(seeds)
    out = []
    for i, s in enumerate(seeds):
        row = {c: v[i] for c, v in cols.items()}
        if not math.isfinite(row["kl_heldout"]):
            row["kl_heldout"] = math.inf  # a diverged fit scores worst, not "missing"
        out.append({"d": d, "beta": float(beta), "kernel": kernel, "p": float(p), "lr": float(lr), "seed": s,
                    "steps": steps, **row, "cpu_s": cpu})
    return out


# --- the sweep --------------------------------------------------------------------------------------


def read_rows(out) -> list[dict]:
    """The rows of ``OUT/kernelfit.csv``, typed; ``[]`` when there is none."""
    return read_csv(Path(out) / "kernelfit.csv", COLUMNS)


def tuning(rows: list[dict], lrs=LRS, max_extend: int = MAX_EXTEND, seeds=TUNE_SEEDS) -> dict:
    """(d, beta, kernel, p) -> that arm's tuning (``fla.experiments.lr_grid.bracket``): {"lr": the rate with the
    lowest median held-out KL over ``seeds`` (a tie: the smaller rate), "grid": every rate run on all of
    ``seeds``, "medians", "next": the rate still to try past a winning edge or None, "inside": whether "lr" lies
    strictly inside "grid", "limit": whether it sits on an edge after ``max_extend`` rates were added to ``lrs``}."""
    by = {}
    for r in rows:
        if r["seed"] in seeds:
            by.setdefault((r["d"], r["beta"], r["kernel"], r["p"]), {}).setdefault(r["lr"], []).append(r["kl_heldout"])
    out = {}
    for config, kls in by.items():
        full = {lr: float(np.median(v)) for lr, v in kls.items() if len(v) == len(seeds)}
        if full:
            out[config] = bracket(full, lrs, max_extend, lower=True)
    return out


def best_lrs(rows: list[dict], seeds=TUNE_SEEDS) -> dict:
    """(d, beta, kernel, p) -> the chosen rate of ``tuning``: the lowest median held-out KL over ``seeds``."""
    return {k: t["lr"] for k, t in tuning(rows, seeds=seeds).items()}


def reported(rows: list[dict], seeds=TUNE_SEEDS) -> list[dict]:
    """The rows a report uses: no tuning seed, and each arm at its chosen rate where it was tuned (rows of an
    arm at a rate it no longer chooses, from a folder that was resumed with a grown grid, are left out)."""
    chosen = best_lrs(rows, seeds)
    return [r for r in rows if r["seed"] not in seeds
            and chosen.get((r["d"], r["beta"], r["kernel"], r["p"]), r["lr"]) == r["lr"]]


def _settings(preset: dict) -> dict:
    return {k: v for k, v in preset.items() if k not in ("ds", "betas", "arms", "lrs", "max_extend")}


def run_kernelfit(out, seeds=None, *, quick: bool = False, preset: dict | None = None, jobs: int = 1,
                  progress: bool = False, log=print) -> list[dict]:
    """Every d × β × arm on ``seeds`` at the arm's tuned rate, into ``OUT/kernelfit.csv`` (resumable: finished
    runs are skipped); ``OUT/kernelfit.md`` holds the report, each arm's grid and chosen rate among it. With
    more than one rate in the preset, each configuration first runs every rate on ``TUNE_SEEDS``, then, while
    its best rate sits on an edge, one rate past that edge, at most ``max_extend`` times (``tuning``).
    Returns the rows of ``seeds``.
    ``seeds``: default ``SEEDS`` (``QUICK_SEEDS`` with ``quick``); ``preset``: default ``PRESETS["quick" if quick
    else "full"]``; ``jobs`` > 1: worker processes.
    One fit is one (d, β, arm, rate) on all its seeds at once (``fit``).
    """
    preset = preset or PRESETS["quick" if quick else "full"]
    seeds = tuple(seeds if seeds is not None else (QUICK_SEEDS if quick else SEEDS))
    settings = _settings(preset)
    lrs, max_extend = preset["lrs"], preset.get("max_extend", 0)
    runs = Sweep(out, "kernelfit", COLUMNS, KEY, {"kernelfit": settings},
                 summary=lambda rows: markdown(rows, lrs=lrs, max_extend=max_extend))
    configs = [(d, float(b), kernel, float(p)) for d in preset["ds"] for b in preset["betas"] for kernel, p in preset["arms"]]

    def fits(chosen: dict, seeds) -> list:
        """(config, rate, the seeds not yet run) of every fit still to do."""
        todo = [(c, float(lr), [s for s in seeds if not runs.finished((*c, float(lr), s))]) for c in configs
                for lr in chosen.get(c, ())]
        return [t for t in todo if t[2]]

    best = {c: lrs[0] for c in configs}
    if len(lrs) > 1:
        _run(runs, fits({c: lrs for c in configs}, TUNE_SEEDS), settings, jobs, progress, "kernel fit: rates")
        for round_ in range(max_extend):  # a winning edge: one rate past it, for every arm that has one
            tuned = tuning(runs.rows, lrs, max_extend)
            grow = {c: [tuned[c]["next"]] for c in configs if c in tuned and tuned[c]["next"] is not None}
            if not grow:
                break
            log(f"kernel fit: {len(grow)} arms won on an edge of their grid; one rate past it ({round_ + 1})")
            _run(runs, fits(grow, TUNE_SEEDS), settings, jobs, progress, f"kernel fit: rates, grid grown ({round_ + 1})")
        tuned = tuning(runs.rows, lrs, max_extend)
        best = {c: tuned[c]["lr"] for c in configs}
        for c in configs:
            if tuned[c]["limit"]:
                log(f"kernel fit: d = {c[0]}, β = {c[1]:g}, {_label(*c[2:])}: the chosen rate {best[c]:g} sits on an"
                    f" edge of its grid {tuned[c]['grid']} after {max_extend} added rates (the limit)")
    _run(runs, fits({c: [best[c]] for c in configs}, seeds), settings, jobs, progress, "kernel fit")
    runs.write()
    return runs.select((*c, float(best[c]), s) for c in configs for s in seeds)


def _fit(config, lr, seeds, settings) -> list[dict]:
    """``fit`` from a worker process (top level, so that it pickles)."""
    return fit(*config, lr, seeds, **settings)


def _run(runs: Sweep, todo: list, settings: dict, jobs: int, progress: bool, desc: str) -> None:
    """Each fit of ``todo``, here or in ``jobs`` worker processes; its rows recorded as each finishes."""
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm.auto import tqdm

    from .sweep import _pool_context

    context = _pool_context()
    with tqdm(total=len(todo), desc=desc, unit="fit", disable=not progress or not todo) as bar:
        if jobs <= 1 or len(todo) <= 1:
            for config, lr, seeds in todo:
                runs.record(*_fit(config, lr, seeds, settings))
                bar.update(1)
            return
        with ProcessPoolExecutor(min(jobs, len(todo)), mp_context=context) as pool:
            for f in as_completed([pool.submit(_fit, c, lr, s, settings) for c, lr, s in todo]):
                runs.record(*f.result())
                bar.update(1)


def shipped(folder=None) -> tuple[list[dict], dict]:
    """The rows and ``provenance.json`` (machine, date, commit, load, times) of the shipped full run."""
    import json

    folder = Path(folder or SHIPPED)
    if not (folder / "kernelfit.csv").is_file():
        raise FileNotFoundError(f"no shipped kernel fit at {folder}: run python -m fla.experiments.kernelfit OUT")
    prov = folder / "provenance.json"
    return read_rows(folder), json.loads(prov.read_text()) if prov.is_file() else {}


# --- the statistics (the median's interval here; Holm's correction is fla.experiments.stats') -----------


def paired_interval(diffs, level: float = 0.95, seed: int = 0) -> dict:
    """Median of paired differences with a bootstrap interval for it (percentile, 9999 resamples), and a
    two-sided sign-flip permutation p for "the differences centre on 0" (mean statistic). scipy.stats."""
    from scipy import stats

    x = np.asarray(diffs, dtype=float)
    if len(x) < 2 or np.ptp(x) == 0:
        m = float(np.median(x)) if len(x) else math.nan
        # all differences equal: of the 2^n sign flips only the two of one sign are as extreme, unless they are 0
        return {"n": len(x), "median": m, "mean": m, "lo": m, "hi": m,
                "p_value": math.nan if not len(x) else 1.0 if m == 0 else min(1.0, 2 * 0.5 ** len(x))}
    rng = np.random.default_rng(seed)
    ci = stats.bootstrap((x,), np.median, confidence_level=level, n_resamples=9999, method="percentile", rng=rng)
    perm = stats.permutation_test((x,), np.mean, permutation_type="samples", n_resamples=9999, rng=rng)
    return {"n": len(x), "median": float(np.median(x)), "mean": float(x.mean()),
            "lo": float(ci.confidence_interval.low), "hi": float(ci.confidence_interval.high), "p_value": float(perm.pvalue)}


# --- the report -------------------------------------------------------------------------------------


def _arms(rows) -> list[tuple[str, float]]:
    seen = sorted({(r["kernel"], r["p"]) for r in rows}, key=lambda a: (a[0] != "relu", a[1]))
    return seen


def _label(kernel: str, p: float) -> str:
    return "ReLU" if kernel == "relu" else f"f_{p:g}"


def _group(rows) -> dict:
    """(d, beta, kernel, p) -> {seed: row}."""
    out = {}
    for r in rows:
        out.setdefault((r["d"], r["beta"], r["kernel"], r["p"]), {})[r["seed"]] = r
    return out


def contrasts(rows: list[dict], column: str = "kl_heldout") -> list[dict]:
    """Each focused arm − ReLU at each (d, β), paired by seed: median, interval, p, Holm-adjusted p over all of them."""
    g = _group(rows)
    out = []
    for (d, beta, kernel, p), arm in sorted(g.items()):
        base = g.get((d, beta, "relu", 1.0))
        if kernel == "relu" or not base:
            continue
        seeds = sorted(set(arm) & set(base))
        diffs = [arm[s][column] - base[s][column] for s in seeds]
        out.append({"d": d, "beta": beta, "p": p, "column": column, "lr": arm[seeds[0]]["lr"] if seeds else math.nan,
                    "wins": sum(x < 0 for x in diffs), **paired_interval(diffs)})
    for c, adj in zip(out, holm([c["p_value"] for c in out]) if out else []):
        c["p_holm"] = adj
    return out


def _median(xs) -> float:
    return float(np.median(list(xs)))


def table(rows: list[dict], d: int) -> str:
    """Markdown: per β the target's entropy and top mass, ReLU's median held-out KL, and each focused arm's
    median paired difference to ReLU [95 % interval] (* : Holm-adjusted p < 0.05 over every contrast)."""
    g, arms = _group(rows), _arms(rows)
    cs = {(c["beta"], c["p"]): c for c in contrasts(rows) if c["d"] == d}
    betas = sorted({r["beta"] for r in rows if r["d"] == d})
    header = ["β", "target H", "target top", "ReLU KL"] + [f"{_label(*a)} − ReLU" for a in arms if a[0] != "relu"]
    out = []
    for b in betas:
        base = g.get((d, b, "relu", 1.0), {})
        any_row = next(iter(next(v for k, v in g.items() if k[:2] == (d, b)).values()))
        line = [f"{b:g}", f"{any_row['target_entropy']:.2f}", f"{any_row['target_top_mass']:.2f}",
                f"{_median(r['kl_heldout'] for r in base.values()):.3f}" if base else "–"]
        for kernel, p in arms:
            if kernel == "relu":
                continue
            c = cs.get((b, p))
            line.append("–" if c is None else f"{c['median']:+.3f} [{c['lo']:+.3f}, {c['hi']:+.3f}]"
                        + ("*" if c.get("p_holm", 1) < 0.05 else ""))
        out.append(line)
    return markdown_table(header, out, numeric=True)


def sharpness_table(rows: list[dict], d: int) -> str:
    """Markdown: per β the target's and each arm's median row entropy (nats) and mass on the target's top key."""
    g, arms = _group(rows), _arms(rows)
    betas = sorted({r["beta"] for r in rows if r["d"] == d})
    header = ["β", "target H"] + [f"H {_label(*a)}" for a in arms] + ["target top"] + [f"top {_label(*a)}" for a in arms]
    out = []
    for b in betas:
        cells = [g.get((d, b, *a), {}) for a in arms]
        ref = next(iter(next(c for c in cells if c).values()))
        out.append([f"{b:g}", f"{ref['target_entropy']:.2f}"]
                   + [f"{_median(r['entropy'] for r in c.values()):.2f}" if c else "–" for c in cells]
                   + [f"{ref['target_top_mass']:.2f}"]
                   + [f"{_median(r['top_mass'] for r in c.values()):.2f}" if c else "–" for c in cells])
    return markdown_table(header, out, numeric=True)


def rates_table(rows: list[dict], lrs=LRS, max_extend: int = MAX_EXTEND) -> str:
    """Markdown: per (d, β, arm) the grid its rate was chosen from (every rate run on all tuning seeds; ``lrs``
    the grid it started from), the chosen rate, and whether that rate lies strictly inside the grid ("no
    (limit)": on an edge after ``max_extend`` added rates). An arm with no tuning runs shows the rate it ran at."""
    tuned = tuning(rows, lrs, max_extend)
    ran = {(r["d"], r["beta"], r["kernel"], r["p"]): r["lr"] for r in rows if r["seed"] not in TUNE_SEEDS}
    arms = _arms(rows)
    out = []
    for d, b in sorted({(r["d"], r["beta"]) for r in rows}):
        for a in arms:
            t = tuned.get((d, b, *a))
            if t:
                inside = "yes" if t["inside"] else "no (limit)" if t["limit"] else "no"
                out.append([f"{d}", f"{b:g}", _label(*a), ", ".join(f"{lr:g}" for lr in t["grid"]), f"{t['lr']:g}", inside])
            elif (d, b, *a) in ran:
                out.append([f"{d}", f"{b:g}", _label(*a), "– (not tuned)", f"{ran[(d, b, *a)]:g}", "–"])
    return markdown_table(["d", "β", "arm", "grid", "chosen", "inside"], out, numeric=True)


def markdown(rows: list[dict], lrs=LRS, max_extend: int = MAX_EXTEND) -> str:
    """``OUT/kernelfit.md``: the KL table and the sharpness table for each d (``reported`` rows), then each arm's
    grid and chosen rate (``rates_table``; ``lrs``, ``max_extend``: the grid it started from, its limit)."""
    every, rows = rows, reported(rows)
    if not rows:
        return "no reported runs yet\n"
    parts = []
    for d in sorted({r["d"] for r in rows}):
        n = len({r["seed"] for r in rows if r["d"] == d})
        parts += [f"## d = {d}, N = 128 keys, {n} seeds: held-out KL (nats), focused − ReLU paired by seed",
                  table(rows, d), "", f"## d = {d}: row entropy (nats) and mass on the target's top key (medians)",
                  sharpness_table(rows, d), ""]
    parts += ["## learning rate per arm: the grid it was chosen from (the lowest median held-out KL over the tuning seeds)",
              rates_table(every, lrs, max_extend), ""]
    return "\n\n".join(parts)


def plot(rows: list[dict], path=None):
    """Top: each f_p − ReLU in held-out KL against β (median paired difference, 95 % interval as a band; below
    0: f_p fits better). Bottom: row entropy, medians over seeds, with the targets' (gray). One column per d."""
    import matplotlib.pyplot as plt

    rows = reported(rows)
    g, arms = _group(rows), _arms(rows)
    cs = contrasts(rows)
    ds = sorted({r["d"] for r in rows})
    fig, axes = plt.subplots(2, len(ds), figsize=(3.8 * len(ds), 5.6), squeeze=False, sharex=True)
    # distinct hues and markers per p (a sequential map made f_1, f_2 and f_3 hard to tell apart)
    color = {a: ("black" if a[0] == "relu" else plt.cm.tab10(n - 1)) for n, a in enumerate(arms)}
    marker = {a: "osD^vP*X"[n % 8] for n, a in enumerate(arms)}
    for j, d in enumerate(ds):
        betas = sorted({r["beta"] for r in rows if r["d"] == d})
        ax = axes[0, j]
        ax.axhline(0, color="black", ls="--", lw=1, label="ReLU")
        for a in arms[1:]:
            mine = sorted((c for c in cs if c["d"] == d and c["p"] == a[1]), key=lambda c: c["beta"])
            if mine:
                x = [c["beta"] for c in mine]
                ax.plot(x, [c["median"] for c in mine], marker=marker[a], ms=4, color=color[a], label=_label(*a))
                ax.fill_between(x, [c["lo"] for c in mine], [c["hi"] for c in mine], alpha=0.15, color=color[a])
        ax.set_title(f"d = {d}: held-out KL, f_p − ReLU", fontsize=10)
        ax.set_ylabel("nats (< 0: f_p better)")
        ax = axes[1, j]
        for a in arms:
            med = [(b, _median(r["entropy"] for r in g[(d, b, *a)].values())) for b in betas if (d, b, *a) in g]
            if med:
                ax.plot(*zip(*med), marker=marker[a], ms=4, color=color[a], ls="--" if a[0] == "relu" else "-",
                        label=_label(*a))
        ref = [_median(r["target_entropy"] for r in rows if r["d"] == d and r["beta"] == b) for b in betas]
        ax.plot(betas, ref, color="gray", lw=3, alpha=0.5, label="target")
        ax.set_title(f"d = {d}: row entropy", fontsize=10)
        ax.set_ylabel("nats")
        ax.set_xlabel("target sharpness β")
        ax.set_xscale("log", base=2)
    axes[0, 0].legend(fontsize=8, ncol=2, loc="best")
    axes[1, 0].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    if path:
        fig.savefig(path, dpi=110)
    return fig


def provenance(started: float, cpu0: float, loads: list, commit: str, command: str) -> dict:
    """Machine, date, commit and the load seen while the run ran: what ``provenance.json`` records."""
    import os
    import platform
    import resource
    import sys

    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").is_file() else platform.processor()
    own, usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"machine": f"{model}, {os.cpu_count()} cores", "torch": torch.__version__, "python": sys.version.split()[0],
            "date": time.strftime("%Y-%m-%d", time.gmtime(started)),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "commit": commit, "command": command,
            "wall_s": round(time.time() - started, 1),
            "cpu_s": round(own.ru_utime + own.ru_stime + usage.ru_utime + usage.ru_stime - cpu0, 1),
            "load_average_1min": {"min": min(loads), "median": float(np.median(loads)), "max": max(loads),
                                  "samples": len(loads), "every_s": 30}}


def main(argv=None) -> int:
    """``python -m fla.experiments.kernelfit OUT [--quick] [--jobs J]``: the run, its figure and ``provenance.json``."""
    import argparse
    import json
    import os
    import resource
    import subprocess
    import sys
    import threading

    def sizes(preset, seeds):  # what a preset runs, for the help
        return (f"d ∈ {{{', '.join(map(str, preset['ds']))}}}, β ∈ {{{', '.join(f'{b:g}' for b in preset['betas'])}}}, "
                f"{', '.join(_label(k, p) for k, p in preset['arms'])}, {len(seeds)} seeds, {preset['steps']} steps")

    rule = (f"Each arm's learning rate: the lowest median held-out KL over the tuning seeds {TUNE_SEEDS[0]}–{TUNE_SEEDS[-1]}"
            f" among {', '.join(f'{lr:g}' for lr in LRS)}; while it sits on an edge, the grid grows one rate past it,"
            f" at most {MAX_EXTEND} rates. The report (kernelfit.md) gives each arm's grid and whether its rate is inside.")
    parser = argparse.ArgumentParser(prog="python -m fla.experiments.kernelfit", description=__doc__.split("\n")[0],
                                     epilog=rule)
    parser.add_argument("out", help="the run folder: kernelfit.csv (resumable: finished fits are skipped), kernelfit.md, "
                        "kernelfit.png, provenance.json")
    parser.add_argument("--quick", action="store_true", help=f"{sizes(PRESETS['quick'], QUICK_SEEDS)}: under 10 CPU-seconds"
                        f" (default: the full run, {sizes(PRESETS['full'], SEEDS)})")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0 = own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
    loads, done = [round(os.getloadavg()[0], 2)], threading.Event()

    def watch():  # the 1-minute load average every 30 s: how alone the run was
        while not done.wait(30):
            loads.append(round(os.getloadavg()[0], 2))

    threading.Thread(target=watch, daemon=True).start()
    try:  # the code that runs: taken before, so that a commit made meanwhile is not recorded
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    run_kernelfit(out, quick=args.quick, jobs=args.jobs, progress=True, log=lambda m: print(m, file=sys.stderr))
    done.set()
    loads.append(round(os.getloadavg()[0], 2))
    command = "python -m fla.experiments.kernelfit " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "provenance.json").write_text(json.dumps(provenance(started, cpu0, loads, commit, command), indent=1))
    plot(read_rows(out), out / "kernelfit.png")
    print(markdown(read_rows(out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
