"""Command line: ``python -m fla {data,train,bench} ...`` (also installed as ``fla``).

Each verb lives in its own module with ``add_arguments(parser)`` and ``run(args)``; it is
imported only when called, so ``fla data`` does not pay for ultralytics.
"""
from __future__ import annotations

import argparse
import importlib
import sys

VERBS = {
    "data": ("fla.data.cli", "get the helmet subset (download, verify or build from a local copy)"),
    "train": ("fla.train", "train the YOLOv8 baseline and FLA variants on the helmet subset"),
    "bench": ("fla.bench", "time and memory of FLA vs the seed, linear and softmax attention over N"),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="fla", description="Focused Linear Attention: the helmet data, training and benchmark commands.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{" + ",".join(VERBS) + "}")
    for verb, (_, help_) in VERBS.items():
        sub.add_parser(verb, help=help_, add_help=False)
    verb = argv[0] if argv and argv[0] in VERBS else None
    if verb is None:
        parser.parse_args(argv)  # prints usage / help, exits
        return 2
    module = importlib.import_module(VERBS[verb][0])
    verb_parser = argparse.ArgumentParser(prog=f"fla {verb}", description=VERBS[verb][1])
    module.add_arguments(verb_parser)
    return module.run(verb_parser.parse_args(argv[1:])) or 0


if __name__ == "__main__":
    sys.exit(main())
