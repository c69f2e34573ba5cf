"""Every change fla makes to ultralytics at run time, in one place (notebook 05).

1. **Offline switches** (``offline_ultralytics``): no font download, no pip auto-install, no hub checks,
   process-wide. Never run on import: they are for the tests and CI (``tests/conftest.py``), or for a
   user who asks for them, before the first ``import ultralytics``.
2. **YAML names** (``register``): ``ultralytics.nn.tasks.parse_model`` learns ``C2f_FLA``, ``C3k2_FLA``,
   ``C2PSA_FLA`` and ``FLABlock`` without a fork. parse_model decides channel inference and
   depth/width scaling by *identity* membership in frozensets local to it, so no subclass or global
   name can join them. The wrapper hands parse_model a copy of the YAML in which each of our names
   reads as its stand-in (``STAND_INS``: ``C2f_FLA`` reads ``C2f``; ``C3k2_FLA`` reads ``C3k2``, so it
   also gets C3k2's forced ``c3k`` at m/l/x and ``legacy=False``; ``C2PSA_FLA`` reads ``C2PSA``;
   ``FLABlock`` reads ``nn.BatchNorm2d``, whose rule passes the input channels), lets ultralytics infer
   and scale every channel count as it does for its own layers, then swaps each stand-in for our
   block built with the channels read off the stand-in. The YAML the model keeps still names our
   blocks, so ``Model.train()`` (which rebuilds from the YAML) builds them again.
3. **Checkpoints**: our blocks pickle behind a check that ``fla.yolo`` imports (``_Requirement``), so a
   checkpoint loaded where fla-teach is missing stops with one error that names it and how to install
   it, and ultralytics' AutoInstall never runs pip; ``torch.load(weights_only=True)`` (``ULTRALYTICS_SAFE_LOAD=1``) may rebuild
   them once ``fla.yolo`` is imported, under today's module path and under ``fla.yolo.<name>``, the
   path of checkpoints saved before the blocks moved into ``fla.yolo.blocks``.
4. **The AMP check** (``offline_amp_check``): on a GPU ultralytics downloads yolo26n.pt to test AMP;
   during our training runs it is used only when those weights are on disk.
"""
from __future__ import annotations

import contextlib
import copy
import copyreg
import functools
import importlib
import importlib.metadata
import operator
import os
import pickle
import shutil
from pathlib import Path

from torch import nn

__all__ = ["offline_ultralytics", "config_dir", "register", "STAND_INS", "DISTRIBUTION", "amp_check_offline",
           "offline_amp_check"]


# --- 1. Offline switches --------------------------------------------------------------------------


def config_dir() -> Path:
    """Where ultralytics keeps settings and fonts for us: $YOLO_CONFIG_DIR, else ~/.cache/fla/yolo."""
    return Path(os.environ.get("YOLO_CONFIG_DIR") or Path.home() / ".cache" / "fla" / "yolo")


def offline_ultralytics() -> Path:
    """Set ultralytics' offline switches for this whole process (unless the user set them) and place a local font:
    what the tests and CI run under. Call it before the first ``import ultralytics``; ``import fla.yolo`` never
    calls it, so a user's own ultralytics code and ``yolo settings`` stay as they were.

    ultralytics draws labels with Arial.ttf and downloads it when missing; matplotlib ships
    DejaVuSans, which we copy under that name, so plotting never touches the network.
    Returns the config dir.
    """
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    cfg = config_dir()
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    fonts = cfg / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    import matplotlib

    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (fonts / name).exists():
            tmp = fonts / f".{name}.tmp"
            shutil.copyfile(dejavu, tmp)
            os.replace(tmp, fonts / name)
    return cfg


# --- 2. YAML names ----------------------------------------------------------------------------------


def _from_c2f(stand_in, args):
    """C2f_FLA with the channels, depth, shortcut, groups and expansion ultralytics gave the stand-in C2f."""
    from .blocks import C2f_FLA

    c1, c2 = stand_in.cv1.conv.in_channels, stand_in.cv2.conv.out_channels
    first = stand_in.m[0] if len(stand_in.m) else None
    shortcut = bool(first.add) if first is not None else False
    g = first.cv2.conv.groups if first is not None else 1
    return C2f_FLA(c1, c2, len(stand_in.m), shortcut, g, stand_in.c / c2)


