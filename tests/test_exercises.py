"""fla.exercises: every checker accepts a learner's correct answer and rejects the plausible wrong ones, naming the mistake."""
import pytest
import torch
import torch.nn.functional as F

from fla import exercises as ex
from fla.exercises.check import mismatch


# --- answers as a learner would write them (not the references the checkers use)

def softmax_attention(q, k, v):
    return (q @ k.T / q.shape[-1] ** 0.5).softmax(dim=-1) @ v


def linear_attention(phi_q, phi_k, v):
    return phi_q @ (phi_k.T @ v) / (phi_q @ phi_k.sum(dim=0))[:, None]


def kv_crossover(d, dv):
    return int(2 * d * dv / (d + dv)) + 1


def focus(x, p):
    y = x**p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


def focused_row(q, keys, p):
    scores = focus(F.relu(keys), p) @ focus(F.relu(q), p)
    return scores / scores.sum()


def numerical_rank(matrix):
    s = torch.linalg.svdvals(matrix)
    return int((s > max(matrix.shape) * torch.finfo(matrix.dtype).eps * s[0]).sum())


def dwc_matrix(kernel, h, w):
    n = h * w
    basis = torch.eye(n, dtype=kernel.dtype).reshape(n, 1, h, w)
    return F.conv2d(basis, kernel[None, None], padding=kernel.shape[-1] // 2).reshape(n, n).T


def block_macs(h, w, c, heads, kappa):
    n, d = h * w, c // heads
    return 4 * n * c * c + heads * (2 * n * d * d + n * d) + n * c * kappa**2


def fp16_focus(x, p):
    y = (x / x.amax(dim=-1, keepdim=True)) ** p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


RIGHT = {
    ex.check_softmax_attention: softmax_attention,
    ex.check_linear_attention: linear_attention,
    ex.check_kv_crossover: kv_crossover,
    ex.check_focus: focus,
    ex.check_focused_row: focused_row,
    ex.check_numerical_rank: numerical_rank,
    ex.check_dwc_matrix: dwc_matrix,
    ex.check_block_macs: block_macs,
    ex.check_fp16_focus: fp16_focus,
}

# one plausible wrong answer per checker, and a word the hint must contain
WRONG = [
    (ex.check_softmax_attention, lambda q, k, v: (q @ k.T).softmax(-1) @ v, "√d"),
    (ex.check_linear_attention, lambda q, k, v: q @ (k.T @ v), "normaliser"),
    (ex.check_kv_crossover, lambda d, dv: d, "d ≠ d_v"),
    (ex.check_kv_crossover, lambda d, dv: 2 * d * dv // (d + dv), "strictly"),
    (ex.check_focus, lambda x, p: x**p, "norm"),
    (ex.check_focused_row, lambda q, keys, p: focus(F.relu(keys), p) @ focus(F.relu(q), p), "sum to 1"),
    (ex.check_focused_row, lambda q, keys, p: (lambda s: s / s.sum())(F.relu(focus(keys, p)) @ F.relu(focus(q, p))), "ReLU comes first"),
    (ex.check_numerical_rank, lambda m: int((torch.linalg.svdvals(m) > 0).sum()), "tiny"),
    (ex.check_dwc_matrix, lambda kernel, h, w: dwc_matrix(kernel, h, w).T, "Dᵀ"),
    (ex.check_dwc_matrix, lambda kernel, h, w: dwc_matrix(kernel.flip(0, 1), h, w), "Dᵀ"),
    (ex.check_block_macs, lambda h, w, c, heads, kappa: block_macs(h, w, c, heads, kappa) - 4 * h * w * c * c, "projections"),
    (ex.check_block_macs, lambda h, w, c, heads, kappa: block_macs(h, w, c, 1, kappa), "split into heads"),
    (ex.check_fp16_focus, lambda x, p: focus(x, p), "overflows fp16"),
]


@pytest.mark.parametrize("checker", list(RIGHT), ids=lambda c: c.__name__)
def test_checker_accepts_a_correct_answer(checker, capsys):
    verdict = checker(RIGHT[checker])
    assert verdict and verdict.message.startswith("✓"), verdict.message
    assert capsys.readouterr().out.strip() == verdict.message  # printed once


@pytest.mark.parametrize("checker,answer,word", WRONG, ids=lambda x: getattr(x, "__name__", str(x))[:20])
def test_checker_rejects_a_wrong_answer_and_names_the_mistake(checker, answer, word):
    verdict = checker(answer)
    assert not verdict and verdict.message.startswith("✗")
    assert "hint:" in verdict.message and word in verdict.message, verdict.message


@pytest.mark.parametrize("checker", list(RIGHT), ids=lambda c: c.__name__)
def test_the_stub_as_handed_out_reads_as_not_written_yet(checker):
    def stub(*args):
        raise NotImplementedError

    verdict = checker(stub)
    assert not verdict and "not written yet" in verdict.message


def test_a_crash_in_the_learners_code_is_one_line_with_the_inputs():
    verdict = ex.check_softmax_attention(lambda q, k, v: q @ v)
    assert not verdict and "RuntimeError" in verdict.message and "tensor(5, 4)" in verdict.message
    assert "\n" not in verdict.message


def test_a_learner_who_writes_into_the_inputs_cannot_change_the_reference():
    def in_place(q, k, v):
        q.mul_(0)
        return softmax_attention(q, k, v)

    assert not ex.check_softmax_attention(in_place)


def test_mismatch_names_the_first_differing_entry():
    got, want = torch.zeros(2, 3), torch.zeros(2, 3)
    assert mismatch(got, want) is None
    got[1, 2] = 1.0
    assert mismatch(got, want).startswith("at index (1, 2) expected 0, got 1")
    assert "shape" in mismatch(torch.zeros(3, 2), want)
    assert mismatch(3, 3) is None and mismatch(3.5, 3) is not None and mismatch(True, False) is not None


def test_a_verdict_is_not_echoed_twice_in_a_notebook():
    verdict = ex.check_focus(focus)
    assert hasattr(verdict, "_ipython_display_") and verdict._ipython_display_() is None
    assert repr(verdict) == verdict.message
