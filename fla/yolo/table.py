"""One table for every YOLO variant (``fla models``) — size, arithmetic and CPU latency per image (notebook 05).

Columns, per variant at one scale (n by default), nc=80, 640×640:

- ``params`` and ``GFLOPs``: ultralytics' own count (thop; the same as ``fla.yolo.model_summary``
  and ``model.info()``). thop counts layers, not the matmuls inside ultralytics' attention
  blocks (C2PSA, A2C2f), so the attention's cost is counted again with torch's FlopCounterMode,
  which sees every matmul and convolution that runs, in ours and in ultralytics' attention alike:
  ``attn GFLOPs`` and its share of the model's matmuls and convolutions (``attention_placements``).
- ``gflops_fused``: ultralytics' count of the model fused for inference, as it predicts, exports and is timed here:
  each BatchNorm folded into its convolution (thop counts a BatchNorm's per-element arithmetic, fusing removes it)
  and, in end-to-end heads (YOLO26), the one-to-many branch dropped, which only training uses (unfused, the head
  runs both branches even in eval mode). Not a column of ``markdown``; notebook 05 prints it under the table.
- ``torch ms`` / ``ORT ms``: wall time of one image (batch 1), the model fused (conv+BN, as
  ultralytics predicts and exports), in eager torch and in ONNX Runtime on the model ultralytics'
  exporter writes; median (and minimum) of ``runs`` after ``warmup``, timed round by round over
  all variants and both runtimes so that load from other processes hits all alike, ORT given
  torch's thread count.

Latency is a measurement of this machine at this moment: the command prints the CPU, the threads
and the load average before and after, and nothing in the tests depends on it.
"""
from __future__ import annotations

import copy
import statistics
import tempfile
import time
from pathlib import Path

from ..figures import PAGE_WIDTH
from ..files import markdown_table

__all__ = ["COLUMNS", "attention_placements", "plot_network", "measure", "measure_all", "markdown"]

COLUMNS = ["variant", "scale", "params", "attention_params", "gflops", "attention_gflops", "gflops_all", "gflops_fused",
           "torch_ms", "ort_ms", "torch_min_ms", "ort_min_ms"]


def attention_types() -> tuple[type, ...]:
    """Our attention modules and ultralytics' (PSABlock's ``Attention``, A2C2f's area attention ``AAttn``)."""
    from ultralytics.nn.modules.block import AAttn, Attention

    from ..attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention

    return FocusedLinearAttention, LinearAttention, SoftmaxAttention, Attention, AAttn


