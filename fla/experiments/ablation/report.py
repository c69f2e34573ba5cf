"""What the ablation's rows say: per mixer the mean over seeds, each contrast as a paired difference with its
interval, the trend over p, the needle's slope over N (``ablation.md``, ``ablation.png``, notebook 04)."""
from __future__ import annotations

import math

from ...figures import PAGE_WIDTH
from ...files import markdown_table
from ..stats import group_by, mean_sd, paired, trend
from .mixers import BASE, P_DEFAULT, Config

TUNE_SEED = 100  # runs.TUNE_SEED (runs imports this module): its rows pick the learning rates and enter no mean

__all__ = ["PAPER_DEIT_T", "CONTRASTS", "config_of", "seeded", "tuning_table", "summary", "summary_table", "contrast", "contrasts",
           "contrast_table", "p_trend", "NEEDLE_NS", "needle_slopes", "markdown", "plot"]

#: the paper's ablation (DeiT-T on ImageNet-1k, top-1 %, one run each), read in order: each row adds one
#: part to the row above it. Focusing was added without DWC; DWC then on top of focusing.
PAPER_DEIT_T = {"softmax": 72.2, "linear": 70.5, "linear+focus": 71.8, "fla": 74.1}

_FOCUS_HEAD = Config("linear+focus", P_DEFAULT, 0, per_head=True)
#: (a, b, what a − b isolates): each pair differs in one module argument (``mixers.mixer_args``)
CONTRASTS = (
    (BASE["linear+focus"], BASE["linear"], "focusing (p=1 → 3)"),
    (BASE["linear+dwc"], BASE["linear"], "DWC"),
    (BASE["fla"], BASE["linear+dwc"], "focusing, on top of DWC"),
    (BASE["fla"], BASE["linear+focus"], "DWC, on top of focusing"),
    (_FOCUS_HEAD, BASE["linear+focus"], "focusing per head vs over C"),
    (BASE["fla"], BASE["softmax"], "FLA − softmax"),
    (BASE["linear"], BASE["softmax"], "linear − softmax"),
)


def config_of(row: dict) -> Config:
    return Config(row["variant"], float(row["p"]), int(row["kernel_size"]), bool(row.get("per_head", 0)))


def seeded(rows: list[dict]) -> list[dict]:
    """The rows that enter the means and contrasts: every seed but the learning-rate tuning seed."""
    return [r for r in rows if r["seed"] != TUNE_SEED]


def tuning_table(rows: list[dict]) -> str:
    """Markdown: per task × setting × config, the value at each learning rate on the tuning seed (best in bold)."""
    tune = [r for r in rows if r["seed"] == TUNE_SEED]
    groups = group_by(tune, ("task", "setting", "variant", "p", "kernel_size", "per_head"))
    lrs = sorted({r["lr"] for r in tune})
    table = []
    for (task, setting, *_), g in groups.items():
        best = max(g, key=lambda r: (r["value"], -r["lr"]))  # as runs.best_lrs: a tie goes to the smaller lr
        cells = {r["lr"]: (f"**{r['value']:.3f}**" if r is best else f"{r['value']:.3f}") for r in g}
        table.append([task, setting or "–", config_of(g[0]).label] + [cells.get(lr, "–") for lr in lrs])
    return markdown_table(["task", "setting", "mixer"] + [f"lr {lr:g}" for lr in lrs], table, numeric=True)


def _mean(xs) -> float:
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return sum(xs) / len(xs) if xs else math.nan


def summary(rows: list[dict]) -> list[dict]:
    """Per task × setting × config (its seeds at one learning rate): mean, sd, n, lr, steps90 and probe means."""
    out = []
    for (task, setting, *_), g in group_by(seeded(rows), ("task", "setting", "variant", "p", "kernel_size", "per_head")).items():
        mean, sd = mean_sd([r["value"] for r in g])
        out.append({"task": task, "setting": setting, "config": config_of(g[0]), "label": config_of(g[0]).label,
                    "metric": g[0]["metric"], "mean": mean, "std": sd, "n": len(g), "lr": g[0]["lr"],
                    "steps90": _mean([r["steps90"] for r in g]), "steps": g[0].get("steps", math.nan),
                    **{k: _mean([r.get(k, math.nan) for r in g]) for k in ("mass", "entropy", "key_argmax", "key_erank")},
                    "seeds": sorted(r["seed"] for r in g)})
    return out


