"""One training step of every FLA variant under autocast (bf16 on the CPU): finite loss and gradients.

The attention leaves autocast for its focusing and aggregation (fp32), so the powers x**p cannot
overflow; the convolutions around it run in bf16 as ultralytics' AMP would run them.
"""
from __future__ import annotations

import pytest
import torch
from ultralytics.nn.tasks import DetectionModel

import fla.yolo as Y

from helpers import attention_modules, detection_loss, fla_variants


@pytest.mark.parametrize("variant", fla_variants())
def test_bf16_autocast_training_step_is_finite(variant):
    torch.manual_seed(0)
    net = DetectionModel(Y.model_yaml(variant), nc=2, verbose=False).train()
    attn = attention_modules(net)
    with torch.no_grad():  # the branches start as no-ops: move off zero so they count, as after training
        for a in attn:
            a.proj.weight.normal_(0, 0.05)
    images = torch.rand(2, 3, 64, 64) * 4  # brighter than [0, 1]: larger activations, nearer overflow
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = detection_loss(net, images)
    assert torch.isfinite(loss), loss
    loss.backward()
    for name, p in net.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: gradient missing or not finite"
    assert all(p.grad.abs().sum() > 0 for a in attn for p in a.parameters())  # the attention took part
    torch.optim.SGD(net.parameters(), lr=0.01).step()
    assert all(torch.isfinite(p).all() for p in net.parameters())
