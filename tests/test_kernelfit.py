"""The kernel fit (fla.experiments.kernelfit): its targets, its determinism, its statistics and its report."""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from fla.experiments import kernelfit as K

REPO = Path(__file__).resolve().parents[1]
TINY = {**K.PRESETS["quick"], "steps": 5}


def _qk(seed=0, d=16, n=128):
    g = torch.Generator().manual_seed(seed)
    return K.unit_vectors((2, 8, d), g), K.unit_vectors((2, n, d), g)


@pytest.mark.parametrize("beta", [0.0, 1.0, 16.0, 128.0])
def test_target_rows_sum_to_one(beta):
    q, k = _qk()
    t = K.targets(q, k, beta)
    assert t.shape == (2, 8, 128) and (t >= 0).all()
    torch.testing.assert_close(t.sum(-1), torch.ones(2, 8))


def test_targets_are_uniform_as_beta_goes_to_zero_and_one_hot_as_it_grows():
    q, k = _qk()
    torch.testing.assert_close(K.targets(q, k, 1e-9), torch.full((2, 8, 128), 1 / 128))
    sharp = K.targets(q, k, 1e4)
    assert (sharp.argmax(-1) == (q @ k.transpose(-2, -1)).argmax(-1)).all()
    assert float(sharp.amax(-1).min()) > 0.99


def test_kl_rows_is_zero_on_the_target_and_positive_elsewhere():
    q, k = _qk()
    t = K.targets(q, k, 8.0)
    assert float(K.kl_rows(t, t).abs().max()) < 1e-5
    uniform = torch.full_like(t, 1 / 128)
    # KL(t ‖ uniform) = log N − H(t)
    torch.testing.assert_close(K.kl_rows(t, uniform), math.log(128) - K.Fn.row_entropy(t))


def test_the_fit_is_deterministic_per_seed_and_alone_as_in_a_batch():
    settings = K._settings(TINY)
    a = K.fit(16, 16.0, "focused", 3.0, 1e-2, [0, 1], **settings)
    b = K.fit(16, 16.0, "focused", 3.0, 1e-2, [0, 1], **settings)
    alone = K.fit(16, 16.0, "focused", 3.0, 1e-2, [1], **settings)
    strip = lambda r: {k: v for k, v in r.items() if k != "cpu_s"}  # noqa: E731
    assert [strip(r) for r in a] == [strip(r) for r in b]
    assert a[0]["kl_heldout"] != a[1]["kl_heldout"]  # two seeds are two draws
    for col in ("kl_heldout", "entropy", "top_mass", "target_entropy"):
        assert alone[0][col] == pytest.approx(a[1][col], rel=1e-5, abs=1e-6)


def test_the_arms_of_a_seed_share_their_held_out_rows_and_p1_focused_starts_as_relu():
    settings = {**K._settings(TINY), "steps": 0}
    relu = K.fit(16, 16.0, "relu", 1.0, 1e-2, [3], **settings)[0]
    p1 = K.fit(16, 16.0, "focused", 1.0, 1e-2, [3], **settings)[0]
    p3 = K.fit(16, 16.0, "focused", 3.0, 1e-2, [3], **settings)[0]
    assert relu["target_entropy"] == p1["target_entropy"] == p3["target_entropy"]  # the same held-out rows
    # f_1 is the identity and softplus(0) divides every channel alike: untrained, p = 1 gives ReLU's rows
    assert p1["kl_heldout"] == pytest.approx(relu["kl_heldout"], rel=1e-4)
    assert p3["kl_heldout"] != pytest.approx(relu["kl_heldout"], rel=1e-4)


def test_training_lowers_the_held_out_kl():
    settings = {**K._settings(TINY), "steps": 0}
    before = K.fit(16, 16.0, "relu", 1.0, 3e-2, [0], **settings)[0]["kl_heldout"]
    after = K.fit(16, 16.0, "relu", 1.0, 3e-2, [0], **{**settings, "steps": 60})[0]["kl_heldout"]
    assert after < before


