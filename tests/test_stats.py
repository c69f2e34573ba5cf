"""fla.experiments.stats: the paired bootstrap over test images and the power estimate, on detections with known answers."""
from __future__ import annotations

import math

import numpy as np
import pytest

from fla.experiments.stats import Detections, detectable, images_needed, paired_bootstrap, seeds_needed

from helpers import detections


def test_metrics_match_ultralytics_on_all_images_and_count_repeats():
    from ultralytics.utils.metrics import ap_per_class

    d = detections(np.random.default_rng(1).integers(0, 4, 40))
    ap = ap_per_class(d.tp, d.conf, d.pred_cls, d.target_cls)[5]
    assert d.metrics()["map50"] == pytest.approx(ap[:, 0].mean()) and d.metrics()["map50_95"] == pytest.approx(ap.mean())
    twice = np.full(40, 2)  # every image drawn twice: the same precision/recall curve, the same AP
    assert d.metrics(twice)["map50"] == pytest.approx(d.metrics()["map50"])
    only_misses = (np.arange(40) < 20).astype(int)
    assert d.metrics(only_misses) != d.metrics()


def test_perfect_model_scores_one():
    d = detections(np.full(40, 3))
    # 0.995, not 1: ultralytics integrates the precision envelope with the trapezoid rule on 101 recall points
    assert d.metrics()["map50"] == pytest.approx(0.995) and d.metrics()["recall"] == pytest.approx(1.0)


def test_identical_predictions_give_the_interval_zero_zero():
    d = detections(np.random.default_rng(2).integers(0, 4, 40))
    out = paired_bootstrap(d, d, n_boot=100)
    for m in out.values():
        assert (m["diff"], m["low"], m["high"], m["se"]) == (0.0, 0.0, 0.0, 0.0)


def test_a_strictly_better_model_gives_an_interval_right_of_zero():
    rng = np.random.default_rng(3)
    weak = rng.integers(0, 3, 40)  # finds 0-2 of the 3 boxes of each image
    better, worse = detections(weak + 1), detections(weak)  # one more hit on every image
    out = paired_bootstrap(better, worse, n_boot=200)
    for m in out.values():
        assert 0 < m["low"] <= m["diff"] <= m["high"], m
    flipped = paired_bootstrap(worse, better, n_boot=200)["map50"]
    assert flipped["high"] < 0 and flipped["diff"] == pytest.approx(-out["map50"]["diff"])


def test_interval_narrows_with_more_images():
    rng = np.random.default_rng(4)
    widths = []
    for n in (30, 300):
        a, b = rng.integers(0, 4, n), rng.integers(0, 4, n)  # two unrelated models of equal skill
        r = paired_bootstrap(detections(a, n), detections(b, n), n_boot=200)["map50"]
        widths.append(r["high"] - r["low"])
    assert widths[1] < widths[0] / 2  # width ∝ 1/√n: ten times the images, about a third of the width


def test_seeds_are_paired_and_their_spread_reported():
    rng = np.random.default_rng(5)
    base = [detections(rng.integers(0, 3, 40), seed=s) for s in range(3)]
    variant = [detections(np.minimum(b_hits, 3), seed=s) for s, b_hits in enumerate([rng.integers(0, 4, 40)] * 3)]
    out = paired_bootstrap(variant, base, n_boot=50)["map50"]
    singles = [paired_bootstrap(v, b, n_boot=10)["map50"]["diff"] for v, b in zip(variant, base)]
    assert out["per_seed"] == pytest.approx(singles) and out["diff"] == pytest.approx(np.mean(singles))
    assert out["seed_sd"] == pytest.approx(np.std(singles, ddof=1))
    assert math.isnan(paired_bootstrap(variant[0], base[0], n_boot=10)["map50"]["seed_sd"])


def test_runs_on_different_images_are_refused():
    a, b = detections(np.ones(40)), detections(np.ones(30), n_images=30)
    with pytest.raises(ValueError, match="different images"):
        paired_bootstrap(a, b)
    with pytest.raises(ValueError, match="one base run per variant run"):
        paired_bootstrap([a, a], [a])


def test_save_and_load_round_trip(tmp_path):
    d = detections(np.random.default_rng(6).integers(0, 4, 40))
    d.save(tmp_path / "d.npz")
    e = Detections.load(tmp_path / "d.npz")
    assert e.images == d.images and e.metrics() == d.metrics()


def test_power_formulas_agree_with_each_other():
    measured = dict(seed_sd=0.02, image_se=0.015, n0=100)
    # 2.8 standard errors (z 1.96 + 0.84) of one seed on 100 images
    assert detectable(1, 100, **measured) == pytest.approx(2.8016 * math.hypot(0.02, 0.015), rel=1e-3)
    k = seeds_needed(0.05, 400, **measured)
    assert detectable(k, 400, **measured) <= 0.05 < detectable(k - 1, 400, **measured)
    n = images_needed(0.05, 8, **measured)
    assert detectable(8, n, **measured) <= 0.05 < detectable(8, n - 1, **measured)
    # the image noise of 100 images alone exceeds the budget of a +0.02 effect: more seeds cannot help
    assert seeds_needed(0.02, 100, **measured) == math.inf
    assert images_needed(0.02, 1, **measured) == math.inf  # and one seed's noise alone is too large for any test set
