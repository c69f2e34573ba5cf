"""The attention modules against explicit dense references (fla.reference), and every defect of the blog post's code as a regression test."""
from __future__ import annotations

import math

import pytest
import torch

import fla
from fla import FocusedLinearAttention, LinearAttention, SoftmaxAttention, focus
from fla import functional as Fn
from fla.reference import attention_matrix, dense_reference

SIZES = [(1, 1), (7, 5), (16, 25), (20, 32), (40, 40)]


@pytest.mark.parametrize("hw", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("order", ["kv", "qk"])
@pytest.mark.parametrize("sr_ratio", [1, 2])
def test_fla_equals_dense_reference(hw, order, sr_ratio):
    if sr_ratio > min(hw):
        pytest.skip("map smaller than sr_ratio")
    torch.manual_seed(0)
    m = FocusedLinearAttention(32, num_heads=4, order=order, sr_ratio=sr_ratio)
    x = torch.randn(2, 32, *hw)
    with torch.no_grad():
        torch.testing.assert_close(m(x), dense_reference(m, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", ["relu", "elu"])
@pytest.mark.parametrize("order", ["kv", "qk"])
@pytest.mark.parametrize("kernel_size", [0, 3])
def test_linear_attention_equals_dense_reference(kernel, order, kernel_size):
    torch.manual_seed(0)
    m = LinearAttention(16, num_heads=2, kernel=kernel, order=order, kernel_size=kernel_size)
    x = torch.randn(2, 16, 6, 9)
    with torch.no_grad():
        torch.testing.assert_close(m(x), dense_reference(m, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=0), dict(pos_encoding=False), dict(kernel_size=3, pos_size=(3, 5)),
                                    dict(kernel_size=0, sr_ratio=2, pos_encoding=False)], ids=str)
def test_fla_parts_switch_independently(kwargs):
    """Each optional part (DWC, positional encoding, key reduction) on and off equals the definition."""
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2, **kwargs)
    with torch.no_grad():
        if m.pos is not None:
            m.pos.mul_(50)  # large enough to matter, and resized from its own grid to 6x9
        x = torch.randn(2, 16, 6, 9)
        torch.testing.assert_close(m(x), dense_reference(m, x), atol=1e-5, rtol=1e-5)
    assert (m.dwc is None) == (kwargs.get("kernel_size", 5) == 0)
    assert (m.pos is None) == (not kwargs.get("pos_encoding", True))


def test_dense_reference_can_fail():
    """The reference is independent of the module: change a weight behind the reference's back."""
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2)
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        expected = dense_reference(m, x)
        m.scale.copy_(torch.linspace(-2, 2, 16))  # per channel: a uniform scale would cancel in f_p
        assert not torch.allclose(m(x), expected, atol=1e-4)


def _authors_forward(m, x):
    """The authors' FocusedLinearAttention forward (FLatten Transformer, PVT version, sr_ratio = 1) transcribed
    line by line onto our module's weights: their positional encoding is our pos on its own grid, their
    normaliser z = 1 / (q · Σk + 1e-6), x**p unfloored."""
    b, c, h, w = x.shape
    t = x.flatten(2).transpose(1, 2)
    q, k, v = (layer(t) for layer in (m.to_q, m.to_k, m.to_v))
    k = k + m.pos.flatten(2).transpose(1, 2)
    scale = torch.nn.functional.softplus(m.scale)
    q, k = (torch.relu(q) + 1e-6) / scale, (torch.relu(k) + 1e-6) / scale
    q_norm, k_norm = q.norm(dim=-1, keepdim=True), k.norm(dim=-1, keepdim=True)
    q, k = q**m.focusing_factor, k**m.focusing_factor
    q, k = q / q.norm(dim=-1, keepdim=True) * q_norm, k / k.norm(dim=-1, keepdim=True) * k_norm
    q, k, v = (u.unflatten(-1, (m.num_heads, -1)).transpose(1, 2).flatten(0, 1) for u in (q, k, v))  # (b h) n c
    z = 1 / (torch.einsum("b i c, b c -> b i", q, k.sum(dim=1)) + 1e-6)
    kv = torch.einsum("b j c, b j d -> b c d", k, v)
    out = torch.einsum("b i c, b c d, b i -> b i d", q, kv, z)
    out = out + m.dwc(v.transpose(1, 2).reshape(-1, m.head_dim, h, w)).flatten(2).transpose(1, 2)
    out = out.unflatten(0, (b, m.num_heads)).transpose(1, 2).flatten(2)  # b n (h c)
    return m.proj(out).transpose(1, 2).reshape(b, c, h, w)


