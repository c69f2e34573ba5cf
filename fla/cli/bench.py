"""``fla bench``: time and memory of FLA vs the blog's formulation, linear and softmax attention over N."""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from ..experiments.bench import DTYPES, IMPLS, parse_sizes, plot_rows, print_table, run_benchmark, write_rows
from ..runtime import torch_threads
from . import at_least, usage_error, writable

CPU_THREADS = 2


def _sizes(text: str) -> list[tuple[int, int]]:
    """argparse type of ``--sizes``."""
    try:
        return parse_sizes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_arguments(parser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="bf16/fp16 need --device cuda")
    parser.add_argument("--sizes", type=_sizes, default=None, help="comma-separated map sides or HxW (default 20,40,80,160; cuda adds 320)")
    parser.add_argument("--impl", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    parser.add_argument("--dim", type=at_least(1), default=64, help="channels C (a multiple of --heads)")
    parser.add_argument("--heads", type=at_least(1), default=8)
    parser.add_argument("--batch", type=at_least(1), default=1)
    parser.add_argument("--threads", type=at_least(1), default=CPU_THREADS, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=at_least(1), default=7, help="timed runs per case; the median is reported")
    parser.add_argument("--warmup", type=at_least(0), default=2)
    parser.add_argument("--budget-s", type=at_least(0, float), default=10.0, help="slow cases stop after 3 runs past this many seconds")
    parser.add_argument("--softmax-max-n", type=at_least(1), default=None,
                        help="skip softmax above this N (default 6400 on cpu, 65536 on cuda)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--csv", type=Path, default=None, help="write the rows here (and the plot next to it)")
    parser.add_argument("--plot", type=Path, default=None, help="write the log-log plot here (png)")


def run(args) -> int:
    def _error(message):
        return usage_error("fla bench", message)

    if args.device == "cuda" and not torch.cuda.is_available():
        return _error("--device cuda needs a CUDA GPU, and torch sees none here; use --device cpu")
    if args.dtype != "fp32" and args.device != "cuda":
        if not torch.cuda.is_available():
            return _error(f"--dtype {args.dtype} is benchmarked on a GPU only, and torch sees none here; use --dtype fp32")
        return _error(f"--dtype {args.dtype} is benchmarked on the GPU only: add --device cuda")
    impls = [s.strip() for s in args.impl.split(",") if s.strip()]
    if not impls or any(i not in IMPLS for i in impls):
        return _error(f"--impl {args.impl!r}: choose from {','.join(IMPLS)}")
    if args.dim % args.heads:
        return _error(f"--dim {args.dim} must be a multiple of --heads {args.heads}")
    for arg, path in (("--csv", args.csv), ("--plot", args.plot)):  # before the minutes of measuring, not after
        if path is not None:
            writable(path, arg, folder=False)
    sizes = args.sizes or [(s, s) for s in (20, 40, 80, 160, 320)[: 5 if args.device == "cuda" else 4]]
    softmax_max_n = args.softmax_max_n or (65536 if args.device == "cuda" else 6400)

    threads = args.threads if args.device == "cpu" else None
    if args.device == "cpu":
        where = f"CPU, torch.set_num_threads({args.threads})"
        memory = "peak MiB: torch allocator bytes live during one fwd+bwd, from torch.profiler memory events"
    else:
        where = torch.cuda.get_device_name()
        memory = "peak MiB: torch.cuda.max_memory_allocated during one fwd+bwd, above the level before it"
    print(f"fla bench · torch {torch.__version__} · {where} · {args.dtype} · C={args.dim}, {args.heads} heads, batch {args.batch}")
    print(f"median of up to {args.repeats} runs after {args.warmup} warm-up; fwd under no_grad; {memory}")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes share the CPU and the times "
              "are noisy (with 2 threads an op can wait a scheduler tick, ~4 ms, for its second thread)")
    with torch_threads(threads):
        rows = run_benchmark(impls, sizes, args.device, args.dtype, args.dim, args.heads, args.batch, args.repeats,
                             args.warmup, args.budget_s, softmax_max_n, memory=not args.no_memory)
    print_table(rows)
    if args.csv:
        print(f"wrote {write_rows(rows, args.csv)}")
    plot = args.plot or (args.csv.with_suffix(".png") if args.csv else None)
    if plot:
        from ..course.static import figure_bytes
        from ..files import write_atomic

        plot.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(plot, figure_bytes(plot_rows(rows), "png", dpi=120))  # whole or not at all, as the CSV
        print(f"wrote {plot}")
    return 0


def interrupted(args) -> str:
    return "nothing was written (the table, CSV and plot come at the end); run the command again"
