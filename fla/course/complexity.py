"""Where the cost of attention goes: counts, wall-clock and peak memory over the number of tokens (notebook 01).

The formulas live in ``fla.functional`` (``attention_macs``, ``projection_macs``, ``module_macs``), the counters
in ``fla.flops`` and the timing and memory primitives in ``fla.measure``; this module lines them up
over N, so the notebook only prints and plots.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import functional as Fn
from ..flops import count_flops, formula_macs
from ..measure import peak_memory_mb, time_impls
from ..runtime import torch_threads

__all__ = [
    "count_table",
    "mixing_overtakes_projections",
    "mixing_functions",
    "mixing_cost",
    "loglog_slope",
    "power_law_range",
    "YOLO_MAPS",
    "DEIT",
    "regrouping_figure",
]

#: Feature maps of a 640×640 image at YOLO's strides 8, 16, 32 (P3, P4, P5): side -> tokens.
YOLO_MAPS = {"P3 80×80": 80 * 80, "P4 40×40": 40 * 40, "P5 20×20": 20 * 20}
#: DeiT / ViT-B at 224²: 14×14 patches, 64 channels per head.
DEIT = {"N": 196, "d": 64}


def count_table(modules: dict, sides) -> list[dict]:
    """Per square map side: FLOPs from FlopCounterMode and thop, and the formula, for each module (notebook 01).

    modules: name -> attention module (any number of heads). Formula FLOPs = 2 · multiply-adds,
    since both counters count 2 per multiply-add. What none of the three counts: the
    exponentials and row sums of softmax, ReLU, the focusing powers, norms and divisions,
    the normaliser's division, and bias additions: elementwise work, O(N·C) per call.
    """
    import thop

    rows = []
    for side in sides:
        n = side * side
        for name, module in modules.items():
            x = torch.randn(1, module.dim, side, side)
            macs, _ = thop.profile(module, inputs=(x,), verbose=False)
            rows.append(
                {
                    "N": n,
                    "module": name,
                    "heads": module.num_heads,
                    "FlopCounterMode": count_flops(module, x),
                    "thop (x2)": 2 * int(macs),
                    "formula": 2 * formula_macs(module, x),
                }
            )
    return rows


def mixing_overtakes_projections(dim: int, num_heads: int, limit: int = 10**6) -> int | None:
    """Smallest N at which softmax's token mixing costs more multiply-adds than the four C×C projections (notebook 01).

    Mixing: heads · N²·2d = 2N²C; projections: 4NC²; so N > 2C, whatever the number of heads.
    Linear attention's mixing, 2NCd + NC, never does (d ≤ C): None for it is the formula's answer.
    """
    d = dim // num_heads
    for n in range(1, limit):
        if num_heads * Fn.attention_macs(n, d, "softmax") > Fn.projection_macs(n, dim):
            return n
    return None


def mixing_functions(p: float = 3.0) -> dict:
    """name -> f(q, k, v) for one head's token mixing, projections left out (notebook 01).

    "naive softmax" forms the N×N matrix (paper §3.1, Eq. 1); "SDPA" is torch's
    scaled_dot_product_attention, on the CPU a flash-style kernel that walks over blocks of
    keys with an online softmax and never holds the N×N matrix; "linear" and "focused" are
    Eq. 4 with φ = ReLU and φ_p = f_p(ReLU) (§3.2, §4.1).
    """

    def naive(q, k, v):
        return torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1) @ v

    def linear(q, k, v):
        return Fn.linear_attention(Fn.relu_kernel(q), Fn.relu_kernel(k), v)

    def focused(q, k, v):
        return Fn.linear_attention(Fn.focus(Fn.relu_kernel(q), p), Fn.focus(Fn.relu_kernel(k), p), v)

    return {"naive softmax": naive, "SDPA (flash-style)": F.scaled_dot_product_attention, "linear": linear, "focused": focused}


class _Mixing(nn.Module):
    """f(q, k, v) behind the one-input interface of ``fla.measure``: x stacks q, k, v on dim 0."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(*x.unbind(0))