def test_quick_run_is_fast_resumable_and_reports(tmp_path, monkeypatch):
    t0, said = time.perf_counter(), []
    rows = K.run_kernelfit(tmp_path, quick=True, log=said.append)
    assert time.perf_counter() - t0 < 30  # ≤ 10 s alone; generous on a shared CI machine
    assert len(rows) == len(K.QUICK_SEEDS) * 2 * 2  # seeds × β × arms
    md = (tmp_path / "kernelfit.md").read_text()
    assert md.startswith("## d = 16")
    # every chosen rate lies strictly inside the grid it was chosen from, or the limit is reported
    tuned = K.tuning(K.read_rows(tmp_path))
    assert len(tuned) == 4 and {len(t["grid"]) for t in tuned.values()} >= {4}, "the quick grid grew past an edge"
    for (d, beta, kernel, p), t in tuned.items():
        assert t["inside"] or (t["limit"] and any(f"β = {beta:g}, {K._label(kernel, p)}:" in m for m in said)), t
        line = f"| {d} | {beta:g} | {K._label(kernel, p)} | {', '.join(f'{lr:g}' for lr in t['grid'])} | {t['lr']:g} |"
        assert line + (" yes |" if t["inside"] else " no (limit) |") in md
        assert {r["lr"] for r in rows if (r["d"], r["beta"], r["kernel"], r["p"]) == (d, beta, kernel, p)} == {t["lr"]}
    monkeypatch.setattr(K, "fit", lambda *a, **k: pytest.fail("a finished run ran again"))
    again = K.run_kernelfit(tmp_path, quick=True, log=lambda m: None)
    assert again == rows


def _scored(score, seeds=K.TUNE_SEEDS):
    """A stand-in for ``fit`` whose held-out KL is ``score(kernel, p, lr, seed)``."""
    def fit(d, beta, kernel, p, lr, seeds, **settings):
        return [{"d": d, "beta": float(beta), "kernel": kernel, "p": float(p), "lr": float(lr), "seed": s,
                 "steps": settings["steps"], "kl_heldout": score(kernel, p, lr, s), "entropy": 4.0, "top_mass": 0.02,
                 "target_entropy": 4.0, "target_top_mass": 0.1, "train_kl": 0.0, "cpu_s": 0.0} for s in seeds]
    return fit


def test_the_grid_grows_past_a_winning_edge_until_the_rate_is_inside_or_the_limit(tmp_path, monkeypatch):
    # a synthetic score table: each arm's KL is lowest at its own rate; ReLU's optimum 1e-1 lies two steps above
    # the grid (3e-3, 1e-2, 3e-2), f_2's 1e-3 one step below, f_3's 1e-4 three steps below (past the limit of 2)
    best = {1.0: 1e-1, 2.0: 1e-3, 3.0: 1e-4}
    outlier = lambda kernel, p, lr, seed: -5.0 if seed == K.TUNE_SEEDS[1] and lr == 1e-2 else 0.0  # noqa: E731
    score = lambda kernel, p, lr, seed: abs(math.log10(lr / best[p])) + outlier(kernel, p, lr, seed)  # noqa: E731
    monkeypatch.setattr(K, "fit", _scored(score))
    preset = {**TINY, "arms": [["relu", 1.0], ["focused", 2.0], ["focused", 3.0]], "betas": [64.0],
              "lrs": [3e-3, 1e-2, 3e-2], "max_extend": 2}
    said = []
    rows = K.run_kernelfit(tmp_path, seeds=(0, 1), preset=preset, log=said.append)
    tuned = K.tuning(K.read_rows(tmp_path), preset["lrs"], 2)
    relu, f2, f3 = (tuned[(16, 64.0, *a)] for a in (("relu", 1.0), ("focused", 2.0), ("focused", 3.0)))
    assert relu["grid"] == [3e-3, 1e-2, 3e-2, 1e-1, 3e-1] and relu["lr"] == 1e-1 and relu["inside"]
    assert f2["grid"] == [3e-4, 1e-3, 3e-3, 1e-2, 3e-2] and f2["lr"] == 1e-3 and f2["inside"], "one seed's outlier loses"
    assert f3["grid"] == [3e-4, 1e-3, 3e-3, 1e-2, 3e-2] and f3["lr"] == 3e-4 and f3["limit"] and not f3["inside"]
    assert sum("f_3: the chosen rate 0.0003 sits on an edge" in m for m in said) == 1  # the limit, said once
    assert [(r["kernel"], r["p"], r["lr"]) for r in rows][::2] == [("relu", 1.0, 1e-1), ("focused", 2.0, 1e-3),
                                                                  ("focused", 3.0, 3e-4)]
    table = K.rates_table(K.read_rows(tmp_path), preset["lrs"], 2)
    assert "| 16 | 64 | ReLU | 0.003, 0.01, 0.03, 0.1, 0.3 | 0.1 | yes |" in table
    assert "| 16 | 64 | f_3 | 0.0003, 0.001, 0.003, 0.01, 0.03 | 0.0003 | no (limit) |" in table
    # the chooser alone, on a loss: the lowest median wins, an edge asks for one step past it, a tie the smaller rate
    from fla.experiments.lr_grid import bracket, choose_lr
    assert choose_lr({3e-3: 0.2, 1e-2: 0.1, 3e-2: 0.3}, lower=True) == (1e-2, None)
    assert choose_lr({3e-3: 0.3, 1e-2: 0.2, 3e-2: 0.1}, lower=True) == (3e-2, 1e-1)
    assert choose_lr({3e-3: 0.1, 1e-2: 0.1, 3e-2: 0.3}, lower=True) == (3e-3, 1e-3)
    assert bracket({1e-2: 0.1, 3e-2: 0.2}, [1e-2, 3e-2], 0, lower=True)["limit"], "no growth allowed: the limit"


def test_a_resumed_folder_reports_each_arm_at_its_chosen_rate_only():
    base = {"d": 16, "beta": 4.0, "kernel": "relu", "p": 1.0}
    rows = [{**base, "lr": lr, "seed": s, "kl_heldout": kl} for lr, kl in ((3e-3, 0.3), (1e-2, 0.1), (3e-2, 0.2))
            for s in K.TUNE_SEEDS]
    rows += [{**base, "lr": lr, "seed": 0, "kl_heldout": 1.0} for lr in (3e-3, 1e-2)]  # 3e-3: chosen before the grid grew
    assert [(r["lr"], r["seed"]) for r in K.reported(rows)] == [(1e-2, 0)]


def test_best_lrs_takes_the_lowest_median_on_the_tuning_seeds_only():
    base = {"d": 16, "beta": 4.0, "kernel": "relu", "p": 1.0}
    rows = [{**base, "lr": 0.01, "seed": s, "kl_heldout": v} for s, v in zip(K.TUNE_SEEDS, [0.5, 0.2, 0.3])]
    rows += [{**base, "lr": 0.03, "seed": s, "kl_heldout": v} for s, v in zip(K.TUNE_SEEDS, [0.1, 0.4, 0.35])]
    rows += [{**base, "lr": 0.1, "seed": 0, "kl_heldout": 0.0}]  # a reported seed: never used for the choice
    assert K.best_lrs(rows) == {(16, 4.0, "relu", 1.0): 0.01}  # medians 0.3 vs 0.35


def test_paired_interval_on_known_answers():
    shifted = K.paired_interval(np.full(20, -0.1) + np.linspace(-0.01, 0.01, 20))
    assert shifted["median"] == pytest.approx(-0.1)
    assert shifted["lo"] <= -0.1 <= shifted["hi"] and shifted["hi"] < 0
    assert shifted["p_value"] < 0.001
    symmetric = K.paired_interval(np.r_[np.linspace(0.1, 1, 10), -np.linspace(0.1, 1, 10)])
    assert symmetric["lo"] < 0 < symmetric["hi"] and symmetric["p_value"] > 0.5


def test_holm_on_a_known_answer():
    from fla.experiments.stats import holm  # the one Holm correction, which the kernel fit uses
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def _known_rows():
    """ReLU at KL 1.0 + seed noise; f_3 0.1 (± 0.02) lower on every seed at β = 64, equal at β = 1."""
    rows = []
    for s in range(20):
        noise = 0.01 * ((s * 7) % 5 - 2)
        for beta, gain in ((1.0, 0.0), (64.0, -0.1 + 0.01 * ((s * 3) % 5 - 2))):
            common = {"d": 16, "beta": beta, "lr": 0.01, "seed": s, "steps": 5, "entropy": 4.0, "top_mass": 0.02,
                      "target_entropy": 4.8 if beta == 1 else 0.5, "target_top_mass": 0.01 if beta == 1 else 0.8,
                      "train_kl": 0.0, "cpu_s": 0.0}
            rows.append({**common, "kernel": "relu", "p": 1.0, "kl_heldout": 1.0 + noise})
            rows.append({**common, "kernel": "focused", "p": 3.0, "kl_heldout": 1.0 + noise + gain})
    return rows


