"""Look inside the trained models of the ablation (notebook 04): where attention goes, how sharp, what rank.

- :func:`attention` — a block's attention weights on the tokens it really sees (its LN'd input).
- :func:`answer_mass` — on the recall task, the weight each query puts on *the* cell holding its
  key (1 would be a perfect lookup; 1/N is uniform).
- :func:`recall_probe` — the CSV's probe columns of a recall or needle model: answer mass and row
  entropy of its best head, and how many directions the (focused) pair keys use (``key_directions``).
- :func:`plot_recall_attention` — one query's attention row of several trained models, side by side.
- :func:`trained_ranks` — numerical rank of the trained attention matrix A and of the paper's
  equivalent matrix A + D_c (DWC of head channel c as a banded matrix), as notebook 03 measures
  on random features.
"""
from __future__ import annotations

import torch
from einops import rearrange

from ... import functional as Fn
from ...figures import panels
from .tasks import PAIR, QUERY

__all__ = ["attention_maps", "answer_mass", "recall_probe", "key_directions", "effective_rank", "plot_recall_attention",
           "trained_ranks"]


@torch.no_grad()
def attention_maps(model, inputs, block: int = 0) -> torch.Tensor:
    """(B, heads, N, N) row-stochastic weights of ``model.blocks[block]``'s mixer on ``inputs`` (DWC term excluded)."""
    model.eval()
    x = model.features(inputs)[block]
    return model.blocks[block].mixer.attention_matrix(x)


def _answer_cells(b) -> tuple[torch.Tensor, torch.Tensor]:
    """For every query cell of a recall batch: (batch index, query cell, answer cell), flat cell indices."""
    role, key = b.role.flatten(1), b.key.flatten(1)
    bi, qi = torch.nonzero(role == QUERY, as_tuple=True)
    same = (key[bi] == key[bi, qi][:, None]) & (role[bi] == PAIR)  # (Q, N): the pair cell with the query's key
    return bi, qi, same.float().argmax(dim=1)


@torch.no_grad()
def answer_mass(model, b, block: int = 0) -> torch.Tensor:
    """(heads,) mean weight a query puts on the cell that holds its key, per head (recall task).

    Averaged over every query of the batch ``b``; compare with 1/N, what uniform attention gives.
    """
    a = attention_maps(model, b, block)  # (B, heads, N, N)
    bi, qi, ai = _answer_cells(b)
    return a[bi, :, qi, ai].mean(dim=0)


def effective_rank(m: torch.Tensor) -> torch.Tensor:
    """exp(entropy of the normalised singular values) of each (..., r, d) matrix: r for r orthogonal rows
    of equal norm, 1 for rows that all point one way (Roy & Vetterli 2007)."""
    s = torch.linalg.svdvals(m.double())
    p = s / s.sum(dim=-1, keepdim=True).clamp_min(1e-300)
    return torch.exp(-(p * torch.log(p.clamp_min(1e-300))).sum(dim=-1))


@torch.no_grad()
def key_directions(model, b, block: int = 0) -> dict:
    """How many directions the pair cells' key features phi(k) use, per head, averaged over the grids of ``b``.

    ``key_argmax``: distinct argmax channels among a grid's pair keys (f_p pushes each key towards
    its largest channel: keys that share it become hard to tell apart); ``key_erank``: effective
    rank of the pairs × d matrix of unit-normalised keys. NaN for softmax (no feature map).
    """
    mixer = model.blocks[block].mixer
    if not hasattr(mixer, "features"):
        return {"key_argmax": float("nan"), "key_erank": float("nan")}
    x = model.features(b)[block]
    q, k, _ = mixer._qkv(x)
    _, phi_k = mixer.features(q.float(), k.float(), fast=False)  # (B, C, N)
    keys = rearrange(phi_k, "b (h d) n -> b h n d", h=mixer.num_heads)
    pair = b.role.flatten(1) == PAIR  # the same count in every grid
    keys = torch.stack([keys[i][:, pair[i]] for i in range(len(pair))])  # (B, heads, pairs, d)
    distinct = [[len(set(keys[i, h].argmax(dim=-1).tolist())) for h in range(keys.shape[1])] for i in range(len(keys))]
    unit = keys / keys.norm(dim=-1, keepdim=True).clamp_min(1e-30)
    return {"key_argmax": float(torch.tensor(distinct, dtype=torch.float64).mean()),
            "key_erank": float(effective_rank(unit).mean())}


