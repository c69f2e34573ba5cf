"""Notebook 03's exercises: the numerical rank, and a depthwise convolution written as a matrix."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import functional as Fn
from .check import Verdict, Wrong, check

__all__ = ["check_numerical_rank", "check_dwc_matrix"]


def _matrix(seed: int, n: int, m: int, r: int | None):
    g = torch.Generator().manual_seed(seed)
    if r is None:
        return (torch.randn(n, m, generator=g),)
    # a product through r columns: rank r exactly, but float32 rounding leaves tiny singular values, not zeros
    return ((torch.randn(n, r, generator=g).abs() @ torch.randn(r, m, generator=g).abs()),)


def _rank(matrix):
    return int(Fn.numerical_rank(matrix))


def check_numerical_rank(fn) -> Verdict:
    """Notebook 03, section 1: ``fn(matrix (N, M) float32) -> int``, the number of singular values above
    max(N, M) · ε · σ_max, ε the float32 machine epsilon (numpy's rule)."""
    cases = [_matrix(0, 40, 40, 5), _matrix(1, 64, 48, 16), _matrix(2, 30, 50, None), _matrix(3, 100, 100, 8)]
    return check("numerical rank", fn, _rank, cases, wrong=[
        Wrong(lambda m: int((torch.linalg.svdvals(m) > 0).sum()),
              "rounding leaves tiny non-zero singular values: count only those above max(N, M)·ε·σ_max"),
        Wrong(lambda m: min(m.shape), "compute the singular values (torch.linalg.svdvals); the shape only bounds the rank"),
    ], hint="s = torch.linalg.svdvals(matrix); eps = torch.finfo(matrix.dtype).eps; count s > max(N, M)·eps·s[0]")


def _dwc(kernel, h, w):
    return Fn.dwc_matrix(kernel[None, None], h, w)[0]


def _kernels(seed: int, k: int, h: int, w: int):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(k, k, generator=g, dtype=torch.float64), h, w


def check_dwc_matrix(fn) -> Verdict:
    """Notebook 03, section 3: ``fn(kernel (k, k), H, W) -> (N, N)``, N = H·W: the matrix D with
    y = D @ x for a k×k convolution (torch's conv2d, zero padding k // 2) of one channel, grids flattened row-major."""
    cases = [_kernels(0, 3, 4, 4), _kernels(1, 3, 3, 5), _kernels(2, 5, 6, 4)]

    def circular(kernel, h, w):
        k = kernel.shape[-1]
        eye = torch.eye(h * w, dtype=kernel.dtype).reshape(h * w, 1, h, w)
        cols = F.conv2d(F.pad(eye, (k // 2,) * 4, mode="circular"), kernel[None, None])
        return cols.flatten(1).T

    return check("DWC matrix", fn, _dwc, cases, wrong=[
        # Dᵀ is also the matrix of the flipped kernel: one mistake, two ways to make it
        Wrong(lambda kernel, h, w: _dwc(kernel, h, w).T,
              "you built Dᵀ (or flipped the kernel; conv2d does not flip it): row i of D holds the weights output pixel i gives its inputs"),
        Wrong(circular, "zero padding: a pixel near the border has fewer neighbours, it does not wrap around"),
    ], hint="apply the conv to each basis image e_j (torch.eye(N) reshaped to (N, 1, H, W)): the output, flattened, is column j of D")
