"""Is variant − base more than noise? Paired bootstrap over test images, seed spread, power (notebook 06);
paired-by-seed tests and a trend test (``paired``, ``sign_flip_p``, ``trend``; ``paired_resampled`` and ``holm``: the
ablation, notebook 04).

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
           "mean_sd", "paired", "sign_flip_p", "trend", "t_quantile", "t_sf2", "paired_resampled", "holm"]

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

    def diffs(counts):  # (metric, seed) differences on one draw; each run scored once for all the metrics
        scores = [(v.metrics(counts), b.metrics(counts)) for v, b in zip(variant, base)]
        return np.array([[sv[m] - sb[m] for sv, sb in scores] for m in METRICS])

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


# --- paired by seed: a difference per seed, a trend per seed ------------------------------------------
#
# Two variants trained with the same seeds share their initial draw and their data order, so a seed
# that is lucky for one tends to be lucky for the other: the per-seed differences d_s = a_s - b_s
# carry less noise than two separate means. Two tests of "mean d = 0": Student's t on the d_s (a
# t-interval as well), and the exact sign-flip test, which assumes only that each d_s is as likely
# to have either sign under the null: all 2^n sign patterns, no normal approximation (n = 5 seeds:
# 32 patterns, smallest two-sided p = 2/32 = 0.0625).

# scipy.stats is imported where it is used: it takes seconds to import, and most callers here need no quantile.

def t_sf2(t: float, df: int) -> float:
    """Two-sided tail P(|T| >= |t|) of Student's t with ``df`` degrees of freedom (scipy.stats.t)."""
    from scipy.stats import t as student_t

    return float(2 * student_t.sf(abs(t), df))


def t_quantile(q: float, df: int) -> float:
    """The ``q`` quantile of Student's t (scipy.stats.t): 0.975 and df = 4 give 2.776."""
    from scipy.stats import t as student_t

    return float(student_t.ppf(q, df))


def sign_flip_p(diffs) -> float:
    """Exact two-sided sign-flip p-value of "mean difference = 0": the share of the 2^n sign patterns of the
    paired differences whose |mean| is at least the observed one (ties count, so 0 differences give 1)."""
    d = [float(x) for x in diffs]
    n = len(d)
    if n == 0:
        raise ValueError("need at least one paired difference")
    observed = abs(sum(d)) - 1e-12 * max(1.0, sum(abs(x) for x in d))  # float ties count as ties
    hits = sum(abs(sum(x if (mask >> i) & 1 else -x for i, x in enumerate(d))) >= observed for mask in range(2 ** n))
    return hits / 2 ** n


def paired(a, b, level: float = 0.95) -> dict:
    """``a`` − ``b``, paired by position (by seed): mean difference, its t-interval, paired t and sign-flip p-values.

    Returns ``{"n", "diff", "sd", "low", "high", "t", "p_t", "p_sign", "diffs"}``; with one pair the
    spread, interval and t-test are NaN (nothing to estimate them from) and p_sign is 1.
    """
    a, b = list(a), list(b)
    if len(a) != len(b) or not a:
        raise ValueError(f"need one b per a, paired by seed: got {len(a)} and {len(b)}")
    diffs = [x - y for x, y in zip(a, b)]
    n, mean = len(diffs), statistics.mean(diffs)
    out = {"n": n, "diff": mean, "diffs": diffs, "p_sign": sign_flip_p(diffs)}
    if n < 2:
        return {**out, "sd": math.nan, "low": math.nan, "high": math.nan, "t": math.nan, "p_t": math.nan}
    sd = statistics.stdev(diffs)
    se = sd / math.sqrt(n)
    half = t_quantile(1 - (1 - level) / 2, n - 1) * se
    t = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    return {**out, "sd": sd, "low": mean - half, "high": mean + half, "t": t,
            "p_t": t_sf2(t, n - 1) if math.isfinite(t) else 0.0}


def trend(xs, ys_by_seed: dict, log: bool = True, level: float = 0.95) -> dict:
    """Slope of y over log2(x) (or x), fitted per seed, then tested across seeds like a paired difference.

    ``xs``: the x values (e.g. the focusing powers p); ``ys_by_seed``: seed -> the y at each x (same
    order). Each seed's least-squares slope is one number per seed, so "no trend" is "mean slope = 0"
    and :func:`paired` against zeros tests it (t-interval, sign-flip p). Returns that dict plus
    ``"slope"`` (the mean slope, per doubling of x when ``log``) and ``"slopes"``.
    """
    x = [math.log2(v) if log else float(v) for v in xs]
    if len(x) < 2:
        raise ValueError("a trend needs at least two x values")
    mx = statistics.mean(x)
    sxx = sum((v - mx) ** 2 for v in x)
    slopes = []
    for ys in ys_by_seed.values():
        if len(ys) != len(x):
            raise ValueError(f"every seed needs one y per x: got {len(ys)} for {len(x)} x values")
        my = statistics.mean(ys)
        slopes.append(sum((v - mx) * (y - my) for v, y in zip(x, ys)) / sxx)
    out = paired(slopes, [0.0] * len(slopes), level)
    return {**out, "slope": out["diff"], "slopes": slopes}


def paired_resampled(a, b, level: float = 0.95, n_resamples: int = 9999, seed: int = 0) -> dict:
    """``a`` − ``b`` paired by position (by seed), without assuming normal differences (scipy.stats underneath).

    Returns ``{"n", "diff" (mean), "median" (of the differences), "low", "high" (a percentile bootstrap
    interval of the mean difference), "p" (two-sided sign-flip permutation p of "mean difference = 0": exact
    over all 2^n sign patterns while they number at most ``n_resamples``, else ``n_resamples`` random ones)}``.
    With one pair, or all differences equal, the interval is that difference and p is 1 for 0 differences.
    """
    from scipy import stats as st

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"need one b per a, paired by seed: got {a.shape} and {b.shape}")
    d = a - b
    out = {"n": len(d), "diff": float(d.mean()), "median": float(np.median(d))}
    rng = np.random.default_rng(seed)
    if len(d) < 2 or np.ptp(d) == 0:
        low = high = float(d.mean())
    else:
        ci = st.bootstrap((d,), np.mean, confidence_level=level, n_resamples=n_resamples, method="percentile",
                          random_state=rng).confidence_interval
        low, high = float(ci.low), float(ci.high)
    if not np.any(d):
        p = 1.0
    else:
        p = float(st.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), vectorized=True,
                                      permutation_type="samples", n_resamples=n_resamples, alternative="two-sided",
                                      random_state=rng).pvalue)
    return {**out, "low": low, "high": high, "p": min(1.0, p)}


def holm(ps) -> list[float]:
    """Holm's step-down adjusted p-values for a family of tests, in the input order: the k-th smallest p is
    multiplied by (m − k + 1), then made non-decreasing; a test survives at level α when its adjusted p ≤ α."""
    ps = [float(p) for p in ps]
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * ps[i]))
        adjusted[i] = running
    return adjusted


def median(xs) -> float:
    """The median of the numbers in ``xs`` that are not NaN; NaN when none is."""
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else math.nan
