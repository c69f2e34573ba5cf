"""fla.exercises: every checker accepts right answers written in several styles and rejects wrong ones — a wrong
formula, an in-place change, a wrong type or dtype, a lookup table, a nearly right tolerance — each with its message.

The answers live in exercise_answers.py; the wrong answers of the classes every checker shares (in place, type,
table) are built here from a right one.
"""
from __future__ import annotations

import inspect
import json
import math
import re
from pathlib import Path

import pytest
import torch

from fla import exercises as ex
from fla.exercises import ablation, complexity, focusing, rank, training, yolo
from fla.exercises.check import Draw, Exercise, mismatch, type_mismatch

from exercise_answers import EPS32, RIGHT, WRONG, rank_with

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CHECKERS = list(RIGHT)
MODULES = [complexity, focusing, rank, ablation, yolo, training]


def name(x):
    return getattr(x, "__name__", str(x))


def exercise_of(checker):
    """The Exercise a checker runs (each module keeps them as module constants)."""
    module = inspect.getmodule(checker)
    found = [v for v in vars(module).values() if isinstance(v, Exercise) and v.entry == checker.__name__]
    assert len(found) == 1, checker.__name__
    return found[0]


def recorder(answer, seen):
    """The answer, remembering a fingerprint of every input it is called with."""
    def fn(*args):
        seen.append(fingerprint(args))
        return answer(*args)
    fn.__name__ = "recorded"
    return fn


def fingerprint(x):
    if isinstance(x, torch.Tensor):
        return ("tensor", str(x.dtype), tuple(x.shape), tuple(x.flatten().tolist()))
    if isinstance(x, (list, tuple)):
        return tuple(fingerprint(y) for y in x)
    return x


# --- right answers pass, wrong ones fail with their hint

@pytest.mark.parametrize("checker,answer", [(c, a) for c in CHECKERS for a in RIGHT[c]],
                         ids=lambda x: name(x))
def test_a_right_answer_passes(checker, answer, capsys):
    verdict = checker(answer)
    assert verdict and verdict.message.startswith("✓"), verdict.message
    assert capsys.readouterr().out.strip() == verdict.message  # printed once
    again = checker(answer, seed=verdict.seed + 1)               # and on another draw
    assert again, again.message


@pytest.mark.parametrize("checker,answer,words", [(c, a, w) for c in CHECKERS for a, w in WRONG[c]],
                         ids=lambda x: name(x) if callable(x) else str(x)[:24])
def test_a_wrong_answer_fails_with_its_hint(checker, answer, words):
    for seed in (1, 2, 3):  # fixed draws: a test that passes or fails by chance is no test (a draw per call is tested below)
        verdict = checker(answer, seed=seed)
        assert not verdict and verdict.message.startswith("✗"), verdict.message
        assert any(w in verdict.message for w in ((words,) if isinstance(words, str) else words)), verdict.message


def test_every_checker_has_right_answers_in_two_styles_and_wrong_ones():
    assert len(CHECKERS) == 14 == len(ex.__all__) - 3  # and Verdict, Wrong, check
    assert set(CHECKERS) == {getattr(ex, n) for n in ex.__all__ if n.startswith("check_")}
    for checker in CHECKERS:
        assert len(RIGHT[checker]) >= 2 and len(WRONG[checker]) >= 3, checker.__name__


# --- the classes of mistake every checker shares

def _mutate_first(args):
    """Change the first input that can be changed in place; False when none can (plain ints)."""
    for a in args:
        if isinstance(a, torch.Tensor):
            a.add_(1)
            return True
        if isinstance(a, list):
            a[0] += 1.0
            return True
    return False


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_an_answer_that_changes_its_input_in_place_fails_with_its_own_message(checker):
    right = RIGHT[checker][0]
    changed = []

    def in_place(*args):
        out = right(*args)
        changed.append(_mutate_first(args))
        return out

    verdict = checker(in_place)
    if not any(changed):  # the inputs are ints (kv_crossover, block_macs): nothing to change
        assert verdict
        return
    assert not verdict and "in place" in verdict.message and "changed its input" in verdict.message, verdict.message


