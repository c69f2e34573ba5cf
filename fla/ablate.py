"""``fla ablate``: the paper's ablation on a CPU: small models that differ only in their token mixer (notebook 04).

The paper's central table (DeiT-T, ImageNet top-1): linear 70.5 → + focusing 71.8 → + DWC
74.1, softmax 72.2. Here the same five mixers go into one small network and are trained on the
two tasks of :mod:`fla.tasks` (associative recall, helmet patches):

==============  ================================================================  =========
variant         token mixer                                                       p, k
==============  ================================================================  =========
softmax         ``SoftmaxAttention(dim, heads)``                                  0, 0
linear          ``LinearAttention(dim, heads)`` (ReLU)                            0, 0
linear+focus    ``FocusedLinearAttention(dim, heads, focusing_factor=p, kernel_size=0)``  p, 0
linear+dwc      ``LinearAttention(dim, heads, kernel_size=k)``                    0, k
fla             ``FocusedLinearAttention(dim, heads, focusing_factor=p, kernel_size=k)``  p, k
==============  ================================================================  =========

plus the sweeps of ``fla`` over p ∈ {1, 2, 3, 4, 8} (k = 5) and k ∈ {3, 5, 7} (p = 3). In the
CSV, p = 0 means no focusing and kernel_size = 0 no DWC. The focused modules keep their learned
positional encoding on K (part of the paper's module); the others get none, and nothing else differs.

Network: stem → ``depth`` × [x + mixer(LN(x)), x + MLP(LN(x))] → LN → 1×1 classifier per token.
One run = one task × config × seed: seeded init and data, AdamW with warm-up and cosine decay,
a fixed number of steps, then the task's metric. A row goes into ``OUT/ablation.csv`` after each
run (``ablation.md`` and ``ablation.png`` rewritten), so an interrupted sweep keeps what finished
and a rerun skips it. The GPU is used when present; on the CPU the same seed gives the same numbers.
"""
from __future__ import annotations

import contextlib
import csv
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from .files import write_atomic, write_csv
from .tasks import HelmetTask, RecallTask

__all__ = [
    "VARIANTS", "P_SWEEP", "K_SWEEP", "BASE", "COLUMNS", "TASKS", "PRESETS", "COMPARISONS", "Config", "configs",
    "token_mixer", "MixerNet", "make_task", "train_run", "train_one", "find_data", "run_ablation", "SettingsClash",
    "read_rows", "summary", "summary_table", "compare", "verdicts", "write_outputs", "plot", "add_arguments", "run",
]

VARIANTS = ("softmax", "linear", "linear+focus", "linear+dwc", "fla")
P_DEFAULT, K_DEFAULT = 3, 5
P_SWEEP, K_SWEEP = (1, 2, 3, 4, 8), (3, 5, 7)
COLUMNS = ["task", "variant", "p", "kernel_size", "seed", "metric", "value", "params", "train_s"]
KEY = ("task", "variant", "p", "kernel_size", "seed")  # a row with these values means: this run is done
TASKS = ("recall", "helmet")


@dataclass(frozen=True)
class Config:
    """One token mixer: ``p`` = 0 means no focusing, ``kernel_size`` = 0 no DWC."""

    variant: str
    p: float = 0
    kernel_size: int = 0

    @property
    def label(self) -> str:
        extra = [f"p={self.p:g}"] * bool(self.p) + [f"k={self.kernel_size}"] * bool(self.kernel_size)
        return self.variant + (f" ({', '.join(extra)})" if extra else "")


BASE = {
    "softmax": Config("softmax"),
    "linear": Config("linear"),
    "linear+focus": Config("linear+focus", P_DEFAULT, 0),
    "linear+dwc": Config("linear+dwc", 0, K_DEFAULT),
    "fla": Config("fla", P_DEFAULT, K_DEFAULT),
}


def configs(variants=VARIANTS, sweeps: bool = True) -> list[Config]:
    """The five variants (those in ``variants``), then ``fla``'s p and kernel-size sweeps when ``fla`` is in."""
    out = [BASE[v] for v in VARIANTS if v in variants]
    if sweeps and "fla" in variants:
        out += [Config("fla", p, K_DEFAULT) for p in P_SWEEP]
        out += [Config("fla", P_DEFAULT, k) for k in K_SWEEP]
    return list(dict.fromkeys(out))  # the sweeps' p=3, k=5 point is the fla row itself