def mixing_cost(fns: dict, ns, d: int = 64, device: torch.device | str = "cpu", rounds: int = 2, repeats: int = 3,
                cpu_threads: int | None = 1) -> dict:
    """Milliseconds per call and peak MiB allocated during one call, per function and N (notebook 01).

    Forward only, no autograd graph, one head of d channels. Time: ``fla.measure.time_impls``
    (the functions take turns, median of ``repeats``) in ``rounds`` passes over the sweep,
    the fastest pass kept, since other work on the machine only ever adds time; on the CPU on
    ``cpu_threads`` threads (None: torch's setting). Memory: ``fla.measure.peak_memory_mb``, the
    peak of bytes live in torch's allocator above what was live before the call (q, k, v are
    not counted, the output is). Returns {"ms": name -> list, "MiB": name -> list}.
    """
    device = torch.device(device)
    modules = {name: _Mixing(fn) for name, fn in fns.items()}
    inputs = [torch.randn(3, 1, 1, n, d, device=device) for n in ns]
    with torch_threads(cpu_threads if device.type == "cpu" else None):
        ms = {name: [math.inf] * len(ns) for name in fns}
        for _ in range(rounds):
            for i, x in enumerate(inputs):
                for name, t in time_impls(modules, x, repeats=repeats, warmup=1).items():
                    ms[name][i] = min(ms[name][i], t)
        mib = {name: [peak_memory_mb(m, x, backward=False) for x in inputs] for name, m in modules.items()}
    return {"ms": ms, "MiB": mib}


def loglog_slope(ns, values) -> float:
    """Least-squares slope of log(value) against log(N): the exponent k in value ∝ N^k (notebook 01)."""
    return float(np.polyfit(np.log(ns), np.log(values), 1)[0])


def power_law_range(ns, values, tolerance: float = 0.25, min_points: int = 3) -> tuple[int, float] | None:
    """Where value ∝ N^k holds: the smallest N from which a line fitted in log-log space to all
    larger sizes stays within a factor (1 + tolerance) of every measured value (notebook 01).

    Returns (that N, the fitted exponent k), or None when even the ``min_points`` largest
    sizes do not lie on one power law within the tolerance.
    """
    x, y = np.log(np.asarray(ns, dtype=float)), np.log(np.asarray(values, dtype=float))
    for start in range(len(x) - min_points + 1):
        k, c = np.polyfit(x[start:], y[start:], 1)
        if np.max(np.abs(y[start:] - (k * x[start:] + c))) <= math.log1p(tolerance):
            return int(ns[start]), float(k)
    return None


def crossover(d: int, dv: int | None = None) -> int:
    """Smallest N (= M) at which the kv order costs fewer multiply-adds than the qk order (notebook 01)."""
    dv = d if dv is None else dv
    return next(n for n in range(1, 4 * (d + dv) + 2) if Fn.kv_order_is_cheaper(n, n, d, dv))


def order_view(d: int, n_max: int = 10**4):
    """(figure, text): multiply-adds of the two orders against N for head size d, the crossover marked (notebook 01's slider)."""
    import matplotlib.pyplot as plt

    ns = np.unique(np.logspace(0, np.log10(n_max), 200).astype(int))
    qk = [Fn.attention_macs(int(n), d, "softmax") for n in ns]  # the qk order costs what softmax does
    kv = [Fn.attention_macs(int(n), d, "linear") for n in ns]
    n0 = crossover(d)
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.loglog(ns, qk, label="qk order (φ(Q)φ(K)ᵀ)V  ∝ N²d")
    ax.loglog(ns, kv, label="kv order φ(Q)(φ(K)ᵀV)  ∝ Nd²")
    ax.axvline(n0, color="gray", ls="--", lw=1, label=f"crossover N = {n0}")
    for tag, n in YOLO_MAPS.items():
        ax.axvline(n, color="tab:green", ls=":", lw=1)
        ax.text(n, ax.get_ylim()[0], tag.split()[0], rotation=90, va="bottom", ha="right", fontsize=8)
    ax.set_xlabel("tokens N (= M)")
    ax.set_ylabel("multiply-adds per head")
    ax.set_title(f"head size d = {d}")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    p3 = YOLO_MAPS["P3 80×80"]
    ratio = Fn.attention_macs(p3, d, "softmax") / Fn.attention_macs(p3, d, "linear")
    return fig, f"d = {d}: the kv order is cheaper from N = {n0} on; at P3 (N = {p3}) the qk order costs {ratio:.0f}× more"


