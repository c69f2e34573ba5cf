"""``fla train``: train the YOLOv8 baseline and FLA variants on the helmet subset."""
from __future__ import annotations

import math
import sys
from pathlib import Path

from ..experiments.training import FULL, QUICK
from ..yolo import DEFAULT_VARIANTS, VARIANTS
from . import at_least


def add_arguments(parser) -> None:
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
                             "prints how many tensors transferred. An --out holds runs of one start (its settings.json): "
                             "give a pretrained sweep its own")


class _WeightsError(Exception):
    """--weights names neither a file nor a checkpoint that could be downloaded."""


def _weights(path):
    """A local checkpoint, or an ultralytics checkpoint name fetched by ``pretrained``."""
    from ..experiments.training import NotACheckpointName, pretrained

    if path is None or Path(path).is_file():
        return path
    try:
        found = pretrained(path, log=lambda line: print(f"fla train: {line}", file=sys.stderr))
    except NotACheckpointName:
        raise _WeightsError(f"--weights {path}: no such file (nor an ultralytics checkpoint name such as yolov8n.pt)") from None
    if found is None:
        raise _WeightsError(f"--weights {path}: could not download it; put the file in the current folder or pass its path")
    return str(found)


def run(args) -> int:
    from ..data import DataError, resolve_data
    from ..experiments.training import RunError, SettingsClash, summary_table, train_all

    preset = QUICK if args.quick else FULL
    epochs, imgsz = args.epochs or preset["epochs"], args.imgsz or preset["imgsz"]
    n_boot = preset["bootstrap"] if args.bootstrap is None else args.bootstrap
    try:
        data = resolve_data(args.data)
        rows = train_all(args.variants, args.seeds, data, args.out, epochs=epochs, imgsz=imgsz, batch=args.batch,
                         scale=args.scale, quick=args.quick, n_boot=n_boot, weights=_weights(args.weights))
    except (DataError, RunError, SettingsClash, _WeightsError) as e:
        print(f"fla train: {e}", file=sys.stderr)
        return 2
    print(summary_table(rows))
    print(f"{Path(args.out) / 'results.csv'}")
    return 0 if all(math.isfinite(r["map50"]) for r in rows) else 1
