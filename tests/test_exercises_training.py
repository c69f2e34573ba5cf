"""Notebook 06's exercises: each checker accepts a learner's correct answer and rejects plausible wrong ones, naming the mistake."""
import statistics

import torch

from fla import exercises as ex


# --- answers as a learner would write them (not the references the checkers use)

def paired_differences(variant, base):
    d = [float(a - b) for a, b in zip(variant, base)]
    return statistics.mean(d), statistics.stdev(d)


def bootstrap_interval(values, draws, level):
    means = torch.stack([values[i].mean() for i in draws])
    tail = (1 - level) / 2
    return float(means.quantile(tail)), float(means.quantile(1 - tail))


def test_correct_answers_pass(capsys):
    assert ex.check_paired_differences(paired_differences)
    assert ex.check_bootstrap_interval(bootstrap_interval)
    assert capsys.readouterr().out.count("✓") == 2


def test_unpaired_spread_is_rejected_with_its_hint(capsys):
    verdict = ex.check_paired_differences(lambda a, b: ((a - b).mean().item(), (a.var() + b.var()).sqrt().item()))
    assert not verdict and "pair the seeds" in verdict.message


def test_population_sd_is_rejected_with_its_hint():
    verdict = ex.check_paired_differences(lambda a, b: ((a - b).mean().item(), (a - b).std(correction=0).item()))
    assert not verdict and "n − 1" in verdict.message


def test_quantiles_of_the_data_instead_of_the_means_are_rejected():
    def wrong(values, draws, level):
        return float(values.quantile((1 - level) / 2)), float(values.quantile((1 + level) / 2))

    verdict = ex.check_bootstrap_interval(wrong)
    assert not verdict and "resampled means" in verdict.message


def test_one_sided_tails_are_rejected():
    def wrong(values, draws, level):
        means = values[draws].mean(1)
        return float(means.quantile(1 - level)), float(means.quantile(level))

    verdict = ex.check_bootstrap_interval(wrong)
    assert not verdict and "each tail" in verdict.message


def test_an_unwritten_stub_reads_as_not_written_yet():
    def stub(values, draws, level):
        raise NotImplementedError

    assert "not written yet" in ex.check_bootstrap_interval(stub).message
