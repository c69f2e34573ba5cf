"""ONNX export of every FLA variant through ultralytics (``YOLO(best.pt).export(format="onnx")``), and
ONNX Runtime's outputs against torch's on a real photo: a static export at 640×640, and a ``dynamic=True``
export run at a landscape letterbox (480×640).

The attention's fast paths are autograd Functions the exporter cannot trace; under export the modules
take their reference path (fla.attention), which this test exercises end to end.
"""
from __future__ import annotations

import copy

import pytest
import torch
from ultralytics import YOLO

import fla.yolo as Y

from helpers import HELMET, attention_modules, fla_variants, photo

ort = pytest.importorskip("onnxruntime", reason="the export extra: pip install -e '.[export]'")
pytestmark = pytest.mark.needs_data



@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """variant -> a checkpoint saved as ultralytics saves best.pt (fp16), set up to behave like a trained
    one: the attention's output projections get weights (at initialisation they are zero, a no-op),
    and BatchNorm gets the statistics of real photos (with the initial ones, activations fade along
    the network in eval mode and every output is nearly the same, whatever the attention does)."""
    root = tmp_path_factory.mktemp("ckpt")
    paths = {}
    for variant in fla_variants():
        torch.manual_seed(0)
        model = YOLO(Y.model_yaml(variant))
        for a in attention_modules(model.model):
            torch.nn.init.normal_(a.proj.weight, std=0.05)
        for bn in model.model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.reset_running_stats()
                bn.momentum = None  # a plain average over the batches below
        with torch.no_grad():
            model.model.train()(torch.cat([photo((320, 320)), photo((320, 320)).flip(-1)]))
        paths[variant] = root / f"{variant.replace(':', '-')}.pt"
        model.save(paths[variant])
    return paths


def rel_err(got, expected) -> float:
    """||got - expected|| / ||expected|| (Euclidean, over all entries)."""
    return ((got - expected).norm() / expected.norm()).item()


def parts(y, end2end: bool):
    """(boxes, scores) of a detection output: (B, 4 + nc, anchors), or (B, max_det, 6) NMS-free (YOLO26)."""
    return (y[..., :4], y[..., 4]) if end2end else (y[:, :4], y[:, 4:])


EXPORTS = {"640x640": {"imgsz": (640, 640)}, "dynamic": {"imgsz": (640, 640), "dynamic": True}}
RUN_AT = {"640x640": (640, 640), "dynamic": (480, 640)}  # a dynamic export runs at a size it was not traced at


@pytest.mark.slow
@pytest.mark.parametrize("export", EXPORTS)
@pytest.mark.parametrize("variant", fla_variants())
def test_onnx_runtime_matches_torch(checkpoints, variant, export, tmp_path):
    ckpt = tmp_path / checkpoints[variant].name
    ckpt.write_bytes(checkpoints[variant].read_bytes())  # the .onnx goes next to it
    model = YOLO(ckpt)
    assert attention_modules(model.model)
    onnx_file = model.export(format="onnx", **EXPORTS[export])  # ultralytics' defaults otherwise (simplify, opset)

    hw = RUN_AT[export]
    x = photo(hw)
    net = YOLO(ckpt).model.float().eval()
    with torch.no_grad():
        expected = net(x)[0]
    session = ort.InferenceSession(onnx_file, providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])
    assert got.shape == expected.shape
    if net.end2end:
        assert torch.equal(got[..., 5], expected[..., 5])  # the class of each kept box
    (boxes, scores), (boxes_ref, scores_ref) = parts(got, net.end2end), parts(expected, net.end2end)
    rel_boxes, rel_scores = rel_err(boxes, boxes_ref), rel_err(scores, scores_ref)
    err = (got - expected).abs().max().item()
    with torch.no_grad():  # float64: how far float32 torch itself is from exact arithmetic
        exact = copy.deepcopy(net).double()(x.double())[0].float()
        for a in attention_modules(net):  # and what the attention contributes: not the parity of a no-op
            torch.nn.init.zeros_(a.proj.weight)
        effect = (net(x)[0] - expected).abs().max().item()
    ort_vs_exact, torch_vs_exact = (got - exact).abs().max().item(), (expected - exact).abs().max().item()
    print(f"ONNX {variant} {export} at {hw[0]}x{hw[1]}: rel boxes {rel_boxes:.1e}, rel scores {rel_scores:.1e}; max abs {err:.1e} "
          f"(ORT vs float64 {ort_vs_exact:.1e}, torch fp32 vs float64 {torch_vs_exact:.1e}); attention's effect {effect:.0f}")
    assert rel_boxes <= 1e-4 and rel_scores <= 1e-4
    assert ort_vs_exact <= 2 * torch_vs_exact  # ONNX Runtime is as exact as torch's own float32
    assert effect > 1000 * err