def token_mixer(cfg: Config, dim: int, heads: int, grid: tuple[int, int]) -> nn.Module:
    """The attention module of ``cfg`` (see the table in the module docstring)."""
    if cfg.variant == "softmax":
        return SoftmaxAttention(dim, heads)
    if cfg.variant in ("linear", "linear+dwc"):
        return LinearAttention(dim, heads, kernel_size=cfg.kernel_size)
    if cfg.variant in ("linear+focus", "fla"):
        return FocusedLinearAttention(dim, heads, focusing_factor=cfg.p, kernel_size=cfg.kernel_size, pos_size=grid)
    raise ValueError(f"unknown variant {cfg.variant!r}: choose from {', '.join(VARIANTS)}")


class TokenNorm(nn.Module):
    """LayerNorm over the channels of every token of a (B, C, H, W) map."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return rearrange(self.norm(rearrange(x, "b c h w -> b h w c")), "b h w c -> b c h w")


class Block(nn.Module):
    """Pre-norm transformer block on a feature map: x + mixer(LN x), then x + MLP(LN x)."""

    def __init__(self, mixer: nn.Module, dim: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.mixer, self.norm2 = TokenNorm(dim), mixer, TokenNorm(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mlp_ratio * dim, 1), nn.GELU(), nn.Conv2d(mlp_ratio * dim, dim, 1))

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MixerNet(nn.Module):
    """stem → ``depth`` blocks with the token mixer of ``cfg`` → per-token class logits (B, classes, H, W)."""

    def __init__(self, stem: nn.Module, cfg: Config, dim: int, heads: int, depth: int, classes: int,
                 grid: tuple[int, int]):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*(Block(token_mixer(cfg, dim, heads, grid), dim) for _ in range(depth)))
        self.norm = TokenNorm(dim)
        self.head = nn.Conv2d(dim, classes, 1)

    def features(self, inputs) -> list[torch.Tensor]:
        """The input of every block's mixer (LN'd map), for attention pictures (notebook 04)."""
        x, seen = self.stem(inputs), []
        for block in self.blocks:
            seen.append(block.norm1(x))
            x = block(x)
        return seen

    def forward(self, inputs):
        return self.head(self.norm(self.blocks(self.stem(inputs))))


#: per task: the task's own settings, the model, the optimisation. ``--quick``: the same tasks, shorter.
PRESETS = {
    "full": {
        "recall": {"task_args": {"grid": (8, 8), "pairs": 16, "queries": 16, "keys": 32, "values": 16},
                   "dim": 32, "heads": 2, "depth": 1, "steps": 300, "batch": 32, "lr": 1e-2},
        "helmet": {"task_args": {"grid": 20, "patch": 8}, "dim": 32, "heads": 2, "depth": 2,
                   "steps": 300, "batch": 8, "lr": 3e-3},
    },
    "quick": {
        "recall": {"task_args": {"grid": (8, 8), "pairs": 16, "queries": 16, "keys": 32, "values": 16, "test_size": 128},
                   "dim": 32, "heads": 2, "depth": 1, "steps": 30, "batch": 16, "lr": 1e-2},
        "helmet": {"task_args": {"grid": 20, "patch": 8}, "dim": 32, "heads": 2, "depth": 2,
                   "steps": 15, "batch": 4, "lr": 3e-3},
    },
}


def make_task(name: str, settings: dict, data=None):
    """The task ``name`` with ``settings`` (a preset's "task_args" entry); ``data``: the helmet data.yaml."""
    if name == "recall":
        return RecallTask(**settings)
    if name == "helmet":
        return HelmetTask(data, **settings)
    raise ValueError(f"unknown task {name!r}: choose from {', '.join(TASKS)}")


_TASK_CACHE: dict = {}


def _task(name: str, settings: dict, data):
    """One task object per (name, settings, data) and process: the helmet photos are decoded once."""
    key = (name, repr(sorted(settings.items())), str(data))
    if key not in _TASK_CACHE:
        _TASK_CACHE[key] = make_task(name, settings, data)
    return _TASK_CACHE[key]


def _lr_at(step: int, steps: int, lr: float, warmup: float = 0.1) -> float:
    """Linear warm-up over the first ``warmup`` fraction, then cosine decay to 0."""
    w = max(1, int(warmup * steps))
    return lr * (step + 1) / w if step < w else lr * 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


def train_run(task, cfg: Config, seed: int, *, dim: int, heads: int, depth: int, steps: int, batch: int, lr: float,
              device=None, **_) -> tuple[dict, MixerNet]:
    """Train one model and score it: (CSV row, trained model in eval mode).

    Seeded: the initial weights by ``torch.manual_seed(seed)``, the training batches by a
    generator of their own; on the CPU the same call returns the same numbers.
    """
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    with _one_thread(device):
        return _train(task, cfg, seed, dim, heads, depth, steps, batch, lr, device)


@contextlib.contextmanager
def _one_thread(device):
    """On the CPU, one torch thread: the same numbers in a worker, in this process and in the notebook
    (the order of float sums depends on the thread count), and no two threads waiting on a busy machine."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _train(task, cfg, seed, dim, heads, depth, steps, batch, lr, device):
    torch.manual_seed(seed)
    model = MixerNet(task.stem(dim), cfg, dim, heads, depth, task.classes, task.grid).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=lr)
    data = torch.Generator().manual_seed(seed)
    weight = None if task.class_weights is None else task.class_weights.to(device)
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        inputs, target = task.batch(batch, data, device)
        loss = F.cross_entropy(model(inputs), target, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0
    model.eval()
    value = task.evaluate(model, device)
    row = {"task": task.name, "variant": cfg.variant, "p": cfg.p, "kernel_size": cfg.kernel_size, "seed": seed,
           "metric": task.metric, "value": value, "params": sum(p.numel() for p in model.parameters()),
           "train_s": train_s}
    return row, model


def train_one(task: str, variant: str | Config, seed: int = 0, *, quick: bool = False, data=None, device=None,
              **overrides) -> tuple[dict, MixerNet]:
    """One run of the ablation with its preset, model returned (notebook 04's attention maps and ranks).

    ``variant``: a name of ``VARIANTS`` (its default p, k) or a :class:`Config`; ``overrides``
    replace preset entries (e.g. ``steps=100``, ``task_args={...}``). On the CPU, seed and
    preset equal to a row of the CSV give that row's value again.
    """
    preset = {**PRESETS["quick" if quick else "full"][task], **overrides}
    cfg = BASE[variant] if isinstance(variant, str) else variant
    return train_run(_task(task, preset["task_args"], find_data(data) if task == "helmet" else None), cfg, seed,
                     device=device, **preset)


# ---------------------------------------------------------------------------------------------- many runs


def find_data(data=None):
    """The helmet data.yaml: ``data``, else ``$FLA_DATA``, else an earlier download; None when there is none.

    Never downloads (``python -m fla data get`` does): the ablation must run offline.
    Raises ``fla.data.DataError`` when ``data`` / ``$FLA_DATA`` name something that is not the subset.
    """
    from .data import cache_dir, resolve_data

    if data or os.environ.get("FLA_DATA"):
        return resolve_data(data)
    cached = cache_dir() / "data.yaml"
    return resolve_data(cached) if cached.is_file() else None


def _one(name: str, preset: dict, data, cfg: Config, seed: int, device) -> dict:
    """One run, in this process or in a worker (top level, so that it pickles)."""
    settings = {k: v for k, v in preset.items() if k != "task_args"}
    row, _ = train_run(_task(name, preset["task_args"], data), cfg, seed, device=device, **settings)
    return row


class SettingsClash(ValueError):
    """The output folder holds runs made with other task or training settings."""


def _check_settings(out: Path, presets: dict) -> None:
    """``OUT/settings.json`` records each task's preset; a run with other settings must not mix into that CSV."""
    import json

    path = out / "settings.json"
    known = json.loads(path.read_text()) if path.is_file() else {}
    mine = json.loads(json.dumps(presets))  # tuples as lists, as they come back from the file
    clash = [t for t in mine if t in known and known[t] != mine[t]]
    if clash:
        raise SettingsClash(f"{out} holds {', '.join(clash)} runs with other settings (see {path}): use another --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({**known, **mine}, indent=1))


def _key(row: dict) -> tuple:
    return row["task"], row["variant"], float(row["p"]), int(row["kernel_size"]), int(row["seed"])


def run_ablation(out, tasks=TASKS, variants=VARIANTS, seeds=(0, 1, 2), *, quick: bool = False, sweeps: bool = True,
                 data=None, device=None, jobs: int | None = None, presets: dict | None = None, progress: bool = True,
                 log=print) -> list[dict]:
    """Every task × config × seed not yet in ``OUT/ablation.csv``; outputs rewritten after each run.

    ``jobs``: runs in parallel on the CPU, one torch thread each (default: one per core); 1 runs
    them in this process. On a GPU they run one after the other in this process. ``presets``:
    per-task settings (default ``PRESETS["quick" if quick else "full"]``). The helmet task is
    skipped, with a message saying how to get the data, when there is none (see :func:`find_data`).
    Returns the rows of the requested tasks, configs and seeds (done earlier or now).
    """
    from tqdm.auto import tqdm

    out = Path(out)
    presets = presets or PRESETS["quick" if quick else "full"]
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    tasks = list(tasks)
    if "helmet" in tasks:
        data = find_data(data)
        if data is None:
            from .data import HOW_TO

            log(f"helmet task skipped: no helmet data here.\n{HOW_TO}")
            tasks.remove("helmet")
    _check_settings(out, {t: presets[t] for t in tasks})
    rows = read_rows(out)
    done = {_key(r) for r in rows}
    wanted = [(t, cfg, s) for t in tasks for cfg in configs(variants, sweeps) for s in seeds]
    todo = [(t, cfg, s) for t, cfg, s in wanted if _key({"task": t, **cfg.__dict__, "seed": s}) not in done]
    if len(todo) < len(wanted):
        log(f"{len(wanted) - len(todo)} of {len(wanted)} runs already in {out / 'ablation.csv'}: skipped")
    jobs = 1 if device.type == "cuda" else max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    bar = tqdm(total=len(todo), desc="fla ablate", unit="run", disable=not progress or not todo)

    def finished(row):
        rows.append(row)
        write_outputs(rows, out, figure=False)
        bar.set_postfix_str(f"{row['task']} {Config(row['variant'], row['p'], row['kernel_size']).label} "
                            f"s{row['seed']}: {row['metric']} {row['value']:.3f}")
        bar.update(1)

    args = [(t, presets[t], data, cfg, s, device.type) for t, cfg, s in todo]
    try:
        if jobs == 1:
            for a in args:
                finished(_one(*a))
        else:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor, as_completed

            # fork (Linux, a single-threaded caller such as the command line): fast, no re-import of
            # __main__, one torch thread per worker as in DataLoader workers. A caller with other threads
            # (a Jupyter kernel) can leave a lock held in the child and hang it: spawn there, and off Linux.
            import threading

            single = threading.active_count() == 1
            method = "fork" if sys.platform.startswith("linux") and single else "spawn"
            with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method)) as pool:
                futures = [pool.submit(_one, *a) for a in args]
                try:
                    for f in as_completed(futures):
                        finished(f.result())
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
    finally:
        bar.close()
        if todo:
            write_outputs(rows, out)
    keys = {_key({"task": t, **cfg.__dict__, "seed": s}) for t, cfg, s in wanted}
    order = {k: i for i, k in enumerate(_key({"task": t, **cfg.__dict__, "seed": s}) for t, cfg, s in wanted)}
    return sorted((r for r in rows if _key(r) in keys), key=lambda r: order[_key(r)])


# ---------------------------------------------------------------------------------------------- outputs

#: the paper's Table (DeiT-T on ImageNet-1k, top-1 %), for the five variants (Han et al. 2023, ablation).
PAPER_DEIT_T = {"softmax": 72.2, "linear": 70.5, "linear+focus": 71.8, "fla": 74.1}


def read_rows(out) -> list[dict]:
    """Rows of ``OUT/ablation.csv`` (numbers parsed), ``[]`` when there is none yet."""
    path = Path(out) / "ablation.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    types = {"p": float, "kernel_size": int, "seed": int, "value": float, "params": int, "train_s": float}
    return [{k: types.get(k, str)(v) for k, v in r.items()} for r in rows]


def summary(rows: list[dict]) -> list[dict]:
    """Per task × config: mean, standard deviation (0 for one seed) and number of seeds of the metric."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["variant"], float(r["p"]), int(r["kernel_size"])), []).append(r)
    out = []
    for (task, variant, p, k), g in groups.items():
        xs = [r["value"] for r in g]
        out.append({"task": task, "variant": variant, "p": p, "kernel_size": k, "label": Config(variant, p, k).label,
                    "metric": g[0]["metric"], "mean": statistics.mean(xs),
                    "std": statistics.stdev(xs) if len(xs) > 1 else 0.0, "n": len(xs), "params": g[0]["params"],
                    "train_s": statistics.mean(r["train_s"] for r in g)})
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
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for cfg in cfgs:
        row = [cfg.label]
        for t in tasks:
            s = cells.get((t, cfg.label))
            row.append(f"{s['mean']:.3f} ± {s['std']:.3f} (n={s['n']})" if s else "–")
        row.append(str(PAPER_DEIT_T.get(cfg.variant, "–")) if BASE.get(cfg.variant) == cfg else "–")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


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


def write_outputs(rows: list[dict], out, figure: bool = True) -> None:
    """``OUT/ablation.csv``, ``OUT/ablation.md`` and (``figure``) ``OUT/ablation.png``, each written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "ablation.csv", COLUMNS, rows)
    text = ["# Ablation: the token mixer, everything else fixed", "",
            "Mean ± standard deviation over seeds (n = number of seeds); `fla ablate`, see `fla/ablate.py`.", "",
            summary_table(rows) if rows else "(no runs yet)", "",
            "What each step did (a difference counts when it exceeds twice its standard error over seeds):", "",
            "```", verdicts(rows), "```", ""]
    write_atomic(out / "ablation.md", "\n".join(text))
    if figure and rows:
        plot(rows, out / "ablation.png")


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


