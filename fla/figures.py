"""Figures drawn for the page: every picture of the course fits the text column of the rendered book.

The book shows a notebook's figure at most as wide as its text column, about 752 px, and matplotlib draws at
100 dpi: a figure up to ``PAGE_WIDTH`` inches wide is shown at the size it was drawn, so its 8–10 pt text stays
11–14 px high. Wider figures would be scaled down (a 16-inch row of four panels to 43 %, its labels to 5 px);
several panels go into rows instead (``panels``).
"""
from __future__ import annotations

import io
import math

__all__ = ["PAGE_WIDTH", "panels", "figure_bytes", "as_jpeg"]

PAGE_WIDTH = 7.5  # inches, = 750 px at matplotlib's default 100 dpi


def panels(n: int, per_row: int = 3, panel_height: float = 2.8):
    """``(figure, axes)`` for ``n`` panels in rows of at most ``per_row``, ``PAGE_WIDTH`` wide (narrower when
    there are fewer panels than a row holds); ``axes`` flat, the unused ones switched off."""
    import matplotlib.pyplot as plt

    cols = max(1, min(n, per_row))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(PAGE_WIDTH * cols / per_row if n < per_row else PAGE_WIDTH,
                                                  panel_height * rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[n:]:
        ax.set_axis_off()
    return fig, axes[:n]


def figure_bytes(fig, format: str, dpi: float, **savefig) -> bytes:
    """``fig`` as an image file in memory, the figure closed: drawn once, into a widget or a page, and not again
    by the notebook's inline backend."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format=format, dpi=dpi, **savefig)
    plt.close(fig)
    return buf.getvalue()


def as_jpeg(fig, quality: int = 80):
    """A figure of photographs to display as JPEG (an IPython image), as the inline backend would draw it (100 dpi,
    tight): PNG stores photographs at about five times the weight."""
    from IPython.display import Image

    return Image(figure_bytes(fig, "jpeg", 100, bbox_inches="tight", pil_kwargs={"quality": quality}), format="jpeg")