def regrouping_figure(n: int = 4096, d: int = 64):
    """The two orders of linear attention as block pictures (notebook 01, Section 1): the qk order builds the N×N
    matrix φ(Q)φ(K)ᵀ, the kv order the d×d_v state φ(K)ᵀV (d_v = d). Blocks are drawn to a schematic scale
    (N larger than d); the titles give the true number of entries of the middle matrix for ``n`` tokens and head
    size ``d``. Sized for a page column of about 750 px."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from .dataflow import LABEL_POINTS  # the data flow's label size: the two pictures are read alike

    big, small = 2.4, 0.9  # drawn side lengths of N and d
    shapes = {"N": big, "d": small, "d_v": small}

    def block(ax, x, y, rows, cols, label, color):
        """A rows×cols matrix whose left edge is x and vertical centre y; returns its right edge."""
        w, h = shapes[cols], shapes[rows]
        ax.add_patch(Rectangle((x, y - h / 2), w, h, fc=color or "#dfe7f3", ec="#333", lw=1))
        ax.text(x + w / 2, y, label, ha="center", va="center", fontsize=LABEL_POINTS)
        ax.text(x + w / 2, y - h / 2 - 0.12, f"{rows}×{cols}".replace("d_v", "dᵥ"), ha="center", va="top",
                fontsize=LABEL_POINTS, color="#333")
        return x + w

    def line(ax, y, parts):
        """parts: (rows, cols, label, colour) blocks joined by ·, then = and the result."""
        x = 0.0
        for i, (rows, cols, label, color) in enumerate(parts):
            if i:
                ax.text(x + 0.25, y, "=" if i == len(parts) - 1 else "·", ha="center", va="center", fontsize=12)
                x += 0.5
            x = block(ax, x, y, rows, cols, label, color)

    red, green = "#f6c9c4", "#cdeccd"
    fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.9))
    top, bottom = 1.4, -1.9
    line(axes[0], top, [("N", "d", "φ(Q)", None), ("d", "N", "φ(K)ᵀ", None), ("N", "N", "φ(Q)φ(K)ᵀ", red)])
    line(axes[0], bottom, [("N", "N", "N×N\nmatrix", red), ("N", "d_v", "V", None), ("N", "d_v", "O", None)])
    line(axes[1], top, [("d", "N", "φ(K)ᵀ", None), ("N", "d_v", "V", None), ("d", "d_v", "state", green)])
    line(axes[1], bottom, [("N", "d", "φ(Q)", None), ("d", "d_v", "state", green), ("N", "d_v", "O", None)])
    for ax, title in zip(axes, [f"qk order (Eq. 3): (φ(Q)φ(K)ᵀ)V\nholds N×N = {n * n:,} entries",
                                f"kv order (Eq. 4): φ(Q)(φ(K)ᵀV)\nholds d×dᵥ = {d * d:,} entries"]):
        ax.set_xlim(-0.1, 6.9)
        ax.set_ylim(-3.4, 2.9)
        ax.set_aspect("equal")
        ax.axis("off")
        ax.set_title(title, fontsize=9.5)
    fig.suptitle(f"Same output, different middle: N = {n} tokens, head size d = dᵥ = {d} (blocks not to scale)",
                 fontsize=9.5, y=0.02, va="bottom")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig
