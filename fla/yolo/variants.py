"""The YOLO variants this project ships as YAML (``cfg/``), and their size and arithmetic (notebooks 05, 06).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from torch import nn

from ..attention import FocusedLinearAttention

__all__ = ["CFG_DIR", "VARIANTS", "DEFAULT_VARIANTS", "model_yaml", "model_summary"]

CFG_DIR = Path(__file__).parent / "cfg"
#: variant name -> YAML in ``CFG_DIR``. Plain names are YOLOv8 (the blog post's experiments, the default of ``fla train``);
#: ``family:name`` for the others. ``*:base`` are ultralytics' own models, unchanged (YOLO11 with its softmax C2PSA,
#: YOLO12 with area attention): the native-attention baselines.
VARIANTS = {
    "base": "yolov8-base.yaml", "c2f_fla": "yolov8-c2f-fla.yaml", "neck_fla": "yolov8-neck-fla.yaml",
    "c2f_fla_p3": "yolov8-c2f-fla-p3.yaml",
    "yolo11:base": "yolo11-base.yaml", "yolo11:c3k2_fla": "yolo11-c3k2-fla.yaml", "yolo11:c3k2_fla_p3": "yolo11-c3k2-fla-p3.yaml",
    "yolo12:base": "yolo12-base.yaml",
    "yolo26:base": "yolo26-base.yaml", "yolo26:fla": "yolo26-fla.yaml",
}
#: what ``fla train`` runs when no ``--variants`` are given (the three YOLOv8 models of notebook 06)
DEFAULT_VARIANTS = ("base", "c2f_fla", "neck_fla")


def model_yaml(variant: str = "base", scale: str = "n") -> str:
    """Path of a shipped model YAML with the scale in its name (ultralytics reads the scale from it)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got variant={variant!r}")
    if scale not in "nsmlx" or len(scale) != 1:
        raise ValueError(f"scale must be one of n, s, m, l, x, got scale={scale!r}")
    family, rest = re.match(r"(yolov?\d+)(.*)", VARIANTS[variant]).groups()
    return str(CFG_DIR / f"{family}{scale}{rest}")  # yolo11-base.yaml -> yolo11n-base.yaml


def model_summary(model: nn.Module, imgsz: int | tuple[int, int] = 640) -> dict:
    """Parameters and GFLOPs (2 × thop multiply-adds, ultralytics' convention) of a detection model at imgsz.

    Profiles one real forward at the full size, so every matmul inside the attention is
    counted as it runs (notebook 05). ``model`` may be a ``YOLO`` object or its ``.model``.
    """
    import thop

    net = getattr(model, "model", model)
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    p = next(net.parameters())
    im = torch.zeros(1, 3, h, w, device=p.device, dtype=p.dtype)
    macs, params = thop.profile(copy.deepcopy(net), inputs=[im], verbose=False)
    attn = sum(m.numel() for mod in net.modules() if isinstance(mod, FocusedLinearAttention) for m in mod.parameters())
    return {"params": int(params), "attention_params": int(attn), "gflops": 2 * macs / 1e9}


