"""Result files that survive an interrupted run: written whole or not at all (fla data, train, ablate)."""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path


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
