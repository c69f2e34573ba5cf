"""Notebook 03's exercises: the numerical rank, and a depthwise convolution written as a matrix."""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from .. import functional as Fn
from .check import Draw, Exercise, Property, Verdict, Wrong, check

__all__ = ["check_numerical_rank", "check_dwc_matrix"]

_EPS32 = torch.finfo(torch.float32).eps


def _with_singular_values(draw: Draw, n: int, m: int, s: torch.Tensor) -> torch.Tensor:
    """A float32 (n, m) matrix with singular values s (float64, length ≤ min(n, m); the rest 0, up to rounding)."""
    r = len(s)
    u = torch.linalg.qr(draw.randn(n, r, dtype=torch.float64))[0]
    v = torch.linalg.qr(draw.randn(m, r, dtype=torch.float64))[0]
    return ((u * s) @ v.T).float()


def _profile(draw: Draw, n: int, m: int) -> torch.Tensor:
    """Singular values relative to σ₁ = 1 that straddle the tolerances a learner might pick.

    tol = max(N, M)·ε is the rule; one value sits 1.5× above it and one 1.5× below (with N, M four times apart,
    below min(N, M)·ε's rule too, and √(N·M)·ε's), one at tol/4 (above ε alone), and one in each decade from 1e-1
    to 1e-4 (fixed tolerances of 1e-2, 1e-3, ...). Eight values between 0.5 and 1 make σ₁ differ from their sum and
    from the Frobenius norm; a random number of further values between 1e-3 and 1, and zeros for the rest.
    """
    tol = max(n, m) * _EPS32
    big = [1.0] + [draw.uniform(0.5, 1.0) for _ in range(7)]
    decades = [10.0 ** -k * draw.uniform(1.5, 3.0) for k in (1, 2, 3, 4)]
    near = [tol * 1.5, tol / 1.5, tol / 4]
    extra = [10 ** draw.uniform(-3, 0) for _ in range(draw.int(0, max(0, min(n, m) - 16)))]
    s = sorted(big + decades + near + extra, reverse=True)[:min(n, m)]
    return torch.tensor(s, dtype=torch.float64)


def _draw_matrices(draw: Draw):
    cases = []
    shapes = [(draw.int(16, 120),) * 2]
    for _ in range(3):
        small = draw.int(16, 48)
        shapes.append((small, small * draw.int(4, 6)))   # wide: max(N, M) is the columns
        shapes.append((small * draw.int(4, 6), small))   # tall: max(N, M) is the rows
    shapes.append((draw.int(30, 150), draw.int(30, 150)))
    for n, m in shapes:
        scale = 10 ** draw.uniform(-4, 4)  # σ₁ far from 1: a tolerance not scaled by σ₁ is off by orders of magnitude
        cases.append((_with_singular_values(draw, n, m, _profile(draw, n, m) * scale),))
    n, m, r = draw.int(20, 80), draw.int(20, 80), draw.int(2, 12)
    cases.append(((draw.rand(n, r) @ draw.rand(r, m)) * 10 ** draw.uniform(-2, 2),))  # an exact product through r columns
    cases.append((draw.randn(draw.int(5, 60), draw.int(5, 60)),))                      # Gaussian: full rank
    cases.append((torch.zeros(draw.int(3, 9), draw.int(3, 9)),))                       # the limit case: rank 0
    return cases


def _rank(matrix):
    return int(Fn.numerical_rank(matrix))


@functools.lru_cache(maxsize=64)
def _svdvals(shape: tuple, data: bytes) -> torch.Tensor:
    return torch.linalg.svdvals(torch.frombuffer(bytearray(data), dtype=torch.float32).reshape(shape).double())


def _singular_values(matrix: torch.Tensor) -> torch.Tensor:
    """float64 singular values of a float32 matrix, computed once for the many wrong answers that need them."""
    return _svdvals(tuple(matrix.shape), matrix.float().contiguous().numpy().tobytes())


def _count_above(rtol_of, absolute: bool = False):
    """A wrong answer: the singular values above rtol_of(matrix)·σ₁ (or above the bare number when absolute)."""
    def answer(matrix):
        s = _singular_values(matrix)
        if len(s) == 0 or s[0] == 0:
            return 0
        return int((s > rtol_of(matrix) * (1.0 if absolute else s[0])).sum())
    return answer


_FIXED = ("the count depends on the tolerance; the rule is max(N, M)·ε·σ₁, with ε the float32 machine epsilon — "
          "a fixed number is right for one size and scale only")


