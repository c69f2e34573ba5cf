"""Paired-by-seed statistics of the ablation (fla.experiments.stats: paired, sign_flip_p, trend) on inputs whose
answers are known by hand."""
from __future__ import annotations

import itertools
import math
import statistics

import pytest

from fla.experiments.stats import paired, sign_flip_p, t_quantile, t_sf2, trend


def test_t_quantiles_match_the_printed_tables():
    # Student's t table: 0.975 quantiles for df = 1, 2, 4, 9, 30
    for df, q in ((1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (30, 2.042)):
        assert t_quantile(0.975, df) == pytest.approx(q, abs=1e-3)
    assert t_sf2(t_quantile(0.975, 4), 4) == pytest.approx(0.05, abs=1e-9)
    assert t_sf2(0.0, 3) == pytest.approx(1.0)


def test_sign_flip_is_exact_on_small_cases():
    assert sign_flip_p([1, 2, 3, 4, 5]) == 2 / 32  # only all-plus and all-minus reach |mean| = 3
    assert sign_flip_p([1, 1, 1]) == 2 / 8
    assert sign_flip_p([0, 0, 0]) == 1.0
    assert sign_flip_p([1, -1]) == 1.0
    # by brute force: patterns whose |sum| reaches the observed one
    d = [0.3, -0.1, 0.5, 0.2]
    hits = sum(abs(sum(s * x for s, x in zip(signs, d))) >= abs(sum(d)) - 1e-12
               for signs in itertools.product((1, -1), repeat=4))
    assert sign_flip_p(d) == hits / 16


def test_paired_difference_interval_and_t_test():
    a, b = [0.70, 0.72, 0.68, 0.75, 0.71], [0.60, 0.65, 0.61, 0.66, 0.62]
    r = paired(a, b)
    d = [x - y for x, y in zip(a, b)]
    se = statistics.stdev(d) / math.sqrt(5)
    assert r["diff"] == pytest.approx(statistics.mean(d))
    assert (r["low"], r["high"]) == pytest.approx((r["diff"] - 2.776445 * se, r["diff"] + 2.776445 * se), rel=1e-5)
    assert r["t"] == pytest.approx(statistics.mean(d) / se)
    assert r["p_t"] < 0.001 and r["p_sign"] == 2 / 32
    swapped = paired(b, a)
    assert swapped["diff"] == pytest.approx(-r["diff"]) and swapped["p_t"] == pytest.approx(r["p_t"])


def test_pairing_removes_the_seed_effect():
    # a large seed effect shared by both variants, and a constant +0.01 gain: unpaired it is lost, paired it is exact
    seed_effect = [0.0, 0.3, -0.2, 0.25, -0.1]
    base = [0.5 + e for e in seed_effect]
    better = [x + 0.01 for x in base]
    r = paired(better, base)
    assert r["diff"] == pytest.approx(0.01) and r["sd"] == pytest.approx(0.0, abs=1e-12)
    assert r["p_sign"] == 2 / 32


def test_one_pair_has_no_interval():
    r = paired([1.0], [0.5])
    assert r["diff"] == 0.5 and math.isnan(r["low"]) and math.isnan(r["p_t"]) and r["p_sign"] == 1.0
    with pytest.raises(ValueError, match="paired"):
        paired([1.0, 2.0], [1.0])


def test_trend_recovers_a_known_slope_over_log_p():
    ps = [1, 2, 4, 8]
    # y = 0.8 - 0.05 * log2(p) + a seed offset: slope -0.05 per doubling in every seed
    ys = {s: [0.8 + 0.1 * s - 0.05 * math.log2(p) for p in ps] for s in range(5)}
    r = trend(ps, ys)
    assert r["slope"] == pytest.approx(-0.05) and all(x == pytest.approx(-0.05) for x in r["slopes"])
    assert r["p_sign"] == 2 / 32
    flat = trend(ps, {s: [0.5, 0.6, 0.4, 0.5] if s % 2 else [0.5, 0.4, 0.6, 0.5] for s in range(4)})
    assert abs(flat["slope"]) < 1e-12 and flat["p_sign"] == 1.0
    linear_x = trend([1, 2, 3], {0: [1, 3, 5], 1: [0, 2, 4]}, log=False)
    assert linear_x["slope"] == pytest.approx(2.0)
