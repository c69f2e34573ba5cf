"""``fla ablate``: train small models that differ only in the token mixer: softmax, linear, +focusing, +DWC, FLA."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..experiments.ablation import SEEDS, TASKS, VARIANTS, SettingsClash, contrast_table, find_data, read_rows, run_ablation, summary_table
from . import BadInput, at_least, first_line, seeds, usage_error, writable


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="short runs, one seed: a smoke test (about a minute on 2 cores)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK", help=f"from {', '.join(TASKS)}")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), metavar="VARIANT",
                        help=f"from {', '.join(VARIANTS)}; linear+focus brings its p sweep and per-head focusing")
    parser.add_argument("--no-sweeps", action="store_true", help="only the five variants: no p sweep, no per-head focusing")
    parser.add_argument("--seeds", nargs="+", type=seeds, default=None, metavar="SEED",
                        help=f"one run per seed at each mixer's tuned learning rate (default {' '.join(map(str, SEEDS))}; 0 with --quick)")
    parser.add_argument("--data", help="helmet data.yaml or folder (default: $FLA_DATA, else an earlier `fla data get`)")
    parser.add_argument("--jobs", type=at_least(1), default=None, help="parallel CPU runs, one thread each (default: one per core)")
    parser.add_argument("--out", help="where ablation.csv, .md, .png and settings.json go "
                        "(default runs/ablation, runs/ablation-quick with --quick)")



def run(args) -> int:
    from ..data import DataError

    def _error(message):
        return usage_error("fla ablate", message)

    for name, given, allowed in (("--tasks", args.tasks, TASKS), ("--variants", args.variants, VARIANTS)):
        bad = [x for x in given if x not in allowed]
        if bad:
            return _error(f"{name} {' '.join(bad)}: choose from {', '.join(allowed)}")
    seeds = args.seeds if args.seeds is not None else ([0] if args.quick else list(SEEDS))
    out = writable(_out(args), "--out", folder=True)
    try:
        data = find_data(args.data) if "helmet" in args.tasks else None
        if data is not None:
            from ..yolo.datasets import check_data

            check_data(data)
    except DataError as e:
        raise BadInput(first_line(e)) from None
    if "helmet" in args.tasks and data is None:  # a task asked for (or by default) that cannot run is not skipped
        return _error("the helmet task needs the helmet data, and there is none here: get it with `python -m fla data "
                      "get --out DIR`, then pass --data DIR or set FLA_DATA=DIR; or leave it out: --tasks recall")
    t0 = time.perf_counter()
    try:
        rows = run_ablation(out, args.tasks, args.variants, seeds, quick=args.quick, sweeps=not args.no_sweeps,
                            data=data, jobs=args.jobs, log=lambda m: print(m, file=sys.stderr))
    except SettingsClash as e:
        return _error(str(e))
    print(summary_table(rows))
    print(contrast_table(rows))
    print(f"{len(rows)} runs in {out / 'ablation.csv'}; this call took {time.perf_counter() - t0:.0f} s")
    return 0


def _out(args) -> Path:
    return Path(args.out or ("runs/ablation-quick" if args.quick else "runs/ablation")).expanduser()  # as writable()


def interrupted(args) -> str:
    out = _out(args)
    done = read_rows(out)
    return (f"{len(done)} finished run{'s' * (len(done) != 1)} kept in {out / 'ablation.csv'}; "
            "the same command again resumes (finished runs are skipped)")
