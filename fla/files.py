"""Result files: written whole or not at all, read back typed, summarised as markdown (``fla data``, the
experiments' sweeps, ``fla bench`` and ``fla models``)."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from pathlib import Path

__all__ = ["WriteError", "CorruptFile", "write_atomic", "write_csv", "read_csv", "read_json", "markdown_table",
           "cell", "cannot_write"]


class WriteError(OSError):
    """A file that could not be written (a full disk, a read-only place, ...): says which and what was kept."""

    def __str__(self) -> str:
        return f"{self.filename}: {self.strerror}"


def write_atomic(path, data: bytes | str) -> None:
    """Write to a temp file beside ``path``, then rename: a reader sees the old file or the whole new one. A write
    that fails (a full disk) leaves the previous file as it was and raises ``WriteError`` saying so."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    except OSError as e:
        kept = f"the previous {path.name} is kept as it was" if path.exists() else "nothing was written"
        raise WriteError(e.errno, f"could not write it ({e.strerror or e}); {kept}", str(path)) from e
    finally:
        tmp.unlink(missing_ok=True)


def cannot_write(folder) -> str | None:
    """None when something can be created in the existing ``folder``, else the system's reason (a read-only
    mount, a permission denied, a place such as /proc where nothing can be made). Tried, not guessed from the
    mode bits (root passes those); the trial folder is removed at once."""
    try:
        tempfile.TemporaryDirectory(dir=folder, prefix=".fla-write-check-").cleanup()
    except OSError as e:
        return e.strerror or type(e).__name__
    return None


class CorruptFile(ValueError):
    """A result file that does not read back as it was written (cut off, edited, damaged): its one-line message
    names the file and says how to make it again."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}; {remake(path)}")


def remake(path) -> str:
    """How to get a damaged result file back: a shipped one from the package, another by running its command."""
    from .results import HERE

    if Path(path).resolve().is_relative_to(HERE):
        return "it is shipped with fla: restore it (git checkout -- fla/results, or reinstall fla)"
    return "move it away and run the command that wrote it again, with the same --out, to make it anew"


def write_csv(path, columns: list[str], rows) -> None:
    """``rows`` (dicts; keys beyond ``columns`` ignored) as a CSV with a header, atomically."""
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, text.getvalue())


def read_csv(path, types: dict[str, type]) -> list[dict]:
    """The rows of a CSV written by ``write_csv``, one dict per row with exactly the keys of ``types``, each value
    parsed by its type. A column the file lacks (written by an older version) or an empty cell reads as NaN for
    ``float``, and is an error for the other types. ``[]`` when there is no file; ``CorruptFile`` when it does not
    read back (no header, a row cut short or too long, a value not of its column's type)."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            raw = list(reader)
            header = reader.fieldnames
    except (csv.Error, UnicodeDecodeError) as e:
        raise CorruptFile(path, f"not a CSV file ({e})") from None
    if not header:
        raise CorruptFile(path, "empty, not even a header")

    def parse(line, column, kind, text):
        if text in ("", None):
            if kind is float:
                return math.nan
            raise CorruptFile(path, f"line {line}: column {column!r} is empty or missing")
        try:
            return kind(text)
        except ValueError:
            kind_ = {int: "an integer", float: "a number"}.get(kind, kind.__name__)
            raise CorruptFile(path, f"line {line}: column {column!r} holds {text!r}, not {kind_}") from None

    for line, r in enumerate(raw, start=2):
        if None in r or None in r.values():  # more cells than the header, or fewer: a row cut off or run together
            raise CorruptFile(path, f"line {line} has {'more' if None in r else 'fewer'} cells than the header's "
                                    f"{len(header)} (cut off or damaged)")
    return [{c: parse(line, c, kind, r.get(c)) for c, kind in types.items()} for line, r in enumerate(raw, start=2)]


def read_json(path, default=None):
    """The JSON value in ``path`` (``default`` when there is no file); ``CorruptFile`` when it does not parse."""
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptFile(path, f"not JSON ({e})") from None


def cell(x, digits: int = 3) -> str:
    """One table cell: a float to ``digits`` decimals, "–" for a missing value (None, NaN), anything else as str."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def markdown_table(header: list[str], rows: list[list], numeric: bool = False) -> str:
    """A markdown table; ``numeric``: every column after the first right-aligned."""
    rule = "|" + "|".join(["---"] + [("---:" if numeric else "---")] * (len(header) - 1)) + "|"
    lines = ["| " + " | ".join(map(str, header)) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])
