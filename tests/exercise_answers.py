"""Answers to the 14 exercises of fla.exercises, written as learners would, none of them the checkers' reference.

``RIGHT[checker]``: correct answers in different styles (vectorised torch, loops, einsum, numpy, statistics).
``WRONG[checker]``: (answer, words the failure message must contain, or a tuple of alternatives) for the mistakes a learner makes: wrong
formula, wrong axis, off by one, strict vs non-strict, global instead of per row, a missing guard, a tolerance
that is nearly right, fp16 overflow. In-place changes, wrong types and lookup tables are built from RIGHT by the
tests for every checker.
"""
from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats as scipy_stats

from fla import exercises as ex
from fla.experiments.stats import t_quantile

EPS32 = float(np.finfo(np.float32).eps)


# --- notebook 01

def softmax_attention(q, k, v):
    return torch.softmax(q @ k.mT / q.shape[-1] ** 0.5, dim=-1) @ v


def softmax_attention_einsum(q, k, v):
    s = torch.einsum("bnd,bmd->bnm", q, k) / math.sqrt(q.shape[-1])
    w = (s - s.amax(dim=-1, keepdim=True)).exp()
    return torch.einsum("bnm,bme->bne", w / w.sum(dim=-1, keepdim=True), v)


def softmax_attention_loops(q, k, v):
    out = torch.empty(*q.shape[:-1], v.shape[-1], dtype=q.dtype)
    for b in range(q.shape[0]):
        for i in range(q.shape[1]):
            s = k[b] @ q[b, i] / q.shape[-1] ** 0.5
            w = torch.exp(s - s.max())
            out[b, i] = (w / w.sum()) @ v[b]
    return out


def linear_attention(phi_q, phi_k, v):
    return phi_q @ (phi_k.transpose(-2, -1) @ v) / (phi_q @ phi_k.sum(dim=-2).unsqueeze(-1))


def linear_attention_einsum(phi_q, phi_k, v):
    state = torch.einsum("bmd,bme->bde", phi_k, v)
    norm = torch.einsum("bnd,bd->bn", phi_q, phi_k.sum(dim=1))
    return torch.einsum("bnd,bde->bne", phi_q, state) / norm[..., None]


def linear_attention_loops(phi_q, phi_k, v):
    out = torch.empty(*phi_q.shape[:-1], v.shape[-1], dtype=phi_q.dtype)
    for b in range(phi_q.shape[0]):
        state, ksum = phi_k[b].T @ v[b], phi_k[b].sum(dim=0)
        for i in range(phi_q.shape[1]):
            out[b, i] = phi_q[b, i] @ state / (phi_q[b, i] @ ksum)
    return out


def kv_crossover(d, dv):
    return 2 * d * dv // (d + dv) + 1


def kv_crossover_float(d, dv):
    return math.floor(2 * d * dv / (d + dv)) + 1


def kv_crossover_search(d, dv):
    n = 1
    while not (n + n) * d * dv < n * n * (d + dv):
        n += 1
    return n


# --- notebook 02

def focus(x, p):
    y = x**p
    ny = y.norm(dim=-1, keepdim=True)
    return torch.where(ny > 0, y * x.norm(dim=-1, keepdim=True) / ny.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(y))


def focus_numpy(x, p):
    a = x.numpy()
    y = a**p
    ny, nx = np.sqrt((y * y).sum(-1, keepdims=True)), np.sqrt((a * a).sum(-1, keepdims=True))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ny > 0, y * nx / ny, 0.0)
    return torch.from_numpy(out.astype(a.dtype))


def focus_loops(x, p):
    out = torch.zeros_like(x)
    rows, out_rows = x.reshape(-1, x.shape[-1]), out.view(-1, x.shape[-1])
    for i in range(rows.shape[0]):
        if rows[i].norm() > 0:
            y = rows[i] ** p
            out_rows[i] = y * rows[i].norm() / y.norm()
    return out


