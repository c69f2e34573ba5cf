"""fla.kernels' fast paths equal fla.functional's equations: values and gradients, float64 exactly, fp32/bf16 within tolerance."""
from __future__ import annotations

import pytest
import torch

from fla import functional as Fn
from fla import kernels

TOLERANCE = {torch.float64: {}, torch.float32: dict(atol=1e-5, rtol=1e-4), torch.bfloat16: None}


def _grads(out, inputs, grad):
    return torch.autograd.grad(out, inputs, grad)


def _assert_close(ours, reference, dtype):
    """float64/fp32: elementwise; bf16 (8-bit mantissa, sums over tokens): relative error of the whole tensor."""
    if dtype == torch.bfloat16:
        error = (ours.double() - reference.double()).norm() / reference.double().norm()
        assert error < 2e-2, f"relative error {error:.3g}"
    else:
        torch.testing.assert_close(ours, reference, **TOLERANCE[dtype])


def _leaves(*ts, dtype):
    return [t.to(dtype).requires_grad_() for t in ts]


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
@pytest.mark.parametrize("p", [1.0, 3.0, 10.0])
def test_focused_kernel_equals_focus_of_relu_kernel(p, dtype):
    """The hand-written backward against autograd through the plain equations; for bf16, the equations in
    float64 on the same bf16 numbers (the fast path computes in fp32 and rounds once)."""
    torch.manual_seed(0)
    x, s = _leaves(torch.randn(3, 20, 16, dtype=torch.double) * 5, torch.rand(16, dtype=torch.double) + 0.5, dtype=dtype)
    gy = torch.randn(3, 20, 16, dtype=torch.double).to(dtype)
    fast = kernels.focused_kernel(x, s, p)
    assert fast.dtype == dtype
    exact = (x, s, gy) if dtype != torch.bfloat16 else _leaves(x.detach(), s.detach(), gy, dtype=torch.double)
    plain = Fn.focus(Fn.relu_kernel(exact[0]) / exact[1], p)
    _assert_close(fast, plain, dtype)
    for ours, reference in zip(_grads(fast, (x, s), gy), _grads(plain, exact[:2], exact[2])):
        _assert_close(ours, reference, dtype)


@pytest.mark.parametrize("p", [1.0, 3.0])
def test_focused_kernel_without_the_floor_equals_the_bare_equation(p):
    """floor=0 (the authors' guard): values and gradients equal focus(..., floor=0), and the floor changes them."""
    torch.manual_seed(0)
    x, s = _leaves(torch.randn(3, 20, 16, dtype=torch.double) * 5, torch.rand(16, dtype=torch.double) + 0.5, dtype=torch.double)
    gy = torch.randn(3, 20, 16, dtype=torch.double)
    fast = kernels.focused_kernel(x, s, p, floor=0.0)
    plain = Fn.focus(Fn.relu_kernel(x) / s, p, floor=0.0)
    torch.testing.assert_close(fast, plain)
    for ours, reference in zip(_grads(fast, (x, s), gy), _grads(plain, (x, s), gy)):
        torch.testing.assert_close(ours, reference)
    if p > 1:  # ReLU's zeros (+ 1e-6) raised to p = 3 fall below the floor
        assert not torch.allclose(fast, kernels.focused_kernel(x, s, p), rtol=1e-3, atol=0)


def test_focused_kernel_along_the_channel_dim_of_channel_first_tokens():
    """The modules call it on (B, C, N) with dim=-2 and a (C, 1) scale: the same map as on (B, N, C)."""
    torch.manual_seed(0)
    x = (torch.randn(2, 16, 30, dtype=torch.double) * 3).requires_grad_()
    s = (torch.rand(16, 1, dtype=torch.double) + 0.5).requires_grad_()
    gy = torch.randn(2, 16, 30, dtype=torch.double)
    channel_first = kernels.focused_kernel(x, s, 3.0, dim=-2)
    plain = Fn.focus(Fn.relu_kernel(x.transpose(1, 2)) / s[:, 0], 3.0).transpose(1, 2)
    torch.testing.assert_close(channel_first, plain)
    for ours, reference in zip(_grads(channel_first, (x, s), gy), _grads(plain, (x, s), gy)):
        assert ours.shape == reference.shape
        torch.testing.assert_close(ours, reference)


