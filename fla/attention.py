"""Softmax, linear and focused linear attention on feature maps, behind one interface (notebooks 01-03).

Every module: ``Module(dim, num_heads=8, ...)``, forward ``(B, C, H, W) -> (B, C, H, W)`` for
any H×W, and ``attention_matrix(x) -> (B, heads, N, M)``, the row-stochastic weights each query
puts on the keys (fp32, for pictures). The frame is shared (project to q, k, v; mix the
tokens; project back); what differs is the mixing:

- ``SoftmaxAttention``: softmax(QK^T/sqrt(d)) V.
- ``LinearAttention``: phi(Q)(phi(K)^T V) / (phi(Q) Σ phi(K)), assembled from optional parts:
  the feature map phi (ReLU, elu+1, or ReLU with the focusing function), a learned positional
  encoding added to K, a depthwise conv on V (DWC) added to the output, and a reduced key grid
  (``sr_ratio``).
- ``FocusedLinearAttention``: ``LinearAttention`` with the paper's parts switched on by default.

The math is ``fla.functional``'s; training runs ``fla.kernels``' fast paths of the same
functions, except under ONNX export and tracing, where the modules run the equations themselves.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from . import functional as Fn
from . import kernels

__all__ = ["SoftmaxAttention", "LinearAttention", "FocusedLinearAttention"]


def _wide(t: torch.Tensor) -> torch.Tensor:
    """At least fp32: fp16/bf16 are widened, fp32 and fp64 kept (float64 gradcheck stays exact)."""
    return t.float() if t.dtype in (torch.float16, torch.bfloat16) else t


def _fp32_region(x: torch.Tensor):
    """Leave autocast: the focusing powers and the aggregation overflow fp16 and lose bf16 precision."""
    return kernels.without_autocast(x)


def _exporting() -> bool:
    """True under ONNX export, tracing or torch.export: the fast paths' autograd Functions have no ONNX form."""
    exporting = getattr(torch.compiler, "is_exporting", lambda: False)  # torch >= 2.4
    return torch.onnx.is_in_onnx_export() or torch.jit.is_tracing() or exporting()


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    """channels_last when x is laid out so (and not also plain contiguous, as a 1×1 map is both)."""
    return torch.channels_last if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous() else torch.contiguous_format


def _resize(grid: torch.Tensor, size, fast: bool) -> torch.Tensor:
    """Bilinear resize of a (B, C, h, w) grid to ``size``: in training ``kernels.resize`` (its backward is
    deterministic on CUDA too), under export torch's ``interpolate`` (ONNX's Resize, for every size)."""
    if fast:
        return kernels.resize(grid, size)
    return F.interpolate(grid, size=tuple(size), mode="bilinear", align_corners=False)


def _pointwise(linear: nn.Linear, tokens: torch.Tensor) -> torch.Tensor:
    """``linear`` on every token of ``tokens`` (B, C, N), channels first: W · tokens + b."""
    weight = linear.weight.expand(tokens.shape[0], -1, -1)
    if linear.bias is None:
        return torch.bmm(weight, tokens)
    return torch.baddbmm(linear.bias[:, None], weight, tokens)


