"""``python -m fla data get [--out DIR] [--base-url URL] [--from DIR]``: the last line printed is the data.yaml path.

A thin shell over ``fla.data.get_data`` (notebook 06 calls the function itself).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data import DEFAULT_BASE_URL, DataError, cache_dir, get_data
from . import BadInput, first_line, writable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="get")
    get = sub.add_parser("get", help="download, verify or build the helmet subset; print its data.yaml path")
    get.add_argument("--out", type=Path, help=f"target folder (default: {cache_dir()}; "
                                              "a prepared --from folder is used in place)")
    get.add_argument("--base-url", default=DEFAULT_BASE_URL, help="raw-file host and commit to download from")
    get.add_argument("--from", dest="source", type=Path,
                     help="local folder: a prepared copy of the subset, or the full Roboflow YOLOv8 export")


def run(args: argparse.Namespace) -> int:
    if args.source is not None and not args.source.is_dir():
        raise BadInput(f"--from {args.source}: no such folder")
    if args.out is not None or args.source is None:
        writable(args.out or cache_dir(), "--out", folder=True)
    try:
        path = get_data(out=args.out, base_url=args.base_url, source=args.source)
    except DataError as e:
        if args.source is not None:  # a local folder that is not the subset: a bad path, one line
            raise BadInput(f"--from {first_line(e)}") from None
        print(f"fla data: {e}", file=sys.stderr)  # a download that failed: what to do takes a few lines
        return 1
    print(path)
    return 0


def interrupted(args) -> str:
    out = args.out or cache_dir()
    return f"the files fetched so far are kept in {out}; the same command again fetches only the rest"
