"""Sliders without a kernel: a live widget's picture precomputed over one control's grid, for the static book.

In JupyterLab a slider re-renders through the kernel. A static HTML page has no kernel, so while the book is
built (``FLA_BOOK=1``) ``fla.course.widgets`` also renders a few frames over the first slider's range and
shows them through a plain ``<input type="range">`` (arrow keys work; a few lines of inline JavaScript swap
the frames). The live widget is untouched: its output carries both, and JupyterLab keeps drawing the widget
while the book's HTML builder picks ``text/html``.

The frames are drawn at the width of the book's text column (``PAGE_PX``), so they are shown at the size they
were drawn at; a selection slider's options (chosen by hand, each one instructive) are all there, a number
slider's range in ``FRAMES`` steps. A note under the slider names the live controls the page leaves out.
Page weight: one JPEG picture per frame (about 30–90 kB each for the views of notebooks 01–03).
"""
from __future__ import annotations

import base64
import html
import itertools
import json
import os

from ..figures import PAGE_WIDTH, figure_bytes

__all__ = ["BOOK", "FRAMES", "OPTIONS", "PAGE_PX", "building_book", "grid", "figure_bytes", "frames", "readout",
           "slider_html", "left_out", "StaticFallback", "with_fallback"]

BOOK = "FLA_BOOK"  # the environment variable `make book` sets
FRAMES = 7  # pictures of a number slider: enough to see the trend when dragging, few enough to keep a page light
OPTIONS = 12  # a selection slider with up to this many options shows every one
PAGE_PX = round(PAGE_WIDTH * 100)  # the book's text column in pixels (fla.figures): frames are drawn this wide
QUALITY = 75
_ids = itertools.count()
WRAP = "white-space: pre-wrap; overflow-wrap: anywhere"  # a readout wraps at the column instead of scrolling sideways


def building_book() -> bool:
    """Whether the notebooks are being executed for the static book (``FLA_BOOK=1``)."""
    return os.environ.get(BOOK, "0") not in ("", "0", "false", "False")


def grid(control, n: int = FRAMES) -> list:
    """Up to ``n`` values of a slider spread over its range, on its step, always including its current value.

    A slider with options (``SelectionSlider``) yields all its options when there are up to ``OPTIONS`` (they were
    picked by hand: 01's d = 32 is 05's head size, 03's t = 1e-4 is where the rank jumps); a number slider evenly
    spaced values."""
    if hasattr(control, "_options_values"):
        values = list(control._options_values)
        if len(values) > max(n, OPTIONS):  # keep both ends and the current value
            picks = {round(i * (len(values) - 1) / (n - 1)) for i in range(n)} | {values.index(control.value)}
            values = [values[i] for i in sorted(picks)]
        return values
    lo, hi, step = control.min, control.max, control.step or 1
    steps = round((hi - lo) / step)
    picks = {round(i * steps / (n - 1)) for i in range(n)} if steps >= n else set(range(steps + 1))
    values = {lo + k * step for k in picks} | {control.value}
    kind = int if isinstance(control.value, int) else float
    return sorted(kind(round(v, 10)) for v in values)


def frames(render, values: dict, name: str, grid_values: list) -> list[tuple[object, bytes, str]]:
    """``(value, JPEG, text)`` for each value of control ``name`` in ``grid_values``, the others at ``values``;
    ``render(**values)`` returns ``(figure, text)`` as in ``fla.course.widgets``."""
    out = []
    for v in grid_values:
        fig, text = render(**{**values, name: v})
        # JPEG, not PNG: the views overlay a photograph, which PNG stores at ~200 kB a frame and JPEG at ~35 kB;
        # as wide as the page's column, so the page shows it at the size it was drawn
        dpi = PAGE_PX / fig.get_figwidth()
        out.append((v, figure_bytes(fig, "jpeg", dpi, pil_kwargs={"quality": QUALITY}), text))
    return out


def readout(control, v) -> str:
    """``v`` as the live slider's readout shows it: a selection slider's own label (0.0001 and 1e-06 must not
    both read 0.00), a float to two decimals."""
    if hasattr(control, "_options_labels"):
        return dict(zip(control._options_values, control._options_labels))[v]
    return f"{v:.2f}" if isinstance(v, float) else str(v)