def test_the_report_on_known_rows():
    rows = _known_rows()
    cs = {c["beta"]: c for c in K.contrasts(rows)}
    assert cs[64.0]["median"] == pytest.approx(-0.1) and cs[64.0]["wins"] == 20 and cs[64.0]["p_holm"] < 0.05
    assert cs[1.0]["median"] == 0 and cs[1.0]["wins"] == 0
    table = K.table(rows, 16)
    assert re.search(r"\| 64 \| 0.50 \| 0.80 \| 1.000 \| -0.100 \[-0.1\d\d, -0.0\d\d\]\* \|", table), table
    assert "| 1 | 4.80 | 0.01 | 1.000 | +0.000 [+0.000, +0.000] |" in table
    assert "| 16 | 64 | f_3 | – (not tuned) | 0.01 | – |" in K.rates_table(rows)
    md = K.markdown(rows + [{**rows[0], "seed": K.TUNE_SEEDS[0], "kl_heldout": 99.0}])  # tuning rows left out
    assert "99" not in md and "20 seeds" in md
    fig = K.plot(rows)
    assert len(fig.axes) == 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_the_rates_table_marks_a_rate_at_the_edge_of_the_grid():
    rows = [{**r, "seed": s, "lr": lr, "kl_heldout": (lr if r["kernel"] == "relu" else -lr)} for r in _known_rows()
            if r["seed"] == 0 for s in K.TUNE_SEEDS for lr in (0.003, 0.01, 0.03)]
    table = K.rates_table(rows, lrs=[0.003, 0.01, 0.03], max_extend=1)
    assert "| 16 | 64 | ReLU | 0.003, 0.01, 0.03 | 0.003 | no |" in table  # an edge the grid may still grow past
    assert "| 16 | 64 | f_3 | 0.003, 0.01, 0.03 | 0.03 | no |" in table
    grown = rows + [{**r, "lr": 0.001} for r in rows if r["lr"] == 0.003 and r["kernel"] == "relu"]
    grown = [{**r, "kl_heldout": 1.0} if r["lr"] == 0.001 else r for r in grown]
    assert "| 16 | 64 | ReLU | 0.001, 0.003, 0.01, 0.03 | 0.003 | yes |" in K.rates_table(grown, [0.003, 0.01, 0.03], 1)
    stuck = [{**r, "kl_heldout": -1.0} if r["lr"] == 0.001 else r for r in grown]
    assert "| 16 | 64 | ReLU | 0.001, 0.003, 0.01, 0.03 | 0.001 | no (limit) |" in K.rates_table(stuck, [0.003, 0.01, 0.03], 1)


def test_docs_hold_the_shipped_runs_tables():
    if not (K.SHIPPED / "kernelfit.csv").is_file():
        pytest.skip("no shipped kernel fit")
    every, prov = K.shipped()
    rows = K.reported(every)
    doc = (REPO / "docs" / "kernelfit.md").read_text()
    for d in sorted({r["d"] for r in rows}):
        assert K.table(rows, d) in doc, f"docs/kernelfit.md's table for d = {d} is not the shipped rows'"
        assert K.sharpness_table(rows, d) in doc
    assert K.rates_table(every) in doc, "docs/kernelfit.md's learning-rate table is not the shipped rows'"
    assert prov["commit"] and re.search(prov["commit"], doc)


def test_every_shipped_rate_lies_inside_its_grid_or_at_the_stated_limit():
    if not (K.SHIPPED / "kernelfit.csv").is_file():
        pytest.skip("no shipped kernel fit")
    rows, _ = K.shipped()
    tuned = K.tuning(rows)
    assert len(tuned) == 60
    assert {k: t["grid"] for k, t in tuned.items() if not (t["inside"] or t["limit"])} == {}
