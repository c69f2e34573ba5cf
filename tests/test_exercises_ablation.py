"""Notebook 04's checkers (fla.exercises.ablation): each accepts a correct answer and names a plausible wrong one."""
from __future__ import annotations

import math
import statistics

import torch

from fla.exercises import check_answer_mass, check_paired_interval, check_sign_flip_p
from fla.experiments.stats import t_quantile


def paired_interval(a, b):  # the notebook's solution
    d = [x - y for x, y in zip(a, b)]
    m = statistics.mean(d)
    half = t_quantile(0.975, len(d) - 1) * statistics.stdev(d) / math.sqrt(len(d))
    return m, m - half, m + half


def sign_flip(diffs):  # the notebook's solution
    n, observed = len(diffs), abs(sum(diffs))
    hits = sum(abs(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs))) >= observed - 1e-12 for m in range(2 ** n))
    return hits / 2 ** n


def answer_mass(weights, answer):  # the notebook's solution
    return weights[:, torch.arange(len(answer)), answer].mean(dim=-1)


def test_solutions_pass(capsys):
    assert check_paired_interval(paired_interval)
    assert check_sign_flip_p(sign_flip)
    assert check_answer_mass(answer_mass)
    assert capsys.readouterr().out.count("✓") == 3


def test_unpaired_interval_is_named(capsys):
    def unpaired(a, b):
        d = statistics.mean(a) - statistics.mean(b)
        se = math.sqrt(statistics.variance(a) / len(a) + statistics.variance(b) / len(b))
        half = t_quantile(0.975, len(a) - 1) * se
        return d, d - half, d + half

    assert not check_paired_interval(unpaired)
    assert "pair the seeds" in capsys.readouterr().out


def test_normal_quantile_is_named(capsys):
    def normal(a, b):
        d = [x - y for x, y in zip(a, b)]
        m, half = statistics.mean(d), 1.96 * statistics.stdev(d) / math.sqrt(len(d))
        return m, m - half, m + half

    assert not check_paired_interval(normal)
    assert "Student's t" in capsys.readouterr().out


def test_one_sided_and_strict_sign_flips_are_named(capsys):
    def one_sided(diffs):
        n, obs = len(diffs), sum(diffs)
        return sum(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs)) >= obs - 1e-12 for m in range(2 ** n)) / 2 ** n

    def strict(diffs):
        n, obs = len(diffs), abs(sum(diffs))
        return sum(abs(sum(x if (m >> i) & 1 else -x for i, x in enumerate(diffs))) > obs + 1e-12 for m in range(2 ** n)) / 2 ** n

    assert not check_sign_flip_p(one_sided)
    assert "two-sided" in capsys.readouterr().out
    assert not check_sign_flip_p(strict)
    assert "use >=" in capsys.readouterr().out


def test_wrong_answer_masses_are_named(capsys):
    assert not check_answer_mass(lambda w, a: w[..., a].mean(dim=(-1, -2)))
    assert "each query has its own answer" in capsys.readouterr().out
    assert not check_answer_mass(lambda w, a: w.max(dim=-1).values.mean(dim=-1))
    assert "largest weight" in capsys.readouterr().out


def test_stubs_read_as_not_written(capsys):
    def stub(*args):
        raise NotImplementedError

    assert not check_sign_flip_p(stub)
    assert "not written yet" in capsys.readouterr().out