# ---------------------------------------------------------------------------------------------- command line


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="short runs, one seed: a smoke test (about a minute on 2 cores)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK", help=f"from {', '.join(TASKS)}")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="VARIANT",
                        help=f"from {', '.join(VARIANTS)}; fla brings its p and kernel-size sweeps")
    parser.add_argument("--no-sweeps", action="store_true", help="only the five variants, no p / kernel sweeps of fla")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, metavar="SEED",
                        help="one run per seed (default 0 1 2; 0 with --quick)")
    parser.add_argument("--data", help="helmet data.yaml or folder (default: $FLA_DATA, else an earlier `fla data get`)")
    parser.add_argument("--jobs", type=int, default=None, help="parallel CPU runs, one thread each (default: one per core)")
    parser.add_argument("--out", help="where ablation.csv, .md, .png and settings.json go "
                        "(default runs/ablation, runs/ablation-quick with --quick)")


def _error(message: str) -> int:
    print(f"fla ablate: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    from .data import DataError

    for name, given, allowed in (("--tasks", args.tasks, TASKS), ("--variants", args.variants, VARIANTS)):
        bad = [x for x in given if x not in allowed]
        if bad:
            return _error(f"{name} {' '.join(bad)}: choose from {', '.join(allowed)}")
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else [0, 1, 2])
    if args.jobs is not None and args.jobs < 1:
        return _error(f"--jobs {args.jobs}: must be at least 1")
    try:
        data = find_data(args.data) if "helmet" in args.tasks else None
    except DataError as e:
        return _error(str(e).splitlines()[0])
    if "helmet" in args.tasks and data is None and args.tasks == ["helmet"]:
        return _error("--tasks helmet: no helmet data here; get it with `python -m fla data get --out DIR`, "
                      "then pass --data DIR or set FLA_DATA=DIR")
    out = args.out or ("runs/ablation-quick" if args.quick else "runs/ablation")
    t0 = time.perf_counter()
    try:
        rows = run_ablation(out, args.tasks, args.variants, seeds, quick=args.quick, sweeps=not args.no_sweeps,
                            data=data, jobs=args.jobs, log=lambda m: print(m, file=sys.stderr))
    except SettingsClash as e:
        return _error(str(e))
    print(summary_table(rows))
    print(f"{len(rows)} runs in {Path(out) / 'ablation.csv'}; this call took {time.perf_counter() - t0:.0f} s")
    return 0
