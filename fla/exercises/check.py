"""The engine behind every ``check_*``: run the learner's function beside the reference on random inputs.

A check prints one line, ``✓`` or the first mismatch with a hint, and returns a ``Verdict`` (truthy
when it passed) that a notebook does not echo a second time. When the learner's output matches a
known wrong answer (the normaliser left out, p applied before the ReLU, ...), the hint names that
mistake; otherwise it says what to look at.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import torch

__all__ = ["Verdict", "Wrong", "check", "mismatch"]


@dataclass(frozen=True)
class Wrong:
    """A plausible wrong answer: a function computing it and the hint to give when the learner's output equals it."""

    answer: Callable[..., Any]
    hint: str


class Verdict:
    """What a check found: ``bool(verdict)`` is whether it passed; ``message`` the line it printed."""

    def __init__(self, passed: bool, message: str):
        self.passed, self.message = passed, message

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:  # already printed: a notebook cell ending in check_x(...) shows it once
        pass


def _describe(args: Sequence[Any]) -> str:
    def one(a):
        if isinstance(a, torch.Tensor):
            return f"tensor{tuple(a.shape)}"
        return repr(a)
    return "(" + ", ".join(one(a) for a in args) + ")"


def mismatch(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5) -> str | None:
    """None when ``got`` equals ``expected`` (tensors and floats up to rtol/atol, the rest exactly), else why not."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a tensor of shape {tuple(expected.shape)}, got {type(got).__name__}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        got_f, exp_f = got.detach().double().cpu(), expected.detach().double().cpu()
        bad = ~torch.isclose(got_f, exp_f, rtol=rtol, atol=atol, equal_nan=True)  # NaN = NaN: a known wrong answer may be NaN
        if not bad.any():
            return None
        where = tuple(int(i) for i in bad.nonzero()[0])
        return f"at index {where} expected {exp_f[where].item():.6g}, got {got_f[where].item():.6g} ({int(bad.sum())} of {bad.numel()} entries differ)"
    if isinstance(expected, (bool, int)):  # counts and yes/no answers are exact
        got = got.item() if isinstance(got, torch.Tensor) and got.numel() == 1 else got
        return None if isinstance(got, (bool, int, float)) and got == expected else f"expected {expected!r}, got {got!r}"
    if isinstance(expected, float):
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if not isinstance(got, (int, float)):
            return f"expected a number, got {type(got).__name__}"
        return None if math.isclose(got, expected, rel_tol=rtol, abs_tol=atol) else f"expected {expected:.6g}, got {got:.6g}"
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected {len(expected)} values, got {got!r}"
        for i, (g, e) in enumerate(zip(got, expected)):
            why = mismatch(g, e, rtol, atol)
            if why:
                return f"value {i}: {why}"
        return None
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def check(name: str, learner: Callable[..., Any], reference: Callable[..., Any], cases: Iterable[Sequence[Any]],
          wrong: Sequence[Wrong] = (), hint: str = "", rtol: float = 1e-4, atol: float = 1e-5) -> Verdict:
    """Call ``learner(*args)`` and ``reference(*args)`` for each case; print and return the verdict.

    Tensors are cloned for each call, so a learner that writes into its inputs cannot change what the
    reference sees. A ``NotImplementedError`` (the stub as handed out) reads as "not written yet".
    """
    def fresh(args):
        return [a.clone() if isinstance(a, torch.Tensor) else a for a in args]

    n = 0
    for args in cases:
        n += 1
        expected = reference(*fresh(args))
        try:
            got = learner(*fresh(args))
        except NotImplementedError:
            return _verdict(False, f"✗ {name}: not written yet (replace `raise NotImplementedError` with your code)")
        except Exception as err:  # the learner's bug, shown as one line rather than a traceback
            return _verdict(False, f"✗ {name}: raised {type(err).__name__}: {err} on inputs {_describe(args)}")
        why = mismatch(got, expected, rtol, atol)
        if why is None:
            continue
        named = next((w.hint for w in wrong if mismatch(got, w.answer(*fresh(args)), rtol, atol) is None), None)
        advice = named or hint
        return _verdict(False, f"✗ {name}: on inputs {_describe(args)} {why}" + (f"\n  hint: {advice}" if advice else ""))
    return _verdict(True, f"✓ {name}: matches the reference on {n} random inputs")


def _verdict(passed: bool, message: str) -> Verdict:
    print(message)
    return Verdict(passed, message)
