"""Result files: written whole or not at all, read back typed, summarised as markdown (``fla data``, the
experiments' sweeps, ``fla bench`` and ``fla models``)."""
from __future__ import annotations

import csv
import io
import math
import os
import tempfile
from pathlib import Path

__all__ = ["WriteError", "write_atomic", "write_csv", "read_csv", "markdown_table", "cannot_write"]


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
    ``float``, and is an error for the other types. ``[]`` when there is no file."""
    path = Path(path)
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        raw = list(csv.DictReader(f))

    def parse(column, kind, text):
        if text in ("", None):
            if kind is float:
                return math.nan
            raise ValueError(f"{path}: column {column!r} is empty or missing")
        return kind(text)

    return [{c: parse(c, kind, r.get(c)) for c, kind in types.items()} for r in raw]


def markdown_table(header: list[str], rows: list[list], numeric: bool = False) -> str:
    """A markdown table; ``numeric``: every column after the first right-aligned."""
    rule = "|" + "|".join(["---"] + [("---:" if numeric else "---")] * (len(header) - 1)) + "|"
    lines = ["| " + " | ".join(map(str, header)) + " |", rule]
    return "\n".join(lines + ["| " + " | ".join(map(str, r)) + " |" for r in rows])
