"""The YOLO blocks inside real ultralytics models built from the shipped YAMLs."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import fla
import fla.yolo as Y
from fla import FocusedLinearAttention
from ultralytics import YOLO
from ultralytics.nn.modules import C2f
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.torch_utils import get_flops

CASES = [(v, s) for v in Y.DEFAULT_VARIANTS for s in "ns"]  # the other variants: test_yolo_variants.py


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    return {case: YOLO(Y.model_yaml(*case)) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
@pytest.mark.parametrize("hw", [(640, 640), (384, 640)], ids=["640x640", "640x384"])
def test_builds_runs_forward_and_backward(models, case, hw):
    net = models[case].model
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    attn = [m for m in net.modules() if isinstance(m, FocusedLinearAttention)]
    with torch.no_grad():  # the branches start as no-ops (zero output projection): move off zero, as one step would
        for m in attn:
            m.proj.weight.normal_(0, 0.02)
    out = net(torch.rand(1, 3, *hw))  # train mode: {"boxes", "scores", "feats"}
    assert [f.shape[-2:] for f in out["feats"]] == [(hw[0] // s, hw[1] // s) for s in (8, 16, 32)]
    (out["boxes"].square().mean() + out["scores"].square().mean()).backward()
    assert bool(attn) == (case[0] != "base")
    for m in attn:
        for name, p in m.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name} got no gradient"


def _layers(model, cls):
    """{index: layer} of a YOLO object's or DetectionModel's layers of type cls."""
    net = getattr(model, "model", model)
    layers = net.model if hasattr(net, "model") else net
    return {i: m for i, m in enumerate(layers) if isinstance(m, cls)}


@pytest.mark.parametrize("scale", "ns")
def test_c2f_fla_gets_c2f_channel_inference_and_scaling(models, scale):
    base, ours = models[("base", scale)], models[("c2f_fla", scale)]
    stock = _layers(base, C2f)
    fla_layers = _layers(ours, Y.C2f_FLA)
    assert sorted(fla_layers) == [6, 8]
    for i, block in fla_layers.items():
        ref = stock[i]
        assert type(ref) is C2f and type(block) is Y.C2f_FLA
        assert (block.cv1.conv.in_channels, block.cv2.conv.out_channels, len(block.m), block.c) == (
            ref.cv1.conv.in_channels,
            ref.cv2.conv.out_channels,
            len(ref.m),
            ref.c,
        )
        assert all(b.add for b in block.m)  # [c2, True]: the shortcut survives the swap
        assert block.type == "fla.yolo.C2f_FLA" and block.i == i


def test_neck_block_takes_channels_from_previous_layer(models):
    for scale in "ns":
        model = models[("neck_fla", scale)].model
        (i, block), = _layers(models[("neck_fla", scale)], Y.FLABlock).items()
        assert i == 10
        sppf_out = model.model[9].cv2.conv.out_channels
        assert block.attn.dim == sppf_out


def test_neck_block_refuses_other_inputs():
    import yaml

    d = yaml.safe_load(open(Y.CFG_DIR / "yolov8-neck-fla.yaml"))
    d["backbone"][-1][0] = 8  # FLABlock from layer 8 instead of the previous one
    d["scale"] = "n"
    with pytest.raises(ValueError, match="FLABlock takes the previous layer's output"):
        DetectionModel(d, verbose=False)


def _constructions(monkeypatch, classes) -> list[tuple[str, tuple]]:
    """(class name, positional args) of every object built of exactly one of ``classes``, in order."""
    calls = []
    for cls in classes:
        def init(self, *args, _real=cls.__init__, _cls=cls, **kwargs):
            if type(self) is _cls:
                calls.append((_cls.__name__, args))
            _real(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", init)
    return calls


@pytest.mark.parametrize("variant, scale", [("c2f_fla", "s"), ("yolo11:c3k2_fla", "m"), ("yolo26:fla", "l"), ("neck_fla", "n")])
def test_our_blocks_get_the_arguments_ultralytics_gives_their_stand_ins(monkeypatch, variant, scale):
    """Each FLA layer is built once, from the arguments parse_model computes for its stand-in from the YAML's
    args (channels inferred, depth and width scaled, C3k2's c3k forced at m/l/x): the same YAML with the stand-ins
    named instead gives them those same arguments. No stand-in is built for our layers."""
    import yaml

    from ultralytics.nn.modules import AIFI, C2PSA, C3k2

    ours = _constructions(monkeypatch, (Y.C2f_FLA, Y.C3k2_FLA, Y.C2PSA_FLA, Y.FLABlock))
    theirs = _constructions(monkeypatch, (C2f, C3k2, C2PSA, AIFI))
    DetectionModel(Y.model_yaml(variant, scale), nc=2, verbose=False)
    built_ours, stand_ins_built_with_ours = list(ours), len(theirs)

    d = yaml.safe_load(open(Y.CFG_DIR / Y.VARIANTS[variant]))
    layers = d["backbone"] + d["head"]
    is_ours = [layer[2] in Y.patches.STAND_INS for layer in layers]
    for layer in layers:
        layer[2] = Y.patches.STAND_INS.get(layer[2], layer[2])
    d["scale"] = scale
    theirs.clear()
    DetectionModel(d, nc=2, verbose=False)
    stand_in_layers = [mine for mine, layer in zip(is_ours, layers) if layer[2] in ("C2f", "C3k2", "C2PSA", "AIFI")]
    assert len(theirs) == len(stand_in_layers) and any(is_ours)
    assert [args for _, args in built_ours] == [args for (_, args), mine in zip(theirs, stand_in_layers) if mine]
    assert stand_ins_built_with_ours == stand_in_layers.count(False)  # none for our layers


def test_fla_flops_are_counted_on_the_model_device():
    """``fla models``' FLOP count runs its forward on the model's device (a GPU model got a CPU input); "meta" stands
    in for the GPU here."""
    import types

    from fla.yolo.table import attention_placements

    net = torch.nn.Module()  # layers named "model.<i>", as in a DetectionModel
    net.model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.Conv2d(8, 8, 3))
    net.forward = net.model.forward
    on_cpu = attention_placements(types.SimpleNamespace(model=net), 32)
    assert on_cpu[1] > 0
    assert attention_placements(types.SimpleNamespace(model=net.to("meta")), 32) == on_cpu


def test_yaml_keeps_our_names_for_rebuilds(models):
    """Model.train() rebuilds from model.yaml: our names must still be there."""
    yaml = models[("c2f_fla", "n")].model.yaml
    names = [layer[2] for layer in yaml["backbone"] + yaml["head"]]
    assert names.count("C2f_FLA") == 2
    assert len(_layers(DetectionModel(yaml, verbose=False), Y.C2f_FLA)) == 2


def test_register_is_idempotent():
    from ultralytics.nn import tasks

    before = tasks.parse_model
    Y.register()
    fla.register()
    assert tasks.parse_model is before
    assert tasks.parse_model.__wrapped__.__module__ == "ultralytics.nn.tasks"


@pytest.mark.parametrize("shortcut", [True, False])
def test_bottleneck_uses_attention_with_and_without_shortcut(shortcut):
    torch.manual_seed(0)
    b = Y.Bottleneck_FLA(16, 16, shortcut=shortcut, e=1.0).eval()
    calls = []
    b.attn.register_forward_hook(lambda *a: calls.append(1))
    x = torch.randn(1, 16, 10, 7)
    with torch.no_grad():
        y = b(x)  # the branch starts as a no-op (fla_branch): zero output projection
        b.attn.proj.weight.normal_(0, 0.1)
        y2 = b(x)
    assert calls == [1, 1]
    assert not torch.allclose(y, y2)  # the attention branch reaches the output
    with torch.no_grad():
        plain = b.cv2(b.cv1(x))
        expected = plain + b.attn(plain)
    torch.testing.assert_close(y2, x + expected if shortcut else expected)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[1]}")
def test_summary_agrees_with_ultralytics(models, case):
    model = models[case]
    ours = Y.model_summary(model, 640)
    assert ours["params"] == sum(p.numel() for p in model.model.parameters())
    assert ours["gflops"] == pytest.approx(get_flops(model.model, 640), rel=1e-9)
    if case[0] != "base":
        base = Y.model_summary(models[("base", case[1])], 640)
        assert ours["gflops"] > base["gflops"] and ours["attention_params"] > 0


def test_model_yaml_rejects_unknown():
    with pytest.raises(ValueError, match="variant must be one of"):
        Y.model_yaml("bogus")
    with pytest.raises(ValueError, match="scale must be one of"):
        Y.model_yaml("base", "q")


@pytest.mark.slow
def test_checkpoint_round_trip_in_a_fresh_process(models, tmp_path):
    """Like best.pt: the pickled model names fla.yolo classes; a new process must load and run it."""
    from copy import deepcopy

    model = models[("c2f_fla", "n")]
    path = tmp_path / "fla_model.pt"
    torch.save({"model": deepcopy(model.model).half(), "train_args": {}, "date": None, "version": None}, path)
    x = torch.rand(1, 3, 128, 96)
    torch.save(x, tmp_path / "x.pt")
    with torch.no_grad():
        expected = model.model.eval().float()(x)[0]
    torch.save(expected, tmp_path / "expected.pt")
    code = textwrap.dedent(
        f"""
        import torch, fla
        from fla.yolo.patches import offline_ultralytics
        offline_ultralytics()
        from ultralytics import YOLO
        m = YOLO({str(path)!r})
        kinds = sorted({{type(x).__name__ for x in m.model.modules()}} & {{"C2f_FLA", "Bottleneck_FLA", "FocusedLinearAttention"}})
        print(kinds)
        net = m.model.float().eval()
        y = net(torch.load({str(tmp_path / 'x.pt')!r}))[0]
        print("max_abs_diff", (y - torch.load({str(tmp_path / 'expected.pt')!r})).abs().max().item())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "['Bottleneck_FLA', 'C2f_FLA', 'FocusedLinearAttention']" in out.stdout
    diff = float(out.stdout.split("max_abs_diff")[1])
    assert diff < 0.05  # saved in fp16, as ultralytics does
