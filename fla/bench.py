"""``fla bench``: time and peak memory of attention over the number of tokens N (notebook 01).

Four implementations, all ``(B, C, H, W) -> (B, C, H, W)`` with C=64 and 8 heads by default:

- ``fla``: our :class:`~fla.FocusedLinearAttention`.
- ``blog``: the formulation of the blog post that started this project (:class:`BlogFormulation`),
  kept here as a yardstick only: sum normaliser, einsum order switch, its float casts, square
  maps only. It shares our module's weights, so the two compute the same output
  (``tests/test_bench.py``).
- ``linear``: :class:`~fla.LinearAttention` (ReLU kernel, no focusing, no DWC).
- ``softmax``: :class:`~fla.SoftmaxAttention` (torch's ``scaled_dot_product_attention``).

Reusable pieces: :func:`build` (the modules), :func:`time_impls` (median ms after warm-up,
implementations taking turns), :func:`peak_memory_mb`, :func:`run_benchmark` (rows of
:data:`CSV_COLUMNS`), :func:`write_csv`, :func:`print_table`, :func:`plot_rows` (the log-log
figure). Notebook 01 times and measures through ``fla.complexity``, which calls
:func:`time_impls` and :func:`peak_memory_mb`; ``python -m fla bench`` runs the whole table.

Peak memory on CUDA is ``torch.cuda.max_memory_allocated`` above the level before the step. On
CPU it is the peak of live bytes allocated by torch during the step, from the allocation and
free events that ``torch.profiler`` records with ``profile_memory=True`` (not RSS, which the
C allocator's caching blurs). Both count what the step allocates: activations kept for
backward, gradients, workspaces; not the weights or the input.
"""
from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from .__main__ import at_least
from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention

__all__ = [
    "IMPLS",
    "CSV_COLUMNS",
    "BlogFormulation",
    "build",
    "turn_orders",
    "time_impls",
    "peak_memory_mb",
    "run_benchmark",
    "write_csv",
    "print_table",
    "plot_rows",
    "add_arguments",
    "run",
]

IMPLS = ("fla", "blog", "linear", "softmax")
CSV_COLUMNS = ("impl", "device", "dtype", "H", "W", "N", "fwd_ms", "fwdbwd_ms", "peak_mb")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
CPU_THREADS = 2


class BlogFormulation(nn.Module):
    """The blog post's FocusedLinearAttention forward, on our module's weights (comparison only).

    Line for line the blog's computation for ``sr_ratio=1``: the focusing power without
    rescaling, the normaliser ``1 / (q · sum_j k_j + 1e-6)``, the 3-operand einsums with its
    order switch, a zero positional encoding re-created as a fresh Parameter on every call, the
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
        positional_encoding = nn.Parameter(torch.zeros(size=(1, N, self.dim), device=device))
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _step(module: nn.Module, x: torch.Tensor, grad: torch.Tensor | None) -> None:
    """One forward (no autograd graph) or one forward + backward into x and the weights."""
    if grad is None:
        with torch.no_grad():
            module(x)
        return
    module(x).backward(grad)
    x.grad = None
    for p in module.parameters():
        p.grad = None


def _inputs(module: nn.Module, x: torch.Tensor, backward: bool):
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
    runs = {name: _inputs(m, x, backward) for name, m in modules.items()}
    for _ in range(warmup):
        for name, m in modules.items():
            _step(m, *runs[name])
    times = {name: [] for name in modules}
    names = list(modules)
    orders = turn_orders(len(names))
    spent = 0.0
    for i in range(repeats):
        for name in (names[j] for j in orders[i % len(orders)]):
            m = modules[name]
            _sync(x.device)
            t0 = time.perf_counter()
            _step(m, *runs[name])
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
    x, grad = _inputs(module, x, backward)
    _step(module, x, grad)  # warm: lazy initialisations are not part of the step
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
        torch.cuda.reset_peak_memory_stats(x.device)
        before = torch.cuda.memory_allocated(x.device)
        _step(module, x, grad)
        torch.cuda.synchronize(x.device)
        return (torch.cuda.max_memory_allocated(x.device) - before) / 2**20
    from torch.profiler import ProfilerActivity, profile

    with _native_stderr_silenced(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        _step(module, x, grad)
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return peak / 2**20


def _parse_size(token) -> tuple[int, int]:
    """(H, W) from a side, an (H, W) pair or an "HxW" string; ValueError unless both are positive integers."""
    if isinstance(token, int):
        side = token, token
    elif isinstance(token, (tuple, list)):
        side = int(token[0]), int(token[1])
    else:
        side = _sizes(str(token))[0]
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
    out of memory on its first fwd+bwd). On the CPU, set ``torch.set_num_threads`` first
    (``run`` uses 2). ``memory=False`` skips the peak-memory pass (``peak_mb`` is then None).
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
                _step(modules[name], *_inputs(modules[name], x, True))
            except torch.OutOfMemoryError:
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


def write_csv(rows: list[dict], path) -> Path:
    """The measured rows as CSV with :data:`CSV_COLUMNS` (skipped cases left out; their notes are printed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        out = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        out.writeheader()
        for row in rows:
            if row.get("fwd_ms") is not None:
                out.writerow({k: (f"{v:.3f}" if isinstance(v, float) else v) for k, v in row.items()})
    return path


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.2f}" if v < 100 else f"{v:.0f}"


