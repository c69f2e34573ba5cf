"""The attention modules' definition with explicit N×M matrices, for tests to compare the fast paths against."""
from __future__ import annotations

import torch
from einops import rearrange

from fla import FocusedLinearAttention


def dense_reference(m: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Build the N×M matrices explicitly and apply them: the definition, not the fast path."""
    h, w = x.shape[-2:]
    _, _, v, _ = m._project(x)
    (vh,) = m._split(v)
    out = m.attention_matrix(x).to(vh.dtype) @ vh  # (B, heads, N, d)
    if isinstance(m, FocusedLinearAttention):  # + DWC as a banded matrix, one per head channel
        out = out + torch.einsum("dnm,bhmd->bhnd", m.dwc_matrix(h, w).to(vh.dtype), vh)
    y = m.proj(rearrange(out, "b h n d -> b n (h d)"))
    return rearrange(y, "b (h w) c -> b c h w", h=h)
