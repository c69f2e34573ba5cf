"""Where the cost of attention goes: counts and wall-clock over the number of tokens (notebook 01).

The formulas live in ``fla.functional.attention_macs`` and the counters in ``fla.flops``; this
module lines them up over N and times the real modules, so the notebook only plots.
"""
from __future__ import annotations

import math
import statistics
import time

import torch

from .flops import count_flops
from .functional import attention_macs

__all__ = ["projection_macs", "count_table", "time_forward", "time_over_tokens", "loglog_slope", "YOLO_MAPS", "DEIT"]

#: Feature maps of a 640×640 image at YOLO's strides 8, 16, 32 (P3, P4, P5): side -> tokens.
YOLO_MAPS = {"P3 80×80": 80 * 80, "P4 40×40": 40 * 40, "P5 20×20": 20 * 20}
#: DeiT / ViT-B at 224²: 14×14 patches, 64 channels per head.
DEIT = {"N": 196, "d": 64}


def projection_macs(n: int, dim: int) -> int:
    """Multiply-adds of the q, k, v and output projections on n tokens: 4·N·C² (weights only, biases free)."""
    return 4 * n * dim * dim


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_forward(module: torch.nn.Module, x: torch.Tensor, repeats: int = 5) -> float:
    """Median seconds of one no-grad forward after one warm-up call (notebook 01)."""
    times = []
    with torch.no_grad():
        module(x)
        for _ in range(repeats):
            _sync(x.device)
            t0 = time.perf_counter()
            module(x)
            _sync(x.device)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def time_over_tokens(modules: dict, sides, dim: int, device: torch.device, repeats: int = 5) -> dict:
    """Seconds per forward for each module on square maps of the given sides: name -> list (notebook 01)."""
    out = {name: [] for name in modules}
    for side in sides:
        x = torch.randn(1, dim, side, side, device=device)
        for name, module in modules.items():
            out[name].append(time_forward(module.to(device), x, repeats))
    return out


def loglog_slope(ns, values) -> float:
    """Least-squares slope of log(value) against log(N): the exponent k in value ∝ N^k (notebook 01)."""
    xs, ys = [math.log(n) for n in ns], [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((a - mx) * (b - my) for a, b in zip(xs, ys)) / sum((a - mx) ** 2 for a in xs)
