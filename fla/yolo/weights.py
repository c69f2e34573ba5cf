"""Pretrained weights into a model with our blocks (notebook 05, ``fla train --weights``).
"""
from __future__ import annotations

import copy
import difflib
from pathlib import Path

import torch
from torch import nn
from ultralytics.models.yolo.detect import DetectionTrainer
from ultralytics.nn import tasks
from ultralytics.utils import RANK

from .registry import STAND_INS

__all__ = ["transfer", "TransferTrainer"]


def _layer_map(src_yaml: dict, dst_yaml: dict) -> dict[int, int]:
    """Source layer index -> destination layer index, from the two YAMLs' layer lists aligned by module
    name (ours read as the ultralytics block they stand in for): a neck ``FLABlock`` is an inserted layer,
    and every later layer keeps its source tensors although its index moved by one."""
    def names(d):
        return [STAND_INS[n] if n in STAND_INS and n != "FLABlock" else n for _, _, n, _ in d["backbone"] + d["head"]]

    matcher = difflib.SequenceMatcher(None, names(src_yaml), names(dst_yaml), autojunk=False)
    return {a + k: b + k for a, b, n in matcher.get_matching_blocks() for k in range(n)}


def transfer(model, weights, verbose: bool = True) -> int:
    """Load a pretrained detector into ``model`` (a YOLO or DetectionModel); returns how many of ``model``'s
    tensors now hold pretrained values (notebook 05, ``fla train --weights``).

    ultralytics' ``DetectionModel.load`` does the transfer: tensors whose names and shapes match, the
    detection head rebuilt for another class count. Names carry layer indices, so the pretrained layers
    are first renumbered along ``_layer_map``. Our attention is new and starts as a no-op
    (``fla_branch``): where every pretrained tensor finds its place, the model then computes exactly
    what the pretrained one did. ``weights``: a ``.pt`` path (``yolov8n.pt``, a ``best.pt``), a YOLO or a
    DetectionModel.
    """
    from ultralytics.engine.model import Model

    net = model.model if isinstance(model, Model) else model
    source = weights if isinstance(weights, (str, Path)) else type(weights).__name__  # a path, not a module's repr
    if isinstance(weights, (str, Path)):
        weights, _ = tasks.load_checkpoint(weights)
    src = copy.deepcopy(weights.model if isinstance(weights, Model) else weights).float()
    layers = [nn.Identity() for _ in net.model]
    for a, b in _layer_map(src.yaml, net.yaml).items():
        layers[b] = src.model[a]
    src.model = nn.Sequential(*layers)
    net.load(src, verbose=False)
    theirs, ours = src.state_dict(), net.state_dict()
    n = sum(k in theirs and theirs[k].shape == v.shape and torch.equal(theirs[k].to(v), v) for k, v in ours.items())
    if verbose:
        print(f"fla: transferred {n}/{len(ours)} tensors from {source}", flush=True)  # stdout, whatever ultralytics' log level
    return n


class TransferTrainer(DetectionTrainer):
    """ultralytics' detection trainer whose ``pretrained=PATH`` goes through ``transfer`` (``fla train --weights``),
    so a neck FLABlock does not cut the transfer off at its layer. DDP workers rebuild it by name."""

    def get_model(self, cfg=None, weights=None, verbose=True):
        model = super().get_model(cfg, None, verbose)
        if weights is not None:
            # the count is what --weights promises to print, also in a quiet (quick) run; once, not per DDP rank
            transfer(model, weights, verbose=RANK in {-1, 0})
        return model


