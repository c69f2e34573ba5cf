"""What the ablation's rows say: per mixer the mean, median and failures over seeds with the mechanism's readout
(answer mass, row entropy), each contrast as a paired difference with a bootstrap interval and a permutation p,
Holm-corrected over every contrast tested (``ablation.md``, ``ablation.png``, docs/ablation.md, notebook 04)."""
from __future__ import annotations

import math
import statistics

from ...figures import PAGE_WIDTH
from ...files import markdown_table
from ..stats import detectable, group_by, holm, median, paired_resampled
from .mixers import BASE, Mixer, mixer_of
from .tasks import TASK_TYPES
from .tuning import tuned_lrs

__all__ = ["PAPER_DEIT_T", "CONTRASTS", "mixer_of", "median", "reported", "summary", "summary_table", "contrasts",
           "contrast_table", "power_table", "dilution_table", "tuning_table", "markdown", "docs_tables", "write_docs_tables",
           "BEGIN", "END", "plot"]

#: the paper's ablation (DeiT-T on ImageNet-1k, top-1 %, one run each), read in order: each row adds one
#: part to the row above it. Focusing was added without DWC; DWC then on top of focusing.
PAPER_DEIT_T = {"softmax": 72.2, "linear": 70.5, "linear+focus": 71.8, "fla": 74.1}

_P8 = Mixer("linear+focus", 8, 0)
#: (a, b, what a − b isolates): each pair differs in one module argument (``mixers.mixer_args``); a contrast is
#: tested where both mixers ran on shared seeds at the preset's steps
CONTRASTS = (
    (BASE["linear+focus"], BASE["linear"], "focusing (p = 1 → 3)"),
    (_P8, BASE["linear"], "focusing (p = 1 → 8)"),
    (BASE["linear+dwc"], BASE["linear"], "DWC"),
    (BASE["fla"], BASE["linear+dwc"], "focusing, on top of DWC"),
    (BASE["fla"], BASE["linear+focus"], "DWC, on top of focusing"),
    (Mixer("linear+focus", 3, 0, "heads"), BASE["linear+focus"], "focusing per head vs over C"),
    (BASE["linear"], BASE["none"], "linear attention − no mixing"),
    (BASE["fla"], BASE["none"], "FLA − no mixing"),
)
#: the probe columns compared for the focusing contrasts: the paper's mechanism, read off the trained models
READOUT = ("mass", "entropy")


def _mean(xs) -> float:
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else math.nan


