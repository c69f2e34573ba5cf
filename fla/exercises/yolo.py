"""Notebook 05's exercises: what one attention block costs on a YOLO map, and a focusing function that survives fp16."""
from __future__ import annotations

import torch

from .. import functional as Fn
from .check import Draw, Exercise, Property, Verdict, Wrong, check

__all__ = ["check_block_macs", "check_fp16_focus"]


def _block_macs(h: int, w: int, c: int, heads: int, kappa: int) -> int:
    return Fn.module_macs(h * w, c, heads, "linear", kappa)


def _draw_blocks(draw: Draw):
    cases = []
    while len(cases) < 31:
        heads = draw.choice([1, 2, 3, 4, 6, 8])
        cases.append((draw.log_int(1, 160), draw.log_int(1, 160), heads * draw.log_int(2, 128), heads, draw.choice([1, 3, 5, 7, 9])))
    return cases


def _linear_in_tokens(call, args):
    h, w, c, heads, kappa = args
    one, two = call(h, w, c, heads, kappa), call(2 * h, w, c, heads, kappa)
    if isinstance(one, int) and isinstance(two, int) and two != 2 * one:
        return ("doubling H doubles the tokens N = H·W, and every term of the block is linear in N: "
                f"yours goes from {one} to {two}, not {2 * one}")
    return None


def _dwc_term(call, args):
    h, w, c, heads, kappa = args
    one, three = call(h, w, c, heads, 1), call(h, w, c, heads, 3)
    if isinstance(one, int) and isinstance(three, int) and three - one != h * w * c * 8:
        return ("from κ = 1 to κ = 3 only the DWC changes: a depthwise κ×κ conv costs κ² per channel and pixel, "
                f"so the count must grow by N·C·(9 − 1) = {h * w * c * 8}; yours grows by {three - one}")
    return None


def _projection_term(call, args):
    h, w, c, heads, kappa = args
    base = call(h, w, c, heads, kappa)
    wide = call(h, w, 2 * c, heads, kappa)
    if not (isinstance(base, int) and isinstance(wide, int)):
        return None
    n, d = h * w, c // heads
    want = 4 * n * 3 * c * c + heads * (2 * n * 3 * d * d + n * d) + n * c * kappa**2  # C → 2C: d → 2d
    if wide - base != want:
        return ("doubling C (and so d = C/heads) must add 4·N·3C² to the projections, heads·2N·3d² + heads·N·d to the mixing "
                f"and N·C·κ² to the DWC: {want} in all; yours adds {wide - base}")
    return None


