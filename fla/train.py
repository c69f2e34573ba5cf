"""Train the YOLOv8 baseline and the FLA variants on the helmet subset: ``fla train`` and notebook 06.

One run = one variant, one seed, trained from its YAML (no pretrained weights) with ultralytics
under ``OUT/runs/<variant>-s<seed>-e<epochs>-<imgsz>px``. After each run a row goes into
``OUT/results.csv`` (and ``results.md``, ``curves.png``), so an interrupted sweep keeps what
finished and a rerun skips it.

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
import math
import os
import statistics
import sys
import time
from pathlib import Path

from . import yolo  # noqa: F401  offline switches + our blocks registered before ultralytics is used
from .yolo import DEFAULT_VARIANTS, VARIANTS, TransferTrainer, model_summary, model_yaml

import torch  # noqa: E402
from ultralytics import YOLO  # noqa: E402

__all__ = [
    "COLUMNS", "QUICK", "train_one", "train_all", "read_results", "write_results", "summary_table",
    "plot_curves", "run_dir", "amp_check_offline", "add_arguments", "run",
]

COLUMNS = ["variant", "seed", "epochs", "imgsz", "device", "map50", "map50_95", "precision", "recall", "params", "gflops", "s_per_epoch"]
#: what ``--quick`` means: one CPU epoch on small images (about 5 s a variant on 2 cores).
QUICK = {"epochs": 1, "imgsz": 160}
FULL = {"epochs": 100, "imgsz": 640}  # the seed's experiment
KEY = ("variant", "seed", "epochs", "imgsz")  # a row with these values means: this run is done


def run_dir(out: Path, variant: str, seed: int, epochs: int, imgsz: int) -> Path:
    return Path(out) / "runs" / f"{variant}-s{seed}-e{epochs}-{imgsz}px"


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


def train_one(variant: str, seed: int, data, out, *, epochs: int, imgsz: int, batch: int = 16,
              device: str | None = None, quick: bool = False, weights=None, **overrides) -> dict:
    """Train one variant with one seed and return its results row (see ``COLUMNS``).

    ``variant``: a key of ``fla.yolo.VARIANTS`` (yolov8n), or ``"<key>@<scale>"`` such as ``"c2f_fla@s"``.
    ``device``: "cpu", "0", ... (default: the GPU if present). ``overrides`` go to ``YOLO.train``
    (e.g. ``fraction=0.5``, ``plots=True``). ``weights``: a pretrained checkpoint (``yolov8n.pt``, a
    ``best.pt``) loaded by ``fla.yolo.transfer``; the FLA parts start as a no-op."""
    name, _, scale = variant.partition("@")
    scale = scale or "n"
    if device is None:
        device = "0" if torch.cuda.is_available() and not quick else "cpu"
    save = run_dir(out, variant, seed, epochs, imgsz)
    model = YOLO(model_yaml(name, scale))  # the trainer rebuilds it from the YAML after seeding: same seed, same weights
    seconds = _timing_callbacks(model, threads=os.cpu_count() or 1)
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
    }


def read_results(out) -> list[dict]:
    """Rows of ``OUT/results.csv`` (numbers parsed), ``[]`` when there is none yet."""
    path = Path(out) / "results.csv"
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    ints, strs = {"seed", "epochs", "imgsz", "params"}, {"variant", "device"}
    return [{k: v if k in strs else int(v) if k in ints else float(v) for k, v in r.items()} for r in rows]


def _fmt(x, digits=3):
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _markdown(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])


def summary_table(rows: list[dict]) -> str:
    """Markdown: per variant, mean ± standard deviation over seeds (± 0 for one seed) and epoch time vs base."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["variant"], r["epochs"], r["imgsz"], r["device"]), []).append(r)
    base = {k: statistics.mean(r["s_per_epoch"] for r in g) for k, g in groups.items() if k[0].partition("@")[0] == "base"}

    def pm(g, col):
        xs = [r[col] for r in g]
        return f"{statistics.mean(xs):.3f} ± {statistics.stdev(xs) if len(xs) > 1 else 0.0:.3f}"

    table = []
    for (variant, epochs, imgsz, device), g in groups.items():
        t = statistics.mean(r["s_per_epoch"] for r in g)
        ref = ("base" + variant[len(variant.partition("@")[0]):], epochs, imgsz, device)  # same scale, settings
        rel = f"{t / base[ref]:.2f}×" if ref in base else "–"
        table.append([variant, len(g), epochs, imgsz, device, pm(g, "map50"), pm(g, "map50_95"), pm(g, "precision"),
                      pm(g, "recall"), f"{g[0]['params'] / 1e6:.3f} M", f"{g[0]['gflops']:.2f}", f"{t:.2f}", rel])
    header = ["variant", "seeds", "epochs", "imgsz", "device", "mAP50", "mAP50-95", "precision", "recall",
              "params", "GFLOPs@640", "s/epoch", "time vs base"]
    return _markdown(header, table)


