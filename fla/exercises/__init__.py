"""Exercises that answer back: write the function, call its ``check_*``, read ✓ or the first mismatch with a hint.

One module per notebook: ``complexity`` (01), ``focusing`` (02), ``rank`` (03), ``ablation`` (04),
``yolo`` (05), ``training`` (06); each checker's docstring names its notebook and section. The engine,
``check``, runs the learner's function beside the reference on inputs drawn anew on every call
(``fla.exercises.check``): ``check_x(fn)`` draws from a fresh seed, ``check_x(fn, seed=...)`` redraws the inputs
a failure named. Besides the values it checks the result's type, dtype and shape and that ``fn`` left its
inputs unchanged; a wrong value gets a hint naming the mistake or the property it breaks, never the solution.
"""
from .ablation import check_answer_mass, check_paired_interval, check_sign_flip_p
from .check import Verdict, Wrong, check
from .complexity import check_kv_crossover, check_linear_attention, check_softmax_attention
from .focusing import check_focus, check_focused_row
from .rank import check_dwc_matrix, check_numerical_rank
from .training import check_bootstrap_interval, check_paired_differences
from .yolo import check_block_macs, check_fp16_focus

__all__ = ["Verdict", "Wrong", "check",
           "check_softmax_attention", "check_linear_attention", "check_kv_crossover",
           "check_focus", "check_focused_row",
           "check_numerical_rank", "check_dwc_matrix",
           "check_paired_interval", "check_sign_flip_p", "check_answer_mass",
           "check_block_macs", "check_fp16_focus",
           "check_paired_differences", "check_bootstrap_interval"]