def test_focused_kernel_gradcheck():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 6, dtype=torch.double, requires_grad=True)
    s = (torch.rand(6, dtype=torch.double) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda a, b: kernels.focused_kernel(a, b, 3.0), (x, s))


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
@pytest.mark.parametrize("order", ["kv", "qk"])
def test_linear_attention_equals_reference(order, dtype):
    torch.manual_seed(0)
    q, k, v = _leaves(torch.rand(2, 3, 50, 8), torch.rand(2, 3, 40, 8), torch.randn(2, 3, 40, 8), dtype=dtype)
    g = torch.randn(2, 3, 50, 8).to(dtype)
    fast, plain = kernels.linear_attention(q, k, v, order), Fn.linear_attention(q, k, v, order)
    assert fast.dtype == dtype
    _assert_close(fast, plain, dtype)
    for ours, reference in zip(_grads(fast, (q, k, v), g), _grads(plain, (q, k, v), g)):
        _assert_close(ours, reference, dtype)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_linear_attention_sums_half_inputs_in_fp32(dtype):
    """Σ_j k_j and K^T V over 20 000 keys reach ~1e5 · 8, past fp16's 65504: the fast path sums in fp32."""
    torch.manual_seed(0)
    q, k, v = torch.rand(1, 64, 8) + 1, torch.rand(1, 20000, 8) * 10 + 1, torch.rand(1, 20000, 8) * 10
    out = kernels.linear_attention(q.to(dtype), k.to(dtype), v.to(dtype))
    assert out.dtype == dtype and torch.isfinite(out).all()
    reference = Fn.linear_attention(q.to(dtype).double(), k.to(dtype).double(), v.to(dtype).double())
    torch.testing.assert_close(out.double(), reference, rtol=1e-2, atol=1e-2)
    if dtype == torch.float16:  # the plain equation in fp16 overflows: what the widening is for
        assert not torch.isfinite(Fn.linear_attention(q.to(dtype), k.to(dtype), v.to(dtype))).all()


@pytest.mark.parametrize("dtype", list(TOLERANCE), ids=str)
@pytest.mark.parametrize("batch, k, hw", [(1, 5, (7, 6)), (2, 3, (5, 9)), (3, 5, (1, 1))])
def test_depthwise_conv_equals_reference(batch, k, hw, dtype):
    torch.manual_seed(0)
    x = torch.randn(batch, 4, *hw).contiguous(memory_format=torch.channels_last)
    x, w = _leaves(x, torch.randn(4, 1, k, k), dtype=dtype)
    g = torch.randn(batch, 4, *hw).to(dtype)
    fast, plain = kernels.depthwise_conv(x, w), Fn.depthwise_conv(x, w)
    _assert_close(fast, plain, dtype)
    for ours, reference in zip(_grads(fast, (x, w), g), _grads(plain, (x, w), g)):
        _assert_close(ours, reference, dtype)


RESIZES = [((14, 14), (7, 9)), ((14, 14), (40, 20)), ((3, 5), (8, 8)), ((5, 5), (1, 1)), ((1, 1), (4, 3)), ((7, 6), (7, 12))]


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 5e-6), (torch.float64, 1e-12)], ids=["fp32", "fp64"])
@pytest.mark.parametrize("size_in, size_out", RESIZES, ids=lambda s: "x".join(map(str, s)))
def test_resize_equals_bilinear_interpolate(size_in, size_out, dtype, tol):
    """Against torch's bilinear upsampling (align_corners=False): values and gradients (two matmuls)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size_in, dtype=dtype, requires_grad=True)
    g = torch.randn(2, 3, *size_out, dtype=dtype)
    ours = kernels.resize(x, size_out)
    torch_s = torch.nn.functional.interpolate(x, size=size_out, mode="bilinear", align_corners=False)
    torch.testing.assert_close(ours, torch_s, atol=tol, rtol=tol)
    torch.testing.assert_close(_grads(ours, x, g)[0], _grads(torch_s, x, g)[0], atol=tol, rtol=tol)
    rows, cols = kernels._resize_matrix(size_out[0], size_in[0], x), kernels._resize_matrix(size_out[1], size_in[1], x)
    torch.testing.assert_close(rows @ x @ cols.T, torch_s, atol=tol, rtol=tol)  # the matrices are torch's resize


def test_resize_gradcheck():
    x = torch.randn(1, 2, 5, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: kernels.resize(t, (7, 2)), (x,))
    assert torch.autograd.gradgradcheck(lambda t: kernels.resize(t, (7, 2)), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_focused_kernel_under_autocast_forward_and_backward(dtype):
    """Inside autocast, backward included (a hand-written loop may call it there) with a loss scaled as
    GradScaler scales it: the values and gradients of the run without autocast, and x's dtype out."""
    torch.manual_seed(0)
    x = (torch.randn(2, 16, 30) * 3).requires_grad_()
    s = (torch.rand(16, 1) + 0.5).requires_grad_()
    gy = torch.randn(2, 16, 30) * 2.0**16
    plain = kernels.focused_kernel(x, s, 3.0, dim=-2)
    expected = _grads(plain, (x, s), gy)
    with torch.autocast("cpu", dtype=dtype):
        y = kernels.focused_kernel(x, s, 3.0, dim=-2)
        grads = _grads(y, (x, s), gy)
        narrow = kernels.focused_kernel(x.detach().to(dtype), s.detach().to(dtype), 3.0, dim=-2)
    assert y.dtype == torch.float32 and narrow.dtype == dtype
    torch.testing.assert_close(y, plain)
    for ours, reference in zip(grads, expected):
        assert torch.isfinite(ours).all()
        torch.testing.assert_close(ours, reference)
    _assert_close(narrow, plain, torch.bfloat16)  # computed wide, rounded once
