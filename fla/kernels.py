"""Fast paths: the same values as ``fla.functional``'s equations, computed faster on the CPU.

Read ``fla.functional`` for the math (notebooks 01-03 call it); this module is how the attention
modules make that math cheap in training. Each function names the reference it equals, and
``tests/test_kernels.py`` compares values and gradients with it in float64, fp32 and bf16.
Every backward here is deterministic on CUDA under ``torch.use_deterministic_algorithms`` (which
ultralytics' ``deterministic=True`` turns on), so a seeded training run repeats there too.
The modules take these paths except under ONNX export or tracing (custom autograd Functions
have no ONNX form), where they run the reference equations instead. ``python -m fla bench``
times the module that uses them (docs/benchmark.md).
"""
from __future__ import annotations

import functools
from contextlib import nullcontext

import torch
import torch.nn.functional as F

from . import functional as Fn

__all__ = ["focused_kernel", "linear_attention", "depthwise_conv", "resize"]


def without_autocast(t: torch.Tensor):
    """A region where autocast is off on t's device: the focusing powers and the sums over tokens overflow fp16
    and lose bf16 precision, and autocast's choice of which ops to narrow differs between CPU and CUDA."""
    if torch.is_autocast_enabled(t.device.type):
        return torch.autocast(device_type=t.device.type, enabled=False)
    return nullcontext()


@functools.lru_cache(maxsize=None)  # one per (p, dtype): called in every backward
def _just_below(value: float, dtype: torch.dtype) -> float:
    """The largest number of dtype below value: "x > it" is "x >= value" in that dtype."""
    t = torch.tensor(value, dtype=dtype)
    return torch.nextafter(t, torch.zeros_like(t)).item()


