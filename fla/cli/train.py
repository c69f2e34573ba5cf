"""``fla train``: train the YOLOv8 baseline and FLA variants on the helmet subset."""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from ..experiments.training import FULL, QUICK
from ..yolo import DEFAULT_VARIANTS, VARIANTS
from . import BadInput, at_least, first_line, seeds, writable


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help=f"short CPU run for tests/CI: {QUICK['epochs']} epoch at imgsz {QUICK['imgsz']} unless given")
    parser.add_argument("--data", help="data.yaml or folder of the helmet subset (default: $FLA_DATA, else download; "
                                       "see `fla data get`)")
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help=f"any of {', '.join(VARIANTS)} (default: {' '.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--epochs", type=at_least(1), help=f"default {FULL['epochs']} ({QUICK['epochs']} with --quick)")
    parser.add_argument("--imgsz", type=at_least(32), help=f"default {FULL['imgsz']} ({QUICK['imgsz']} with --quick)")
    parser.add_argument("--batch", type=at_least(1), default=16)
    parser.add_argument("--seeds", type=seeds, nargs="+", default=[0], help="one run per seed; the table gives mean ± std")
    parser.add_argument("--scale", default="n", choices=list("nsmlx"), help="model scale (yolov8n by default)")
    parser.add_argument("--bootstrap", type=at_least(0), metavar="N",
                        help=f"resamples of the test images for the paired intervals; 0 skips them "
                             f"(default {FULL['bootstrap']}, {QUICK['bootstrap']} with --quick)")
    parser.add_argument("--out", default="runs/fla-helmet",
                        help="where results.csv/.md, curves.png and one folder per run (ultralytics' layout) go")
    parser.add_argument("--weights", metavar="PATH",
                        help="start every variant from this pretrained checkpoint (yolov8n.pt, a best.pt); "
                             "prints how many tensors transferred. An --out holds runs of one start (its settings.json): "
                             "give a pretrained sweep its own")


def _weights(path):
    """A local checkpoint that ultralytics can load, or an ultralytics checkpoint name fetched by ``pretrained``."""
    from ..experiments.training import NotACheckpointName, pretrained

    if path is None:
        return None
    if not Path(path).is_file():
        try:
            found = pretrained(path, log=lambda line: print(f"fla train: {line}", file=sys.stderr))
        except NotACheckpointName:
            raise BadInput(f"--weights {path}: no such file (nor an ultralytics checkpoint name such as yolov8n.pt)") from None
        if found is None:
            raise BadInput(f"--weights {path}: could not download it; put the file in the current folder or pass its path")
        path = str(found)
    from ultralytics.nn.tasks import load_checkpoint

    try:
        load_checkpoint(path)
    except Exception as e:  # ultralytics' TypeError for a damaged file, an AssertionError for a suffix, ...
        raise BadInput(f"--weights {path}: not a YOLO checkpoint ({first_line(e)})") from None
    return path


def _data(given):
    """The data.yaml, checked: every split it names holds images. A path given (or $FLA_DATA) that is wrong is a
    BadInput; a failed download of the default copy is not (its message says how to get the data)."""
    from ..data import DataError, resolve_data
    from ..yolo.datasets import check_data

    try:
        data = resolve_data(given)
    except DataError as e:
        if given or os.environ.get("FLA_DATA"):
            raise BadInput(first_line(e)) from None
        raise
    try:
        check_data(data)
    except DataError as e:
        raise BadInput(f"--data {first_line(e)}") from None
    return data


def estimate_s(runs: int, epochs: int, imgsz: int) -> float:
    """Seconds that ``runs`` CPU runs of ``epochs`` at ``imgsz`` take on 2 cores: notebook 06's per-epoch figure
    (measured at 320 px, scaled by image area; validation's NMS does not scale so, hence "about")."""
    from ..experiments.training.plan import Hardware, seconds_per_epoch

    return runs * epochs * seconds_per_epoch(Hardware("cpu", 2), imgsz)[0]


def announce(variants, seeds_, epochs: int, imgsz: int) -> str | None:
    """What a run of ``fla train`` on the CPU is about to start and how long it will take, or None on a GPU."""
    import torch

    if torch.cuda.is_available():
        return None
    runs = len(variants) * len(seeds_)
    s = estimate_s(runs, epochs, imgsz)
    took = f"{s / 3600:.1f} h" if s >= 5400 else f"{s / 60:.0f} min"
    return (f"fla train: {runs} run{'s' * (runs > 1)} ({' '.join(variants)} × seed{'s' * (len(seeds_) > 1)} "
            f"{' '.join(map(str, seeds_))}) of {epochs} epochs at {imgsz} px on the CPU: about {took} on 2 cores "
            f"(measured at 320 px, scaled by image area), less the runs already in --out; --quick is a 1-epoch smoke test")


def run(args) -> int:
    from ..experiments.training import SettingsClash, sweep, train_all, variant_table

    preset = QUICK if args.quick else FULL
    epochs, imgsz = args.epochs or preset["epochs"], args.imgsz or preset["imgsz"]
    n_boot = preset["bootstrap"] if args.bootstrap is None else args.bootstrap
    out = writable(args.out, "--out", folder=True)
    data = _data(args.data)
    weights = _weights(args.weights)
    try:
        sweep(out, weights)  # another start in this folder: refused before anything is announced or trained
        if not args.quick and (line := announce(args.variants, args.seeds, epochs, imgsz)):
            print(line, file=sys.stderr)
        rows = train_all(args.variants, args.seeds, data, out, epochs=epochs, imgsz=imgsz, batch=args.batch,
                         scale=args.scale, quick=args.quick, n_boot=n_boot, weights=weights)
    except SettingsClash as e:
        raise BadInput(first_line(e)) from None
    print(variant_table(rows))
    print(f"{out / 'results.csv'}")
    return 0 if all(math.isfinite(r["map50"]) for r in rows) else 1


def interrupted(args) -> str:
    from ..experiments.training import read_results

    out = Path(args.out).expanduser()  # as writable() reads it
    done = read_results(out)
    return (f"{len(done)} finished run{'s' * (len(done) != 1)} kept in {out / 'results.csv'}; "
            "the same command again resumes (finished runs are skipped, the one cut off starts again)")
