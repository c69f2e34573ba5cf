"""Exercises that answer back: write the function, call its ``check_*``, read ✓ or the first mismatch with a hint.

One module per notebook; each checker's docstring names its notebook and section. The engine,
``check``, runs the learner's function beside the reference on random inputs (``fla.exercises.check``).
"""
from .check import Verdict, Wrong, check
from .ablation import check_answer_mass, check_paired_interval, check_sign_flip_p

__all__ = ["Verdict", "Wrong", "check", "check_paired_interval", "check_sign_flip_p", "check_answer_mass"]
