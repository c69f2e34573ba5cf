"""The training runs: one variant, one seed each, trained with ultralytics and scored on the held-out test split,
swept into ``OUT/results.csv`` (``fla train``, notebook 06).

One run = one variant, one seed, trained from its YAML (or from ``weights``) under
``OUT/<variant>-s<seed>-e<epochs>-<imgsz>px``. ultralytics keeps the epoch that scores best on
the validation split (``best.pt``); that checkpoint is then scored once on the test split, which
never takes part in the choice.

- GPU when present, with AMP; on CPU no AMP (and no AMP check). ``quick=True`` is a tiny CPU run
  for tests and CI.
- ``s_per_epoch`` is the mean wall time of the training pass of an epoch, without the first epoch
  when there are more (it pays one-off warm-up), and without validation and checkpointing
  (validating a barely trained detector is dominated by NMS over junk boxes, not by the model).
- The test split is scored in the precision ultralytics' final validation scored the val split: on a GPU
  with AMP it reloads ``best.pt`` in fp16 (``quantize=16``), so the test does too, and the val − test gap
  holds no change of precision; on a CPU both are fp32.
- ``params`` and ``gflops`` are those of the trained model (2 classes) at 640×640, ultralytics'
  yardstick, whatever size it was trained at.
"""
from __future__ import annotations

import hashlib
import math
import statistics
import time
from pathlib import Path

import torch

from ...runtime import cpu_threads, pick_device, torch_threads, ultralytics_device
from ...yolo import TransferTrainer, model_summary, model_yaml
from ...yolo.datasets import has_split
from ...yolo.amp import offline_amp_check
from ..stats import Detections
from ..sweep import Sweep
from . import report
from .folders import COLUMNS, DETECTIONS, KEY, TEST_COLUMNS, run_dir

__all__ = ["QUICK", "FULL", "train_detector", "validated_in_fp16", "evaluate", "score_test", "start_of", "sweep", "train_all"]

#: what ``--quick`` means: one CPU epoch on small images (about 5 s a variant on 2 cores).
QUICK = {"epochs": 1, "imgsz": 160, "bootstrap": 200}
FULL = {"epochs": 100, "imgsz": 640, "bootstrap": 1000}  # the experiment of the blog post this project started from


def _timing_callbacks(model, threads: int) -> list[float]:
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
    """ultralytics' ``device=``: the one asked for, else the first GPU when there is one (never for ``quick``
    runs), else the CPU."""
    return ultralytics_device(pick_device("cpu" if quick and not device else device))


def train_detector(variant: str, seed: int, data, out, *, epochs: int, imgsz: int, batch: int = 16,
              device: str | None = None, quick: bool = False, weights=None, **overrides) -> dict:
    """Train one variant with one seed and return its results row (see ``COLUMNS``).

    ``variant``: a key of ``fla.yolo.VARIANTS`` (yolov8n), or ``"<key>@<scale>"`` such as ``"c2f_fla@s"``.
    ``device``: "cpu", "0", ... (default: the GPU if present). ``weights``: a pretrained checkpoint
    (``yolov8n.pt``, a ``best.pt``) loaded by ``fla.yolo.transfer``; the FLA parts start as a no-op.
    ``overrides`` go to ``YOLO.train`` (e.g. ``fraction=0.5``, ``plots=True``)."""
    from ultralytics import YOLO

    name, _, scale = variant.partition("@")
    scale = scale or "n"
    device = _device(device, quick)
    save = run_dir(out, variant, seed, epochs, imgsz)
    model = YOLO(model_yaml(name, scale))  # the trainer rebuilds it from the YAML after seeding: same seed, same weights
    threads = cpu_threads()
    seconds = _timing_callbacks(model, threads=threads)
    args = dict(
        data=str(data), epochs=epochs, imgsz=imgsz, batch=batch, seed=seed, deterministic=True, device=device,
        project=str(save.parent.resolve()), name=save.name, exist_ok=True, pretrained=str(weights) if weights else False,
        amp=device != "cpu", plots=not quick, verbose=not quick, workers=0 if device == "cpu" else 8,
    )
    with offline_amp_check(), torch_threads(None):  # ultralytics changes torch's threads: the caller's come back
        metrics = model.train(trainer=TransferTrainer if weights else None, **{**args, **overrides})
    box = metrics.box
    cost = model_summary(model, 640)
    return {
        "variant": variant, "seed": seed, "epochs": epochs, "imgsz": imgsz,
        # on the CPU the float sums, hence the weights, depend on the thread count: a run says how many it had
        "device": torch.cuda.get_device_name(0) if device != "cpu" else f"cpu ({threads} threads)",
        "map50": float(box.map50), "map50_95": float(box.map), "precision": float(box.mp), "recall": float(box.mr),
        "params": cost["params"], "gflops": cost["gflops"], "s_per_epoch": statistics.mean(seconds[1:] or seconds),
        **score_test(save, data, imgsz=imgsz, batch=batch, device=device, half=validated_in_fp16(model.trainer)),
    }


def validated_in_fp16(trainer) -> bool:
    """Whether ultralytics' final validation ran in fp16: it records the precision it used in ``quantize``
    (16 on a GPU with AMP, after the AMP check; None on a CPU)."""
    return getattr(trainer.validator.args, "quantize", None) == 16


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


