"""Pretrained transfer into every FLA variant (``fla.yolo.transfer``; ``fla train --weights``: test_yolo_train_weights.py).

The FLA parts start as a no-op (``fla.yolo.fla_branch``: zero output projection), so a variant that
only *adds* attention computes, at step 0, exactly what the pretrained model does. The zero start is
not a dead branch: the projection gets a gradient at once, the inner weights one step later.
"""
from __future__ import annotations

import pytest
import torch
from ultralytics import YOLO
from ultralytics.nn.tasks import DetectionModel

import fla.yolo as Y

from helpers import HELMET, attention_modules, base_of, detection_loss, fla_variants, photo

FLA = fla_variants()
pytestmark = pytest.mark.needs_data


@pytest.fixture(scope="module")
def bases(trained_base, tmp_path_factory):
    """Family -> a base checkpoint: YOLOv8's trained one; the others saved by ultralytics with randomised
    BatchNorm statistics (so a tensor that did not transfer shows in the outputs)."""
    paths = {"base": trained_base}
    torch.manual_seed(0)
    for base in sorted({base_of(v) for v in FLA} - {"base"}):
        model = YOLO(Y.model_yaml(base))
        for m in model.model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        paths[base] = tmp_path_factory.mktemp("bases") / f"{base.replace(':', '-')}.pt"
        model.save(paths[base])
    return paths


def _untransferred(src: DetectionModel, dst: DetectionModel) -> list[str]:
    """Source tensors with no same-shaped home in dst, after the layer renumbering transfer uses."""
    index = Y.weights._layer_map(src.yaml, dst.yaml)
    theirs = dst.state_dict()
    missing = []
    for k, v in src.state_dict().items():
        _, i, rest = k.split(".", 2)
        home = f"model.{index.get(int(i), -1)}.{rest}"
        if home not in theirs or theirs[home].shape != v.shape:
            missing.append(k)
    return missing


@pytest.mark.parametrize("variant", FLA)
def test_transfer_starts_where_the_pretrained_model_is(bases, variant):
    base = YOLO(bases[base_of(variant)]).model.float().eval()
    ours = DetectionModel(Y.model_yaml(variant), nc=base.model[-1].nc, verbose=False)
    n = Y.transfer(ours, bases[base_of(variant)])
    total = len(ours.state_dict())
    missing = _untransferred(base, ours)
    print(f"{variant}: transferred {n}/{total} tensors; {len(missing)} of the base's found no place")
    assert n > 0
    assert all(a.proj.weight.abs().sum() == 0 for a in attention_modules(ours))
    x = photo((320, 256))
    with torch.no_grad():
        expected, got = base(x)[0], ours.eval()(x)[0]
    if missing:  # a variant that replaces a softmax attention (YOLO26's PSA) cannot reproduce it
        assert all(".attn." in k for k in missing), missing
        assert not torch.allclose(got, expected)
    else:
        assert n == len(base.state_dict())
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-5)


def test_transfer_renumbers_layers_after_a_neck_block():
    """neck_fla inserts layer 10: yolov8's layers 10.. land one index later, the Detect head included."""
    base, neck = (yaml_of(v) for v in ("base", "neck_fla"))
    index = Y.weights._layer_map(base, neck)
    n_layers = len(base["backbone"] + base["head"])
    assert [index[i] for i in range(n_layers)] == list(range(10)) + list(range(11, n_layers + 1))


def yaml_of(variant):
    return DetectionModel(Y.model_yaml(variant), verbose=False).yaml


@pytest.mark.parametrize("variant", FLA)
def test_zero_start_is_not_a_dead_branch(variant):
    """Step 0: the projection gets a gradient, the inner weights none (the branch's output is zero);
    after one optimiser step every attention parameter gets one."""
    torch.manual_seed(0)
    net = DetectionModel(Y.model_yaml(variant), nc=2, verbose=False).train()
    images = torch.rand(2, 3, 64, 64)
    attn = attention_modules(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    detection_loss(net, images).backward()
    for a in attn:
        assert a.proj.weight.grad.abs().sum() > 0
        assert a.to_q.weight.grad is None or a.to_q.weight.grad.abs().sum() == 0
    opt.step()
    opt.zero_grad()
    detection_loss(net, images).backward()
    for a in attn:
        for name, p in a.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient after one step"
