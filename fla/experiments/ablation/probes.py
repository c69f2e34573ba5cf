"""Look inside the trained models of the ablation (notebook 04): where a query's attention goes, and how sharply.

- :func:`attention_maps` — a block's attention weights on the tokens it really sees (its LN'd input).
- :func:`answer_readout` — on a recall or retrieval batch, the answer mass (the weight a query puts on
  *the* cell holding its key: 1 is a perfect lookup, 1/N uniform) and the row entropy (nats; log N is
  uniform) of the head with the most answer mass: the paper's mechanism, read off a trained model.
- :func:`readout` — a task's probe columns of the CSV (those two, and on retrieval the accuracy, mass and
  entropy at every scored N).
"""
from __future__ import annotations

import math

import torch

from ... import functional as Fn

__all__ = ["attention_maps", "answer_readout", "readout"]


@torch.no_grad()
def attention_maps(model, inputs, block: int = 0) -> torch.Tensor:
    """(B, heads, N, N) row-stochastic weights of ``model.blocks[block]``'s mixer on ``inputs`` (DWC term excluded)."""
    model.eval()
    x = model.features(inputs)[block]
    return model.blocks[block].mixer.attention_matrix(x)


@torch.no_grad()
def answer_readout(model, b, block: int = 0) -> dict:
    """``mass`` and ``entropy`` of the head with the most answer mass, averaged over the queries of batch ``b``;
    NaN for a mixer without attention weights (the attention-free control)."""
    if not hasattr(model.blocks[block].mixer, "attention_matrix"):
        return {"mass": math.nan, "entropy": math.nan}
    a = attention_maps(model, b, block)  # (B, heads, N, N)
    bi, qi, ai = b.answer_cells()
    rows = a[bi, :, qi]  # (Q, heads, N)
    mass = Fn.answer_mass(rows.transpose(0, 1), ai).mean(dim=-1)  # (heads,)
    head = int(mass.argmax())
    return {"mass": float(mass[head]), "entropy": float(Fn.row_entropy(rows[:, head]).mean())}


@torch.no_grad()
def readout(task, model, device, size: int = 32) -> dict:
    """The probe columns of one trained model: none on helmet; mass and entropy on recall and retrieval; on
    retrieval also ``acc_N``, ``mass_N``, ``entropy_N`` at every N of its ``eval_sides`` (its own test sets)."""
    if not hasattr(task, "probe_batch"):
        return {}
    out = answer_readout(model, task.probe_batch(size).to(device))
    for side in getattr(task, "eval_sides", ()):
        other, n = task.at(side), side * side
        out[f"acc_{n}"] = other.evaluate(model, device, limit=64)
        at_n = answer_readout(model, other.probe_batch(min(size, 16)).to(device))
        out[f"mass_{n}"], out[f"entropy_{n}"] = at_n["mass"], at_n["entropy"]
    return out