def _scale_free(call, args):
    (matrix,) = args
    a, b, c = call(matrix), call(matrix * 1024), call(matrix / 1024)  # powers of 2: the singular values scale exactly
    if not (a == b == c):
        return (f"multiplying the matrix by 1024 or 1/1024 changes your count ({c}, {a}, {b}): the rank does not depend on "
                "the scale, so the tolerance must be relative to σ₁")
    return None


def _transpose_free(call, args):
    (matrix,) = args
    a, b = call(matrix), call(matrix.T.contiguous())
    if a != b:
        return (f"your count for the transpose differs ({a} vs {b}): rank(Mᵀ) = rank(M), so the tolerance must treat "
                "rows and columns alike — max(N, M), not one of them")
    return None


def _bounded(call, args):
    (matrix,) = args
    got = call(matrix)
    if isinstance(got, int) and not 0 <= got <= min(matrix.shape):
        return f"a rank lies between 0 and min(N, M) = {min(matrix.shape)}: yours is {got}"
    return None


_RANK = Exercise(
    name="numerical rank", entry="check_numerical_rank", reference=_rank, draw=_draw_matrices, args=("matrix",),
    returns="a Python int (int(...) of a count)",
    wrong=[
        Wrong(_count_above(lambda mat: 0.0), "rounding leaves tiny non-zero singular values: count only those above max(N, M)·ε·σ₁"),
        Wrong(lambda mat: min(mat.shape), "compute the singular values (torch.linalg.svdvals); the shape only bounds the rank"),
        Wrong(_count_above(lambda mat: min(mat.shape) * _EPS32),
              "the factor is max(N, M), not min(N, M): on a wide or tall matrix min(N, M)·ε·σ₁ counts rounding as rank"),
        Wrong(_count_above(lambda mat: mat.shape[0] * _EPS32),
              "the factor is max(N, M), not the number of rows: a wide matrix has more columns than rows"),
        Wrong(_count_above(lambda mat: mat.shape[1] * _EPS32),
              "the factor is max(N, M), not the number of columns: a tall matrix has more rows than columns"),
        Wrong(_count_above(lambda mat: (mat.shape[0] * mat.shape[1]) ** 0.5 * _EPS32), "the factor is max(N, M), not √(N·M)"),
        Wrong(_count_above(lambda mat: max(mat.shape) * _EPS32, absolute=True),
              "the tolerance is relative: max(N, M)·ε times σ₁, the largest singular value — the matrix's scale is arbitrary"),
        Wrong(_count_above(lambda mat: max(mat.shape) * torch.finfo(torch.float64).eps),
              "ε is float32's (torch.finfo(torch.float32).eps, the matrix's dtype), not float64's: the rounding happened in float32"),
        Wrong(lambda mat: _count_above(lambda m2: max(m2.shape) * _EPS32, absolute=True)(
            mat / _singular_values(mat).sum().clamp_min(1e-300).float()),
            "the tolerance is relative to σ₁, the largest singular value, not to their sum"),
        *[Wrong(_count_above(lambda mat, t=t: t), _FIXED) for t in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)],
        *[Wrong(_count_above(lambda mat, t=t: t, absolute=True), _FIXED) for t in (1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7)],
        Wrong(_count_above(lambda mat: _EPS32), "the tolerance is max(N, M)·ε·σ₁: ε·σ₁ alone counts rounding of a large matrix as rank"),
    ],
    properties=[Property(_bounded), Property(_scale_free), Property(_transpose_free)],
    hint='reread notebook 03, section 1 "The bound and the DWC matrix, by hand": count the singular values above max(N, M)·ε(float32)·σ₁',
)


def check_numerical_rank(fn, seed: int | None = None) -> Verdict:
    """Notebook 03, section 1 "The bound and the DWC matrix, by hand": ``fn(matrix (N, M) float32) -> int``, the number of
    singular values above max(N, M)·ε·σ₁, ε float32's machine epsilon (numpy's rule). The matrices have singular values
    just above and below that tolerance (and below min(N, M)·ε·σ₁, and in every decade down to 1e-4), σ₁ from 1e-4 to
    1e4, square, wide and tall, and the zero matrix (rank 0); the matrix is left unchanged."""
    return check(_RANK, fn, seed)


def _dwc(kernel, h, w):
    return Fn.dwc_matrix(kernel[None, None], h, w)[0]


def _draw_kernels(draw: Draw):
    cases = []
    for k in (3, 3, 5, 1, 7, 5, 3):
        h, w = draw.int(1, 9), draw.int(1, 9)
        if len(cases) < 3:  # the first grids are larger than the kernel and not square
            h, w = draw.int(k + 1, 9), draw.int(k + 1, 9)
            w = w + 1 if w == h else w
        cases.append((draw.randn(k, k, dtype=draw.dtype()), h, w))
    return cases