def _from_c3k2(stand_in, args):
    """C3k2_FLA with what ultralytics gave the stand-in C3k2: channels, depth, expansion, c3k (forced at m/l/x), attn."""
    from ultralytics.nn.modules.block import C3k

    from .blocks import C3k2_FLA

    c1, c2 = stand_in.cv1.conv.in_channels, stand_in.cv2.conv.out_channels
    first = stand_in.m[0]
    attn, c3k = isinstance(first, nn.Sequential), isinstance(first, C3k)
    bottleneck = first[0] if attn else first.m[0] if c3k else first
    return C3k2_FLA(c1, c2, len(stand_in.m), c3k, stand_in.c / c2, attn, bottleneck.cv2.conv.groups, bottleneck.add)


def _from_c2psa(stand_in, args):
    from .blocks import C2PSA_FLA

    c1 = stand_in.cv1.conv.in_channels
    return C2PSA_FLA(c1, c1, len(stand_in.m), stand_in.c / c1)


def _from_batchnorm(stand_in, args):
    from .blocks import FLABlock

    return FLABlock(stand_in.num_features, *args)


#: YAML name -> (ultralytics stand-in whose channel rule we borrow, builder from the built stand-in)
STAND_INS = {
    "C2f_FLA": ("C2f", _from_c2f),
    "C3k2_FLA": ("C3k2", _from_c3k2),
    "C2PSA_FLA": ("C2PSA", _from_c2psa),
    "FLABlock": ("nn.BatchNorm2d", _from_batchnorm),
}


def _with_fla(parse_model):
    from ultralytics.utils import LOGGER

    @functools.wraps(parse_model)
    def parse(d, ch, verbose=True):
        d = copy.deepcopy(d)
        swaps = {}
        for i, layer in enumerate(d["backbone"] + d["head"]):
            f, _, name, args = layer
            if name not in STAND_INS:
                continue
            if name == "FLABlock":
                if f != -1:
                    raise ValueError(f"layer {i}: FLABlock takes the previous layer's output (from=-1), got from={f}")
                layer[3] = []  # BatchNorm2d's rule passes only the input channels
            layer[2], build = STAND_INS[name]
            swaps[i] = (name, build, list(args))
        model, save = parse_model(d, ch, verbose)
        for i, (name, build, args) in swaps.items():
            stand_in = model[i]
            block = build(stand_in, args)
            block.i, block.f, block.type = stand_in.i, stand_in.f, f"fla.yolo.{name}"
            block.np = sum(p.numel() for p in block.parameters())
            model[i] = block
            if verbose:
                LOGGER.info(f"fla: layer {i} is {name} ({block.np} params; built on ultralytics' {stand_in.type} channel rule)")
        return model, save

    parse._fla_registered = True
    return parse


def register() -> None:
    """Make ``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` usable in model YAMLs and our checkpoints
    loadable (idempotent; run on ``import fla.yolo``)."""
    from ultralytics.nn import tasks

    from . import blocks

    if not getattr(tasks.parse_model, "_fla_registered", False):
        tasks.parse_model = _with_fla(tasks.parse_model)
    for cls in _modules_of(blocks):  # also resolvable by name, like ultralytics' own blocks
        setattr(tasks, cls.__name__, cls)
    _checkpoints()


# --- 3. Checkpoints ---------------------------------------------------------------------------------

DISTRIBUTION = "fla-teach"  # what pip installs; the import name is fla, which flash-linear-attention uses as well
REPOSITORY = "https://github.com/fla-teach/fla"  # fla-teach is not on PyPI: installed from here
#: where the blocks lived when the first checkpoints were saved; pickles name them so, and still load
LEGACY_MODULE = "fla.yolo"
#: what loading one of our checkpoints says where ``fla.yolo`` cannot be imported
MISSING = (f"this checkpoint holds Focused Linear Attention blocks of the Python package {DISTRIBUTION} "
           f"(import name fla.yolo), which cannot be imported here; install it: "
           f"pip install '{DISTRIBUTION} @ git+{REPOSITORY}'")


