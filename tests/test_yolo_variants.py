"""The YOLO11 / YOLO12 / YOLO26 variants, the P3 placement and the ``fla models`` table (issue 13, items 1-4)."""
from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

import fla.yolo as Y
from fla import FocusedLinearAttention
from ultralytics import YOLO
from ultralytics.nn import tasks
from ultralytics.nn.modules import C2f, C2PSA, C3k2
from ultralytics.nn.modules.block import Attention, C3k
from ultralytics.utils import ROOT
from ultralytics.utils.torch_utils import get_flops

# FLA variant -> (its stock model, {layer index: (stock class, our class)})
PAIRS = {
    "c2f_fla": ("base", {6: (C2f, Y.C2f_FLA), 8: (C2f, Y.C2f_FLA)}),
    "c2f_fla_p3": ("base", {4: (C2f, Y.C2f_FLA)}),
    "yolo11:c3k2_fla": ("yolo11:base", {6: (C3k2, Y.C3k2_FLA), 8: (C3k2, Y.C3k2_FLA)}),
    "yolo11:c3k2_fla_p3": ("yolo11:base", {4: (C3k2, Y.C3k2_FLA)}),
    "yolo26:fla": ("yolo26:base", {10: (C2PSA, Y.C2PSA_FLA), 22: (C3k2, Y.C3k2_FLA)}),
}
NEW = ["c2f_fla_p3", "yolo11:base", "yolo11:c3k2_fla", "yolo11:c3k2_fla_p3", "yolo12:base", "yolo26:base", "yolo26:fla"]


def _meta_build(variant: str, scale: str) -> nn.Sequential:
    """parse_model on the meta device: every channel count and scaling rule, no weights to initialise."""
    d = tasks.yaml_model_load(Y.model_yaml(variant, scale))
    assert d["scale"] == scale  # ultralytics reads the scale from the name model_yaml gives
    with torch.device("meta"):
        net, _ = tasks.parse_model(d, ch=3, verbose=False)
    return net


@pytest.mark.parametrize("family,ultralytics_yaml", [("yolo11", "11/yolo11.yaml"), ("yolo12", "12/yolo12.yaml"),
                                                     ("yolo26", "26/yolo26.yaml")])
def test_native_baselines_are_ultralytics_own_yaml(family, ultralytics_yaml):
    ours = yaml.safe_load((Y.CFG_DIR / Y.VARIANTS[f"{family}:base"]).read_text())
    theirs = yaml.safe_load((ROOT / "cfg" / "models" / ultralytics_yaml).read_text())
    assert ours == theirs


@pytest.mark.parametrize("scale", "nsmlx")
@pytest.mark.parametrize("variant", list(PAIRS))
def test_fla_blocks_get_the_stock_channels_and_scaling(variant, scale):
    """Layer by layer against the stock model at every scale: same layer types outside the FLA layers;
    in them, every stock tensor (C3k2's forced c3k at m/l/x included) has a same-named, same-shaped
    tensor in ours, and the only extra tensors are attention ones."""
    base, layers = PAIRS[variant]
    stock, ours = _meta_build(base, scale), _meta_build(variant, scale)
    assert len(stock) == len(ours)
    for i, (a, b) in enumerate(zip(stock, ours)):
        if i not in layers:
            assert type(a) is type(b) and {k: v.shape for k, v in a.state_dict().items()} == {
                k: v.shape for k, v in b.state_dict().items()}, f"layer {i}"
            continue
        stock_cls, our_cls = layers[i]
        assert type(a) is stock_cls and type(b) is our_cls, f"layer {i}"
        assert b.type == f"fla.yolo.{our_cls.__name__}" and (b.i, b.f) == (a.i, a.f)
        sa, sb = a.state_dict(), b.state_dict()
        prefixes = tuple(f"{n}." for n, m in a.named_modules() if isinstance(m, Attention))  # PSABlock's softmax
        softmax = {k for k in sa if k.startswith(prefixes)}
        for k in sa.keys() - softmax:
            assert k in sb and sb[k].shape == sa[k].shape, f"layer {i}: {k}"
        assert all(".attn." in k for k in sb.keys() - sa.keys()), f"layer {i}: {sorted(sb.keys() - sa.keys())[:5]}"
        assert any(".attn." in k for k in sb.keys() - sa.keys())
        if stock_cls is C3k2 and scale in "mlx" and not isinstance(a.m[0], nn.Sequential):
            assert isinstance(b.m[0], C3k) and isinstance(b.m[0].m[0], Y.Bottleneck_FLA)  # forced c3k survives


def test_yolo26_fla_replaces_every_softmax_attention():
    stock, ours = _meta_build("yolo26:base", "n"), _meta_build("yolo26:fla", "n")
    n_softmax = sum(isinstance(m, Attention) for m in stock.modules())
    assert n_softmax == 2
    assert sum(isinstance(m, Attention) for m in ours.modules()) == 0
    fla = [m for m in ours.modules() if isinstance(m, FocusedLinearAttention)]
    assert len(fla) == n_softmax
    psa = [m for m in ours.modules() if isinstance(m, Y.PSABlock_FLA)]
    assert len(psa) == 2 and all(p.attn in fla for p in psa)  # FFN and residuals of PSABlock kept


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {v: YOLO(Y.model_yaml(v, "n")) for v in NEW}