def focused_row(q, keys, p):
    def phi(t):
        return focus(torch.relu(t), p)
    s = phi(keys) @ phi(q)
    return s / s.sum()


def focused_row_loops(q, keys, p):
    fq = focus_numpy(q.clamp(min=0), p)
    w = torch.stack([focus_numpy(k.clamp(min=0), p) @ fq for k in keys])
    return w / w.sum()


# --- notebook 03

def numerical_rank(matrix):
    s = torch.linalg.svdvals(matrix)  # in float32, as the matrix is
    return int((s > max(matrix.shape) * torch.finfo(matrix.dtype).eps * s[0]).sum())


def numerical_rank_numpy(matrix):
    return int(np.linalg.matrix_rank(matrix.numpy()))


def numerical_rank_loop(matrix):
    s = np.linalg.svd(matrix.numpy().astype(np.float64), compute_uv=False)
    count = 0
    for sigma in s:
        if sigma > max(matrix.shape) * EPS32 * s[0]:
            count += 1
    return count


def rank_with(tol_of, relative=True):
    def answer(matrix):
        s = torch.linalg.svdvals(matrix.double())
        return int((s > tol_of(matrix) * (s[0] if relative else 1.0)).sum())
    return answer


def dwc_matrix(kernel, h, w):
    n = h * w
    basis = torch.eye(n, dtype=kernel.dtype).reshape(n, 1, h, w)
    return F.conv2d(basis, kernel[None, None], padding=kernel.shape[-1] // 2).reshape(n, n).T


def dwc_matrix_loops(kernel, h, w):
    k = kernel.shape[0]
    r = k // 2
    d = torch.zeros(h * w, h * w, dtype=kernel.dtype)
    for i in range(h):
        for j in range(w):
            for a in range(k):
                for b in range(k):
                    y, x = i + a - r, j + b - r
                    if 0 <= y < h and 0 <= x < w:
                        d[i * w + j, y * w + x] = kernel[a, b]
    return d


def dwc_matrix_numpy(kernel, h, w):
    k = kernel.shape[0]
    r = k // 2
    kn = kernel.numpy()
    d = np.zeros((h * w, h * w), dtype=kn.dtype)
    for i in range(h):
        for j in range(w):
            canvas = np.zeros((h + 2 * r, w + 2 * r), dtype=kn.dtype)
            canvas[i:i + k, j:j + k] = kn
            d[i * w + j] = canvas[r:r + h, r:r + w].ravel()
    return torch.from_numpy(d)


# --- notebook 04

def paired_interval(a, b):
    d = [x - y for x, y in zip(a, b)]
    n, mean = len(d), sum(d) / len(d)
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    half = t_quantile(0.975, n - 1) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def paired_interval_numpy(a, b):
    d = np.asarray(a) - np.asarray(b)
    half = scipy_stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d))
    return float(d.mean()), float(d.mean() - half), float(d.mean() + half)


def paired_interval_float32(a, b):  # torch.tensor(list) is float32: precise enough for scores
    d = torch.tensor(a) - torch.tensor(b)
    m, half = d.mean(), t_quantile(0.975, len(d) - 1) * d.std() / len(d) ** 0.5
    return m.item(), (m - half).item(), (m + half).item()


def sign_flip(diffs):
    n, observed = len(diffs), abs(sum(diffs))
    hits = sum(abs(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs))) >= observed - 1e-12 for m in range(2**n))
    return hits / 2**n


def sign_flip_itertools(diffs):
    observed = abs(sum(diffs))
    patterns = list(itertools.product([1, -1], repeat=len(diffs)))
    return sum(abs(sum(s * x for s, x in zip(signs, diffs))) >= observed - 1e-9 for signs in patterns) / len(patterns)


def sign_flip_numpy(diffs):
    signs = np.array(list(itertools.product([1.0, -1.0], repeat=len(diffs))))
    return float(np.mean(np.abs(signs @ np.asarray(diffs, dtype=float)) >= abs(np.sum(diffs)) - 1e-10))


