"""The engine behind every ``check_*``: run the learner's function beside the reference on inputs drawn for this call.

Each call draws its inputs from a fresh seed (several shapes and dtypes, enough cases that no table of answers
fits) and prints one line, ``✓`` or the first failure with a hint and the seed that reproduces it
(``check_x(fn, seed=...)``). It returns a ``Verdict`` (truthy when it passed) that a notebook does not echo again.

What a failure can be, in the order it is looked for: the function raised; it changed one of its inputs in
place; its result has the wrong type, dtype or shape; it formed a tensor the exercise forbids (``watch``); its
values differ. For differing values the hint is, in this order: the known mistake (``Wrong``) that agrees with
the learner on the most cases; the first property of every right answer (``Property``) the learner's function
breaks; a pointer to the notebook section. A hint never shows the reference solution.
"""
from __future__ import annotations

import copy
import math
import numbers
import random
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["Verdict", "Wrong", "Property", "Draw", "Exercise", "check", "mismatch", "differs", "tuples_differ", "new_seed"]


@dataclass(frozen=True)
class Wrong:
    """A plausible wrong answer: a function computing it and the hint to give when the learner's output equals it."""

    answer: Callable[..., Any]
    hint: str


@dataclass(frozen=True)
class Property:
    """Something every right answer satisfies: ``broken(call, args)`` says how the learner breaks it, else None.

    ``call(*args)`` runs the learner on copies of ``args`` (its own inputs, changed if the property needs to).
    """

    broken: Callable[[Callable[..., Any], tuple], str | None]


class Verdict:
    """What a check found: ``bool(verdict)`` is whether it passed; ``message`` the line it printed; ``seed`` its inputs."""

    def __init__(self, passed: bool, message: str, seed: int | None = None):
        self.passed, self.message, self.seed = passed, message, seed

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    def _ipython_display_(self) -> None:  # already printed: a notebook cell ending in check_x(...) shows it once
        pass


class Draw:
    """The random source of one call: a torch generator and a Python ``random.Random``, both from one seed."""

    def __init__(self, seed: int):
        self.torch = torch.Generator().manual_seed(seed)
        self.py = random.Random(seed)

    def randn(self, *shape: int, dtype=torch.float32) -> torch.Tensor:
        return torch.randn(*shape, generator=self.torch, dtype=torch.float64).to(dtype)

    def rand(self, *shape: int, dtype=torch.float32) -> torch.Tensor:
        return torch.rand(*shape, generator=self.torch, dtype=torch.float64).to(dtype)

    def randint(self, low: int, high: int, shape) -> torch.Tensor:
        """Long tensor of integers in [low, high)."""
        return torch.randint(low, high, tuple(shape), generator=self.torch)

    def int(self, low: int, high: int) -> int:
        """An integer in [low, high], both ends included."""
        return self.py.randint(low, high)

    def log_int(self, low: int, high: int) -> int:
        """An integer in [low, high], spread evenly over orders of magnitude."""
        return min(high, max(low, int(round(math.exp(self.py.uniform(math.log(low), math.log(high + 1)))))))

    def uniform(self, low: float, high: float) -> float:
        return self.py.uniform(low, high)

    def choice(self, options: Sequence[Any]) -> Any:
        return self.py.choice(list(options))

    def dtype(self) -> torch.dtype:
        return self.choice([torch.float32, torch.float64])


@dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner writes, how inputs are drawn, and what to say when the answer is wrong.

    ``draw(Draw) -> [args, ...]`` gives the cases of one call; ``args`` names the arguments in messages;
    ``tolerance(args) -> (rtol, atol)`` overrides the one read off the inputs' dtype (for tensors atol is
    relative to the largest entry of each row of the expected result, for numbers absolute); ``watch(args)``
    returns a function that, given a tensor the learner's code made, says why that tensor is not allowed (or
    None); ``hint`` is the last resort, a pointer to the notebook section, never the solution.
    """

    name: str
    entry: str                      # the checker's name, for the line that reruns a failure
    reference: Callable[..., Any]
    draw: Callable[[Draw], list]
    args: tuple[str, ...]
    wrong: Sequence[Wrong] = ()
    properties: Sequence[Property] = ()
    hint: str = ""
    crash_hint: str = ""
    tolerance: Callable[[tuple], tuple[float, float]] | None = None
    watch: Callable[[tuple], Callable[[torch.Tensor], str | None]] | None = None
    watch_hint: str = ""            # the hint when ``watch`` objects to a tensor
    returns: str = ""               # what the exercise returns, in words, for type and dtype messages


_last_seed: int | None = None


def new_seed() -> int:
    """A seed for one call: six digits, easy to type back, never the previous call's."""
    global _last_seed
    rng = random.SystemRandom()
    seed = rng.randrange(100_000, 1_000_000)
    while seed == _last_seed:
        seed = rng.randrange(100_000, 1_000_000)
    _last_seed = seed
    return seed