@torch.no_grad()
def recall_probe(model, b, block: int = 0) -> dict:
    """The probe columns of a recall/needle row: ``mass`` (mean weight a query puts on its answer cell) and
    ``entropy`` (mean entropy of the query rows, nats; log N is uniform) of the head with the most mass,
    plus :func:`key_directions`."""
    a = attention_maps(model, b, block)  # (B, heads, N, N)
    bi, qi, ai = _answer_cells(b)
    mass = a[bi, :, qi, ai].mean(dim=0)  # (heads,)
    head = int(mass.argmax())
    entropy = Fn.row_entropy(a[bi, head, qi]).mean()
    return {"mass": float(mass[head]), "entropy": float(entropy), **key_directions(model, b, block)}


def plot_recall_attention(models: dict, b, index: int = 0, query: int = 0, block: int = 0):
    """One query's attention over the grid for each trained model (the head that finds the answer best).

    ``models``: label -> trained recall model; ``b``: a recall batch; ``index``: which grid;
    ``query``: which of its queries. The answer cell is ringed, the other pair cells dotted.
    """
    h, w = b.role.shape[-2:]
    bi, qi, ai = _answer_cells(b)
    mine = torch.nonzero(bi == index).flatten()
    q, ans = int(qi[mine[query]]), int(ai[mine[query]])
    pairs = torch.nonzero(b.role[index].flatten() == PAIR).flatten()
    fig, axes = panels(len(models), per_row=3, panel_height=2.9)  # rows of three: legible at the page's width
    for ax, (label, model) in zip(axes, models.items()):
        a = attention_maps(model, b, block)[index, :, q]  # (heads, N)
        head = int(a[:, ans].argmax())
        im = ax.imshow(rearrange(a[head], "(h w) -> h w", h=h).numpy(), cmap="viridis", vmin=0)
        ax.scatter([int(c) % w for c in pairs], [int(c) // w for c in pairs], s=12, c="white", marker=".")
        ax.scatter([ans % w], [ans // w], s=220, facecolors="none", edgecolors="red", linewidths=2)
        ax.scatter([q % w], [q // w], s=120, c="red", marker="x")
        ax.set(title=f"{label}\nhead {head}: {float(a[head, ans]):.2f} on the answer", xticks=[], yticks=[])
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle("× query · ○ the cell holding its key · dots: the other pair cells", fontsize=9)
    fig.tight_layout()
    return fig


@torch.no_grad()
def trained_ranks(model, inputs, block: int = 0, index: int = 0, rtol: float | None = None) -> dict:
    """Numerical ranks of the trained mixer's matrices on one input (notebook 04, against notebook 03).

    ``"A"``: rank of the attention matrix, per head; ``"A + D_c"`` (modules with a DWC): the
    smallest rank of A_h + D_c over heads h and head channels c, the paper's equivalent attention.
    Also N and the head dim d, the bound's two sides. rtol: numpy's default, N · eps(float32).
    """
    a = attention_maps(model, inputs, block)[index]  # (heads, N, N)
    mixer = model.blocks[block].mixer
    n, d = a.shape[-1], mixer.head_dim
    rtol = n * torch.finfo(torch.float32).eps if rtol is None else rtol
    out = {"N": n, "d": d, "A": [int(r) for r in Fn.numerical_rank(a, rtol)]}
    if getattr(mixer, "dwc", None) is not None:
        h, w = model.features(inputs)[block].shape[-2:]
        dwc = mixer.dwc_matrix(h, w)  # (d, N, N)
        out["A + D_c"] = int(Fn.numerical_rank(a[:, None] + dwc[None], rtol).min())
    return out
