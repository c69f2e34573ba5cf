"""Focused linear attention inside ultralytics YOLO (notebook 05): ``import fla.yolo`` and the YAML names
``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` work in model YAMLs, without a fork.

Importing it changes nothing outside ultralytics' model parser and checkpoint loading: no environment
variable, no ultralytics setting (``offline.offline_ultralytics`` is there for tests and CI to call).

- ``blocks``: the modules themselves.
- ``patches``: the index of every change made to ultralytics at run time, one module each: ``registry`` (YAML
  names), ``checkpoints`` (pickles), ``offline`` (the switches tests call), ``amp`` (the AMP check).
- ``variants``: the shipped model YAMLs (``cfg/``) by name, their size and GFLOPs.
- ``weights``: pretrained weights into a model with our blocks (``transfer``).
- ``table``: ``fla models``' measurements — where each variant attends, what it costs, how fast it runs.
- ``detections``: trained detectors' boxes side by side (notebook 06).
"""
from __future__ import annotations

from .patches import DISTRIBUTION, register
from .blocks import Bottleneck_FLA, C2f_FLA, C2PSA_FLA, C3k2_FLA, FLABlock, PSABlock_FLA, fla_branch, heads_for
from .weights import TransferTrainer, transfer
from .variants import CFG_DIR, DEFAULT_VARIANTS, VARIANTS, model_summary, model_yaml

__all__ = ["Bottleneck_FLA", "C2f_FLA", "C3k2_FLA", "PSABlock_FLA", "C2PSA_FLA", "FLABlock", "register", "fla_branch",
           "heads_for", "transfer", "TransferTrainer", "DISTRIBUTION", "model_yaml", "VARIANTS", "DEFAULT_VARIANTS",
           "CFG_DIR", "model_summary"]

register()
