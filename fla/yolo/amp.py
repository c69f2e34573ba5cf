"""ultralytics' AMP check, run on the model being trained and without a download (``offline_amp_check``).

On a GPU ultralytics' trainer calls ``check_amp``: AMP is off on the GPUs where it is known to break
(its own list: GTX 16xx, Quadro T400-T2000, ...); elsewhere it compares the boxes yolo26n.pt predicts on a
photo in FP32 and under autocast, downloading those weights when they are not on disk. During our runs
the check is ultralytics' own, list included, with one change: the model it compares is a copy of the
model at hand, FLA blocks and all, so nothing is downloaded and the check tests what will train.
"""
from __future__ import annotations

import contextlib
import copy
import tempfile
from pathlib import Path

import torch

__all__ = ["amp_check_offline", "offline_amp_check"]


@contextlib.contextmanager
def checked_as_yolo26n(model):
    """Within this block ultralytics' AMP check finds "yolo26n.pt" on disk and ``YOLO(...)`` loads a copy of
    ``model`` (fp32, on the CPU until the check's predictions move it) whatever path it is given."""
    import ultralytics
    from ultralytics import utils

    real = ultralytics.YOLO
    with tempfile.TemporaryDirectory(prefix="fla-amp-") as folder:
        folder = Path(folder)

        def this_model(*_, **__):
            ckpt = folder / "model.pt"
            torch.save({"model": copy.deepcopy(model).float().cpu().eval()}, ckpt)
            return real(ckpt)

        (folder / "yolo26n.pt").touch()  # what the check looks for before it would download; never read
        saved = utils.WEIGHTS_DIR, ultralytics.YOLO
        utils.WEIGHTS_DIR, ultralytics.YOLO = folder, this_model
        try:
            yield
        finally:
            utils.WEIGHTS_DIR, ultralytics.YOLO = saved


def amp_check_offline(check_amp):
    """``check_amp`` (ultralytics') run on the model it is given instead of on yolo26n.pt (see the module)."""

    def check(model):
        with checked_as_yolo26n(model):
            return check_amp(model)

    return check


@contextlib.contextmanager
def offline_amp_check():
    """Within this block, ultralytics' trainer runs ``amp_check_offline`` of its AMP check."""
    from ultralytics.engine import trainer

    real = trainer.check_amp
    trainer.check_amp = amp_check_offline(real)
    try:
        yield
    finally:
        trainer.check_amp = real