class _Attention(nn.Module):
    """The frame: q from the map, k and v from the key grid, ``mix`` (the subclass), output projection.

    Tokens stay channels first, (B, C, N), as the feature map already is: every per-token
    quantity (a query's normaliser, its focusing peak and norm) then runs along the contiguous
    token axis, which on the CPU is two to three times faster than along 8 head channels.
    ``mix(q, k, v)`` gets q as a (B, C, H, W) grid and k, v as (B, C, h, w) grids and returns
    (B, C, H·W); ``weights(q, k)`` returns the (B, heads, N, M) attention matrix.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool, sr_ratio: int = 1):
        super().__init__()
        if dim <= 0 or num_heads <= 0 or dim % num_heads:
            raise ValueError(f"dim={dim} must be a positive multiple of num_heads={num_heads}")
        if int(sr_ratio) != sr_ratio or sr_ratio < 1:
            raise ValueError(f"sr_ratio must be an integer >= 1, got sr_ratio={sr_ratio}")
        self.dim, self.num_heads, self.head_dim, self.sr_ratio = dim, num_heads, dim // num_heads, int(sr_ratio)
        # Three products, not one fused qkv: each output is contiguous (the DWC reads V in place),
        # and K, V may come from a reduced grid (sr_ratio > 1).
        self.to_q, self.to_k, self.to_v = (nn.Linear(dim, dim, bias=qkv_bias) for _ in range(3))
        self.proj = nn.Linear(dim, dim)
        if self.sr_ratio > 1:  # PVT's spatial reduction: keys and values from a strided conv + LayerNorm grid
            self.sr = nn.Conv2d(dim, dim, self.sr_ratio, stride=self.sr_ratio)
            self.norm = nn.LayerNorm(dim)

    def _key_grid(self, x: torch.Tensor) -> torch.Tensor:
        if self.sr_ratio == 1:
            return x
        h, w = x.shape[-2:]
        if h < self.sr_ratio or w < self.sr_ratio:
            raise ValueError(f"input {h}x{w} is smaller than sr_ratio={self.sr_ratio}")
        return rearrange(self.norm(rearrange(self.sr(x), "b c h w -> b h w c")), "b h w c -> b c h w")

    def _qkv(self, x: torch.Tensor):
        """q (B, C, H, W) from x; k, v (B, C, h, w) from the key grid."""
        if x.ndim != 4:
            raise ValueError(f"expected a 4-D feature map (B, C, H, W), got shape {tuple(x.shape)}")
        if x.shape[1] != self.dim:
            raise ValueError(f"expected C={self.dim} channels, got C={x.shape[1]} in shape {tuple(x.shape)}")
        grid = self._key_grid(x)
        keys = grid.flatten(2)
        q, k, v = _pointwise(self.to_q, x.flatten(2)), _pointwise(self.to_k, keys), _pointwise(self.to_v, keys)
        # reshape_as, not unflatten: traced for ONNX, an unflatten's result has a fixed shape
        return q.reshape_as(x), k.reshape_as(grid), v.reshape_as(grid)

    def _heads(self, *ts: torch.Tensor):
        """(B, C, ...) -> (B, heads, N, d) views (the token axis stays the contiguous one).

        Torch's own reshapes rather than einops: traced for ONNX, einops bakes B and N in as numbers, and a
        ``dynamic=True`` export then refuses every other size."""
        return [t.flatten(2).unflatten(1, (self.num_heads, -1)).transpose(-2, -1) for t in ts]

    @staticmethod
    def _merge(heads: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, d) -> (B, C, N), the inverse of ``_heads``."""
        return heads.transpose(-2, -1).flatten(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        out = self.mix(q, k, v)  # (B, C, N)
        out = _pointwise(self.proj, out.to(q.dtype)).reshape_as(x).to(x.dtype)
        return out.contiguous(memory_format=_memory_format(x))  # a channels_last network gets channels_last back

    def attention_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """(B, heads, N, M) row-stochastic weights of the token mixing, in fp32 (notebooks 02, 03)."""
        q, k, _ = self._qkv(x)
        with _fp32_region(x):
            return self.weights(_wide(q), _wide(k))


class SoftmaxAttention(_Attention):
    """softmax(QK^T / sqrt(d)) V via torch's scaled_dot_product_attention: O(N^2 d) (notebook 01)."""

    def __init__(self, dim: int, num_heads: int = 8, qkv_bias: bool = True):
        super().__init__(dim, num_heads, qkv_bias)

    def mix(self, q, k, v):
        # SDPA's fused CPU kernel wants (B, heads, N, d) with d contiguous; the views are token-major
        heads = (t.contiguous() for t in self._heads(q, k, v))
        return self._merge(F.scaled_dot_product_attention(*heads))

    def weights(self, q, k):
        q, k = self._heads(q, k)
        return torch.softmax(q @ k.transpose(-2, -1) * self.head_dim**-0.5, dim=-1)


class LinearAttention(_Attention):
    """phi(Q)(phi(K)^T V) / (phi(Q) · Σ phi(K)) [+ DWC(V)]: O(N d^2) (notebook 01; paper §3.2, §4).

    Parts, each one argument:
    - ``kernel``: phi = ReLU(x) + 1e-6 ("relu") or elu(x) + 1 ("elu").
    - ``focusing_factor`` p (keyword): phi_p(x) = f_p(phi(x) / softplus(s)), the focused kernel
      (``fla.functional.focus``), with a learnable per-channel scale s (``self.scale``). ReLU kernel only.
    - ``focus_over`` (keyword): which vector f_p normalises. "channels" (default, the authors' code):
      each token's full C-channel vector, before the head split, so one head's large channels shrink
      the other heads' features; "heads": each head's d channels on their own. Same parameters.
    - ``kernel_size`` k > 0 (odd): adds DWC(V), one depthwise k×k conv over the head_dim channels of
      V shared by all heads (``self.dwc``): it makes the equivalent attention matrix full rank
      (notebook 03). No bias: a constant per channel would be absorbed by the output projection's.
    - ``pos_encoding`` (keyword): a learned (C, pos_size) grid (``self.pos``), resized bilinearly to
      the key grid, added to K.
    - ``sr_ratio`` r > 1 (keyword): K and V from a strided conv + LayerNorm grid (H // r, W // r);
      the DWC runs on that grid and is upsampled bilinearly to H × W. (The authors' PVT module
      instead interpolates V linearly along the flattened sequence to N tokens and runs the DWC on
      the H × W grid: the same at r = 1, a different layer at r > 1.)
    - ``guard`` (keyword): how a focused row is kept away from 0/0 (``fla.functional.GUARDS``):
      "floor" (default) floors x**p at 1e-10 of its peak; "authors" leaves x**p bare and adds 1e-6
      to each query's normaliser, as the authors' code does: with their weights copied, the module
      then computes their output (to rounding, at sr_ratio = 1).
    Feature maps and aggregation run in fp32 whatever the input dtype; the output has the input dtype.
    """

    # what a module pickled inside a checkpoint before these arguments existed computes
    guard, focus_over = "floor", "channels"

    def __init__(
        self,
        dim: int,
        num_heads: int = 8,
        kernel: str = "relu",
        order: str = "auto",
        qkv_bias: bool = True,
        kernel_size: int = 0,
        *,
        focusing_factor: float | None = None,
        pos_encoding: bool = False,
        pos_size: int | tuple[int, int] = 14,
        sr_ratio: int = 1,
        focus_over: str = "channels",
        guard: str = "floor",
    ):
        super().__init__(dim, num_heads, qkv_bias, sr_ratio)
        if focus_over not in ("channels", "heads"):
            raise ValueError(f"focus_over must be 'channels' or 'heads', got focus_over={focus_over!r}")
        if guard not in Fn.GUARDS:
            raise ValueError(f"guard must be one of {sorted(Fn.GUARDS)}, got guard={guard!r}")
        if kernel not in ("relu", "elu"):
            raise ValueError(f"kernel must be 'relu' or 'elu', got kernel={kernel!r}")
        if order not in ("auto", "kv", "qk"):
            raise ValueError(f"order must be 'auto', 'kv' or 'qk', got order={order!r}")
        if kernel_size < 0 or (kernel_size and kernel_size % 2 == 0) or int(kernel_size) != kernel_size:
            raise ValueError(f"kernel_size must be 0 (no DWC) or a positive odd number (DWC keeps the grid), got kernel_size={kernel_size}")
        if focusing_factor is not None:
            if not focusing_factor > 0:
                raise ValueError(f"focusing_factor p must be > 0, got p={focusing_factor}")
            if kernel != "relu":
                raise ValueError(f"focusing applies to the ReLU kernel (paper §4.1), got kernel={kernel!r}")
        self.kernel, self.order, self.focus_over, self.guard = kernel, order, focus_over, guard
        self.focusing_factor = None if focusing_factor is None else float(focusing_factor)
        self.scale = nn.Parameter(torch.zeros(dim)) if focusing_factor is not None else None
        d = self.head_dim
        self.dwc = nn.Conv2d(d, d, kernel_size, padding=kernel_size // 2, groups=d, bias=False) if kernel_size else None
        if pos_encoding:
            ph, pw = (pos_size, pos_size) if isinstance(pos_size, int) else pos_size
            self.pos = nn.Parameter(torch.empty(1, dim, ph, pw))
            nn.init.trunc_normal_(self.pos, std=0.02)
        else:
            self.pos = None

    def features(self, q: torch.Tensor, k: torch.Tensor, fast: bool = True):
        """phi(Q) (B, C, N) and phi(K) (B, C, M) from the q and k grids, at least fp32; heads still merged.

        fast=False computes the equations of ``fla.functional`` literally (the pictures, ONNX export).
        """
        q, k = _wide(q), _wide(k)
        if self.pos is not None:
            pos = _wide(self.pos)
            if pos.shape[-2:] != k.shape[-2:] or _exporting():  # exported: a resize for every size, not only the traced one
                pos = _resize(pos, k.shape[-2:], fast)
            k = k + pos.to(k.dtype)
        q, k = q.flatten(2), k.flatten(2)
        if self.focusing_factor is None:
            phi = Fn.relu_kernel if self.kernel == "relu" else Fn.elu_kernel
            return phi(q), phi(k)
        scale = F.softplus(self.scale.to(q.dtype))[:, None]  # (C, 1): per channel of channel-first tokens
        floor = Fn.GUARDS[self.guard][0]
        if self.focus_over == "heads":  # f_p over each head's d channels: (B, heads, d, N), scale (heads, d, 1)
            q, k, scale = q.unflatten(1, (self.num_heads, -1)), k.unflatten(1, (self.num_heads, -1)), scale.unflatten(0, (self.num_heads, -1))
        if fast:
            out = [kernels.focused_kernel(t, scale, self.focusing_factor, dim=-2, floor=floor) for t in (q, k)]
        else:
            out = [Fn.focus((Fn.relu_kernel(t) / scale).transpose(-2, -1), self.focusing_factor, floor).transpose(-2, -1)
                   for t in (q, k)]
        return [t.flatten(1, 2) for t in out] if self.focus_over == "heads" else out

    def mix(self, q, k, v):
        fast = not _exporting()
        with _fp32_region(q):
            phi_q, phi_k = self.features(q, k, fast)
            v = _wide(v)
            attend = kernels.linear_attention if fast else Fn.linear_attention
            out = self._merge(attend(*self._heads(phi_q, phi_k, v), self.order, Fn.GUARDS[self.guard][1]))
            if self.dwc is None:
                return out
            return out.add_(self.dwc_term(v, q.shape[-2:], fast))  # in place: nothing saved the sum for backward

    def dwc_term(self, v: torch.Tensor, size, fast: bool = True) -> torch.Tensor:
        """DWC(V) (B, C, N): the conv on the V grid (B, C, h, w), resized to the query grid ``size``.

        The head_dim kernels are repeated for the heads (one depthwise conv over all C channels),
        which is the same conv as folding the heads into the batch, and faster on the CPU.
        """
        weight = self.dwc.weight.to(v.dtype).repeat(self.num_heads, 1, 1, 1)
        grid = (kernels.depthwise_conv if fast else Fn.depthwise_conv)(v, weight)
        if grid.shape[-2:] != tuple(size):
            grid = _resize(grid, size, fast)
        return grid.flatten(2)

    def weights(self, q, k):
        """Row-normalised phi(Q) phi(K)^T per head, from the reference equations; without the DWC term (see ``dwc_matrix``)."""
        phi_q, phi_k = self._heads(*self.features(q, k, fast=False))
        return Fn.normalise_rows(phi_q @ phi_k.transpose(-2, -1), Fn.GUARDS[self.guard][1])

    def dwc_matrix(self, height: int, width: int) -> torch.Tensor:
        """(head_dim, N, M): the DWC term as banded matrices, one per head channel (notebook 03).

        For head channel c the module's output is (attention_matrix + dwc_matrix[c]) @ V[..., c]
        before the output projection: the paper's equivalent attention matrix.
        """
        if self.dwc is None:
            raise ValueError("this module has no DWC (kernel_size=0)")
        key_hw = (height // self.sr_ratio, width // self.sr_ratio)
        return Fn.dwc_matrix(_wide(self.dwc.weight.detach()), *key_hw, out_size=(height, width))

    def extra_repr(self) -> str:
        parts = [f"dim={self.dim}", f"num_heads={self.num_heads}", f"kernel={self.kernel}"]
        if self.focusing_factor is not None:
            parts.append(f"p={self.focusing_factor}")
            if self.focus_over != "channels":
                parts.append(f"focus_over={self.focus_over}")
        if self.dwc is not None:
            parts.append(f"kernel_size={self.dwc.kernel_size[0]}")
        if self.pos is not None:
            parts.append(f"pos={tuple(self.pos.shape[-2:])}")
        if self.sr_ratio > 1:
            parts.append(f"sr_ratio={self.sr_ratio}")
        if self.guard != "floor":
            parts.append(f"guard={self.guard}")
        return ", ".join(parts + [f"order={self.order}"])


class FocusedLinearAttention(LinearAttention):
    """Focused linear attention (FLatten Transformer, Han et al., ICCV 2023): ``LinearAttention`` with
    the paper's parts on by default.

        phi_p(x) = f_p(ReLU(x) / softplus(s))                                 focused kernel, §4.1
        O = phi_p(Q) (phi_p(K)^T V) / (phi_p(Q) · Σ phi_p(K))  +  DWC(V)      §4.2

    plus a learned positional encoding on K. ``kernel_size=0`` drops the DWC (the ablation's
    "linear + focusing"); ``LinearAttention(kernel_size=5)`` is "linear + DWC" without focusing.
    ``fla.reference.forward`` is this forward written out in the paper's order, from the weights.
    Against the authors' module: ``guard="authors"`` reproduces their normaliser, and with
    ``sr_ratio`` > 1 the DWC runs on the reduced grid, where theirs interpolates V to N tokens first
    (see ``LinearAttention``).
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
        focus_over: str = "channels",
        guard: str = "floor",
    ):
        if focusing_factor is None:
            raise ValueError("FocusedLinearAttention needs a focusing_factor p > 0 (LinearAttention has none)")
        super().__init__(dim, num_heads, "relu", order, qkv_bias, kernel_size, focusing_factor=focusing_factor,
                         pos_encoding=pos_encoding, pos_size=pos_size, sr_ratio=sr_ratio, focus_over=focus_over,
                         guard=guard)