def _circular(kernel, h, w):
    k = kernel.shape[-1]
    eye = torch.eye(h * w, dtype=kernel.dtype).reshape(h * w, 1, h, w)
    cols = F.conv2d(F.pad(eye, (k // 2,) * 4, mode="circular"), kernel[None, None])
    return cols.flatten(1).T


def _column_major(kernel, h, w):  # grids flattened column by column
    n = h * w
    idx = torch.arange(n).reshape(h, w).T.flatten()  # position in column-major order of each row-major pixel
    d = _dwc(kernel, h, w)
    return d[idx][:, idx]


def _is_the_conv(call, args):
    kernel, h, w = args
    d = call(kernel, h, w)
    if not isinstance(d, torch.Tensor) or d.shape != (h * w, h * w):
        return None
    x = torch.randn(1, 1, h, w, dtype=kernel.dtype, generator=torch.Generator().manual_seed(0))
    want = F.conv2d(x, kernel[None, None], padding=kernel.shape[-1] // 2).flatten()
    if not torch.allclose(d @ x.flatten(), want, rtol=1e-3, atol=1e-4):
        return "D @ x.flatten() must equal conv2d(x, kernel, padding=k // 2).flatten() for every image x: yours does not"
    return None


def _delta_gives_identity(call, args):
    kernel, h, w = args
    k = kernel.shape[-1]
    delta = torch.zeros_like(kernel)
    delta[k // 2, k // 2] = 1
    d = call(delta, h, w)
    if isinstance(d, torch.Tensor) and d.shape == (h * w, h * w) and not torch.equal(d, torch.eye(h * w, dtype=d.dtype)):
        return "a kernel that is 1 at its centre and 0 elsewhere leaves the image unchanged: its D must be the identity"
    return None


def _corner_tap(call, args):
    kernel, h, w = args
    k = kernel.shape[-1]
    if k < 3:
        return None
    tap = torch.zeros_like(kernel)
    tap[0, 0] = 1
    d = call(tap, h, w)
    if not isinstance(d, torch.Tensor) or d.shape != (h * w, h * w):
        return None
    want = F.conv2d(torch.eye(h * w, dtype=kernel.dtype).reshape(h * w, 1, h, w), tap[None, None], padding=k // 2).flatten(1).T
    if not torch.equal(d, want):
        r = k // 2
        return (f"with a kernel that is 1 only at [0, 0] the output pixel (i, j) copies the input pixel (i − {r}, j − {r}) "
                f"(conv2d does not flip the kernel), and is 0 where that pixel lies outside the grid")
    return None


_DWC = Exercise(
    name="DWC matrix", entry="check_dwc_matrix", reference=_dwc, draw=_draw_kernels, args=("kernel", "H", "W"),
    returns="a tensor (H·W, H·W) of the kernel's dtype",
    wrong=[
        # Dᵀ is also the matrix of the flipped kernel: one mistake, two ways to make it
        Wrong(lambda kernel, h, w: _dwc(kernel, h, w).T,
              "you built Dᵀ (or flipped the kernel; conv2d does not flip it): row i of D holds the weights output pixel i gives its inputs"),
        Wrong(_circular, "zero padding: a pixel near the border has fewer neighbours, it does not wrap around"),
        Wrong(_column_major, "flatten the grids row by row (row-major, as reshape does): pixel (i, j) is entry i·W + j"),
        Wrong(lambda kernel, h, w: _column_major(kernel, h, w).T, "flatten the grids row by row (pixel (i, j) is entry i·W + j), "
                                                                   "and row i of D holds the weights of output pixel i"),
        Wrong(lambda kernel, h, w: _dwc(kernel, w, h),
              "the grid has H rows and W columns: (H, W), not (W, H)"),
    ],
    properties=[Property(_delta_gives_identity), Property(_corner_tap), Property(_is_the_conv)],
    hint='reread notebook 03, section 1 "The bound and the DWC matrix, by hand": the convolution of the basis image e_j, '
         'flattened, is column j of D',
    crash_hint="the grid is H×W (not square in general), N = H·W; kernel is (k, k) with k odd, zero padding k // 2",
)


def check_dwc_matrix(fn, seed: int | None = None) -> Verdict:
    """Notebook 03, section 1 "The bound and the DWC matrix, by hand": ``fn(kernel (k, k), H, W) -> (N, N)``, N = H·W: the
    matrix D with y = D @ x for a k×k convolution (torch's conv2d, zero padding k // 2) of one channel, grids flattened
    row-major; in the kernel's dtype (float32 or float64); k from 1 to 7 on grids from 1×1 to 9×9, most not square."""
    return check(_DWC, fn, seed)
