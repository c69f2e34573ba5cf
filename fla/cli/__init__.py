"""Command line: ``python -m fla VERB ...`` (also installed as ``fla``), the project's one entry point.

The commands live here, apart from the library: each verb is a module of this package with
``add_arguments(parser)`` and ``run(args)`` that parses, checks and reports, and calls the library
(``fla.data``, ``fla.experiments``, ``fla.yolo``) for the work; no library module imports this
package. A verb is imported only when called, so ``fla data`` does not pay for ultralytics. Add a
verb by adding a module and a line to ``VERBS``.

The rules every verb keeps: a bad argument, path or file is one line on stderr (``usage_error``), found
before any long work starts, exit status 2, nothing written; Ctrl-C is one line saying what was kept and
how to go on (a verb's ``interrupted(args)``), exit status 130. A place that stops taking writes during the
work (a full disk) is one line too, exit status 2: the file it failed on, and what was kept; so is a result
file that does not read back (cut off, damaged): which, and how to make it again.
"""
from __future__ import annotations

import argparse
import errno
import importlib
import sys
from pathlib import Path

from ..files import CorruptFile, WriteError, cannot_write

VERBS = {
    "data": ("fla.cli.data", "get the helmet subset (download, verify or build from a local copy)"),
    "train": ("fla.cli.train", "train the YOLOv8 baseline and FLA variants on the helmet subset"),
    "bench": ("fla.cli.bench", "time and memory of FLA vs the blog's formulation, linear and softmax attention over N"),
    "ablate": ("fla.cli.ablate", "small models that differ only in the token mixer, paired by seed: focusing (p = 1 → 3) and DWC contrasts"),
    "models": ("fla.cli.models", "one table of every YOLO variant: params, GFLOPs@640, CPU latency (torch, ONNX Runtime)"),
}


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``prog: error: ...``), exit status 2, no usage block."""

    def error(self, message: str):
        self.exit(usage_error(self.prog, message))


def at_least(low, kind=int):
    """argparse type: a number of ``kind`` that is at least ``low`` (e.g. ``--repeats 0`` is a usage error)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not value >= low:  # also rejects nan
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {text}")
        return value

    parse.__name__ = f"{kind.__name__} >= {low}"
    return parse


class BadInput(ValueError):
    """A bad argument, path or file: its message is the one line ``usage_error`` prints."""


def writable(path, arg: str, *, folder: bool) -> Path:
    """``path`` (the value of ``arg``) if a file (``folder=False``) or a folder could be written there; else
    ``BadInput``. Leaves nothing behind: a command that stops later leaves no empty folder."""
    path = Path(path).expanduser()
    if path.exists() and path.is_dir() != folder:
        raise BadInput(f"{arg} {path}: is a {'file' if folder else 'folder'}, not a {'folder' if folder else 'file'}")
    existing = path if path.is_dir() else path.parent  # a file is replaced by one written beside it
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"{arg} {path}: {existing} is a file, so nothing can be written under it")
    if (why := cannot_write(existing)) is not None:
        raise BadInput(f"{arg} {path}: nothing can be written under {existing} ({why})")
    return path


def seeds(text: str) -> int:
    """argparse type of a seed: an integer >= 0 (torch and numpy take no negative seed)."""
    return at_least(0)(text)


def first_line(error: BaseException) -> str:
    """An error's message cut to its first line (the rest is the how-to of a library error), without a final
    full stop (``usage_error`` adds its "(see ... --help)")."""
    text = str(error).strip()
    return text.splitlines()[0].rstrip(".") if text else type(error).__name__


def usage_error(prog: str, message: str) -> int:
    """Print ``PROG: error: MESSAGE (see PROG --help)`` on stderr and return 2: the one form of every usage error
    (the parser's and each verb's own checks)."""
    print(f"{prog}: error: {message} (see {prog} --help)", file=sys.stderr)
    return 2


#: what a place that stops taking writes answers: a full disk or quota, a read-only mount, a permission denied
WRITE_FAULTS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="fla", description="Focused Linear Attention: the helmet data, training, benchmark and ablation commands.")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="{" + ",".join(VERBS) + "}")
    for verb, (_, help_) in VERBS.items():
        sub.add_parser(verb, help=help_, add_help=False)
    verb = argv[0] if argv and argv[0] in VERBS else None
    if verb is None:
        parser.parse_args(argv)  # prints usage / help, exits
        return 2
    module = importlib.import_module(VERBS[verb][0])
    verb_parser = OneLineParser(prog=f"fla {verb}", description=VERBS[verb][1])
    module.add_arguments(verb_parser)
    args = verb_parser.parse_args(argv[1:])
    try:
        return module.run(args) or 0
    except BadInput as e:
        return usage_error(verb_parser.prog, str(e))
    except CorruptFile as e:  # a result file that does not read back: the line names it and how to remake it
        return usage_error(verb_parser.prog, str(e))
    except WriteError as e:  # one of our result files: the line says what it kept
        return usage_error(verb_parser.prog, str(e))
    except OSError as e:
        if e.errno not in WRITE_FAULTS:
            raise
        kept = getattr(module, "interrupted", lambda args: "")(args)  # a file of the work itself (a checkpoint)
        return usage_error(verb_parser.prog, "; ".join(filter(None, [f"could not write {e.filename} ({e.strerror})", kept])))
    except KeyboardInterrupt:
        kept = getattr(module, "interrupted", lambda args: "nothing was written; run the same command again")(args)
        print(f"\n{verb_parser.prog}: interrupted: {kept}", file=sys.stderr)
        return 130
