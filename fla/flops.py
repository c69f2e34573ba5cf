"""Counting the arithmetic of the attention modules two ways: formulas and real counters (notebook 01).

Importing this module registers a thop rule for the three attention modules, so
``thop.profile`` and ultralytics' ``model.info()`` count their projections and token mixing.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from .functional import attention_macs, projection_macs

__all__ = ["linear_attention_macs", "count_flops"]


def _token_counts(module, x: torch.Tensor) -> tuple[int, int, int]:
    """(batch, query tokens N, key tokens M) of a module on x: M is the reduced grid when sr_ratio > 1."""
    b, _, h, w = x.shape
    sr = getattr(module, "sr_ratio", 1)
    return b, h * w, (h // sr) * (w // sr)


def linear_attention_macs(module: LinearAttention, x: torch.Tensor) -> int:
    """Multiply-adds of a linear-attention module's token mixing on x, projections excluded.

    Counted in the linear order phi(Q)(phi(K)^T V), which is what runs whenever the map has more
    tokens than a head has channels (every YOLO map); below that the module switches to the
    cheaper quadratic order. A count that does not depend on the switch grows exactly linearly
    with the image, which ultralytics' FLOP extrapolation from small proxy images relies on.
    A module with a DWC (``kernel_size > 0``) adds its depthwise conv on V: k*k per value entry.
    """
    b, n, m = _token_counts(module, x)
    d = module.head_dim
    macs = b * module.num_heads * attention_macs(n, d, "linear", m=m)
    if module.dwc is not None:
        macs += b * module.num_heads * d * m * module.dwc.kernel_size[0] * module.dwc.kernel_size[1]
    return macs


def _thop_rule(module, inputs, output):
    """The modules apply their Linears' weights to channel-first tokens themselves (no Linear call
    for thop to hook), so the rule counts the projections as well as the token mixing."""
    x = inputs[0]
    b, n, m = _token_counts(module, x)
    if isinstance(module, SoftmaxAttention):
        mixing = b * module.num_heads * attention_macs(n, module.head_dim, "softmax")
    else:
        mixing = linear_attention_macs(module, x)
    module.total_ops += b * projection_macs(n, module.dim, m) + mixing


def _count_cpu_sdpa() -> None:
    """FlopCounterMode knows the CUDA SDPA kernels but not the CPU one; give it the same formula."""
    from torch.utils import flop_counter as fc

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    if op is not None and op not in fc.flop_registry:
        fc.register_flop_formula(op, get_raw=True)(fc.sdpa_flop)  # already shape-wrapped


def count_flops(module: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward as torch's FlopCounterMode counts them (2 per multiply-add, matmuls and convs;
    softmax attention through SDPA included, on CPU too)."""
    _count_cpu_sdpa()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return counter.get_total_flops()


try:  # thop comes with ultralytics (as ultralytics-thop); the formulas above work without it
    import importlib

    _thop_profile = importlib.import_module("thop.profile")  # the module: thop re-exports a function of that name

    for _cls in (SoftmaxAttention, LinearAttention, FocusedLinearAttention):
        _thop_profile.register_hooks[_cls] = _thop_rule
except ImportError:
    pass