class _Call:
    """Unpickles as ``fn(*args)``; arguments may be ``_Call`` themselves."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


class _Requirement:
    """The first thing a checkpoint of our blocks unpickles, before any ``fla.*`` name:
    ``{"ok": "fla-teach"}[("ok", MISSING)[pydoc.locate("fla.yolo") is None]]``.

    ``pydoc.locate`` imports ``fla.yolo`` and gives None, never ``ModuleNotFoundError``, where it cannot
    (no fla at all, or flash-linear-attention's fla). ultralytics' ``torch_safe_load`` answers a
    ``ModuleNotFoundError`` -- whatever its name: fla, fla.yolo, or a distribution's name, as
    ``importlib.metadata.PackageNotFoundError`` is one -- with AutoInstall, ``pip install <name>``, and
    whoever registers that name on PyPI gets code run. A ``KeyError`` whose text is ``MISSING`` it lets
    through: the load stops, naming the package and how to install it, and nothing is installed.
    Only standard-library functions run, since fla may be absent."""

    def __reduce__(self):
        import pydoc

        found = _Call(operator.is_, _Call(pydoc.locate, "fla.yolo"), None)
        return operator.getitem, ({"ok": DISTRIBUTION}, _Call(operator.getitem, ("ok", MISSING), found))


def _locate_fla_yolo(path: str):
    """``pydoc.locate`` as a ``weights_only`` load sees it: ``fla.yolo`` only, which is imported when it runs.
    Allowing pydoc.locate itself would let any checkpoint import any module."""
    if path != "fla.yolo":
        raise pickle.UnpicklingError(f"pydoc.locate({path!r}) in a checkpoint: only fla.yolo is allowed")
    return importlib.import_module(path)


class _Empty:
    """Unpickles as an empty instance of ``cls``, as pickle itself builds objects (state comes after)."""

    def __init__(self, cls):
        self.cls = cls

    def __reduce__(self):
        return copyreg._reconstructor, (self.cls, object, None)


_REQUIREMENT = _Requirement()


def _reduce_ex(self, protocol):
    """Pickle as usual, but behind ``_REQUIREMENT``: ``getitem((requirement, empty block), 1)``, then the state."""
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

    Restricted loading refuses every class outside its allow-list; we add ours (the blocks, under
    their path and their legacy one, and the attention modules) and the plain functions their pickles
    call (the metadata lookup, ``getitem``, copyreg's empty-object constructor and its ``object``).
    Without ``import fla.yolo`` it refuses them with ultralytics' "references types outside the
    supported Ultralytics checkpoint format".
    """
    import torch

    from .. import attention
    from . import blocks

    ours = _modules_of(blocks)
    for cls in ours:
        cls.__reduce_ex__, cls.__deepcopy__, cls.__copy__ = _reduce_ex, _deepcopy, _copy
    torch.serialization.add_safe_globals(
        [*ours, *_modules_of(attention), operator.getitem, operator.is_, copyreg._reconstructor, object,
         importlib.metadata.version]  # the requirement of checkpoints saved by fla-teach 0.2.0
    )
    if hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):  # torch >= 2.6 takes (object, name) pairs
        torch.serialization.add_safe_globals([*[(cls, f"{LEGACY_MODULE}.{cls.__qualname__}") for cls in ours],
                                              (_locate_fla_yolo, "pydoc.locate")])


# --- 4. The AMP check -------------------------------------------------------------------------------


def amp_check_offline(check_amp):
    """ultralytics' AMP check downloads yolo26n.pt on a GPU; offline it would fail or wait on the network.
    Use the real check only when those weights are already on disk, else trust AMP (as the check does when it
    cannot download). On CPU the check returns False before any download, so it is left alone."""
    from ultralytics.utils import WEIGHTS_DIR

    def check(model):
        if next(model.parameters()).device.type == "cpu" or (WEIGHTS_DIR / "yolo26n.pt").is_file():
            return check_amp(model)
        return True

    return check


@contextlib.contextmanager
def offline_amp_check():
    """Within this block, ultralytics' trainer runs ``amp_check_offline`` of its AMP check."""
    from ultralytics.engine import trainer

    real = trainer.check_amp
    trainer.check_amp = amp_check_offline(real)
    try:
        yield
    finally:
        trainer.check_amp = real
