"""What a training sweep's folder holds (``fla train``, notebook 06):

- ``OUT/results.csv`` (one typed row per run, ``COLUMNS``), ``results.md``, ``curves.png``,
  ``paired.csv`` (the paired test differences) and ``settings.json`` (the start every run there shares);
- ``OUT/<variant>-s<seed>-e<epochs>-<imgsz>px/``: ultralytics' run folder (``project=OUT``, ``name=...``) (``weights/best.pt``,
  its per-epoch ``results.csv``) and ``test_detections.npz``, best.pt's matched test predictions.
"""
from __future__ import annotations

from pathlib import Path

from ...files import read_csv

__all__ = ["TEST_COLUMNS", "COLUMNS", "KEY", "DETECTIONS", "run_dir", "read_results"]

#: what a test metric is called in ``results.csv``: ``test_`` + the validation column's name.
TEST_COLUMNS = ["test_map50", "test_map50_95", "test_precision", "test_recall"]
#: the columns of ``results.csv`` and their types
COLUMNS = {"variant": str, "seed": int, "epochs": int, "imgsz": int, "device": str, "map50": float, "map50_95": float,
           "precision": float, "recall": float, "params": int, "gflops": float, "s_per_epoch": float,
           **dict.fromkeys(TEST_COLUMNS, float)}
KEY = ("variant", "seed", "epochs", "imgsz")  # a row with these values means: this run is done
DETECTIONS = "test_detections.npz"


def run_dir(out, variant: str, seed: int, epochs: int, imgsz: int) -> Path:
    """``OUT/<variant>-s<seed>-e<epochs>-<imgsz>px``, as ultralytics lays out ``project/name``; the family's ``:``
    as ``.`` (``yolo11.c3k2_fla``): a colon is not allowed in Windows paths and reads as a drive or URL elsewhere."""
    return Path(out) / f"{variant.replace(':', '.')}-s{seed}-e{epochs}-{imgsz}px"


def read_results(out) -> list[dict]:
    """The rows of ``OUT/results.csv``, typed; ``[]`` when there is none."""
    return read_csv(Path(out) / "results.csv", COLUMNS)
