"""Every change fla makes to ultralytics at run time, one module per job (notebook 05):

- ``fla.yolo.registry``: the YAML names ``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` in
  ultralytics' model parser (``register``, run on ``import fla.yolo``);
- ``fla.yolo.checkpoints``: our blocks' pickles, which load where ``fla.yolo`` imports and stop with one line
  naming fla-teach where it does not;
- ``fla.yolo.offline``: the offline switches the tests and CI call (``offline_ultralytics``; never on import);
- ``fla.yolo.amp``: ultralytics' AMP check on the model being trained, without a download.

Their public names are importable from here too.
"""
from __future__ import annotations

from .amp import amp_check_offline, offline_amp_check
from .checkpoints import DISTRIBUTION, MISSING
from .offline import config_dir, offline_ultralytics
from .registry import STAND_INS, register

__all__ = ["offline_ultralytics", "config_dir", "register", "STAND_INS", "DISTRIBUTION", "MISSING",
           "amp_check_offline", "offline_amp_check"]
