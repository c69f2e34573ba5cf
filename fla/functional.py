"""Pure tensor functions behind the attention modules, one equation each.

Shapes: q is (..., N, d), k and v are (..., M, d) with M keys; all functions work per head
when the leading dims are (B, heads).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

__all__ = [
    "focus",
    "focused_kernel",
    "relu_kernel",
    "elu_kernel",
    "kv_order_is_cheaper",
    "linear_attention",
    "normalise_rows",
    "depthwise_conv",
    "dwc_matrix",
    "row_entropy",
    "numerical_rank",
    "attention_macs",
    "projection_macs",
]


_FLOOR = 1e-10  # focus's floor after the power: see ``focus``


def _check_p(p: float) -> None:
    if not p > 0:
        raise ValueError(f"focusing factor p must be > 0, got p={p}")


def focus(x: torch.Tensor, p: float) -> torch.Tensor:
    """Focusing function f_p(x) = ||x|| · x**p / ||x**p|| over the last dim (paper Eq. 6).

    Keeps each vector's norm, raises its entries to the power p so that the large ones
    dominate: the direction moves towards the nearest axis, which sharpens attention between
    similar vectors (notebook 02). x must be non-negative, as after a ReLU kernel.
    Computed on x / max(x), which leaves the result unchanged (f_p is scale-invariant in the
    direction) and keeps x**p inside fp32 range for large activations and p. Entries below
    1e-10 of the peak after the power are raised to that floor: with large p they would
    underflow to 0, and two vectors with disjoint supports would get q·k = 0 and a 0/0
    attention row (the role the authors' +1e-6 before the power cannot play for large p).
    """
    _check_p(p)
    peak = x.amax(dim=-1, keepdim=True).detach().clamp_min(torch.finfo(x.dtype).tiny)
    xp = ((x / peak) ** p).clamp_min(_FLOOR)
    return xp * (x.norm(dim=-1, keepdim=True) / xp.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny))


@functools.lru_cache(maxsize=None)  # one per dtype: called in every backward
def _just_below(value: float, dtype: torch.dtype) -> float:
    """The largest number of dtype below value: "x > it" is "x >= value" in that dtype."""
    t = torch.tensor(value, dtype=dtype)
    return torch.nextafter(t, torch.zeros_like(t)).item()


class _FocusedKernel(torch.autograd.Function):
    """focus((ReLU(x) + eps) / s, p) as in ``focus``, with the backward derived by hand.

    Autograd through ``focus`` keeps about eight N×C tensors and runs some twenty passes over
    them; here the forward works in place and keeps three, and the backward is one formula.
    With a = (ReLU(x) + eps) / s, its per-token peak m, u = a / m, y = focus(a, p),
    r = ||a|| = ||y|| and c = (dL/dy · y) / r² (all per token):
        dL/da = p/m · (dL/dy − c·y) · y / u · [ u^p >= 1e-10 ]  +  c·m·u
    (the peak is a constant, as the ``detach`` in ``focus`` makes it), then dL/ds = −Σ_tokens
    dL/da · a / s and dL/dx = dL/da / s where x > 0. Saving u rather than a makes the
    clamp's mask a threshold on u: u^p >= 1e-10  <=>  u >= 1e-10^(1/p).
    """

    @staticmethod
    def forward(ctx, x, s, p, eps, dim):
        u = torch.relu(x).add_(eps).div_(s)  # a, until divided by its peak below
        tiny = torch.finfo(u.dtype).tiny
        peak = u.amax(dim=dim, keepdim=True).clamp_min_(tiny)
        u.div_(peak)
        norm = _norm(u, dim).mul_(peak)  # ||a||
        xp = u.pow(p).clamp_min_(_FLOOR)
        y = xp.mul_(norm / _norm(xp, dim).clamp_min_(tiny))
        ctx.p, ctx.dim = p, dim
        ctx.save_for_backward(x, s, u, peak, y, norm)
        return y

    @staticmethod
    def backward(ctx, gy):
        x, s, u, peak, y, norm = ctx.saved_tensors
        dim = ctx.dim
        c = torch.linalg.vecdot(gy, y, dim=dim).unsqueeze_(dim).div_(norm.square().clamp_min_(torch.finfo(u.dtype).tiny))
        g = torch.addcmul(gy, c, y, value=-1).mul_(y).div_(u).mul_(ctx.p / peak)
        # threshold_backward is ReLU's backward (g where input > threshold, else 0); bool masks are far slower on CPU.
        g = torch.ops.aten.threshold_backward(g, u, _just_below(_FLOOR ** (1 / ctx.p), u.dtype))  # clamp_min's mask
        g.addcmul_(c * peak, u)  # dL/da
        gs = None
        if ctx.needs_input_grad[1]:  # −Σ_tokens dL/da · u · m / s; s broadcast over the tokens, so summed back to its shape
            gs = (g * u).mul_(peak).sum_to_size(s.shape).div_(s).neg_()
        gx = torch.ops.aten.threshold_backward(g.div_(s), x, 0) if ctx.needs_input_grad[0] else None
        return gx, gs, None, None, None


def _norm(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Euclidean norm along dim, kept. torch's norm over a dim that is not the innermost runs
    ~30x slower on the CPU than over the innermost (4.4 vs 0.15 ms at 25600×64); a self dot product does not."""
    if dim in (-1, t.ndim - 1):
        return t.norm(dim=dim, keepdim=True)
    return torch.linalg.vecdot(t, t, dim=dim).unsqueeze_(dim).sqrt_()


def focused_kernel(x: torch.Tensor, scale: torch.Tensor, p: float, eps: float = 1e-6, dim: int = -1) -> torch.Tensor:
    """phi_p(x) = f_p((ReLU(x) + eps) / scale): FLA's focused feature map (paper Eq. 6-7, notebook 02).

    The same values as ``focus(relu_kernel(x, eps) / scale, p)`` (up to rounding), in about
    half the time and memory for fwd+bwd (see ``_FocusedKernel``; ``python -m fla bench``).
    Each token's vector runs along ``dim`` (x is (..., C) by default; the attention modules pass
    (B, C, N) with dim=-2); scale broadcasts against x, per channel: (C,), or (C, 1) for dim=-2.
    """
    _check_p(p)
    return _FocusedKernel.apply(x, scale, float(p), eps, dim)


def relu_kernel(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """phi(x) = ReLU(x) + eps: non-negative features; eps keeps every normaliser q·Σk > 0 (notebook 01)."""
    return F.relu(x) + eps


def elu_kernel(x: torch.Tensor) -> torch.Tensor:
    """phi(x) = elu(x) + 1 (Katharopoulos et al. 2020): strictly positive features (notebook 01)."""
    return F.elu(x) + 1.0


def kv_order_is_cheaper(n: int, m: int, d: int, dv: int) -> bool:
    """True when phi(Q)(phi(K)^T V) costs fewer multiply-adds than (phi(Q)phi(K)^T)V (notebook 01).

    kv order: M·d·dv + N·d·dv;  qk order: N·M·d + N·M·dv. With N = M and d = dv the kv
    order wins exactly when N > d.
    """
    return d * dv * (n + m) < n * m * (d + dv)


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, order: str = "auto") -> torch.Tensor:
    """Normalised linear attention  out_i = sum_j (q_i·k_j) v_j / (q_i · sum_j k_j)  (paper Eq. 3-4).

    q, k are already mapped by a non-negative kernel. Both multiplication orders give the same
    result up to rounding; "auto" takes the cheaper (notebook 01). The sums over the M keys
    grow with M, so fp16/bf16 inputs are summed in fp32; the result has q's dtype.
    """
    n, m, d, dv = q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1]
    if order == "auto":
        order = "kv" if kv_order_is_cheaper(n, m, d, dv) else "qk"
    if order not in ("kv", "qk"):
        raise ValueError(f"order must be 'auto', 'kv' or 'qk', got order={order!r}")
    dtype = q.dtype
    wide = torch.promote_types(dtype, torch.float32)
    q, k, v = q.to(wide), k.to(wide), v.to(wide)
    # Computed transposed, (dv, N) per head: the division by each query's normaliser then runs
    # along the long token axis (3x faster on the CPU than along dv); returned as an (N, dv) view.
    q_t = q.transpose(-2, -1)
    numerator_t = (k.transpose(-2, -1) @ v).transpose(-2, -1) @ q_t if order == "kv" else v.transpose(-2, -1) @ (k @ q_t)
    normaliser_t = k.sum(dim=-2, keepdim=True) @ q_t  # (..., 1, N): q_i · sum_j k_j
    return (numerator_t / normaliser_t).transpose(-2, -1).to(dtype)


