"""What notebooks 02 and 03 compute and draw, on the paper's equations (``fla.functional``).

Every view takes the token map of ``fla.course.tokens.image_tokens`` (1, d, H, W) and uses the tokens
themselves as queries, keys and values (identity projections, no positional encoding), so each
attention map answers "which patches look like this one?". The matrices are built from the
reference functions, not from the modules' internals; ``tests/test_views.py`` checks that they
equal the modules' own ``attention_matrix`` and ``dwc_matrix``. The widgets only call these.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .. import functional as Fn
from ..runtime import torch_threads

__all__ = [
    "KINDS",
    "token_rows",
    "attention_matrices",
    "FocusView",
    "focusing_view",
    "entropy_curve",
    "temperature_curve",
    "focusing_pairs",
    "query_scale_rows",
    "plot_focusing",
    "dwc_kernels",
    "RankView",
    "rank_view",
    "rank_over_dim",
    "dwc_strength_curve",
    "plot_rank",
]

KINDS = ("softmax", "linear", "focused")
LABELS = {"softmax": "softmax", "linear": "ReLU linear", "focused": "focused"}


def token_rows(tokens: torch.Tensor) -> torch.Tensor:
    """(1, d, H, W) token map -> (N, d) matrix, one token per row, rows in raster order (notebooks 02, 03)."""
    return rearrange(tokens, "1 d h w -> (h w) d")


@torch.no_grad()
def attention_matrices(tokens: torch.Tensor, p: float = 3.0, logit_scale: float | None = None) -> dict:
    """kind -> (N, N) row-stochastic attention of the tokens on themselves (notebooks 02, 03).

    softmax: softmax(x xᵀ · logit_scale), logit_scale = 1/√d by default (paper §3.1, Eq. 1);
    linear:  rows of φ(x)φ(x)ᵀ normalised, φ = ReLU (+1e-6) (§3.2, Eqs. 2-3);
    focused: the same with φ_p(x) = f_p(φ(x)) (§4.1, Eqs. 5-6), without the DWC term.
    At p = 1 focusing is the identity, so "focused" equals "linear".
    """
    x = token_rows(tokens)
    scale = x.shape[1] ** -0.5 if logit_scale is None else logit_scale
    phi = Fn.relu_kernel(x)
    phi_p = Fn.focus(phi, p)
    return {
        "softmax": torch.softmax(x @ x.T * scale, dim=-1),
        "linear": Fn.normalise_rows(phi @ phi.T),
        "focused": Fn.normalise_rows(phi_p @ phi_p.T),
    }


# --- notebook 02: focusing -----------------------------------------------------------------------


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


def temperature_curve(tokens: torch.Tensor, scales, p: float = 3.0) -> dict:
    """kind -> mean row entropy when every q·k is multiplied by c, for each c in scales (notebook 02).

    Softmax gets logits c · x xᵀ; the linear kinds get the tokens √c · x, which multiplies each
    q·k by c too. ReLU and f_p are positively homogeneous (φ(tx) = tφ(x)), so the row
    normalisation cancels t: the linear kinds have no temperature to turn.
    """
    out = {k: [] for k in KINDS}
    for c in scales:
        mats = attention_matrices(tokens * float(c) ** 0.5, p, logit_scale=1.0)
        for k, a in mats.items():
            out[k].append(float(Fn.row_entropy(a).mean()))
    return {k: np.array(v) for k, v in out.items()}


@torch.no_grad()
def focusing_pairs(p: float, n_pairs: int = 100_000, dim: int = 4, seed: int = 0) -> dict:
    """Proposition 1 (paper §4.1, Eqs. 7-8) counted on random pairs at one p (notebook 02).

    Draws n_pairs pairs x, y = ReLU(Gaussian) + 1e-6 in float64, keeps those whose largest
    entry is clearly positive, and compares cos(f_p(x), f_p(y)) with cos(x, y) (f_p keeps
    norms, so this is the paper's comparison of inner products). Returns the counts of pairs
    that share their largest channel ("same") and that do not ("different"), and the fraction
    of each that moves against the proposition's direction at this p.
    """
    g = torch.Generator().manual_seed(seed)
    x, y = Fn.relu_kernel(torch.randn(2, n_pairs, dim, generator=g, dtype=torch.float64)).unbind()
    keep = (x.amax(-1) > 1e-3) & (y.amax(-1) > 1e-3)  # an all-zero ReLU vector has no largest entry
    x, y = x[keep], y[keep]
    before = F.cosine_similarity(x, y, dim=-1)
    after = F.cosine_similarity(Fn.focus(x, p), Fn.focus(y, p), dim=-1)
    same = x.argmax(-1) == y.argmax(-1)
    return {
        "p": float(p),
        "same": int(same.sum()),
        "different": int((~same).sum()),
        "same_less_similar": float((after < before)[same].double().mean()),
        "different_more_similar": float((after > before)[~same].double().mean()),
    }


@torch.no_grad()
def query_scale_rows(tokens: torch.Tensor, query: int, lambdas, p: float = 3.0, bias: float = -0.5) -> dict:
    """Row ``query`` of attention when that query is multiplied by λ (keys unchanged), for each λ (notebook 02).

    kind -> {"rows": (len(lambdas), N), "entropy": (len(lambdas),), "change": max |row(λ) − row(1)| over
    the λ}. Kinds: softmax (logits λ q·k/√d: λ is its temperature), ReLU linear and focused (exponent p) —
    positively homogeneous features, φ(λq) = λφ(q), so λ cancels in the row and q, λq get the same weights:
    the map from a query to its row is not injective (Han et al., NeurIPS 2024) — and ReLU with a
    ``bias`` b added to every channel, φ(x) = ReLU(x + b) + 1e-6, no longer homogeneous, whose row moves with λ.
    """
    x = token_rows(tokens)
    q, lambdas = x[query], [float(t) for t in lambdas]
    if 1.0 not in lambdas:
        raise ValueError("lambdas must contain 1 (the query as it is), the row the others are compared with")
    feats = {
        "linear": Fn.relu_kernel,
        "focused": lambda t: Fn.focus(Fn.relu_kernel(t), p),
        "linear + bias": lambda t: Fn.relu_kernel(t + bias),
    }
    out = {"softmax": torch.stack([torch.softmax(t * q @ x.T * x.shape[1] ** -0.5, dim=-1) for t in lambdas])}
    for kind, phi in feats.items():
        out[kind] = torch.stack([Fn.normalise_rows(phi(x) @ phi(t * q)) for t in lambdas])
    one = lambdas.index(1.0)
    return {k: {"rows": r.numpy(), "entropy": Fn.row_entropy(r).numpy(), "change": float((r - r[one]).abs().max())}
            for k, r in out.items()}


def plot_focusing(view: FocusView, image: np.ndarray):
    """The attention maps of the query (red square) under softmax, ReLU linear and focused attention over the image,
    and the per-query entropy map; two by two, to be read at the width of a page (notebook 02)."""
    import matplotlib.pyplot as plt

    h, w = view.maps["softmax"].shape
    cell_h, cell_w = image.shape[0] / h, image.shape[1] / w
    fig, axes = plt.subplots(2, 2, figsize=(7.5, 7.2))
    axes = axes.ravel()
    for ax, kind in zip(axes[:3], KINDS):
        ax.imshow(image)
        shown = ax.imshow(view.maps[kind], cmap="inferno", alpha=0.75, extent=(0, image.shape[1], image.shape[0], 0))
        fig.colorbar(shown, ax=ax, fraction=0.046, label="attention weight")  # each map on its own scale
        title = LABELS[kind] + (f" p={view.p:g}" if kind == "focused" else "")
        ax.set_title(f"{title}: entropy {view.entropy[kind]:.2f} nats")
    im = axes[3].imshow(view.entropy_map, cmap="viridis", vmin=0, vmax=np.log(h * w),
                        extent=(0, image.shape[1], image.shape[0], 0))
    axes[3].set_title(f"{LABELS[view.kind]}: entropy of every query")
    fig.colorbar(im, ax=axes[3], fraction=0.046, label="nats")
    for ax in axes:
        ax.add_patch(plt.Rectangle((view.query[1] * cell_w, view.query[0] * cell_h), cell_w, cell_h, fill=False,
                                   ec="red", lw=2))
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"query ({view.query[0]}, {view.query[1]}): the red square")
    fig.tight_layout()
    return fig


# --- notebook 03: rank ---------------------------------------------------------------------------


def dwc_kernels(channels: int, kernel_size: int, seed: int = 0) -> torch.Tensor:
    """(channels, 1, k, k) depthwise kernels as an untrained module has them (notebook 03).

    PyTorch's default ``nn.Conv2d`` initialisation, U(-1/k, 1/k), drawn from ``seed`` without
    touching the global random state.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        conv = torch.nn.Conv2d(channels, channels, kernel_size, groups=channels, bias=False)
    return conv.weight.detach()


def _svdvals(m: torch.Tensor) -> torch.Tensor:
    """Singular values in float64, batched over leading dims, on one CPU thread: LAPACK's small
    SVDs gain nothing from a second thread, and on a busy machine two threads waiting for each
    other took 14x longer (23 s vs 1.6 s for 64 matrices of 196×196)."""
    with torch_threads(1):
        return torch.linalg.svdvals(m.double())


#: Tolerances of the rank table besides the default N · eps(float32).
LOOSE_RTOLS = (1e-4, 1e-2)


@dataclass
class RankView:
    """What notebook 03's widget shows for one setting of p and the DWC kernel size."""

    p: float
    kernel_size: int
    rtol: float
    eps: float  # size of the identity in the control A + εI
    ranks: dict  # name -> numerical rank at rtol ("focused + DWC": the minimum over head channels)
    table: dict  # name -> {"σ1", "max |entry|", "rank", "rank@1e-4", "rank@1e-2", "effective rank"}
    channel_ranks: np.ndarray  # (d,) rank of A + D_c for every head channel c
    dwc_ranks: np.ndarray  # (d,) rank of D_c alone
    spectra: dict  # name -> singular values / largest, descending
    dwc: np.ndarray  # (N, N) DWC banded matrix of head channel 0
    text: str = field(repr=False)


@torch.no_grad()
def rank_view(tokens: torch.Tensor, p: float, kernel_size: int, rtol: float | None = None, eps: float = 1e-4) -> RankView:
    """Ranks and singular-value spectra of the N×N matrices, with controls (notebook 03).

    A is focused attention (p); D_c the DWC of head channel c as a banded matrix (paper §4.2,
    Eqs. 10-11: the equivalent matrix is A + D_c). Besides softmax, ReLU linear, A and A + D_c,
    the view measures D_c alone and A + εI (the identity, like the block's residual, is also
    "full rank"), each by the numerical rank at rtol (default N · eps(float32), numpy's rule),
    at the looser tolerances ``LOOSE_RTOLS`` and by the effective rank. One SVD per matrix:
    every measure is read off the same singular values.
    """
    d, (h, w) = tokens.shape[1], tokens.shape[-2:]
    n = h * w
    rtol = n * torch.finfo(torch.float32).eps if rtol is None else rtol
    mats = attention_matrices(tokens, p)
    a = mats["focused"]
    dwc = Fn.dwc_matrix(dwc_kernels(d, kernel_size), h, w)  # (d, N, N)
    named = {
        **mats,
        "DWC D_0 alone": dwc[0],
        "focused + D_0": a + dwc[0],
        f"focused + {eps:g}·I": a + eps * torch.eye(n),
    }
    s = {k: _svdvals(m) for k, m in named.items()}
    s_channels = _svdvals(a + dwc)  # (d, N), one SVD per channel
    s_dwc = _svdvals(dwc)
    table = {
        k: {
            "σ1": float(v[0]),
            "max |entry|": float(named[k].abs().max()),
            "rank": int(Fn.spectrum_rank(v, rtol)),
            **{f"rank@{t:g}": int(Fn.spectrum_rank(v, t)) for t in LOOSE_RTOLS},
            "effective rank": float(Fn.effective_rank(v)),
        }
        for k, v in s.items()
    }
    channel_ranks, dwc_ranks = Fn.spectrum_rank(s_channels, rtol).numpy(), Fn.spectrum_rank(s_dwc, rtol).numpy()
    ranks = {k: table[k]["rank"] for k in KINDS}
    ranks["focused + DWC"] = int(channel_ranks.min())
    full = int((channel_ranks == n).sum())
    text = f"p = {p:.2f} · DWC {kernel_size}×{kernel_size} · ranks: " + ", ".join(f"{k} {r}" for k, r in ranks.items())
    text += f" (min over {d} channels; {full} of {d} have rank {n})"
    text += f" · effective ranks: focused {table['focused']['effective rank']:.1f}, focused + D_0 {table['focused + D_0']['effective rank']:.1f}"
    return RankView(
        float(p), int(kernel_size), float(rtol), float(eps), ranks, table, channel_ranks, dwc_ranks,
        {k: (v / v[0]).numpy() for k, v in s.items()}, dwc[0].numpy(), text,
    )  # fmt: skip


def rank_over_dim(image: np.ndarray, dims, grid: int = 14) -> list[int]:
    """Numerical rank of ReLU linear attention for tokens of each head size d: at most min(N, d) (notebook 03)."""
    from .tokens import image_tokens

    return [int(Fn.numerical_rank(attention_matrices(image_tokens(image, grid, d))["linear"])) for d in dims]


@torch.no_grad()
def dwc_strength_curve(tokens: torch.Tensor, p: float, kernel_size: int, ts) -> dict:
    """Numerical and effective rank of A + t·D_0 for each t in ts: how large must the DWC be? (notebook 03)."""
    strengths = StrengthViews(tokens, p, kernel_size)
    views = [strengths.view(t) for t in ts]
    return {"t": np.asarray(ts, dtype=float), "rank": np.array([v.rank for v in views]),
            "effective rank": np.array([v.effective_rank for v in views])}


@dataclass
class StrengthView:
    """Notebook 03's DWC-strength slider: the spectrum of A + t·D_0 beside that of A."""

    t: float
    rank: int  # numerical rank of A + t·D_0 at N · eps(float32)
    effective_rank: float
    spectrum: np.ndarray  # σ_i / σ_1 of A + t·D_0
    spectrum_a: np.ndarray  # σ_i / σ_1 of A alone
    rtol: float
    text: str = field(repr=False)


class StrengthViews:
    """A = focused attention and D_0 = the DWC of head channel 0 of ``tokens``, computed once; ``view(t)`` per slider step (notebook 03)."""

    def __init__(self, tokens: torch.Tensor, p: float = 3.0, kernel_size: int = 5):
        d, (h, w) = tokens.shape[1], tokens.shape[-2:]
        self.a = attention_matrices(tokens, p)["focused"].double()
        self.d0 = Fn.dwc_matrix(dwc_kernels(d, kernel_size), h, w)[0].double()
        self.rtol = h * w * torch.finfo(torch.float32).eps
        s = _svdvals(self.a)
        self.spectrum_a, self.rank_a = (s / s[0]).numpy(), int(Fn.spectrum_rank(s, self.rtol))

    @torch.no_grad()
    def view(self, t: float) -> StrengthView:
        s = _svdvals(self.a + float(t) * self.d0)
        rank, eff = int(Fn.spectrum_rank(s, self.rtol)), float(Fn.effective_rank(s))
        text = (f"t = {t:g}: rank of A + t·D_0 {rank} of {len(s)} (A alone {self.rank_a}), "
                f"effective rank {eff:.1f}")
        return StrengthView(float(t), rank, eff, (s / s[0]).numpy(), self.spectrum_a, self.rtol, text)


def plot_strength(view: StrengthView):
    """Singular values of A and of A + t·D_0 with the rank tolerance (notebook 03's slider)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    i = np.arange(1, len(view.spectrum) + 1)
    ax.semilogy(i, np.maximum(view.spectrum_a, 1e-18), color="gray", label="A (focused, no DWC)")
    ax.semilogy(i, np.maximum(view.spectrum, 1e-18), color="tab:red", label=f"A + {view.t:g}·D_0 (rank {view.rank})")
    ax.axhline(view.rtol, color="gray", ls="--", lw=1, label=f"tolerance {view.rtol:.1e}")
    ax.set_ylim(1e-18, 2)
    ax.set_xlabel("index i")
    ax.set_ylabel("σ_i / σ_1")
    ax.set_title(f"DWC strength t = {view.t:g}: effective rank {view.effective_rank:.1f}")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig


def plot_rank(view: RankView):
    """Singular-value spectra with the rank threshold, and below it the DWC banded matrix (notebook 03)."""
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(2, 1, figsize=(7.5, 8.4), gridspec_kw={"height_ratios": [1, 1.15]})
    for name, s in view.spectra.items():
        ax.semilogy(np.arange(1, len(s) + 1), np.maximum(s, 1e-18), label=f"{name} (rank {view.table[name]['rank']})")
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