# --- comparing one result with the expected one

_TOL = {torch.float16: (1e-2, 2e-3), torch.bfloat16: (2e-2, 1e-2), torch.float32: (1e-4, 1e-5),
        torch.float64: (1e-6, 1e-7)}


def default_tolerance(args: Sequence[Any]) -> tuple[float, float]:
    """The loosest tolerance among the inputs' floating dtypes (Python numbers: float64's)."""
    dtypes = [a.dtype for a in _leaves(args) if isinstance(a, torch.Tensor) and a.is_floating_point()]
    return max((_TOL.get(d, _TOL[torch.float32]) for d in dtypes), default=_TOL[torch.float64])


def _leaves(x: Any):
    if isinstance(x, (list, tuple)):
        for y in x:
            yield from _leaves(y)
    else:
        yield x


def _is_int(x: Any) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x: Any) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


def _kind(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {str(x.dtype).replace('torch.', '')} tensor of shape {tuple(x.shape)}"
    if isinstance(x, (tuple, list)):
        return f"a {type(x).__name__} of {len(x)} values"
    return f"{type(x).__name__} {x!r}" if _is_real(x) or isinstance(x, bool) else type(x).__name__


def type_mismatch(got: Any, expected: Any) -> str | None:
    """Why ``got`` does not have ``expected``'s type, dtype and shape (tuples element by element), else None."""
    if isinstance(expected, torch.Tensor):
        if not isinstance(got, torch.Tensor):
            return f"expected a torch tensor, got {_kind(got)}"
        if got.dtype != expected.dtype:
            return f"expected dtype {expected.dtype}, got {got.dtype}"
        if got.shape != expected.shape:
            return f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}"
        return None
    if _is_int(expected):
        return None if _is_int(got) else f"expected a Python int, got {_kind(got)}"
    if _is_real(expected):
        return None if _is_real(got) else f"expected a Python float, got {_kind(got)}"
    if isinstance(expected, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return f"expected a tuple of {len(expected)} values, got {_kind(got)}"
        for i, (g, e) in enumerate(zip(got, expected)):
            why = type_mismatch(g, e)
            if why:
                return f"value {i}: {why}"
    return None


def mismatch(got: Any, expected: Any, rtol: float = 1e-4, atol: float = 1e-5) -> str | None:
    """None when ``got`` equals ``expected`` in type, dtype, shape and value, else why not.

    Tensors are compared entry by entry with ``|got − expected| <= atol·(largest |entry| of that row) + rtol·|expected|``
    (a row is the last dim), so a row of small numbers is held to its own scale; NaN equals NaN (a known wrong
    answer may be NaN). Integers compare exactly, floats up to rtol/atol.
    """
    why = type_mismatch(got, expected)
    if why:
        return why
    if isinstance(expected, torch.Tensor):
        g, e = got.detach().double().cpu(), expected.detach().double().cpu()
        scale = e.abs().nan_to_num(posinf=0.0).amax(dim=-1, keepdim=True) if e.ndim else e.abs()
        ok = (g - e).abs() <= atol * scale.clamp_min(1e-300) + rtol * e.abs()
        ok |= (g == e) | (g.isnan() & e.isnan())
        if ok.all():
            return None
        bad = ~ok
        where = tuple(int(i) for i in bad.nonzero()[0]) if e.ndim else ()
        return (f"at index {where} expected {_pair(e[where].item(), g[where].item())} "
                f"({int(bad.sum())} of {bad.numel()} entries differ)")
    if _is_int(expected):
        return None if got == expected else f"expected {expected!r}, got {got!r}"
    if _is_real(expected):
        g, e = float(got), float(expected)
        same = math.isclose(g, e, rel_tol=rtol, abs_tol=atol) or (math.isnan(g) and math.isnan(e))
        return None if same else f"expected {_pair(e, g)}"
    if isinstance(expected, (tuple, list)):
        for i, (g, e) in enumerate(zip(got, expected)):
            why = mismatch(g, e, rtol, atol)
            if why:
                return f"value {i}: {why}"
        return None
    return None if got == expected else f"expected {expected!r}, got {got!r}"


def _pair(expected: float, got: float) -> str:
    """"E, got G" with as many digits as it takes to see them differ (6 at least)."""
    for digits in range(6, 18):
        e, g = f"{expected:.{digits}g}", f"{got:.{digits}g}"
        if e != g:
            break
    return f"{e}, got {g}"


def differs(a: Any, b: Any, rtol: float = 1e-3, atol: float = 1e-4) -> bool:
    """For properties: True when a and b are tensors of one shape whose values differ (compared in float64)."""
    return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
            and not torch.allclose(a.double(), b.double(), rtol=rtol, atol=atol))