def _retyped(out):
    """The same values in the wrong type or dtype."""
    if isinstance(out, torch.Tensor):
        return out.float() if out.dtype in (torch.float16, torch.float64) else out.double()
    if isinstance(out, bool) or not isinstance(out, (int, float, tuple, list)):
        raise AssertionError(out)
    if isinstance(out, int):
        return float(out)
    if isinstance(out, float):
        return torch.tensor(out)
    return tuple(torch.tensor(v) for v in out)


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_the_right_values_in_the_wrong_type_or_dtype_fail(checker):
    right = RIGHT[checker][0]
    verdict = checker(lambda *args: _retyped(right(*args)))
    assert not verdict, verdict.message
    assert re.search(r"expected (dtype|a Python (int|float))", verdict.message), verdict.message
    assert "hint: the exercise returns" in verdict.message


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_a_lookup_table_of_one_draw_fails_on_the_next(checker):
    right, seen = RIGHT[checker][0], []
    first = checker(recorder(right, seen))
    assert first
    table = {}
    for args_print, args in zip(seen, _inputs(checker, first.seed)):
        table[args_print] = right(*args)
    fallback = next(iter(table.values()))

    def lookup(*args):
        return table.get(fingerprint(args), fallback)

    assert checker(lookup, seed=first.seed)         # the table knows every input of that draw
    assert not checker(lookup)                      # and not those of a new one


def _inputs(checker, seed):
    return [tuple(c) for c in exercise_of(checker).draw(Draw(seed))]


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_each_call_draws_new_inputs_and_a_seed_draws_the_same(checker):
    right = RIGHT[checker][0]
    a, b, c = [], [], []
    first = checker(recorder(right, a))
    checker(recorder(right, b))
    checker(recorder(right, c), seed=first.seed)
    assert a != b and a == c
    assert len(set(map(str, a))) >= 5  # several different cases per call


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_a_failure_prints_the_seed_that_reproduces_it(checker):
    answer = WRONG[checker][0][0]
    verdict = checker(answer)
    assert f"(seed {verdict.seed})" in verdict.message
    assert f"rerun these inputs: {checker.__name__}(" in verdict.message and f"seed={verdict.seed})" in verdict.message
    assert checker(answer, seed=verdict.seed).message == verdict.message


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_the_stub_as_handed_out_reads_as_not_written_yet(checker):
    def stub(*args):
        raise NotImplementedError

    verdict = checker(stub)
    assert not verdict and "not written yet" in verdict.message


def test_a_crash_is_one_line_with_the_inputs_not_a_traceback():
    verdict = ex.check_softmax_attention(lambda q, k, v: q @ v)
    first = verdict.message.splitlines()[0]
    assert not verdict and "raised RuntimeError" in first and "q=" in first and "tensor(" in first
    assert "Traceback" not in verdict.message


# --- hints: the most specific mistake, else a property, never the solution

def test_the_most_specific_mistake_wins_over_one_that_matches_a_single_case():
    # at d = d_v, ceil(2·d·d_v/(d + d_v)) = d: the answer "d" agrees there, but only the ceiling agrees everywhere
    verdict = ex.check_kv_crossover(lambda d, dv: math.ceil(2 * d * dv / (d + dv)))
    assert "strictly cheaper" in verdict.message and "not d" not in verdict.message
    assert "d=" in verdict.message  # the failing case is named


def _perturbed(out):
    """A wrong answer no known mistake explains: the right result, nudged."""
    if isinstance(out, torch.Tensor):
        return out + 0.05 * out.abs().max() * torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).reshape(out.shape)
    if isinstance(out, int):
        return out + 7
    if isinstance(out, float):
        return out * 1.37 + 0.01
    return type(out)(_perturbed(v) for v in out)


