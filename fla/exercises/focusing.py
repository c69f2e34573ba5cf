"""Notebook 02's exercises: the focusing function f_p and one focused attention row."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .check import Draw, Exercise, Property, Verdict, Wrong, check

__all__ = ["check_focus", "check_focused_row"]


def _ps(draw: Draw):
    return draw.choice([1.0, 2.0, 3.0, 4.0, 5.0, round(draw.uniform(1.2, 6.0), 2)])


def _features(draw: Draw, shape, dtype, zero_rows: bool):
    """Non-negative vectors over the last dim, as after a ReLU (exact zeros included), each row of its own scale
    (10⁻² to 10²), so a norm taken over the whole tensor instead of per vector shows; optionally a few all-zero rows."""
    x = F.relu(draw.randn(*shape, dtype=dtype))
    peak = torch.arange(x.shape[-1]).reshape(*[1] * (x.ndim - 1), -1) == draw.int(0, x.shape[-1] - 1)
    x = torch.where(peak, x.abs() + 0.3, x)  # every vector has an entry ≥ 0.3 (times its scale)
    scale = 10 ** (4 * draw.rand(*shape[:-1], 1, dtype=torch.float64) - 2)
    x = x * scale.to(dtype)
    if zero_rows and x.ndim > 1:
        rows = x.reshape(-1, x.shape[-1])
        rows[draw.randint(0, rows.shape[0], (max(1, rows.shape[0] // 4),))] = 0
    return x


def _draw_focus(draw: Draw):
    cases = []
    for zero_rows in (False, True):
        d = draw.int(2, 48)
        b = draw.int(2, 12)
        shapes = [(d,), (b, d + 1 if b == d else d), (draw.int(2, 5), draw.int(2, 9), draw.int(2, 64)),
                  (2, 3, draw.int(1, 4), draw.int(2, 16))]
        if not zero_rows:
            shapes.append((d, d))  # square: norms without keepdim broadcast along the wrong axis and still run
        cases += [(_features(draw, s, draw.dtype(), zero_rows), _ps(draw)) for s in shapes]
    tiny = _features(draw, (draw.int(2, 6), draw.int(4, 32)), draw.dtype(), False)
    tiny = tiny / tiny.amax(dim=-1, keepdim=True) * 0.003  # ‖x**6‖ below 1e-12: an eps added to a norm shows
    cases.append((tiny, 6.0))
    return cases


def _focus(x, p):
    """Eq. 6 exactly, f_p(0) = 0. (``fla.functional.focus`` floors x**p at 1e-10 so that attention rows stay defined;
    that moves a weight of 1e-4 by about 1e-6 of itself, more than float64 answers are held to.)"""
    peak = x.amax(dim=-1, keepdim=True)
    y = (x / torch.where(peak > 0, peak, 1)) ** p  # x / its largest entry: the same direction, and no overflow
    norm = y.norm(dim=-1, keepdim=True)
    return y * x.norm(dim=-1, keepdim=True) / torch.where(norm > 0, norm, 1)


def _textbook(x, p):  # right, but 0/0 on an all-zero vector
    y = x**p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


def _keeps_norm(call, args):
    x, p = args
    out = call(x, p)
    if isinstance(out, torch.Tensor) and out.shape == x.shape:
        got, want = out.double().norm(dim=-1), x.double().norm(dim=-1)
        rtol = 1e-6 if x.dtype == torch.float64 else 1e-4
        if not torch.allclose(got, want, rtol=rtol, atol=1e-6 * float(want.max())):
            i = tuple(int(j) for j in (~torch.isclose(got, want, rtol=rtol, atol=1e-6 * float(want.max()))).nonzero()[0])
            return (f"f_p keeps each vector's norm, ‖f_p(x)‖ = ‖x‖ over the last dim: at vector {i} ‖x‖ = "
                    f"{want[i].item():.4g}, yours has norm {got[i].item():.4g}")
    return None


def _along_x_to_the_p(call, args):
    x, p = args
    out = call(x, p)
    if isinstance(out, torch.Tensor) and out.shape == x.shape:
        y, o = x.double() ** p, out.double()
        live = x.double().norm(dim=-1) > 0
        cos = (y * o).sum(-1) / (y.norm(dim=-1) * o.norm(dim=-1))
        if not torch.allclose(cos[live], torch.ones_like(cos[live]), atol=1e-4):
            return "f_p(x) points along x**p: each output vector must be a positive multiple of x**p (entry by entry)"
    return None


def _identity_at_1(call, args):
    x, _ = args
    out = call(x, 1.0)
    if isinstance(out, torch.Tensor) and out.shape == x.shape and not torch.allclose(out.double(), x.double(), rtol=1e-3, atol=1e-6):
        return "at p = 1, f_p(x) = x: yours changes x"
    return None


def _finite(call, args):
    out = call(*args)
    if isinstance(out, torch.Tensor) and not out.isfinite().all():
        return ("your result has NaN or inf: an all-zero vector (a token the ReLU switched off) gives 0/0 — "
                "f_p of the zero vector is the zero vector (the limit of f_p(λx) = λ·f_p(x) as λ → 0)")
    return None


_FOCUS = Exercise(
    name="focus", entry="check_focus", reference=_focus, draw=_draw_focus, args=("x", "p"),
    returns="a tensor of x's shape and dtype",
    wrong=[
        Wrong(_textbook, "an all-zero vector (a token the ReLU switched off) gives 0/0 = NaN: f_p(0) must be 0 — "
                         "guard the division for vectors of norm 0"),
        Wrong(lambda x, p: x**p, "f_p keeps each vector's norm: multiply x**p by ‖x‖ / ‖x**p‖"),
        Wrong(lambda x, p: x**p / (x**p).norm(dim=-1, keepdim=True), "the result has x's norm, not norm 1: multiply by ‖x‖"),
        Wrong(lambda x, p: x**p * x.norm() / (x**p).norm(),
              "the norms are per vector, over the last dim (keepdim=True), not over the whole tensor"),
        Wrong(lambda x, p: x**p * x.norm(dim=0, keepdim=True) / (x**p).norm(dim=0, keepdim=True),
              "the norms are per vector: over the last dim (dim=-1), not the first"),
        Wrong(lambda x, p: x**p * x.norm(dim=-1) / (x**p).norm(dim=-1),
              "without keepdim=True the norms (..., ) broadcast along the wrong axis: keep them as (..., 1)"),
        Wrong(lambda x, p: x**p * x.sum(-1, keepdim=True) / (x**p).sum(-1, keepdim=True),
              "the norm is the Euclidean one, ‖x‖ = √(Σ x_i²), not the sum of the entries"),
        Wrong(lambda x, p: (x / x.norm(dim=-1, keepdim=True)) ** p * x.norm(dim=-1, keepdim=True),
              "normalising x before the power does not give back x's norm: f_p(x) = ‖x‖ / ‖x**p‖ · x**p"),
    ],
    properties=[Property(_finite), Property(_keeps_norm), Property(_along_x_to_the_p), Property(_identity_at_1)],
    hint='compare with Eq. 6 in notebook 02, section 1 "The focusing function, by hand": ‖x‖ / ‖x**p‖ · x**p, norms over the last dim',
    crash_hint="x may have any number of leading dims (..., d); the norms are per vector over the last dim, kept as (..., 1)",
)


def check_focus(fn, seed: int | None = None) -> Verdict:
    """Notebook 02, section 1 "The focusing function, by hand": ``fn(x (..., d) non-negative, p) -> (..., d)``,
    f_p(x) = ‖x‖ / ‖x**p‖ · x**p over the last dim (paper Eq. 6), in x's dtype (float32 or float64); an all-zero vector
    gives zeros, not NaN; x left unchanged. 1 to 4 dims, vectors of scales 10⁻² to 10², p from 1 to 6."""
    return check(_FOCUS, fn, seed)


def _focused_row(q, keys, p):
    phi_q, phi_k = _focus(F.relu(q), p), _focus(F.relu(keys), p)
    scores = phi_k @ phi_q
    return scores / scores.sum()


def _draw_rows(draw: Draw):
    cases = []
    for i in range(10):
        d, m, dtype = draw.int(2, 48), draw.int(2, 40), draw.dtype()
        q, keys = draw.randn(d, dtype=dtype), draw.randn(m, d, dtype=dtype)
        q[draw.int(0, d - 1)] = q.abs().max() + 0.1  # the query has a positive entry
        keys[0] = keys[0].abs() + 0.01                 # and one key overlaps it: the scores cannot all be 0
        if i >= 5:  # a key with no positive entry: its φ is 0, and so is its weight
            keys[draw.int(1, m - 1)] = -keys[0]
        p = _ps(draw)
        cases.append((q * draw.choice([0.1, 1.0, 10.0]), keys, p))
    return cases


def _phi_of_raw(x, p):  # f_p on the raw features, then the ReLU
    y = x**p
    return F.relu(y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True))


def _finite_row(call, args):
    out = call(*args)
    if isinstance(out, torch.Tensor) and not out.isfinite().all():
        return "your weights have NaN or inf: a 0/0 somewhere (a key that is all zeros after the ReLU?)"
    return None


def _sums_to_one(call, args):
    out = call(*args)
    if isinstance(out, torch.Tensor) and out.ndim == 1 and out.isfinite().all() and abs(out.double().sum().item() - 1) > 1e-3:
        return f"attention weights sum to 1 over the keys: yours sum to {out.double().sum().item():.4g}"
    return None


def _non_negative(call, args):
    out = call(*args)
    if isinstance(out, torch.Tensor) and (out < 0).any():
        return "attention weights are never negative: φ_p(x) = f_p(ReLU(x)) has no negative entry"
    return None


def _dead_key(call, args):
    q, keys, p = args
    dead = (keys <= 0).all(dim=-1)
    out = call(*args)
    if isinstance(out, torch.Tensor) and out.shape == dead.shape and dead.any() and (out[dead].abs() > 1e-6).any():
        return "a key with no positive entry has φ = 0 after the ReLU, so its weight is 0 — yours is not"
    return None


def _scale_free(call, args):
    q, keys, p = args
    a, b = call(q, keys, p), call(q * 4, keys, p)
    if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape and a.isfinite().all()
            and not torch.allclose(a.double(), b.double(), rtol=1e-3, atol=1e-6)):
        return "scaling q by 4 must not change the weights: f_p(λx) = λ·f_p(x), and dividing by the sum cancels λ"
    return None


_ROW = Exercise(
    name="focused attention row", entry="check_focused_row", reference=_focused_row, draw=_draw_rows,
    args=("q", "keys", "p"), returns="a tensor (M,) of q's dtype",
    wrong=[
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(_textbook(F.relu(keys), p) @ _textbook(F.relu(q), p)),
              "a key with no positive entry is all zeros after the ReLU, and f_p gives it 0/0 = NaN: "
              "f_p of the zero vector is the zero vector (your check_focus answer guards it)"),
        Wrong(lambda q, keys, p: _focus(F.relu(keys), p) @ _focus(F.relu(q), p),
              "attention weights sum to 1: divide the scores by their sum (the normaliser)"),
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(_phi_of_raw(keys, p) @ _phi_of_raw(q, p)),
              "the ReLU comes first: f_p of the raw features lets negative entries (or their powers) into the norms"),
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(_focus(keys.abs(), p) @ _focus(q.abs(), p)),
              "φ_p uses the ReLU: a negative entry becomes 0, not its absolute value"),
        Wrong(lambda q, keys, p: torch.softmax(_focus(F.relu(keys), p) @ _focus(F.relu(q), p), dim=-1),
              "linear attention normalises by the sum of the scores, not by a softmax"),
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(F.relu(keys) @ F.relu(q)),
              "apply f_p to both φ(q) and every φ(k_j) before the dot products"),
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(_focus(F.relu(keys), p) @ F.relu(q)),
              "apply f_p to the query too, not only to the keys"),
        Wrong(lambda q, keys, p: (lambda s: s / s.sum())(F.relu(keys) ** p @ F.relu(q) ** p),
              "f_p is x**p rescaled to keep each vector's norm: the rescaling changes how keys of different norms compare"),
        Wrong(lambda q, keys, p: (lambda s: s / s.max())(_focus(F.relu(keys), p) @ _focus(F.relu(q), p)),
              "divide by the sum of the scores (weights summing to 1), not by their largest"),
    ],
    properties=[Property(_finite_row), Property(_non_negative), Property(_sums_to_one), Property(_dead_key), Property(_scale_free)],
    hint='compare with notebook 02, section 2 "One focused attention row": φ_p(x) = f_p(ReLU(x)) for the query and every key, '
         'dot products, divided by their sum',
    crash_hint="q is one vector (d,), keys a matrix (M, d): the scores are one number per key, shape (M,)",
)


def check_focused_row(fn, seed: int | None = None) -> Verdict:
    """Notebook 02, section 2 "One focused attention row, on a photograph": ``fn(q (d,), keys (M, d), p) -> (M,)``, the
    attention weights one query puts on M keys under the focused kernel: φ_p(x) = f_p(ReLU(x)), scores φ_p(q)·φ_p(k_j),
    divided by their sum; in q's dtype (float32 or float64); a key with no positive entry gets weight 0; inputs unchanged."""
    return check(_ROW, fn, seed)