def attention_placements(model, imgsz: int | tuple[int, int] = 640) -> tuple[list[dict], int]:
    """Where a detection model attends and what each attention costs, from one forward at ``imgsz``.

    Returns one dict per attention module — ``layer`` (index in the YAML), ``module`` (its path),
    ``type``, ``map`` (H, W) it receives, ``stride`` (input side / map side, read off the run, not
    assumed), ``tokens`` N, ``dim`` C, ``heads``, ``flops`` (FlopCounterMode: 2 per multiply-add, its
    projections and token mixing) — and the FLOPs of the whole forward counted the same way.
    For focused linear attention also ``projection_flops``, the four C×C projections by formula,
    and ``softmax_flops``, what softmax attention with the same projections and key grid would cost there (notebook 05).
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..attention import FocusedLinearAttention
    from ..flops import _count_cpu_sdpa
    from ..functional import module_macs, projection_macs

    net = getattr(model, "model", model)
    net = copy.deepcopy(net).float().eval()
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    seen, hooks = {}, []
    for name, mod in net.named_modules():
        if isinstance(mod, attention_types()):
            hooks.append(mod.register_forward_pre_hook(lambda m, inp, name=name: seen.update({name: inp[0].shape})))
    _count_cpu_sdpa()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, 3, h, w, device=next(net.parameters()).device))  # on the model's device, GPU included
    for hook in hooks:
        hook.remove()
    counts = counter.get_flop_counts()
    rows = []
    for name, mod in net.named_modules():
        if name not in seen:
            continue
        _, c, mh, mw = seen[name]
        n, heads = mh * mw, mod.num_heads
        row = {"layer": int(name.split(".")[1]), "module": name, "type": type(mod).__name__, "map": (mh, mw),
               "stride": h // mh, "tokens": n, "dim": c, "heads": heads,
               "flops": sum(counts.get(f"{type(net).__name__}.{name}", {}).values())}
        if isinstance(mod, FocusedLinearAttention):
            sr = getattr(mod, "sr_ratio", 1)
            m = (mh // sr) * (mw // sr)
            row["projection_flops"] = 2 * projection_macs(n, c, m)
            row["softmax_flops"] = 2 * module_macs(n, c, heads, "softmax", m=m, sr_ratio=sr)
        rows.append(row)
    return rows, counter.get_total_flops()


def _attention_kind(layer) -> str | None:
    from ..attention import FocusedLinearAttention, LinearAttention

    kinds = [m for m in layer.modules() if isinstance(m, attention_types())]
    if not kinds:
        return None
    return "linear" if isinstance(kinds[0], (FocusedLinearAttention, LinearAttention)) else "softmax"


def plot_network(model, imgsz: int = 640, ax=None, title: str | None = None):
    """The detector as a picture: its layers left to right, one row per stride (P1/2 ... P5/32,
    read off a forward at ``imgsz``), arrows for the YAML's ``from``; the layers that attend are
    coloured (focused linear / softmax) and labelled with the map they see and its token count (notebook 05)."""
    import matplotlib.pyplot as plt
    import torch
    from matplotlib.patches import FancyBboxPatch

    net = getattr(model, "model", model)
    layers = net.model
    sizes, hooks = {}, []
    for i, layer in enumerate(layers):
        hooks.append(layer.register_forward_hook(
            lambda m, inp, out, i=i: sizes.update({i: tuple(out.shape[-2:])}) if isinstance(out, torch.Tensor) else None))
    was_training = net.training
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, imgsz, imgsz, device=next(net.parameters()).device))
    net.train(was_training)
    for h in hooks:
        h.remove()
    level = {i: (imgsz // hw[0]).bit_length() - 1 for i, hw in sizes.items()}  # stride 2**level
    bottom = max(level.values()) + 1
    if ax is None:
        _, ax = plt.subplots(figsize=(PAGE_WIDTH, 3.4))  # the page's width: about a third of an inch a layer
    colours = {"linear": "#f28e2b", "softmax": "#4e79a7", None: "#e8e8e8"}
    short = {"Upsample": "Up", "Concat": "Cat", "Detect": "Det"}
    for i, layer in enumerate(layers):
        y = level.get(i, bottom)
        for src in ([layer.f] if isinstance(layer.f, int) else layer.f):
            j = i - 1 if src == -1 else src
            if j < 0:  # the image itself
                continue
            ax.annotate("", (i - 0.4, y), (j + 0.4, level.get(j, bottom)),
                        arrowprops=dict(arrowstyle="->", color="#9a9a9a", lw=0.8, shrinkA=0, shrinkB=0,
                                        connectionstyle="arc3,rad=0.0" if abs(i - j) == 1 else "arc3,rad=-0.25"))
        kind = _attention_kind(layer)
        ax.add_patch(FancyBboxPatch((i - 0.4, y - 0.28), 0.8, 0.56, boxstyle="round,pad=0.02",
                                    fc=colours[kind], ec="#555555", lw=0.6, zorder=3))
        name = type(layer).__name__
        ax.text(i, y, short.get(name, name).replace("_FLA", "\nFLA"), ha="center", va="center", fontsize=7, zorder=4)
        if kind and i in sizes:
            h, w = sizes[i]
            # above every box (zorder 5) on a white ground: the next row's boxes would cut the label
            ax.text(i, y + 0.36, f"{h}×{w}\nN={h * w}", ha="center", va="top", fontsize=7, zorder=5,
                    color=colours[kind], fontweight="bold", bbox=dict(fc="white", ec="none", pad=0.3, alpha=0.9))
    ax.set_xlim(-0.7, len(layers) - 0.3)
    ax.set_ylim(bottom + 0.7, 0.3)
    ax.set_yticks(range(1, bottom + 1), [f"P{k}/{2 ** k}" for k in range(1, bottom)] + ["head"])
    ax.set_xticks(range(len(layers)))
    ax.tick_params(axis="x", labelsize=7)
    ax.set_xlabel("layer (YAML index)")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    handles = [plt.Rectangle((0, 0), 1, 1, fc=colours[k]) for k in ("linear", "softmax")]
    ax.legend(handles, ["focused linear attention", "softmax attention"], loc="lower left", fontsize=8, frameon=False)
    if title:
        ax.set_title(title, fontsize=10, loc="left")
    return ax


def _fused(net):
    """A fused fp32 copy on the CPU, where the latencies are measured (beside ONNX Runtime's CPU provider)."""
    net = copy.deepcopy(net).float().cpu().eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net.fuse(verbose=False)  # ultralytics' summary of the fused model is ``gflops_fused``, not a printed line


def _ort_session(model, imgsz: int, workdir: Path, name: str):
    """Export with ultralytics' exporter (fixed shape, no onnxslim) and open it in ONNX Runtime on the CPU."""
    import onnxruntime as ort
    import torch

    model = copy.deepcopy(model)
    model.model.pt_path = str(workdir / f"{name}.pt")  # the exporter writes <pt_path stem>.onnx beside it
    path = model.export(format="onnx", imgsz=imgsz, simplify=False, device="cpu", verbose=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _prepare(variant: str, scale: str, imgsz: int, onnx: bool, latency: bool, model=None) -> tuple:
    """(row with the counts, fused torch model, ONNX Runtime session): everything but the timing."""
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import get_flops

    from .variants import model_summary, model_yaml

    model = model or YOLO(model_yaml(variant, scale), verbose=False)
    summary = model_summary(model, imgsz)
    placements, total = attention_placements(model, imgsz)
    row = {"variant": variant, "scale": scale, "params": summary["params"],
           "attention_params": summary["attention_params"], "gflops": summary["gflops"],
           "attention_gflops": sum(p["flops"] for p in placements) / 1e9, "gflops_all": total / 1e9,
           "torch_ms": None, "ort_ms": None, "torch_min_ms": None, "ort_min_ms": None}
    fused = _fused(model.model)
    row["gflops_fused"] = get_flops(fused, imgsz)  # what model.fuse() would print
    if not latency:
        return row, None, None
    session = None
    if onnx:
        with tempfile.TemporaryDirectory() as tmp:
            session = _ort_session(model, imgsz, Path(tmp), variant.replace(":", "-") + scale)
    return row, fused, session


def measure_all(variants, progress: bool = True, models: dict | None = None, scale: str = "n", imgsz: int = 640,
                runs: int = 30, warmup: int = 5, onnx: bool = True, latency: bool = True) -> list[dict]:
    """One row per variant (see ``COLUMNS``; latencies in ms, None where not measured), with progress bars.

    Every variant is built, counted and exported first; then the timing goes round by round over
    all variants (torch, then ORT, for each), so that load from other processes, which drifts over
    minutes, falls on every variant alike. ``models``: {variant: YOLO} already built, used where given.
    """
    import torch
    from tqdm.auto import tqdm

    models = models or {}
    prepared = [_prepare(v, scale, imgsz, onnx, latency, models.get(v))
                for v in tqdm(list(variants), desc="build, count, export", unit="variant", disable=not progress)]
    if not latency:
        return [row for row, _, _ in prepared]
    x = torch.zeros(1, 3, imgsz, imgsz)
    feed = x.numpy()
    times = [{"torch": [], "ort": []} for _ in prepared]
    with torch.inference_mode():
        for _ in tqdm(range(warmup + runs), desc="timing rounds", unit="round", disable=not progress):
            for (row, fused, session), ts in zip(prepared, times):
                t = time.perf_counter()
                fused(x)
                ts["torch"].append(time.perf_counter() - t)
                if session is not None:
                    t = time.perf_counter()
                    session.run(None, {session.get_inputs()[0].name: feed})
                    ts["ort"].append(time.perf_counter() - t)
    for (row, _, _), ts in zip(prepared, times):
        for key, t in ts.items():
            if t:
                row[f"{key}_ms"] = 1e3 * statistics.median(t[warmup:])
                row[f"{key}_min_ms"] = 1e3 * min(t[warmup:])
    return [row for row, _, _ in prepared]


def measure(variant: str, **kwargs) -> dict:
    """``measure_all`` for one variant."""
    return measure_all([variant], progress=False, **kwargs)[0]


def markdown(rows: list[dict], runs: int | None = None) -> str:
    """The table as markdown; each latency column only when some row has it (notebook 05 times torch alone)."""
    def ms(median, low):
        return "–" if median is None else f"{median:.0f} ({low:.0f})"

    lat = any(r["torch_ms"] is not None for r in rows)
    ort = any(r["ort_ms"] is not None for r in rows)
    head = ["variant", "params", "attention params", "GFLOPs", "attn GFLOPs*"] + (["torch ms"] if lat else []) + (
        ["ORT ms"] if ort else [])
    table = []
    for r in rows:
        cells = [f"{r['variant']}@{r['scale']}" if r["scale"] != "n" else r["variant"], f"{r['params']:,}",
                 f"{r['attention_params']:,}", f"{r['gflops']:.2f}",
                 f"{r['attention_gflops']:.3f} ({100 * r['attention_gflops'] / r['gflops_all']:.1f}%)"]
        if lat:
            cells.append(ms(r["torch_ms"], r["torch_min_ms"]))
        if ort:
            cells.append(ms(r["ort_ms"], r["ort_min_ms"]))
        table.append(cells)
    note = ("GFLOPs: ultralytics' count (thop) at 640×640. attn GFLOPs*: the attention modules' matmuls and convs "
            "(ours and ultralytics' own; torch FlopCounterMode), in brackets their share of the model's.")
    if lat:
        note += (f" Latency: batch 1, 640×640, fused model, median (minimum) of {runs} runs after warm-up, "
                 "the variants timed round by round.")
    return markdown_table(head, table, numeric=True) + "\n\n" + note
