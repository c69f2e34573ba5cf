"""ipywidgets wiring for notebooks 01-03: controls -> a view from ``fla.course.views`` -> figure + text.

Nothing is computed here; the views are plain functions that tests call directly.
The picture is an Image widget (PNG bytes) and the numbers an HTML widget, not an Output
widget: capturing into an Output widget while nbclient executes the notebook can stall it
(jupyter/nbclient#312), and plain widget state also lands in the saved notebook as is.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from . import complexity, static, views

__all__ = ["order_widget", "focusing_widget", "strength_widget"]


def _wire(controls: dict, render) -> widgets.VBox:
    """Re-render whenever a control changes; render(**values) returns (figure, text). While the static book is
    built, the widget also carries precomputed pictures over its first slider (``fla.course.static``)."""
    picture = widgets.Image(format="png")
    text = widgets.HTML()

    def update(_=None):
        fig, line = render(**{name: c.value for name, c in controls.items()})
        picture.value = static.figure_bytes(fig, "png", dpi=80)
        text.value = f"<pre class='fla-view-text' style='{static.WRAP}'>{html.escape(line)}</pre>"

    for c in controls.values():
        c.style.description_width = "initial"  # show "query row" in full
        c.observe(update, names="value")
    update()
    row = widgets.HBox(list(controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
    box = widgets.VBox([row, text, picture])
    return static.with_fallback(box, controls, render) if static.building_book() else box


def order_widget(d: int = 64) -> widgets.VBox:
    """A slider for the head size d; shows ``complexity.order_view``: the crossover of the two orders moves (notebook 01)."""
    controls = {"d": widgets.SelectionSlider(options=[4, 8, 16, 32, 64, 128, 256, 512], value=d, description="head size d")}
    return _wire(controls, complexity.order_view)


def focusing_widget(image, tokens, p: float = 3.0, query: tuple[int, int] = (7, 7), kind: str = "focused") -> widgets.VBox:
    """Sliders for p and the query cell, buttons for the kernel; shows ``views.focusing_view`` (notebook 02)."""
    h, w = tokens.shape[-2:]
    controls = {
        "p": widgets.FloatSlider(value=p, min=1.0, max=10.0, step=0.5, description="p"),
        "row": widgets.IntSlider(value=query[0], min=0, max=h - 1, description="query row"),
        "col": widgets.IntSlider(value=query[1], min=0, max=w - 1, description="query col"),
        "kind": widgets.ToggleButtons(options=[(views.LABELS[k], k) for k in views.KINDS], value=kind, description="kernel"),
    }

    def render(p, row, col, kind):
        view = views.focusing_view(tokens, p, (row, col), kind)
        return views.plot_focusing(view, image), view.text

    return _wire(controls, render)


def strength_widget(tokens, p: float = 3.0, kernel_size: int = 5, t: float = 0.0) -> widgets.VBox:
    """A slider for the DWC strength t in A + t·D_0; shows ``views.plot_strength`` (notebook 03)."""
    strengths = views.StrengthViews(tokens, p, kernel_size)  # A and D_0 once; one SVD per step
    grid = [0.0, 1e-6, 1e-4, 1e-3, 1e-2, 0.03, 0.1, 0.3, 1.0]
    controls = {"t": widgets.SelectionSlider(options=[(f"{x:g}", x) for x in grid], value=t,  # labels as the text prints t
                                             description="DWC strength t")}

    def render(t):
        view = strengths.view(t)
        return views.plot_strength(view), view.text

    return _wire(controls, render)
