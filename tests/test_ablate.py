"""``fla ablate`` and its tasks: the generators and the loader, the mixers, the command end to end (quick)."""
from __future__ import annotations

import math
import os
import re
import statistics

import numpy as np
import pytest
import torch

import fla.experiments.ablation as A
from fla import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from fla.experiments.ablation.tasks import (IGNORE, PAIR, QUERY, HelmetTask, RecallTask, RetrievalTask, confusion,
                                           helmet_patches, mean_iou, patch_labels, recall_batch, retrieval_batch,
                                           sharp_reader_accuracy)
from fla.experiments.stats import holm, paired_resampled

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


# ---------------------------------------------------------------------------------------------- retrieval


def test_retrieval_batch_keys_share_one_distribution_and_queries_copy_one():
    b = retrieval_batch(8, grid=(8, 8), queries=6, values=4, key_dim=12, generator=torch.Generator().manual_seed(3))
    assert b.vectors.shape == (8, 8, 8, 12) and b.role.shape == (8, 8, 8)
    assert ((b.role == QUERY).sum(dim=(1, 2)) == 6).all() and ((b.role == PAIR).sum(dim=(1, 2)) == 64 - 6).all()
    norms = b.vectors.norm(dim=-1)
    assert torch.allclose(norms, torch.full_like(norms, 12 ** 0.5)), "every key, the answer's too, has one norm"
    assert set(b.value[b.role == PAIR].tolist()) == {1, 2, 3, 4} and (b.value[b.role == QUERY] == 0).all()
    bi, qi, ai = b.answer_cells()
    flat = b.vectors.flatten(1, 2)
    assert torch.equal(flat[bi, qi], flat[bi, ai]), "a query shows its pair's key"
    assert torch.equal(b.target.flatten(1)[bi, qi], b.value.flatten(1)[bi, ai] - 1)
    again = retrieval_batch(8, grid=(8, 8), queries=6, values=4, key_dim=12, generator=torch.Generator().manual_seed(3))
    assert torch.equal(again.vectors, b.vectors)


def test_a_perfectly_sharp_reader_scores_one_and_a_diffuse_one_is_diluted_by_n():
    """The task's ceiling: the reader that puts all weight on the best-matching key finds every answer; a reader
    of fixed, finite sharpness loses accuracy as keys are added (dilution reaches the answer)."""
    g = torch.Generator().manual_seed(0)
    small, large = (retrieval_batch(64, grid=(s, s), queries=8, values=4, key_dim=8, generator=g) for s in (8, 32))
    assert sharp_reader_accuracy(small) == sharp_reader_accuracy(large) == 1.0
    assert sharp_reader_accuracy(small, beta=1.0) > sharp_reader_accuracy(large, beta=1.0) + 0.05
    assert 0.15 < sharp_reader_accuracy(large, beta=0.0) < 0.4, "equal weights vote for no class in particular"


def test_retrieval_task_names_its_size_scores_other_sizes_and_trains_on_several():
    task = RetrievalTask(grid=(16, 16), queries=8, key_dim=8, test_size=8, eval_sides=(8, 32), train_sides=(8, 16))
    assert task.setting == "N=256" and task.at(8).grid == (8, 8) and task.at(16) is task
    sides = {task.batch(2, g, "cpu")[0].role.shape[-1] for g in [torch.Generator().manual_seed(i) for i in range(12)]}
    assert sides == {8, 16}
    stem = task.stem(16)
    assert stem(task.test).shape == (8, 16, 16, 16)


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


def _differences(a, b, grid=(6, 6)):
    (ca, ka), (cb, kb) = A.mixer_args(a, grid), A.mixer_args(b, grid)
    return {k for k in ka.keys() | kb.keys() if ka.get(k) != kb.get(k)} | ({"class"} if ca is not cb else set())


