"""Notebook 01's exercises: softmax and linear attention written by hand, and the order that costs less."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import functional as Fn
from ..course.complexity import crossover
from .check import Verdict, Wrong, check

__all__ = ["check_softmax_attention", "check_linear_attention", "check_kv_crossover"]


def _qkv(seed: int, n: int, m: int, d: int, dv: int, positive: bool = False):
    g = torch.Generator().manual_seed(seed)
    q, k, v = torch.randn(n, d, generator=g), torch.randn(m, d, generator=g), torch.randn(m, dv, generator=g)
    return (Fn.relu_kernel(q), Fn.relu_kernel(k), v) if positive else (q, k, v)


# (N queries, M keys, d, d_v): N != M and d != d_v, so a transposed or swapped axis cannot pass
_SHAPES = [(5, 7, 4, 3), (16, 9, 8, 8), (33, 40, 16, 5)]


def _softmax_attention(q, k, v):
    return torch.softmax(q @ k.T / q.shape[-1] ** 0.5, dim=-1) @ v


def check_softmax_attention(fn) -> Verdict:
    """Notebook 01, section 1: ``fn(q (N, d), k (M, d), v (M, d_v)) -> (N, d_v)``, softmax(q kᵀ/√d) v."""
    cases = [_qkv(i, *s) for i, s in enumerate(_SHAPES)]
    return check("softmax attention", fn, _softmax_attention, cases, wrong=[
        Wrong(lambda q, k, v: torch.softmax(q @ k.T, dim=-1) @ v, "divide the scores by √d (d = q.shape[-1]) before the softmax"),
        Wrong(lambda q, k, v: torch.softmax(q @ k.T / q.shape[-1] ** 0.5, dim=0) @ v,
              "the softmax runs over the keys of each query: dim=-1, so every row sums to 1"),
        Wrong(lambda q, k, v: F.softmax(q @ k.T / k.shape[0] ** 0.5, dim=-1) @ v, "the scale is √d (the head size), not √M"),
    ], hint="scores = q @ k.T / √d; weights = softmax over each row; output = weights @ v")


def _linear_attention(q, k, v):
    return Fn.linear_attention(q, k, v, "kv")


def check_linear_attention(fn) -> Verdict:
    """Notebook 01, section 1: ``fn(phi_q (N, d), phi_k (M, d), v (M, d_v)) -> (N, d_v)`` in the kv order,
    phi_q (phi_kᵀ v) / (phi_q · Σ_j phi_k_j); the features are already non-negative."""
    cases = [_qkv(i, *s, positive=True) for i, s in enumerate(_SHAPES)]
    return check("linear attention", fn, _linear_attention, cases, wrong=[
        Wrong(lambda q, k, v: q @ (k.T @ v), "each row must be divided by its normaliser φ(q_i)·Σ_j φ(k_j), as softmax divides by its row sum"),
        Wrong(lambda q, k, v: q @ (k.T @ v) / k.sum(), "the normaliser is per query: φ(q_i)·Σ_j φ(k_j), a (N, 1) column"),
        Wrong(lambda q, k, v: q @ (k.T @ v) / (q @ k.T).sum(), "the normaliser is per query row, (N, 1): sum over the keys only"),
    ], hint="numerator = phi_q @ (phi_k.T @ v); normaliser = phi_q @ phi_k.sum(0) as a column (N, 1)")


def check_kv_crossover(fn) -> Verdict:
    """Notebook 01, section 3: ``fn(d, dv) -> int``, the smallest N (= M) at which the kv order costs fewer
    multiply-adds than the qk order, (N + M)·d·d_v < N·M·(d + d_v)."""
    cases = [(64, 16), (64, 64), (8, 32), (3, 5), (1, 1)]
    return check("kv crossover", fn, crossover, cases, wrong=[
        Wrong(lambda d, dv: d, "with d ≠ d_v the crossover is not d: solve 2N·d·d_v < N²(d + d_v) for N"),
        Wrong(lambda d, dv: 2 * d * dv // (d + dv),
              "the smallest integer strictly above 2·d·d_v/(d + d_v): at equality both orders cost the same"),
        Wrong(lambda d, dv: -(-2 * d * dv // (d + dv)),
              "the smallest integer strictly above 2·d·d_v/(d + d_v): at equality both orders cost the same"),
        Wrong(lambda d, dv: 2 * d * dv / (d + dv), "N counts tokens: the smallest integer strictly above 2·d·d_v/(d + d_v)"),
    ], hint="kv costs 2N·d·d_v, qk costs N²(d + d_v); the kv order wins when N > 2·d·d_v/(d + d_v)")
