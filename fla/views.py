"""What the sliders of notebooks 02 and 03 show, as plain functions (the widgets only call these).

Every view takes the token map of ``fla.tokens.image_tokens`` (1, d, H, W) and returns numbers
and arrays; the ``plot_*`` functions draw them. Tests call the views directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from . import functional as Fn
from .tokens import similarity_attention

__all__ = [
    "KINDS",
    "attention_matrices",
    "FocusView",
    "focusing_view",
    "entropy_curve",
    "plot_focusing",
    "RankView",
    "rank_view",
    "rank_over_dim",
    "plot_rank",
]

KINDS = ("softmax", "linear", "focused")
LABELS = {"softmax": "softmax", "linear": "ReLU linear", "focused": "focused"}


@torch.no_grad()
def attention_matrices(tokens: torch.Tensor, p: float = 3.0, kernel_size: int = 5) -> dict:
    """kind -> (N, N) row-stochastic attention of the tokens on themselves (notebooks 02, 03).

    Softmax and ReLU linear ignore p; "focused" is FocusedLinearAttention's phi_p(Q) phi_p(K)^T
    without the DWC term. At p = 1 focusing is the identity, so "focused" equals "linear".
    """
    dim = tokens.shape[1]
    return {kind: similarity_attention(kind, dim, p, kernel_size).attention_matrix(tokens)[0, 0] for kind in KINDS}


@dataclass
class FocusView:
    """What notebook 02's widget shows for one setting of its controls."""

    p: float
    query: tuple[int, int]
    kind: str
    maps: dict  # kind -> (H, W) attention of the chosen query on every key
    entropy: dict  # kind -> row entropy (nats) of the chosen query
    mean_entropy: dict  # kind -> mean row entropy over all queries
    entropy_map: np.ndarray  # (H, W) row entropy of every query, for the chosen kind
    text: str = field(repr=False)


def focusing_view(tokens: torch.Tensor, p: float, query: tuple[int, int], kind: str = "focused") -> FocusView:
    """Attention of one query under softmax, ReLU linear and focused (exponent p) attention (notebook 02).

    query is (row, col) on the token grid; kind picks whose entropy the text reports and whose
    per-query entropy map is returned. The text is what the widget prints.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got kind={kind!r}")
    h, w = tokens.shape[-2:]
    row, col = query
    if not (0 <= row < h and 0 <= col < w):
        raise ValueError(f"query {query} is outside the {h}x{w} token grid")
    mats = attention_matrices(tokens, p)
    i = row * w + col
    ent = {k: Fn.row_entropy(a) for k, a in mats.items()}
    view = FocusView(
        p=float(p),
        query=(row, col),
        kind=kind,
        maps={k: a[i].reshape(h, w).numpy() for k, a in mats.items()},
        entropy={k: float(e[i]) for k, e in ent.items()},
        mean_entropy={k: float(e.mean()) for k, e in ent.items()},
        entropy_map=ent[kind].reshape(h, w).numpy(),
        text="",
    )
    others = ", ".join(f"{LABELS[k]} {view.entropy[k]:.3f}" for k in KINDS)
    view.text = f"p = {p:.2f} · query ({row}, {col}) · {LABELS[kind]} entropy {view.entropy[kind]:.3f} nats  [{others}]"
    return view


def entropy_curve(tokens: torch.Tensor, ps) -> np.ndarray:
    """Mean row entropy (nats) of focused attention at each p in ps (notebook 02)."""
    return np.array([float(Fn.row_entropy(attention_matrices(tokens, p)["focused"]).mean()) for p in ps])


def plot_focusing(view: FocusView, image: np.ndarray):
    """Image with the query, the three attention maps of that query, and the per-query entropy map (notebook 02)."""
    import matplotlib.pyplot as plt

    h, w = view.maps["softmax"].shape
    cell_h, cell_w = image.shape[0] / h, image.shape[1] / w
    fig, axes = plt.subplots(1, 5, figsize=(15, 3.8))
    axes[0].imshow(image)
    axes[0].add_patch(plt.Rectangle((view.query[1] * cell_w, view.query[0] * cell_h), cell_w, cell_h, fill=False, ec="red", lw=2))
    axes[0].set_title("query (red)")
    for ax, kind in zip(axes[1:4], KINDS):
        ax.imshow(image)
        ax.imshow(view.maps[kind], cmap="inferno", alpha=0.75, extent=(0, image.shape[1], image.shape[0], 0))
        title = LABELS[kind] + (f" p={view.p:g}" if kind == "focused" else "")
        ax.set_title(f"{title}\nentropy {view.entropy[kind]:.2f} nats")
    im = axes[4].imshow(view.entropy_map, cmap="viridis", vmin=0, vmax=np.log(h * w))
    axes[4].set_title(f"{LABELS[view.kind]}: entropy\nof every query")
    fig.colorbar(im, ax=axes[4], fraction=0.046)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


@dataclass
class RankView:
    """What notebook 03's widget shows for one setting of p and the DWC kernel size."""

    p: float
    kernel_size: int
    rtol: float
    ranks: dict  # name -> numerical rank ("focused + DWC": the minimum over head channels)
    full_rank_channels: int  # head channels whose equivalent matrix has rank N
    spectra: dict  # name -> singular values / largest, descending
    dwc: np.ndarray  # (N, N) DWC banded matrix of head channel 0
    text: str = field(repr=False)