@pytest.mark.parametrize("a, b, what", A.CONTRASTS, ids=[c[2] for c in A.CONTRASTS])
def test_each_contrast_changes_exactly_one_module_argument(a, b, what):
    named = {"focusing (p = 1 → 3)": {"focusing_factor"}, "focusing (p = 1 → 8)": {"focusing_factor"},
             "DWC": {"kernel_size"}, "focusing, on top of DWC": {"focusing_factor"},
             "DWC, on top of focusing": {"kernel_size"}, "focusing per head vs over C": {"focus_over"},
             "linear attention − no mixing": None, "FLA − no mixing": None}
    if named[what] is None:  # the attention-free control: the block without its token mixer
        assert A.mixer_args(b, (6, 6)) == (A.NoMixing, {}) and A.mixer_args(a, (6, 6))[0] is FocusedLinearAttention
        return
    assert _differences(a, b) == named[what]
    ma, mb = A.token_mixer(a, 32, 4, (6, 6)), A.token_mixer(b, 32, 4, (6, 6))
    shapes = lambda m: {n: p.shape for n, p in m.named_parameters() if not n.startswith("dwc")}  # noqa: E731
    assert shapes(ma) == shapes(mb), "scale and positional encoding on in both"


def test_token_mixers_are_one_module_with_its_parts():
    mix = {v: A.token_mixer(c, 32, 4, (6, 6)) for v, c in A.BASE.items()}
    assert type(mix["softmax"]) is SoftmaxAttention and type(mix["none"]) is A.NoMixing
    linear = {v: m for v, m in mix.items() if v not in ("softmax", "none")}
    assert all(type(m) is FocusedLinearAttention for m in linear.values())
    assert {v: m.focusing_factor for v, m in linear.items()} == {"linear": 1.0, "linear+focus": 3.0, "linear+dwc": 1.0,
                                                                 "fla": 3.0}
    assert {v: m.dwc is not None for v, m in linear.items()} == {"linear": False, "linear+focus": False,
                                                                 "linear+dwc": True, "fla": True}
    x = torch.randn(2, 32, 6, 6)
    assert all(m(x).shape == x.shape for m in mix.values()) and not mix["none"](x).any()
    for bad in (dict(variant="linear", p=0.5), dict(variant="softmax", p=3), dict(variant="cosine"),
                dict(variant="linear", p=1, focus_over="tokens")):
        with pytest.raises(ValueError):
            A.Mixer(**bad)


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


def test_per_head_focusing_is_the_modules_argument_and_normalises_each_head_on_its_own():
    torch.manual_seed(1)
    over_c = A.token_mixer(A.BASE["linear+focus"], 16, 2, (4, 4)).double()
    per_head = A.token_mixer(A.Mixer("linear+focus", 3, 0, "heads"), 16, 2, (4, 4)).double()
    assert type(per_head) is FocusedLinearAttention and per_head.focus_over == "heads"
    per_head.load_state_dict(over_c.state_dict())  # same parameters: only where f_p is taken differs
    x = torch.randn(2, 16, 4, 4, dtype=torch.float64)
    q, k, _ = per_head._qkv(x)
    fast, slow = per_head.features(q, k, fast=True), per_head.features(q, k, fast=False)
    assert all(torch.allclose(a, b, rtol=1e-12, atol=1e-14) for a, b in zip(fast, slow))
    # per head, each head's d-vector keeps the norm of its own ReLU features
    plain = (torch.relu(q.flatten(2)) + 1e-6) / torch.nn.functional.softplus(per_head.scale)[:, None]
    heads = lambda t: t.unflatten(1, (2, 8)).norm(dim=2)  # noqa: E731
    assert torch.allclose(heads(fast[0]), heads(plain), rtol=1e-10)
    assert not torch.allclose(over_c(x), per_head(x), atol=1e-4)
    assert torch.autograd.gradcheck(per_head, (x.clone().requires_grad_(),)), "float64 through the fast path"
    one_head = A.token_mixer(A.Mixer("linear+focus", 3, 0, "heads"), 16, 1, (4, 4))
    ref = A.token_mixer(A.BASE["linear+focus"], 16, 1, (4, 4))
    one_head.load_state_dict(ref.state_dict())
    assert torch.allclose(one_head(x.float()), ref(x.float()), rtol=1e-4, atol=1e-6), "one head: per head is over C"
    with pytest.raises(ValueError, match="focus_over"):
        LinearAttention(16, 2, focusing_factor=3, focus_over="tokens")


