"""fla — Focused Linear Attention (FLatten Transformer, Han et al., ICCV 2023), taught by running it.

Not flash-linear-attention, which also imports as ``fla``: see the README.
"""
from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from .functional import focus
from . import flops  # noqa: F401  registers the thop rule

__version__ = "0.1.0"
__all__ = ["SoftmaxAttention", "LinearAttention", "FocusedLinearAttention", "focus", "register", "__version__"]


def register() -> None:
    """Make ``C2f_FLA`` and ``FLABlock`` usable in ultralytics model YAMLs (notebook 05).

    The same as ``import fla.yolo``; kept out of ``import fla`` so that the notebooks that do
    not need ultralytics do not pay for importing it.
    """
    from .yolo import register as register_yolo

    register_yolo()
