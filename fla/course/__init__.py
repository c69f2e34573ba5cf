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

__all__ = ["QUICK", "setup", "device", "enable_colab_widgets", "inline_figures"]

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


#: matplotlib's backends that draw only into files: in a kernel, ``plt.show()`` shows nothing with them
FILE_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def inline_figures() -> str | None:
    """In a notebook's kernel, draw matplotlib figures inline, whatever ``MPLBACKEND`` says: a kernel started with
    ``MPLBACKEND=Agg`` (a headless server's setting, kept by Jupyter) draws nothing on ``plt.show()``, and the
    notebooks would run, and render, without their figures. Returns the backend it replaced, else None (not in a
    kernel, or inline already)."""
    shell = sys.modules["IPython"].get_ipython() if "IPython" in sys.modules else None
    if shell is None or getattr(shell, "kernel", None) is None:  # a script, a terminal IPython: their backend stands
        return None
    import matplotlib

    backend = matplotlib.get_backend()
    if backend.lower() not in FILE_BACKENDS:  # inline, or one the user chose in the notebook (%matplotlib widget)
        return None
    shell.run_line_magic("matplotlib", "inline")
    return backend


def setup(seed: int = 0) -> torch.device:
    """Seed python, numpy and torch; enable Colab's widgets; draw figures inline (``inline_figures``); print the
    versions, device and mode; return the device."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if (replaced := inline_figures()) is not None:
        print(f"figures inline: matplotlib's backend was {replaced} (MPLBACKEND={os.environ.get('MPLBACKEND', '')}), "
              "which shows none in a notebook")
    colab = enable_colab_widgets()
    dev = device()
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    where = " · Colab" if colab else ""
    print(f"fla {__import__('fla').__version__} · torch {torch.__version__} · {name}{where} · "
          f"quick mode {'ON' if QUICK else 'off'}")
    return dev
