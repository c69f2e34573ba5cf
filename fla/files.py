"""Result files: written whole or not at all, read back typed, summarised as markdown (``fla data``, the
experiments' sweeps, ``fla bench`` and ``fla models``)."""
from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

__all__ = ["write_atomic", "write_csv", "read_csv", "markdown_table", "cell"]


def write_atomic(path, data: bytes | str) -> None:
    """Write to a temp file beside ``path``, then rename: a reader sees the old file or the whole new one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.part")
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


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