def answer_mass(weights, answer):
    return weights[:, torch.arange(len(answer)), answer].mean(dim=-1)


def answer_mass_loops(weights, answer):
    out = torch.zeros(weights.shape[0], dtype=weights.dtype)
    for h in range(weights.shape[0]):
        for i in range(len(answer)):
            out[h] += weights[h, i, answer[i]]
    return out / len(answer)


def answer_mass_einsum(weights, answer):
    return torch.einsum("hqn,qn->h", weights, F.one_hot(answer, weights.shape[-1]).to(weights.dtype)) / len(answer)


# --- notebook 05

def block_macs(h, w, c, heads, kappa):
    n, d = h * w, c // heads
    return 4 * n * c * c + heads * (2 * n * d * d + n * d) + n * c * kappa**2


def block_macs_per_token(h, w, c, heads, kappa):
    per_token = 4 * c**2 + 2 * c * (c // heads) + c + c * kappa**2
    return int(np.int64(h * w) * per_token)


def block_macs_loops(h, w, c, heads, kappa):
    n, d, total = h * w, c // heads, 0
    for _ in ("q", "k", "v", "out"):
        total += n * c * c
    for _ in range(heads):
        total += n * d * d + n * d * d + n * d
    return total + n * c * kappa * kappa


def fp16_focus(x, p):
    m = x.amax(dim=-1, keepdim=True)
    y = (x / m.clamp_min(1e-4)) ** p
    ny = y.norm(dim=-1, keepdim=True)
    return torch.where(ny > 0, y * x.norm(dim=-1, keepdim=True) / ny.clamp_min(1e-4), torch.zeros_like(x))


def fp16_focus_loops(x, p):
    out = torch.zeros_like(x)
    rows, out_rows = x.reshape(-1, x.shape[-1]), out.view(-1, x.shape[-1])
    for i in range(rows.shape[0]):
        top = rows[i].max()
        if top > 0:
            y = (rows[i] / top) ** p
            out_rows[i] = y * (rows[i].norm() / y.norm())
    return out


# --- notebook 06

def paired_differences(variant, base):
    d = variant - base
    return d.mean().item(), d.std().item()


def paired_differences_statistics(variant, base):
    d = [float(a - b) for a, b in zip(variant, base)]
    return statistics.mean(d), statistics.stdev(d)


def paired_differences_numpy(variant, base):
    d = variant.numpy() - base.numpy()
    return float(d.mean()), float(d.std(ddof=1))


def bootstrap_interval(values, draws, level):
    means = values[draws].mean(dim=1)
    tail = (1 - level) / 2
    return means.quantile(tail).item(), means.quantile(1 - tail).item()


def bootstrap_interval_loops(values, draws, level):
    means = torch.stack([values[i].mean() for i in draws])
    tail = (1 - level) / 2
    return float(means.quantile(tail)), float(means.quantile(1 - tail))


def bootstrap_interval_numpy(values, draws, level):
    means = values.numpy()[draws.numpy()].mean(axis=1)
    return float(np.percentile(means, 50 * (1 - level))), float(np.percentile(means, 50 * (1 + level)))


RIGHT = {
    ex.check_softmax_attention: [softmax_attention, softmax_attention_einsum, softmax_attention_loops],
    ex.check_linear_attention: [linear_attention, linear_attention_einsum, linear_attention_loops],
    ex.check_kv_crossover: [kv_crossover, kv_crossover_float, kv_crossover_search],
    ex.check_focus: [focus, focus_numpy, focus_loops],
    ex.check_focused_row: [focused_row, focused_row_loops],
    ex.check_numerical_rank: [numerical_rank, numerical_rank_numpy, numerical_rank_loop,
                              lambda m: int(torch.linalg.matrix_rank(m))],
    ex.check_dwc_matrix: [dwc_matrix, dwc_matrix_loops, dwc_matrix_numpy],
    ex.check_paired_interval: [paired_interval, paired_interval_numpy, paired_interval_float32],
    ex.check_sign_flip_p: [sign_flip, sign_flip_itertools, sign_flip_numpy],
    ex.check_answer_mass: [answer_mass, answer_mass_loops, answer_mass_einsum],
    ex.check_block_macs: [block_macs, block_macs_per_token, block_macs_loops],
    ex.check_fp16_focus: [fp16_focus, fp16_focus_loops],
    ex.check_paired_differences: [paired_differences, paired_differences_statistics, paired_differences_numpy],
    ex.check_bootstrap_interval: [bootstrap_interval, bootstrap_interval_loops, bootstrap_interval_numpy],
}


def _sign_flip_with(compare):
    def answer(diffs):
        n, obs = len(diffs), sum(diffs)
        return sum(compare(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs)), obs) for m in range(2**n)) / 2**n
    return answer