def test_the_learning_rate_edge_rule():
    assert A.lr_step(1e-2, up=True) == 3e-2 and A.lr_step(3e-2, up=True) == 1e-1
    assert A.lr_step(1e-2, up=False) == 3e-3 and A.lr_step(3e-3, up=False) == 1e-3
    assert A.choose_lr({3e-3: 0.2, 1e-2: 0.6, 3e-2: 0.4}) == (1e-2, None), "inside: done"
    assert A.choose_lr({3e-3: 0.2, 1e-2: 0.4, 3e-2: 0.6}) == (3e-2, 1e-1), "the top edge wins: one step up"
    assert A.choose_lr({3e-3: 0.6, 1e-2: 0.4, 3e-2: 0.2}) == (3e-3, 1e-3), "the bottom edge wins: one step down"
    assert A.choose_lr({3e-3: 0.5, 1e-2: 0.5, 3e-2: 0.1})[0] == 3e-3, "a tie goes to the smaller rate"


def _fake_one(score):
    """A stand-in for ``runs._one`` whose value says which learning rate and seed it had: ``score(lr, seed)``."""
    def one(name, task_args, data, mixer, seed, lr, training, device):
        row = {c: float("nan") for c in A.COLUMNS}
        return row | {"task": name, "setting": "pairs=4", "variant": mixer.variant, "p": mixer.p,
                      "kernel_size": mixer.kernel_size, "focus_over": mixer.focus_over, "lr": lr, "seed": seed,
                      "steps": training.steps, "metric": "accuracy", "value": score(lr, seed), "steps90": 1, "params": 1,
                      "train_s": 0.0, "cpu_s": 0.0}
    return one


def _preset(**kw):
    base = dict(task="recall", task_args={"pairs": 4, "queries": 4, "keys": 16, "values": 16, "test_size": 16},
                mixers=(A.BASE["linear"],), training=A.Training(dim=16, heads=2, depth=1, steps=2, batch=4),
                lrs=(1e-3,), seeds=(0,), failure=0.5, tune_seeds=(100,), max_extend=0)
    return A.Preset(**{**base, **kw})


def test_the_grid_grows_past_a_winning_edge_and_the_median_over_tuning_seeds_picks(tmp_path, monkeypatch):
    # the best rate is 1e-1: the grid (1e-2, 3e-2) grows to 1e-1, then 3e-1, which loses: 1e-1 is inside
    score = lambda lr, seed: 1 - abs(math.log10(lr) + 1) + (0.5 if seed == 101 and lr == 3e-2 else 0)  # noqa: E731
    monkeypatch.setattr(A.runs, "_one", _fake_one(score))
    preset = _preset(lrs=(1e-2, 3e-2), tune_seeds=(100, 101, 102), max_extend=2, seeds=(0, 1),
                     long_mixers=(A.BASE["linear"],), long_seeds=(0,))
    rows = A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": preset}, progress=False, log=lambda m: None)
    assert [(r["seed"], r["lr"], r["steps"]) for r in rows] == [(0, 1e-1, 2), (1, 1e-1, 2), (0, 1e-1, 4)]
    tuned = A.tuned_lrs(A.read_rows(tmp_path), preset)[A.BASE["linear"]]
    assert tuned["grid"] == [1e-2, 3e-2, 1e-1, 3e-1] and tuned["inside"], "one seed's outlier at 3e-2 does not win"
    assert all(r["seed"] not in preset.tune_seeds for r in A.reported(rows, {"recall": preset}))


def test_a_shared_rate_is_the_best_median_of_the_tuned_mixers_pooled(tmp_path, monkeypatch):
    monkeypatch.setattr(A.runs, "_one", _fake_one(lambda lr, seed: {1e-3: 0.2, 3e-3: 0.7, 1e-2: 0.5}[lr]))
    preset = _preset(mixers=(A.BASE["none"], A.BASE["linear"], A.BASE["fla"]), lrs=(1e-3, 3e-3, 1e-2), shared_lr=True,
                     tune_mixers=(A.BASE["linear"], A.BASE["fla"]), tune_seeds=(100, 101, 102))
    rows = A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": preset}, progress=False, log=lambda m: None)
    assert {(r["variant"], r["lr"]) for r in rows} == {("none", 3e-3), ("linear", 3e-3), ("fla", 3e-3)}
    tuning = [r for r in A.read_rows(tmp_path) if r["seed"] >= 100]
    assert {r["variant"] for r in tuning} == {"linear", "fla"} and len(tuning) == 2 * 3 * 3


