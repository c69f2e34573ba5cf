"""The data-flow picture of FocusedLinearAttention (notebook 03, README): the committed SVG is what the code draws,
and its shapes are the ones the from-scratch module computes."""
import html
from pathlib import Path

import torch

from fla import FocusedLinearAttention
from fla.course.dataflow import ARROWS, BOXES

SVG = Path(__file__).resolve().parents[1] / "docs" / "fla-dataflow.svg"


def test_committed_svg_shows_every_step_and_shape():
    text = html.unescape(SVG.read_text(encoding="utf-8"))
    for _, _, label in BOXES.values():
        assert label in text, f"{label!r} missing: run python -m fla.course.dataflow docs/fla-dataflow.svg"
    for _, _, shape in ARROWS:
        assert shape in text, shape


def test_the_shapes_on_the_arrows_are_the_modules():
    b, c, h, w, heads = 2, 16, 3, 5, 4
    m = FocusedLinearAttention(c, heads, kernel_size=3)
    x = torch.randn(b, c, h, w)
    q, k, v = m._qkv(x)
    phi_q, phi_k = m.features(q, k)
    qh, kh, vh = m._heads(phi_q, phi_k, v)
    n, d = h * w, c // heads
    assert (tuple(phi_q.transpose(1, 2).shape)) == (b, n, c)  # "B×N×C" into and out of φ_p
    assert tuple(qh.shape) == tuple(vh.shape) == (b, heads, n, d)  # "B×h×N×d"
    assert tuple((kh.transpose(-2, -1) @ vh).shape) == (b, heads, d, d)  # "B×h×d×d": the state
    # "B·h×d×H×W" into the DWC: the module's DWC term is its d-channel conv (m.dwc, which takes d channels
    # only) run on each head's d channels of V as one image, the heads folded into the batch
    term = m.dwc_term(v, (h, w))  # (B, C, N), what the module adds to the attention's output
    heads_as_batch = v.reshape(b * heads, d, h, w)
    with torch.no_grad():
        torch.testing.assert_close(term.reshape(b * heads, d, n), m.dwc(heads_as_batch).flatten(2))
    assert tuple(m(x).shape) == (b, c, h, w)