def _tensors(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    return [t for o in (out if isinstance(out, (list, tuple)) else []) for t in _tensors(o)]


@pytest.mark.parametrize("variant", NEW)
def test_new_variants_train_forward_and_backward_on_a_rectangle(models, variant):
    net = models[variant].model.train()
    attn = [m for m in net.modules() if isinstance(m, FocusedLinearAttention)]
    with torch.no_grad():  # the branches start as no-ops (zero output projection): move off zero, as one step would
        for m in attn:
            m.proj.weight.normal_(0, 0.02)
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    out = _tensors(net(torch.rand(1, 3, 256, 192)))
    assert out and all(torch.isfinite(t).all() for t in out)
    sum(t.float().square().mean() for t in out).backward()
    assert bool(attn) == (not variant.endswith(":base"))
    for m in attn:
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


@pytest.mark.parametrize("variant", NEW)
def test_summary_agrees_with_ultralytics(models, variant):
    ours = Y.model_summary(models[variant], 640)
    assert ours["params"] == sum(p.numel() for p in models[variant].model.parameters())
    assert ours["gflops"] == pytest.approx(get_flops(models[variant].model, 640), rel=1e-9)
    assert (ours["attention_params"] > 0) == (not variant.endswith(":base"))


def test_placements_measure_map_stride_and_costs(models):
    from fla.yolo.table import attention_placements

    rows, total = attention_placements(models["c2f_fla_p3"], 640)
    assert {(r["layer"], r["map"], r["stride"], r["tokens"]) for r in rows} == {(4, (80, 80), 8, 6400)}
    for r in rows:
        # FlopCounterMode's count of the module: at least its four projections, far below softmax at N = 6400
        assert r["projection_flops"] < r["flops"] < r["softmax_flops"] / 10
        assert r["projection_flops"] == 2 * 4 * 6400 * r["dim"] ** 2
    assert total / 1e9 == pytest.approx(Y.model_summary(models["c2f_fla_p3"], 640)["gflops"], rel=0.05)
    rows, _ = attention_placements(models["yolo12:base"], (640, 480))
    assert {(r["layer"], r["type"], r["map"], r["stride"]) for r in rows} == {
        (6, "AAttn", (40, 30), 16), (8, "AAttn", (20, 15), 32)}  # ultralytics' own attention is seen too
    assert all(r["flops"] > 0 for r in rows)


def test_models_command_table_without_latency(capsys):
    from fla.cli import main

    assert main(["models", "--variants", "c2f_fla_p3", "yolo11:base", "--no-latency"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| c2f_fla_p3") or line.startswith("| yolo11:base")]
    assert len(lines) == 2 and "torch ms" not in out
    assert lines[1].split("|")[2].strip() == "2,624,080"  # yolo11n's parameters, as ultralytics states them


def test_fused_gflops_fold_batchnorm_and_drop_yolo26s_training_branch(capsys):
    """What ``model.fuse()`` would print, without printing: for yolov8n BatchNorm folding alone (each conv's multiply-adds
    stay); YOLO26's end-to-end head also loses its one-to-many branch, which its unfused forward runs even in eval."""
    import copy

    from fla.yolo.table import measure_all
    from ultralytics import YOLO
    from ultralytics.nn.modules import Conv
    from ultralytics.utils.torch_utils import fuse_conv_and_bn, get_flops

    def batchnorm_folded(variant):  # the convolutions' BatchNorms folded by hand, nothing else changed
        net = copy.deepcopy(YOLO(Y.model_yaml(variant), verbose=False).model).eval()
        for m in net.modules():
            if isinstance(m, Conv) and hasattr(m, "bn"):
                m.conv, m.forward = fuse_conv_and_bn(m.conv, m.bn), m.forward_fuse
                del m.bn
        return get_flops(net, 640)

    v8, v26 = measure_all(["base", "yolo26:base"], progress=False, latency=False)
    assert "summary (fused)" not in capsys.readouterr().out
    assert v8["gflops_fused"] == pytest.approx(batchnorm_folded("base"), rel=1e-6)
    assert v8["gflops_fused"] < v8["gflops"]
    assert v26["gflops_fused"] < batchnorm_folded("yolo26:base") - 0.3  # the head's one-to-many branch, gone too


def test_models_command_rejects_bad_input(capsys):
    from fla.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["models", "--variants", "yolo99:x"])
    assert exit_.value.code == 2 and "invalid choice: 'yolo99:x'" in capsys.readouterr().err
    for args, message in ((["--runs", "0"], "argument --runs: must be at least 1, got 0"),
                          (["--imgsz", "100"], "argument --imgsz: must be a multiple of 32, got 100")):
        with pytest.raises(SystemExit) as exit_:  # one message per argument (tests/test_bad_input.py has the rest)
            main(["models", *args])
        assert exit_.value.code == 2
        assert capsys.readouterr().err.strip().splitlines() == [f"fla models: error: {message} (see fla models --help)"]


def test_train_accepts_the_new_variant_names():
    import argparse

    from fla.cli import train

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["--variants", "yolo11:c3k2_fla", "yolo12:base", "c2f_fla_p3", "base"])
    assert args.variants == ["yolo11:c3k2_fla", "yolo12:base", "c2f_fla_p3", "base"]
    assert parser.parse_args([]).variants == list(Y.DEFAULT_VARIANTS)


def test_markdown_table_shows_only_the_latency_columns_that_were_measured():
    from fla.yolo.table import markdown

    row = {"variant": "base", "scale": "n", "params": 1, "attention_params": 0, "gflops": 8.86, "attention_gflops": 0.0,
           "gflops_all": 8.86, "torch_ms": None, "ort_ms": None, "torch_min_ms": None, "ort_min_ms": None}
    header = lambda **ms: markdown([{**row, **ms}]).splitlines()[0]  # noqa: E731
    assert "torch ms" not in header() and "ORT" not in header()
    assert "torch ms" in header(torch_ms=150.0, torch_min_ms=140.0) and "ORT" not in header(torch_ms=150.0, torch_min_ms=140.0)
    assert "ORT ms" in header(torch_ms=150.0, torch_min_ms=140.0, ort_ms=100.0, ort_min_ms=90.0)
