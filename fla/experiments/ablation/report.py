"""What the ablation's rows say: mean ± spread per mixer, what each step did, the figure (``ablation.md``,
``ablation.png``, notebook 04)."""
from __future__ import annotations

import math

from ...files import markdown_table
from ..stats import group_by, mean_sd
from .mixers import BASE, K_DEFAULT, P_DEFAULT, Config

__all__ = ["PAPER_DEIT_T", "COMPARISONS", "summary", "summary_table", "compare", "verdicts", "markdown", "plot"]

#: the paper's Table (DeiT-T on ImageNet-1k, top-1 %), for the five variants (Han et al. 2023, ablation).
PAPER_DEIT_T = {"softmax": 72.2, "linear": 70.5, "linear+focus": 71.8, "fla": 74.1}


def summary(rows: list[dict]) -> list[dict]:
    """Per task × config: mean, standard deviation (0 for one seed) and number of seeds of the metric."""
    out = []
    for (task, variant, p, k), g in group_by(rows, ("task", "variant", "p", "kernel_size")).items():
        mean, std = mean_sd([r["value"] for r in g])
        out.append({"task": task, "variant": variant, "p": float(p), "kernel_size": int(k),
                    "label": Config(variant, p, k).label, "metric": g[0]["metric"], "mean": mean, "std": std,
                    "n": len(g), "params": g[0]["params"], "train_s": mean_sd([r["train_s"] for r in g])[0]})
    return out


def _order(cfg: Config) -> tuple:
    """Table order: the five variants, then fla's p sweep, then its kernel sweep."""
    base = list(BASE.values())
    if cfg in base:
        return (0, base.index(cfg), 0)
    return (1, cfg.kernel_size != K_DEFAULT, cfg.kernel_size, cfg.p)


def summary_table(rows: list[dict]) -> str:
    """Markdown: one line per config, one column per task (mean ± std over seeds), the paper's DeiT-T beside."""
    stats = summary(rows)
    tasks = list(dict.fromkeys(s["task"] for s in stats))
    cells = {(s["task"], s["label"]): s for s in stats}
    cfgs = sorted({Config(s["variant"], s["p"], s["kernel_size"]) for s in stats}, key=_order)
    header = ["variant"]
    for t in tasks:
        s = next(s for s in stats if s["task"] == t)
        header.append(f"{t} {s['metric']}")
    header.append("paper DeiT-T top-1 %")
    table = []
    for cfg in cfgs:
        row = [cfg.label]
        for t in tasks:
            s = cells.get((t, cfg.label))
            row.append(f"{s['mean']:.3f} ± {s['std']:.3f} (n={s['n']})" if s else "–")
        row.append(str(PAPER_DEIT_T.get(cfg.variant, "–")) if BASE.get(cfg.variant) == cfg else "–")
        table.append(row)
    return markdown_table(header, table, numeric=True)


#: what each pair of variants isolates (notebook 04 and ``ablation.md`` state each one's verdict).
COMPARISONS = (
    ("linear+focus", "linear", "focusing alone"),
    ("linear+dwc", "linear", "DWC alone"),
    ("fla", "linear+dwc", "focusing, on top of DWC"),
    ("fla", "linear+focus", "DWC, on top of focusing"),
    ("fla", "softmax", "FLA against softmax"),
)


def compare(rows: list[dict], task: str, a: str, b: str) -> dict | None:
    """Variant ``a`` minus variant ``b`` (their default p, k) on ``task``: difference of the seed means and its verdict.

    The rule is deliberately simple: a difference counts when it exceeds twice its standard
    error sqrt(s_a²/n_a + s_b²/n_b) over seeds; with one seed there is no spread and no verdict.
    None when either variant has no run on ``task``.
    """
    stats = {(s["task"], Config(s["variant"], s["p"], s["kernel_size"])): s for s in summary(rows)}
    sa, sb = stats.get((task, BASE[a])), stats.get((task, BASE[b]))
    if sa is None or sb is None:
        return None
    delta = sa["mean"] - sb["mean"]
    se = math.sqrt(sa["std"] ** 2 / sa["n"] + sb["std"] ** 2 / sb["n"])
    if min(sa["n"], sb["n"]) < 2:
        word = "one seed: no spread, so no verdict"
    elif abs(delta) > 2 * se:
        word = f"{a} {'better' if delta > 0 else 'worse'} (|Δ| > 2 SE = {2 * se:.3f})"
    else:
        word = f"no clear difference (|Δ| ≤ 2 SE = {2 * se:.3f})"
    text = (f"{a} {sa['mean']:.3f} ± {sa['std']:.3f} vs {b} {sb['mean']:.3f} ± {sb['std']:.3f} "
            f"(n = {sa['n']}, {sb['n']}): Δ = {delta:+.3f}, {word}")
    return {"task": task, "a": a, "b": b, "delta": delta, "se": se, "n": min(sa["n"], sb["n"]),
            "clear": min(sa["n"], sb["n"]) >= 2 and abs(delta) > 2 * se, "text": text}


