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


# --- ultralytics' AMP check during our runs (fla.yolo.amp) --------------------------------------


class _OnGPU(torch.nn.Module):
    """A model whose parameters say "cuda:0", as the AMP check reads the device (no GPU is needed to get that far)."""

    def __init__(self, model):
        super().__init__()
        self.inner = model

    def parameters(self, recurse=True):
        yield torch.empty(0, device="meta").as_subclass(_CudaTensor)


class _CudaTensor(torch.Tensor):
    @property
    def device(self):
        return torch.device("cuda", 0)


@pytest.fixture
def no_download(monkeypatch):
    """Every download ultralytics could start fails the test (asking for a file already on disk is no download)."""
    from pathlib import Path

    from ultralytics.utils import downloads

    def refuse(*args, **kwargs):
        raise AssertionError(f"download attempted: {args}")

    look_up = downloads.attempt_download_asset
    monkeypatch.setattr(downloads, "attempt_download_asset",
                        lambda file, *a, **k: look_up(file, *a, **k) if Path(file).is_file() else refuse(file))
    monkeypatch.setattr(downloads, "safe_download", refuse)


@pytest.mark.parametrize("gpu", ["NVIDIA GeForce GTX 1650", "Quadro T1000", "NVIDIA T400"])
def test_amp_stays_off_on_the_gpus_ultralytics_lists(monkeypatch, no_download, gpu):
    """ultralytics' own list decides first, before any model is loaded (it once returned True when yolo26n.pt was absent)."""
    import ultralytics
    from ultralytics.utils.checks import check_amp

    from fla.yolo.amp import amp_check_offline

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: gpu)
    loads = []
    monkeypatch.setattr(ultralytics, "YOLO", lambda *a, **k: loads.append(a))
    assert amp_check_offline(check_amp)(_OnGPU(torch.nn.Linear(1, 1))) is False
    assert loads == []


def test_amp_check_compares_a_copy_of_the_fla_model_at_hand(no_download):
    """Where the check would load yolo26n.pt (a download when absent), it finds a file and loads the model being
    trained, FLA blocks included: its FP32 and autocast predictions are what gets compared."""
    import ultralytics
    from ultralytics.utils import ASSETS, WEIGHTS_DIR

    from fla.yolo.amp import checked_as_yolo26n

    torch.manual_seed(0)
    net = DetectionModel(Y.model_yaml("c2f_fla"), nc=2, verbose=False)
    real = ultralytics.YOLO
    with checked_as_yolo26n(net):
        from ultralytics.utils import WEIGHTS_DIR as during

        assert (during / "yolo26n.pt").is_file() and during != WEIGHTS_DIR
        model = ultralytics.YOLO(during / "yolo26n.pt")
        assert attention_modules(model.model)
        for (name, ours), theirs in zip(net.state_dict().items(), model.model.state_dict().values()):
            torch.testing.assert_close(theirs.float(), ours.float(), msg=name)
        fp32 = model([ASSETS / "bus.jpg"], imgsz=256, device="cpu", verbose=False)[0].boxes.data
        with torch.autocast("cpu", dtype=torch.bfloat16):
            amp = model([ASSETS / "bus.jpg"], imgsz=256, device="cpu", verbose=False)[0].boxes.data
        assert fp32.shape[1:] == amp.shape[1:] == (6,)
    assert ultralytics.YOLO is real
    from ultralytics.utils import WEIGHTS_DIR as after

    assert after == WEIGHTS_DIR


def test_amp_check_on_cpu_is_ultralytics_answer(no_download):
    from ultralytics.utils.checks import check_amp

    from fla.yolo.amp import amp_check_offline

    assert amp_check_offline(check_amp)(torch.nn.Linear(1, 1)) is False
