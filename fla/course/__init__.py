"""The notebooks' helpers (the course): what each notebook computes and draws, and what every notebook needs.

- here: the quick-mode switch ``QUICK``, the device, and ``setup()``;
- ``complexity`` (notebook 01), ``tokens`` (02, 03), ``views`` (02, 03: the attention and rank views),
  ``widgets`` (02, 03: their sliders).

Each notebook's first cell installs this package with ``%pip`` from ``FLA_SOURCE`` when ``fla`` is
missing (Colab, a fresh kernel), then calls ``setup()``; docs/colab.md follows that path.
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import torch

from ..runtime import pick_device

__all__ = ["QUICK", "setup", "device", "enable_colab_widgets"]

#: ``FLA_QUICK=1`` shrinks every heavy cell (CI runs the notebooks that way).
QUICK = os.environ.get("FLA_QUICK", "0") not in ("", "0", "false", "False")


def device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return pick_device()


def enable_colab_widgets() -> bool:
    """On Colab, draw widgets through its custom widget manager; returns whether it is Colab.

    Colab's page ships the ipywidgets 7 frontend, and we install ipywidgets 8, whose widgets it
    can only draw through the custom manager. Elsewhere (JupyterLab, VS Code) nothing to do.
    """
    if "google.colab" not in sys.modules:
        return False
    from google.colab import output

    output.enable_custom_widget_manager()
    return True


def setup(seed: int = 0) -> torch.device:
    """Seed python, numpy and torch; enable Colab's widgets; print the versions, device and mode; return the device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    colab = enable_colab_widgets()
    dev = device()
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    where = " · Colab" if colab else ""
    print(f"fla {__import__('fla').__version__} · torch {torch.__version__} · {name}{where} · "
          f"quick mode {'ON' if QUICK else 'off'}")
    return dev
