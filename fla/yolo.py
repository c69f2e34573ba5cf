"""YOLO blocks with focused linear attention, plugged into ultralytics' model registry (notebook 05).

``register()`` (run on import of this module) teaches ``ultralytics.nn.tasks.parse_model`` the
YAML names ``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` without forking ultralytics:

- parse_model decides channel inference and depth/width scaling by *identity* membership in
  frozensets local to it, so no subclass or global name can join them. The wrapper hands
  parse_model a copy of the YAML in which ``C2f_FLA`` reads ``C2f`` (``C3k2_FLA`` reads ``C3k2``,
  so it also gets C3k2's forced ``c3k`` at m/l/x and ``legacy=False``; ``C2PSA_FLA`` reads ``C2PSA``)
  and ``FLABlock`` reads ``nn.BatchNorm2d`` (whose rule passes the input channels), lets ultralytics infer and scale
  every channel count as it does for its own layers, then swaps each stand-in for our block
  built with the channels read off the stand-in.
- The YAML the model keeps still names our blocks, so ``Model.train()`` (which rebuilds from
  the YAML) builds them again, and checkpoints pickle ``fla.yolo.*`` classes, whose import
  registers everything again in a fresh process.
"""
from __future__ import annotations

import copy
import copyreg
import difflib
import functools
import importlib.metadata
import operator
import re
from pathlib import Path

from .env import offline_ultralytics

offline_ultralytics()

import torch  # noqa: E402
from torch import nn  # noqa: E402
from ultralytics.nn import tasks  # noqa: E402
from ultralytics.nn.modules import C2f, C2PSA, C3k2, Conv  # noqa: E402
from ultralytics.nn.modules.block import Bottleneck, C3k, PSABlock  # noqa: E402
from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.utils import RANK  # noqa: E402

from .attention import FocusedLinearAttention  # noqa: E402

__all__ = ["Bottleneck_FLA", "C2f_FLA", "C3k2_FLA", "PSABlock_FLA", "C2PSA_FLA", "FLABlock", "register", "fla_branch", "transfer", "TransferTrainer", "DISTRIBUTION", "model_yaml",
           "VARIANTS", "DEFAULT_VARIANTS", "model_summary"]

CFG_DIR = Path(__file__).parent / "cfg"
#: variant name -> YAML in ``CFG_DIR``. Plain names are YOLOv8 (the seed's experiments, the default of ``fla train``);
#: ``family:name`` for the others. ``*:base`` are ultralytics' own models, unchanged (YOLO11 with its softmax C2PSA,
#: YOLO12 with area attention): the native-attention baselines.
VARIANTS = {
    "base": "yolov8-base.yaml", "c2f_fla": "yolov8-c2f-fla.yaml", "neck_fla": "yolov8-neck-fla.yaml",
    "c2f_fla_p3": "yolov8-c2f-fla-p3.yaml",
    "yolo11:base": "yolo11-base.yaml", "yolo11:c3k2_fla": "yolo11-c3k2-fla.yaml", "yolo11:c3k2_fla_p3": "yolo11-c3k2-fla-p3.yaml",
    "yolo12:base": "yolo12-base.yaml",
    "yolo26:base": "yolo26-base.yaml", "yolo26:fla": "yolo26-fla.yaml",
}
#: what ``fla train`` runs when no ``--variants`` are given (the three YOLOv8 models of notebook 06)
DEFAULT_VARIANTS = ("base", "c2f_fla", "neck_fla")