def test_guard_authors_reproduces_the_authors_normaliser():
    """With guard="authors" the module computes the authors' forward to rounding in float64; with fla's floor on
    x**p (the default) it differs visibly at 8 heads of 8 channels, p = 3."""
    torch.manual_seed(0)
    ours = FocusedLinearAttention(64, num_heads=8, pos_size=6).double()
    theirs = FocusedLinearAttention(64, num_heads=8, pos_size=6, guard="authors").double()
    with torch.no_grad():
        ours.scale.normal_()
        theirs.load_state_dict(ours.state_dict())
        x = torch.randn(2, 64, 6, 6, dtype=torch.float64)
        expected = _authors_forward(ours, x)
        torch.testing.assert_close(theirs(x), expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(dense_reference(theirs, x), expected, rtol=1e-12, atol=1e-12)
        assert (ours(x) - expected).norm() / expected.norm() > 1e-3


@pytest.mark.parametrize("guard", ["floor", "authors"])
def test_focus_over_heads_equals_dense_reference(guard):
    """f_p over each head's d channels: the module (fast path and equations) against the reference, and not the
    per-token focusing it replaces."""
    torch.manual_seed(0)
    m = FocusedLinearAttention(32, num_heads=4, focus_over="heads", guard=guard)
    x = torch.randn(2, 32, 7, 6)
    with torch.no_grad():
        m.scale.normal_()
        expected = dense_reference(m, x)
        torch.testing.assert_close(m(x), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(m.attention_matrix(x).double(), attention_matrix(m, x), atol=1e-5, rtol=1e-5)
        m.focus_over = "channels"
        assert not torch.allclose(m(x), expected, atol=1e-4)


@pytest.mark.parametrize("sr_ratio", [1, 2])
def test_guard_authors_equals_dense_reference(sr_ratio):
    torch.manual_seed(0)
    m = FocusedLinearAttention(32, num_heads=4, sr_ratio=sr_ratio, guard="authors")
    x = torch.randn(2, 32, 8, 6)
    with torch.no_grad():
        torch.testing.assert_close(m(x), dense_reference(m, x), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(m.attention_matrix(x).double(), attention_matrix(m, x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="guard"):
        FocusedLinearAttention(32, guard="eps")


def test_softmax_sdpa_equals_explicit_softmax_matrix():
    torch.manual_seed(0)
    m = SoftmaxAttention(16, num_heads=4)
    x = torch.randn(2, 16, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(m(x), dense_reference(m, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("make", [lambda: SoftmaxAttention(16, num_heads=4), lambda: LinearAttention(16, num_heads=4),
                                  lambda: LinearAttention(16, num_heads=4, kernel_size=3),
                                  lambda: FocusedLinearAttention(16, num_heads=4),
                                  lambda: FocusedLinearAttention(16, num_heads=4, kernel_size=0)],
                         ids=["softmax", "linear", "linear+dwc", "fla", "linear+focus"])
def test_same_interface_and_row_stochastic_weights(make):
    m = make()
    x = torch.randn(2, 16, 6, 5)
    assert m(x).shape == x.shape
    a = m.attention_matrix(x)
    assert a.shape == (2, 4, 30, 30) and a.dtype == torch.float32
    assert (a >= 0).all()
    torch.testing.assert_close(a.sum(-1), torch.ones(2, 4, 30))
    torch.testing.assert_close(a.double(), attention_matrix(m, x), atol=1e-5, rtol=1e-4)
    if getattr(m, "dwc", None) is not None:
        assert m.dwc_matrix(6, 5).shape == (4, 30, 30)
    elif hasattr(m, "dwc_matrix"):
        with pytest.raises(ValueError, match="no DWC"):
            m.dwc_matrix(6, 5)


def test_orders_agree_and_auto_takes_the_cheaper():
    torch.manual_seed(0)
    q, k, v = torch.rand(2, 3, 50, 8), torch.rand(2, 3, 40, 8), torch.randn(2, 3, 40, 8)
    torch.testing.assert_close(Fn.linear_attention(q, k, v, "kv"), Fn.linear_attention(q, k, v, "qk"))
    explicit = Fn.normalise_rows(q @ k.transpose(-2, -1)) @ v  # Eq.: row-normalised phi(Q)phi(K)^T times V
    torch.testing.assert_close(Fn.linear_attention(q, k, v), explicit)
    assert Fn.kv_order_is_cheaper(100, 100, 16, 16) and not Fn.kv_order_is_cheaper(8, 8, 16, 16)
    with pytest.raises(ValueError, match="order"):
        Fn.linear_attention(q, k, v, "vk")


def test_gradcheck_float64():
    torch.manual_seed(0)
    m = FocusedLinearAttention(8, num_heads=2, kernel_size=3, pos_size=2).double()
    x = torch.randn(1, 8, 3, 4, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(m, (x,), eps=1e-6, atol=1e-5)


def _symmetric_dwc(m):
    with torch.no_grad():
        w = m.dwc.weight
        w.copy_((w + w.flip(-1)) / 2)


@pytest.mark.parametrize("hw", [(6, 9), (16, 25)])
def test_flip_along_w_commutes_with_symmetric_dwc_and_no_pos(hw):
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2, pos_encoding=False)
    _symmetric_dwc(m)
    x = torch.randn(2, 16, *hw)
    with torch.no_grad():
        torch.testing.assert_close(m(x.flip(-1)), m(x).flip(-1), atol=1e-5, rtol=1e-5)


def test_flip_test_can_fail_with_an_asymmetric_kernel():
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2, pos_encoding=False)
    x = torch.randn(2, 16, 6, 9)
    with torch.no_grad():
        assert not torch.allclose(m(x.flip(-1)), m(x).flip(-1), atol=1e-4)


# --- the blog post's defect 1: any H×W ----------------------------------------------------------


def test_non_square_maps_keep_token_positions():
    """The blog post's code reshaped with sqrt(N): 20×32 crashed and 16×25 silently scrambled tokens.

    With V = x and DWC = identity, one hot token at (3, 17) must come out strongest at
    (3, 17): the DWC term returns it in place, the attention term spreads it thinly.
    """
    m = FocusedLinearAttention(16, num_heads=2, pos_encoding=False)
    x = torch.zeros(1, 16, 16, 25)
    x[0, :, 3, 17] = 1.0
    with torch.no_grad():
        m.to_v.weight.copy_(torch.eye(16))
        m.to_v.bias.zero_()
        m.proj.weight.copy_(torch.eye(16))
        m.proj.bias.zero_()
        m.dwc.weight.zero_()
        m.dwc.weight[:, 0, 2, 2] = 1.0
        y = m(x).abs().sum(1)[0]
    assert y.shape == (16, 25)
    assert divmod(y.argmax().item(), 25) == (3, 17)


# --- the blog post's defect 2: positional encoding ----------------------------------------------


def test_positional_encoding_is_a_learned_parameter():
    m = FocusedLinearAttention(16, num_heads=2, pos_size=(4, 6))
    assert "pos" in dict(m.named_parameters())
    assert m.pos.shape == (1, 16, 4, 6)
    m(torch.randn(2, 16, 4, 6)).square().mean().backward()
    assert m.pos.grad is not None and m.pos.grad.abs().sum() > 0
    assert "pos" in m.state_dict()


def test_positional_encoding_changes_the_output_and_resizes_in_2d():
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2, pos_size=4)
    x = torch.randn(1, 16, 8, 12)  # not the size it was built for: resized over the 2-D grid
    with torch.no_grad():
        y = m(x)
        m.pos.mul_(50)
        assert not torch.allclose(m(x), y, atol=1e-4)
        torch.testing.assert_close(m(x), dense_reference(m, x), atol=1e-5, rtol=1e-5)


def test_pos_encoding_off():
    m = FocusedLinearAttention(16, num_heads=2, pos_encoding=False)
    assert m.pos is None and "pos" not in dict(m.named_parameters())


# --- the blog post's defect 3: dtypes -----------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("p", [1.0, 3.0, 10.0])
@pytest.mark.parametrize("amplitude", [1.0, 30.0, 100.0])
def test_half_precision_finite(dtype, p, amplitude):
    torch.manual_seed(0)
    m = FocusedLinearAttention(32, num_heads=4, focusing_factor=p).to(dtype)
    x = (torch.randn(2, 32, 9, 7) * amplitude).clamp(-100, 100).to(dtype).requires_grad_()
    y = m(x)
    assert y.dtype == dtype and torch.isfinite(y).all()
    y.float().square().mean().backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(t.grad).all() for t in m.parameters())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_finite_and_close_to_fp32(dtype):
    torch.manual_seed(0)
    m = FocusedLinearAttention(32, num_heads=4, focusing_factor=10.0)
    x = (torch.randn(2, 32, 8, 8) * 100).requires_grad_()
    with torch.autocast("cpu", dtype=dtype):
        y = m(x)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()
    y.square().mean().backward()
    assert torch.isfinite(x.grad).all()
    with torch.no_grad():
        ref = m(x)
    assert (y - ref).abs().max() / ref.abs().max() < 0.05


# --- the GPU path: deterministic ops, memory format ---------------------------------------------

#: aten ops behind the entries of torch.use_deterministic_algorithms' documentation that are nondeterministic on
#: CUDA: those that raise under mode=True (bilinear & co. interpolate's backward, adaptive/avg/fractional pool
#: backward, max_unpool, reflection pad's backward, NLL/CTC loss, embedding_bag, put_, histc, bincount, median,
#: grid_sample's backward, scatter_reduce) and those that are only deterministic under a slower fallback
#: (scatter_add, index_add, index_put, index_copy, put, gather's and index_select's backward, cumsum,
#: repeat_interleave's backward, embedding's backward, replication pad's backward, max_pool3d's backward).
CUDA_NONDETERMINISTIC = {
    "upsample_linear1d_backward", "upsample_bilinear2d_backward", "upsample_bicubic2d_backward",
    "upsample_trilinear3d_backward", "_upsample_bilinear2d_aa_backward", "_upsample_bicubic2d_aa_backward",
    "avg_pool3d_backward", "_adaptive_avg_pool2d_backward", "_adaptive_avg_pool3d_backward",
    "adaptive_max_pool2d_backward", "fractional_max_pool2d_backward", "fractional_max_pool3d_backward",
    "max_unpool2d", "max_unpool3d", "reflection_pad1d_backward", "reflection_pad2d_backward",
    "reflection_pad3d_backward", "replication_pad1d_backward", "replication_pad2d_backward",
    "replication_pad3d_backward", "nll_loss_forward", "nll_loss2d_forward", "_ctc_loss_backward",
    "_embedding_bag_backward", "_embedding_bag_dense_backward", "embedding_dense_backward", "put", "histc",
    "bincount", "median", "grid_sampler_2d_backward", "grid_sampler_3d_backward", "scatter_reduce", "scatter_add",
    "scatter", "index_add", "index_put", "_index_put_impl", "index_copy", "gather_backward", "index_select_backward",
    "cumsum", "repeat_interleave", "max_pool3d_with_indices_backward",
}


def _ops_run(fn) -> set[str]:
    """The aten ops (overload packets, in-place suffix dropped) that ``fn()`` dispatches, backward included."""
    from torch.utils._python_dispatch import TorchDispatchMode

    seen = set()

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.add(func.overloadpacket.__name__.rstrip("_") or func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with Record():
        fn()
    return seen


@pytest.mark.parametrize("sr_ratio", [1, 2])
def test_forward_backward_runs_no_op_nondeterministic_on_cuda(sr_ratio):
    """A seeded training run on a GPU repeats only if no op of CUDA's nondeterministic list runs: the positional
    encoding (resized, pos_size 4 on a 6×10 grid) and the reduced grid's DWC are resized by matmuls."""
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2, pos_size=4, sr_ratio=sr_ratio)
    x = torch.randn(2, 16, 6, 10, requires_grad=True)
    ops = _ops_run(lambda: m(x).square().sum().backward())
    assert {"mm", "bmm", "convolution_backward"} & ops  # the recorder saw the work
    assert not ops & CUDA_NONDETERMINISTIC, sorted(ops & CUDA_NONDETERMINISTIC)


def test_nondeterministic_op_check_can_fail():
    x = torch.randn(1, 2, 4, 4, requires_grad=True)
    resize = lambda: torch.nn.functional.interpolate(x, size=(7, 7), mode="bilinear").sum().backward()
    assert "upsample_bilinear2d_backward" in _ops_run(resize)


@pytest.mark.parametrize("make", [lambda: FocusedLinearAttention(16, num_heads=2, sr_ratio=2), lambda: SoftmaxAttention(16, num_heads=2)])
def test_output_has_the_input_memory_format(make):
    """A channels_last network gets channels_last back (no conversion in the next conv), NCHW gets NCHW."""
    m = make()
    x = torch.randn(2, 16, 6, 10)
    y_last = m(x.contiguous(memory_format=torch.channels_last))
    assert y_last.is_contiguous(memory_format=torch.channels_last) and not y_last.is_contiguous()
    assert m(x).is_contiguous()
    torch.testing.assert_close(y_last, m(x))


# --- the blog post's defect 4: sr_ratio > 1 -----------------------------------------------------


def test_sr_ratio_reduces_keys_in_2d():
    m = FocusedLinearAttention(16, num_heads=2, sr_ratio=2)
    x = torch.randn(1, 16, 10, 14)
    assert m.attention_matrix(x).shape == (1, 2, 140, 35)
    assert m.dwc_matrix(10, 14).shape == (8, 140, 35)
    assert m(x).shape == x.shape
    with pytest.raises(ValueError, match="smaller than sr_ratio=4"):
        FocusedLinearAttention(16, num_heads=2, sr_ratio=4)(torch.randn(1, 16, 3, 8))


def test_sr_ratio_bf16():
    m = FocusedLinearAttention(16, num_heads=2, sr_ratio=2).to(torch.bfloat16)
    y = m(torch.randn(1, 16, 9, 13, dtype=torch.bfloat16))
    assert y.shape == (1, 16, 9, 13) and torch.isfinite(y).all()


# --- the blog post's defect 5: bad arguments ----------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(dim=30, num_heads=8), "dim=30 must be a positive multiple of num_heads=8"),
        (dict(dim=32, focusing_factor=0), "p=0"),
        (dict(dim=32, focusing_factor=-1.5), "p=-1.5"),
        (dict(dim=32, kernel_size=4), "kernel_size=4"),
        (dict(dim=32, kernel_size=-1), "kernel_size=-1"),
        (dict(dim=32, sr_ratio=0), "sr_ratio=0"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FocusedLinearAttention(**kwargs)


def test_bad_inputs():
    m = FocusedLinearAttention(32)
    with pytest.raises(ValueError, match=r"4-D feature map \(B, C, H, W\), got shape \(2, 100, 32\)"):
        m(torch.randn(2, 100, 32))
    with pytest.raises(ValueError, match="expected C=32 channels, got C=16"):
        m(torch.randn(2, 16, 8, 8))
    with pytest.raises(ValueError, match="kernel must be 'relu' or 'elu'"):
        LinearAttention(16, kernel="tanh")
    with pytest.raises(ValueError, match="focusing applies to the ReLU kernel"):
        LinearAttention(16, kernel="elu", focusing_factor=3.0)


# --- the focusing function -------------------------------------------------------------------


def test_focus_keeps_the_norm_and_sharpens():
    x = torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 4.0]])
    for p in (1.0, 2.0, 3.0, 7.5):
        torch.testing.assert_close(focus(x, p).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(focus(x, 1.0), x)
    share = [(focus(x, p)[0, 2] / focus(x, p)[0].sum()).item() for p in (1, 2, 4, 8)]
    assert share == sorted(share) and share[-1] > share[0]
    # Eq. 6 literally, where it does not overflow
    torch.testing.assert_close(focus(x, 3.0), x.norm(dim=-1, keepdim=True) * x**3 / (x**3).norm(dim=-1, keepdim=True))


def test_focus_similar_vectors_become_more_similar_and_dissimilar_less():
    """The paper's Prop. 1: focusing pulls each vector towards its nearest axis."""
    a, b = torch.tensor([1.0, 0.2, 0.1]), torch.tensor([0.9, 0.3, 0.1])
    c = torch.tensor([0.2, 0.1, 1.0])
    cos = torch.nn.functional.cosine_similarity
    assert cos(focus(a, 3), focus(b, 3), dim=0) > cos(a, b, dim=0) - 1e-6
    assert cos(focus(a, 3), focus(c, 3), dim=0) < cos(a, c, dim=0)


def test_focus_large_values_stay_finite():
    x = torch.rand(4, 64) * 1e4
    y = focus(x, 10.0)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="p=0"):
        focus(x, 0)


# --- metrics ---------------------------------------------------------------------------------


def test_row_entropy_and_rank():
    uniform = torch.full((3, 5), 0.2)
    torch.testing.assert_close(Fn.row_entropy(uniform), torch.full((3,), math.log(5)))
    assert Fn.row_entropy(torch.eye(4)).abs().max() < 1e-6
    low = torch.randn(20, 3) @ torch.randn(3, 20)
    assert Fn.numerical_rank(low).item() == 3
    assert Fn.numerical_rank(torch.eye(20)).item() == 20


def test_dwc_matrix_is_the_conv():
    torch.manual_seed(0)
    w = torch.randn(3, 1, 5, 5)
    x = torch.randn(3, 7, 6)
    conv = torch.nn.functional.conv2d(x[None], w, padding=2, groups=3)[0].flatten(1)
    torch.testing.assert_close(torch.einsum("cnm,cm->cn", Fn.dwc_matrix(w, 7, 6), x.flatten(1)), conv)


def test_linear_attention_is_low_rank_and_dwc_restores_rank():
    torch.manual_seed(0)
    m = FocusedLinearAttention(32, num_heads=4)  # head_dim 8
    x = torch.randn(1, 32, 8, 8)  # N = 64
    with torch.no_grad():
        a = m.attention_matrix(x)[0, 0]
        assert Fn.numerical_rank(a).item() <= 8
        assert Fn.numerical_rank(a + m.dwc_matrix(8, 8)[0]).item() > 8


# --- counting --------------------------------------------------------------------------------


def test_flop_counters_agree_with_the_formula():
    import thop

    from fla.flops import count_flops, formula_macs

    m = FocusedLinearAttention(32, num_heads=4, order="kv")
    x = torch.randn(1, 32, 10, 12)
    n, c = 120, 32
    projections = n * c * c * 4  # q, k, v, out
    core = 4 * ((n + n) * 8 * 8 + n * 8) + 4 * 8 * n * 25  # per head K^T V, Q(K^T V), Q·ΣK; DWC 5×5 per value
    assert formula_macs(m, x) == core + projections
    assert count_flops(m, x) == 2 * (core + projections)
    macs, _ = thop.profile(m, inputs=(x,), verbose=False)
    assert macs == core + projections


@pytest.mark.parametrize("make", [lambda: FocusedLinearAttention(32, num_heads=4, sr_ratio=2),
                                  lambda: FocusedLinearAttention(32, num_heads=4, sr_ratio=3, kernel_size=3),
                                  lambda: LinearAttention(32, num_heads=4, kernel_size=5, sr_ratio=2),
                                  lambda: SoftmaxAttention(32, num_heads=4)], ids=["fla-sr2", "fla-sr3-k3", "linear-sr2", "softmax"])
@pytest.mark.parametrize("batch", [1, 2])
def test_formula_equals_flop_counter_mode(make, batch):
    """One formula for every module, reduced key grid included: the DWC runs on V's grid (M tokens), the spatial
    reduction's conv costs M·C²·r²; counted by torch's FlopCounterMode on the module's own forward."""
    from fla.flops import count_flops, formula_macs

    m = make()
    x = torch.randn(batch, 32, 12, 18)  # N = 216 > head_dim: the linear order
    assert count_flops(m, x) == 2 * formula_macs(m, x)


def test_softmax_flops_are_quadratic():
    from fla.flops import count_flops

    m = SoftmaxAttention(32, num_heads=4)
    small, large = count_flops(m, torch.randn(1, 32, 8, 8)), count_flops(m, torch.randn(1, 32, 16, 16))
    proj = lambda n: 2 * 4 * n * 32 * 32  # noqa: E731
    assert (large - proj(256)) / (small - proj(64)) == 16  # 4x tokens -> 16x token mixing


# --- compile and identity --------------------------------------------------------------------


@pytest.mark.slow
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2)
    x = torch.randn(1, 16, 6, 10)
    compiled = torch.compile(m)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), m(x), atol=1e-5, rtol=1e-5)


