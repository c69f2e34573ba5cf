"""Where and on how many threads torch runs: the one device picker and the one thread switch of the package."""
from __future__ import annotations

import contextlib
import os

import torch

__all__ = ["pick_device", "ultralytics_device", "torch_threads", "cpu_threads"]


def pick_device(requested: str | torch.device | None = None) -> torch.device:
    """The device asked for, else the first GPU when torch sees one, else the CPU.

    ``requested``: a torch device or its name ("cpu", "cuda", "cuda:1"), or a GPU index as
    ultralytics writes it ("0"). A GPU that torch does not see is a ``ValueError`` that says so.
    """
    if requested is None or requested == "":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(f"cuda:{requested}" if str(requested).isdigit() else requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {requested!r} is a GPU, and torch sees none here: use 'cpu'")
    return device


def ultralytics_device(device: torch.device) -> str:
    """``device`` as ultralytics' ``device=`` argument spells it: "cpu", or the GPU's index ("0")."""
    return "cpu" if device.type == "cpu" else str(device.index or 0)


def cpu_threads() -> int:
    """torch threads for CPU training runs: ``$FLA_THREADS``, else every core. On a machine shared with other
    jobs one thread per process wastes less: two threads wait on each other whenever either is descheduled."""
    return int(os.environ.get("FLA_THREADS") or os.cpu_count() or 1)


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block on ``threads`` torch CPU threads (None: leave the setting alone), then restore it."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
