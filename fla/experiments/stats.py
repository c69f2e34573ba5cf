"""Is variant − base more than noise? Paired bootstrap over test images, seed spread, power (notebook 06).

A detector's mAP on 100 test images is one draw: other images would give another number. The
bootstrap redraws the test set from itself — ``n`` images with replacement — and recomputes mAP
for *both* models on the *same* draw, so what the images have in common (hard scenes, tiny heads)
cancels in the difference:

    Δ*_b = mAP(variant on images I_b) − mAP(base on images I_b),   b = 1 … B

and the 2.5 % and 97.5 % quantiles of Δ*_b give the 95 % interval. The detector runs once per model:
ultralytics' validator matches every prediction to the labels at 10 IoU thresholds (``tp``), and a
resample only picks rows of those tables; the AP itself is ``ultralytics.utils.metrics.ap_per_class``,
the code behind ``model.val()``, not ours.

Training noise is the other half: the same model trained with another seed scores differently on
the very same images. ``seed_sd`` (standard deviation of the per-seed differences) measures it, and
``detectable``/``seeds_needed``/``images_needed`` combine both into a power estimate.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Detections", "paired_bootstrap", "detectable", "seeds_needed", "images_needed", "METRICS", "group_by",
           "mean_sd"]

METRICS = ("map50", "map50_95")


def group_by(rows: list[dict], columns: tuple[str, ...]) -> dict[tuple, list[dict]]:
    """Rows by their values of ``columns``, in the order each group first appears (the seeds of one configuration)."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in columns), []).append(r)
    return groups


def mean_sd(xs) -> tuple[float, float]:
    """Mean and sample standard deviation; the deviation of a single value is 0 (no spread seen, not none)."""
    xs = list(xs)
    return statistics.mean(xs), statistics.stdev(xs) if len(xs) > 1 else 0.0


@dataclass
class Detections:
    """One model's predictions on a set of images, already matched to the labels (ultralytics' validator stats).

    Predictions: ``tp`` (P, 10) bool — a true positive at IoU 0.50, 0.55, … 0.95 —, ``conf`` (P,),
    ``pred_cls`` (P,), ``pred_image`` (P,) index into ``images``. Labels: ``target_cls`` (T,),
    ``target_image`` (T,)."""

    images: list[str]
    tp: np.ndarray
    conf: np.ndarray
    pred_cls: np.ndarray
    pred_image: np.ndarray
    target_cls: np.ndarray
    target_image: np.ndarray

    @classmethod
    def from_images(cls, per_image: list[dict]) -> "Detections":
        """From one dict per image with ultralytics' stat keys ``tp, conf, pred_cls, target_cls`` and ``im_name``;
        images are sorted by name, so two models' tables line up."""
        per_image = sorted(per_image, key=lambda s: s["im_name"])

        def cat(key, width=None):
            parts = [np.asarray(s[key]).reshape(-1, *(width or ())) for s in per_image]
            return np.concatenate(parts) if parts else np.zeros((0, *(width or ())))

        index = lambda key: np.repeat(np.arange(len(per_image)), [len(s[key]) for s in per_image])  # noqa: E731
        return cls([s["im_name"] for s in per_image], cat("tp", (10,)).astype(bool), cat("conf").astype(float),
                   cat("pred_cls").astype(int), index("conf"), cat("target_cls").astype(int), index("target_cls"))

    def save(self, path) -> None:
        np.savez_compressed(path, images=np.array(self.images), **{k: getattr(self, k) for k in _ARRAYS})

    @classmethod
    def load(cls, path) -> "Detections":
        with np.load(path) as z:
            return cls([str(x) for x in z["images"]], *(z[k] for k in _ARRAYS))

    def metrics(self, counts: np.ndarray | None = None) -> dict:
        """mAP50, mAP50-95, precision, recall as ``model.val()`` reports them, on the images weighted by ``counts``
        (how often each image is drawn; default once each)."""
        from ultralytics.utils.metrics import ap_per_class

        if counts is None:
            counts = np.ones(len(self.images), dtype=int)
        p = np.repeat(np.arange(len(self.conf)), counts[self.pred_image])  # image drawn k times: its rows k times
        t = np.repeat(self.target_cls, counts[self.target_image])
        if not len(t):
            return dict(map50=0.0, map50_95=0.0, precision=0.0, recall=0.0)
        _, _, precision, recall, _, ap, *_ = ap_per_class(self.tp[p], self.conf[p], self.pred_cls[p], t)
        return dict(map50=float(ap[:, 0].mean()), map50_95=float(ap.mean()),
                    precision=float(precision.mean()), recall=float(recall.mean()))