def _fmt(x, digits=3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def reported(rows: list[dict], presets: dict) -> list[dict]:
    """The rows that enter the means and contrasts: the preset's seeds at its steps (no tuning seed, no 2×-steps run)."""
    out = []
    for r in rows:
        p = presets.get(r["task"])
        if p and r["steps"] == p.training.steps and r["seed"] not in p.tune_seeds:
            out.append(r)
    return out


def _long(rows, presets) -> list[dict]:
    return [r for r in rows if r["task"] in presets and r["steps"] == 2 * presets[r["task"]].training.steps]


def summary(rows: list[dict], presets: dict, steps: str = "preset") -> list[dict]:
    """Per task × mixer (its seeds at one learning rate): n, mean, median, sd, failures (metric below the preset's
    ``failure``), lr, steps to 90 %, and the readout's means (answer mass, row entropy; on retrieval per N).
    ``steps="long"``: the 2×-steps runs instead."""
    chosen = reported(rows, presets) if steps == "preset" else _long(rows, presets)
    out = []
    for (task, *_), g in group_by(chosen, ("task", "variant", "p", "kernel_size", "focus_over")).items():
        values = [r["value"] for r in g]
        mix = mixer_of(g[0])
        out.append({"task": task, "setting": g[0]["setting"], "mixer": mix, "label": mix.label, "metric": g[0]["metric"],
                    "n": len(g), "mean": _mean(values), "median": median(values),
                    "sd": statistics.stdev(values) if len(values) > 1 else math.nan,
                    "failures": sum(v < presets[task].failure for v in values), "lr": g[0]["lr"],
                    "steps": g[0]["steps"], "steps90": _mean([r["steps90"] for r in g]),
                    **{k: _mean([r.get(k, math.nan) for r in g]) for k in g[0] if k.startswith(("mass", "entropy", "acc_"))},
                    "seeds": sorted(r["seed"] for r in g)})
    return out


def _order(s) -> tuple:
    base = list(BASE.values())
    m = s["mixer"]
    return (s["task"], 0, base.index(m), 0) if m in base else (s["task"], 1, m.focus_over == "heads", m.p)


def summary_table(rows: list[dict], presets: dict, steps: str = "preset") -> str:
    """Markdown, one line per task × mixer: mean, median, sd, failures / n, the tuned lr, steps to 90 %, and the
    readout (answer mass, row entropy in nats) of the trained models."""
    stats = sorted(summary(rows, presets, steps), key=_order)
    header = ["task", "setting", "mixer", "mean", "median", "sd", "failed / n", "lr", "steps to 90 %", "answer mass",
              "row entropy"]
    table = [[s["task"], s["setting"], s["label"], f"{s['mean']:.3f}", f"{s['median']:.3f}", _fmt(s["sd"]),
              f"{s['failures']} / {s['n']}", f"{s['lr']:g}", f"{s['steps90']:.0f} / {s['steps']}", _fmt(s["mass"]),
              _fmt(s["entropy"], 2)] for s in stats]
    return markdown_table(header, table, numeric=True)


def _by_seed(rows, task, mixer) -> dict:
    return {r["seed"]: r for r in rows if r["task"] == task and mixer_of(r) == mixer}


def contrasts(rows: list[dict], presets: dict) -> list[dict]:
    """Every contrast the rows allow, per task: the metric's paired difference and, for the focusing contrasts,
    the readout's (answer mass, row entropy); ``stats.paired_resampled`` each, Holm's adjusted p over them all
    (``p_holm``), and the same contrasts at 2× steps (``long``) where those runs exist (not in the family)."""
    chosen, long_rows = reported(rows, presets), _long(rows, presets)
    out = []
    for task in dict.fromkeys(r["task"] for r in chosen):
        for a, b, what in CONTRASTS:
            ra, rb = _by_seed(chosen, task, a), _by_seed(chosen, task, b)
            seeds = sorted(set(ra) & set(rb))
            if len(seeds) < 2:
                continue
            la, lb = _by_seed(long_rows, task, a), _by_seed(long_rows, task, b)
            long_seeds = sorted(set(la) & set(lb))
            columns = ("value", *READOUT) if what.startswith("focusing") else ("value",)
            for column in columns:
                xs, ys = [ra[s][column] for s in seeds], [rb[s][column] for s in seeds]
                if any(math.isnan(v) for v in xs + ys):
                    continue
                c = {"task": task, "what": what, "a": a, "b": b, "column": column, "seeds": seeds,
                     "wins": sum(x > y for x, y in zip(xs, ys)),
                     "sd": statistics.stdev(x - y for x, y in zip(xs, ys)), **paired_resampled(xs, ys)}
                if column == "value" and len(long_seeds) >= 2:
                    c["long"] = paired_resampled([la[s]["value"] for s in long_seeds], [lb[s]["value"] for s in long_seeds])
                out.append(c)
    for c, p in zip(out, holm([c["p"] for c in out])):
        c["p_holm"] = p
    return out


_COLUMN = {"value": "metric", "mass": "answer mass", "entropy": "row entropy"}


def contrast_table(rows: list[dict], presets: dict) -> str:
    """Markdown: each contrast's paired difference (mean, median, a > b in how many seeds), 95 % bootstrap
    interval, permutation p, Holm's p over the family, and the metric's difference at 2× steps."""
    cs = contrasts(rows, presets)
    table = [[c["task"], c["what"], f"{c['a'].label} − {c['b'].label}", _COLUMN[c["column"]], f"{c['diff']:+.3f}",
              f"{c['median']:+.3f}", f"{c['wins']} / {c['n']}", f"[{c['low']:+.3f}, {c['high']:+.3f}]", f"{c['p']:.4f}",
              f"{c['p_holm']:.4f}" + (" ✓" if c["p_holm"] <= 0.05 else ""),
              (f"{c['long']['diff']:+.3f} [{c['long']['low']:+.3f}, {c['long']['high']:+.3f}] ({c['long']['n']})"
               if "long" in c else "–")] for c in cs]
    return markdown_table(["task", "contrast", "a − b", "of", "mean Δ", "median Δ", "a > b", "95 % bootstrap",
                           "permutation p", "Holm p", "2× steps: mean Δ [95 %] (n)"], table, numeric=True)


def power_table(rows: list[dict], presets: dict, power: float = 0.8) -> str:
    """Markdown: per contrast of the metric, what its seeds could have found: the sd of the per-seed differences and
    the true difference found with probability ``power`` (two-sided, normal approximation: (z₁₋α/₂ + z_power) ·
    sd / √n), at α = 0.05 and at Holm's strictest level, 0.05 / the number of contrasts tested. A null reads
    "not detected, detectable ≈ this", not "no effect"."""
    cs = contrasts(rows, presets)
    strictest = 0.05 / max(1, len(cs))

    def found(c, alpha):  # stats.detectable with the seeds' spread alone (no per-image noise here)
        return detectable(c["n"], 1, seed_sd=c["sd"], image_se=0.0, n0=1, alpha=alpha, power=power)

    table = [[c["task"], c["what"], str(c["n"]), f"{c['sd']:.3f}", f"{found(c, 0.05):.3f}", f"{found(c, strictest):.3f}"]
             for c in cs if c["column"] == "value"]
    return markdown_table(["task", "contrast", "seeds", "sd of the per-seed Δ", f"detectable at {power * 100:.0f} % power",
                           f"… at Holm's strictest level ({strictest:.4f})"], table, numeric=True)


def _scored_ns(stats) -> list[int]:
    """The N at which some of these retrieval models were scored (a CSV column no run of theirs filled is left out)."""
    return sorted({int(k.split("_")[1]) for s in stats for k in s if k.startswith("acc_") and not math.isnan(s[k])})


def dilution_table(rows: list[dict], presets: dict) -> str:
    """Markdown: every retrieval mixer scored at each N (accuracy, answer mass, row entropy; uniform rows have
    mass 1/N and entropy log N), means over its seeds."""
    stats = sorted([s for s in summary(rows, presets) if s["task"] == "retrieval"], key=_order)
    ns = _scored_ns(stats)
    table = [[s["label"], str(s["n"])] + [f"{_fmt(s.get(f'acc_{n}'))} · {_fmt(s.get(f'mass_{n}'))} · "
                                          f"{_fmt(s.get(f'entropy_{n}'), 2)}" for n in ns] for s in stats]
    table.append(["uniform rows", "–"] + [f"– · {1 / n:.3f} · {math.log(n):.2f}" for n in ns])
    return markdown_table(["mixer", "seeds"] + [f"N = {n}: accuracy · mass · entropy" for n in ns], table, numeric=True)


def tuning_table(rows: list[dict], presets: dict) -> str:
    """Markdown: per task × mixer, the median over the tuning seeds at each learning rate tried (the chosen one in
    bold) and whether it lies strictly inside the grid; a task whose mixers share one rate has one row."""
    lines, lrs = [], set()
    for task, p in presets.items():
        tuned = tuned_lrs(rows, p)
        if p.shared_lr and tuned:  # one pooled choice for every mixer: one row, naming the mixers it was tuned on
            t = next(iter(tuned.values()))
            lrs |= set(t["medians"])
            lines.append((task, f"every mixer (tuned on {' + '.join(m.label for m in p.tune_mixers)}, pooled)", t))
            continue
        for mixer, t in tuned.items():
            lrs |= set(t["medians"])
            lines.append((task, mixer.label, t))
    lrs = sorted(lrs)
    table = [[task, m] + [("**" + _fmt(t["medians"][lr]) + "**" if lr == t["lr"] else _fmt(t["medians"][lr]))
                                if lr in t["medians"] else "–" for lr in lrs] + ["yes" if t["inside"] else "no (edge)"]
             for task, m, t in lines]
    return markdown_table(["task", "mixer"] + [f"lr {lr:g}" for lr in lrs] + ["inside"], table, numeric=True)


def markdown(rows: list[dict], presets: dict) -> str:
    """The text of ``OUT/ablation.md``: the summary, the dilution table, the contrasts, what the seeds could detect,
    the 2×-steps runs, tuning."""
    if not rows:
        return "# Ablation\n\n(no runs yet)\n"
    parts = ["# Ablation: the token mixer, everything else fixed", "",
             "Per mixer its seeds at its own learning rate (the best median over the tuning seeds); `fla ablate`, see "
             "`fla/experiments/ablation/`.", "", summary_table(rows, presets), ""]
    if any(r["task"] == "retrieval" for r in rows):
        parts += ["Retrieval, each trained model scored at several N:", "", dilution_table(rows, presets), ""]
    parts += ["Each contrast paired by seed (a − b per seed), Holm over all rows:", "", contrast_table(rows, presets), ""]
    parts += ["What the seeds could detect (80 % power):", "", power_table(rows, presets), ""]
    if _long(rows, presets):
        parts += ["At twice the steps (same learning rates):", "", summary_table(rows, presets, "long"), ""]
    parts += ["Learning rates: median over the tuning seeds (the chosen one in bold):", "", tuning_table(rows, presets), ""]
    return "\n".join(parts)


BEGIN, END = "<!-- tables from fla/results/ablation: begin -->", "<!-- tables from fla/results/ablation: end -->"


def docs_tables(rows: list[dict], presets: dict) -> str:
    """The tables of docs/ablation.md, made from the rows alone: summary, dilution, contrasts, what the seeds could
    detect, 2× steps, tuning."""
    parts = ["### Each mixer over its seeds", "", summary_table(rows, presets), ""]
    if any(r["task"] == "retrieval" for r in rows):
        parts += ["### Retrieval: every trained model scored at several N", "",
                  "Each cell: accuracy · answer mass · row entropy (nats), means over the seeds.", "",
                  dilution_table(rows, presets), ""]
    parts += ["### Contrasts, paired by seed", "", contrast_table(rows, presets), ""]
    parts += ["### What the seeds could detect", "", power_table(rows, presets), ""]
    if _long(rows, presets):
        parts += ["### At twice the steps", "", summary_table(rows, presets, "long"), ""]
    parts += ["### Learning rates: median over the tuning seeds (chosen in bold)", "", tuning_table(rows, presets)]
    return "\n".join(parts)


def write_docs_tables(path, rows: list[dict], presets: dict) -> None:
    """Replace the text between ``BEGIN`` and ``END`` in ``path`` (docs/ablation.md) with :func:`docs_tables`."""
    from pathlib import Path

    path = Path(path)
    text = path.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n\n{docs_tables(rows, presets)}\n\n{END}{tail}")


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def _chance(task: str, preset) -> float | None:
    """Guessing's accuracy on a task that defines it without its data (retrieval, recall); None otherwise."""
    kind = TASK_TYPES.get(task)
    return kind(**preset.task_args).chance if kind is not None and hasattr(kind, "chance") else None


def _lines(ax, task: str, presets: dict, legend: bool = True):
    """Where a run counts as failed (the preset's line, fixed before the run) and, where the task has one, chance;
    ``legend=False``: each line named in small type at its right end instead of in a legend."""
    p = presets.get(task)
    if p is None:
        return
    chance = _chance(task, p)
    for y, ls, color, name in ((p.failure, "--", "firebrick", "failure line"), (chance, ":", "gray", "chance")):
        if y is None:
            continue
        ax.axhline(y, ls=ls, lw=1, color=color, label=f"{name} ({y:g})")
        if not legend:
            ax.annotate(f"{name} {y:g}", xy=(1, y), xycoords=("axes fraction", "data"), xytext=(-2, 2),
                        textcoords="offset points", ha="right", va="bottom", fontsize=7, color=color,
                        bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 0.5}, zorder=6)


