"""The data flow of ``fla.FocusedLinearAttention`` with the tensor shapes on the arrows (notebook 03, README).

``python -m fla.course.dataflow docs/fla-dataflow.svg`` writes the picture the README shows.
"""
from __future__ import annotations

import sys

from ..figures import PAGE_WIDTH

__all__ = ["BOXES", "ARROWS", "LABEL_POINTS", "draw"]

LABEL_POINTS = 9.5  # boxes and arrows: capitals ≥ 9 px tall on the page (tests/test_figures.py)

# name -> (x, y, label); y grows downwards
BOXES = {
    "x": (0.50, 0.0, "feature map x: B×C×H×W, flattened"),
    "q": (0.18, 1.0, "to_q  (C×C)"),
    "k": (0.50, 1.0, "to_k  (C×C)  + pos"),
    "v": (0.84, 1.0, "to_v  (C×C)"),
    "phiq": (0.18, 2.0, "φ_p = f_p(ReLU(·) ÷ softplus(s))"),
    "phik": (0.50, 2.0, "φ_p  (same map)"),
    "kv": (0.50, 3.1, "φ(K)ᵀ V  per head"),
    "dwc": (0.84, 3.1, "DWC: κ×κ depthwise conv of V"),
    "num": (0.18, 4.2, "φ(Q)(φ(K)ᵀV) ÷ φ(Q)·Σⱼφ(Kⱼ)"),
    "add": (0.50, 5.2, "+   (merge heads)"),
    "out": (0.50, 6.2, "proj  (C×C)  → output"),
}
# (from, to, shape on the arrow)
ARROWS = [
    ("x", "q", "B×N×C"),
    ("x", "k", "B×N×C"),
    ("x", "v", "B×N×C"),
    ("q", "phiq", "B×N×C"),
    ("k", "phik", "B×N×C"),
    ("phik", "kv", "B×h×N×d"),
    ("v", "kv", "B×h×N×d"),
    ("v", "dwc", "B·h×d×H×W"),
    ("phiq", "num", "B×h×N×d"),
    ("kv", "num", "B×h×d×d"),
    ("num", "add", "B×h×N×d"),
    ("dwc", "add", "B×h×N×d"),
    ("add", "out", "B×N×C → B×C×H×W"),
]


def draw():
    """The figure: boxes for the steps, arrows labelled with the shape that flows (N = H·W, d = C/h)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(PAGE_WIDTH, 7.0))  # the width of a page: shown at the size it is drawn
    ax.set_xlim(0, 1)
    ax.set_ylim(6.7, -0.5)
    ax.axis("off")
    style = dict(ha="center", va="center", fontsize=LABEL_POINTS, bbox=dict(boxstyle="round,pad=0.4", fc="#eef3fb", ec="#4a6fa5"))
    for name, (x, y, label) in BOXES.items():
        ax.text(x, y, label, **{**style, "bbox": {**style["bbox"], "fc": "#fbeee6" if name in ("phiq", "phik") else
                                                  "#e9f5e9" if name == "dwc" else "#eef3fb"}})
    for a, b, shape in ARROWS:
        (x0, y0, _), (x1, y1, _) = BOXES[a], BOXES[b]
        ax.annotate("", xy=(x1, y1 - 0.28), xytext=(x0, y0 + 0.28),
                    arrowprops=dict(arrowstyle="->", color="#555", lw=1.1))
        ax.text((x0 + x1) / 2 + 0.01, (y0 + y1) / 2, shape, fontsize=LABEL_POINTS, color="#333", ha="left", va="center",
                bbox=dict(fc="white", ec="none", pad=0.5))
    ax.set_title("FocusedLinearAttention: B images, C channels, N = H·W tokens,\nh heads of d = C/h", fontsize=10)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "fla"  # the same ids every time: a redraw changes the file only when the picture changes
    matplotlib.rcParams["svg.fonttype"] = "none"  # text as text: smaller, searchable, and testable
    draw().savefig(sys.argv[1] if len(sys.argv) > 1 else "fla-dataflow.svg", metadata={"Date": None})