def _order(cfg: Config) -> tuple:
    base = list(BASE.values())
    return (0, base.index(cfg), 0) if cfg in base else (1, cfg.per_head, cfg.p)


def _fmt(x, digits=3) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def summary_table(rows: list[dict], task: str | None = None) -> str:
    """Markdown, one line per task × setting × config: mean ± sd (n), the tuned lr, steps to 90 %, the probes."""
    stats = sorted(summary(rows), key=lambda s: (s["task"], s["setting"], _order(s["config"])))
    if task is not None:
        stats = [s for s in stats if s["task"] == task]
    header = ["task", "setting", "mixer", "metric: mean ± sd (n)", "lr", "steps to 90 %", "answer mass", "row entropy",
              "key argmax ch.", "key eff. rank", "paper DeiT-T"]
    table = [[s["task"], s["setting"] or "–", s["label"], f"{s['mean']:.3f} ± {s['std']:.3f} ({s['n']})", f"{s['lr']:g}",
              f"{s['steps90']:.0f} / {s['steps']:.0f}", _fmt(s["mass"]), _fmt(s["entropy"], 2), _fmt(s["key_argmax"], 1),
              _fmt(s["key_erank"], 1),
              str(PAPER_DEIT_T[s["config"].variant]) if s["task"] == "helmet" and BASE.get(s["config"].variant) == s["config"]
              and s["config"].variant in PAPER_DEIT_T else "–"] for s in stats]
    return markdown_table(header, table, numeric=True)


def _by_seed(rows, task, setting, cfg) -> dict:
    return {r["seed"]: r for r in seeded(rows) if (r["task"], r["setting"]) == (task, setting) and config_of(r) == cfg}


def contrast(rows: list[dict], task: str, setting: str, a: Config, b: Config, column: str = "value") -> dict | None:
    """``a`` − ``b`` on ``task``/``setting`` paired by seed (``stats.paired``): mean difference, t-interval,
    paired-t and exact sign-flip p. None when either has no run there."""
    ra, rb = _by_seed(rows, task, setting, a), _by_seed(rows, task, setting, b)
    seeds = sorted(set(ra) & set(rb))
    if not seeds:
        return None
    return {"task": task, "setting": setting, "a": a, "b": b, "seeds": seeds,
            **paired([ra[s][column] for s in seeds], [rb[s][column] for s in seeds])}


def contrasts(rows: list[dict]) -> list[dict]:
    """Every contrast of ``CONTRASTS`` that the rows allow, per task and setting, labelled."""
    out = []
    for task, setting in dict.fromkeys((r["task"], r["setting"]) for r in rows):
        for a, b, what in CONTRASTS:
            c = contrast(rows, task, setting, a, b)
            if c:
                out.append({**c, "what": what})
    return out


def contrast_table(rows: list[dict]) -> str:
    """Markdown: each contrast's paired difference, 95 % t-interval, paired-t p and sign-flip p."""
    table = [[c["task"], c["setting"] or "–", c["what"], f"{c['a'].label} − {c['b'].label}", f"{c['diff']:+.3f}",
              f"[{c['low']:+.3f}, {c['high']:+.3f}]" if not math.isnan(c["low"]) else "–",
              _fmt(c["p_t"]), f"{c['p_sign']:.3f}", str(c["n"])] for c in contrasts(rows)]
    return markdown_table(["task", "setting", "contrast", "a − b", "mean Δ", "95 % t-interval", "paired t p",
                           "sign-flip p", "seeds"], table, numeric=True)


