"""What the ablation's rows say: per mixer the mean, median and failures over seeds with the mechanism's readout
(answer mass, row entropy), each contrast as a paired difference with a bootstrap interval and a permutation p,
Holm-corrected over every contrast tested (``ablation.md``, ``ablation.png``, docs/ablation.md, notebook 04)."""
from __future__ import annotations

import math
import statistics

from ...figures import PAGE_WIDTH
from ...files import markdown_table
from ..stats import group_by, holm, median, paired_resampled
from .mixers import BASE, Mixer, mixer_of
from .tuning import tuned_lrs

__all__ = ["PAPER_DEIT_T", "CONTRASTS", "mixer_of", "median", "reported", "summary", "summary_table", "contrasts",
           "contrast_table", "dilution_table", "tuning_table", "markdown", "docs_tables", "write_docs_tables", "BEGIN", "END",
           "plot"]

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
                     "wins": sum(x > y for x, y in zip(xs, ys)), **paired_resampled(xs, ys)}
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
    """The text of ``OUT/ablation.md``: the summary, the dilution table, the contrasts, the 2×-steps runs, tuning."""
    if not rows:
        return "# Ablation\n\n(no runs yet)\n"
    parts = ["# Ablation: the token mixer, everything else fixed", "",
             "Per mixer its seeds at its own learning rate (the best median over the tuning seeds); `fla ablate`, see "
             "`fla/experiments/ablation/`.", "", summary_table(rows, presets), ""]
    if any(r["task"] == "retrieval" for r in rows):
        parts += ["Retrieval, each trained model scored at several N:", "", dilution_table(rows, presets), ""]
    parts += ["Each contrast paired by seed (a − b per seed), Holm over all rows:", "", contrast_table(rows, presets), ""]
    if _long(rows, presets):
        parts += ["At twice the steps (same learning rates):", "", summary_table(rows, presets, "long"), ""]
    parts += ["Learning rates: median over the tuning seeds (the chosen one in bold):", "", tuning_table(rows, presets), ""]
    return "\n".join(parts)


BEGIN, END = "<!-- tables from fla/results/ablation: begin -->", "<!-- tables from fla/results/ablation: end -->"


def docs_tables(rows: list[dict], presets: dict) -> str:
    """The tables of docs/ablation.md, made from the rows alone: summary, dilution, contrasts, 2× steps, tuning."""
    parts = ["### Each mixer over its seeds", "", summary_table(rows, presets), ""]
    if any(r["task"] == "retrieval" for r in rows):
        parts += ["### Retrieval: every trained model scored at several N", "",
                  "Each cell: accuracy · answer mass · row entropy (nats), means over the seeds.", "",
                  dilution_table(rows, presets), ""]
    parts += ["### Contrasts, paired by seed", "", contrast_table(rows, presets), ""]
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


def plot(rows: list[dict], path=None, *, presets: dict):
    """Three panels: retrieval accuracy over N, its row entropy over N, and each task's mixers (mean, median ×)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stats = sorted(summary(rows, presets), key=_order)
    fig, axes = plt.subplots(2, 2, figsize=(PAGE_WIDTH, 6.6))  # two by two: legible at the page's width
    axes = axes.ravel()
    ret = [s for s in stats if s["task"] == "retrieval"]
    ns = _scored_ns(ret)
    for ax, col, title in ((axes[0], "acc", "retrieval: accuracy at N"), (axes[1], "entropy", "retrieval: row entropy")):
        for i, s in enumerate(ret):
            ax.plot(ns, [s.get(f"{col}_{n}", math.nan) for n in ns], marker="o", color=f"C{i}", label=s["label"])
        if ns and col == "entropy":
            ax.plot(ns, [math.log(n) for n in ns], ls=":", color="gray", label="uniform (log N)")
        if ns:
            ax.set_xscale("log", base=2)
        ax.set(title=title, xlabel="N tokens", ylabel=col)
        _legend(ax)
    for ax, task in ((axes[2], "recall"), (axes[3], "helmet")):
        mine = [s for s in stats if s["task"] == task]
        if mine:
            ax.bar(range(len(mine)), [s["mean"] for s in mine], yerr=[0 if math.isnan(s["sd"]) else s["sd"] for s in mine],
                   capsize=3, color=[f"C{i}" for i in range(len(mine))])
            ax.scatter(range(len(mine)), [s["median"] for s in mine], marker="x", color="black", zorder=3, label="median")
            ax.set_xticks(range(len(mine)), [s["label"] for s in mine], rotation=30, ha="right", fontsize=7)
            lo = min(s["mean"] - (0 if math.isnan(s["sd"]) else s["sd"]) for s in mine)
            ax.set_ylim(max(0.0, lo - 0.05), 1.0 if task == "recall" else None)
            _legend(ax)
        ax.set(title=f"{task}: the mixers (mean ± sd)", ylabel=mine[0]["metric"] if mine else "")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