@torch.no_grad()
def rank_view(tokens: torch.Tensor, p: float, kernel_size: int, rtol: float | None = None) -> RankView:
    """Numerical ranks and singular-value spectra of the N×N attention matrices (notebook 03).

    "focused + DWC" is FocusedLinearAttention's equivalent matrix for head channel c,
    attention + dwc_matrix[c] (paper Eq. 12); its rank is reported as the minimum over all c,
    its spectrum for c = 0. rtol defaults to N · eps(float32), numpy's matrix_rank rule.
    """
    dim, (h, w) = tokens.shape[1], tokens.shape[-2:]
    n = h * w
    rtol = n * torch.finfo(torch.float32).eps if rtol is None else rtol
    mats = attention_matrices(tokens, p, kernel_size)
    dwc = similarity_attention("focused", dim, p, kernel_size).dwc_matrix(h, w)  # (d, N, N)
    equivalent = mats["focused"] + dwc
    ranks = {k: int(Fn.numerical_rank(a, rtol)) for k, a in mats.items()}
    per_channel = Fn.numerical_rank(equivalent, rtol)
    ranks["focused + DWC"] = int(per_channel.min())
    named = {**mats, "focused + DWC": equivalent[0]}
    spectra = {}
    for k, a in named.items():
        s = torch.linalg.svdvals(a.double())
        spectra[k] = (s / s[0]).numpy()
    full = int((per_channel == n).sum())
    text = f"p = {p:.2f} · DWC {kernel_size}×{kernel_size} · ranks: " + ", ".join(f"{k} {r}" for k, r in ranks.items())
    text += f" (min over {dim} channels; {full} of {dim} have rank {n})"
    return RankView(float(p), int(kernel_size), float(rtol), ranks, full, spectra, dwc[0].numpy(), text)


def rank_over_dim(image: np.ndarray, dims, grid: int = 14) -> list[int]:
    """Numerical rank of ReLU linear attention for tokens of each head size d: at most min(N, d) (notebook 03)."""
    from .tokens import image_tokens

    return [int(Fn.numerical_rank(attention_matrices(image_tokens(image, grid, d))["linear"])) for d in dims]


def plot_rank(view: RankView):
    """Singular-value spectra with the rank threshold, and the DWC banded matrix (notebook 03)."""
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
    for name, s in view.spectra.items():
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-18), label=f"{name} (rank {view.ranks[name]})")
    ax.axhline(view.rtol, color="gray", ls="--", lw=1, label=f"tolerance {view.rtol:.1e}")
    ax.set_xlabel("index i")
    ax.set_ylabel("σ_i / σ_1")
    ax.set_title(f"singular values, p={view.p:g}, DWC {view.kernel_size}×{view.kernel_size}")
    ax.legend(fontsize=8)
    lim = np.abs(view.dwc).max()
    im = bx.imshow(view.dwc, cmap="RdBu_r", vmin=-lim, vmax=lim)
    bx.set_title("DWC as an N×N matrix (channel 0)")
    bx.set_xlabel("key token j")
    bx.set_ylabel("query token i")
    fig.colorbar(im, ax=bx, fraction=0.046)
    fig.tight_layout()
    return fig
