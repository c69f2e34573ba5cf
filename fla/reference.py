"""Focused linear attention's whole forward in the paper's order, in one plain-torch function: read this first.

FLatten Transformer (Han et al., ICCV 2023, arXiv 2308.00442), §3.2 and §4. ``forward`` takes an
input map and a module's weights (its ``state_dict()``) and computes what ``fla.FocusedLinearAttention``
(and ``LinearAttention``) compute, with the N×M attention matrix built explicitly and nothing of
``fla`` imported: the fast paths (``fla.kernels``), the channel-first layout and the kv order
are the module's business, not the math's. Pass float64 tensors for an exact oracle; the tests
hold every module against ``dense_reference`` in float64.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["forward", "softmax_forward", "dense_reference", "attention_matrix"]


def forward(x: torch.Tensor, w: dict, num_heads: int, focusing_factor: float | None = 3.0, *, kernel: str = "relu",
            sr_ratio: int = 1, guard: str = "floor", focus_over: str = "channels", return_weights: bool = False) -> torch.Tensor:
    """x (B, C, H, W) -> (B, C, H, W); ``w``: the module's state dict (``to_q.weight``, ..., ``scale``, ``pos``,
    ``dwc.weight``, ``sr.*``/``norm.*`` where the module has them). ``focusing_factor=None``: no focusing,
    phi = ReLU + 1e-6 or elu + 1 (``kernel``). ``guard``: "floor" floors x**p at 1e-10 of its peak (fla);
    "authors" adds 1e-6 to each normaliser instead (the authors' code). ``focus_over``: f_p over each token's C
    channels ("channels", the authors' code) or over each head's d channels ("heads"). ``return_weights``: the
    (B, heads, N, M) attention matrix instead of the output."""
    b, c, h, w_ = x.shape
    tokens = lambda t: t.flatten(2).transpose(1, 2)  # (B, C, h, w) -> (B, h·w, C)  # noqa: E731
    heads = lambda t: t.unflatten(-1, (num_heads, -1)).transpose(1, 2)  # (B, n, C) -> (B, heads, n, d)  # noqa: E731
    linear = lambda name, t: F.linear(t, w[f"{name}.weight"].flatten(1), w.get(f"{name}.bias"))  # noqa: E731
    # keys and values: from the map, or from PVT's reduced grid (stride-r conv, LayerNorm over channels)
    grid = x
    if sr_ratio > 1:
        grid = F.conv2d(x, w["sr.weight"], w["sr.bias"], stride=sr_ratio)
        grid = F.layer_norm(grid.permute(0, 2, 3, 1), (c,), w["norm.weight"], w["norm.bias"]).permute(0, 3, 1, 2)
    q, k, v = linear("to_q", tokens(x)), linear("to_k", tokens(grid)), linear("to_v", tokens(grid))
    if "pos" in w:  # learned positional encoding, resized to the key grid, added to K
        k = k + tokens(F.interpolate(w["pos"], size=grid.shape[-2:], mode="bilinear", align_corners=False))
    # §4.1 the focused kernel over each token's C channels: phi_p(x) = f_p(ReLU(x) / softplus(s)),
    # f_p(x) = ||x|| / ||x**p|| · x**p (Eq. 6), the ReLU kernel's + 1e-6 included
    if focusing_factor is None:
        phi_q, phi_k = (F.relu(t) + 1e-6 if kernel == "relu" else F.elu(t) + 1 for t in (q, k))
    else:
        a_q, a_k = ((F.relu(t) + 1e-6) / F.softplus(w["scale"]) for t in (q, k))
        if focus_over == "heads":
            a_q, a_k = (a.unflatten(-1, (num_heads, -1)) for a in (a_q, a_k))
        floor = 1e-10 if guard == "floor" else 0.0
        xp = lambda a: torch.maximum(a**focusing_factor, floor * a.amax(-1, keepdim=True) ** focusing_factor)  # noqa: E731
        phi_q, phi_k = (a.norm(dim=-1, keepdim=True) / xp(a).norm(dim=-1, keepdim=True) * xp(a) for a in (a_q, a_k))
        if focus_over == "heads":
            phi_q, phi_k = phi_q.flatten(-2), phi_k.flatten(-2)
    # §3.2 Eq. 4 as an explicit matrix, per head: A_ij = phi(q_i)·phi(k_j) / Σ_j phi(q_i)·phi(k_j)
    scores = heads(phi_q) @ heads(phi_k).transpose(-2, -1)
    attn = scores / (scores.sum(dim=-1, keepdim=True) + (1e-6 if guard == "authors" else 0.0))
    if return_weights:
        return attn
    out = attn @ heads(v)  # (B, heads, N, d)
    if "dwc.weight" in w:  # §4.2 Eq. 10: + DWC(V), one depthwise conv over each head's d channels, shared by the heads
        gh, gw = grid.shape[-2:]
        v_grid = heads(v).transpose(-2, -1).reshape(b * num_heads, -1, gh, gw)
        dwc = F.conv2d(v_grid, w["dwc.weight"], padding=w["dwc.weight"].shape[-1] // 2, groups=v_grid.shape[1])
        if (gh, gw) != (h, w_):  # the reduced grid's term, upsampled to the queries' grid
            dwc = F.interpolate(dwc, size=(h, w_), mode="bilinear", align_corners=False)
        out = out + dwc.flatten(2).transpose(-2, -1).unflatten(0, (b, num_heads))
    y = linear("proj", out.transpose(1, 2).flatten(2))  # heads merged, output projection
    return y.transpose(1, 2).reshape(b, c, h, w_)


def softmax_forward(x: torch.Tensor, w: dict, num_heads: int, return_weights: bool = False) -> torch.Tensor:
    """Softmax attention on the same frame (paper §3.1, Eq. 1): softmax(QK^T / sqrt(d)) V per head."""
    b, c, h, w_ = x.shape
    t = x.flatten(2).transpose(1, 2)
    q, k, v = (F.linear(t, w[f"{n}.weight"], w.get(f"{n}.bias")).unflatten(-1, (num_heads, -1)).transpose(1, 2)
               for n in ("to_q", "to_k", "to_v"))
    attn = torch.softmax(q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5, dim=-1)
    if return_weights:
        return attn
    y = F.linear((attn @ v).transpose(1, 2).flatten(2), w["proj.weight"], w.get("proj.bias"))
    return y.transpose(1, 2).reshape(b, c, h, w_)


def _call(m: torch.nn.Module, x: torch.Tensor, **kwargs) -> torch.Tensor:
    """The reference for module ``m`` of ``fla.attention`` (read by its attributes), in float64."""
    w = {name: t.detach().double() for name, t in m.state_dict().items()}
    x64 = x.detach().double()
    if not hasattr(m, "kernel"):  # SoftmaxAttention
        return softmax_forward(x64, w, m.num_heads, **kwargs)
    return forward(x64, w, m.num_heads, m.focusing_factor, kernel=m.kernel, sr_ratio=m.sr_ratio, guard=m.guard,
                   focus_over=m.focus_over, **kwargs)


def dense_reference(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What module ``m`` should output on x, from its weights: float64, cast back to x's dtype."""
    return _call(m, x).to(x.dtype)


def attention_matrix(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Module ``m``'s (B, heads, N, M) attention weights on x (without the DWC term), float64."""
    return _call(m, x, return_weights=True)
