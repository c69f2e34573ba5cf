"""What the YOLO transfer / export / DDP / AMP / checkpoint tests share: the FLA variants fla.yolo exposes,
their family's base, a real helmet photo, a small writable helmet copy, the detection loss on a fake batch."""
from __future__ import annotations

import shutil

import numpy as np
import torch

import fla.yolo as Y
from fla import FocusedLinearAttention

from conftest import SHARED

HELMET = SHARED / "data" / "helmet"


def fla_variants() -> list[str]:
    """Every variant whose YAML uses one of our blocks (new ones are covered as fla.yolo adds them)."""
    ours = [name for name in Y._STAND_INS]
    return [v for v in Y.VARIANTS if any(name in (Y.CFG_DIR / Y.VARIANTS[v]).read_text() for name in ours)]


def base_of(variant: str) -> str:
    """The stock model of the variant's family: ``base`` for YOLOv8, ``yolo11:base`` for ``yolo11:...``."""
    family, sep, _ = variant.partition(":")
    return f"{family}:base" if sep else "base"


def attention_modules(net) -> list[FocusedLinearAttention]:
    return [m for m in net.modules() if isinstance(m, FocusedLinearAttention)]


def photo(hw: tuple[int, int]) -> torch.Tensor:
    """A real helmet test photo letterboxed to (H, W) as YOLO's predictor does: (1, 3, H, W) in [0, 1]."""
    import cv2
    from ultralytics.data.augment import LetterBox

    path = sorted((HELMET / "images" / "test").iterdir())[0]
    image = LetterBox(hw, auto=False)(image=cv2.imread(str(path)))
    return torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255


def small_helmet(root, per_split: int = 8):
    """A writable helmet copy with ``per_split`` images per split (ultralytics writes label caches); its data.yaml."""
    for split in ("train", "val", "test"):
        images = sorted((HELMET / "images" / split).iterdir())[:per_split]
        for sub, files in (("images", images), ("labels", [HELMET / "labels" / split / f"{p.stem}.txt" for p in images])):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
            for f in files:
                if f.is_file():
                    shutil.copy(f, root / sub / split / f.name)
    yaml = root / "data.yaml"
    yaml.write_text("train: images/train\nval: images/val\ntest: images/test\nnc: 2\nnames:\n  0: helmet\n  1: head\n")
    return yaml


def fake_batch(images: torch.Tensor) -> dict:
    """A training batch for ultralytics' detection loss: one box per image."""
    b = images.shape[0]
    return {
        "img": images,
        "batch_idx": torch.arange(b, dtype=torch.float32),
        "cls": torch.zeros(b, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4]]).repeat(b, 1),
    }


def with_loss_args(net):
    """The hyperparameters ultralytics' loss reads (the trainer sets them): the defaults."""
    from ultralytics.cfg import get_cfg

    if not hasattr(net, "args") or isinstance(net.args, dict):
        net.args = get_cfg()
    return net


def detection_loss(net, images: torch.Tensor) -> torch.Tensor:
    """ultralytics' training loss (box + cls + dfl, summed) of ``net`` in train mode on one box per image."""
    loss, _ = with_loss_args(net).loss(fake_batch(images))
    return loss.sum()
