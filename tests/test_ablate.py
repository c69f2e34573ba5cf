"""``fla ablate`` and its tasks: the generators and the loader, the mixers, the command end to end (quick)."""
from __future__ import annotations

import os
import re

import numpy as np
import pytest
import torch

import fla.experiments.ablation as A
from fla import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from fla.experiments.ablation.tasks import (BLANK, IGNORE, PAIR, QUERY, HelmetTask, NeedleTask, RecallTask, confusion,
                                           helmet_patches, mean_iou, needle_batch, patch_labels, recall_batch)

from conftest import SHARED
from helpers import cli, read_csv, run_fla
from shared_data import present

HELMET = SHARED / "data" / "helmet"


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


# ---------------------------------------------------------------------------------------------- needle


def test_needle_batch_shapes_roles_and_normalised_distractors():
    b = needle_batch(16, grid=(8, 12), pairs=4, keys=40, values=10, width=24, generator=torch.Generator().manual_seed(2))
    for t in (b.role, b.key, b.value, b.target):
        assert t.shape == (16, 8, 12) and t.dtype == torch.long
    assert b.noise.shape == (16, 8, 12, 24) and b.noise.dtype == torch.float32
    assert ((b.role == PAIR).sum(dim=(1, 2)) == 4).all() and ((b.role == QUERY).sum(dim=(1, 2)) == 4).all()
    distractor = b.role == BLANK
    assert (distractor.sum(dim=(1, 2)) == 8 * 12 - 8).all(), "every cell but the pairs and queries is a distractor"
    norms = b.noise.norm(dim=-1)
    assert torch.allclose(norms[distractor], torch.full_like(norms[distractor], 24 ** 0.5))
    assert (norms[~distractor] == 0).all() and (b.key[distractor] == 0).all() and (b.value[distractor] == 0).all()
    other = b.noise[distractor]  # fresh random directions, not one repeated vector
    assert (other @ other.T / 24).triu(1).abs().max() < 0.95


def test_needle_answer_is_recoverable_from_the_inputs():
    b = needle_batch(32, grid=(16, 16), pairs=4, generator=torch.Generator().manual_seed(0))
    assert torch.equal(_solve(b), b.target)


def test_needle_stem_shows_a_distractor_as_its_noise_alone():
    task = NeedleTask(grid=(8, 8), width=16, test_size=8, eval_sides=())
    stem = task.stem(16)
    b = task.test
    x = stem(b)  # (B, C, H, W)
    distractor = b.role == BLANK
    assert torch.equal(x.permute(0, 2, 3, 1)[distractor], b.noise[distractor])
    with pytest.raises(ValueError, match="model dim must be 16"):
        task.stem(32)
    assert task.setting == "N=64" and task.at(16).grid == (16, 16) and task.at(16).setting == "N=256"


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


@pytest.mark.needs_data
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


@pytest.mark.needs_data
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


def test_configs_are_the_five_variants_then_the_p_sweep_and_per_head():
    cfgs = A.configs()
    assert [c.variant for c in cfgs[:5]] == list(A.VARIANTS)
    focus = [c for c in cfgs if c.variant in ("linear", "linear+focus") and c.kernel_size == 0 and not c.per_head]
    assert sorted(c.p for c in focus) == sorted(A.P_SWEEP)  # p = 1 is the linear row itself
    assert [c for c in cfgs if c.per_head] == [A.Config("linear+focus", A.P_DEFAULT, 0, per_head=True)]
    assert len(cfgs) == len(set(cfgs)) == 5 + len(A.P_SWEEP) - 2 + 1
    assert A.configs(["linear", "softmax"]) == [A.BASE["softmax"], A.BASE["linear"]]


def _differences(a, b, grid=(6, 6)):
    (ca, ka), (cb, kb) = A.mixer_args(a, grid), A.mixer_args(b, grid)
    return {k for k in ka.keys() | kb.keys() if ka.get(k) != kb.get(k)} | ({"class"} if ca is not cb else set())


@pytest.mark.parametrize("a, b, what", A.CONTRASTS[:5], ids=[c[2] for c in A.CONTRASTS[:5]])
def test_each_contrast_changes_exactly_one_module_argument(a, b, what):
    named = {"focusing (p=1 → 3)": {"focusing_factor"}, "DWC": {"kernel_size"},
             "focusing, on top of DWC": {"focusing_factor"}, "DWC, on top of focusing": {"kernel_size"},
             "focusing per head vs over C": {"class"}}
    assert _differences(a, b) == named[what]
    ma, mb = A.token_mixer(a, 32, 4, (6, 6)), A.token_mixer(b, 32, 4, (6, 6))
    shapes = lambda m: {n: p.shape for n, p in m.named_parameters() if not n.startswith("dwc")}  # noqa: E731
    assert shapes(ma) == shapes(mb), "scale and positional encoding on in both"