def p_trend(rows: list[dict], task: str = "recall", setting: str | None = None) -> dict | None:
    """The metric over log2 p for focusing alone (k = 0, over C; p = 1 is "linear"): per-seed slopes, tested
    (``stats.trend``). None without at least two p values on shared seeds."""
    mine = [r for r in seeded(rows) if r["task"] == task and (setting is None or r["setting"] == setting)
            and r["variant"] in ("linear", "linear+focus") and r["kernel_size"] == 0 and not r["per_head"]]
    ps = sorted({float(r["p"]) for r in mine})
    by = {}
    for r in mine:
        by.setdefault(r["seed"], {})[float(r["p"])] = r["value"]
    seeds = [s for s, v in by.items() if all(p in v for p in ps)]
    if len(ps) < 2 or not seeds:
        return None
    return {"task": task, "ps": ps, **trend(ps, {s: [by[s][p] for p in ps] for s in sorted(seeds)})}


NEEDLE_NS = (64, 256, 1024)  # the grids every needle model is scored on (columns mass_N, acc_N)


def needle_slopes(rows: list[dict], metric: str = "mass") -> dict:
    """Per needle mixer: the slope of log2(``metric``) over log2 N, where each trained model was scored on
    N = 64, 256, 1024 tokens (columns ``mass_N`` / ``acc_N``); one slope per seed, tested (``stats.trend``).
    -1 is "falls like 1/N". Plus "focus − linear": the two mixers' slopes paired by seed."""
    mine = [r for r in seeded(rows) if r["task"] == "needle"]
    out = {}
    for cfg in dict.fromkeys(config_of(r) for r in mine):
        by = {r["seed"]: [r.get(f"{metric}_{n}", math.nan) for n in NEEDLE_NS] for r in mine if config_of(r) == cfg}
        by = {s: ys for s, ys in sorted(by.items()) if all(y > 0 for y in ys)}  # NaN and 0 fail y > 0
        if by:
            out[cfg.label] = {"ns": list(NEEDLE_NS), "seeds": list(by),
                              **trend(NEEDLE_NS, {s: [math.log2(y) for y in ys] for s, ys in by.items()})}
    f, l = out.get(BASE["linear+focus"].label), out.get(BASE["linear"].label)
    if f and l:
        shared = [s for s in f["seeds"] if s in l["seeds"]]
        if shared:
            out["focus − linear"] = paired([f["slopes"][f["seeds"].index(s)] for s in shared],
                                           [l["slopes"][l["seeds"].index(s)] for s in shared])
    return out


def _slope_text(rows) -> list[str]:
    lines = []
    t = p_trend(rows)
    if t:
        lines.append(f"recall, focusing alone over p ∈ {{{', '.join(f'{p:g}' for p in t['ps'])}}}: accuracy changes by "
                     f"{t['slope']:+.3f} per doubling of p, 95 % [{_fmt(t['low'])}, {_fmt(t['high'])}], "
                     f"paired-t p = {_fmt(t['p_t'])}, sign-flip p = {t['p_sign']:.3f} (n = {t['n']} seeds)")
    for col, what in (("mass", "answer mass"), ("acc", "accuracy")):
        for label, s in needle_slopes(rows, col).items():
            if label == "focus − linear":
                lines.append(f"needle, {what}: slope of linear+focus − slope of linear = {s['diff']:+.3f}, "
                             f"95 % [{_fmt(s['low'])}, {_fmt(s['high'])}], sign-flip p = {s['p_sign']:.3f} (n = {s['n']})")
            else:
                lines.append(f"needle, {what}, {label}: log2 {what} per doubling of N {s['slope']:+.3f}, "
                             f"95 % [{_fmt(s['low'])}, {_fmt(s['high'])}] (n = {s['n']})")
    return lines


