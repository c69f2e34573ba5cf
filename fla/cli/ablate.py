"""``fla ablate``: train small models that differ only in the token mixer and pair them by seed: focusing (p = 1 → 3) on
retrieval and recall, focusing and DWC on the helmet patches beside an attention-free control; softmax as a reference."""
from __future__ import annotations

import sys
import time
from pathlib import Path

from ..experiments.ablation import PRESETS, TASKS, SettingsClash, contrast_table, find_data, read_rows, run_ablation, summary_table
from . import BadInput, at_least, first_line, usage_error, writable


def add_arguments(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="short runs, few seeds: a smoke test of every phase (about a minute on 2 cores)")
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), metavar="TASK", help=f"from {', '.join(TASKS)}")
    parser.add_argument("--data", help="helmet data.yaml or folder (default: $FLA_DATA, else an earlier `fla data get`)")
    parser.add_argument("--jobs", type=at_least(1), default=None, help="parallel CPU runs, one thread each (default: one per core)")
    parser.add_argument("--out", help="where ablation.csv, .md, .png and settings.json go "
                        "(default runs/ablation, runs/ablation-quick with --quick)")


def run(args) -> int:
    from ..data import DataError

    def _error(message):
        return usage_error("fla ablate", message)

    bad = [x for x in args.tasks if x not in TASKS]
    if bad:
        return _error(f"--tasks {' '.join(bad)}: choose from {', '.join(TASKS)}")
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
        rows = run_ablation(out, args.tasks, quick=args.quick, data=data, jobs=args.jobs,
                            log=lambda m: print(m, file=sys.stderr))
    except SettingsClash as e:
        return _error(str(e))
    presets = PRESETS["quick" if args.quick else "full"]
    print(summary_table(rows, presets))
    print(contrast_table(rows, presets))
    print(f"{len(rows)} runs in {out / 'ablation.csv'}; this call took {time.perf_counter() - t0:.0f} s")
    return 0


def _out(args) -> Path:
    return Path(args.out or ("runs/ablation-quick" if args.quick else "runs/ablation")).expanduser()  # as writable()


def interrupted(args) -> str:
    out = _out(args)
    done = read_rows(out)
    return (f"{len(done)} finished run{'s' * (len(done) != 1)} kept in {out / 'ablation.csv'}; "
            "the same command again resumes (finished runs are skipped)")