def _seeds_panel(ax, task: str, mine: list[dict], rows: list[dict], presets: dict):
    """One task's mixers: each seed a dot, the mean a bar across them, the median a cross; the axis spans the dots,
    the failure line and chance (helmet's mixers differ by hundredths), 0 to 1 where they spread over most of it."""
    chosen = reported(rows, presets)
    values = []
    for i, s in enumerate(mine):
        mine_values = [r["value"] for r in chosen if r["task"] == task and mixer_of(r) == s["mixer"]]
        values += mine_values
        jitter = [(j % 7 - 3) * 0.05 for j in range(len(mine_values))]
        ax.scatter([i + x for x in jitter], mine_values, s=8, color=f"C{i}", alpha=0.8, zorder=3)
        ax.hlines(s["mean"], i - 0.3, i + 0.3, color="black", lw=2, zorder=4)
        ax.scatter(i, s["median"], marker="x", s=40, color="black", zorder=5)
    ax.set_xticks(range(len(mine)), [s["label"] for s in mine], rotation=25, ha="right", fontsize=7)
    ax.set_xlim(-0.6, len(mine) - 0.4)
    _lines(ax, task, presets, legend=False)
    lines = [y for y in (presets[task].failure, _chance(task, presets[task])) if y is not None]  # shown, so in range
    low, high = min(values + lines), max(values + lines)
    if high - low > 0.3:
        ax.set_ylim(0.0, 1.02)
    else:
        ax.set_ylim(low - 0.1 * (high - low), high + 0.1 * (high - low))
    ax.set_title(f"{task}: seeds (dots), mean (bar), median (×)", fontsize=10)
    ax.set_ylabel(mine[0]["metric"])