def all_hints(exercise):
    return [w.hint for w in exercise.wrong] + [exercise.hint, exercise.crash_hint, exercise.returns,
                                               exercise.watch_hint]


@pytest.mark.parametrize("checker", CHECKERS, ids=name)
def test_an_unexplained_wrong_answer_gets_a_hint_that_names_a_property_not_the_solution(checker):
    right = RIGHT[checker][0]
    verdict = checker(lambda *args: _perturbed(right(*args)))
    assert not verdict and "\n  hint: " in verdict.message, verdict.message
    hint = verdict.message.split("\n  hint: ")[1].split("\n")[0]
    assert len(hint) > 20
    for text in [hint, *all_hints(exercise_of(checker))]:
        assert "return " not in text and " = lambda" not in text and not re.search(r"\w\s*=\s*[\w.]+\(", text), text


HEADING = re.compile(r'[Nn]otebook (\d\d), (section (\d+)|[Aa]ppendix) "([^"]+)"')


def _headings(number):
    path = next(NOTEBOOKS.glob(f"{number}-*.ipynb"))
    cells = json.loads(path.read_text())["cells"]
    return [line for c in cells if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
            if line.startswith("## ")]


def test_docstrings_and_hints_cite_notebook_sections_that_exist():
    cited = 0
    texts = [c.__doc__ for c in CHECKERS] + [h for c in CHECKERS for h in all_hints(exercise_of(c))]
    for text in texts:
        for number, _, section, title in HEADING.findall(text):
            prefix = f"## {section}. {title}" if section else f"## Appendix"
            assert any(h.startswith(prefix) and title in h for h in _headings(number)), (number, section, title)
            cited += 1
    assert all(HEADING.search(c.__doc__) for c in CHECKERS)  # every checker says where its exercise is taught
    assert cited >= 14


# --- what the inputs must contain for the numeric exercises to separate right from nearly right

def test_rank_matrices_have_singular_values_on_both_sides_of_every_nearby_tolerance():
    for seed in range(5):
        designed = [m for (m,) in _inputs(ex.check_numerical_rank, seed)][:8]
        kinds = set()
        for m in designed:
            s = torch.linalg.svdvals(m.double())
            rel, n_max, n_min = s / s[0], max(m.shape), min(m.shape)
            tol = n_max * EPS32
            assert ((rel > tol) & (rel < 2 * tol)).any() and ((rel < tol) & (rel > tol / 2)).any()
            if n_max >= 4 * n_min:
                assert ((rel > n_min * EPS32) & (rel < tol)).any()  # counted by min(N, M)·ε, not by max(N, M)·ε
                kinds.add("wide" if m.shape[1] > m.shape[0] else "tall")
            for fixed in (1e-2, 1e-3, 1e-4):
                assert ((rel > tol) & (rel < fixed)).any()
        assert kinds == {"wide", "tall"}
        assert len({round(math.log10(float(torch.linalg.svdvals(m.double())[0]))) for m in designed}) >= 3  # σ₁ scales


@pytest.mark.parametrize("rule", [lambda m: min(m.shape) * EPS32, lambda m: m.shape[0] * EPS32, lambda m: m.shape[1] * EPS32,
                                  lambda m: 1e-3, lambda m: 1e-2, lambda m: 1e-5, lambda m: 2 * max(m.shape) * EPS32,
                                  lambda m: max(m.shape) * EPS32 / 2],
                         ids=["min", "rows", "cols", "1e-3", "1e-2", "1e-5", "2x", "half"])
def test_a_nearly_right_rank_tolerance_fails_on_every_draw(rule):
    for seed in range(8):
        assert not ex.check_numerical_rank(rank_with(rule), seed=seed)
    assert not ex.check_numerical_rank(rank_with(lambda m: max(m.shape) * EPS32, relative=False), seed=0)


