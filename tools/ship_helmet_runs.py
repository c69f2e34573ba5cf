"""Ship the CPU helmet experiment into the repository (what notebook 06 analyses by default):

    python tools/ship_helmet_runs.py RUNS_DIR [--dest fla/results/helmet-cpu60] [--n-boot 1000] [--note TEXT] [--commit SHA] [--docs docs]

RUNS_DIR is the ``--out`` of the documented command (docs/training.md, "The CPU experiment"). This runs
the paired bootstrap over the finished runs (``paired.csv``, what ``fla train --bootstrap 1000`` does at the
end), then copies the files the analysis reads, with machine, date and commit, into ``--dest``
(``fla.experiments.training.shipped.ship``). Fewer than nine runs are shipped as PARTIAL, and say so.
Last, from the shipped copy, it draws the two figures of docs/training.md ("The CPU experiment") into ``--docs``
and prints its tables: paste them there (tests/test_train_shipped.py checks that the docs hold the shipped runs'
tables).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", type=Path)
    ap.add_argument("--dest", type=Path, default=REPO / "fla" / "results" / "helmet-cpu60")
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--note", default="", help="recorded in provenance.json: conditions a reader should know")
    ap.add_argument("--commit", help="the code the runs ran, when it is not this checkout's HEAD")
    ap.add_argument("--docs", type=Path, default=REPO / "docs", help="where the figures of docs/training.md go")
    args = ap.parse_args(argv)

    import fla.experiments.training as T
    from fla.experiments.training.shipped import describe, ship

    rows = T.read_results(args.runs)
    comparisons = T.compare(rows, args.runs, n_boot=args.n_boot)
    T.write_comparisons(comparisons, args.runs)
    for line in T.comparison_lines(comparisons):
        print(line)
    dest = ship(args.runs, args.dest, note=args.note, commit=args.commit)
    size = sum(p.stat().st_size for p in dest.rglob("*") if p.is_file())
    print(f"{describe(dest)}\n{dest}: {size / 1e6:.2f} MB\n")
    shipped_rows = T.read_results(dest)
    args.docs.mkdir(parents=True, exist_ok=True)
    T.plot_curves(dest, shipped_rows, path=args.docs / "training-cpu60-curves.png")
    T.plot_paired(T.read_comparisons(dest)).savefig(args.docs / "training-cpu60-paired.png", dpi=100)
    for table in (T.run_table(dest, shipped_rows), T.variant_table(shipped_rows),
                  T.paired_table(T.read_comparisons(dest))):
        print(table, end="\n\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
