"""Softmax, linear and focused linear attention on feature maps, behind one interface.

All three: ``Module(dim, num_heads=8, ...)``, forward ``(B, C, H, W) -> (B, C, H, W)`` with
q/k/v/output projections, and ``attention_matrix(x) -> (B, heads, N, M)``: the row-stochastic
weights each query puts on the keys, for the notebooks' pictures (02, 03).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from . import functional as Fn

__all__ = ["SoftmaxAttention", "LinearAttention", "FocusedLinearAttention"]


def _wide(t: torch.Tensor) -> torch.Tensor:
    """At least fp32: fp16/bf16 are widened, fp32 and fp64 kept (float64 gradcheck stays exact)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _pointwise(linear: nn.Linear, tokens: torch.Tensor) -> torch.Tensor:
    """``linear`` on every token of ``tokens`` (B, C, N), channels first: W · tokens + b."""
    weight = linear.weight.expand(tokens.shape[0], -1, -1)
    if linear.bias is None:
        return torch.bmm(weight, tokens)
    return torch.baddbmm(linear.bias[:, None], weight, tokens)


def _fp32_region(x: torch.Tensor):
    """Leave autocast: the focusing powers and the aggregation overflow fp16 and lose bf16 precision."""
    return torch.autocast(device_type=x.device.type, enabled=False) if torch.is_autocast_enabled(x.device.type) else nullcontext()