def _unguarded_focus(x, p):
    y = x**p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


WRONG = {
    ex.check_softmax_attention: [
        (lambda q, k, v: torch.softmax(q @ k.mT, dim=-1) @ v, "√d"),
        (lambda q, k, v: torch.softmax(q @ k.mT / q.shape[-1], dim=-1) @ v, "√d, not d"),
        (lambda q, k, v: torch.softmax(q @ k.mT / q.shape[-1] ** 0.5, dim=1) @ v, "over the keys"),
        (lambda q, k, v: (lambda s: s / s.sum(-1, keepdim=True))(torch.exp(q @ k.mT / q.shape[-1] ** 0.5)) @ v, "overflow"),
        (lambda q, k, v: torch.softmax(q @ k.T / q.shape[-1] ** 0.5, dim=-1) @ v, "raised"),       # .T of a batch
        (lambda q, k, v: torch.softmax(q @ k.mT / q.shape[-1] ** 0.5, dim=-1) @ (v + 1), "weighted average"),
    ],
    ex.check_linear_attention: [
        (lambda q, k, v: q @ (k.mT @ v), "normaliser"),
        (lambda q, k, v: q @ (k.mT @ v) / k.sum(), "per query"),
        (lambda q, k, v: q @ (k.mT @ v) / (q @ k.sum(dim=(0, 1))[:, None]), "each sequence"),
        (lambda q, k, v: (lambda s: s @ v / s.sum(-1, keepdim=True))(q @ k.mT), "N×M matrix"),         # the qk order
        (lambda q, k, v: q @ (k.mT @ v) / (q @ k.sum(-1, keepdim=True).mT), "raised"),
    ],
    ex.check_kv_crossover: [
        (lambda d, dv: math.ceil(2 * d * dv / (d + dv)), "strictly cheaper"),    # ties: the non-strict answer
        (lambda d, dv: 2 * d * dv // (d + dv), "rounding down"),
        (lambda d, dv: d, "not d"),
        (lambda d, dv: d * dv // (d + dv) + 1, "factor 2"),
        (lambda d, dv: 2 * d * dv // (d + dv) + 2, "smallest such N"),              # off by one upwards
        (lambda d, dv: 2 * d * dv / (d + dv), "Python int"),
    ],
    ex.check_focus: [
        (_unguarded_focus, "all-zero vector"),                                     # missing guard
        (lambda x, p: x**p, "keeps each vector's norm"),
        (lambda x, p: torch.nan_to_num(x**p * x.norm() / (x**p).norm()), "not over the whole tensor"),  # global
        (lambda x, p: torch.nan_to_num(x**p * x.sum(-1, keepdim=True) / (x**p).sum(-1, keepdim=True)), "Euclidean"),
        (lambda x, p: focus(x, p) * (1 + 1e-3), "norm"),
        (lambda x, p: x**p * x.norm(dim=-1, keepdim=True) / ((x**p).norm(dim=-1, keepdim=True) + 1e-6), ("norm", "an eps")),  # a guard
        (lambda x, p: torch.nan_to_num(x**p * x.norm(dim=-1) / (x**p).norm(dim=-1)), "raised"),                  # no keepdim
    ],
    ex.check_focused_row: [
        (lambda q, keys, p: focus(F.relu(keys), p) @ focus(F.relu(q), p), "sum to 1"),
        (lambda q, keys, p: (lambda s: s / s.sum())(F.relu(_unguarded_focus(keys, p)) @ F.relu(_unguarded_focus(q, p))), "ReLU comes first"),
        (lambda q, keys, p: (lambda s: s / s.sum())(focus(keys.abs(), p) @ focus(q.abs(), p)), "absolute value"),
        (lambda q, keys, p: torch.softmax(focus(F.relu(keys), p) @ focus(F.relu(q), p), dim=-1), "softmax"),
        (lambda q, keys, p: (lambda s: s / s.sum())(_unguarded_focus(F.relu(keys), p) @ _unguarded_focus(F.relu(q), p)), "NaN"),
    ],
    ex.check_numerical_rank: [
        (lambda m: int((torch.linalg.svdvals(m) > 0).sum()), "tiny"),
        (lambda m: min(m.shape), "only bounds"),
        (rank_with(lambda m: min(m.shape) * EPS32), "not min(N, M)"),
        (rank_with(lambda m: m.shape[0] * EPS32), "not the number of rows"),
        (rank_with(lambda m: m.shape[1] * EPS32), "not the number of columns"),
        (rank_with(lambda m: 1e-3), "fixed number"),
        (rank_with(lambda m: 1e-2), "fixed number"),
        (rank_with(lambda m: 1e-6), "fixed number"),
        (rank_with(lambda m: max(m.shape) * EPS32, relative=False), "σ₁"),          # no σ₁
        (rank_with(lambda m: max(m.shape) * np.finfo(np.float64).eps), "float32"),
        (lambda m: torch.linalg.matrix_rank(m), "Python int"),
    ],
    ex.check_dwc_matrix: [
        (lambda kernel, h, w: dwc_matrix(kernel, h, w).T, "Dᵀ"),
        (lambda kernel, h, w: dwc_matrix(kernel.flip(0, 1), h, w), "Dᵀ"),
        (lambda kernel, h, w: dwc_matrix(kernel, w, h), "(H, W), not (W, H)"),
        (lambda kernel, h, w: F.conv2d(F.pad(torch.eye(h * w, dtype=kernel.dtype).reshape(h * w, 1, h, w), (kernel.shape[-1] // 2,) * 4,
                                             mode="circular"), kernel[None, None]).reshape(h * w, h * w).T, "zero padding"),
        (lambda kernel, h, w: dwc_matrix(kernel.float(), h, w), "dtype"),
    ],
    ex.check_paired_interval: [
        (lambda a, b: (lambda d, se: (d, d - t_quantile(0.975, len(a) - 1) * se, d + t_quantile(0.975, len(a) - 1) * se))(
            statistics.mean(a) - statistics.mean(b), math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))),
         "pair the seeds"),
        (lambda a, b: (lambda d: (statistics.mean(d), statistics.mean(d) - 1.96 * statistics.stdev(d) / math.sqrt(len(d)),
                                  statistics.mean(d) + 1.96 * statistics.stdev(d) / math.sqrt(len(d))))(
            [x - y for x, y in zip(a, b)]), "Student's t"),
        (lambda a, b: (lambda d: (statistics.mean(d), statistics.mean(d) - t_quantile(0.975, len(d)) * statistics.stdev(d) / math.sqrt(len(d)),
                                  statistics.mean(d) + t_quantile(0.975, len(d)) * statistics.stdev(d) / math.sqrt(len(d))))(
            [x - y for x, y in zip(a, b)]), "n − 1 degrees"),                  # off by one in the degrees of freedom
        (lambda a, b: paired_interval(sorted(a), sorted(b)), "seed s with seed s"),   # pairs broken, by a property
    ],
    ex.check_sign_flip_p: [
        (_sign_flip_with(lambda s, obs: s >= obs - 1e-12), "two-sided"),
        (_sign_flip_with(lambda s, obs: abs(s) > abs(obs) + 1e-12), "use >="),
        (_sign_flip_with(lambda s, obs: abs(s) >= abs(obs)), "rounding"),     # no slack: decimal ties broken
        (lambda d: (sign_flip(d) * 2 ** len(d) - 1) / 2 ** len(d), "do not leave it out"),
    ],
    ex.check_answer_mass: [
        (lambda w, a: w[..., a].mean(dim=(-1, -2)), "own answer"),
        (lambda w, a: w[:, torch.arange(len(a)), a].sum(dim=-1), "not their sum"),
        (lambda w, a: w[:, torch.arange(len(a)), a].mean(dim=0), ("shape", "not over the heads")),  # heads = Q: same shape
        (lambda w, a: w.max(dim=-1).values.mean(dim=-1), "largest weight"),
    ],
    ex.check_block_macs: [
        (lambda h, w, c, heads, k: 2 * block_macs(h, w, c, heads, k), "not FLOPs"),
        (lambda h, w, c, heads, k: block_macs(h, w, c, heads, k) - 4 * h * w * c * c, "projections"),
        (lambda h, w, c, heads, k: block_macs(h, w, c, 1, k), "split into heads"),
        (lambda h, w, c, heads, k: block_macs(h, w, c, heads, k) - h * w * c, "normaliser"),
        (lambda h, w, c, heads, k: block_macs(h, w, c, heads, k) - h * w * c * k * k + h * w * c * k, "κ²"),
        (lambda h, w, c, heads, k: block_macs(h, w, c, heads, k) + 1, "linear in N"),
    ],
    ex.check_fp16_focus: [
        (_unguarded_focus, "overflows fp16"),
        (lambda x, p: (lambda y: y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True))((x / x.amax()) ** p), "its own largest entry"),
        (lambda x, p: (lambda y: y * (x * x).sum(-1, keepdim=True).sqrt() / y.norm(dim=-1, keepdim=True).clamp_min(1e-4))(
            (x / x.amax(dim=-1, keepdim=True).clamp_min(1e-4)) ** p), "sum of squares"),
        (lambda x, p: (lambda y: y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True))((x / x.amax(dim=-1, keepdim=True)) ** p), "all-zero row"),
        (lambda x, p: focus(x.float(), p).half(), "float32"),
        (lambda x, p: focus(x.float(), p), "float16"),
    ],
    ex.check_paired_differences: [
        (lambda a, b: ((a - b).mean().item(), (a.var() + b.var()).sqrt().item()), "pair the seeds"),
        (lambda a, b: ((a - b).mean().item(), (a - b).std(correction=0).item()), "n − 1"),
        (lambda a, b: ((b - a).mean().item(), (b - a).std().item()), "variant − base"),
        (lambda a, b: paired_differences(a.sort().values, b.sort().values), "seed s with seed s"),
        (lambda a, b: ((a - b).mean(), (a - b).std()), "Python float"),
    ],
    ex.check_bootstrap_interval: [
        (lambda v, d, level: (float(v.quantile((1 - level) / 2)), float(v.quantile((1 + level) / 2))), "resampled means"),
        (lambda v, d, level: (float(v[d].mean(1).quantile(1 - level)), float(v[d].mean(1).quantile(level))), "each tail"),
        (lambda v, d, level: (float(v[d].mean(0).quantile((1 - level) / 2)), float(v[d].mean(0).quantile((1 + level) / 2))), "dim=1"),
        (lambda v, d, level: (lambda m: (m[int((1 - level) / 2 * len(m))].item(), m[min(len(m) - 1, int((1 + level) / 2 * len(m)))].item()))(
            v[d].mean(1).sort().values), "linear interpolation"),
    ],
}
