"""The notebooks' callbacks as plain functions: the effects the prose claims, on the real image."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fla import functional as Fn
from fla.course.complexity import (
    count_table,
    loglog_slope,
    mixing_cost,
    mixing_functions,
    mixing_overtakes_projections,
    power_law_range,
)
from fla.course.tokens import default_image_path, image_tokens, load_image
from fla.course.views import (
    attention_matrices,
    dwc_kernels,
    dwc_strength_curve,
    entropy_curve,
    focusing_pairs,
    focusing_view,
    query_scale_rows,
    rank_over_dim,
    rank_view,
    temperature_curve,
    token_rows,
)


@pytest.fixture(scope="module")
def image():
    return load_image()


@pytest.fixture(scope="module")
def tokens(image):
    return image_tokens(image)


# --- tokens ------------------------------------------------------------------------------------


def test_default_image_ships_with_ultralytics(monkeypatch):
    monkeypatch.delenv("FLA_DATA", raising=False)
    path = default_image_path()
    assert path.name == "bus.jpg" and path.is_file()


def test_default_image_prefers_the_helmet_subset(monkeypatch, tmp_path):
    from PIL import Image

    (tmp_path / "images" / "val").mkdir(parents=True)
    for name in ("b.jpg", "a.jpg"):
        Image.new("RGB", (40, 30)).save(tmp_path / "images" / "val" / name)
    monkeypatch.setenv("FLA_DATA", str(tmp_path))
    assert default_image_path() == tmp_path / "images" / "val" / "a.jpg"
    assert load_image(default_image_path(), size=28).shape == (28, 28, 3)


def test_tokens_are_standardised_and_deterministic(image, tokens):
    assert tokens.shape == (1, 64, 14, 14)
    feats = tokens.flatten(2)[0]  # (d, N)
    torch.testing.assert_close(feats.mean(dim=1), torch.zeros(64), atol=1e-5, rtol=0)
    torch.testing.assert_close(feats.std(dim=1), torch.ones(64), atol=1e-4, rtol=0)
    assert torch.equal(image_tokens(image), tokens)
    assert not torch.equal(image_tokens(image, seed=1), tokens)
    with pytest.raises(ValueError, match="divisible"):
        image_tokens(image[:200, :200])


def _identity_module(kind: str, dim: int = 64, kernel_size: int = 5, p: float = 3.0):
    """One-head module with identity q/k/v/output projections (weights read as (C, C), Linear or 1×1 conv)."""
    from fla import FocusedLinearAttention, LinearAttention, SoftmaxAttention

    if kind == "softmax":
        m = SoftmaxAttention(dim, num_heads=1)
    elif kind == "linear":
        m = LinearAttention(dim, num_heads=1)
    else:
        m = FocusedLinearAttention(dim, num_heads=1, focusing_factor=p, kernel_size=kernel_size, pos_encoding=False)
        with torch.no_grad():
            m.dwc.weight.copy_(dwc_kernels(dim, kernel_size))
    with torch.no_grad():
        for layer in (m.to_q, m.to_k, m.to_v, m.proj):
            layer.weight.copy_(torch.eye(dim).reshape(layer.weight.shape))
            if layer.bias is not None:
                layer.bias.zero_()
    return m.eval()


@pytest.mark.parametrize("kind", ["softmax", "linear", "focused"])
def test_reference_matrices_are_what_the_modules_compute(tokens, kind):
    """The views' matrices (paper equations) against the modules run with identity projections:
    the module's output is (A + D_c) V channel by channel (D = 0 without a DWC), and its own
    attention_matrix equals A."""
    module = _identity_module(kind)
    a = attention_matrices(tokens, p=3.0)[kind]
    v = token_rows(tokens)  # (N, C): values are the tokens too
    expected = a @ v
    if kind == "focused":
        d = Fn.dwc_matrix(dwc_kernels(64, 5), 14, 14)  # (C, N, N)
        expected = expected + torch.einsum("cij,jc->ic", d, v)
    with torch.no_grad():
        out = token_rows(module(tokens))
        torch.testing.assert_close(out, expected, atol=2e-4, rtol=1e-3)
        torch.testing.assert_close(module.attention_matrix(tokens)[0, 0], a, atol=1e-5, rtol=1e-3)


def test_softmax_matrix_is_the_textbook_formula(tokens):
    x = token_rows(tokens)
    torch.testing.assert_close(attention_matrices(tokens)["softmax"], torch.softmax(x @ x.T / 8.0, dim=-1))
    assert x.shape == (196, 64) and torch.equal(x[15], tokens[0, :, 1, 1])  # raster order: row 1, col 1


# --- notebook 02: focusing ---------------------------------------------------------------------


def test_entropy_falls_as_p_grows(tokens):
    views = [focusing_view(tokens, p, (7, 7)) for p in (1.0, 3.0, 6.0, 10.0)]
    means = [v.mean_entropy["focused"] for v in views]
    assert all(a > b for a, b in zip(means, means[1:])), means
    assert means[0] - means[-1] > 1.0  # a clear effect, not rounding: nats out of log 196 = 5.28


def test_entropy_curve_is_the_mean_entropy(tokens):
    ps = [1.0, 2.0, 4.0, 8.0]
    curve = entropy_curve(tokens, ps)
    assert np.all(np.diff(curve) < 0)
    assert curve[1] == pytest.approx(focusing_view(tokens, 2.0, (0, 0)).mean_entropy["focused"], abs=1e-6)


def test_focusing_is_the_identity_at_p1_and_softmax_is_sharpest(tokens):
    v = focusing_view(tokens, 1.0, (3, 9), kind="linear")
    np.testing.assert_allclose(v.maps["focused"], v.maps["linear"], atol=1e-6)
    assert v.mean_entropy["softmax"] < v.mean_entropy["focused"] <= v.mean_entropy["linear"] + 1e-6
    assert v.mean_entropy["linear"] < math.log(196)
    for m in v.maps.values():
        assert m.shape == (14, 14) and m.sum() == pytest.approx(1.0, abs=1e-5)


def test_temperature_changes_softmax_only(tokens):
    curve = temperature_curve(tokens, [0.01, 0.125, 1.0])
    assert curve["softmax"][0] > curve["softmax"][1] > curve["softmax"][2]
    assert curve["softmax"][1] == pytest.approx(focusing_view(tokens, 3.0, (0, 0)).mean_entropy["softmax"], abs=1e-5)
    for kind in ("linear", "focused"):  # positively homogeneous features: the normalisation cancels the scale
        assert np.ptp(curve[kind]) < 1e-3, curve[kind]


def test_focusing_pairs_proposition_1_is_an_existence_claim():
    at3, at30 = focusing_pairs(3.0, n_pairs=20_000), focusing_pairs(30.0, n_pairs=20_000)
    assert at3["same"] + at3["different"] > 15_000 and at3["same"] == at30["same"]
    assert 0.02 < at3["same_less_similar"] < 0.2  # a real share of same-argmax pairs get LESS similar at p = 3
    assert at30["same_less_similar"] < at3["same_less_similar"] / 3  # ... and fewer as p grows (limit: all more similar)
    assert at30["different_more_similar"] < at3["different_more_similar"]


def test_query_scale_homogeneous_features_give_q_and_lambda_q_the_same_row_a_bias_does_not(tokens):
    lambdas = [0.25, 1.0, 4.0]
    r = query_scale_rows(tokens, 7 * 14 + 7, lambdas, p=3.0, bias=-0.5)
    assert r["linear"]["change"] < 1e-6 and r["focused"]["change"] < 1e-6
    assert r["linear + bias"]["change"] > 1e-2 and r["softmax"]["change"] > 1e-1
    assert np.all(np.diff(r["softmax"]["entropy"]) < 0)  # λ is softmax's inverse temperature
    x = token_rows(tokens)
    phi = lambda t: Fn.relu_kernel(t - 0.5)  # noqa: E731
    by_hand = phi(x) @ phi(4.0 * x[7 * 14 + 7])
    np.testing.assert_allclose(r["linear + bias"]["rows"][2], (by_hand / by_hand.sum()).numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="contain 1"):
        query_scale_rows(tokens, 0, [2.0])


def test_focusing_view_text_reports_the_chosen_kernel(tokens):
    v = focusing_view(tokens, 4.5, (2, 11), kind="softmax")
    assert v.text.startswith("p = 4.50 · query (2, 11) · softmax entropy ")
    assert f"{v.entropy['softmax']:.3f}" in v.text
    assert v.entropy_map.shape == (14, 14) and v.entropy_map[2, 11] == pytest.approx(v.entropy["softmax"], abs=1e-6)
    with pytest.raises(ValueError, match="outside"):
        focusing_view(tokens, 3.0, (14, 0))
    with pytest.raises(ValueError, match="kind"):
        focusing_view(tokens, 3.0, (0, 0), kind="elu")


# --- notebook 03: rank -------------------------------------------------------------------------


@pytest.mark.parametrize("kernel_size", [3, 5, 7])
def test_rank_rises_with_dwc(tokens, kernel_size):
    v = rank_view(tokens, 3.0, kernel_size)
    assert v.ranks["linear"] <= 64 and v.ranks["focused"] <= 64
    assert v.ranks["softmax"] == 196
    assert v.ranks["focused + DWC"] > 180  # every head channel, far above the bound d = 64
    assert (v.channel_ranks == 196).sum() > 32 and v.dwc_ranks.min() > 180  # generic kernels: invertible, not always well conditioned
    assert v.dwc.shape == (196, 196)
    assert f"DWC {kernel_size}×{kernel_size}" in v.text


def test_rank_view_at_the_paper_setting(tokens):
    v = rank_view(tokens, 3.0, 5)
    assert v.rtol == pytest.approx(196 * torch.finfo(torch.float32).eps)
    assert (v.ranks["softmax"], v.ranks["linear"], v.ranks["focused"], v.ranks["focused + DWC"]) == (196, 64, 64, 196)
    assert v.spectra["linear"][63] > 10 * v.rtol and v.spectra["linear"][64] < v.rtol / 10  # a cliff right after d
    assert np.count_nonzero(v.dwc, axis=1).max() == 25


def test_rank_controls_a_tiny_identity_fools_the_count_not_the_other_measures(tokens):
    v = rank_view(tokens, 3.0, 5)
    a, tiny, d0, both = (v.table[k] for k in ("focused", "focused + 0.0001·I", "DWC D_0 alone", "focused + D_0"))
    assert tiny["rank"] == 196 and a["rank"] == 64  # the numerical rank "restored" by 1e-4 · I
    assert tiny["rank@0.0001"] == a["rank@0.0001"]  # a looser tolerance sees through it
    assert abs(tiny["effective rank"] - a["effective rank"]) < 0.05 * a["effective rank"]
    # at initialisation the DWC term dominates: A + D_0 measures like D_0 alone, by every measure
    assert (v.dwc_ranks == 196).all() and both["rank"] == d0["rank"] == 196
    assert abs(both["effective rank"] - d0["effective rank"]) < 0.05 * d0["effective rank"]
    assert d0["max |entry|"] > 10 * 1 / 196  # DWC weights ≈ U(-1/5, 1/5) against attention's mean entry 1/N
    assert both["effective rank"] > 3 * a["effective rank"]


def test_dwc_with_a_centre_only_kernel_is_the_identity():
    """The base case of "det D_c is a polynomial in the weights that is not identically 0"."""
    w = torch.zeros(2, 1, 5, 5)
    w[:, 0, 2, 2] = 1.0
    torch.testing.assert_close(Fn.dwc_matrix(w, 6, 7), torch.eye(42).expand(2, 42, 42))


def test_effective_rank_bounds():
    effective_rank = Fn.effective_rank
    assert effective_rank(torch.ones(10)).item() == pytest.approx(10.0)
    assert effective_rank(torch.tensor([1.0, 0, 0])).item() == pytest.approx(1.0)
    assert 1.0 < effective_rank(torch.tensor([1.0, 0.1, 0.01])).item() < 2.0


def test_dwc_strength_curve(tokens):
    curve = dwc_strength_curve(tokens, 3.0, 5, [0.0, 1e-3, 1e-1, 1.0])
    assert curve["rank"][0] == 64 and curve["rank"][-1] == 196
    assert np.all(np.diff(curve["effective rank"]) > 0)


def test_linear_rank_is_bounded_by_d(image):
    assert rank_over_dim(image, [8, 16, 32]) == [8, 16, 32]


def test_focusing_does_not_lift_the_bound(tokens):
    for p in (1.0, 10.0):
        a = attention_matrices(tokens, p)["focused"]
        assert Fn.numerical_rank(a).item() <= 64


# --- the widgets call the views ----------------------------------------------------------------


def _controls(box):
    return {c.description: c for c in box.children[0].children}


def test_focusing_widget_shows_what_the_callback_computes(image, tokens):
    from fla.course.widgets import focusing_widget

    box = focusing_widget(image, tokens)
    controls, text, picture = _controls(box), box.children[1], box.children[2]
    first = picture.value
    assert focusing_view(tokens, 3.0, (7, 7)).text in text.value
    controls["p"].value = 6.5
    controls["query row"].value = 2
    controls["kernel"].value = "linear"
    assert focusing_view(tokens, 6.5, (2, 7), "linear").text in text.value
    assert picture.value != first and picture.value[:4] == b"\x89PNG"


def test_strength_widget_moves_rank_and_effective_rank_with_t(tokens):
    from fla.course.views import StrengthViews
    from fla.course.widgets import strength_widget

    box = strength_widget(tokens)
    controls, text, picture = _controls(box), box.children[1], box.children[2]
    views = StrengthViews(tokens)
    at0, at1 = views.view(0.0), views.view(1.0)
    assert at0.text in text.value and at0.rank == views.rank_a <= tokens.shape[1]  # t = 0: A alone, rank <= d (Eq. 9)
    first = picture.value
    controls["DWC strength t"].value = 1.0
    assert at1.text in text.value and picture.value != first
    assert at1.rank == tokens.shape[-1] * tokens.shape[-2] and at1.effective_rank > 3 * at0.effective_rank
    tiny = views.view(1e-4)  # the count jumps long before the effective rank moves
    assert tiny.rank > at0.rank and tiny.effective_rank == pytest.approx(at0.effective_rank, rel=0.05)


def test_order_widget_moves_the_crossover_with_d():
    from fla.course import complexity
    from fla.course.widgets import order_widget

    assert [complexity.crossover(d) for d in (4, 64)] == [5, 65]  # N > d when d = d_v
    assert complexity.crossover(64, 16) == 26  # the harmonic mean 25.6, rounded up
    box = order_widget(d=64)
    controls, text = _controls(box), box.children[1]
    assert "cheaper from N = 65 on" in text.value
    controls["head size d"].value = 8
    assert "cheaper from N = 9 on" in text.value


# --- notebook 01: counting and timing ----------------------------------------------------------


def test_loglog_slope_recovers_the_exponent():
    ns = [100, 400, 1600, 6400]
    assert loglog_slope(ns, [3 * n**2 for n in ns]) == pytest.approx(2.0)
    assert loglog_slope(ns, [0.5 * n for n in ns]) == pytest.approx(1.0)


@pytest.mark.parametrize("heads", [1, 4])
def test_count_table_counters_agree_with_the_formulas(heads):
    from fla import FocusedLinearAttention, LinearAttention, SoftmaxAttention

    modules = {
        "softmax": SoftmaxAttention(16, num_heads=heads),
        "linear": LinearAttention(16, num_heads=heads),
        "focused": FocusedLinearAttention(16, num_heads=heads, kernel_size=3),
    }
    rows = count_table(modules, sides=[5, 9])
    assert len(rows) == 6 and all(r["heads"] == heads for r in rows)
    for r in rows:
        assert r["FlopCounterMode"] == r["thop (x2)"] == r["formula"], r
    soft = [r["formula"] for r in rows if r["module"] == "softmax"]
    assert soft[1] > soft[0] * (81 / 25)  # more than linear growth


def test_multi_head_softmax_mixing_does_not_depend_on_the_split_linear_does():
    from fla import LinearAttention, SoftmaxAttention

    def mixing(module, side=12):  # counted FLOPs minus the projections' 2 · 4NC²
        r = count_table({"m": module}, [side])[0]
        return r["FlopCounterMode"] - 2 * 4 * side * side * 32 * 32

    assert mixing(SoftmaxAttention(32, num_heads=1)) == mixing(SoftmaxAttention(32, num_heads=4))  # 2N²C either way
    n, c = 144, 32
    for heads in (1, 4):  # 2·N·C·d_head + N·C (the normaliser): shrinks with the head size
        assert mixing(LinearAttention(c, num_heads=heads)) == 2 * (2 * n * c * (c // heads) + n * c)


def test_mixing_overtakes_projections_at_2C():
    assert mixing_overtakes_projections(64, 1) == mixing_overtakes_projections(64, 8) == 129


def test_mixing_functions_agree_and_memory_grows_as_taught():
    torch.manual_seed(0)
    q, k, v = torch.randn(3, 1, 1, 300, 16).unbind()
    fns = mixing_functions()
    torch.testing.assert_close(fns["naive softmax"](q, k, v), fns["SDPA (flash-style)"](q, k, v), atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(fns["linear"](q, k, v),
                               Fn.linear_attention(Fn.relu_kernel(q), Fn.relu_kernel(k), v, order="qk"), atol=1e-5, rtol=1e-4)
    threads = torch.get_num_threads()
    cost = mixing_cost({k: fns[k] for k in ("naive softmax", "linear")}, [256, 1024], d=16, repeats=2)
    assert torch.get_num_threads() == threads
    naive, linear = cost["MiB"]["naive softmax"], cost["MiB"]["linear"]
    assert naive[1] / naive[0] > 12  # the N×N matrix: 16x the tokens², minus the O(N d) output
    assert naive[1] >= 1024 * 1024 * 4 / 2**20  # at least one fp32 N×N matrix was live
    assert linear[1] / linear[0] < 6  # O(N d): ~4x
    assert all(t > 0 for t in cost["ms"]["linear"])


def test_power_law_range_finds_where_the_law_starts():
    ns = [64, 256, 1024, 4096, 16384]
    flat_then_quadratic = [1.0, 1.0, 1e-6 * 1024**2, 1e-6 * 4096**2, 1e-6 * 16384**2]
    start, k = power_law_range(ns, flat_then_quadratic)
    assert start == 1024 and k == pytest.approx(2.0)
    assert power_law_range(ns, [1.0, 30.0, 1.0, 30.0, 1.0]) is None