def evaluate(weights, data, *, split: str = "test", imgsz: int, batch: int = 16, device: str = "cpu",
             save_dir=None, half: bool = False) -> tuple[dict, Detections]:
    """Score a checkpoint on one split with ultralytics' validator (``model.val``: conf 0.001, NMS, matching at
    IoU 0.50:0.95) and return its metrics (``map50, map50_95, precision, recall``) and its per-image
    ``fla.experiments.stats.Detections``. Plots and logs go to ``save_dir`` (default: ``<weights folder>/../<split>``).
    ``half``: the model in fp16 (``quantize=16``; on a GPU only, ultralytics keeps fp32 on a CPU)."""
    from ultralytics import YOLO

    records = []
    save_dir = Path(save_dir or Path(weights).parent.parent / split)
    model = YOLO(str(weights))
    threads = cpu_threads()
    model.add_callback("on_val_start", lambda v: torch.set_num_threads(threads) if str(device) == "cpu" else None)
    with torch_threads(None):
        box = model.val(validator=_recording_validator(records), data=str(data), split=split, imgsz=imgsz, batch=batch,
                        device=device, quantize=16 if half else None, plots=False, verbose=False, workers=0,
                        project=str(save_dir.parent.resolve()),
                        name=save_dir.name, exist_ok=True).box
    metrics = {"map50": float(box.map50), "map50_95": float(box.map), "precision": float(box.mp), "recall": float(box.mr)}
    return metrics, Detections.from_images(records)


def score_test(run, data, *, imgsz: int, batch: int = 16, device: str = "cpu", half: bool = False) -> dict:
    """The ``test_*`` columns of a finished run folder: its ``best.pt`` (chosen on val) scored on the test split,
    in fp16 when ``half`` (as the val split was, on a GPU with AMP); the matched predictions are saved to
    ``<run>/test_detections.npz``. NaN when ``data`` has no test split."""
    if not has_split(data, "test"):
        print(f"{data} has no test split: test columns left empty (fla data get fetches the current subset)")
        return dict.fromkeys(TEST_COLUMNS, math.nan)
    metrics, detections = evaluate(Path(run) / "weights" / "best.pt", data, split="test", imgsz=imgsz, batch=batch,
                                   device=device, save_dir=Path(run) / "test", half=half)
    detections.save(Path(run) / DETECTIONS)
    return {f"test_{k}": v for k, v in metrics.items()}


def start_of(weights) -> str:
    """What a sweep starts from, as ``OUT/settings.json`` records it: ``scratch``, or the checkpoint's file name and
    the first 12 hex digits of its SHA-256 (two different files both called best.pt are told apart)."""
    if not weights:
        return "scratch"
    return f"{Path(weights).name} sha256:{hashlib.sha256(Path(weights).read_bytes()).hexdigest()[:12]}"


def sweep(out, weights=None) -> Sweep:
    """The training folder ``out``: its runs all start from ``weights`` (scratch when None)."""
    return Sweep(out, "results", COLUMNS, KEY, {"start": start_of(weights)}, summary=report.markdown)


def train_all(variants, seeds, data, out, *, epochs: int, imgsz: int, scale: str = "n", n_boot: int = 1000,
              log=print, **kwargs) -> list[dict]:
    """Every variant × seed not already in ``OUT/results.csv``; ``results.md`` and ``curves.png`` after each run.

    An output folder holds runs of one start (its ``settings.json``: scratch or which checkpoint); another
    start there is a ``SettingsClash``. Rows of a scale other than n name their variant ``<variant>@<scale>``.
    At the end every variant is compared with base on the test split (``report.compare``,
    ``n_boot`` resamples; 0 skips it) into ``results.md`` and ``paired.csv``.
    Returns all rows of this configuration (finished earlier or now), in variant × seed order."""
    out = Path(out)
    runs = sweep(out, kwargs.get("weights"))
    wanted = [(v if scale == "n" else f"{v}@{scale}", s) for v in variants for s in seeds]

    def one(i, variant, seed):
        tag = f"[{i}/{len(wanted)}] {variant} seed {seed} ({epochs} epochs, imgsz {imgsz})"
        log(f"{tag}: training under {run_dir(out, variant, seed, epochs, imgsz)}")
        row = train_detector(variant, seed, data, out, epochs=epochs, imgsz=imgsz, **kwargs)
        log(f"{tag}: val mAP50 {row['map50']:.3f}, test mAP50 {row['test_map50']:.3f}, {row['s_per_epoch']:.1f} s/epoch")
        return row

    keys = [(variant, seed, epochs, imgsz) for variant, seed in wanted]
    runs.run([(key, (i, *key[:2])) for i, key in enumerate(keys, 1)], one, log=log,
             after=lambda row: report.plot_curves(out, runs.rows))
    ours = runs.select(keys)
    if n_boot > 0:
        log(f"paired bootstrap on the test split: {n_boot} resamples per variant")
        comparisons = report.compare(ours, out, n_boot=n_boot)
        runs.write(report.markdown(runs.rows, comparisons))
        report.write_comparisons(comparisons, out)
        for line in report.comparison_lines(comparisons):
            log(line)
    return ours