class _TokenAttention(nn.Module):
    """The frame shared by the three: project, split heads, mix tokens (subclass), merge, project.

    Tokens are kept channels first, (B, C, N), as the feature map already is: every per-token
    quantity (a query's normaliser, its focusing peak and norm) then runs along the contiguous
    token axis, which on the CPU is two to three times faster than along 8 head channels.
    """

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True):
        super().__init__()
        if dim <= 0 or num_heads <= 0 or dim % num_heads:
            raise ValueError(f"dim={dim} must be a positive multiple of num_heads={num_heads}")
        self.dim, self.num_heads, self.head_dim = dim, num_heads, dim // num_heads
        # Three products, not one fused qkv: each output is contiguous (the DWC reads V in place),
        # and K, V may come from a reduced grid (sr_ratio > 1).
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim, bias=qkv_bias) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.ndim != 4:
            raise ValueError(f"expected a 4-D feature map (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.dim:
            raise ValueError(f"expected C={self.dim} channels, got C={x.shape[1]} in shape {tuple(x.shape)}")

    def _key_grid(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map keys and values come from (the input itself, or a reduced one)."""
        return x

    def _project(self, x: torch.Tensor):
        """q (B, C, N) from x; k, v (B, C, M) from the key grid; plus that grid's (H, W)."""
        self._check_input(x)
        grid = self._key_grid(x)
        tokens = grid.flatten(2)
        return _pointwise(self.to_q, x.flatten(2)), _pointwise(self.to_k, tokens), _pointwise(self.to_v, tokens), grid.shape[-2:]

    def _split(self, *ts: torch.Tensor):
        """(B, C, N) -> (B, heads, N, d) views (the token axis stays the contiguous one)."""
        return [rearrange(t, "b (h d) n -> b h n d", h=self.num_heads) for t in ts]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v, key_hw = self._project(x)
        out = self._mix(q, k, v, x.shape[-2:], key_hw)  # (B, C, N)
        return _pointwise(self.proj, out.to(q.dtype)).unflatten(2, x.shape[-2:]).to(x.dtype)

    def attention_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, M) row-stochastic weights of the token mixing, in fp32 (notebooks 02, 03)."""
        q, k, _, _ = self._project(x)
        with _fp32_region(x):
            return self._weights(q, k)


class SoftmaxAttention(_TokenAttention):
    """softmax(QK^T / sqrt(d)) V via torch's scaled_dot_product_attention: O(N^2 d) (notebook 01)."""

    def _mix(self, q, k, v, hw, key_hw):
        # SDPA's fused CPU kernel wants (B, heads, N, d) with d contiguous; the views are token-major
        heads = (t.contiguous() for t in self._split(q, k, v))
        return rearrange(F.scaled_dot_product_attention(*heads), "b h n d -> b (h d) n")

    def _weights(self, q, k):
        q, k = self._split(_wide(q), _wide(k))
        return torch.softmax(q @ k.transpose(-2, -1) * self.head_dim**-0.5, dim=-1)


class LinearAttention(_TokenAttention):
    """phi(Q)(phi(K)^T V) / (phi(Q) · sum phi(K)) with phi = ReLU (or elu+1): O(N d^2) (notebook 01)."""

    def __init__(self, dim: int, num_heads: int = 8, kernel: str = "relu", order: str = "auto", qkv_bias: bool = True):
        super().__init__(dim, num_heads, qkv_bias)
        kernels = {"relu": Fn.relu_kernel, "elu": Fn.elu_kernel}
        if kernel not in kernels:
            raise ValueError(f"kernel must be 'relu' or 'elu', got kernel={kernel!r}")
        if order not in ("auto", "kv", "qk"):
            raise ValueError(f"order must be 'auto', 'kv' or 'qk', got order={order!r}")
        self.kernel, self.phi, self.order = kernel, kernels[kernel], order

    def _features(self, q, k):
        return self._split(self.phi(_wide(q)), self.phi(_wide(k)))

    def _mix(self, q, k, v, hw, key_hw):
        with _fp32_region(q):
            q, k = self._features(q, k)
            (v,) = self._split(_wide(v))
            return rearrange(Fn.linear_attention(q, k, v, self.order), "b h n d -> b (h d) n")

    def _weights(self, q, k):
        q, k = self._features(q, k)
        return Fn.normalise_rows(q @ k.transpose(-2, -1))


class FocusedLinearAttention(LinearAttention):
    """Focused linear attention (FLatten Transformer, Han et al., ICCV 2023).

        phi_p(x) = f_p(ReLU(x) / softplus(s))                       focusing kernel, Eq. 6-7
        O = phi_p(Q) (phi_p(K)^T V) / (phi_p(Q) · sum phi_p(K))  +  DWC(V)    Eq. 12

    - s is a learnable per-channel scale; f_p is ``fla.functional.focus`` applied to each
      token's full C-channel vector before the head split, as in the authors' code.
    - A learned positional encoding (a ``pos_size`` grid, resized bilinearly to the key grid)
      is added to K.
    - DWC: one depthwise k×k conv over the head_dim channels of V, shared by all heads; it
      makes the equivalent attention matrix full rank (notebook 03). No bias: a constant per
      channel would be absorbed by the output projection's bias.
    - ``sr_ratio > 1`` (PVT-style): K and V come from a strided conv + LayerNorm grid
      (H // r, W // r); DWC runs on that grid and is upsampled bilinearly to H × W.
    - Focusing and aggregation run in fp32 whatever the input dtype; the output has the input dtype.
    """

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        focusing_factor: float = 3.0,
        kernel_size: int = 5,
        pos_encoding: bool = True,
        pos_size: int | tuple[int, int] = 14,
        sr_ratio: int = 1,
        order: str = "auto",
        qkv_bias: bool = True,
    ):
        super().__init__(dim, num_heads, "relu", order, qkv_bias)
        if not focusing_factor > 0:
            raise ValueError(f"focusing_factor p must be > 0, got p={focusing_factor}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be a positive odd number (DWC keeps the grid), got kernel_size={kernel_size}")
        if int(sr_ratio) != sr_ratio or sr_ratio < 1:
            raise ValueError(f"sr_ratio must be an integer >= 1, got sr_ratio={sr_ratio}")
        self.focusing_factor, self.sr_ratio = float(focusing_factor), int(sr_ratio)
        self.scale = nn.Parameter(torch.zeros(dim))
        d = self.head_dim
        self.dwc = nn.Conv2d(d, d, kernel_size, padding=kernel_size // 2, groups=d, bias=False)
        if self.sr_ratio > 1:
            self.sr = nn.Conv2d(dim, dim, self.sr_ratio, stride=self.sr_ratio)
            self.norm = nn.LayerNorm(dim)
        if pos_encoding:
            ph, pw = (pos_size, pos_size) if isinstance(pos_size, int) else pos_size
            self.pos = nn.Parameter(torch.empty(1, dim, ph, pw))
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:
            self.register_parameter("pos", None)

    def _key_grid(self, x):
        if self.sr_ratio == 1:
            return x
        h, w = x.shape[-2:]
        if h < self.sr_ratio or w < self.sr_ratio:
            raise ValueError(f"input {h}x{w} is smaller than sr_ratio={self.sr_ratio}")
        grid = self.sr(x)
        return rearrange(self.norm(rearrange(grid, "b c h w -> b h w c")), "b h w c -> b c h w")

    def _positional(self, key_hw) -> torch.Tensor:
        """(1, C, M) encoding for the key grid: the learned grid, resized in 2-D when sizes differ."""
        pos = _wide(self.pos)
        if tuple(pos.shape[-2:]) != tuple(key_hw):
            pos = F.interpolate(pos, size=tuple(key_hw), mode="bilinear", align_corners=False)
        return pos.flatten(2)

    def _focused(self, q, k, key_hw):
        """phi_p(Q) (B, C, N) and phi_p(K) (B, C, M), at least fp32; heads still merged."""
        q, k = _wide(q), _wide(k)
        if self.pos is not None:
            k = k + self._positional(key_hw).to(k.dtype)
        scale = F.softplus(self.scale.to(q.dtype))[:, None]
        return [Fn.focused_kernel(t, scale, self.focusing_factor, dim=-2) for t in (q, k)]

    def _features(self, q, k, key_hw=None):
        return self._split(*self._focused(q, k, key_hw))

    def _mix(self, q, k, v, hw, key_hw):
        with _fp32_region(q):
            q, k = self._focused(q, k, key_hw)
            v = _wide(v)
            out = rearrange(Fn.linear_attention(*self._split(q, k, v), self.order), "b h n d -> b (h d) n")
            return out.add_(self._dwc(v, key_hw, hw))  # in place: nothing saved the sum for backward

    def _dwc(self, v, key_hw, hw):
        """DWC on V (B, C, M) over its key grid, resized to the query grid: (B, C, N).

        The head_dim kernels are repeated for the heads (one depthwise conv over all C channels),
        which is the same conv as folding the heads into the batch, and faster on CPU.
        """
        grid = v.unflatten(2, tuple(key_hw))
        weight = self.dwc.weight.to(grid.dtype).repeat(self.num_heads, 1, 1, 1)
        grid = Fn.depthwise_conv(grid, weight)
        if tuple(key_hw) != tuple(hw):
            grid = F.interpolate(grid, size=tuple(hw), mode="bilinear", align_corners=False)
        return grid.flatten(2)

    def attention_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, M) row-normalised phi_p(Q) phi_p(K)^T, without the DWC term (see ``dwc_matrix``)."""
        q, k, _, key_hw = self._project(x)
        with _fp32_region(x):
            q, k = self._features(q, k, key_hw)
            return Fn.normalise_rows(q @ k.transpose(-2, -1))

    def dwc_matrix(self, height: int, width: int) -> torch.Tensor:
        """(head_dim, N, M): the DWC term as banded matrices, one per head channel (notebook 03).

        For head channel c the module's output is (attention_matrix + dwc_matrix[c]) @ V[..., c]
        before the output projection: the paper's equivalent attention matrix.
        """
        key_hw = (height // self.sr_ratio, width // self.sr_ratio)
        return Fn.dwc_matrix(_wide(self.dwc.weight.detach()), *key_hw, out_size=(height, width))

    def extra_repr(self) -> str:
        return f"dim={self.dim}, num_heads={self.num_heads}, p={self.focusing_factor}, sr_ratio={self.sr_ratio}, order={self.order}"
