"""Time and peak memory of attention over the number of tokens N: ``fla bench`` (notebook 01).

Four implementations, all ``(B, C, H, W) -> (B, C, H, W)`` with C=64 and 8 heads by default:

- ``fla``: our :class:`~fla.FocusedLinearAttention`.
- ``blog``: the formulation of the blog post that started this project (:class:`BlogFormulation`),
  kept here as a yardstick only: sum normaliser, einsum order switch, its float casts, square
  maps only. It shares our module's weights, so the two compute the same output
  (``tests/test_bench.py``).
- ``linear``: :class:`~fla.LinearAttention` (ReLU kernel, no focusing, no DWC).
- ``softmax``: :class:`~fla.SoftmaxAttention` (torch's ``scaled_dot_product_attention``).

:func:`build` makes the modules, :func:`run_benchmark` measures them over map sizes with
``fla.measure`` (rows of :data:`CSV_COLUMNS`), :func:`write_rows`, :func:`print_table` and
:func:`plot_rows` (the log-log figure) report them.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ..attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from ..files import write_csv
from ..measure import peak_memory_mb, step, step_inputs, time_impls

__all__ = ["IMPLS", "CSV_COLUMNS", "DTYPES", "BlogFormulation", "build", "parse_sizes", "run_benchmark", "write_rows",
           "print_table", "plot_rows"]

IMPLS = ("fla", "blog", "linear", "softmax")
CSV_COLUMNS = ("impl", "device", "dtype", "H", "W", "N", "fwd_ms", "fwdbwd_ms", "peak_mb")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


class BlogFormulation(nn.Module):
    """The blog post's FocusedLinearAttention forward, on our module's weights (comparison only).

    Line for line the blog's computation for ``sr_ratio=1``: the focusing power without
    rescaling, the normaliser ``1 / (q · sum_j k_j + 1e-6)``, the 3-operand einsums with its
    order switch, a zero positional encoding re-created as a fresh Parameter on every call (in the
    input's dtype: the blog's fp32 one makes its bf16 forward fail), the
    fp16-only float casts, and the ``sqrt(N)`` reshape that only square maps survive. Its
    parameters *are* ``fla``'s (shared, not copied), so with ``pos_encoding=False`` the two
    modules compute the same function. Not for use in models: ``fla.FocusedLinearAttention``
    fixes the blog's defects (``fla bench`` compares their speed, tests/test_attention.py the defects).
    """

    def __init__(self, fla: FocusedLinearAttention):
        super().__init__()
        if fla.sr_ratio != 1:
            raise ValueError(f"the blog formulation is compared at sr_ratio=1 only, got sr_ratio={fla.sr_ratio}")
        self.dim, self.num_heads, self.focusing_factor = fla.dim, fla.num_heads, fla.focusing_factor
        self.q, self.k, self.v, self.proj, self.dwc = fla.to_q, fla.to_k, fla.to_v, fla.proj, fla.dwc
        self.scale = fla.scale  # (C,) here, (1, 1, C) in the blog: the same broadcast

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, C, H, W = x.shape
        if H != W:
            raise ValueError(f"the blog formulation needs a square map (it reshapes with sqrt(N)), got {H}x{W}")
        dtype, device = x.dtype, x.device
        x = rearrange(x, "b c h w -> b (h w) c")
        q = self.q(x)
        kv_weight, kv_bias = torch.cat([self.k.weight, self.v.weight]), torch.cat([self.k.bias, self.v.bias])
        k, v = F.linear(x, kv_weight, kv_bias).reshape(B, -1, 2, C).permute(2, 0, 1, 3)  # the blog's one kv Linear
        N = H * W
        # the blog's zeros are fp32, which promotes k and stops its bf16 forward at the einsum: here in x's dtype
        positional_encoding = nn.Parameter(torch.zeros(size=(1, N, self.dim), device=device, dtype=dtype))
        k = k + positional_encoding
        scale = F.softplus(self.scale)
        q = F.relu(q) + 1e-6
        k = F.relu(k) + 1e-6
        q = q / scale
        k = k / scale
        q_norm = q.norm(dim=-1, keepdim=True)
        k_norm = k.norm(dim=-1, keepdim=True)
        q = q**self.focusing_factor
        k = k**self.focusing_factor
        q = (q / q.norm(dim=-1, keepdim=True)) * q_norm
        k = (k / k.norm(dim=-1, keepdim=True)) * k_norm
        half = dtype == torch.float16
        if half:
            q, k, v = q.float(), k.float(), v.float()
        q, k, v = (rearrange(t, "b n (h c) -> (b h) n c", h=self.num_heads) for t in (q, k, v))
        i, j, c, d = q.shape[-2], k.shape[-2], k.shape[-1], v.shape[-1]
        z = 1 / (torch.einsum("b i c, b c -> b i", q, k.sum(dim=1)) + 1e-6)
        if i * j * (c + d) > c * d * (i + j):
            kv = torch.einsum("b j c, b j d -> b c d", k, v)
            x = torch.einsum("b i c, b c d, b i -> b i d", q, kv, z)
        else:
            qk = torch.einsum("b i c, b j c -> b i j", q, k)
            x = torch.einsum("b i j, b j d, b i -> b i d", qk, v, z)
        if half:
            v, x = v.to(torch.float16), x.to(torch.float16)
        num = int(v.shape[1] ** 0.5)
        feature_map = rearrange(v, "b (w h) c -> b c w h", w=num, h=num)
        feature_map = rearrange(self.dwc(feature_map), "b c w h -> b (w h) c")
        x = x + feature_map
        x = rearrange(x, "(b h) n c -> b n (h c)", h=self.num_heads)
        x = self.proj(x)
        return rearrange(x, "b (h w) c -> b c h w", h=H, w=W)


def build(impls=IMPLS, dim: int = 64, num_heads: int = 8, seed: int = 0, **fla_kwargs) -> dict[str, nn.Module]:
    """The benchmark's modules by name, in train mode, on the CPU in fp32.

    ``blog`` is built on ``fla``'s weights (created for it when ``fla`` is not asked for);
    ``fla_kwargs`` go to :class:`~fla.FocusedLinearAttention` (e.g. ``pos_encoding=False``).
    """
    unknown = [i for i in impls if i not in IMPLS]
    if unknown:
        raise ValueError(f"unknown implementation(s) {unknown}; choose from {list(IMPLS)}")
    torch.manual_seed(seed)
    ours = FocusedLinearAttention(dim, num_heads, **fla_kwargs)
    make = {
        "fla": lambda: ours,
        "blog": lambda: BlogFormulation(ours),
        "linear": lambda: LinearAttention(dim, num_heads),
        "softmax": lambda: SoftmaxAttention(dim, num_heads),
    }
    return {name: make[name]() for name in impls}


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """Comma-separated map sides or HxW ("20,40,32x48") as (H, W) pairs; ValueError unless every side is a
    positive integer."""
    sizes = []
    for token in text.split(","):
        h, x, w = token.strip().lower().partition("x")
        try:
            side = (int(h), int(w if x else h))
        except ValueError:
            raise ValueError(f"{text!r}: expected comma-separated sides or HxW, e.g. 20,40,32x48") from None
        if min(side) < 1:
            raise ValueError(f"{text!r}: map sides must be at least 1, got {token.strip()!r}")
        sizes.append(side)
    return sizes


def _parse_size(token) -> tuple[int, int]:
    """(H, W) from a side, an (H, W) pair or an "HxW" string; ValueError unless both are positive integers."""
    if isinstance(token, int):
        side = token, token
    elif isinstance(token, (tuple, list)):
        side = int(token[0]), int(token[1])
    else:
        side = parse_sizes(str(token))[0]
    if min(side) < 1:
        raise ValueError(f"map sides must be at least 1, got {token!r}")
    return side


def run_benchmark(impls=IMPLS, sizes=(20, 40, 80, 160), device="cpu", dtype="fp32", dim: int = 64,
                  num_heads: int = 8, batch: int = 1, repeats: int = 7, warmup: int = 2, budget_s: float | None = 10.0,
                  softmax_max_n: int | None = 6400, memory: bool = True, progress: bool = True) -> list[dict]:
    """Time every implementation on every map size; one row per measured case (:data:`CSV_COLUMNS`).

    sizes: side lengths (square maps) or (H, W) pairs / "HxW" strings. Cases that cannot run are
    skipped, never fatal: they come back as rows with ``note`` set and no numbers (the blog on a
    non-square map; softmax beyond ``softmax_max_n`` tokens: CPU SDPA has a flash kernel, so its
    memory stays linear, but one fwd+bwd at N=25600 takes ~20 s on two cores; anything that runs
    out of memory on its first fwd+bwd). On the CPU, choose the threads first
    (``fla bench`` runs in ``fla.runtime.torch_threads(2)``). ``memory=False`` skips the peak-memory pass (``peak_mb`` is then None).
    """
    from tqdm.auto import tqdm

    device = torch.device(device)
    modules = {name: m.to(device=device, dtype=DTYPES[dtype]) for name, m in build(impls, dim, num_heads).items()}
    rows = []
    sizes = [_parse_size(s) for s in sizes]
    bar = tqdm(total=len(sizes) * len(impls), desc="fla bench", disable=not progress, leave=False)
    for h, w in sizes:
        todo = {}
        for name in impls:
            row = dict(impl=name, device=device.type, dtype=dtype, H=h, W=w, N=h * w, fwd_ms=None, fwdbwd_ms=None,
                       peak_mb=None, note="")
            rows.append(row)
            if name == "blog" and h != w:
                row["note"] = f"blog: square maps only, skipped {h}x{w}"
            elif name == "softmax" and softmax_max_n is not None and h * w > softmax_max_n:
                row["note"] = f"softmax: N={h * w} > {softmax_max_n} (--softmax-max-n), skipped"
            else:
                todo[name] = row
        bar.update(len(impls) - len(todo))
        x = torch.randn(batch, dim, h, w, device=device, dtype=DTYPES[dtype])
        for name, row in list(todo.items()):  # one at a time first: what does not fit is skipped, not fatal
            try:
                step(modules[name], *step_inputs(modules[name], x, True))
            except torch.cuda.OutOfMemoryError:  # in every torch >= 2.4 (torch.OutOfMemoryError, the same class, from 2.5)
                row["note"] = f"{name}: out of memory at {h}x{w}, skipped"
                del todo[name]
                bar.update(1)
                if device.type == "cuda":
                    torch.cuda.empty_cache()
        timed = {name: modules[name] for name in todo}
        for key, backward in (("fwd_ms", False), ("fwdbwd_ms", True)):
            for name, ms in time_impls(timed, x, backward, repeats, warmup, budget_s).items():
                todo[name][key] = ms
        for name, row in todo.items():
            if memory:
                row["peak_mb"] = peak_memory_mb(modules[name], x, backward=True)
            bar.update(1)
    bar.close()
    return rows


def write_rows(rows: list[dict], path) -> Path:
    """The measured rows as CSV with :data:`CSV_COLUMNS` (skipped cases left out; their notes are printed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    measured = ({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()}
                for row in rows if row.get("fwd_ms") is not None)
    write_csv(path, list(CSV_COLUMNS), measured)
    return path


def _short_number(v) -> str:
    return "-" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def print_table(rows: list[dict], file=None) -> None:
    """A fixed-width table: times, fla's speed-up over each other implementation, peak memory."""
    file = file or sys.stdout
    ours = {(r["H"], r["W"]): r for r in rows if r["impl"] == "fla"}
    print(f"{'impl':8} {'H x W':>9} {'N':>6} {'fwd ms':>9} {'fwd+bwd ms':>11} {'fla speed-up':>13} {'peak MiB':>9}", file=file)
    for r in rows:
        ref = ours.get((r["H"], r["W"]), {}).get("fwdbwd_ms")
        speedup = r["fwdbwd_ms"] / ref if ref and r["fwdbwd_ms"] else None
        print(f"{r['impl']:8} {r['H']:>4}x{r['W']:<4} {r['N']:>6} {_short_number(r['fwd_ms']):>9} {_short_number(r['fwdbwd_ms']):>11} "
              f"{('-' if speedup is None else f'{speedup:.2f}x'):>13} {_short_number(r['peak_mb']):>9}", file=file)
    for r in rows:
        if r.get("note"):
            print(f"note: {r['note']}", file=file)


def plot_rows(rows: list[dict], path=None):
    """Log-log figure: fwd+bwd time and peak memory against N, one line per implementation (notebook 01)."""
    import matplotlib

    if path is not None and matplotlib.get_backend().lower() != "agg" and "ipykernel" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), layout="constrained")
    measured = [r for r in rows if r.get("fwdbwd_ms") is not None]
    for name in dict.fromkeys(r["impl"] for r in measured):
        pts = sorted((r["N"], r["fwdbwd_ms"], r["peak_mb"]) for r in measured if r["impl"] == name)
        n = [p[0] for p in pts]
        axes[0].plot(n, [p[1] for p in pts], "o-", label=name)
        if all(p[2] for p in pts):
            axes[1].plot(n, [p[2] for p in pts], "o-", label=name)
    where = {r["device"] for r in measured} | {r["dtype"] for r in measured}
    for ax, ylabel in zip(axes, ("forward + backward (ms)", "peak memory (MiB)")):
        ax.set(xscale="log", yscale="log", xlabel="tokens N = H·W", ylabel=ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"attention, {' '.join(sorted(where))}: linear forms' time grows like N, softmax's like N²")
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