# --- the inputs: copies for every call, and whether the learner changed them

def tuples_differ(x: Any, y: Any, size: int, rel_tol: float, abs_tol: float, index=None) -> bool:
    """True when ``x`` and ``y`` are both ``size``-tuples (or lists) of numbers that differ beyond the tolerance
    (at ``index`` only, when given); False for anything else, which the type check reports instead."""
    if not (isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)) and len(x) == len(y) == size):
        return False
    pairs = [(x[index], y[index])] if index is not None else zip(x, y)
    return any(not math.isclose(float(p), float(q), rel_tol=rel_tol, abs_tol=abs_tol) for p, q in pairs)


def fresh(args: Sequence[Any]) -> tuple:
    """Deep copies of the inputs (tensors cloned), so no call can change what another sees."""
    return tuple(a.clone() if isinstance(a, torch.Tensor) else copy.deepcopy(a) for a in args)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and bool(
            torch.equal(a, b) or (a.is_floating_point() and torch.equal(a.isnan(), b.isnan())
                                  and torch.equal(a.nan_to_num(), b.nan_to_num())))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def describe(names: Sequence[str], args: Sequence[Any]) -> str:
    def one(a):
        if isinstance(a, torch.Tensor):
            return f"{str(a.dtype).replace('torch.', '')} tensor{tuple(a.shape)}"
        if isinstance(a, list) and len(a) > 6:
            return "[" + ", ".join(f"{x:.4g}" if isinstance(x, float) else repr(x) for x in a[:6]) + f", … ({len(a)} values)]"
        if isinstance(a, list):
            return "[" + ", ".join(f"{x:.4g}" if isinstance(x, float) else repr(x) for x in a) + "]"
        return f"{a:.4g}" if isinstance(a, float) else repr(a)
    return ", ".join(f"{n}={one(a)}" for n, a in zip(names, args))


class _Watch(TorchFunctionMode):
    """Sees every tensor the learner's torch calls return, and keeps the first one ``forbidden`` objects to."""

    def __init__(self, forbidden: Callable[[torch.Tensor], str | None]):
        super().__init__()
        self.forbidden, self.found = forbidden, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if self.found is None:
            for t in _leaves(out):
                if isinstance(t, torch.Tensor):
                    why = self.forbidden(t)
                    if why:
                        self.found = f"{getattr(func, '__name__', str(func))} made {why}"
                        break
        return out


class _Crash(Exception):
    def __init__(self, err: BaseException):
        self.err = err


def _call(learner, args, watch=None):
    """The learner's result on ``args`` (not copied: an in-place change stays visible), and what ``watch`` saw."""
    mode = _Watch(watch) if watch is not None else None
    try:
        if mode is None:
            return learner(*args), None
        with mode:
            out = learner(*args)
        return out, mode.found
    except NotImplementedError:
        raise
    except Exception as err:  # the learner's bug, reported as one line rather than a traceback
        raise _Crash(err) from err


