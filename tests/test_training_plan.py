"""Notebook 06's hardware-sized plan (a pure function of the machine's facts) and its t-based power figures."""
from __future__ import annotations

import math
import statistics

import pytest

from fla.experiments.training.plan import (BUDGET_MIN, CPU_S_PER_EPOCH_320, GPU_S_PER_EPOCH_640, Hardware,
                                           epoch_seconds, hardware, plan_for, replan, seconds_per_epoch)
from fla.experiments.training.power import chi2_quantile, detectable_t, sd_interval, t_quantile
from fla.experiments.stats import detectable

CPU2 = Hardware("cpu", 2)
T4 = Hardware("cuda", 2, "Tesla T4")


def test_mini_run_on_a_two_core_cpu_fits_ten_minutes_at_320_px():
    p = plan_for(CPU2)
    assert p.variants == ("base", "c2f_fla") and p.seeds == (0,) and p.imgsz == 320
    assert p.minutes <= BUDGET_MIN["cpu"]
    # the epochs are what the measured cost allows: one more epoch per run would pass 80% of the budget
    per_run = p.epochs * CPU_S_PER_EPOCH_320 + 20
    assert 2 * per_run <= 0.8 * 600 < 2 * (per_run + CPU_S_PER_EPOCH_320)
    assert "measured" in p.how and f"{p.epochs} epochs" in p.how


def test_mini_run_on_a_t4_fits_twenty_minutes_and_says_its_cost_is_an_estimate():
    p = plan_for(T4)
    assert p.variants == ("base", "c2f_fla") and p.imgsz == 640
    assert p.minutes <= BUDGET_MIN["cuda"]
    assert p.epochs > plan_for(CPU2).epochs  # the GPU affords more training in twice the time
    assert "estimate" in p.how and "Tesla T4" in p.how
    assert math.isclose(p.minutes, 2 * (p.epochs * GPU_S_PER_EPOCH_640 + 60) / 60)


def test_more_cores_buy_more_epochs_until_the_cap():
    assert plan_for(Hardware("cpu", 4)).epochs > plan_for(CPU2).epochs
    assert plan_for(Hardware("cpu", 64)).epochs == plan_for(Hardware("cpu", 8)).epochs
    assert plan_for(Hardware("cpu", 1)).epochs >= 1


def test_full_experiment_is_the_nine_runs_and_its_estimate_is_hours_on_a_cpu():
    cpu, gpu = plan_for(CPU2, "full"), plan_for(T4, "full")
    assert cpu.variants == ("base", "c2f_fla", "neck_fla") and cpu.seeds == (0, 1, 2)
    assert (cpu.epochs, cpu.imgsz) == (60, 320) and (gpu.epochs, gpu.imgsz) == (100, 640)
    assert len(cpu.runs) == 9 and cpu.runs[:3] == [("base", 0), ("c2f_fla", 0), ("neck_fla", 0)]  # seed by seed
    assert cpu.minutes > 120


def test_quick_mode_is_tiny_whatever_was_asked():
    for hw in (CPU2, T4):
        for experiment in ("mini", "full"):
            p = plan_for(hw, experiment, quick=True)
            assert (p.epochs, p.imgsz, len(p.runs)) == (1, 160, 4)


def test_cost_scales_with_pixels():
    assert seconds_per_epoch(CPU2, 640)[0] == pytest.approx(4 * seconds_per_epoch(CPU2, 320)[0])


def test_unknown_experiment_or_device_is_refused():
    with pytest.raises(ValueError, match="mini"):
        plan_for(CPU2, "everything")
    with pytest.raises(ValueError, match="device"):
        plan_for(Hardware("tpu", 2))


def test_a_gpu_seen_by_torch_gets_the_gpu_plan(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Tesla T4")
    hw = hardware()
    assert hw.device == "cuda" and hw.gpu == "Tesla T4"
    assert plan_for(hw).imgsz == 640 and "Tesla T4" in plan_for(hw).how


def test_gpu_plan_replans_when_its_first_run_was_slower_than_estimated():
    """The 5 s/epoch on a GPU is an assumption: after the first run the measured pace decides the epochs."""
    p = plan_for(T4)
    estimate = seconds_per_epoch(T4, p.imgsz)[0]
    assert replan(p, T4, estimate) == p and replan(p, T4, estimate / 2) == p  # as fast as estimated or faster: kept
    slow = replan(p, T4, 3 * estimate)
    assert slow.epochs < p.epochs and slow.minutes <= BUDGET_MIN["cuda"] and slow.runs == p.runs
    assert f"{3 * estimate:.1f} s/epoch measured" in slow.how
    per_run = 0.8 * BUDGET_MIN["cuda"] * 60 / len(p.runs) - 60  # one more epoch would pass 80% of the budget
    assert slow.epochs * 3 * estimate <= per_run < (slow.epochs + 1) * 3 * estimate
    full = plan_for(T4, "full")
    assert replan(full, T4, 3 * estimate).epochs == full.epochs  # the protocol's epochs; only the estimate grows
    assert replan(full, T4, 3 * estimate).minutes > full.minutes
    assert replan(plan_for(CPU2), CPU2, 2 * CPU_S_PER_EPOCH_320).epochs < plan_for(CPU2).epochs


def test_epoch_seconds_are_whole_epochs_from_ultralytics_log():
    """ultralytics' ``time`` column is the seconds elapsed at each epoch's end, validation included: the same
    kind of figure as the plan's estimate (results.csv's s_per_epoch is the training pass alone)."""
    log = [{"epoch": 1.0, "time": 14.0}, {"epoch": 2.0, "time": 24.0}, {"epoch": 3.0, "time": 36.0}]
    assert epoch_seconds(log) == 12.0
    with pytest.raises(ValueError, match="no epoch log"):
        epoch_seconds([])


def test_t_and_chi_square_quantiles():
    assert t_quantile(0.975, 2) == pytest.approx(4.303, abs=1e-3)  # tables
    assert t_quantile(0.975, 1) == pytest.approx(12.706, abs=1e-3)
    assert t_quantile(0.8, 2) == pytest.approx(1.061, abs=1e-3)
    assert t_quantile(0.975, 2000) == pytest.approx(statistics.NormalDist().inv_cdf(0.975), abs=2e-3)
    assert chi2_quantile(0.025, 2) == pytest.approx(-2 * math.log(0.975))  # df = 2: exponential with mean 2
    assert chi2_quantile(0.95, 10) == pytest.approx(18.307, abs=1e-3)


def test_sd_from_three_seeds_is_uncertain_by_an_order_of_magnitude():
    low, high = sd_interval(0.05, df=2)
    assert low == pytest.approx(0.05 * 0.5207, rel=1e-3) and high == pytest.approx(0.05 * 6.285, rel=1e-3)


def test_t_power_is_larger_than_the_normal_one_with_three_seeds():
    z = detectable(3, 100, seed_sd=0.049, image_se=0.016, n0=100)
    t = detectable_t(3, seed_sd=0.049, image_se=0.016)
    assert t == pytest.approx(z * (4.303 + 1.061) / (1.960 + 0.842), rel=1e-3)
    with pytest.raises(ValueError):
        detectable_t(1, seed_sd=0.05, image_se=0.01)