def test_the_tuning_table_gives_a_shared_rate_one_row_naming_the_mixers_it_was_tuned_on(tmp_path, monkeypatch):
    monkeypatch.setattr(A.runs, "_one", _fake_one(lambda lr, seed: {1e-3: 0.2, 3e-3: 0.7, 1e-2: 0.5}[lr]))
    preset = _preset(mixers=(A.BASE["none"], A.BASE["linear"], A.BASE["fla"]), lrs=(1e-3, 3e-3, 1e-2), shared_lr=True,
                     tune_mixers=(A.BASE["linear"], A.BASE["fla"]), tune_seeds=(100, 101, 102))
    A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": preset}, progress=False, log=lambda m: None)
    table = A.report.tuning_table(A.read_rows(tmp_path), {"recall": preset})
    body = [line for line in table.splitlines()[2:]]
    assert len(body) == 1 and "tuned on linear + fla" in body[0] and "**0.700**" in body[0], table


def test_a_mixer_without_a_tuned_rate_stops_the_run_instead_of_taking_the_grids_first(tmp_path, monkeypatch):
    monkeypatch.setattr(A.runs, "_one", _fake_one(lambda lr, seed: 0.5))
    monkeypatch.setattr(A.runs, "tuned_lrs", lambda rows, p: {})  # as when a mixer's tuning runs are incomplete
    preset = _preset(lrs=(1e-2, 3e-2), tune_seeds=(100,), max_extend=0, seeds=(0,))
    with pytest.raises(RuntimeError, match="no tuned learning rate for linear"):
        A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": preset}, progress=False, log=lambda m: None)
    assert not any(r["seed"] == 0 for r in A.read_rows(tmp_path)), "no reported seed ran at an unchosen rate"


def test_presets_are_typed_and_an_unknown_key_is_an_error():
    preset = A.PRESETS["full"]["recall"]
    assert A.Preset.from_json(preset.to_json()) == preset
    with pytest.raises(TypeError):
        A.Preset.from_json({**preset.to_json(), "lrs_typo": [1e-2]})
    with pytest.raises(TypeError):
        _preset(task_args={"pairs": 4, "paris": 4})
    with pytest.raises(ValueError, match="tuning seed"):
        _preset(seeds=(0, 100))
    with pytest.raises(TypeError):
        A.train_run(RecallTask(pairs=4, queries=4, keys=16, values=16, test_size=8), A.BASE["linear"], 0,
                    A.Training(dim=16, heads=2, depth=1, steps=1, batch=2), 1e-3, devcie="cpu")
    for p in A.PRESETS["full"].values():  # paired seeds, three tuning seeds in no mean, a 2x-steps check per task
        assert len(p.seeds) >= (20 if p.task != "helmet" else 10) and len(p.tune_seeds) >= 3
        assert len(p.long_seeds) >= (6 if p.task != "helmet" else 3) and not set(p.tune_seeds) & set(p.seeds)
    helmet = A.PRESETS["full"]["helmet"]  # the attention-free control and both DWC contrasts run there
    assert {A.BASE[v] for v in ("none", "linear", "linear+focus", "linear+dwc", "fla")} <= set(helmet.mixers)
    assert A.BASE["softmax"] not in helmet.mixers + helmet.reference, "no FLA − softmax row: only the linear arms have positions"
    chance = 1 / A.PRESETS["full"]["retrieval"].task_args["values"]
    assert A.PRESETS["full"]["retrieval"].failure == pytest.approx(chance + 0.05), "failure: did not leave chance"


def test_same_seed_same_numbers_on_the_cpu():
    task = RecallTask(pairs=4, queries=4, keys=16, values=16, test_size=32)
    training = A.Training(dim=16, heads=2, depth=1, steps=5, batch=8)
    a, model = A.train_run(task, A.BASE["fla"], 0, training, 3e-3, device="cpu")
    b, _ = A.train_run(task, A.BASE["fla"], 0, training, 3e-3, device="cpu")
    c, other = A.train_run(task, A.BASE["fla"], 1, training, 3e-3, device="cpu")
    assert a["value"] == b["value"] and a["params"] == b["params"] and a["mass"] == b["mass"]
    assert not all(torch.equal(p, q) for p, q in zip(model.parameters(), other.parameters()))
    assert 0 < a["mass"] <= 1 and 0 <= a["entropy"] <= math.log(64)


