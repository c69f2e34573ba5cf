"""Train the YOLOv8 baseline and the FLA variants on the helmet subset: ``fla train`` and notebook 06.

One run = one variant, one seed, trained from its YAML (no pretrained weights) with ultralytics
under ``OUT/runs/<variant>-s<seed>-e<epochs>-<imgsz>px``. ultralytics keeps the epoch that scores
best on the validation split (``best.pt``); that checkpoint is then scored once on the held-out
test split, which never takes part in the choice. After each run a row goes into
``OUT/results.csv`` (and ``results.md``, ``curves.png``), so an interrupted sweep keeps what
finished and a rerun skips it (filling in the test columns of rows written before they existed).
At the end ``results.md`` gets, per variant, the paired test difference to ``base`` with a
bootstrap interval over test images (``fla.stats``).

- GPU when present, with AMP; on CPU no AMP (and no AMP check). ``quick=True`` is a tiny CPU run
  for tests and CI.
- ``s_per_epoch`` is the mean wall time of the training pass of an epoch, without the first epoch
  when there are more (it pays one-off warm-up), and without validation and checkpointing
  (validating a barely trained detector is dominated by NMS over junk boxes, not by the model).
- ``params`` and ``gflops`` are those of the trained model (2 classes) at 640×640, ultralytics'
  yardstick, whatever size it was trained at.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import math
import os
import statistics
import sys
import time
from pathlib import Path

from . import yolo  # noqa: F401  offline switches + our blocks registered before ultralytics is used
from .files import write_atomic, write_csv
from .stats import Detections, paired_bootstrap
from .yolo import DEFAULT_VARIANTS, VARIANTS, TransferTrainer, model_summary, model_yaml

import torch  # noqa: E402
from ultralytics import YOLO  # noqa: E402

__all__ = [
    "COLUMNS", "TEST_COLUMNS", "DETECTIONS", "QUICK", "START", "train_one", "train_all", "evaluate", "score_test",
    "compare", "comparison_lines", "verdict", "read_results", "read_epochs", "write_results", "write_comparisons",
    "read_comparisons", "summary_table", "markdown_table", "plot_curves", "plot_paired", "run_dir", "start_of",
    "cpu_threads", "amp_check_offline", "add_arguments", "run",
]

#: what a test metric is called in ``results.csv``: ``test_`` + the validation column's name.
TEST_COLUMNS = ["test_map50", "test_map50_95", "test_precision", "test_recall"]
COLUMNS = ["variant", "seed", "epochs", "imgsz", "device", "map50", "map50_95", "precision", "recall", "params", "gflops",
           "s_per_epoch", *TEST_COLUMNS]
#: what ``--quick`` means: one CPU epoch on small images (about 5 s a variant on 2 cores).
QUICK = {"epochs": 1, "imgsz": 160, "bootstrap": 200}
FULL = {"epochs": 100, "imgsz": 640, "bootstrap": 1000}  # the seed's experiment
KEY = ("variant", "seed", "epochs", "imgsz")  # a row with these values means: this run is done
DETECTIONS = "test_detections.npz"  # in each run folder: best.pt's matched test predictions, for the bootstrap
START = "start.txt"  # in OUT: what every run there started from; runs are compared only with runs of the same start


class RunError(RuntimeError):
    """A sweep that cannot go on as asked; the message says what to do."""


def run_dir(out: Path, variant: str, seed: int, epochs: int, imgsz: int) -> Path:
    """``OUT/runs/<variant>-s<seed>-e<epochs>-<imgsz>px``, the family's ``:`` as ``.`` (``yolo11.c3k2_fla``): a
    colon is not allowed in Windows paths and reads as a drive or URL elsewhere."""
    return Path(out) / "runs" / f"{variant.replace(':', '.')}-s{seed}-e{epochs}-{imgsz}px"


def amp_check_offline(check_amp):
    """ultralytics' AMP check downloads yolo26n.pt on a GPU; offline it would fail or wait on the network.
    Use the real check only when those weights are already on disk, else trust AMP (as the check does when it
    cannot download). On CPU the check returns False before any download, so it is left alone."""
    from ultralytics.utils import WEIGHTS_DIR

    def check(model):
        if next(model.parameters()).device.type == "cpu" or (WEIGHTS_DIR / "yolo26n.pt").is_file():
            return check_amp(model)
        return True

    return check


@contextlib.contextmanager
def _offline_amp_check():
    from ultralytics.engine import trainer

    real = trainer.check_amp
    trainer.check_amp = amp_check_offline(real)
    try:
        yield
    finally:
        trainer.check_amp = real


def cpu_threads() -> int:
    """torch threads for CPU runs: ``$FLA_THREADS``, else every core. On a machine shared with other jobs one
    thread per process wastes less: two threads wait on each other whenever either is descheduled."""
    return int(os.environ.get("FLA_THREADS") or os.cpu_count() or 1)


def _timing_callbacks(model: YOLO, threads: int) -> list[float]:
    """Per-epoch training-pass seconds, appended as they finish; CPU runs get ``threads`` torch threads.

    ultralytics' select_device sets torch to min(8, cores - 1) threads on CPU (1 on a 2-core
    machine); the trainer calls it first, so we set ours once its setup is done."""
    seconds, start = [], []

    def use_threads(trainer):
        if trainer.device.type == "cpu":
            torch.set_num_threads(threads)

    def epoch_start(trainer):
        start[:] = [time.perf_counter()]

    def epoch_end(trainer):
        seconds.append(time.perf_counter() - start[0])

    model.add_callback("on_pretrain_routine_end", use_threads)
    model.add_callback("on_train_epoch_start", epoch_start)
    model.add_callback("on_train_epoch_end", epoch_end)
    return seconds


def _device(device: str | None, quick: bool) -> str:
    """The device asked for, else the first GPU when there is one (never for ``quick`` runs), else the CPU."""
    return device or ("0" if torch.cuda.is_available() and not quick else "cpu")


def train_one(variant: str, seed: int, data, out, *, epochs: int, imgsz: int, batch: int = 16,
              device: str | None = None, quick: bool = False, weights=None, **overrides) -> dict:
    """Train one variant with one seed and return its results row (see ``COLUMNS``).

    ``variant``: a key of ``fla.yolo.VARIANTS`` (yolov8n), or ``"<key>@<scale>"`` such as ``"c2f_fla@s"``.
    ``device``: "cpu", "0", ... (default: the GPU if present). ``weights``: a pretrained checkpoint
    (``yolov8n.pt``, a ``best.pt``) loaded by ``fla.yolo.transfer``; the FLA parts start as a no-op.
    ``overrides`` go to ``YOLO.train`` (e.g. ``fraction=0.5``, ``plots=True``)."""
    name, _, scale = variant.partition("@")
    scale = scale or "n"
    device = _device(device, quick)
    save = run_dir(out, variant, seed, epochs, imgsz)
    model = YOLO(model_yaml(name, scale))  # the trainer rebuilds it from the YAML after seeding: same seed, same weights
    seconds = _timing_callbacks(model, threads=cpu_threads())
    args = dict(
        data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, deterministic=True, device=device,
        project=str(save.parent.resolve()), name=save.name, exist_ok=True, pretrained=str(weights) if weights else False,
        amp=device != "cpu", plots=not quick, verbose=not quick, workers=0 if device == "cpu" else 8,
    )
    with _offline_amp_check():
        metrics = model.train(trainer=TransferTrainer if weights else None, **{**args, **overrides})
    box = metrics.box
    cost = model_summary(model, 640)
    return {
        "variant": variant, "seed": seed, "epochs": epochs, "imgsz": imgsz,
        "device": torch.cuda.get_device_name(0) if device != "cpu" else "cpu",
        "map50": float(box.map50), "map50_95": float(box.map), "precision": float(box.mp), "recall": float(box.mr),
        "params": cost["params"], "gflops": cost["gflops"], "s_per_epoch": statistics.mean(seconds[1:] or seconds),
        **score_test(save, data, imgsz=imgsz, batch=batch, device=device),
    }


def _recording_validator(records: list):
    """ultralytics' DetectionValidator that also keeps each image's matched predictions (the ``tp`` table at 10 IoU
    thresholds, confidences, classes, labels) in ``records``: the bootstrap re-scores these without re-running
    the model."""
    from ultralytics.models.yolo.detect import DetectionValidator

    class RecordingValidator(DetectionValidator):
        def init_metrics(self, model):
            super().init_metrics(model)
            records.clear()
            update = self.metrics.update_stats

            def keep(stat):
                records.append({k: stat[k] for k in ("tp", "conf", "pred_cls", "target_cls", "im_name")})
                update(stat)

            self.metrics.update_stats = keep

    return RecordingValidator


def has_split(data, split: str) -> bool:
    """Whether ``data`` (a data.yaml) names ``split`` (older copies of the helmet subset have no ``test:``)."""
    import yaml

    return bool(yaml.safe_load(Path(data).read_text()).get(split))


def evaluate(weights, data, *, split: str = "test", imgsz: int, batch: int = 16, device: str = "cpu",
             save_dir=None) -> tuple[dict, Detections]:
    """Score a checkpoint on one split with ultralytics' validator (``model.val``: conf 0.001, NMS, matching at
    IoU 0.50:0.95) and return its metrics (``map50, map50_95, precision, recall``) and its per-image
    ``fla.stats.Detections``. Plots and logs go to ``save_dir`` (default: ``<weights folder>/../<split>``)."""
    records = []
    save_dir = Path(save_dir or Path(weights).parent.parent / split)
    model = YOLO(str(weights))
    threads = cpu_threads()
    model.add_callback("on_val_start", lambda v: torch.set_num_threads(threads) if str(device) == "cpu" else None)
    box = model.val(validator=_recording_validator(records), data=str(data), split=split, imgsz=imgsz, batch=batch,
                    device=device, plots=False, verbose=False, workers=0, project=str(save_dir.parent.resolve()),
                    name=save_dir.name, exist_ok=True).box
    metrics = {"map50": float(box.map50), "map50_95": float(box.map), "precision": float(box.mp), "recall": float(box.mr)}
    return metrics, Detections.from_images(records)


def score_test(run, data, *, imgsz: int, batch: int = 16, device: str = "cpu") -> dict:
    """The ``test_*`` columns of a finished run folder: its ``best.pt`` (chosen on val) scored on the test split;
    the matched predictions are saved to ``<run>/test_detections.npz``. NaN when ``data`` has no test split."""
    if not has_split(data, "test"):
        print(f"{data} has no test split: test columns left empty (fla data get fetches the current subset)")
        return dict.fromkeys(TEST_COLUMNS, math.nan)
    metrics, detections = evaluate(Path(run) / "weights" / "best.pt", data, split="test", imgsz=imgsz, batch=batch,
                                   device=device, save_dir=Path(run) / "test")
    detections.save(Path(run) / DETECTIONS)
    return {f"test_{k}": v for k, v in metrics.items()}


def read_results(out) -> list[dict]:
    """Rows of ``OUT/results.csv`` (numbers parsed), ``[]`` when there is none yet. Columns that a file written
    by an older version lacks (the ``test_*`` ones) read as NaN; ``train_all`` fills them in."""
    path = Path(out) / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints, strs = {"seed", "epochs", "imgsz", "params"}, {"variant", "device"}

    def parse(k, v):
        return v if k in strs else int(v) if k in ints else float(v) if v not in ("", None) else math.nan

    return [{k: parse(k, r.get(k)) for k in COLUMNS} for r in rows]


def _fmt(x, digits=3):
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown_table(header: list[str], rows: list[list]) -> str:
    """A markdown table (results.md, notebook 06)."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows by (variant, epochs, imgsz, device): the seeds of one configuration."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["epochs"], r["imgsz"], r["device"]), []).append(r)
    return groups