def _norm(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Euclidean norm along dim, kept. torch's norm over a dim that is not the innermost runs
    ~30x slower on the CPU than over the innermost (4.4 vs 0.15 ms at 25600×64); a self dot product does not."""
    if dim in (-1, t.ndim - 1):
        return t.norm(dim=dim, keepdim=True)
    return torch.linalg.vecdot(t, t, dim=dim).unsqueeze_(dim).sqrt_()


class _FocusedKernel(torch.autograd.Function):
    """focus((ReLU(x) + eps) / s, p, floor) with the backward derived by hand.

    Autograd through ``fla.functional.focus`` keeps about eight N×C tensors and runs some twenty
    passes over them; here the forward works in place and keeps three, and the backward is one
    formula. With a = (ReLU(x) + eps) / s, its per-token peak m, u = a / m, y = focus(a, p),
    r = ||a|| = ||y|| and c = (dL/dy · y) / r² (all per token):
        dL/da = p/m · (dL/dy − c·y) · y / u · [ u^p >= floor ]  +  c·m·u
    (the peak is a constant, as the ``detach`` in ``focus`` makes it), then dL/ds = −Σ_tokens
    dL/da · a / s and dL/dx = dL/da / s where x > 0. Saving u rather than a makes the
    clamp's mask a threshold on u: u^p >= floor  <=>  u >= floor^(1/p).
    """

    @staticmethod
    def forward(ctx, x, s, p, eps, dim, floor):
        u = torch.relu(x).add_(eps).div_(s)  # a, until divided by its peak below
        tiny = torch.finfo(u.dtype).tiny
        peak = u.amax(dim=dim, keepdim=True).clamp_min_(tiny)
        u.div_(peak)
        norm = _norm(u, dim).mul_(peak)  # ||a||
        xp = u.pow(p).clamp_min_(floor)
        y = xp.mul_(norm / _norm(xp, dim).clamp_min_(tiny))
        ctx.p, ctx.dim, ctx.floor = p, dim, floor
        ctx.save_for_backward(x, s, u, peak, y, norm)
        return y

    @staticmethod
    def backward(ctx, gy):
        # A hand-written training loop may call backward inside autocast: its fp16 would overflow here
        # (a scaled loss's gradients times y / u), so the backward, like the forward, runs without it.
        with without_autocast(gy):
            return _FocusedKernel._backward(ctx, gy)

    @staticmethod
    def _backward(ctx, gy):
        x, s, u, peak, y, norm = ctx.saved_tensors
        dim = ctx.dim
        c = torch.linalg.vecdot(gy, y, dim=dim).unsqueeze_(dim).div_(norm.square().clamp_min_(torch.finfo(u.dtype).tiny))
        g = torch.addcmul(gy, c, y, value=-1).mul_(y).div_(u).mul_(ctx.p / peak)
        # threshold_backward is ReLU's backward (g where input > threshold, else 0); bool masks are far slower on CPU.
        g = torch.ops.aten.threshold_backward(g, u, _just_below(ctx.floor ** (1 / ctx.p), u.dtype))  # clamp_min's mask
        g.addcmul_(c * peak, u)  # dL/da
        gs = None
        if ctx.needs_input_grad[1]:  # −Σ_tokens dL/da · u · m / s; s broadcast over the tokens, so summed back to its shape
            gs = (g * u).mul_(peak).sum_to_size(s.shape).div_(s).neg_()
        gx = torch.ops.aten.threshold_backward(g.div_(s), x, 0) if ctx.needs_input_grad[0] else None
        return gx, gs, None, None, None, None


def focused_kernel(x: torch.Tensor, scale: torch.Tensor, p: float, eps: float = 1e-6, dim: int = -1,
                   floor: float = Fn.FOCUS_FLOOR) -> torch.Tensor:
    """FLA's focused feature map; equals ``functional.focus(functional.relu_kernel(x, eps) / scale, p, floor)``.

    About half the time and memory of autograd through the reference for fwd+bwd (see
    ``_FocusedKernel``). Each token's vector runs along ``dim``: x is (..., C) by default; the
    attention modules pass channel-first tokens (B, C, N) with dim=-2, where the per-token
    reductions run along the contiguous axis. scale broadcasts against x: (C,), or (C, 1) for dim=-2.

    Computed in fp32 at least (fp16/bf16 inputs are widened), with autocast off in the forward and the
    backward, on every device; the result has x's dtype.
    """
    Fn.check_p(p)
    wide = torch.promote_types(x.dtype, torch.float32)
    with without_autocast(x):
        return _FocusedKernel.apply(x.to(wide), scale.to(wide), float(p), eps, dim, float(floor)).to(x.dtype)


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, order: str = "auto", eps: float = 0.0) -> torch.Tensor:
    """Equals ``functional.linear_attention(q, k, v, order, eps)``, summed in fp32 and laid out for the CPU.

    The sums over M keys grow with M, so fp16/bf16 inputs are summed in fp32 (the result has q's
    dtype). Computed transposed, (dv, N) per head: the division by each query's normaliser then
    runs along the long token axis (3x faster on the CPU than along dv, as the modules' q, k, v
    are (B, heads, N, d) views of channel-first tokens); returned as an (N, dv) view.
    """
    order = Fn.resolve_order(order, q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1])
    dtype = q.dtype
    wide = torch.promote_types(dtype, torch.float32)
    q, k, v = q.to(wide), k.to(wide), v.to(wide)
    q_t = q.transpose(-2, -1)
    numerator_t = (k.transpose(-2, -1) @ v).transpose(-2, -1) @ q_t if order == "kv" else v.transpose(-2, -1) @ (k @ q_t)
    normaliser_t = k.sum(dim=-2, keepdim=True) @ q_t  # (..., 1, N): q_i · sum_j k_j
    return (numerator_t / (normaliser_t + eps)).transpose(-2, -1).to(dtype)


class _DepthwiseConv(torch.autograd.Function):
    """k×k depthwise conv with zero padding k//2 (the DWC), its weight gradient computed as one conv.

    dL/dw[c] is the correlation of input channel c (padded) with output-gradient channel c: a
    depthwise conv whose kernel is the H×W gradient map and whose output is k×k. On the CPU,
    oneDNN runs that about twice as fast as its own depthwise weight gradient, which is most of
    the DWC's cost (``python -m fla bench``). dL/dx is the conv with the flipped kernel.
    """

    @staticmethod
    def forward(ctx, x, weight):
        ctx.save_for_backward(x, weight)
        return Fn.depthwise_conv(x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        pad, channels = weight.shape[-1] // 2, x.shape[1]
        gx = F.conv2d(grad, weight.flip(-2, -1), padding=pad, groups=channels) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            padded = F.pad(x, (pad, pad, pad, pad))
            gw = sum(F.conv2d(padded[i : i + 1], grad[i].unsqueeze(1), groups=channels) for i in range(x.shape[0]))
            gw = gw.reshape(weight.shape)
        return gx, gw


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Equals ``functional.depthwise_conv(x, weight)``; on the CPU its backward is ``_DepthwiseConv``'s
    (weight gradient ~2x faster than oneDNN's), elsewhere torch's."""
    if x.device.type != "cpu":
        return Fn.depthwise_conv(x, weight)
    return _DepthwiseConv.apply(x, weight)


def _resize_matrix(size_out: int, size_in: int, like: torch.Tensor) -> torch.Tensor:
    """(size_out, size_in): linear interpolation along one axis as torch does it with align_corners=False.

    Output pixel o samples the input at s = (o + 0.5) · size_in / size_out − 0.5 (floored at 0) and
    mixes its two neighbours floor(s) and floor(s) + 1 (the last pixel repeats at the edge) with
    weights 1 − λ and λ, λ = s − floor(s). Built from comparisons, not a scatter: deterministic."""
    src = ((torch.arange(size_out, dtype=torch.float64, device=like.device) + 0.5) * (size_in / size_out) - 0.5).clamp_min_(0)
    left = src.floor()
    lam = (src - left)[:, None]
    left = left.long()[:, None]
    right = (left + 1).clamp_max_(size_in - 1)
    cols = torch.arange(size_in, device=like.device)
    return ((1 - lam) * (cols == left) + lam * (cols == right)).to(like.dtype)


class _Resize(torch.autograd.Function):
    """torch's bilinear resize forward, its backward as two matmuls with the transposed matrices."""

    @staticmethod
    def forward(ctx, x, size):
        ctx.save_for_backward(_resize_matrix(size[0], x.shape[-2], x), _resize_matrix(size[1], x.shape[-1], x))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)

    @staticmethod
    def backward(ctx, grad):
        rows, cols = ctx.saved_tensors
        return rows.T @ grad @ cols, None


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Equals ``F.interpolate(x, size, mode="bilinear", align_corners=False)`` for a (B, C, H, W) x, forward
    (it is that call) and backward (two matmuls).

    Bilinear resizing is separable: rows, then columns, each a fixed (out × in) matrix R, so the
    gradient is R_rows^T · grad · R_cols. torch's own backward of bilinear upsampling is on CUDA's
    nondeterministic list (it scatters with atomic adds): with it, a seeded training run on a GPU
    does not repeat. The matrices are small (the grids are tens of pixels a side). The forward stays
    torch's, which FLOP counters, like the papers' counts, do not count."""
    size = tuple(int(n) for n in size)
    if tuple(x.shape[-2:]) == size:
        return x
    return _Resize.apply(x, size)