def write_results(rows: list[dict], out) -> None:
    """``OUT/results.csv`` and ``OUT/results.md`` (all runs, then mean ± spread per variant), written atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / ".results.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS)
        w.writeheader()
        w.writerows({k: r[k] for k in COLUMNS} for r in rows)
    os.replace(tmp, out / "results.csv")
    md = ["# Helmet mini-training", "", "## Runs", "", _markdown(COLUMNS, [[_fmt(r[k], 4) for k in COLUMNS] for r in rows]),
          "", "## Per variant (mean ± std over seeds)", "", summary_table(rows), ""]
    (out / ".results.md.tmp").write_text("\n".join(md))
    os.replace(out / ".results.md.tmp", out / "results.md")


def plot_curves(out, rows: list[dict] | None = None, path=None):
    """Validation mAP50 and box loss per epoch of every run in ``OUT/results.csv``, read from each run's
    ultralytics ``results.csv``; saved to ``OUT/curves.png`` (notebook 06). Returns the figure."""
    import matplotlib.pyplot as plt

    out = Path(out)
    rows = read_results(out) if rows is None else rows
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for r in rows:
        log = run_dir(out, r["variant"], r["seed"], r["epochs"], r["imgsz"]) / "results.csv"
        if not log.is_file():
            continue
        with open(log, newline="") as f:
            epochs = [{k.strip(): v for k, v in e.items()} for e in csv.DictReader(f)]
        x = [int(float(e["epoch"])) for e in epochs]
        label = f"{r['variant']} s{r['seed']}"
        ax1.plot(x, [float(e["metrics/mAP50(B)"]) for e in epochs], marker="o" if len(x) < 5 else None, label=label)
        ax2.plot(x, [float(e["val/box_loss"]) for e in epochs], marker="o" if len(x) < 5 else None, label=label)
    ax1.set(xlabel="epoch", ylabel="val mAP50", title="validation mAP50")
    ax2.set(xlabel="epoch", ylabel="val box loss", title="validation box loss")
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path or out / "curves.png", dpi=110)
    plt.close(fig)
    return fig


def train_all(variants, seeds, data, out, *, epochs: int, imgsz: int, scale: str = "n", log=print, **kwargs) -> list[dict]:
    """Every variant × seed not already in ``OUT/results.csv``; results written after each run.

    Rows of a scale other than n name their variant ``<variant>@<scale>``.
    Returns all rows of this configuration (finished earlier or now), in variant × seed order."""
    out = Path(out)
    rows = read_results(out)
    done = {tuple(r[k] for k in KEY) for r in rows}
    todo = [(v if scale == "n" else f"{v}@{scale}", s) for v in variants for s in seeds]
    for i, (variant, seed) in enumerate(todo, 1):
        tag = f"[{i}/{len(todo)}] {variant} seed {seed} ({epochs} epochs, imgsz {imgsz})"
        if (variant, seed, epochs, imgsz) in done:
            log(f"{tag}: done before, skipped")
            continue
        log(f"{tag}: training under {run_dir(out, variant, seed, epochs, imgsz)}")
        row = train_one(variant, seed, data, out, epochs=epochs, imgsz=imgsz, **kwargs)
        rows.append(row)
        write_results(rows, out)
        plot_curves(out, rows)
        log(f"{tag}: mAP50 {row['map50']:.3f}, {row['s_per_epoch']:.1f} s/epoch")
    order = {run: i for i, run in enumerate(todo)}
    ours = [r for r in rows if (r["variant"], r["seed"]) in order and (r["epochs"], r["imgsz"]) == (epochs, imgsz)]
    return sorted(ours, key=lambda r: order[r["variant"], r["seed"]])


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"short CPU run for tests/CI: {QUICK['epochs']} epoch at imgsz {QUICK['imgsz']} unless given")
    parser.add_argument("--data", help="data.yaml or folder of the helmet subset (default: $FLA_DATA, else download)")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--epochs", type=int, help=f"default {FULL['epochs']} ({QUICK['epochs']} with --quick)")
    parser.add_argument("--imgsz", type=int, help=f"default {FULL['imgsz']} ({QUICK['imgsz']} with --quick)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="one run per seed; the table gives mean ± std")
    parser.add_argument("--scale", default="n", choices=list("nsmlx"), help="model scale (yolov8n by default)")
    parser.add_argument("--out", default="runs/fla-helmet", help="where runs, results.csv/.md and curves.png go")
    parser.add_argument("--weights", metavar="PATH",
                        help="start every variant from this pretrained checkpoint (yolov8n.pt, a best.pt); "
                             "prints how many tensors transferred. Use its own --out: runs are keyed without it")


def run(args) -> int:
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    from .data import resolve_data

    if args.weights and not (Path(args.weights).is_file() or args.weights in GITHUB_ASSETS_NAMES):
        print(f"fla train: --weights {args.weights}: no such file (nor an ultralytics asset name such as yolov8n.pt)",
              file=sys.stderr)
        return 2
    preset = QUICK if args.quick else FULL
    epochs, imgsz = args.epochs or preset["epochs"], args.imgsz or preset["imgsz"]
    data = resolve_data(args.data)
    rows = train_all(args.variants, args.seeds, data, args.out, epochs=epochs, imgsz=imgsz, batch=args.batch,
                     scale=args.scale, quick=args.quick, weights=args.weights)
    print(summary_table(rows))
    print(f"{Path(args.out) / 'results.csv'}")
    return 0 if all(math.isfinite(r["map50"]) for r in rows) else 1
