"""Where the cost of attention goes: counts and wall-clock over the number of tokens (notebook 01).

The formulas live in ``fla.functional`` (``attention_macs``, ``projection_macs``) and the
counters in ``fla.flops``; this module lines them up over N and times the real modules, so the
notebook only plots.
"""
from __future__ import annotations

import math

import torch

from .flops import count_flops
from .functional import attention_macs, projection_macs

__all__ = ["count_table", "time_over_tokens", "loglog_slope", "YOLO_MAPS", "DEIT"]

#: Feature maps of a 640×640 image at YOLO's strides 8, 16, 32 (P3, P4, P5): side -> tokens.
YOLO_MAPS = {"P3 80×80": 80 * 80, "P4 40×40": 40 * 40, "P5 20×20": 20 * 20}
#: DeiT / ViT-B at 224²: 14×14 patches, 64 channels per head.
DEIT = {"N": 196, "d": 64}


def count_table(modules: dict, sides, dim: int) -> list[dict]:
    """Per square map side: FLOPs from FlopCounterMode and thop, and the formula, for each module (notebook 01).

    modules: name -> (module, kind of ``attention_macs``), each one head of ``dim`` channels.
    Formula FLOPs = 2 · (projections + token mixing), since the counters count 2 per multiply-add.
    """
    import thop

    rows = []
    for side in sides:
        x = torch.randn(1, dim, side, side)
        n = side * side
        for name, (module, kind) in modules.items():
            macs, _ = thop.profile(module, inputs=(x,), verbose=False)
            extra = 0  # FocusedLinearAttention's DWC on V: k·k multiply-adds per value entry
            if hasattr(module, "dwc"):
                extra = n * module.head_dim * module.dwc.kernel_size[0] * module.dwc.kernel_size[1]
            rows.append(
                {
                    "N": n,
                    "module": name,
                    "FlopCounterMode": count_flops(module, x),
                    "thop (x2)": 2 * int(macs),
                    "formula": 2 * (projection_macs(n, dim) + attention_macs(n, module.head_dim, kind) + extra),
                }
            )
    return rows


def time_over_tokens(modules: dict, sides, dim: int, device: torch.device, rounds: int = 3,
                     repeats: int = 5, cpu_threads: int | None = 1) -> dict:
    """Seconds per no-grad forward for each module on square maps of the given sides: name -> list (notebook 01).

    Each size is timed with ``fla.bench.time_impls`` (the modules take turns, median of
    ``repeats``) in ``rounds`` passes spread over the whole sweep, and the fastest pass kept:
    other work on the machine only ever adds time, so a burst of it spoils one pass, not the
    curve. On the CPU the sweep runs on ``cpu_threads`` threads (None: torch's setting): the
    slope is about the arithmetic, and one thread is not held up by a partner on a busy core.
    """
    from .bench import time_impls

    threads = torch.get_num_threads()
    if device.type == "cpu" and cpu_threads:
        torch.set_num_threads(cpu_threads)
    modules = {name: module.to(device) for name, module in modules.items()}
    try:
        best = {name: [math.inf] * len(sides) for name in modules}
        for _ in range(rounds):
            for i, side in enumerate(sides):
                ms = time_impls(modules, torch.randn(1, dim, side, side, device=device), repeats=repeats, warmup=1)
                for name, t in ms.items():
                    best[name][i] = min(best[name][i], t / 1000)
    finally:
        torch.set_num_threads(threads)
    return best


def loglog_slope(ns, values) -> float:
    """Least-squares slope of log(value) against log(N): the exponent k in value ∝ N^k (notebook 01)."""
    xs, ys = [math.log(n) for n in ns], [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)