def normalise_rows(scores: torch.Tensor) -> torch.Tensor:
    """Divide each row of non-negative scores by its sum: the N×M attention weights (notebook 02)."""
    return scores / scores.sum(dim=-1, keepdim=True)


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
        return F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=x.shape[1])

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
    """Depthwise k×k conv of x (B, C, H, W) with weight (C, 1, k, k), zero padding k//2: FLA's DWC
    (paper Eq. 12, notebook 03). The same values as ``F.conv2d(..., groups=C)``; on the CPU its
    backward is ``_DepthwiseConv``'s, elsewhere torch's."""
    if x.device.type != "cpu":
        return F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=x.shape[1])
    return _DepthwiseConv.apply(x, weight)


def dwc_matrix(weight: torch.Tensor, height: int, width: int, out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Depthwise k×k convolution (zero padding k//2) on an H×W grid as C banded N×N matrices (notebook 03).

    weight: (C, 1, k, k). Returns (C, N_out, N) with y_c = D[c] @ x_c on flattened (row-major)
    grids. With out_size, the conv output is resized bilinearly to that grid (the sr_ratio > 1
    path of FocusedLinearAttention), so D maps the N-key grid onto the N_out query grid.
    Built column by column by applying the operator to the identity, so it is exactly the
    linear map the module computes.
    """
    c, k = weight.shape[0], weight.shape[-1]
    n = height * width
    eye = torch.eye(n, dtype=weight.dtype, device=weight.device).reshape(n, 1, height, width).expand(n, c, height, width)
    cols = F.conv2d(eye, weight, padding=k // 2, groups=c)  # (N basis, C, H, W)
    if out_size is not None and tuple(out_size) != (height, width):
        cols = F.interpolate(cols, size=out_size, mode="bilinear", align_corners=False)
    return cols.flatten(2).permute(1, 2, 0)  # (C, N_out, N)


def row_entropy(attn: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of row-stochastic weights; lower = more focused (notebook 02).

    A uniform row over M keys has entropy log M, a one-hot row 0.
    """
    p = attn.clamp_min(0)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=-1)


def numerical_rank(matrix: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """Number of singular values above rtol · s_max (notebook 03).

    Default rtol = max(N, M) · eps of the dtype, the same rule as numpy.linalg.matrix_rank.
    Computed in float64, so the tolerance is that of the input dtype, not of float64.
    """
    if rtol is None:
        rtol = max(matrix.shape[-2:]) * torch.finfo(matrix.dtype).eps
    s = torch.linalg.svdvals(matrix.double())
    return (s > rtol * s[..., :1]).sum(dim=-1)


def attention_macs(n: int, d: int, kind: str, m: int | None = None, dv: int | None = None) -> int:
    """Multiply-adds of one head's token mixing, projections excluded (notebook 01).

    kind "softmax": QK^T then AV, N·M·(d + dv) — quadratic in tokens.
    kind "linear":  K^T V, Q(K^T V) and the normaliser Q·mean(K), (N + M)·d·dv + N·d — linear.
    FLOPs are twice these (one multiply and one add each).
    """
    m = n if m is None else m
    dv = d if dv is None else dv
    if kind == "softmax":
        return n * m * (d + dv)
    if kind == "linear":
        return (n + m) * d * dv + n * d
    raise ValueError(f"kind must be 'softmax' or 'linear', got kind={kind!r}")


def projection_macs(n: int, dim: int, m: int | None = None) -> int:
    """Multiply-adds of the q and output projections on N query tokens and the k and v projections
    on M key tokens (M = N unless keys come from a reduced grid): (2N + 2M)·C², biases not
    counted (notebook 01)."""
    m = n if m is None else m
    return (2 * n + 2 * m) * dim * dim