def check(exercise: Exercise, learner: Callable[..., Any], seed: int | None = None) -> Verdict:
    """Run ``learner`` and the reference on every case drawn from ``seed`` (a new one when None); print and return the verdict.

    Runs on one CPU thread (restored afterwards): the inputs are small, and on a busy machine a second thread only waits.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _check(exercise, learner, new_seed() if seed is None else int(seed))
    finally:
        torch.set_num_threads(threads)


def _check(exercise: Exercise, learner: Callable[..., Any], seed: int) -> Verdict:
    ex = exercise
    cases = [tuple(c) for c in ex.draw(Draw(seed))]
    fn_name = getattr(learner, "__name__", "")
    fn_name = fn_name if fn_name.isidentifier() else "your_function"
    rerun = f"  rerun these inputs: {ex.entry}({fn_name}, seed={seed})"

    def fail(i: int, args, why: str, hint: str) -> Verdict:
        where = f"case {i + 1} of {len(cases)} (seed {seed}), {describe(ex.args, args)}"
        return _verdict(False, f"✗ {ex.name}: {where}: {why}" + (f"\n  hint: {hint}" if hint else "") + "\n" + rerun, seed)

    for i, args in enumerate(cases):
        expected = ex.reference(*fresh(args))
        given, kept = fresh(args), fresh(args)
        try:
            got, forbidden = _call(learner, given, ex.watch(args) if ex.watch else None)
        except NotImplementedError:
            return _verdict(False, f"✗ {ex.name}: not written yet (replace `raise NotImplementedError` with your code)", seed)
        except _Crash as crash:
            err = crash.err
            return fail(i, args, f"raised {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}", ex.crash_hint)
        changed = [n for n, a, b in zip(ex.args, given, kept) if not _same(a, b)]
        if changed:
            return fail(i, args, f"changed its input {', '.join(changed)} in place",
                        "the function must leave its inputs as they were (the caller still needs them): work on a copy "
                        "or with out-of-place operations (x / m, not x.div_(m); y = x.clone() before writing into y)")
        why = type_mismatch(got, expected)
        if why:
            return fail(i, args, why, f"the exercise returns {ex.returns}" if ex.returns else "")
        if forbidden:
            return fail(i, args, forbidden, ex.watch_hint)
        rtol, atol = ex.tolerance(args) if ex.tolerance else default_tolerance(args)
        why = mismatch(got, expected, rtol, atol)
        if why:
            return fail(i, args, why, _diagnose(ex, learner, cases, i, got))
    return _verdict(True, f"✓ {ex.name}: right on all {len(cases)} inputs drawn with seed {seed} "
                          f"(values, type, dtype and shape; inputs left unchanged)", seed)


def _diagnose(ex: Exercise, learner, cases, failed: int, got_failed) -> str:
    """The hint for a wrong value: the known mistake that explains the learner best, else the property it breaks.

    A known mistake explains the learner when it gives the learner's result on the failing case and on at least
    half of the cases the learner gets wrong (one that merely coincides on a case or two is not named); of those,
    the one that agrees with the learner on the most cases wins, and on a tie the one listed first. Where the
    mistake's own result is NaN (its formula undefined there) any result of the learner agrees.
    """
    def outcome(fn, args):
        try:
            return fn(*fresh(args))
        except Exception:
            return _FAILED

    def agrees(mine, theirs, args):
        if mine is _FAILED or theirs is _FAILED:
            return mine is theirs  # both raise on this input
        if isinstance(mine, torch.Tensor) and isinstance(theirs, torch.Tensor) and mine.shape == theirs.shape \
                and mine.dtype == theirs.dtype and theirs.is_floating_point():
            theirs = torch.where(theirs.isnan(), mine, theirs)
        rtol, atol = ex.tolerance(args) if ex.tolerance else default_tolerance(args)
        return mismatch(mine, theirs, rtol, atol) is None

    learner_out = [outcome(learner, a) if j != failed else got_failed for j, a in enumerate(cases)]
    wrong_cases = [j for j, a in enumerate(cases) if j == failed or not agrees(learner_out[j], ex.reference(*fresh(a)), a)]
    best, best_score = None, 0
    for w in ex.wrong:
        theirs = [outcome(w.answer, a) if j in wrong_cases or j == failed else None for j, a in enumerate(cases)]
        if not agrees(got_failed, theirs[failed], cases[failed]):
            continue
        if 2 * sum(agrees(learner_out[j], theirs[j], cases[j]) for j in wrong_cases) < len(wrong_cases):
            continue
        score = sum(agrees(learner_out[j], theirs[j] if theirs[j] is not None else outcome(w.answer, a), a)
                    for j, a in enumerate(cases))
        if score > best_score:  # ties: the one listed first, the more specific
            best, best_score = w, score
    if best is not None:
        return best.hint

    def call(*args):
        return learner(*fresh(args))

    for prop in ex.properties:
        try:
            broken = prop.broken(call, cases[failed])
        except Exception:
            broken = None
        if broken:
            return broken
    precision = _float32_precision(ex, got_failed, cases[failed])
    return precision or ex.hint


def _float32_precision(ex: Exercise, got, args) -> str | None:
    """float64 inputs, and a result right to four to six digits only: a float32 step, or a small constant added."""
    has64 = any(isinstance(a, torch.Tensor) and a.dtype == torch.float64 for a in _leaves(args))
    if not has64:
        return None
    expected = ex.reference(*fresh(args))
    if mismatch(got, expected, 1e-4, 1e-5) is None:
        return ("right to four to six digits only: with float64 inputs compute in float64 (no float32 step along the "
                "way), and add no small constant (an eps) that the formula does not have")
    return None


class _Failed:
    def __repr__(self) -> str:
        return "<raised>"


_FAILED = _Failed()


def _verdict(passed: bool, message: str, seed: int | None = None) -> Verdict:
    print(message)
    return Verdict(passed, message, seed)
