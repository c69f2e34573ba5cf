"""Timing and peak memory of one torch step: the measuring primitives of ``fla bench``, ``fla models`` and
notebook 01.

- ``time_impls``: median wall time of several modules taking turns (a Williams design, ``turn_orders``).
- ``peak_memory_mb``: peak bytes one step allocates; on CUDA ``torch.cuda.max_memory_allocated`` above the
  level before the step, on the CPU the peak of live bytes allocated by torch during the step, from the
  allocation and free events that ``torch.profiler`` records with ``profile_memory=True`` (not RSS, which
  the C allocator's caching blurs). Both count what the step allocates: activations kept for backward,
  gradients, workspaces; not the weights or the input.
- ``conditions``: the CPU, threads and load a figure was measured under.
"""
from __future__ import annotations

import contextlib
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

__all__ = ["turn_orders", "time_impls", "peak_memory_mb", "step", "step_inputs", "conditions"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step(module: nn.Module, x: torch.Tensor, grad: torch.Tensor | None) -> None:
    """One forward (no autograd graph) or one forward + backward into x and the weights."""
    if grad is None:
        with torch.no_grad():
            module(x)
        return
    module(x).backward(grad)
    x.grad = None
    for p in module.parameters():
        p.grad = None


def step_inputs(module: nn.Module, x: torch.Tensor, backward: bool):
    x = x.detach().requires_grad_(backward)
    return x, (torch.ones_like(x) if backward else None)


def turn_orders(n: int) -> list[list[int]]:
    """Orders of n modules, one per round, in which each module directly follows every other
    equally often (a Williams design: n rounds for even n, 2n for odd n)."""
    steps = [0] + [(j + 1) // 2 if j % 2 else n - j // 2 for j in range(1, n)]  # 0, 1, n-1, 2, n-2, ...
    rows = [[(r + b) % n for b in steps] for r in range(n)]
    return rows if n % 2 == 0 else rows + [row[::-1] for row in rows]


def time_impls(modules: dict[str, nn.Module], x: torch.Tensor, backward: bool = False, repeats: int = 7,
               warmup: int = 2, budget_s: float | None = None) -> dict[str, float]:
    """Median wall time in ms per module of ``module(x)`` (no_grad) or of forward + backward.

    The modules take turns, one run each per round after ``warmup`` rounds, so that a busy
    machine slows them alike. The order changes each round (:func:`turn_orders`) so that each
    module follows every other equally often: a run right after softmax's large buffers is
    measurably slower, and a fixed order hands that slot to the same module every time. With
    ``budget_s``, rounds stop once that many seconds have run (but never before 3 rounds, or
    ``repeats`` if fewer). CUDA work is synchronised around each run.
    """
    runs = {name: step_inputs(m, x, backward) for name, m in modules.items()}
    for _ in range(warmup):
        for name, m in modules.items():
            step(m, *runs[name])
    times = {name: [] for name in modules}
    names = list(modules)
    orders = turn_orders(len(names))
    spent = 0.0
    for i in range(repeats):
        for name in (names[j] for j in orders[i % len(orders)]):
            m = modules[name]
            _sync(x.device)
            t0 = time.perf_counter()
            step(m, *runs[name])
            _sync(x.device)
            times[name].append(time.perf_counter() - t0)
            spent += times[name][-1]
        if budget_s is not None and i + 1 >= min(3, repeats) and spent > budget_s:
            break
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


@contextlib.contextmanager
def _native_stderr_silenced():
    """Mute file descriptor 2 for a moment: the profiler's C++ side prints start/stop lines and,
    on a machine without a GPU, an alarming "gpuGetDeviceCount failed" there on every use."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory_mb(module: nn.Module, x: torch.Tensor, backward: bool = True) -> float:
    """Peak MiB that one step allocates above what was live before it (see the module docstring)."""
    x, grad = step_inputs(module, x, backward)
    step(module, x, grad)  # warm: lazy initialisations are not part of the step
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        before = torch.cuda.memory_allocated(x.device)
        step(module, x, grad)
        torch.cuda.synchronize(x.device)
        return (torch.cuda.max_memory_allocated(x.device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step(module, x, grad)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / 2**20



def conditions() -> str:
    """CPU, threads and load average: what a latency figure was measured under."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} with {torch.get_num_threads()} threads, load average {load}"