_BLOCK = Exercise(
    name="FLA block multiply-adds", entry="check_block_macs", reference=_block_macs, draw=_draw_blocks,
    args=("H", "W", "C", "heads", "kappa"), returns="a Python int, a count of multiply-adds",
    wrong=[
        Wrong(lambda h, w, c, heads, k: 2 * _block_macs(h, w, c, heads, k),
              "count multiply-adds, not FLOPs: one multiply and its add count once"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - Fn.projection_macs(h * w, c),
              "add the four C×C projections (q, k, v and output): 4·N·C²"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - h * w * c * c,
              "four projections, not three: q, k, v and the output"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - h * w * c * k * k,
              "add the DWC: one κ×κ depthwise conv over all C value channels, N·C·κ²"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - h * w * c * k * k + h * w * (c // heads) * k * k,
              "the DWC runs over all C value channels (every head's), N·C·κ², not one head's d"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - h * w * c * k * k + h * w * c * c * k * k,
              "the DWC is depthwise: each channel has its own κ×κ kernel, N·C·κ², not a full conv's N·C²·κ²"),
        Wrong(lambda h, w, c, heads, k: Fn.projection_macs(h * w, c) + Fn.attention_macs(h * w, c, "linear") + h * w * c * k * k,
              "split into heads: each head mixes with d = C / heads, (2N·d² + N·d) per head"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - (heads - 1) * Fn.attention_macs(h * w, c // heads, "linear"),
              "every head mixes: heads · (2N·d² + N·d), not one head's cost"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - heads * h * w * (c // heads),
              "the normaliser φ(Q)·Σφ(K) costs N·d per head too"),
        Wrong(lambda h, w, c, heads, k: _block_macs(h, w, c, heads, k) - heads * (h * w) * (c // heads) ** 2,
              "the kv order costs 2N·d² per head: φ(K)ᵀV (N·d²) and φ(Q)(φ(K)ᵀV) (N·d²)"),
        Wrong(lambda h, w, c, heads, k: Fn.module_macs(h * w, c, heads, "softmax", k),
              "focused linear attention mixes in the kv order, linear in N: 2N·d² + N·d per head, not softmax's 2N²·d"),
    ],
    properties=[Property(_linear_in_tokens), Property(_dwc_term), Property(_projection_term)],
    hint='reread notebook 05, section 4 "Where linear attention pays": projections, the mixing of every head with its normaliser, the DWC',
    crash_hint="H, W, C, heads and kappa are Python ints; C is a multiple of heads",
)


def check_block_macs(fn, seed: int | None = None) -> Verdict:
    """Notebook 05, section 4 "Where linear attention pays": ``fn(H, W, C, heads, kappa) -> int``, the multiply-adds of one
    ``FocusedLinearAttention(C, heads, kernel_size=kappa)`` on an H×W map: the four C×C projections, every head's
    kv-order mixing with its normaliser, and the κ×κ DWC on V (biases not counted). 31 sizes per call: maps from 1 to
    160 a side, 1 to 8 heads of 2 to 128 channels, κ from 1 to 9."""
    return check(_BLOCK, fn, seed)


# --- fp16

_HALF_MAX = 65504.0


def _fp16_features(draw: Draw, rows: int, d: int) -> torch.Tensor:
    """fp16 ReLU features (rows, d): each row its own scale, from 0.01 to 60 (above 40, x**3 overflows fp16), one row
    near 40 everywhere (‖x‖² = d·1600 overflows fp16 once d ≥ 41), and an all-zero row (a token the ReLU switched off)."""
    x = torch.relu(draw.randn(rows, d, dtype=torch.float32)) + 0.05 * draw.rand(rows, d)
    x = x / x.amax(dim=-1, keepdim=True)
    peaks = 10 ** (torch.log10(torch.tensor(0.01)) + draw.rand(rows, 1) * (torch.log10(torch.tensor(60.0)) + 2))
    x = x * peaks
    x[0] = 60.0 * (x[0] > 0).float() * (0.3 + 0.7 * x[0] / x[0].amax())  # the largest row: up to 60
    x[1] = 38.0 + 4.0 * draw.rand(d)                                     # values near 40 everywhere
    x[2] = 0.0
    x[3] = x[3] / x[3].amax().clamp_min(1e-6) * (0.01 + 0.04 * draw.rand(1))  # a row of hundredths
    return x[torch.randperm(rows, generator=draw.torch)].half()


def _draw_fp16(draw: Draw):
    cases = []
    for d in (draw.int(8, 40), 64, 128, 256, draw.int(41, 200)):
        rows = draw.int(4, 24)
        x = _fp16_features(draw, rows, d)
        if draw.int(0, 1):
            x = x.reshape(2, rows // 2, d) if rows % 2 == 0 else x[None]
        cases.append((x, draw.choice([2.0, 3.0, 3.0, 4.0, 5.0, round(draw.uniform(2.5, 6.0), 2)])))
    return cases


def _fp16_focus(x, p):
    return Fn.focus(x.float(), p).half()


def _naive(x, p):
    y = x**p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


def _global_max(x, p):
    y = (x / x.amax()) ** p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


def _row_max_unguarded(x, p):
    y = (x / x.amax(dim=-1, keepdim=True)) ** p
    return y * x.norm(dim=-1, keepdim=True) / y.norm(dim=-1, keepdim=True)


def _hand_norm(x, p):
    y = (x / x.amax(dim=-1, keepdim=True).clamp_min(1e-4)) ** p
    return y * (x * x).sum(dim=-1, keepdim=True).sqrt() / (y * y).sum(dim=-1, keepdim=True).sqrt().clamp_min(1e-4)


def _no_float32(args):
    def forbidden(t: torch.Tensor) -> str | None:
        if t.dtype in (torch.float32, torch.float64) and t.numel() > 1:
            return f"a {str(t.dtype).replace('torch.', '')} tensor of shape {tuple(t.shape)}"
        return None
    return forbidden


def _finite_half(call, args):
    out = call(*args)
    if isinstance(out, torch.Tensor) and not out.isfinite().all():
        where = tuple(int(i) for i in (~out.isfinite()).nonzero()[0])
        return (f"your result has inf or NaN (first at {where}): some step left fp16's range (largest 65504, smallest "
                "about 6e-8) — look at the powers, the sums of squares and the divisions, row by row")
    return None


def _row_by_row(call, args):
    x, p = args
    rows = x.reshape(-1, x.shape[-1])
    whole = call(*args)
    if not isinstance(whole, torch.Tensor) or whole.shape != x.shape:
        return None
    flat = whole.reshape(-1, x.shape[-1])
    for i in range(rows.shape[0]):
        alone = call(rows[i:i + 1].clone(), p)
        if isinstance(alone, torch.Tensor) and not torch.allclose(alone.float(), flat[i:i + 1].float(), rtol=1e-2, atol=1e-3, equal_nan=True):
            return ("each vector must be focused on its own: row {} alone gives a different result than inside the batch — "
                    "a maximum or a norm taken over the whole tensor mixes the rows' scales").format(i)
    return None


_FP16 = Exercise(
    name="fp16-safe focus", entry="check_fp16_focus", reference=_fp16_focus, draw=_draw_fp16, args=("x", "p"),
    returns="an fp16 tensor of x's shape", watch=_no_float32,
    watch_hint="compute in fp16 throughout (no .float(), no float32 tensors): the exercise is to stay inside "
               "fp16's range, as the attention does under autocast",
    wrong=[
        Wrong(_naive, "x**p overflows fp16 (largest number 65504) once x > 40 at p = 3: rescale each vector before the power — "
                      "f_p only sees the direction"),
        Wrong(_global_max, "divide each vector by its own largest entry, not by the tensor's: a row much smaller than the largest "
                           "underflows to 0 after the power"),
        Wrong(_row_max_unguarded, "an all-zero row (a token the ReLU switched off) has largest entry 0: 0/0 = NaN — guard the "
                                  "division, f_p of the zero vector is the zero vector"),
        Wrong(_hand_norm, "a hand-written sum of squares overflows fp16: d values near 40 give d·1600, above 65504 once d > 40 — "
                          "x.norm() accumulates in higher precision and returns a finite fp16 number"),
    ],
    properties=[Property(_finite_half), Property(_row_by_row)],
    hint='reread notebook 05, section 7 "Mixed precision": f_p(x) = ‖x‖ / ‖x**p‖ · x**p, and x**p must not leave fp16\'s range',
    crash_hint="x is fp16 of shape (..., d) with d up to 256; p is a Python float",
)


def check_fp16_focus(fn, seed: int | None = None) -> Verdict:
    """Notebook 05, section 7 "Mixed precision: the blog post's NaN in fp16, ours finite": ``fn(x (..., d) fp16, non-negative,
    p) -> (..., d) fp16``, f_p computed in fp16 throughout (no float32 tensors) without overflow: finite and equal, to fp16
    precision, to f_p computed in fp32. Rows of mixed scale (0.01 to 60) in one tensor, d up to 256, values near 40,
    an all-zero row (which gives zeros); x left unchanged."""
    return check(_FP16, fn, seed)