def left_out(label: str, others: list[str] = (), every: bool = True) -> str:
    """The note under a static slider: which values of ``label`` it holds, and the live controls (``others``) the
    page leaves out. ``every``: whether the frames cover every value the live slider has."""
    note = f"Precomputed pictures: {'every value' if every else 'a few values'} of {label}"
    if others:
        names = ", ".join(others[:-1]) + (" and " if len(others) > 1 else "") + others[-1]
        note += f", with {names} at {'their' if len(others) > 1 else 'its'} starting value{'s' if len(others) > 1 else ''}"
        note += f" (the live notebook lets you change {'them' if len(others) > 1 else 'it'} too)"
    if not every:
        note += "; the live notebook computes the values in between"
    return note + "."


def slider_html(label: str, shown: list[tuple[object, bytes, str]], start: int, labels: list[str] | None = None,
                others: list[str] = (), every: bool = True) -> str:
    """A range input over ``shown`` frames, frame ``start`` visible; moving the input shows another frame.
    ``labels``: each frame's value as the reader sees it (default: floats to two decimals); ``others``: the live
    controls the page leaves out, named in the note under it (``left_out``). The text under the slider wraps at the column."""
    uid = f"fla-static-{next(_ids)}"
    labels = labels or [readout(None, v) for v, _, _ in shown]
    images = "".join(
        f'<img class="fla-static-frame" data-index="{i}" alt="{html.escape(label)} = {labels[i]}" style="max-width: 100%"'
        f'{"" if i == start else " hidden"} src="data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}">'
        for i, (_, jpeg, _) in enumerate(shown))
    texts = [html.escape(t) for _, _, t in shown]
    return (
        f'<div class="fla-static" id="{uid}">'
        f'<label>{html.escape(label)} <input type="range" min="0" max="{len(shown) - 1}" step="1" value="{start}" '
        f'aria-valuetext="{labels[start]}"></label> <output>{labels[start]}</output>'
        f'<pre class="fla-view-text" style="{WRAP}">{texts[start]}</pre>{images}'
        "<script>(function () {"
        f"const root = document.getElementById('{uid}'), input = root.querySelector('input'),"
        f" labels = {json.dumps(labels)}, texts = {json.dumps(texts)};"
        "input.addEventListener('input', function () {"
        "const i = Number(input.value);"
        "root.querySelectorAll('.fla-static-frame').forEach(function (img) { img.hidden = Number(img.dataset.index) !== i; });"
        "root.querySelector('output').textContent = labels[i]; input.setAttribute('aria-valuetext', labels[i]);"
        "root.querySelector('pre').innerHTML = texts[i]; });"
        "})();</script>"
        f"<p class='fla-static-note'><small>{html.escape(left_out(label, list(others), every))}</small></p>"
        "</div>")


class StaticFallback:
    """A widget shown live where there is a kernel and as ``html`` where there is not: its output carries the
    widget's view and a ``text/html`` alternative. Everything else is the widget's (attribute access goes to it)."""

    def __init__(self, widget, html: str):
        self.widget, self.html = widget, html

    def _repr_mimebundle_(self, **kwargs):
        return {**self.widget._repr_mimebundle_(**kwargs), "text/html": self.html}

    def __getattr__(self, name):
        return getattr(self.widget, name)


def _slider_name(controls: dict) -> str | None:
    """The first control that is a slider: the one the static page lets the reader move."""
    return next((name for name, c in controls.items() if type(c).__name__.endswith("Slider")), None)


def with_fallback(widget, controls: dict, render):
    """``widget`` with a static slider over the first slider of ``controls`` (``StaticFallback``); the widget
    itself when there is no slider."""
    name = _slider_name(controls)
    if name is None:
        return widget
    values = {n: c.value for n, c in controls.items()}
    shown = frames(render, values, name, grid(controls[name]))
    start = [v for v, _, _ in shown].index(values[name])
    labels = [readout(controls[name], v) for v, _, _ in shown]
    others = [c.description or n for n, c in controls.items() if n != name]
    every = len(shown) == len(grid(controls[name], n=10**6))
    return StaticFallback(widget, slider_html(controls[name].description or name, shown, start, labels, others, every))
