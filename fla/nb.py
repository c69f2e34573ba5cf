"""Small things every notebook needs: the quick-mode switch and the device in use.

Each notebook's first cell installs this package when ``import fla`` fails (Colab), then calls
``fla.nb.setup()``.
"""
from __future__ import annotations

import os

import torch

__all__ = ["QUICK", "setup", "device"]

#: ``FLA_QUICK=1`` shrinks every heavy cell (CI runs the notebooks that way).
QUICK = os.environ.get("FLA_QUICK", "0") not in ("", "0", "false", "False")

REPO_URL = "https://github.com/fla-teach/fla"


def device() -> torch.device:
    """The GPU when one is present, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def setup(seed: int = 0) -> torch.device:
    """Seed torch, use both CPU cores when on CPU, print what this notebook runs on and in which mode."""
    torch.manual_seed(seed)
    dev = device()
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"fla {__import__('fla').__version__} · torch {torch.__version__} · {name} · quick mode {'ON' if QUICK else 'off'}")
    return dev
