"""Notebook 05's exercises: what one attention block costs on a YOLO map, and a focusing function that survives fp16."""
from __future__ import annotations

import torch

from .. import functional as Fn
from .check import Verdict, Wrong, check

__all__ = ["check_block_macs", "check_fp16_focus"]


def _block_macs(h: int, w: int, c: int, heads: int, kappa: int) -> int:
    return Fn.module_macs(h * w, c, heads, "linear", kappa)


def check_block_macs(fn) -> Verdict:
    """Notebook 05, section 4: ``fn(H, W, C, heads, kappa) -> int``, the multiply-adds of one
    ``FocusedLinearAttention(C, heads, kernel_size=kappa)`` on an H×W map: the four C×C projections,
    every head's kv-order mixing with its normaliser, and the κ×κ DWC on V (biases not counted)."""
    cases = [(20, 20, 128, 4, 5), (40, 30, 64, 2, 3), (80, 60, 32, 1, 5), (15, 20, 256, 8, 7)]
    return check("FLA block multiply-adds", fn, _block_macs, cases, wrong=[
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - Fn.projection_macs(h * w, c),
              "add the four C×C projections (q, k, v and output): 4·N·C²"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - h * w * c * k * k,
              "add the DWC: one κ×κ depthwise conv over all C value channels, N·C·κ²"),
        Wrong(lambda h, w, c, heads, k: Fn.projection_macs(h * w, c) + Fn.attention_macs(h * w, c, "linear") + h * w * c * k * k,
              "split into heads: each head mixes with d = C / heads, (2N·d² + N·d) per head"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - heads * h * w * (c // heads),
              "the normaliser φ(Q)·Σφ(K) costs N·d per head too"),
    ], hint="N = H·W, d = C/heads: 4·N·C² + heads·(2·N·d² + N·d) + N·C·κ²")


def _fp16_cases():
    g = torch.Generator().manual_seed(0)
    big = (torch.rand(64, 32, generator=g) * 60).half()  # features of a few tens: (60)³ > 65504, fp16's largest number
    small = (torch.rand(8, 16, generator=g) * 2).half()
    return [(big, 3.0), (small, 3.0), (big, 5.0)]


def _fp16_focus(x, p):
    return Fn.focus(x.float(), p).half()


def check_fp16_focus(fn) -> Verdict:
    """Notebook 05, section 7: ``fn(x (..., d) fp16, non-negative, p) -> (..., d) fp16``, f_p computed in fp16 without
    overflow: finite and equal to the fp32 result (to fp16 precision) for features of a few tens."""
    def naive(x, p):
        y = x**p
        return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)

    return check("fp16-safe focus", fn, _fp16_focus, _fp16_cases(), rtol=1e-2, atol=1e-3, wrong=[
        Wrong(naive, "x**p overflows fp16 (largest number 65504) once x > 40 at p = 3: divide x by its largest entry "
                     "first; f_p only sees the direction"),
    ], hint="m = x.amax(dim=-1, keepdim=True); y = (x / m) ** p; return y * x.norm(...) / y.norm(...)")