def test_token_mixers_are_one_module_with_its_parts():
    mix = {v: A.token_mixer(c, 32, 4, (6, 6)) for v, c in A.BASE.items()}
    assert type(mix["softmax"]) is SoftmaxAttention
    assert all(type(m) is FocusedLinearAttention for v, m in mix.items() if v != "softmax")
    assert {v: m.focusing_factor for v, m in mix.items() if v != "softmax"} == {
        "linear": 1.0, "linear+focus": 3.0, "linear+dwc": 1.0, "fla": 3.0}
    has_dwc = {v: getattr(m, "dwc", None) is not None for v, m in mix.items()}
    assert has_dwc == {"softmax": False, "linear": False, "linear+focus": False, "linear+dwc": True, "fla": True}
    x = torch.randn(2, 32, 6, 6)
    assert all(m(x).shape == x.shape for m in mix.values())
    with pytest.raises(ValueError, match="p >= 1"):
        A.mixer_args(A.Config("linear", 0.5), (6, 6))


def test_p1_is_relu_linear_attention_over_the_learned_scale():
    torch.manual_seed(0)
    m = A.token_mixer(A.BASE["linear"], 16, 2, (4, 4))
    with torch.no_grad():
        m.scale.uniform_(-1, 1)
    x = torch.randn(3, 16, 4, 4)
    q, k, _ = m._qkv(x)
    phi_q, phi_k = m.features(q, k)
    k = k + m.pos
    scale = torch.nn.functional.softplus(m.scale)[:, None]
    assert torch.allclose(phi_q, (torch.relu(q.flatten(2)) + 1e-6) / scale, rtol=1e-5, atol=1e-7)
    assert torch.allclose(phi_k, (torch.relu(k.flatten(2)) + 1e-6) / scale, rtol=1e-5, atol=1e-7)


def test_per_head_focusing_normalises_each_head_on_its_own():
    torch.manual_seed(1)
    over_c = A.token_mixer(A.BASE["linear+focus"], 16, 2, (4, 4))
    per_head = A.token_mixer(A.Config("linear+focus", 3, 0, per_head=True), 16, 2, (4, 4))
    per_head.load_state_dict(over_c.state_dict())  # same parameters: only where f_p is taken differs
    x = torch.randn(2, 16, 4, 4)
    q, k, _ = per_head._qkv(x)
    fast, slow = per_head.features(q, k, fast=True), per_head.features(q, k, fast=False)
    assert all(torch.allclose(a, b, rtol=1e-4, atol=1e-6) for a, b in zip(fast, slow))
    # per head, each head's d-vector keeps the norm of its own ReLU features
    plain = (torch.relu(q.flatten(2)) + 1e-6) / torch.nn.functional.softplus(per_head.scale)[:, None]
    heads = lambda t: t.unflatten(1, (2, 8)).norm(dim=2)  # noqa: E731
    assert torch.allclose(heads(fast[0]), heads(plain), rtol=1e-4)
    assert not torch.allclose(over_c(x), per_head(x), atol=1e-4)
    one_head = A.token_mixer(A.Config("linear+focus", 3, 0, per_head=True), 16, 1, (4, 4))
    ref = A.token_mixer(A.BASE["linear+focus"], 16, 1, (4, 4))
    one_head.load_state_dict(ref.state_dict())
    assert torch.allclose(one_head(x), ref(x), rtol=1e-4, atol=1e-6), "one head: per head is over C"


def test_best_learning_rate_is_picked_on_the_tuning_seed():
    cfg = A.BASE["linear"]
    row = lambda lr, seed, value: {"task": "recall", "setting": "pairs=16", "variant": cfg.variant, "p": 1.0,  # noqa: E731
                                   "kernel_size": 0, "per_head": 0, "lr": lr, "seed": seed, "value": value}
    rows = [row(1e-2, A.TUNE_SEED, 0.5), row(3e-2, A.TUNE_SEED, 0.7), row(1e-2, 0, 0.9)]
    assert A.best_lrs(rows) == {("recall", "pairs=16", cfg): 3e-2}
    tie = [row(3e-2, A.TUNE_SEED, 1.0), row(1e-2, A.TUNE_SEED, 1.0)]  # in the order parallel runs finished
    assert A.best_lrs(tie) == A.best_lrs(tie[::-1]) == {("recall", "pairs=16", cfg): 1e-2}


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
                          "configs": ["all"], "dim": 16, "heads": 2, "depth": 1, "steps": 2, "batch": 4, "lrs": [1e-3]}}
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