def verdicts(rows: list[dict]) -> str:
    """Per task, one line per comparison of ``COMPARISONS``: what adding focusing or DWC did, with the seed spread."""
    lines = []
    for task in dict.fromkeys(r["task"] for r in rows):
        lines.append(f"{task} ({next(r['metric'] for r in rows if r['task'] == task)}):")
        for a, b, what in COMPARISONS:
            c = compare(rows, task, a, b)
            if c:
                lines.append(f"  {what:<26} {c['text']}")
    return "\n".join(lines)


def markdown(rows: list[dict]) -> str:
    """The text of ``OUT/ablation.md``: the summary table and what each step did."""
    return "\n".join(["# Ablation: the token mixer, everything else fixed", "",
                      "Mean ± standard deviation over seeds (n = number of seeds); `fla ablate`, see "
                      "`fla/experiments/ablation/`.", "",
                      summary_table(rows) if rows else "(no runs yet)", "",
                      "What each step did (a difference counts when it exceeds twice its standard error over seeds):",
                      "", "```", verdicts(rows), "```", ""])


def plot(rows: list[dict], path=None):
    """Per task: the five variants (bars, seed spread as error bars), fla's p sweep and kernel sweep (notebook 04)."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stats = summary(rows)
    tasks = list(dict.fromkeys(s["task"] for s in stats))
    fig, axes = plt.subplots(len(tasks), 3, figsize=(12, 3.2 * len(tasks)), squeeze=False)
    for ax_row, task in zip(axes, tasks):
        mine = {Config(s["variant"], s["p"], s["kernel_size"]): s for s in stats if s["task"] == task}
        metric = next(iter(mine.values()))["metric"]
        base = [(v, mine[c]) for v, c in BASE.items() if c in mine]
        ax = ax_row[0]
        ax.bar(range(len(base)), [s["mean"] for _, s in base], yerr=[s["std"] for _, s in base], capsize=3,
               color=[f"C{i}" for i in range(len(base))])
        ax.set_xticks(range(len(base)), [v for v, _ in base], rotation=20)
        lo = min(s["mean"] - s["std"] for _, s in base)
        ax.set_ylim(max(0.0, lo - 0.1 * (1 - lo)), min(1.0, max(s["mean"] + s["std"] for _, s in base) + 0.05))
        ax.set(title=f"{task}: the five mixers", ylabel=metric)
        for ax, name, key, fixed in ((ax_row[1], "p", "p", ("kernel_size", K_DEFAULT)),
                                     (ax_row[2], "kernel size k", "kernel_size", ("p", P_DEFAULT))):
            sweep = sorted((c.__dict__[key], s) for c, s in mine.items()
                           if c.variant == "fla" and c.__dict__[fixed[0]] == fixed[1])
            if sweep:
                ax.errorbar([x for x, _ in sweep], [s["mean"] for _, s in sweep], yerr=[s["std"] for _, s in sweep],
                            marker="o", capsize=3, color="C4", label="fla")
                ax.set_xticks([x for x, _ in sweep])
            for v in ("softmax", "linear"):
                if BASE[v] in mine:
                    ax.axhline(mine[BASE[v]]["mean"], ls="--", lw=1, color=f"C{list(BASE).index(v)}", label=v)
            ax.set(title=f"{task}: fla over {name}", xlabel=name, ylabel=metric)
            ax.legend(fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig


