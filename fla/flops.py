"""Counting the arithmetic of the attention modules two ways: formulas and real counters (notebook 01).

Importing this module registers a thop rule for the three attention modules, so
``thop.profile`` and ultralytics' ``model.info()`` count their projections and token mixing.
"""
from __future__ import annotations

import torch
from torch.utils.flop_counter import FlopCounterMode

from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from .functional import module_macs, spatial_reduction_macs

__all__ = ["formula_macs", "count_flops"]


def formula_macs(module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward of an attention module of ``fla.attention`` on x, by ``fla.functional.module_macs``.

    Linear attention is counted in the linear order phi(Q)(phi(K)^T V), which is what runs whenever
    the map has more tokens than a head has channels (every YOLO map); below that the module switches
    to the cheaper quadratic order. A count that does not depend on the switch grows exactly linearly
    with the image, which ultralytics' FLOP extrapolation from small proxy images relies on.
    Equals ``count_flops(module, x) / 2`` wherever the module takes the linear order.
    """
    b, _, h, w = x.shape
    sr = getattr(module, "sr_ratio", 1)
    dwc = getattr(module, "dwc", None)
    kind = "softmax" if isinstance(module, SoftmaxAttention) else "linear"
    return b * module_macs(h * w, module.dim, module.num_heads, kind, dwc.kernel_size[0] if dwc is not None else 0,
                           m=(h // sr) * (w // sr), sr_ratio=sr)


def _thop_rule(module, inputs, output):
    """The modules apply their Linears' weights to channel-first tokens themselves (no Linear call
    for thop to hook), so the rule counts the projections as well as the token mixing; the spatial
    reduction's conv is an ``nn.Conv2d`` that thop counts with its own rule."""
    x = inputs[0]
    sr = getattr(module, "sr_ratio", 1)
    m = (x.shape[-2] // sr) * (x.shape[-1] // sr)
    module.total_ops += formula_macs(module, x) - x.shape[0] * spatial_reduction_macs(m, module.dim, sr)


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