def test_interrupted_sweep_keeps_the_finished_rows(tmp_path, monkeypatch):
    preset = _preset(mixers=(A.BASE["softmax"], A.BASE["linear"], A.BASE["fla"]))
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
        A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": preset}, progress=False)
    assert [r["variant"] for r in A.read_rows(tmp_path)] == ["softmax", "linear"]
    calls.clear()
    rows = A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": preset}, progress=False, log=lambda m: None)
    assert len(calls) == 1 and [r["variant"] for r in rows] == ["softmax", "linear", "fla"]


def test_runs_with_other_settings_do_not_mix_into_one_csv(tmp_path):
    A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": _preset(steps=1) if False else _preset()}, progress=False)
    other = _preset(training=A.Training(dim=16, heads=2, depth=1, steps=3, batch=4))
    with pytest.raises(A.SettingsClash, match="other settings"):
        A.run_ablation(tmp_path, ["recall"], jobs=1, presets={"recall": other}, progress=False)
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
        p = quick[task]
        mine = [r for r in rows if r["task"] == task and int(r["steps"]) == p.training.steps
                and int(r["seed"]) not in p.tune_seeds]
        assert len(mine) == len(p.mixers) * len(p.seeds) + len(p.reference) * len(p.reference_seeds)
        assert all(0.0 <= float(r["value"]) <= 1.0 and int(r["params"]) > 0 for r in mine)
        assert all(1 <= int(r["steps90"]) <= p.training.steps for r in mine)
    retrieval = [r for r in rows if r["task"] == "retrieval"]
    assert all(0 < float(r["mass_256"]) <= 1 and 0 <= float(r["entropy_256"]) <= np.log(256) for r in retrieval)
    assert any(int(r["steps"]) == 2 * quick["recall"].training.steps for r in rows), "the 2x-steps check ran"
    assert (out / "ablation.png").stat().st_size > 10_000
    md = (out / "ablation.md").read_text()
    assert "| linear+focus (p=3) |" in md and "Holm" in md and "N = 256: accuracy" in md
    assert "fla ablate" in res.stderr  # the progress bar


@pytest.mark.slow
@pytest.mark.needs_data(optional=True)
def test_rerun_skips_done_rows(quick_run):
    out, _, env, tasks = quick_run
    before = (out / "ablation.csv").read_text()
    res = _fla("--quick", "--out", str(out), "--tasks", *tasks, env=env)
    assert res.returncode == 0
    n = len(before.splitlines()) - 1
    skipped = re.findall(r"(\d+) of (\d+) runs already in", res.stderr)  # one line per phase that had runs to do
    # every phase found all its runs done (a grid grown last time is inside now: that phase has nothing to ask)
    assert skipped and all(a == b for a, b in skipped) and sum(int(a) for a, _ in skipped) <= n
    assert (out / "ablation.csv").read_text() == before


