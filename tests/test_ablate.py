"""``fla ablate`` and its tasks: the generators and the loader, the mixers, the command end to end (quick)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch

import fla.experiments.ablation as A
from fla import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from fla.experiments.ablation.tasks import (IGNORE, PAIR, QUERY, HelmetTask, RecallTask, confusion, helmet_patches, mean_iou,
                       patch_labels, recall_batch)

from conftest import SHARED
from helpers import cli, read_csv, run_fla

HELMET = SHARED / "data" / "helmet"
needs_helmet = pytest.mark.skipif(not (HELMET / "data.yaml").is_file(), reason=f"helmet subset not at {HELMET}")


# ---------------------------------------------------------------------------------------------- recall


def _solve(b) -> torch.Tensor:
    """Answer every query of a recall batch by looking its key up among the pair cells (no model)."""
    answers = torch.full_like(b.target, IGNORE)
    for i in range(len(b)):
        pairs = b.role[i] == PAIR
        table = dict(zip(b.key[i][pairs].tolist(), b.value[i][pairs].tolist()))
        assert len(table) == int(pairs.sum()), "a key appears on two pair cells: the answer would be ambiguous"
        queries = b.role[i] == QUERY
        answers[i][queries] = torch.tensor([table[k] - 1 for k in b.key[i][queries].tolist()])
    return answers


def test_recall_batch_shapes_roles_and_ranges():
    b = recall_batch(32, grid=(6, 10), pairs=12, queries=9, keys=40, values=20, generator=torch.Generator().manual_seed(1))
    for t in (b.role, b.key, b.value, b.target):
        assert t.shape == (32, 6, 10) and t.dtype == torch.long
    assert ((b.role == PAIR).sum(dim=(1, 2)) == 12).all() and ((b.role == QUERY).sum(dim=(1, 2)) == 9).all()
    cells = b.role != 0
    assert (b.key[cells] >= 1).all() and (b.key[cells] <= 40).all() and (b.key[~cells] == 0).all()
    assert (b.value[b.role == PAIR] >= 1).all() and (b.value[b.role == PAIR] <= 20).all()
    assert (b.value[b.role != PAIR] == 0).all(), "a query or blank cell must not show a value"
    asked = b.role == QUERY
    assert (b.target[asked] >= 0).all() and (b.target[asked] < 20).all() and (b.target[~asked] == IGNORE).all()


def test_recall_answer_is_recoverable_from_the_inputs():
    b = recall_batch(64, pairs=16, queries=16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_solve(b), b.target)


def test_recall_cells_are_shuffled_and_seeded():
    a = recall_batch(8, generator=torch.Generator().manual_seed(3))
    b = recall_batch(8, generator=torch.Generator().manual_seed(3))
    c = recall_batch(8, generator=torch.Generator().manual_seed(4))
    assert all(torch.equal(x, y) for x, y in zip(vars(a).values(), vars(b).values()))
    assert not torch.equal(a.key, c.key)
    first_query = (a.role == QUERY).flatten(1).float().argmax(dim=1)
    assert len(set(first_query.tolist())) > 1, "queries must not sit at a fixed place"


def test_recall_rejects_impossible_sizes():
    with pytest.raises(ValueError, match="do not fit"):
        recall_batch(2, grid=(4, 4), pairs=10, queries=10)
    with pytest.raises(ValueError, match="queries <= pairs"):
        recall_batch(2, pairs=4, queries=5)


def test_recall_task_scores_a_perfect_and_a_blind_model():
    task = RecallTask(pairs=8, queries=8, keys=32, values=16, test_size=64)

    class Oracle(torch.nn.Module):  # logits peaked on the looked-up answer
        def forward(self, b):
            answer = _solve(b).clamp_min(0)
            return torch.nn.functional.one_hot(answer, 16).permute(0, 3, 1, 2).float()

    class Blind(torch.nn.Module):  # always the same value
        def forward(self, b):
            return torch.zeros(len(b), 16, *b.role.shape[1:])

    assert task.evaluate(Oracle(), "cpu") == 1.0
    assert task.evaluate(Blind(), "cpu") < 0.2


# ---------------------------------------------------------------------------------------------- helmet


def test_patch_labels_mark_centres_and_small_boxes_win():
    big = [0, 0.5, 0.5, 0.5, 0.5]  # helmet box over the middle half: patches 1..2 of a 4x4 grid... and more
    small = [1, 0.55, 0.55, 0.05, 0.05]  # a head smaller than a patch, inside the big box
    labels = patch_labels(np.array([big, small]), grid=4)
    expected = np.zeros((4, 4), dtype=np.int64)
    expected[1:3, 1:3] = 1  # centres 0.375 and 0.625 lie in [0.25, 0.75]
    expected[2, 2] = 2  # the small box covers no patch centre, but its own centre is in patch (2, 2)
    assert (labels == expected).all()
    assert (patch_labels(np.zeros((0, 5)), 5) == 0).all()


def test_confusion_and_mean_iou():
    target = torch.tensor([0, 0, 1, 1, 2, IGNORE])
    pred = torch.tensor([0, 1, 1, 1, 0, 2])
    conf = confusion(pred, target, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert mean_iou(conf) == pytest.approx((1 / 3 + 2 / 3 + 0) / 3)
    assert mean_iou(confusion(target.clamp_min(0), target, 3)) == 1.0


@needs_helmet
def test_helmet_patches_load_shapes_labels_and_standardised_pixels():
    train = helmet_patches(HELMET / "data.yaml", "train")
    val = helmet_patches(HELMET / "data.yaml", "val", grid=10, patch=4)
    assert train.images.shape == (100, 3, 160, 160) and train.labels.shape == (100, 20, 20)
    assert val.images.shape == (100, 3, 40, 40) and val.labels.shape == (100, 10, 10)
    counts = torch.bincount(train.labels.flatten(), minlength=3)
    assert len(counts) == 3 and (counts > 0).all(), counts  # background, helmet and head all occur
    assert counts[0] > counts[1] > counts[2]  # most patches are background; helmets outnumber bare heads
    mean, std = train.images.mean(dim=(0, 2, 3)), train.images.std(dim=(0, 2, 3))
    assert torch.allclose(mean, torch.zeros(3), atol=1e-4) and torch.allclose(std, torch.ones(3), atol=1e-3)


@needs_helmet
def test_helmet_batches_flip_images_and_labels_together():
    task = HelmetTask(HELMET / "data.yaml")
    x, y = task.batch(64, torch.Generator().manual_seed(0), "cpu")
    assert x.shape == (64, 3, 160, 160) and y.shape == (64, 20, 20)
    flipped = 0
    for xi, yi in zip(x, y):
        i = next(i for i, im in enumerate(task.train.images) if torch.equal(im, xi) or torch.equal(im.flip(-1), xi))
        is_flipped = not torch.equal(task.train.images[i], xi)
        assert torch.equal(task.train.labels[i].flip(-1) if is_flipped else task.train.labels[i], yi)
        flipped += is_flipped
    assert 0 < flipped < 64


# ---------------------------------------------------------------------------------------------- mixers and runs


def test_configs_are_the_five_variants_then_the_sweeps():
    cfgs = A.configs()
    assert [c.variant for c in cfgs[:5]] == list(A.VARIANTS)
    fla = [c for c in cfgs if c.variant == "fla"]
    assert {c.p for c in fla if c.kernel_size == 5} == set(A.P_SWEEP)
    assert {c.kernel_size for c in fla if c.p == 3} == set(A.K_SWEEP)
    assert len(cfgs) == len(set(cfgs)) == 5 + len(A.P_SWEEP) - 1 + len(A.K_SWEEP) - 1
    assert A.configs(["linear", "softmax"]) == [A.BASE["softmax"], A.BASE["linear"]]


def test_token_mixers_differ_only_where_the_variant_says():
    mix = {v: A.token_mixer(c, 32, 4, (6, 6)) for v, c in A.BASE.items()}
    assert type(mix["softmax"]) is SoftmaxAttention and type(mix["linear"]) is LinearAttention
    assert type(mix["linear+dwc"]) is LinearAttention and type(mix["linear+focus"]) is FocusedLinearAttention
    has_dwc = {v: getattr(m, "dwc", None) is not None for v, m in mix.items()}
    assert has_dwc == {"softmax": False, "linear": False, "linear+focus": False, "linear+dwc": True, "fla": True}
    assert mix["linear+focus"].focusing_factor == mix["fla"].focusing_factor == 3
    x = torch.randn(2, 32, 6, 6)
    assert all(m(x).shape == x.shape for m in mix.values())


def test_same_seed_same_numbers_on_the_cpu():
    task = RecallTask(pairs=4, queries=4, keys=16, values=16, test_size=32)
    kw = dict(dim=16, heads=2, depth=1, steps=5, batch=8, lr=3e-3, device="cpu")
    a, model = A.train_run(task, A.BASE["fla"], 0, **kw)
    b, _ = A.train_run(task, A.BASE["fla"], 0, **kw)
    c, other = A.train_run(task, A.BASE["fla"], 1, **kw)
    assert a["value"] == b["value"] and a["params"] == b["params"]
    assert not all(torch.equal(p, q) for p, q in zip(model.parameters(), other.parameters()))


def test_interrupted_sweep_keeps_the_finished_rows(tmp_path, monkeypatch):
    presets = {"recall": {"task_args": {"pairs": 4, "queries": 4, "keys": 16, "values": 16, "test_size": 16},
                          "dim": 16, "heads": 2, "depth": 1, "steps": 2, "batch": 4, "lr": 1e-3}}
    real, calls, interrupted = A.runs._one, [], []

    class Interrupted(Exception):  # stands for Ctrl-C (a real KeyboardInterrupt would stop pytest too)
        pass

    def one(*args):
        calls.append(args)
        if len(calls) == 3 and not interrupted:
            interrupted.append(True)
            raise Interrupted
        return real(*args)

    monkeypatch.setattr(A.runs, "_one", one)
    with pytest.raises(Interrupted):
        A.run_ablation(tmp_path, ["recall"], A.VARIANTS, [0], sweeps=False, jobs=1, presets=presets, progress=False)
    assert [r["variant"] for r in A.read_rows(tmp_path)] == ["softmax", "linear"]
    calls.clear()
    rows = A.run_ablation(tmp_path, ["recall"], A.VARIANTS, [0], sweeps=False, jobs=1, presets=presets,
                          progress=False, log=lambda m: None)
    assert len(calls) == 3 and [r["variant"] for r in rows] == list(A.VARIANTS)


def test_runs_with_other_settings_do_not_mix_into_one_csv(tmp_path):
    presets = {"recall": {"task_args": {"pairs": 4, "queries": 4, "keys": 16, "values": 16, "test_size": 16},
                          "dim": 16, "heads": 2, "depth": 1, "steps": 1, "batch": 4, "lr": 1e-3}}
    A.run_ablation(tmp_path, ["recall"], ["linear"], [0], sweeps=False, jobs=1, presets=presets, progress=False)
    presets["recall"]["steps"] = 2
    with pytest.raises(A.SettingsClash, match="other settings"):
        A.run_ablation(tmp_path, ["recall"], ["linear"], [0], sweeps=False, jobs=1, presets=presets, progress=False)
    assert len(A.read_rows(tmp_path)) == 1


# ---------------------------------------------------------------------------------------------- the command


def _fla(*args, env=None):
    return run_fla("ablate", *args, env={**os.environ, **(env or {})}, timeout=600)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """``fla ablate --quick`` on both tasks when the helmet photos are here (recall only otherwise)."""
    out = tmp_path_factory.mktemp("ablate")
    no_data = {"FLA_DATA": "", "XDG_CACHE_HOME": str(out / "cache")}  # no earlier download either
    env = {"FLA_DATA": str(HELMET)} if (HELMET / "data.yaml").is_file() else no_data
    res = _fla("--quick", "--out", str(out), *([] if env["FLA_DATA"] else ["--tasks", "recall"]), env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    return out, res, env


@pytest.mark.slow
def test_quick_run_writes_csv_table_and_plot(quick_run):
    out, res, env = quick_run
    header, rows = read_csv(out / "ablation.csv")
    assert header == ["task", "variant", "p", "kernel_size", "seed", "metric", "value", "params", "train_s"]
    tasks = ["recall", "helmet"] if env["FLA_DATA"] else ["recall"]
    assert sorted({r["task"] for r in rows}) == sorted(tasks)
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        assert {r["variant"] for r in mine} == set(A.VARIANTS)
        assert len(mine) == len(A.configs())
        assert all(0.0 <= float(r["value"]) <= 1.0 and int(r["params"]) > 0 for r in mine)
    assert (out / "ablation.png").stat().st_size > 10_000
    md = (out / "ablation.md").read_text()
    assert "| linear+focus (p=3) |" in md and "74.1" in md
    assert "fla ablate" in res.stderr  # the progress bar


@pytest.mark.slow
def test_rerun_skips_done_rows(quick_run):
    out, _, env = quick_run
    before = (out / "ablation.csv").read_text()
    res = _fla("--quick", "--out", str(out), *([] if env["FLA_DATA"] else ["--tasks", "recall"]), env=env)
    assert res.returncode == 0
    n = len(before.splitlines()) - 1
    assert f"{n} of {n} runs already in" in res.stderr
    assert (out / "ablation.csv").read_text() == before


@pytest.mark.slow
def test_second_run_in_this_process_gives_identical_numbers(quick_run, tmp_path):
    """Same seed, other process layout (in this process, not a worker): the same recall numbers."""
    out, _, _ = quick_run
    res = _fla("--quick", "--tasks", "recall", "--variants", "linear", "fla", "--no-sweeps", "--jobs", "1",
               "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    first = {(r["variant"], r["p"], r["kernel_size"]): r["value"] for r in read_csv(out / "ablation.csv")[1]
             if r["task"] == "recall"}
    second = read_csv(tmp_path / "ablation.csv")[1]
    assert len(second) == 2
    for r in second:
        assert r["value"] == first[r["variant"], r["p"], r["kernel_size"]]


@pytest.mark.parametrize("args, message", [
    (["--variants", "linear", "cosine"], "--variants cosine: choose from"),
    (["--tasks", "mnist"], "--tasks mnist: choose from"),
    (["--jobs", "0"], "argument --jobs: must be at least 1, got 0"),
    (["--tasks", "helmet", "--data", "/nonexistent/helmet"], "no such file or folder"),
])
def test_bad_arguments_are_one_line_errors(args, message, tmp_path, capsys):
    res = cli("ablate", *args, "--out", str(tmp_path))
    assert res.returncode == 2
    err = res.stderr
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "ablation.csv").exists()


def test_helmet_alone_without_data_is_an_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FLA_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    res = cli("ablate", "--tasks", "helmet", "--out", str(tmp_path))
    assert res.returncode == 2 and "fla data get" in res.stderr and len(res.stderr.strip().splitlines()) == 1