_ARRAYS = ("tp", "conf", "pred_cls", "pred_image", "target_cls", "target_image")


def _load(d) -> Detections:
    return d if isinstance(d, Detections) else Detections.load(Path(d))


def paired_bootstrap(variant, base, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Paired difference variant − base on the same test images, with a bootstrap interval over images.

    ``variant``, ``base``: ``Detections`` (or ``.npz`` paths) of one run each, or equal-length lists — one run per
    training seed, paired by position. Every resample draws the images once and scores every run on that draw,
    so the interval is for the seed-averaged difference, given these trained models.
    Returns ``{metric: {"diff", "low", "high", "se", "per_seed", "seed_sd"}}`` for ``METRICS``: ``diff`` the
    mean over seeds on the full test set, ``low``/``high`` the percentile interval, ``se`` the bootstrap
    standard deviation, ``per_seed`` the difference of each pair, ``seed_sd`` their standard deviation
    (``nan`` with one seed)."""
    variant = [_load(d) for d in (variant if isinstance(variant, (list, tuple)) else [variant])]
    base = [_load(d) for d in (base if isinstance(base, (list, tuple)) else [base])]
    if len(variant) != len(base) or not variant:
        raise ValueError(f"need one base run per variant run, got {len(variant)} and {len(base)}")
    images = base[0].images
    if any(d.images != images for d in variant + base):
        raise ValueError("the runs were scored on different images; pair them on the same test split")

    def diffs(counts):  # (metric, seed) differences on one draw
        return np.array([[v.metrics(counts)[m] - b.metrics(counts)[m] for v, b in zip(variant, base)] for m in METRICS])

    full = diffs(None)
    rng, n = np.random.default_rng(seed), len(images)
    boot = np.stack([diffs(np.bincount(rng.integers(0, n, n), minlength=n)).mean(1) for _ in range(n_boot)])
    tail = (1 - level) / 2 * 100
    out = {}
    for k, m in enumerate(METRICS):
        low, high = np.percentile(boot[:, k], [tail, 100 - tail])
        out[m] = dict(diff=float(full[k].mean()), low=float(low), high=float(high), se=float(boot[:, k].std(ddof=1)),
                      per_seed=[float(x) for x in full[k]],
                      seed_sd=statistics.stdev(full[k]) if len(full[k]) > 1 else math.nan)
    return out


# --- power: how large a difference could this protocol see? -------------------------------------------
#
# The seed-averaged difference over k seeds scored on n test images has roughly the variance
#     SE² = seed_sd² / k + image_se² · n0 / n
# with seed_sd the spread of one seed's difference (training noise) and image_se the bootstrap standard
# error measured on n0 images (a mean over images: variance ∝ 1/n). A two-sided test at level alpha
# finds a true difference delta with probability `power` when delta ≥ (z_{1-alpha/2} + z_power) · SE.
# Approximate on purpose: seed_sd, measured on a fixed test set, already carries a little image noise,
# so the estimate errs on the safe (larger) side.

def _z(alpha: float, power: float) -> float:
    n = statistics.NormalDist()
    return n.inv_cdf(1 - alpha / 2) + n.inv_cdf(power)


def detectable(seeds: int, images: int, *, seed_sd: float, image_se: float, n0: int,
               alpha: float = 0.05, power: float = 0.8) -> float:
    """Smallest true difference found with probability ``power`` (two-sided level ``alpha``) with ``seeds``
    seeds per model and ``images`` test images, given the measured ``seed_sd`` and ``image_se`` (on ``n0`` images)."""
    return _z(alpha, power) * math.sqrt(seed_sd ** 2 / seeds + image_se ** 2 * n0 / images)


def seeds_needed(delta: float, images: int, *, seed_sd: float, image_se: float, n0: int,
                 alpha: float = 0.05, power: float = 0.8) -> float:
    """Seeds per model needed to detect ``delta`` on ``images`` test images; ``inf`` when the image noise alone
    is already too large (then only more test images help)."""
    room = (delta / _z(alpha, power)) ** 2 - image_se ** 2 * n0 / images
    return math.inf if room <= 0 else max(1, math.ceil(seed_sd ** 2 / room))


def images_needed(delta: float, seeds: int, *, seed_sd: float, image_se: float, n0: int,
                  alpha: float = 0.05, power: float = 0.8) -> float:
    """Test images needed to detect ``delta`` with ``seeds`` seeds per model; ``inf`` when the seed noise alone
    is already too large (then only more seeds help)."""
    room = (delta / _z(alpha, power)) ** 2 - seed_sd ** 2 / seeds
    return math.inf if room <= 0 else max(1, math.ceil(image_se ** 2 * n0 / room))