def plot(rows: list[dict], path=None, *, presets: dict):
    """A panel per result, none left empty: retrieval's accuracy over N (chance and the failure line drawn) and its
    row entropy over N (uniform rows: log N), then each other task's mixers (every seed a dot, the mean a bar, the
    median a cross, the failure line, chance where the task has one), in the presets' order. A task without rows
    gets no panel; an odd last panel spans its row."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stats = sorted(summary(rows, presets), key=_order)
    tasks = [t for t in presets if any(s["task"] == t for s in stats)]  # in the presets' order
    ret = [s for s in stats if s["task"] == "retrieval"]
    ns = _scored_ns(ret)
    drawn = (["retrieval-acc", "retrieval-entropy"] if ret and ns else []) + [t for t in tasks if t != "retrieval" or not ns]
    n = max(1, len(drawn))
    rows_of_panels = math.ceil(n / 2)
    fig = plt.figure(figsize=(PAGE_WIDTH, 3.3 * rows_of_panels))  # two a row: legible at the page's width
    grid = fig.add_gridspec(rows_of_panels, 2)
    for i, what in enumerate(drawn):
        last_alone = i == n - 1 and n % 2 == 1
        ax = fig.add_subplot(grid[i // 2, :] if last_alone else grid[i // 2, i % 2])
        if what.startswith("retrieval-"):
            col = "acc" if what == "retrieval-acc" else "entropy"
            for j, s in enumerate(ret):
                ax.plot(ns, [s.get(f"{col}_{m}", math.nan) for m in ns], marker="o", color=f"C{j}", label=s["label"])
            if col == "acc":
                _lines(ax, "retrieval", presets)
                ax.set_ylim(0.0, 1.02)
            else:
                ax.plot(ns, [math.log(m) for m in ns], ls=":", color="gray", label="uniform rows (log N)")
            ax.set_xscale("log", base=2)
            ax.set_xticks(ns, [str(m) for m in ns])
            ax.minorticks_off()
            ax.set_title("retrieval: " + ("accuracy at N (mean over seeds)" if col == "acc" else "row entropy at N"),
                         fontsize=10)
            ax.set(xlabel="N tokens", ylabel="accuracy" if col == "acc" else "row entropy (nats)")
            _legend(ax)
        else:
            _seeds_panel(ax, what, [s for s in stats if s["task"] == what], rows, presets)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