@pytest.mark.slow  # not needs_data: it compares recall rows only, which the data's presence does not change
def test_second_run_in_other_workers_gives_identical_numbers(quick_run, tmp_path):
    """Same seeds, other process layout (two workers, not this process): the same numbers."""
    out, _, _, _ = quick_run
    res = _fla("--quick", "--tasks", "recall", "--jobs", "2", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr[-2000:]
    key = lambda r: tuple(r[c] for c in A.KEY)  # noqa: E731
    first = {key(r): r for r in read_csv(out / "ablation.csv")[1]}
    second = read_csv(tmp_path / "ablation.csv")[1]
    assert second
    for r in second:  # bit-identical: the value and every probe, as written
        timing = ("train_s", "cpu_s")
        assert {c: r[c] for c in A.COLUMNS if c not in timing} == {c: first[key(r)][c] for c in A.COLUMNS if c not in timing}


@pytest.mark.parametrize("args, message", [
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


def _row(task, mixer, seed, value, steps=2, **extra):
    return {"task": task, "setting": "pairs=4", "variant": mixer.variant, "p": float(mixer.p),
            "kernel_size": mixer.kernel_size, "focus_over": mixer.focus_over, "lr": 1e-2, "seed": seed,
            "metric": "accuracy", "value": value, "steps90": 1, "steps": steps, "mass": 0.5, "entropy": 1.0, **extra}


def test_contrasts_pair_the_seeds_count_failures_and_correct_for_the_family():
    presets = {"recall": _preset(mixers=(A.BASE["linear"], A.BASE["linear+focus"]), seeds=tuple(range(20)))}
    effect = [0.1 * ((7 * s) % 5 - 2) for s in range(20)]  # a seed effect that pairing cancels
    rows = [_row("recall", A.BASE["linear"], s, 0.5 + e) for s, e in enumerate(effect)]
    rows += [_row("recall", A.BASE["linear+focus"], s, 0.52 + e, mass=0.5 + 0.1 * (s % 2)) for s, e in enumerate(effect)]
    rows.append(_row("recall", A.BASE["linear+focus"], 30, 0.0))  # no partner: left out
    rows.append(_row("recall", A.BASE["linear+focus"], 100, 0.0))  # a tuning seed: in no mean, no contrast
    cs = A.contrasts(rows, presets)
    value = next(c for c in cs if c["column"] == "value")
    assert value["seeds"] == list(range(20)) and value["diff"] == pytest.approx(0.02) and value["wins"] == 20
    assert value["low"] == pytest.approx(0.02) and value["p"] < 1e-3
    assert [c["column"] for c in cs] == ["value", "mass", "entropy"][:len(cs)]
    assert [c["p_holm"] for c in cs] == holm([c["p"] for c in cs])
    s = {x["label"]: x for x in A.summary(rows, presets)}
    assert s["linear"]["n"] == 20 and s["linear"]["failures"] == sum(0.5 + e < 0.5 for e in effect)
    assert s["linear"]["median"] == pytest.approx(statistics.median(0.5 + e for e in effect))
    assert "focusing (p = 1 → 3)" in A.contrast_table(rows, presets)


def test_paired_statistics_on_known_answers():
    r = paired_resampled([1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 1.0, 2.0, 3.0, 4.0])
    assert r["diff"] == r["median"] == r["low"] == r["high"] == 1.0 and r["p"] == pytest.approx(2 / 32)
    assert paired_resampled([0.3, 0.5], [0.3, 0.5])["p"] == 1.0
    rng = np.random.default_rng(0)
    null = [paired_resampled(rng.normal(size=20), rng.normal(size=20), n_resamples=999, seed=i)["p"] for i in range(60)]
    assert 0.02 < np.mean(np.array(null) < 0.05) < 0.15 or np.mean(np.array(null) < 0.05) <= 0.1
    shifted = paired_resampled(rng.normal(size=20) + 1, rng.normal(size=20) * 0.1)
    assert shifted["p"] < 0.01 and shifted["low"] > 0.3
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2, 0.01]) == pytest.approx([0.2, 0.02])


def test_dwc_and_the_attention_free_control_are_contrasts_and_the_readout_only_where_there_is_one():
    """The helmet preset's five mixers give both DWC contrasts and the control's; a mixer without attention weights
    (mass NaN) gives no readout row; the focusing contrast gives one where the weights exist."""
    five = tuple(A.BASE[v] for v in ("none", "linear", "linear+focus", "linear+dwc", "fla"))
    presets = {"recall": _preset(mixers=five, seeds=tuple(range(6)))}
    gain = {"none": 0.0, "linear": 0.1, "linear+focus": 0.1, "linear+dwc": 0.3, "fla": 0.3}
    rows = [_row("recall", m, s, 0.4 + gain[m.variant] + 0.01 * s, mass=math.nan, entropy=math.nan) for m in five
            for s in range(6)]
    cs = {(c["what"], c["column"]): c for c in A.contrasts(rows, presets)}
    assert {"DWC", "focusing, on top of DWC", "DWC, on top of focusing", "linear attention − no mixing",
            "FLA − no mixing", "focusing (p = 1 → 3)"} == {w for w, _ in cs}
    assert {col for _, col in cs} == {"value"}, "no attention weights, no readout"
    assert cs[("DWC", "value")]["diff"] == pytest.approx(0.2) and cs[("FLA − no mixing", "value")]["diff"] == pytest.approx(0.3)
    assert cs[("focusing, on top of DWC", "value")]["diff"] == pytest.approx(0.0)
    rows = [{**r, "mass": 0.5, "entropy": 1.0} for r in rows]
    assert {col for (w, col) in ((c["what"], c["column"]) for c in A.contrasts(rows, presets))
            if w.startswith("focusing")} == {"value", "mass", "entropy"}


def test_the_dilution_table_shows_only_the_n_its_models_were_scored_at():
    presets = {"retrieval": A.PRESETS["quick"]["retrieval"]}
    rows = [{**_row("retrieval", m, s, 0.5), "setting": "N=64", "acc_64": 0.5, "mass_64": 0.1, "entropy_64": 3.0,
             "acc_256": 0.3, "mass_256": 0.02, "entropy_256": 4.5, "acc_1024": math.nan, "mass_1024": math.nan,
             "entropy_1024": math.nan} for m in (A.BASE["linear"], A.BASE["linear+focus"]) for s in (0, 1)]
    rows = [{**r, "steps": presets["retrieval"].training.steps} for r in rows]
    table = A.dilution_table(rows, presets)
    assert "N = 64: accuracy" in table and "N = 256: accuracy" in table and "N = 1024" not in table


def test_what_the_seeds_could_detect_on_known_differences():
    """The power table: the sd of the per-seed differences and (z₀.₉₇₅ + z₀.₈) · sd / √n, also at 0.05 / the family."""
    presets = {"recall": _preset(mixers=(A.BASE["linear"], A.BASE["linear+focus"]), seeds=tuple(range(16)))}
    diffs = [0.1 * (-1) ** s for s in range(16)]  # sd of the differences: 0.1 · √(16/15)
    rows = [_row("recall", A.BASE["linear"], s, 0.5) for s in range(16)]
    rows += [_row("recall", A.BASE["linear+focus"], s, 0.5 + d, mass=0.5 + 0.01 * s) for s, d in enumerate(diffs)]
    sd = statistics.stdev(diffs)
    z = statistics.NormalDist().inv_cdf
    family = len(A.contrasts(rows, presets))  # the metric, the answer mass and the row entropy
    line = next(x for x in A.power_table(rows, presets).splitlines() if x.startswith("| recall"))
    cells = [c.strip() for c in line.strip("|").split("|")]
    assert cells[2:] == ["16", f"{sd:.3f}", f"{(z(0.975) + z(0.8)) * sd / 4:.3f}",
                         f"{(z(1 - 0.05 / family / 2) + z(0.8)) * sd / 4:.3f}"]
    assert family == 3 and f"({0.05 / family:.4f})" in A.power_table(rows, presets)


def _retrieval_rows(presets, tasks=("retrieval", "recall")):
    rows = []
    for task in tasks:
        for m in (A.BASE["linear"], A.BASE["linear+focus"]):
            for s in range(3):
                extra = {"acc_64": 0.5, "mass_64": 0.1, "entropy_64": 3.0, "acc_256": 0.3, "mass_256": 0.02,
                         "entropy_256": 4.5} if task == "retrieval" else {}
                rows.append({**_row(task, m, s, 0.4 + 0.1 * s, steps=presets[task].training.steps, **extra),
                             "setting": presets[task].setting})
    return rows


def test_the_figure_has_a_panel_per_task_with_rows_chance_lines_and_no_empty_panel():
    import matplotlib
    import matplotlib.pyplot as plt

    matplotlib.use("Agg")
    presets = {t: A.PRESETS["quick"][t] for t in ("retrieval", "recall", "helmet")}
    fig = A.plot(_retrieval_rows(presets), presets=presets)  # no helmet rows: no helmet panel
    titles = [ax.get_title() for ax in fig.axes]
    assert len(titles) == 3 and not any("helmet" in t for t in titles), titles
    assert all(ax.has_data() for ax in fig.axes), "no empty panel"
    labels = {ax.get_title(): [line.get_label() for line in ax.get_lines()] for ax in fig.axes}
    acc = next(t for t in titles if "accuracy" in t)
    assert "chance (0.25)" in labels[acc] and "failure line (0.3)" in labels[acc]
    recall = next(t for t in titles if t.startswith("recall"))
    assert "chance (0.0625)" in labels[recall] and "failure line (0.5)" in labels[recall]
    assert fig.axes[-1].get_position().width > 1.5 * fig.axes[0].get_position().width, "the odd panel spans the row"
    plt.close(fig)
    fig = A.plot(_retrieval_rows(presets, ("recall",)), presets=presets)  # one task: one panel, the page's width
    assert [ax.get_title() for ax in fig.axes] == ["recall: seeds (dots), mean (bar), median (×)"]
    plt.close(fig)