def _base_of(key: tuple) -> tuple:
    """The base configuration a variant is compared with: same family and scale (``c2f_fla@s`` → ``base@s``,
    ``yolo11:c3k2_fla`` → ``yolo11:base``), same settings."""
    name, at, scale = key[0].partition("@")
    family = name.rpartition(":")[0]
    return ((f"{family}:base" if family else "base") + at + scale, *key[1:])


def summary_table(rows: list[dict]) -> str:
    """Markdown: per variant, mean ± standard deviation over seeds (± 0 for one seed) of the validation and test
    metrics of best.pt, and epoch time vs base ("–" where a test column is missing)."""
    groups = _groups(rows)
    base = {k: statistics.mean(r["s_per_epoch"] for r in g) for k, g in groups.items() if _base_of(k) == k}

    def pm(g, col):
        xs = [r[col] for r in g]
        if not all(math.isfinite(x) for x in xs):
            return "–"
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"

    table = []
    for key, g in groups.items():
        t = statistics.mean(r["s_per_epoch"] for r in g)
        rel = f"{t / base[_base_of(key)]:.2f}×" if _base_of(key) in base else "–"
        table.append([*key[:1], len(g), *key[1:], pm(g, "map50"), pm(g, "map50_95"), pm(g, "precision"), pm(g, "recall"),
                      pm(g, "test_map50"), pm(g, "test_map50_95"), f"{g[0]['params'] / 1e6:.3f} M", f"{g[0]['gflops']:.2f}",
                      f"{t:.2f}", rel])
    header = ["variant", "seeds", "epochs", "imgsz", "device", "val mAP50", "val mAP50-95", "val precision", "val recall",
              "test mAP50", "test mAP50-95", "params", "GFLOPs@640", "s/epoch", "time vs base"]
    return markdown_table(header, table)