def print_table(rows: list[dict], file=None) -> None:
    """A fixed-width table: times, fla's speed-up over each other implementation, peak memory."""
    file = file or sys.stdout
    ours = {(r["H"], r["W"]): r for r in rows if r["impl"] == "fla"}
    print(f"{'impl':8} {'H x W':>9} {'N':>6} {'fwd ms':>9} {'fwd+bwd ms':>11} {'fla speed-up':>13} {'peak MiB':>9}", file=file)
    for r in rows:
        ref = ours.get((r["H"], r["W"]), {}).get("fwdbwd_ms")
        speedup = r["fwdbwd_ms"] / ref if ref and r["fwdbwd_ms"] else None
        print(f"{r['impl']:8} {r['H']:>4}x{r['W']:<4} {r['N']:>6} {_fmt(r['fwd_ms']):>9} {_fmt(r['fwdbwd_ms']):>11} "
              f"{('-' if speedup is None else f'{speedup:.2f}x'):>13} {_fmt(r['peak_mb']):>9}", file=file)
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


def _sizes(text: str) -> list[tuple[int, int]]:
    """argparse type of ``--sizes``: comma-separated map sides or HxW, each side a positive integer."""
    sizes = []
    for token in text.split(","):
        h, x, w = token.strip().lower().partition("x")
        try:
            side = (int(h), int(w if x else h))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated sides or HxW, e.g. 20,40,32x48") from None
        if min(side) < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: map sides must be at least 1, got {token.strip()!r}")
        sizes.append(side)
    return sizes


def add_arguments(parser) -> None:
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--dtype", choices=list(DTYPES), default="fp32", help="bf16/fp16 need --device cuda")
    parser.add_argument("--sizes", type=_sizes, default=None, help="comma-separated map sides or HxW (default 20,40,80,160; cuda adds 320)")
    parser.add_argument("--impl", default=",".join(IMPLS), help=f"comma-separated subset of {','.join(IMPLS)}")
    parser.add_argument("--dim", type=at_least(1), default=64, help="channels C (a multiple of --heads)")
    parser.add_argument("--heads", type=at_least(1), default=8)
    parser.add_argument("--batch", type=at_least(1), default=1)
    parser.add_argument("--threads", type=at_least(1), default=CPU_THREADS, help="torch CPU threads (default 2)")
    parser.add_argument("--repeats", type=at_least(1), default=7, help="timed runs per case; the median is reported")
    parser.add_argument("--warmup", type=at_least(0), default=2)
    parser.add_argument("--budget-s", type=at_least(0, float), default=10.0, help="slow cases stop after 3 runs past this many seconds")
    parser.add_argument("--softmax-max-n", type=at_least(1), default=None,
                        help="skip softmax above this N (default 6400 on cpu, 65536 on cuda)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory pass")
    parser.add_argument("--csv", type=Path, default=None, help="write the rows here (and the plot next to it)")
    parser.add_argument("--plot", type=Path, default=None, help="write the log-log plot here (png)")


def _error(message: str) -> int:
    print(f"fla bench: error: {message}", file=sys.stderr)
    return 2


def run(args) -> int:
    if args.device == "cuda" and not torch.cuda.is_available():
        return _error("--device cuda needs a CUDA GPU, and torch sees none here; use --device cpu")
    if args.dtype != "fp32" and args.device != "cuda":
        if not torch.cuda.is_available():
            return _error(f"--dtype {args.dtype} is benchmarked on a GPU only, and torch sees none here; use --dtype fp32")
        return _error(f"--dtype {args.dtype} is benchmarked on the GPU only: add --device cuda")
    impls = [s.strip() for s in args.impl.split(",") if s.strip()]
    if not impls or any(i not in IMPLS for i in impls):
        return _error(f"--impl {args.impl!r}: choose from {','.join(IMPLS)}")
    if args.dim % args.heads:
        return _error(f"--dim {args.dim} must be a multiple of --heads {args.heads}")
    sizes = args.sizes or [(s, s) for s in (20, 40, 80, 160, 320)[: 5 if args.device == "cuda" else 4]]
    softmax_max_n = args.softmax_max_n or (65536 if args.device == "cuda" else 6400)

    if args.device == "cpu":
        torch.set_num_threads(args.threads)
        where = f"CPU, torch.set_num_threads({args.threads})"
        memory = "peak MiB: torch allocator bytes live during one fwd+bwd, from torch.profiler memory events"
    else:
        where = torch.cuda.get_device_name()
        memory = "peak MiB: torch.cuda.max_memory_allocated during one fwd+bwd, above the level before it"
    print(f"fla bench · torch {torch.__version__} · {where} · {args.dtype} · C={args.dim}, {args.heads} heads, batch {args.batch}")
    print(f"median of up to {args.repeats} runs after {args.warmup} warm-up; fwd under no_grad; {memory}")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cores:
        print(f"warning: load average {load:.1f} on {cores} cores: other processes share the CPU and the times "
              "are noisy (with 2 threads an op can wait a scheduler tick, ~4 ms, for its second thread)")
    rows = run_benchmark(impls, sizes, args.device, args.dtype, args.dim, args.heads, args.batch, args.repeats,
                         args.warmup, args.budget_s, softmax_max_n, memory=not args.no_memory)
    print_table(rows)
    if args.csv:
        print(f"wrote {write_csv(rows, args.csv)}")
    plot = args.plot or (args.csv.with_suffix(".png") if args.csv else None)
    if plot:
        plot.parent.mkdir(parents=True, exist_ok=True)
        plot_rows(rows, plot)
        print(f"wrote {plot}")
    return 0
