"""fla — Focused Linear Attention (FLatten Transformer, Han et al., ICCV 2023), taught by running it.

Not flash-linear-attention, which also imports as ``fla``: see the README.
"""
from .attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from .functional import focus
from . import flops  # noqa: F401  registers the thop rule

__version__ = "0.1.0"
__all__ = ["SoftmaxAttention", "LinearAttention", "FocusedLinearAttention", "focus", "__version__"]
