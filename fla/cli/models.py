"""``fla models``: one table of every YOLO variant: params, GFLOPs@640, CPU latency (torch, ONNX Runtime)."""
from __future__ import annotations

from pathlib import Path

from . import at_least, usage_error, writable


def _imgsz(text: str) -> int:
    """argparse type of ``--imgsz``: a multiple of 32 (YOLO's largest stride), at least 32."""
    import argparse

    value = at_least(32)(text)
    if value % 32:
        raise argparse.ArgumentTypeError(f"must be a multiple of 32, got {text}")
    return value


def add_arguments(parser) -> None:
    from ..yolo import VARIANTS

    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help="which variants (default: all): " + ", ".join(VARIANTS))
    parser.add_argument("--scale", default="n", choices=list("nsmlx"))
    parser.add_argument("--imgsz", type=_imgsz, default=640, help="a multiple of 32 (default 640)")
    parser.add_argument("--runs", type=at_least(1), default=30, help="timed runs per runtime (median reported; default 30)")
    parser.add_argument("--warmup", type=at_least(0), default=5)
    parser.add_argument("--no-latency", action="store_true", help="params and GFLOPs only (fast)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime timing")
    parser.add_argument("--csv", type=Path, help="also write the rows as CSV")


def run(args) -> int:
    if args.csv is not None:
        writable(args.csv, "--csv", folder=False)  # before the measuring, not after
    onnx = not (args.no_onnx or args.no_latency)
    if onnx:
        try:
            import onnx as _  # noqa: F401
            import onnxruntime as _  # noqa: F401,F811
        except ImportError as e:
            return usage_error("fla models", f"{e.name} is not installed: pip install 'fla-teach[export]' (or pass --no-onnx)")
    from ..files import write_csv
    from ..measure import conditions
    from ..yolo.table import COLUMNS, markdown, measure_all

    before = conditions()
    rows = measure_all(args.variants, scale=args.scale, imgsz=args.imgsz, runs=args.runs, warmup=args.warmup,
                       onnx=onnx, latency=not args.no_latency)
    print(markdown(rows, args.runs))
    if not args.no_latency:
        print(f"\nmeasured on: {before}\nload after:  {conditions().rsplit('load average ', 1)[1]}")
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        write_csv(args.csv, COLUMNS, rows)
    return 0


def interrupted(args) -> str:
    return "nothing was written (the table and CSV come at the end); run the command again"
