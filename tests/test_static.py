"""Sliders without a kernel (fla.course.static): the frames over a slider's grid and the HTML that swaps them."""
from __future__ import annotations

import base64
import io
import json
import re

import ipywidgets as widgets
import matplotlib.pyplot as plt
import pytest

from fla.course import static
from fla.course.tokens import image_tokens, load_image
from fla.course.views import focusing_view


def test_grid_spreads_over_the_range_on_the_step_and_keeps_the_current_value():
    p = widgets.FloatSlider(value=3.0, min=1.0, max=10.0, step=0.5)
    values = static.grid(p, n=7)
    assert values[0] == 1.0 and values[-1] == 10.0 and 3.0 in values
    assert all((v - 1.0) / 0.5 == int((v - 1.0) / 0.5) for v in values)
    assert len(values) <= 8 and values == sorted(set(values))
    small = widgets.IntSlider(value=1, min=0, max=3)
    assert static.grid(small, n=7) == [0, 1, 2, 3]
    k = widgets.SelectionSlider(options=[3, 5, 7], value=5)
    assert static.grid(k) == [3, 5, 7]
    hand_picked = widgets.SelectionSlider(options=list(range(static.OPTIONS)), value=5)
    assert static.grid(hand_picked) == list(range(static.OPTIONS)), "a selection slider's options are all shown"
    many = widgets.SelectionSlider(options=list(range(static.OPTIONS + 1)), value=5)
    assert len(static.grid(many)) <= static.FRAMES + 1 and 5 in static.grid(many)


def test_the_static_sliders_carry_the_instructive_values(monkeypatch):
    """01's d = 32 (the head size of notebook 05's models) and 03's t = 1e-4 (rank jumps, effective rank stays)."""
    from fla.course.widgets import order_widget, strength_widget

    monkeypatch.setenv(static.BOOK, "1")
    d = json.loads(re.search(r"labels = (\[[^\]]*\])", order_widget()._repr_mimebundle_()["text/html"]).group(1))
    assert "32" in d
    page = strength_widget(image_tokens(load_image()))._repr_mimebundle_()["text/html"]
    t = json.loads(re.search(r"labels = (\[[^\]]*\])", page).group(1))
    assert "0.0001" in t
    assert "every value of DWC strength t" in page and "live notebook computes" not in page


def _render(p, q):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.imshow([[p, q], [q, -p]], vmin=-10, vmax=10)
    return fig, f"p = {p:.2f} <q>"


def test_html_has_a_range_input_and_one_visible_frame_per_value():
    controls = {"p": widgets.FloatSlider(value=3.0, min=1.0, max=4.0, step=1.0, description="p"),
                "q": widgets.IntSlider(value=2, min=0, max=5, description="q")}
    shown = static.frames(_render, {"p": 3.0, "q": 2}, "p", static.grid(controls["p"]))
    assert [v for v, _, _ in shown] == [1.0, 2.0, 3.0, 4.0]
    assert len({jpeg for _, jpeg, _ in shown}) == 4  # each value its own picture
    page = static.slider_html("p", shown, start=2)
    assert re.search(r'<input type="range" min="0" max="3" step="1" value="2"', page)
    images = re.findall(r'<img class="fla-static-frame" data-index="(\d)"[^>]*?( hidden)? src="data:image/jpeg;base64,([^"]+)"', page)
    assert [(i, h) for i, h, _ in images] == [("0", " hidden"), ("1", " hidden"), ("2", ""), ("3", " hidden")]
    assert base64.b64decode(images[0][2])[:2] == b"\xff\xd8"  # JPEG
    assert "p = 3.00 &lt;q&gt;" in page and "<q>" not in page  # the text is escaped


def test_the_live_widget_is_unchanged_unless_the_book_is_built(monkeypatch):
    from fla.course.widgets import focusing_widget

    image = load_image()
    tokens = image_tokens(image)
    monkeypatch.delenv(static.BOOK, raising=False)
    assert isinstance(focusing_widget(image, tokens), widgets.VBox)

    monkeypatch.setenv(static.BOOK, "1")
    shown = focusing_widget(image, tokens)
    bundle = shown._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # JupyterLab still draws the live widget
    page = bundle["text/html"]
    assert page.count('type="range"') == 1
    assert page.count('<img class="fla-static-frame"') == len(static.grid(shown.children[0].children[0])) <= static.FRAMES + 1
    assert focusing_view(tokens, 3.0, (7, 7)).text.split(" · ")[0] in page
    assert shown.children[0].children[0].description == "p"  # the rest is the widget's
    # the page says which live controls it leaves out, and that it holds a few values of p
    note = re.search(r"<p class='fla-static-note'><small>(.*?)</small>", page).group(1)
    assert "a few values of p" in note and "query row, query col and kernel" in note, note
    # frames as wide as the book's text column: shown at the size they were drawn
    from PIL import Image

    first = re.search(r'src="data:image/jpeg;base64,([^"]+)"', page).group(1)
    assert Image.open(io.BytesIO(base64.b64decode(first))).size[0] == static.PAGE_PX
    assert "white-space: pre-wrap" in page  # the numbers under the slider wrap instead of scrolling sideways


def test_the_static_readout_is_the_live_sliders_label(monkeypatch):
    from fla.course.widgets import strength_widget

    monkeypatch.setenv(static.BOOK, "1")
    page = strength_widget(image_tokens(load_image()))._repr_mimebundle_()["text/html"]
    labels = json.loads(re.search(r"labels = (\[[^\]]*\])", page).group(1))
    assert len(set(labels)) == len(labels) and {"0", "1e-06", "0.001"} <= set(labels), labels  # not 0.00 thrice


@pytest.mark.parametrize("value", ["0", ""])
def test_book_switch_is_off_by_default(monkeypatch, value):
    monkeypatch.setenv(static.BOOK, value)
    assert not static.building_book()