def heads_for(channels: int, head_dim: int = 32) -> int:
    """Heads of about ``head_dim`` channels, as in the paper's models; at least one, dividing ``channels``."""
    heads = max(1, channels // head_dim)
    while channels % heads:
        heads -= 1
    return heads


def fla_branch(dim: int, num_heads: int | None = None, **fla_kwargs) -> FocusedLinearAttention:
    """FLA for a residual branch ``x + FLA(x)`` that starts as a no-op: its output projection is zero.

    Every block here adds its attention through such a branch, so a model with our blocks computes
    at step 0 exactly what the model without them computes: pretrained weights loaded with
    ``transfer`` keep their accuracy (notebook 05). The branch is not dead: the projection's
    gradient is (output gradient) x (attention output), non-zero, and after the first step the
    inner weights get gradients as well (tests/test_yolo_transfer.py).
    """
    attn = FocusedLinearAttention(dim, num_heads or heads_for(dim), **fla_kwargs)
    nn.init.zeros_(attn.proj.weight)
    nn.init.zeros_(attn.proj.bias)
    return attn


class Bottleneck_FLA(nn.Module):
    """YOLOv8 bottleneck whose output passes a focused-linear-attention residual branch.

        y = cv2(cv1(x));   y = y + FLA(y);   out = x + y  if shortcut and c1 == c2  else  y

    The seed called the attention only when there was no shortcut, so in YOLOv8's backbone
    (shortcut=True) it was built but never used. Here it is always in the path, as a residual
    branch that starts as a no-op (``fla_branch``): at initialisation the block *is* the stock
    bottleneck, so pretrained weights keep their meaning and training from scratch starts from
    the stock network; the shortcut keeps its usual meaning.
    """

    def __init__(self, c1: int, c2: int, shortcut: bool = True, g: int = 1, k=(3, 3), e: float = 0.5, **fla_kwargs):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.attn = fla_branch(c2, **fla_kwargs)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        y = y + self.attn(y)
        return x + y if self.add else y


class C2f_FLA(C2f):
    """C2f whose bottlenecks are ``Bottleneck_FLA``: a drop-in for C2f with the same YAML args ``[c2, shortcut]``."""

    def __init__(self, c1: int, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5, **fla_kwargs):
        super().__init__(c1, c2, n, shortcut, g, e)
        self.m = nn.ModuleList(
            Bottleneck_FLA(self.c, self.c, shortcut, g, k=(3, 3), e=1.0, **fla_kwargs) for _ in range(n)
        )


class C3k2_FLA(C3k2):
    """C3k2 with focused linear attention: a drop-in with C3k2's YAML args ``[c2, c3k, e, attn, g, shortcut]``.

    Every bottleneck becomes a ``Bottleneck_FLA`` (inside C3k too, which ultralytics forces at
    m/l/x), as C2f_FLA does for C2f. With ``attn=True`` (YOLO26's P5 head block, Bottleneck +
    PSABlock) the PSABlock's softmax attention is the one replaced, by ``PSABlock_FLA``.
    Submodule names stay C3k2's, so a stock checkpoint's conv weights keep their names.
    """

    def __init__(self, c1: int, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, attn: bool = False,
                 g: int = 1, shortcut: bool = True, **fla_kwargs):
        super().__init__(c1, c2, n, c3k, e, attn, g, shortcut)
        c = self.c

        def inner():
            if attn:
                return nn.Sequential(Bottleneck(c, c, shortcut, g), PSABlock_FLA(c, **fla_kwargs))
            if c3k:  # C3k(c, c, 2): two k=3 bottlenecks on half its width
                block = C3k(c, c, 2, shortcut, g)
                h = block.cv1.conv.out_channels
                block.m = nn.Sequential(*(Bottleneck_FLA(h, h, shortcut, g, e=1.0, **fla_kwargs) for _ in range(2)))
                return block
            return Bottleneck_FLA(c, c, shortcut, g, e=0.5, **fla_kwargs)  # C3k2's Bottleneck: e=0.5

        self.m = nn.ModuleList(inner() for _ in range(n))


class PSABlock_FLA(PSABlock):
    """PSABlock (``x + attn(x)``, then ``x + ffn(x)``) whose softmax attention is focused linear attention."""

    def __init__(self, c: int, num_heads: int | None = None, shortcut: bool = True, **fla_kwargs):
        super().__init__(c, attn_ratio=0.5, num_heads=max(c // 64, 1), shortcut=shortcut)
        self.attn = fla_branch(c, num_heads, **fla_kwargs)


class C2PSA_FLA(C2PSA):
    """C2PSA (YOLO11/YOLO26's attention after SPPF) whose PSABlocks attend with FLA; same YAML args ``[c2, e]``."""

    def __init__(self, c1: int, c2: int, n: int = 1, e: float = 0.5, **fla_kwargs):
        super().__init__(c1, c2, n, e)
        self.m = nn.Sequential(*(PSABlock_FLA(self.c, **fla_kwargs) for _ in range(n)))


class FLABlock(nn.Module):
    """Standalone neck block ``x + FLA(x)``; channels come from the previous layer (YAML args: ``[]``
    or ``[num_heads]``). It starts as the identity (``fla_branch``), in a pretrained or a fresh detector."""

    def __init__(self, c1: int, num_heads: int | None = None, **fla_kwargs):
        super().__init__()
        self.attn = fla_branch(c1, num_heads, **fla_kwargs)

    def forward(self, x):
        return x + self.attn(x)


def _from_c2f(stand_in: C2f, args) -> C2f_FLA:
    """C2f_FLA with the channels, depth, shortcut, groups and expansion ultralytics gave the stand-in C2f."""
    c1, c2 = stand_in.cv1.conv.in_channels, stand_in.cv2.conv.out_channels
    first = stand_in.m[0] if len(stand_in.m) else None
    shortcut = bool(first.add) if first is not None else False
    g = first.cv2.conv.groups if first is not None else 1
    return C2f_FLA(c1, c2, len(stand_in.m), shortcut, g, stand_in.c / c2)


def _from_c3k2(stand_in: C3k2, args) -> C3k2_FLA:
    """C3k2_FLA with what ultralytics gave the stand-in C3k2: channels, depth, expansion, c3k (forced at m/l/x), attn."""
    c1, c2 = stand_in.cv1.conv.in_channels, stand_in.cv2.conv.out_channels
    first = stand_in.m[0]
    attn, c3k = isinstance(first, nn.Sequential), isinstance(first, C3k)
    bottleneck = first[0] if attn else first.m[0] if c3k else first
    return C3k2_FLA(c1, c2, len(stand_in.m), c3k, stand_in.c / c2, attn, bottleneck.cv2.conv.groups, bottleneck.add)


def _from_c2psa(stand_in: C2PSA, args) -> C2PSA_FLA:
    c1 = stand_in.cv1.conv.in_channels
    return C2PSA_FLA(c1, c1, len(stand_in.m), stand_in.c / c1)


def _from_batchnorm(stand_in: nn.BatchNorm2d, args) -> FLABlock:
    return FLABlock(stand_in.num_features, *args)


# YAML name -> (ultralytics stand-in whose channel rule we borrow, builder from the built stand-in)
_STAND_INS = {
    "C2f_FLA": ("C2f", _from_c2f),
    "C3k2_FLA": ("C3k2", _from_c3k2),
    "C2PSA_FLA": ("C2PSA", _from_c2psa),
    "FLABlock": ("nn.BatchNorm2d", _from_batchnorm),
}


def _with_fla(parse_model):
    @functools.wraps(parse_model)
    def parse(d, ch, verbose=True):
        d = copy.deepcopy(d)
        swaps = {}
        for i, layer in enumerate(d["backbone"] + d["head"]):
            f, _, name, args = layer
            if name not in _STAND_INS:
                continue
            if name == "FLABlock":
                if f != -1:
                    raise ValueError(f"layer {i}: FLABlock takes the previous layer's output (from=-1), got from={f}")
                layer[3] = []  # BatchNorm2d's rule passes only the input channels
            layer[2], build = _STAND_INS[name]
            swaps[i] = (name, build, list(args))
        model, save = parse_model(d, ch, verbose)
        for i, (name, build, args) in swaps.items():
            stand_in = model[i]
            block = build(stand_in, args)
            block.i, block.f, block.type = stand_in.i, stand_in.f, f"fla.yolo.{name}"
            block.np = sum(p.numel() for p in block.parameters())
            model[i] = block
            if verbose:
                tasks.LOGGER.info(f"fla: layer {i} is {name} ({block.np} params; built on ultralytics' {stand_in.type} channel rule)")
        return model, save

    parse._fla_registered = True
    return parse


def register() -> None:
    """Make ``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` usable in model YAMLs (idempotent; run on ``import fla.yolo``)."""
    if not getattr(tasks.parse_model, "_fla_registered", False):
        tasks.parse_model = _with_fla(tasks.parse_model)
    for cls in (Bottleneck_FLA, C2f_FLA, C3k2_FLA, PSABlock_FLA, C2PSA_FLA, FLABlock):  # also resolvable by name, like ultralytics' own blocks
        setattr(tasks, cls.__name__, cls)
    _checkpoints()


def model_yaml(variant: str = "base", scale: str = "n") -> str:
    """Path of a shipped model YAML with the scale in its name (ultralytics reads the scale from it)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got variant={variant!r}")
    if scale not in "nsmlx" or len(scale) != 1:
        raise ValueError(f"scale must be one of n, s, m, l, x, got scale={scale!r}")
    family, rest = re.match(r"(yolov?\d+)(.*)", VARIANTS[variant]).groups()
    return str(CFG_DIR / f"{family}{scale}{rest}")  # yolo11-base.yaml -> yolo11n-base.yaml


def model_summary(model: nn.Module, imgsz: int | tuple[int, int] = 640) -> dict:
    """Parameters and GFLOPs (2 × thop multiply-adds, ultralytics' convention) of a detection model at imgsz.

    Profiles one real forward at the full size, so every matmul inside the attention is
    counted as it runs (notebook 05). ``model`` may be a ``YOLO`` object or its ``.model``.
    """
    import thop

    net = getattr(model, "model", model)
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    p = next(net.parameters())
    im = torch.zeros(1, 3, h, w, device=p.device, dtype=p.dtype)
    macs, params = thop.profile(copy.deepcopy(net), inputs=[im], verbose=False)
    attn = sum(m.numel() for mod in net.modules() if isinstance(mod, FocusedLinearAttention) for m in mod.parameters())
    return {"params": int(params), "attention_params": int(attn), "gflops": 2 * macs / 1e9}


# --- Pretrained transfer -----------------------------------------------------------------------


def _layer_map(src_yaml: dict, dst_yaml: dict) -> dict[int, int]:
    """Source layer index -> destination layer index, from the two YAMLs' layer lists aligned by module
    name (ours read as the ultralytics block they stand in for): a neck ``FLABlock`` is an inserted layer,
    and every later layer keeps its source tensors although its index moved by one."""
    def names(d):
        return [_STAND_INS[n][0] if n in _STAND_INS and n != "FLABlock" else n for _, _, n, _ in d["backbone"] + d["head"]]

    matcher = difflib.SequenceMatcher(None, names(src_yaml), names(dst_yaml), autojunk=False)
    return {a + k: b + k for a, b, n in matcher.get_matching_blocks() for k in range(n)}


def transfer(model, weights, verbose: bool = True) -> int:
    """Load a pretrained detector into ``model`` (a YOLO or DetectionModel); returns how many of ``model``'s
    tensors now hold pretrained values (notebook 05, ``fla train --weights``).

    ultralytics' ``DetectionModel.load`` does the transfer: tensors whose names and shapes match, the
    detection head rebuilt for another class count. Names carry layer indices, so the pretrained layers
    are first renumbered along ``_layer_map``. Our attention is new and starts as a no-op
    (``fla_branch``): where every pretrained tensor finds its place, the model then computes exactly
    what the pretrained one did. ``weights``: a ``.pt`` path (``yolov8n.pt``, a ``best.pt``), a YOLO or a
    DetectionModel.
    """
    from ultralytics.engine.model import Model

    net = model.model if isinstance(model, Model) else model
    source = weights if isinstance(weights, (str, Path)) else type(weights).__name__  # a path, not a module's repr
    if isinstance(weights, (str, Path)):
        weights, _ = tasks.load_checkpoint(weights)
    src = copy.deepcopy(weights.model if isinstance(weights, Model) else weights).float()
    layers = [nn.Identity() for _ in net.model]
    for a, b in _layer_map(src.yaml, net.yaml).items():
        layers[b] = src.model[a]
    src.model = nn.Sequential(*layers)
    net.load(src, verbose=False)
    theirs, ours = src.state_dict(), net.state_dict()
    n = sum(k in theirs and theirs[k].shape == v.shape and torch.equal(theirs[k].to(v), v) for k, v in ours.items())
    if verbose:
        print(f"fla: transferred {n}/{len(ours)} tensors from {source}", flush=True)  # stdout, whatever ultralytics' log level
    return n


class TransferTrainer(DetectionTrainer):
    """ultralytics' detection trainer whose ``pretrained=PATH`` goes through ``transfer`` (``fla train --weights``),
    so a neck FLABlock does not cut the transfer off at its layer. DDP workers rebuild it by name."""

    def get_model(self, cfg=None, weights=None, verbose=True):
        model = super().get_model(cfg, None, verbose)
        if weights is not None:
            # the count is what --weights promises to print, also in a quiet (quick) run; once, not per DDP rank
            transfer(model, weights, verbose=RANK in {-1, 0})
        return model


# --- Checkpoints ----------------------------------------------------------------------------------

DISTRIBUTION = "fla-teach"  # what pip installs; the import name is fla, which flash-linear-attention uses as well


class _Requirement:
    """Unpickles as ``importlib.metadata.version("fla-teach")``: the first thing a checkpoint of our blocks
    reads, before any ``fla.*`` name. Where fla-teach is missing, loading stops with
    ``PackageNotFoundError: No package metadata was found for fla-teach``, which names the distribution,
    instead of ``No module named 'fla'``, on which ultralytics' AutoInstall runs ``pip install fla``
    (someone else's package). A metadata lookup runs no code of ours, so ULTRALYTICS_SAFE_LOAD may allow it."""

    def __reduce__(self):
        return importlib.metadata.version, (DISTRIBUTION,)


class _Empty:
    """Unpickles as an empty instance of ``cls``, as pickle itself builds objects (state comes after)."""

    def __init__(self, cls):
        self.cls = cls

    def __reduce__(self):
        return copyreg._reconstructor, (self.cls, object, None)


_REQUIREMENT = _Requirement()


def _reduce_ex(self, protocol):
    """Pickle as usual, but behind ``_REQUIREMENT``: ``getitem((version, empty block), 1)``, then the state."""
    _, _, state, *rest = object.__reduce_ex__(self, protocol)
    return (operator.getitem, ((_REQUIREMENT, _Empty(type(self))), 1), state, *rest)


def _deepcopy(self, memo):
    """Copies skip the requirement (``copy`` would otherwise go through ``_reduce_ex``): as torch copies a module."""
    new = object.__new__(type(self))
    memo[id(self)] = new
    new.__setstate__(copy.deepcopy(self.__getstate__(), memo))
    return new


def _copy(self):
    new = object.__new__(type(self))
    new.__setstate__(self.__getstate__())
    return new


def _modules_of(module) -> list[type]:
    return [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, nn.Module) and c.__module__ == module.__name__]


def _checkpoints() -> None:
    """Our blocks pickle behind the requirement; ``torch.load(weights_only=True)`` -- ultralytics'
    ``ULTRALYTICS_SAFE_LOAD=1`` -- may rebuild them once ``fla.yolo`` is imported.

    Restricted loading refuses every class outside its allow-list; we add ours (the blocks, the
    attention modules) and the plain functions their pickles call (the metadata lookup, ``getitem``,
    copyreg's empty-object constructor and its ``object``). Without ``import fla.yolo`` it refuses them
    with ultralytics' "references types outside the supported Ultralytics checkpoint format".
    """
    import sys

    from . import attention

    blocks = _modules_of(sys.modules[__name__])
    for cls in blocks:
        cls.__reduce_ex__, cls.__deepcopy__, cls.__copy__ = _reduce_ex, _deepcopy, _copy
    torch.serialization.add_safe_globals(
        [*blocks, *_modules_of(attention), importlib.metadata.version, operator.getitem, copyreg._reconstructor, object]
    )


register()
