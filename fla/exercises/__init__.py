"""Exercises that answer back: write the function, call its ``check_*``, read ✓ or the first mismatch with a hint.

One module per notebook; each checker's docstring names its notebook and section. The engine,
``check``, runs the learner's function beside the reference on random inputs (``fla.exercises.check``).
"""
from .check import Verdict, Wrong, check
from .training import check_bootstrap_interval, check_paired_differences  # notebook 06

__all__ = ["Verdict", "Wrong", "check"]