def test_learning_rates_are_tuned_on_their_own_seed_then_the_best_is_seeded(tmp_path, monkeypatch):
    presets = {"recall": {"task_args": {"pairs": 4, "queries": 4, "keys": 16, "values": 16, "test_size": 16},
                          "configs": ["linear"], "dim": 16, "heads": 2, "depth": 1, "steps": 2, "batch": 4,
                          "lrs": [1e-3, 2e-3, 4e-3]}}
    score = {1e-3: 0.2, 2e-3: 0.6, 4e-3: 0.4}  # a fake run whose value says which lr it had

    def one(name, task_args, settings, data, cfg, seed, lr, device):
        return {c: v for c, v in {"task": name, "setting": "pairs=4", "variant": cfg.variant, "p": cfg.p,
                                  "kernel_size": cfg.kernel_size, "per_head": int(cfg.per_head), "lr": lr, "seed": seed,
                                  "metric": "accuracy", "value": score[lr], "steps90": 1, "steps": 2, "params": 1,
                                  "train_s": 0.0}.items()} | {c: float("nan") for c in A.COLUMNS if c not in
                                  ("task", "setting", "variant", "p", "kernel_size", "per_head", "lr", "seed", "metric",
                                   "value", "steps90", "steps", "params", "train_s", "cpu_s")} | {"cpu_s": 0.0}

    monkeypatch.setattr(A.runs, "_one", one)
    rows = A.run_ablation(tmp_path, ["recall"], ["linear"], [0, 1], jobs=1, presets=presets, progress=False,
                          log=lambda m: None)
    assert [(r["seed"], r["lr"]) for r in rows] == [(0, 2e-3), (1, 2e-3)]
    tuned = [r for r in A.read_rows(tmp_path) if r["seed"] == A.TUNE_SEED]
    assert sorted(r["lr"] for r in tuned) == [1e-3, 2e-3, 4e-3]


