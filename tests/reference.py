"""The attention modules' definition, written out from the paper's equations and the module's parameters.

Nothing here calls a module's methods or ``fla``'s functions: only its weights (``to_q.weight``,
..., ``scale``, ``pos``, ``dwc.weight``, ``sr``/``norm``) and its hyper-parameters. Everything is
computed in float64 with explicit N×M matrices, so a fast path that drifts from the equations fails.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange

from fla import SoftmaxAttention


def _weight(layer: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A Linear's or 1×1 conv's weight as a (C_out, C_in) matrix, and its bias, in float64."""
    w = layer.weight.detach().double()
    b = None if layer.bias is None else layer.bias.detach().double()
    return w.reshape(w.shape[0], -1), b


def _project(layer, tokens):  # tokens (B, N, C)
    w, b = _weight(layer)
    return tokens @ w.T + (0 if b is None else b)


def _focus(x, p):
    """f_p(x) = ||x|| / ||x**p|| · x**p (float64 does not overflow at the tests' scales), with fla's one
    documented addition: x**p floored at 1e-10 of its peak, so no attention row is 0/0."""
    xp = torch.maximum(x**p, 1e-10 * x.amax(dim=-1, keepdim=True) ** p)
    return x.norm(dim=-1, keepdim=True) / xp.norm(dim=-1, keepdim=True) * xp


def _features(m, t):
    """phi over each token's full C-channel vector (B, N, C)."""
    if m.focusing_factor is not None:
        return _focus((F.relu(t) + 1e-6) / F.softplus(m.scale.detach().double()), m.focusing_factor)
    return F.relu(t) + 1e-6 if m.kernel == "relu" else F.elu(t) + 1


def _key_grid(m, x64):
    if m.sr_ratio == 1:
        return x64
    c = x64.shape[1]  # PVT's spatial reduction: strided conv, then LayerNorm over channels
    grid = F.conv2d(x64, m.sr.weight.detach().double(), m.sr.bias.detach().double(), stride=m.sr_ratio)
    return F.layer_norm(grid.permute(0, 2, 3, 1), (c,), m.norm.weight.detach().double(),
                        m.norm.bias.detach().double(), m.norm.eps).permute(0, 3, 1, 2)


def _split(m, t):
    return rearrange(t, "b n (h d) -> b h n d", h=m.num_heads)


def _attention(m, x64, grid):
    """The (B, heads, N, M) attention matrix: softmax(QK^T/sqrt(d)), or row-normalised phi(Q)phi(K)^T."""
    q = _project(m.to_q, rearrange(x64, "b c h w -> b (h w) c"))
    k = _project(m.to_k, rearrange(grid, "b c h w -> b (h w) c"))
    if isinstance(m, SoftmaxAttention):
        return torch.softmax(_split(m, q) @ _split(m, k).transpose(-2, -1) / m.head_dim**0.5, dim=-1)
    if m.pos is not None:
        pos = F.interpolate(m.pos.detach().double(), size=grid.shape[-2:], mode="bilinear", align_corners=False)
        k = k + rearrange(pos, "1 c h w -> 1 (h w) c")
    scores = _split(m, _features(m, q)) @ _split(m, _features(m, k)).transpose(-2, -1)
    return scores / scores.sum(dim=-1, keepdim=True)


def attention_matrix(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The module's (B, heads, N, M) attention weights (without the DWC term), float64."""
    x64 = x.detach().double()
    return _attention(m, x64, _key_grid(m, x64))


def dense_reference(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """y = proj(A V [+ DWC(V)]) per head, with the N×M attention matrix A built explicitly."""
    x64 = x.detach().double()
    b, c, h, w = x64.shape
    grid = _key_grid(m, x64)
    kh, kw = grid.shape[-2:]
    v = _project(m.to_v, rearrange(grid, "b c h w -> b (h w) c"))
    out = _attention(m, x64, grid) @ _split(m, v)  # (B, heads, N, d)
    if getattr(m, "dwc", None) is not None:  # one depthwise conv over each head's d channels of V, shared by the heads
        vg = rearrange(v, "b (y x) (h d) -> (b h) d y x", y=kh, h=m.num_heads)
        kernel = m.dwc.weight.detach().double()
        dwc = F.conv2d(vg, kernel, padding=kernel.shape[-1] // 2, groups=m.head_dim)
        dwc = F.interpolate(dwc, size=(h, w), mode="bilinear", align_corners=False) if (kh, kw) != (h, w) else dwc
        out = out + rearrange(dwc, "(b h) d y x -> b h (y x) d", b=b)
    y = _project(m.proj, rearrange(out, "b h n d -> b n (h d)"))
    return rearrange(y, "b (y x) c -> b c y x", y=h).to(x.dtype)