def compare(rows: list[dict], out, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """Each variant against the base of the same scale and settings on the test split: the paired difference
    (``fla.stats.paired_bootstrap``, seeds paired by number, ``n_boot`` resamples of the test images).

    Only seeds where both runs have their ``test_detections.npz``. Returns one dict per variant and metric:
    ``variant, epochs, imgsz, device, metric, seeds, images, n_boot, diff, low, high, se, seed_sd, per_seed``."""
    out, groups, found = Path(out), _groups(rows), []
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


PAIRED_INTS = ("epochs", "imgsz", "seeds", "images", "n_boot")
PAIRED_FLOATS = ("diff", "low", "high", "se", "seed_sd")
PAIRED_COLUMNS = ["variant", "epochs", "imgsz", "device", "metric", "seeds", "images", "n_boot", "diff", "low", "high",
                  "se", "seed_sd", "per_seed"]


def write_comparisons(comparisons: list[dict], out) -> None:
    """``OUT/paired.csv``: the rows of ``compare`` (per-seed differences joined by ``;``)."""
    write_csv(Path(out) / "paired.csv", PAIRED_COLUMNS,
              ({**c, "per_seed": ";".join(f"{x:.6f}" for x in c["per_seed"])} for c in comparisons))


def read_comparisons(out) -> list[dict]:
    """``OUT/paired.csv`` back as ``compare`` returned it (notebook 06 reads what ``train_all`` computed, rather
    than resampling again)."""
    with open(Path(out) / "paired.csv", newline="") as f:
        return [{**r, **{k: int(r[k]) for k in PAIRED_INTS}, **{k: float(r[k]) for k in PAIRED_FLOATS},
                 "per_seed": [float(x) for x in r["per_seed"].split(";")]} for r in csv.DictReader(f)]


def write_results(rows: list[dict], out, comparisons: list[dict] | None = None) -> None:
    """``OUT/results.csv`` and ``OUT/results.md`` (all runs, then mean ± spread per variant, then the paired test
    differences when ``comparisons`` are given), written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "results.csv", COLUMNS, rows)
    md = ["# Helmet mini-training", "", "## Runs", "", markdown_table(COLUMNS, [[_fmt(r[k], 4) for k in COLUMNS] for r in rows]),
          "", "## Per variant (mean ± std over seeds)", "",
          "best.pt is the epoch with the best validation fitness; the test columns score that checkpoint on the "
          "held-out test split.", "", summary_table(rows), ""]
    if comparisons:
        n_boot = comparisons[0].get("n_boot", "")
        md += ["## Variant − base on the test split (paired, 95% bootstrap interval over test images)", "",
               "Same resample of test images for both models, mean over the paired seeds"
               f"{f' ({n_boot} resamples)' if n_boot else ''}; `fla.stats.paired_bootstrap`.", "",
               *comparison_lines(comparisons), ""]
    write_atomic(out / "results.md", "\n".join(md))


def read_epochs(out, row: dict) -> list[dict]:
    """ultralytics' per-epoch log of one run (``runs/<run>/results.csv``: losses, val metrics, lr, time), as
    ``[{column: float}]``; ``[]`` when the run has none."""
    log = run_dir(out, row["variant"], row["seed"], row["epochs"], row["imgsz"]) / "results.csv"
    if not log.is_file():
        return []
    with open(log, newline="") as f:
        return [{k.strip(): float(v) for k, v in e.items()} for e in csv.DictReader(f)]


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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
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
    ax1.set(xlabel="epoch", ylabel="val mAP50", title="validation mAP50")
    ax2.set(xlabel="epoch", ylabel="val box loss", title="validation box loss")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path or out / "curves.png", dpi=110)
    plt.close(fig)
    return fig


def start_of(weights) -> str:
    """What a sweep starts from, as ``OUT/start.txt`` records it: ``scratch``, or the checkpoint's file name and
    the first 12 hex digits of its SHA-256 (two different files both called best.pt are told apart)."""
    if not weights:
        return "scratch"
    return f"{Path(weights).name} sha256:{hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]}"


def _claim(out: Path, weights) -> None:
    """One start per output folder: the rows of ``OUT/results.csv`` are skipped as done and paired with each
    other, which is only right when they started alike. A folder written before ``start.txt`` existed is
    taken over by the first sweep that continues it."""
    start, marker = start_of(weights), out / START
    if marker.is_file():
        before = marker.read_text().strip()
        if before != start:
            raise RunError(f"{out} holds runs that started from {before}; this sweep starts from {start}: "
                           "give it another --out")
        return
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(marker, start + "\n")


def train_all(variants, seeds, data, out, *, epochs: int, imgsz: int, scale: str = "n", n_boot: int = 1000,
              log=print, **kwargs) -> list[dict]:
    """Every variant × seed not already in ``OUT/results.csv``; results written after each run.

    An output folder holds runs of one start (``start.txt``: scratch or which checkpoint); another start
    there is a ``RunError``. Rows of a scale other than n name their variant ``<variant>@<scale>``. Finished runs whose row lacks the
    test columns (written before they existed) get their ``best.pt`` scored on the test split. At the end every
    variant is compared with base on the test split (``compare``, ``n_boot`` resamples; 0 skips it) into
    ``results.md`` and ``paired.csv``.
    Returns all rows of this configuration (finished earlier or now), in variant × seed order."""
    out = Path(out)
    _claim(out, kwargs.get("weights"))
    rows = read_results(out)
    done = {tuple(r[k] for k in KEY): r for r in rows}
    todo = [(v if scale == "n" else f"{v}@{scale}", s) for v in variants for s in seeds]
    test_args = {"batch": kwargs.get("batch", 16), "device": _device(kwargs.get("device"), kwargs.get("quick", False))}
    for i, (variant, seed) in enumerate(todo, 1):
        tag = f"[{i}/{len(todo)}] {variant} seed {seed} ({epochs} epochs, imgsz {imgsz})"
        folder = run_dir(out, variant, seed, epochs, imgsz)
        row = done.get((variant, seed, epochs, imgsz))
        if row is not None and (math.isfinite(row["test_map50"]) or not has_split(data, "test")):
            log(f"{tag}: done before, skipped")
            continue
        if row is not None:
            if not (folder / "weights" / "best.pt").is_file():
                raise RunError(f"{tag}: results.csv has this run but {folder}/weights/best.pt is gone; "
                                        "delete its row from results.csv to train it again")
            log(f"{tag}: done before; scoring its best.pt on the test split (column missing)")
            row.update(score_test(folder, data, imgsz=imgsz, **test_args))
        else:
            log(f"{tag}: training under {folder}")
            row = train_one(variant, seed, data, out, epochs=epochs, imgsz=imgsz, **kwargs)
            rows.append(row)
        write_results(rows, out)
        plot_curves(out, rows)
        log(f"{tag}: val mAP50 {row['map50']:.3f}, test mAP50 {row['test_map50']:.3f}, {row['s_per_epoch']:.1f} s/epoch")
    order = {run: i for i, run in enumerate(todo)}
    ours = [r for r in rows if (r["variant"], r["seed"]) in order and (r["epochs"], r["imgsz"]) == (epochs, imgsz)]
    if n_boot > 0:
        log(f"paired bootstrap on the test split: {n_boot} resamples per variant")
        comparisons = compare(ours, out, n_boot=n_boot)
        write_results(rows, out, comparisons)
        write_comparisons(comparisons, out)
        for line in comparison_lines(comparisons):
            log(line)
    return sorted(ours, key=lambda r: order[r["variant"], r["seed"]])


def add_arguments(parser) -> None:
    from .__main__ import at_least  # the CLI's argparse types (usage errors: one line, exit 2)

    parser.add_argument("--quick", action="store_true",
                        help=f"short CPU run for tests/CI: {QUICK['epochs']} epoch at imgsz {QUICK['imgsz']} unless given")
    parser.add_argument("--data", help="data.yaml or folder of the helmet subset (default: $FLA_DATA, else download)")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help=f"any of {', '.join(VARIANTS)} (default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--epochs", type=at_least(1), help=f"default {FULL['epochs']} ({QUICK['epochs']} with --quick)")
    parser.add_argument("--imgsz", type=at_least(32), help=f"default {FULL['imgsz']} ({QUICK['imgsz']} with --quick)")
    parser.add_argument("--batch", type=at_least(1), default=16)
    parser.add_argument("--seeds", type=at_least(0), nargs="+", default=[0], help="one run per seed; the table gives mean ± std")
    parser.add_argument("--scale", default="n", choices=list("nsmlx"), help="model scale (yolov8n by default)")
    parser.add_argument("--bootstrap", type=at_least(0), metavar="N",
                        help=f"resamples of the test images for the paired intervals; 0 skips them "
                             f"(default {FULL['bootstrap']}, {QUICK['bootstrap']} with --quick)")
    parser.add_argument("--out", default="runs/fla-helmet", help="where runs, results.csv/.md and curves.png go")
    parser.add_argument("--weights", metavar="PATH",
                        help="start every variant from this pretrained checkpoint (yolov8n.pt, a best.pt); "
                             "prints how many tensors transferred. An --out holds runs of one start (its start.txt): "
                             "give a pretrained sweep its own")


#: ultralytics 8.4's release of its pretrained checkpoints (``attempt_download_asset``'s default)
PRETRAINED_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
PRETRAINED_TIMEOUT_S = 15  # per connect and per read: offline, the attempt ends in seconds, never hangs


def pretrained(name: str = "yolov8n.pt", *, base_url: str | None = None, folder=None,
               timeout: float = PRETRAINED_TIMEOUT_S, log=print) -> Path | None:
    """ultralytics' pretrained checkpoint ``name`` (yolov8n.pt, yolo11n.pt, ...): the local copy (current folder,
    or ``folder``: default ultralytics' weights folder), else downloaded from ``base_url`` (default
    ``PRETRAINED_URL``) into ``folder``. None when it cannot be had (offline, HTTP error): ``log`` says why, and
    the caller trains from scratch (notebook 06).

    Our own bounded download rather than ultralytics' (30 s connect timeouts, four tries, curl): the
    notebooks must not wait on an absent network."""
    import urllib.error
    import urllib.request

    from ultralytics.utils import SETTINGS
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if name not in GITHUB_ASSETS_NAMES:
        raise RunError(f"{name}: not an ultralytics checkpoint name (e.g. yolov8n.pt, yolo11n.pt)")
    home = Path(folder or SETTINGS["weights_dir"])
    for local in (Path(name), home / name):
        if local.is_file():
            return local
    url = f"{(base_url or PRETRAINED_URL).rstrip('/')}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as e:  # HTTPError is a URLError
        log(f"{name}: not available ({getattr(e, 'reason', e)} from {url})")
        return None
    if len(data) < 100_000:  # an error page or a truncated file, not a checkpoint (yolov8n.pt is 6 MB)
        log(f"{name}: {url} sent {len(data)} bytes, not a checkpoint")
        return None
    home.mkdir(parents=True, exist_ok=True)
    write_atomic(home / name, data)
    log(f"{name}: downloaded {len(data) / 2**20:.1f} MiB from {url} into {home}")
    return home / name


def _weights(path):
    """A local checkpoint, or an ultralytics checkpoint name fetched by ``pretrained``; else RunError."""
    if path is None or Path(path).is_file():
        return path
    try:
        found = pretrained(path, log=lambda line: print(f"fla train: {line}", file=sys.stderr))
    except RunError:  # not a checkpoint name either
        raise RunError(f"--weights {path}: no such file (nor an ultralytics checkpoint name such as yolov8n.pt)") from None
    if found is None:
        raise RunError(f"--weights {path}: could not download it; put the file in the current folder or pass its path")
    return str(found)


def run(args) -> int:
    from .data import DataError, resolve_data

    preset = QUICK if args.quick else FULL
    epochs, imgsz = args.epochs or preset["epochs"], args.imgsz or preset["imgsz"]
    n_boot = preset["bootstrap"] if args.bootstrap is None else args.bootstrap
    try:
        data = resolve_data(args.data)
        rows = train_all(args.variants, args.seeds, data, args.out, epochs=epochs, imgsz=imgsz, batch=args.batch,
                         scale=args.scale, quick=args.quick, n_boot=n_boot, weights=_weights(args.weights))
    except (DataError, RunError) as e:
        print(f"fla train: {e}", file=sys.stderr)
        return 2
    print(summary_table(rows))
    print(f"{Path(args.out) / 'results.csv'}")
    return 0 if all(math.isfinite(r["map50"]) for r in rows) else 1
