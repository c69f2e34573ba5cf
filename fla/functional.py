"""The paper's equations, one function each, in plain torch: read them beside the paper.

FLatten Transformer (Han et al., ICCV 2023, arXiv 2308.00442). Notebooks 01-03 call these
functions; the attention modules compute the same values through ``fla.kernels`` (fast paths,
tested against these). Shapes: q is (..., N, d), k and v are (..., M, d) with M keys; with
leading dims (B, heads) every function works per head.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "answer_mass",
    "focus",
    "relu_kernel",
    "elu_kernel",
    "kv_order_is_cheaper",
    "linear_attention",
    "normalise_rows",
    "depthwise_conv",
    "dwc_matrix",
    "row_entropy",
    "numerical_rank",
    "spectrum_rank",
    "effective_rank",
    "attention_macs",
    "projection_macs",
    "module_macs",
    "spatial_reduction_macs",
    "GUARDS",
]

#: focus's floor on x**p relative to the peak (see ``focus``); ``fla.kernels`` uses the same.
FOCUS_FLOOR = 1e-10
#: The two ways to keep a focused attention row away from 0/0, as (floor on x**p, eps added to each
#: query's normaliser): "floor", fla's (``focus``); "authors", the authors' code (x**p unfloored,
#: normaliser q·Σk + 1e-6). With weights copied, ``guard="authors"`` reproduces their module.
GUARDS = {"floor": (FOCUS_FLOOR, 0.0), "authors": (0.0, 1e-6)}


def check_p(p: float) -> None:
    if not p > 0:
        raise ValueError(f"focusing factor p must be > 0, got p={p}")


def focus(x: torch.Tensor, p: float, floor: float = FOCUS_FLOOR) -> torch.Tensor:
    """Focusing function f_p(x) = ||x|| / ||x**p|| · x**p over the last dim (paper §4.1, Eq. 6; notebook 02).

    Keeps each vector's norm and raises its entries to the power p, so that the large ones
    dominate: the direction moves towards the nearest axis, which sharpens attention between
    similar vectors. x must be non-negative, as after a ReLU kernel.
    Two choices that keep the equation computable: x**p is taken of x / max(x) (f_p only sees
    the direction, so the value is the same, and x**p stays inside the dtype's range), and
    floored at ``floor`` = 1e-10 (with large p small entries underflow to 0, and two vectors with
    disjoint supports would get q·k = 0 and a 0/0 attention row). ``floor=0`` is the bare equation,
    as the authors' code computes it (``GUARDS``).
    """
    check_p(p)
    # the peak cancels in f_p, so it is a constant for autograd (detach) rather than a path to differentiate
    peak = x.amax(dim=-1, keepdim=True).detach().clamp_min(torch.finfo(x.dtype).tiny)
    xp = ((x / peak) ** p).clamp_min(floor)
    return xp * x.norm(dim=-1, keepdim=True) / xp.norm(dim=-1, keepdim=True)


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


def resolve_order(order: str, n: int, m: int, d: int, dv: int) -> str:
    """"kv" or "qk" for ``order`` ("auto" takes the cheaper one)."""
    if order == "auto":
        return "kv" if kv_order_is_cheaper(n, m, d, dv) else "qk"
    if order not in ("kv", "qk"):
        raise ValueError(f"order must be 'auto', 'kv' or 'qk', got order={order!r}")
    return order


def linear_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, order: str = "auto", eps: float = 0.0) -> torch.Tensor:
    """O_i = phi(Q_i) (Σ_j phi(K_j)^T V_j) / (phi(Q_i) Σ_j phi(K_j)^T)  (paper §3.2, Eqs. 3-4; notebook 01).

    q, k are already mapped by a non-negative kernel phi. The two orders give the same result
    up to rounding: "qk" forms the N×M matrix phi(Q)phi(K)^T first (O(NMd)), "kv" the d×d
    matrix phi(K)^T V (O((N+M)d²)); "auto" takes the cheaper (notebook 01). ``eps`` is added to
    each normaliser (the authors' code adds 1e-6, ``GUARDS``; the equation has 0).
    """
    order = resolve_order(order, q.shape[-2], k.shape[-2], q.shape[-1], v.shape[-1])
    kt = k.transpose(-2, -1)
    numerator = q @ (kt @ v) if order == "kv" else (q @ kt) @ v
    normaliser = q @ kt.sum(dim=-1, keepdim=True)  # (..., N, 1): q_i · Σ_j k_j
    return numerator / (normaliser + eps)


def normalise_rows(scores: torch.Tensor, eps: float = 0.0) -> torch.Tensor:
    """Divide each row of non-negative scores by its sum (+ eps, as ``linear_attention``): the N×M attention weights (notebook 02)."""
    return scores / (scores.sum(dim=-1, keepdim=True) + eps)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """DWC: depthwise k×k conv of x (B, C, H, W) with weight (C, 1, k, k), zero padding k//2
    (paper §4.2, the rank restoration module, Eq. 10; notebook 03)."""
    return F.conv2d(x, weight, padding=weight.shape[-1] // 2, groups=x.shape[1])


def dwc_matrix(weight: torch.Tensor, height: int, width: int, out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """``depthwise_conv`` on an H×W grid as C banded N×N matrices: M_DWC of the paper's §4.2, Eq. 11 (notebook 03).

    weight: (C, 1, k, k). Returns (C, N_out, N) with y_c = D[c] @ x_c on flattened (row-major)
    grids. With out_size, the conv output is resized bilinearly to that grid (the sr_ratio > 1
    path of the attention modules), so D maps the N-key grid onto the N_out query grid.
    Built column by column by applying the operator to the identity, so it is exactly that linear map.
    """
    c, n = weight.shape[0], height * width
    eye = torch.eye(n, dtype=weight.dtype, device=weight.device).reshape(n, 1, height, width).expand(n, c, height, width)
    cols = depthwise_conv(eye, weight)  # (N basis, C, H, W)
    if out_size is not None and tuple(out_size) != (height, width):
        cols = F.interpolate(cols, size=out_size, mode="bilinear", align_corners=False)
    return cols.flatten(2).permute(1, 2, 0)  # (C, N_out, N)


def row_entropy(attn: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of row-stochastic weights; lower = more focused (notebook 02).

    A uniform row over M keys has entropy log M, a one-hot row 0.
    """
    p = attn.clamp_min(0)
    return -(p * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum(dim=-1)


def answer_mass(attn: torch.Tensor, answer: torch.Tensor) -> torch.Tensor:
    """The weight each query row puts on its answer key: ``attn`` (..., Q, M) rows, ``answer`` (Q,) key indices -> (..., Q).

    1 is a perfect lookup; a uniform row gives 1/M.
    """
    return attn[..., torch.arange(answer.shape[-1], device=attn.device), answer]


def numerical_rank(matrix: torch.Tensor, rtol: float | None = None) -> torch.Tensor:
    """Number of singular values above rtol · s_max (paper §4.2's rank bound, Eq. 9; notebook 03).

    Default rtol = max(N, M) · eps of the dtype, the same rule as numpy.linalg.matrix_rank.
    Computed in float64, so the tolerance is that of the input dtype, not of float64.
    """
    if rtol is None:
        rtol = max(matrix.shape[-2:]) * torch.finfo(matrix.dtype).eps
    return spectrum_rank(torch.linalg.svdvals(matrix.double()), rtol)


def spectrum_rank(s: torch.Tensor, rtol: float) -> torch.Tensor:
    """``numerical_rank`` from singular values already computed (descending, last dim): the count of σ_i > rtol · σ_1."""
    return (s > rtol * s[..., :1]).sum(dim=-1)


def effective_rank(s: torch.Tensor) -> torch.Tensor:
    """exp(entropy of σ / Σσ) of singular values s (last dim): the effective rank of Roy & Vetterli (2007) (notebook 03).

    Between 1 (one singular value) and the number of singular values (all equal). Unlike a
    count above a tolerance it moves little when tiny singular values are lifted a little.
    Of a matrix: ``effective_rank(torch.linalg.svdvals(m))``; a zero matrix gives 1.
    """
    tiny = torch.finfo(s.dtype).tiny
    w = s / s.sum(dim=-1, keepdim=True).clamp_min(tiny)
    return torch.exp(-(w * torch.log(w.clamp_min(tiny))).sum(dim=-1))


def attention_macs(n: int, d: int, kind: str, m: int | None = None, dv: int | None = None) -> int:
    """Multiply-adds of one head's token mixing, projections excluded (paper §3.2, notebook 01).

    kind "softmax": QK^T then AV, N·M·(d + dv) — quadratic in tokens.
    kind "linear":  K^T V, Q(K^T V) and the normaliser Q·ΣK, (N + M)·d·dv + N·d — linear.
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


def module_macs(n: int, dim: int, heads: int, kind: str = "linear", kernel_size: int = 0, m: int | None = None,
                sr_ratio: int = 1) -> int:
    """Multiply-adds of one attention module of ``fla.attention`` on N query tokens, biases not counted (notebooks 01, 05).

    The four C×C projections (``projection_macs``), every head's token mixing (``attention_macs``,
    linear counted in the kv order), the k×k DWC on V (C·k² per key token, on V's grid: the
    module upsamples its output, it does not convolve the query grid), and with ``sr_ratio`` r > 1
    the strided r×r conv that makes the M-token key grid (M·C²·r²). M = N unless sr_ratio > 1:
    then pass the reduced grid's tokens (H // r)·(W // r). Equals torch's FlopCounterMode / 2
    whenever the module takes the kv order (N > head_dim, every YOLO map).
    """
    m = n if m is None else m
    return (projection_macs(n, dim, m) + heads * attention_macs(n, dim // heads, kind, m=m)
            + m * dim * kernel_size**2 + spatial_reduction_macs(m, dim, sr_ratio))


def spatial_reduction_macs(m: int, dim: int, sr_ratio: int) -> int:
    """Multiply-adds of PVT's spatial reduction, the r×r stride-r conv onto the M-token key grid: M·C²·r² (0 for r = 1)."""
    return m * dim * dim * sr_ratio**2 if sr_ratio > 1 else 0