def test_fla_is_this_project_not_flash_linear_attention():
    from pathlib import Path

    assert Path(fla.__file__).resolve().parent == Path(__file__).resolve().parents[1] / "fla"


# --- export ----------------------------------------------------------------------------------


@pytest.mark.parametrize("sr_ratio", [1, 2])
def test_onnx_export_runs_the_reference_path(tmp_path, sr_ratio):
    """The fast paths are autograd Functions without an ONNX form; under export the module takes the equations."""
    pytest.importorskip("onnx", reason="onnx is not installed (pip install -e '.[test]' installs it)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (pip install -e '.[test]' installs it)")
    torch.manual_seed(0)
    m = FocusedLinearAttention(16, num_heads=2, pos_size=4, sr_ratio=sr_ratio).eval()
    x = torch.randn(1, 16, 6, 8)
    path = tmp_path / "fla.onnx"
    axes = {0: "batch", 2: "height", 3: "width"}
    torch.onnx.export(m, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=False,
                      dynamic_axes={"x": axes, "y": axes})
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for x in (x, torch.randn(2, 16, 10, 4), torch.randn(1, 16, 4, 4)):  # traced size; others (dynamic axes; pos unresized at 4x4)
        (y,) = session.run(None, {"x": x.numpy()})
        with torch.no_grad():
            torch.testing.assert_close(torch.from_numpy(y), m(x), atol=1e-5, rtol=1e-4)
