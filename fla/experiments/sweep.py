"""A resumable sweep: many runs into one folder, a typed CSV row each (``fla train``, ``fla ablate``).

A command says what one run is (a function from its arguments to a row) and which runs it wants;
the sweep does the rest, the same way for every command:

- **one setting per folder**: ``OUT/settings.json`` records what every run there shares (the
  start of a training, the task settings of an ablation). A sweep whose settings differ on a
  recorded name is refused before anything runs (``SettingsClash``): its rows would be skipped
  as done and compared with runs made otherwise. The file is written with the first row, so a
  sweep that fails before finishing a run leaves no lock behind.
- **typed rows and done-keys**: ``OUT/<name>.csv`` holds one row per finished run, read back with
  the column types; a run whose key columns match a finished row is skipped.
- **nothing lost when interrupted**: after each run the CSV and the markdown summary
  ``OUT/<name>.md`` are rewritten atomically (``fla.files``).
- **in this process or in parallel**: ``jobs`` > 1 runs the runs in worker processes.
"""
from __future__ import annotations

import json
import multiprocessing
import sys
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from ..files import read_csv, read_json, write_atomic, write_csv

__all__ = ["Sweep", "SettingsClash", "SETTINGS"]

SETTINGS = "settings.json"


class SettingsClash(ValueError):
    """The output folder holds runs made with other settings."""


class Sweep:
    """The runs of one folder (see the module docstring).

    ``columns``: name -> type of every CSV column, in order; ``key``: the columns that name a run;
    ``settings``: JSON-able values every run here shares; ``summary``: rows -> the markdown of
    ``OUT/<name>.md``; ``complete``: whether a row counts as done (default: every row does).
    """

    def __init__(self, out, name: str, columns: dict[str, type], key: tuple[str, ...], settings: dict,
                 summary: Callable[[list[dict]], str], complete: Callable[[dict], bool] | None = None):
        self.out, self.columns, self.key = Path(out), dict(columns), tuple(key)
        self.csv, self.markdown = self.out / f"{name}.csv", self.out / f"{name}.md"
        self.settings = json.loads(json.dumps(settings))  # tuples as lists, as they come back from the file
        self.summary, self.complete = summary, complete or (lambda row: True)
        self._check_settings()
        self.rows = read_csv(self.csv, self.columns)

    # --- the folder ---------------------------------------------------------------------------------

    def _recorded(self) -> dict:
        return read_json(self.out / SETTINGS, {})

    def _check_settings(self) -> None:
        known = self._recorded()
        clash = [k for k in self.settings if k in known and known[k] != self.settings[k]]
        if clash:
            raise SettingsClash(f"{self.out} holds runs made with other settings for {', '.join(clash)} "
                                f"(see {self.out / SETTINGS}): use another --out")
        self._unrecorded = any(k not in known for k in self.settings)  # written with the next row

    def key_of(self, row: dict) -> tuple:
        return tuple(self.columns[k](row[k]) for k in self.key)

    def row(self, key: tuple) -> dict | None:
        """The row of run ``key``, None when it has not run."""
        return next((r for r in self.rows if self.key_of(r) == key), None)

    def finished(self, key: tuple) -> bool:
        row = self.row(key)
        return row is not None and self.complete(row)

    def write(self, markdown: str | None = None) -> None:
        """``OUT/<name>.csv`` and ``OUT/<name>.md`` (``markdown``, else ``summary(rows)``), each atomically."""
        self.out.mkdir(parents=True, exist_ok=True)
        write_csv(self.csv, list(self.columns), self.rows)
        write_atomic(self.markdown, markdown if markdown is not None else self.summary(self.rows))

    def record(self, *rows: dict) -> None:
        """Keep ``rows`` (each replacing the row of the same run) and write the folder's files once."""
        keys = {self.key_of(row) for row in rows}
        self.rows = [r for r in self.rows if self.key_of(r) not in keys] + list(rows)
        if self._unrecorded:
            self.out.mkdir(parents=True, exist_ok=True)
            write_atomic(self.out / SETTINGS, json.dumps({**self._recorded(), **self.settings}, indent=1))
            self._unrecorded = False
        self.write()

    def select(self, keys: Iterable[tuple]) -> list[dict]:
        """The rows of ``keys`` that have run, in the order of ``keys``."""
        found = {self.key_of(r): r for r in self.rows}
        return [found[k] for k in keys if k in found]

    # --- the runs -----------------------------------------------------------------------------------

    def run(self, todo: list[tuple[tuple, tuple]], one: Callable[..., dict], *, jobs: int = 1,
            describe: Callable[[dict], str] | None = None, after: Callable[[dict], None] | None = None,
            progress: bool = False, log=print, desc: str = "sweep") -> None:
        """Run ``one(*args)`` for every ``(key, args)`` of ``todo`` whose run is not finished; record each row.

        ``jobs`` > 1 runs them in that many worker processes (``one`` and its arguments must pickle).
        ``after(row)`` is called once a row is recorded (a figure, a log line); ``progress`` shows a tqdm
        bar, ``describe(row)`` its text after each run.
        """
        from tqdm.auto import tqdm

        context = _pool_context()  # before the bar: tqdm's monitor thread would make this process look threaded
        pending = [(key, args) for key, args in todo if not self.finished(key)]
        if len(pending) < len(todo):
            log(f"{len(todo) - len(pending)} of {len(todo)} runs already in {self.csv}: skipped")
        bar = tqdm(total=len(pending), desc=desc, unit="run", disable=not progress or not pending)

        def finished(row):
            self.record(row)
            if after:
                after(row)
            if describe:
                bar.set_postfix_str(describe(row))
            bar.update(1)

        try:
            if jobs <= 1 or len(pending) <= 1:
                for _, args in pending:
                    finished(one(*args))
                return
            with ProcessPoolExecutor(min(jobs, len(pending)), mp_context=context) as pool:
                futures = [pool.submit(one, *args) for _, args in pending]
                try:
                    for f in as_completed(futures):
                        finished(f.result())
                except BaseException:
                    for f in futures:
                        f.cancel()
                    raise
        finally:
            bar.close()


def _pool_context():
    """fork on Linux from a single-threaded caller (the command line): fast, no re-import of ``__main__``. A
    caller with other threads (a Jupyter kernel) can leave a lock held in the child and hang it: spawn there,
    and off Linux."""
    single = threading.active_count() == 1
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") and single else "spawn")
