"""fla — Focused Linear Attention (FLatten Transformer, Han et al., ICCV 2023), taught by running it.

Not flash-linear-attention, which also imports as ``fla``: see the README.

The package, by concern:

- the idea: ``functional`` (the paper's equations, readable), ``kernels`` (the fast paths),
  ``attention`` (softmax, linear and focused linear attention behind one interface), ``flops``;
- ``yolo``: the blocks inside ultralytics YOLO, the YAMLs, checkpoints, transfer, the variants table;
- ``experiments``: the ablation, the helmet training, the benchmark, their statistics, all on one
  resumable ``sweep``;
- ``course``: what the notebooks compute, draw and wire to sliders;
- ``data``: the helmet subset; ``cli``: the ``python -m fla`` commands;
- shared below them all: ``runtime`` (device, threads), ``measure`` (timing, memory), ``files``.
"""
from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from .functional import focus
from . import flops  # noqa: F401  registers the thop rule

__version__ = "0.3.0"
__all__ = ["SoftmaxAttention", "LinearAttention", "FocusedLinearAttention", "focus", "register", "__version__"]


def register() -> None:
    """Make ``C2f_FLA`` and ``FLABlock`` usable in ultralytics model YAMLs (notebook 05).

    The same as ``import fla.yolo``; kept out of ``import fla`` so that the notebooks that do
    not need ultralytics do not pay for importing it.
    """
    from .yolo import register as register_yolo

    register_yolo()
