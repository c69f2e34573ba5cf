"""What a training sweep's rows say: mean ± spread per variant, the paired test difference to base, the
curves (``results.md``, ``paired.csv``, ``curves.png``; notebook 06)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ...figures import PAGE_WIDTH
from ...files import cell, markdown_table, read_csv, write_csv
from ..stats import Detections, group_by, mean_sd, paired_bootstrap
from .folders import COLUMNS, DETECTIONS, read_results, run_dir

__all__ = ["run_table", "variant_table", "paired_table", "compare", "verdict", "comparison_lines", "PAIRED_COLUMNS", "write_comparisons",
           "read_comparisons", "markdown", "read_epochs", "first_epoch_above", "plot_paired", "plot_curves"]

CONFIG = ("variant", "epochs", "imgsz", "device")  # the seeds of one configuration share these
#: fewest epochs whose time is compared with base: s/epoch leaves out the first (warm-up) epoch, and a ratio
#: of one or two short epochs measures start-up and whatever else shared the machine, not the model
TIMED_EPOCHS = 5


def _base_of(key: tuple) -> tuple:
    """The base configuration a variant is compared with: same family and scale (``c2f_fla@s`` → ``base@s``,
    ``yolo11:c3k2_fla`` → ``yolo11:base``), same settings."""
    name, at, scale = key[0].partition("@")
    family = name.rpartition(":")[0]
    return ((f"{family}:base" if family else "base") + at + scale, *key[1:])


def variant_table(rows: list[dict]) -> str:
    """Markdown: per variant, mean ± standard deviation over seeds (± 0 for one seed) of the validation and test
    metrics of best.pt, and epoch time vs base ("–" where a test column is missing, and for runs shorter than
    ``TIMED_EPOCHS``)."""
    groups = group_by(rows, CONFIG)
    base = {k: mean_sd(r["s_per_epoch"] for r in g)[0] for k, g in groups.items() if _base_of(k) == k}

    def pm(g, col):
        xs = [r[col] for r in g]
        if not all(math.isfinite(x) for x in xs):
            return "–"
        return "{:.3f} ± {:.3f}".format(*mean_sd(xs))

    table = []
    for key, g in groups.items():
        t = mean_sd(r["s_per_epoch"] for r in g)[0]
        timed = _base_of(key) in base and key[1] >= TIMED_EPOCHS
        rel = f"{t / base[_base_of(key)]:.2f}×" if timed else "–"
        table.append([*key[:1], len(g), *key[1:], pm(g, "map50"), pm(g, "map50_95"), pm(g, "precision"), pm(g, "recall"),
                      pm(g, "test_map50"), pm(g, "test_map50_95"), f"{g[0]['params'] / 1e6:.3f} M", f"{g[0]['gflops']:.2f}",
                      f"{t:.2f}", rel])
    header = ["variant", "seeds", "epochs", "imgsz", "device", "val mAP50", "val mAP50-95", "val precision", "val recall",
              "test mAP50", "test mAP50-95", "params", "GFLOPs@640", "s/epoch", "time vs base"]
    return markdown_table(header, table)


def run_table(out, rows: list[dict]) -> str:
    """Markdown: one line per run (docs/training.md): best.pt on val and on test, the training pass per epoch, and
    the whole run (training + validation every epoch: the ``time`` of ultralytics' log at the last epoch)."""
    def whole(r):
        epochs = read_epochs(out, r)
        return f"{epochs[-1]['time']:.0f}" if epochs and "time" in epochs[-1] else "–"

    table = [[r["variant"], r["seed"], *(f"{r[c]:.3f}" for c in ("map50", "test_map50", "test_map50_95",
                                                                   "test_precision", "test_recall")),
              f"{r['s_per_epoch']:.1f}", whole(r)] for r in rows]
    return markdown_table(["variant", "seed", "val mAP50", "test mAP50", "test mAP50-95", "test P", "test R",
                           "s/epoch (training pass)", "whole run, s"], table)


def paired_table(comparisons: list[dict]) -> str:
    """Markdown: one line per variant and metric of ``compare``'s result (docs/training.md): the mean paired
    difference over seeds, its interval over test images, the bootstrap SE, each seed's difference and their sd."""
    table = [[f"{c['variant']} − {_base_of((c['variant'],))[0]}", c["metric"], c["seeds"], f"{c['diff']:+.3f}",
              f"[{c['low']:+.3f}, {c['high']:+.3f}]", f"{c['se']:.3f}", ", ".join(f"{x:+.3f}" for x in c["per_seed"]),
              f"{c['seed_sd']:.3f}"] for c in comparisons]
    return markdown_table(["variant − base", "metric", "seeds", "Δ (mean over seeds)", "95% interval over test images",
                           "bootstrap SE", "per-seed Δ", "seed sd"], table)


def compare(rows: list[dict], out, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Each variant against the base of the same scale and settings on the test split: the paired difference
    (``fla.experiments.stats.paired_bootstrap``, seeds paired by number, ``n_boot`` resamples of the test images).

    Only seeds where both runs have their ``test_detections.npz``. Returns one dict per variant and metric:
    ``variant, epochs, imgsz, device, metric, seeds, images, n_boot, diff, low, high, se, seed_sd, per_seed``."""
    out, groups, found = Path(out), group_by(rows, CONFIG), []
    for key, g in groups.items():
        if _base_of(key) == key or _base_of(key) not in groups:
            continue
        runs = {r["seed"]: run_dir(out, r["variant"], r["seed"], r["epochs"], r["imgsz"]) / DETECTIONS for r in g}
        bases = {r["seed"]: run_dir(out, r["variant"], r["seed"], r["epochs"], r["imgsz"]) / DETECTIONS
                 for r in groups[_base_of(key)]}
        seeds = sorted(s for s in runs.keys() & bases.keys() if runs[s].is_file() and bases[s].is_file())
        if not seeds:
            continue
        variant = [Detections.load(runs[s]) for s in seeds]
        result = paired_bootstrap(variant, [Detections.load(bases[s]) for s in seeds], n_boot=n_boot, seed=seed)
        for metric, r in result.items():
            found.append(dict(zip(("variant", "epochs", "imgsz", "device"), key), metric=metric, seeds=len(seeds),
                              images=len(variant[0].images), n_boot=n_boot, **r))
    return found


def verdict(low: float, high: float) -> str:
    """Whether an interval for variant − base excludes 0, in words."""
    if low > 0:
        return "excludes 0: variant better"
    if high < 0:
        return "excludes 0: variant worse"
    return "includes 0: no difference shown"


def comparison_lines(comparisons: list[dict], level: float = 0.95) -> list[str]:
    """One markdown line per variant: ΔmAP50 and ΔmAP50-95 with their intervals and whether each excludes 0."""
    by_variant: dict[tuple, dict] = {}
    for c in comparisons:
        by_variant.setdefault((c["variant"], c["epochs"], c["imgsz"], c["device"]), {})[c["metric"]] = c
    lines = []
    for (variant, epochs, imgsz, device), m in by_variant.items():
        a, b = m["map50"], m["map50_95"]
        spread = f"; seed sd of ΔmAP50 {a['seed_sd']:.3f}" if a["seeds"] > 1 else ""
        lines.append(
            f"- `{variant}` − `{_base_of((variant,))[0]}` ({epochs} epochs, {imgsz} px, {a['seeds']} seed"
            f"{'s' * (a['seeds'] > 1)}, {a['images']} test images): ΔmAP50 {a['diff']:+.3f} "
            f"[{a['low']:+.3f}, {a['high']:+.3f}] {verdict(a['low'], a['high'])}; ΔmAP50-95 {b['diff']:+.3f} "
            f"[{b['low']:+.3f}, {b['high']:+.3f}] {verdict(b['low'], b['high'])}{spread}")
    return lines


#: the columns of ``paired.csv`` and their types (``per_seed``: the per-seed differences joined by ``;``)
PAIRED_COLUMNS = {"variant": str, "epochs": int, "imgsz": int, "device": str, "metric": str, "seeds": int, "images": int,
                  "n_boot": int, "diff": float, "low": float, "high": float, "se": float, "seed_sd": float,
                  "per_seed": str}


def write_comparisons(comparisons: list[dict], out) -> None:
    """``OUT/paired.csv``: the rows of ``compare`` (per-seed differences joined by ``;``)."""
    write_csv(Path(out) / "paired.csv", list(PAIRED_COLUMNS),
              ({**c, "per_seed": ";".join(f"{x:.6f}" for x in c["per_seed"])} for c in comparisons))


def read_comparisons(out) -> list[dict]:
    """``OUT/paired.csv`` back as ``compare`` returned it (notebook 06 reads what ``train_all`` computed, rather
    than resampling again)."""
    return [{**r, "per_seed": [float(x) for x in r["per_seed"].split(";")]}
            for r in read_csv(Path(out) / "paired.csv", PAIRED_COLUMNS)]


def markdown(rows: list[dict], comparisons: list[dict] | None = None) -> str:
    """The text of ``OUT/results.md``: all runs, then mean ± spread per variant, then the paired test differences
    when ``comparisons`` are given."""
    columns = list(COLUMNS)
    md = ["# Helmet mini-training", "", "## Runs", "", markdown_table(columns, [[cell(r[k], 4) for k in columns] for r in rows]),
          "", "## Per variant (mean ± std over seeds)", "",
          "best.pt is the epoch with the best validation fitness; the test columns score that checkpoint on the "
          "held-out test split.", "", variant_table(rows), ""]
    if comparisons:
        n_boot = comparisons[0].get("n_boot", "")
        md += ["## Variant − base on the test split (paired, 95% bootstrap interval over test images)", "",
               "Same resample of test images for both models, mean over the paired seeds"
               f"{f' ({n_boot} resamples)' if n_boot else ''}; `fla.experiments.stats.paired_bootstrap`.", "",
               *comparison_lines(comparisons), ""]
    return "\n".join(md)


def read_epochs(out, row: dict) -> list[dict]:
    """ultralytics' per-epoch log of one run (``OUT/<run>/results.csv``: losses, val metrics, lr, time), as
    ``[{column: float}]``; ``[]`` when the run has none."""
    log = run_dir(out, row["variant"], row["seed"], row["epochs"], row["imgsz"]) / "results.csv"
    if not log.is_file():
        return []
    with open(log, newline="") as f:
        return [{k.strip(): float(v) for k, v in e.items()} for e in csv.DictReader(f)]


def first_epoch_above(out, rows: list[dict], threshold: float, metric: str = "metrics/mAP50(B)") -> list[int | None]:
    """Per run, the first epoch whose validation ``metric`` exceeds ``threshold`` (None: never, or no log). Notebook
    06 reads when the shipped runs started to detect anything, to say what a shorter run of yours can show."""
    return [next((int(e["epoch"]) for e in read_epochs(out, r) if e.get(metric, 0.0) > threshold), None) for r in rows]


def plot_paired(comparisons: list[dict], metric: str = "map50"):
    """Variant − base on the test split (notebook 06): each seed's difference (dots) and the seed mean with its
    bootstrap interval (bar). Returns the figure."""
    import matplotlib.pyplot as plt

    chosen = [c for c in comparisons if c["metric"] == metric]
    height = 1.1 + 0.6 * len(chosen)
    fig, ax = plt.subplots(figsize=(6, height))
    for y, c in enumerate(chosen):
        ax.errorbar(c["diff"], y, xerr=[[c["diff"] - c["low"]], [c["high"] - c["diff"]]], fmt="s", color="black",
                    capsize=4, label="seed mean, 95% interval over test images" if y == 0 else None)
        ax.plot(c["per_seed"], [y + 0.15] * len(c["per_seed"]), "o", color="tab:blue", alpha=0.7,
                label="one seed" if y == 0 else None)
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set(yticks=range(len(chosen)), yticklabels=[f"{c['variant']} − base" for c in chosen], ylim=(-0.6, len(chosen) - 0.2),
           xlabel=f"Δ test {'mAP50' if metric == 'map50' else 'mAP50-95'}", title="paired difference on the test split")
    fig.legend(fontsize=8, loc="lower center", ncol=2, frameon=False)  # below the axes: never over a dot
    fig.tight_layout(rect=(0, 0.3 / height, 1, 1))
    plt.close(fig)
    return fig


def plot_curves(out, rows: list[dict] | None = None, path=None):
    """Validation mAP50 and box loss per epoch of every run in ``OUT/results.csv``, read from each run's
    ultralytics ``results.csv``; saved to ``OUT/curves.png`` (notebook 06). Returns the figure."""
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = read_results(out) if rows is None else rows
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(PAGE_WIDTH, 6.4), sharex=True)  # one above the other: the page's width
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    for r in rows:  # a colour per variant, a line style per seed: the variants are what the eye should compare
        epochs = read_epochs(out, r)
        if not epochs:
            continue
        x = [int(float(e["epoch"])) for e in epochs]
        style = dict(color=f"C{variants.index(r['variant']) % 10}", ls=["-", "--", ":", "-."][seeds.index(r["seed"]) % 4],
                     marker="o" if len(x) < 5 else None, label=f"{r['variant']} s{r['seed']}")
        ax1.plot(x, [float(e["metrics/mAP50(B)"]) for e in epochs], **style)
        ax2.plot(x, [float(e["val/box_loss"]) for e in epochs], **style)
    ax1.set(ylabel="val mAP50", title="validation mAP50")
    ax2.set(xlabel="epoch", ylabel="val box loss", title="validation box loss")
    ax1.legend(fontsize=8, ncol=len(variants), loc="upper left")
    fig.tight_layout()
    fig.savefig(path or out / "curves.png", dpi=110)
    plt.close(fig)
    return fig