def test_runs_with_other_settings_do_not_mix_into_one_csv(tmp_path):
    presets = {"recall": {"task_args": {"pairs": 4, "queries": 4, "keys": 16, "values": 16, "test_size": 16},
                          "configs": ["all"], "dim": 16, "heads": 2, "depth": 1, "steps": 1, "batch": 4, "lrs": [1e-3]}}
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
    """``fla ablate --quick`` on every task: the helmet one when the helmet data is here, the others either way
    (asked for without the data, the helmet task is a usage error)."""
    out = tmp_path_factory.mktemp("ablate")
    no_data = {"FLA_DATA": "", "XDG_CACHE_HOME": str(out / "cache")}  # no earlier download either
    env = {"FLA_DATA": str(HELMET)} if present() else no_data
    tasks = [t for t in A.TASKS if t != "helmet" or env["FLA_DATA"]]
    res = _fla("--quick", "--out", str(out), "--tasks", *tasks, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    return out, res, env, tasks


@pytest.mark.slow
@pytest.mark.needs_data(optional=True)
def test_quick_run_writes_csv_table_and_plot(quick_run):
    out, res, env, tasks = quick_run
    header, rows = read_csv(out / "ablation.csv")
    assert header == list(A.COLUMNS)
    assert sorted({r["task"] for r in rows}) == sorted(tasks)
    quick = A.PRESETS["quick"]
    for task in tasks:
        mine = [r for r in rows if r["task"] == task]
        assert len(mine) == len(A.plan([task], quick=True))
        assert all(0.0 <= float(r["value"]) <= 1.0 and int(r["params"]) > 0 for r in mine)
        assert all(1 <= int(r["steps90"]) <= quick[task]["steps"] for r in mine)
    needle = [r for r in rows if r["task"] == "needle"]
    assert {r["setting"] for r in needle} == {"N=64", "N=256"}
    assert all(0 < float(r["mass"]) <= 1 and 0 <= float(r["entropy"]) <= np.log(1024) for r in needle)
    assert (out / "ablation.png").stat().st_size > 10_000
    md = (out / "ablation.md").read_text()
    assert "| linear+focus (p=3) |" in md and "sign-flip" in md
    assert "fla ablate" in res.stderr  # the progress bar


@pytest.mark.slow
@pytest.mark.needs_data(optional=True)
def test_rerun_skips_done_rows(quick_run):
    out, _, env, tasks = quick_run
    before = (out / "ablation.csv").read_text()
    res = _fla("--quick", "--out", str(out), "--tasks", *tasks, env=env)
    assert res.returncode == 0
    n = len(before.splitlines()) - 1
    skipped = re.findall(r"(\d+) of (\d+) runs already in", res.stderr)  # one line per task
    assert skipped and all(a == b for a, b in skipped) and sum(int(a) for a, _ in skipped) == n
    assert (out / "ablation.csv").read_text() == before


@pytest.mark.slow
@pytest.mark.needs_data(optional=True)
def test_second_run_in_this_process_gives_identical_numbers(quick_run, tmp_path):
    """Same seed, other process layout (in this process, not a worker): the same recall numbers."""
    out, _, _, _ = quick_run
    res = _fla("--quick", "--tasks", "recall", "needle", "--variants", "linear", "fla", "linear+focus", "--no-sweeps",
               "--jobs", "1", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    key = lambda r: (r["task"], r["setting"], r["variant"], r["p"], r["kernel_size"], r["per_head"], r["seed"])  # noqa: E731
    first = {key(r): r for r in read_csv(out / "ablation.csv")[1]}
    second = read_csv(tmp_path / "ablation.csv")[1]
    assert len(second) == 3 + 2 * 2
    for r in second:  # bit-identical: the value and every probe, as written
        timing = ("train_s", "cpu_s")
        assert {c: r[c] for c in A.COLUMNS if c not in timing} == {c: first[key(r)][c] for c in A.COLUMNS if c not in timing}


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


# ---------------------------------------------------------------------------------------------- the report


def _row(task, setting, cfg, seed, value, **extra):
    return {"task": task, "setting": setting, "variant": cfg.variant, "p": float(cfg.p), "kernel_size": cfg.kernel_size,
            "per_head": int(cfg.per_head), "lr": 1e-2, "seed": seed, "metric": "accuracy", "value": value,
            "steps90": 10, "steps": 100, **extra}


def test_contrasts_pair_the_seeds():
    seed_effect = [0.0, 0.2, -0.1, 0.15, -0.05]
    rows = [_row("recall", "pairs=16", A.BASE["linear"], s, 0.5 + e) for s, e in enumerate(seed_effect)]
    rows += [_row("recall", "pairs=16", A.BASE["linear+focus"], s, 0.52 + e) for s, e in enumerate(seed_effect)]
    rows.append(_row("recall", "pairs=16", A.BASE["linear+focus"], 7, 0.0))  # no partner: left out
    c = A.contrast(rows, "recall", "pairs=16", A.BASE["linear+focus"], A.BASE["linear"])
    assert c["seeds"] == [0, 1, 2, 3, 4] and c["diff"] == pytest.approx(0.02) and c["sd"] == pytest.approx(0, abs=1e-12)
    assert c["p_sign"] == 2 / 32
    assert "focusing (p=1 → 3)" in A.contrast_table(rows)


def test_trend_over_p_and_needle_slopes_on_known_rows():
    rows = []
    for s in range(5):
        for p in A.P_SWEEP:
            cfg = A.BASE["linear"] if p == 1 else A.Config("linear+focus", p, 0)
            rows.append(_row("recall", "pairs=16", cfg, s, 0.9 - 0.1 * np.log2(p) + 0.01 * s))
        # each needle model scored on N = 64, 256, 1024: mass 4 / N for linear (slope -1), 4 / sqrt(N) for focus
        rows.append(_row("needle", "N=64", A.BASE["linear"], s, 0.9, **{f"mass_{n}": 4 / n * (1 + 0.01 * s) for n in A.NEEDLE_NS}))
        rows.append(_row("needle", "N=64", A.BASE["linear+focus"], s, 0.9, **{f"mass_{n}": 4 / n ** 0.5 for n in A.NEEDLE_NS}))
    t = A.p_trend(rows)
    assert t["ps"] == [float(p) for p in A.P_SWEEP] and t["slope"] == pytest.approx(-0.1) and t["n"] == 5
    slopes = A.needle_slopes(rows)
    assert slopes["linear"]["slope"] == pytest.approx(-1.0)  # log2 mass per doubling of N: -1 is 1/N
    assert slopes["linear+focus (p=3)"]["slope"] == pytest.approx(-0.5)
    assert slopes["focus − linear"]["diff"] == pytest.approx(0.5)


def test_a_task_run_at_other_sizes_keeps_its_own_name_and_resumes(tmp_path):
    presets = {"capacity": {"task_args": {"pairs": 4, "queries": 4, "keys": 16, "values": 16, "test_size": 16},
                            "sizes": [{"pairs": 2, "queries": 2}, {"pairs": 4, "queries": 4}], "configs": ["linear"],
                            "dim": 16, "heads": 2, "depth": 1, "steps": 2, "batch": 4, "lrs": [1e-3, 2e-3]}}
    rows = A.run_ablation(tmp_path, ["capacity"], ["linear"], [0], jobs=1, presets=presets, progress=False,
                          log=lambda m: None)
    assert [(r["task"], r["setting"]) for r in rows] == [("capacity", "pairs=2"), ("capacity", "pairs=4")]
    said = []
    A.run_ablation(tmp_path, ["capacity"], ["linear"], [0], jobs=1, presets=presets, progress=False, log=said.append)
    assert said == ["4 of 4 runs already in " + str(tmp_path / "ablation.csv") + ": skipped",
                    "2 of 2 runs already in " + str(tmp_path / "ablation.csv") + ": skipped"]