def test_fp16_inputs_mix_row_scales_and_reach_overflow():
    for seed in range(5):
        xs = [x for x, _ in _inputs(ex.check_fp16_focus, seed)]
        assert all(x.dtype == torch.float16 for x in xs)
        assert max(x.shape[-1] for x in xs) >= 128
        for x in xs:
            peaks = x.float().reshape(-1, x.shape[-1]).amax(dim=-1)
            assert (peaks == 0).any() and peaks.max() > 40          # an all-zero row, and x**3 beyond 65504
            assert peaks[peaks > 0].max() / peaks[peaks > 0].min() > 100  # rows of very different scale
            rows = x.float().reshape(-1, x.shape[-1])
            assert ((rows > 35).all(dim=-1)).any()                  # a row near 40 everywhere: ‖x‖² > 65504 for d > 40


def test_inputs_cover_both_float_dtypes_and_batches():
    for checker in (ex.check_softmax_attention, ex.check_linear_attention, ex.check_focus, ex.check_focused_row,
                    ex.check_dwc_matrix, ex.check_answer_mass, ex.check_paired_differences, ex.check_bootstrap_interval):
        dtypes, batched = set(), False
        for seed in range(3):
            for args in _inputs(checker, seed):
                dtypes |= {a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()}
                batched |= any(isinstance(a, torch.Tensor) and a.ndim >= 3 and a.shape[0] > 1 for a in args)
        assert dtypes == {torch.float32, torch.float64}, checker.__name__
        if checker in (ex.check_softmax_attention, ex.check_linear_attention, ex.check_focus):
            assert batched, checker.__name__


def test_integer_exercises_draw_from_a_wide_range():
    for checker, low, high in ((ex.check_kv_crossover, 8, 1024), (ex.check_block_macs, 4, 100)):
        values = [v for args in _inputs(checker, 0) for v in args]
        assert min(values) <= low and max(values) >= high and len(set(values)) > 20


# --- the engine

def test_mismatch_holds_each_row_to_its_own_scale():
    want = torch.tensor([[1000.0, 1.0], [1e-3, 2e-3]])
    assert mismatch(want.clone(), want) is None
    nudged = want.clone()
    nudged[0, 1] += 0.005  # small next to its row's 1000: within 1e-5 of the row's scale
    assert mismatch(nudged, want, 1e-4, 1e-5) is None
    got = want.clone()
    got[1, 0] = 0.0  # a small row's entry lost: a global atol would not see it
    assert "at index (1, 0)" in mismatch(got, want, 1e-4, 1e-5)
    assert mismatch(torch.tensor([float("nan")]), torch.tensor([float("nan")])) is None


def test_type_mismatch_is_strict_about_ints_floats_and_dtypes():
    assert type_mismatch(3, 3) is None and type_mismatch(3.0, 3) and type_mismatch(True, 3) and type_mismatch(torch.tensor(3), 3)
    assert type_mismatch(0.5, 0.5) is None and type_mismatch(torch.tensor(0.5), 0.5)
    assert type_mismatch(torch.zeros(2), torch.zeros(2, dtype=torch.float64)).startswith("expected dtype")
    assert type_mismatch([1.0, 2.0], (1.0, 2.0)) is None and type_mismatch((1.0,), (1.0, 2.0))
    import numpy as np
    assert type_mismatch(np.int64(3), 3) is None and type_mismatch(np.float64(0.5), 0.5) is None


def test_a_verdict_is_not_echoed_twice_in_a_notebook():
    verdict = ex.check_focus(RIGHT[ex.check_focus][0])
    assert hasattr(verdict, "_ipython_display_") and verdict._ipython_display_() is None
    assert repr(verdict) == verdict.message


def test_a_check_leaves_torch_threads_as_it_found_them():
    before = torch.get_num_threads()
    ex.check_kv_crossover(lambda d, dv: 1)
    assert torch.get_num_threads() == before
