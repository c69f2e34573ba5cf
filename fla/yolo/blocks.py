"""The YOLO blocks with focused linear attention (notebook 05): drop-ins for ultralytics' C2f, C3k2, C2PSA and a
neck block, each adding attention through a residual branch that starts as a no-op.

How they get into a model built from YAML is not here: ``fla.yolo.registry`` teaches ultralytics' parser the
names. These are plain ``nn.Module``s.
"""
from __future__ import annotations

from torch import nn
from ultralytics.nn.modules import C2f, C2PSA, C3k2, Conv
from ultralytics.nn.modules.block import Bottleneck, C3k, PSABlock

from ..attention import FocusedLinearAttention

__all__ = ["Bottleneck_FLA", "C2f_FLA", "C3k2_FLA", "PSABlock_FLA", "C2PSA_FLA", "FLABlock", "fla_branch", "heads_for"]


def heads_for(channels: int, head_dim: int = 32) -> int:
    """Heads of about ``head_dim`` channels, as in the paper's models; at least one, dividing ``channels``."""
    heads = max(1, channels // head_dim)
    while channels % heads:
        heads -= 1
    return heads


def fla_branch(dim: int, num_heads: int | None = None, **fla_kwargs) -> FocusedLinearAttention:
    """FLA for a residual branch ``x + FLA(x)`` that starts as a no-op: its output projection is zero.

    Every block here adds its attention through such a branch, so a model with our blocks computes
    at step 0 exactly what the model without them computes: pretrained weights loaded with
    ``transfer`` keep their accuracy (notebook 05). The branch is not dead: the projection's
    gradient is (output gradient) x (attention output), non-zero, and after the first step the
    inner weights get gradients as well (tests/test_yolo_transfer.py).
    """
    attn = FocusedLinearAttention(dim, num_heads or heads_for(dim), **fla_kwargs)
    nn.init.zeros_(attn.proj.weight)
    nn.init.zeros_(attn.proj.bias)
    return attn


class Bottleneck_FLA(nn.Module):
    """YOLOv8 bottleneck whose output passes a focused-linear-attention residual branch.

        y = cv2(cv1(x));   y = y + FLA(y);   out = x + y  if shortcut and c1 == c2  else  y

    The blog post's code calls the attention only when there is no shortcut, so in YOLOv8's
    backbone (shortcut=True) it is built but never used. Here it is always in the path, as a residual
    branch that starts as a no-op (``fla_branch``): at initialisation the block *is* the stock
    bottleneck, so pretrained weights keep their meaning and training from scratch starts from
    the stock network; the shortcut keeps its usual meaning.
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k=(3, 3), e: float = 0.5, **fla_kwargs):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.attn = fla_branch(c2, **fla_kwargs)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        y = y + self.attn(y)
        return x + y if self.add else y


class C2f_FLA(C2f):
    """C2f whose bottlenecks are ``Bottleneck_FLA``: a drop-in for C2f with the same YAML args ``[c2, shortcut]``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5, **fla_kwargs):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(
            Bottleneck_FLA(self.c, self.c, shortcut, g, k=(3, 3), e=1.0, **fla_kwargs) for _ in range(n)
        )


class C3k2_FLA(C3k2):
    """C3k2 with focused linear attention: a drop-in with C3k2's YAML args ``[c2, c3k, e, attn, g, shortcut]``.

    Every bottleneck becomes a ``Bottleneck_FLA`` (inside C3k too, which ultralytics forces at
    m/l/x), as C2f_FLA does for C2f. With ``attn=True`` (YOLO26's P5 head block, Bottleneck +
    PSABlock) the PSABlock's softmax attention is the one replaced, by ``PSABlock_FLA``.
    Submodule names stay C3k2's, so a stock checkpoint's conv weights keep their names.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, attn: bool = False,
                 g: int = 1, shortcut: bool = True, **fla_kwargs):
        super().__init__(c1, c2, n, c3k, e, attn, g, shortcut)
        c = self.c

        def inner():
            if attn:
                return nn.Sequential(Bottleneck(c, c, shortcut, g), PSABlock_FLA(c, **fla_kwargs))
            if c3k:  # C3k(c, c, 2): two k=3 bottlenecks on half its width
                block = C3k(c, c, 2, shortcut, g)
                h = block.cv1.conv.out_channels
                block.m = nn.Sequential(*(Bottleneck_FLA(h, h, shortcut, g, e=1.0, **fla_kwargs) for _ in range(2)))
                return block
            return Bottleneck_FLA(c, c, shortcut, g, e=0.5, **fla_kwargs)  # C3k2's Bottleneck: e=0.5

        self.m = nn.ModuleList(inner() for _ in range(n))


class PSABlock_FLA(PSABlock):
    """PSABlock (``x + attn(x)``, then ``x + ffn(x)``) whose softmax attention is focused linear attention."""

    def __init__(self, c: int, num_heads: int | None = None, shortcut: bool = True, **fla_kwargs):
        super().__init__(c, attn_ratio=0.5, num_heads=max(c // 64, 1), shortcut=shortcut)
        self.attn = fla_branch(c, num_heads, **fla_kwargs)


class C2PSA_FLA(C2PSA):
    """C2PSA (YOLO11/YOLO26's attention after SPPF) whose PSABlocks attend with FLA; same YAML args ``[c2, e]``."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5, **fla_kwargs):
        super().__init__(c1, c2, n, e)
        self.m = nn.Sequential(*(PSABlock_FLA(self.c, **fla_kwargs) for _ in range(n)))


class FLABlock(nn.Module):
    """Standalone neck block ``x + FLA(x)``; channels come from the previous layer (YAML args: ``[]``
    or ``[num_heads]``). It starts as the identity (``fla_branch``), in a pretrained or a fresh detector."""

    def __init__(self, c1: int, num_heads: int | None = None, **fla_kwargs):
        super().__init__()
        self.attn = fla_branch(c1, num_heads, **fla_kwargs)

    def forward(self, x):
        return x + self.attn(x)
