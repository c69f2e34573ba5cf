"""Notebook 02's exercises: the focusing function f_p and one focused attention row."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .. import functional as Fn
from .check import Verdict, Wrong, check

__all__ = ["check_focus", "check_focused_row"]


def _vectors(seed: int, shape, p: float):
    g = torch.Generator().manual_seed(seed)
    return F.relu(torch.randn(*shape, generator=g)) + 0.05, p  # strictly positive for f_p: no all-zero vector


def _focus(x, p):
    return Fn.focus(x, p)


def check_focus(fn) -> Verdict:
    """Notebook 02, section 1: ``fn(x (..., d) non-negative, p) -> (..., d)``,
    f_p(x) = ‖x‖ / ‖x**p‖ · x**p over the last dim (paper Eq. 6)."""
    cases = [_vectors(0, (4,), 3.0), _vectors(1, (6, 8), 2.0), _vectors(2, (2, 5, 16), 5.0)]
    return check("focus", fn, _focus, cases, wrong=[
        Wrong(lambda x, p: x**p, "f_p keeps each vector's norm: multiply x**p by ‖x‖ / ‖x**p‖"),
        Wrong(lambda x, p: x**p / (x**p).norm(dim=-1, keepdim=True), "the result has x's norm, not norm 1: multiply by ‖x‖"),
        Wrong(lambda x, p: x**p * x.norm() / (x**p).norm(), "the norms are per vector, over the last dim (keepdim=True), not over the whole tensor"),
    ], hint="y = x**p; return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)")


def _focused_row(q, keys, p):
    phi_q, phi_k = Fn.focus(F.relu(q), p), Fn.focus(F.relu(keys), p)
    scores = phi_k @ phi_q
    return scores / scores.sum()


def _rows(seed: int, d: int, m: int, p: float):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(d, generator=g), torch.randn(m, d, generator=g), p


def check_focused_row(fn) -> Verdict:
    """Notebook 02, section 2: ``fn(q (d,), keys (M, d), p) -> (M,)``, the attention weights one query puts on
    M keys under the focused kernel: φ_p(x) = f_p(ReLU(x)), scores φ_p(q)·φ_p(k_j), divided by their sum."""
    cases = [_rows(0, 8, 10, 3.0), _rows(1, 16, 25, 2.0), _rows(2, 32, 7, 4.0)]

    def power_before_relu(q, keys, p):  # f_p on the raw features, then the ReLU
        def phi(x):
            y = x**p
            return F.relu(y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True))
        s = phi(keys) @ phi(q)
        return s / s.sum()

    return check("focused attention row", fn, _focused_row, cases, wrong=[
        Wrong(lambda q, keys, p: Fn.focus(F.relu(keys), p) @ Fn.focus(F.relu(q), p),
              "attention weights sum to 1: divide the scores by their sum (the normaliser)"),
        Wrong(power_before_relu, "the ReLU comes first: the power of a negative entry (even p) would turn it positive"),
        Wrong(lambda q, keys, p: torch.softmax(Fn.focus(F.relu(keys), p) @ Fn.focus(F.relu(q), p), dim=-1),
              "linear attention normalises by the sum of the scores, not by a softmax"),
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(F.relu(keys) @ F.relu(q)), "apply f_p to both φ(q) and every φ(k_j) before the dot products"),
    ], hint="phi = lambda x: focus(relu(x), p); scores = phi(keys) @ phi(q); return scores / scores.sum()")
