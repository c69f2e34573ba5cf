"""``fla models``: one table of every YOLO variant: params, GFLOPs@640, CPU latency (torch, ONNX Runtime)."""
from __future__ import annotations

from pathlib import Path

from . import usage_error


def add_arguments(parser) -> None:
    from ..yolo import VARIANTS

    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="VARIANT",
                        help="which variants (default: all): " + ", ".join(VARIANTS))
    parser.add_argument("--scale", default="n", choices=list("nsmlx"))
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--runs", type=int, default=30, help="timed runs per runtime (median reported; default 30)")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--no-latency", action="store_true", help="params and GFLOPs only (fast)")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX export and ONNX Runtime timing")
    parser.add_argument("--csv", type=Path, help="also write the rows as CSV")


def run(args) -> int:
    if args.runs < 1 or args.warmup < 0 or args.imgsz < 32 or args.imgsz % 32:
        return usage_error("fla models", "need --runs >= 1, --warmup >= 0 and --imgsz a multiple of 32")
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