def markdown(rows: list[dict]) -> str:
    """The text of ``OUT/ablation.md``: the summary table, the paired contrasts, the trends."""
    if not rows:
        return "# Ablation\n\n(no runs yet)\n"
    return "\n".join(["# Ablation: the token mixer, everything else fixed", "",
                      "Per mixer its seeds at the learning rate tuned on a separate seed; `fla ablate`, see "
                      "`fla/experiments/ablation/`.", "", summary_table(rows), "",
                      "Each contrast paired by seed (a − b per seed; mean, 95 % t-interval, paired t and exact "
                      "sign-flip p):", "", contrast_table(rows), "", "Trends:", "", "```", *_slope_text(rows), "```", "",
                      f"Learning rates tried on seed {TUNE_SEED} (the best, in bold, is the one seeded above):", "",
                      tuning_table(rows), ""])


def _legend(ax):
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)


def plot(rows: list[dict], path=None):
    """Four panels: recall over p, capacity over pairs/d, needle answer mass over N (log-log), helmet's mixers."""
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    stats = summary(rows)
    fig, axes = plt.subplots(2, 2, figsize=(PAGE_WIDTH, 6.6))  # two by two: legible at the page's width
    axes = axes.ravel()
    ax = axes[0]
    rec = sorted([s for s in stats if s["task"] == "recall" and s["config"].variant in ("linear", "linear+focus")
                  and s["config"].kernel_size == 0 and not s["config"].per_head], key=lambda s: s["config"].p)
    if rec:
        ax.errorbar([s["config"].p for s in rec], [s["mean"] for s in rec], yerr=[s["std"] for s in rec], marker="o",
                    capsize=3, color="C2")
        ax.set_xscale("log", base=2)
        for v, c in (("softmax", "C0"), ("linear+dwc", "C3"), ("fla", "C4")):
            hit = [s for s in stats if s["task"] == "recall" and s["config"] == BASE[v]]
            if hit:
                ax.axhline(hit[0]["mean"], ls="--", lw=1, color=c, label=v)
        _legend(ax)
    ax.set(title="recall: focusing alone over p (k=0)", xlabel="p (1 = linear)", ylabel="accuracy")
    ax = axes[1]
    for v, c in (("linear", "C1"), ("linear+focus", "C2")):
        pts = sorted([(int(s["setting"].split("=")[1]), s) for s in stats if s["task"] in ("capacity", "recall")
                      and s["config"] == BASE[v]], key=lambda t: t[0])
        if pts:
            ax.errorbar([x for x, _ in pts], [s["mean"] for _, s in pts], yerr=[s["std"] for _, s in pts], marker="o",
                        capsize=3, color=c, label=BASE[v].label)
    ax.set_xscale("log", base=2)
    ax.set(title="recall: capacity (d = 16 per head)", xlabel="pairs", ylabel="accuracy")
    _legend(ax)
    ax = axes[2]
    needle = [r for r in seeded(rows) if r["task"] == "needle"]
    for v, c in (("softmax", "C0"), ("linear", "C1"), ("linear+focus", "C2")):
        mine = [r for r in needle if config_of(r) == BASE[v]]
        if mine:
            ax.plot(NEEDLE_NS, [_mean([r.get(f"mass_{n}", math.nan) for r in mine]) for n in NEEDLE_NS], marker="o",
                    color=c, label=BASE[v].label)
    if needle:
        ax.plot(NEEDLE_NS, [4 / n for n in NEEDLE_NS], ls=":", color="gray", label="∝ 1/N")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        _legend(ax)
    ax.set(title="needle: attention mass on the answer", xlabel="N tokens", ylabel="mass (mean over seeds)")
    ax = axes[3]
    hel = [s for s in stats if s["task"] == "helmet" and s["config"] in BASE.values()]
    hel.sort(key=lambda s: _order(s["config"]))
    if hel:
        ax.bar(range(len(hel)), [s["mean"] for s in hel], yerr=[s["std"] for s in hel], capsize=3,
               color=[f"C{i}" for i in range(len(hel))])
        ax.set_xticks(range(len(hel)), [s["config"].variant for s in hel], rotation=20, fontsize=8)
        lo = min(s["mean"] - s["std"] for s in hel)
        ax.set_ylim(max(0.0, lo - 0.05), min(1.0, max(s["mean"] + s["std"] for s in hel) + 0.02))
    ax.set(title="helmet: the five mixers", ylabel="mIoU")
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
