"""Checkpoints of our blocks: they load where ``fla.yolo`` imports, and stop with one line where it does not.

Our blocks pickle behind a check that ``fla.yolo`` imports (``_Requirement``), so a checkpoint loaded where
fla-teach is missing stops with one error that names it and how to install it, and ultralytics'
AutoInstall never runs pip; ``torch.load(weights_only=True)`` (``ULTRALYTICS_SAFE_LOAD=1``) may rebuild
them once ``fla.yolo`` is imported, under today's module path and under ``fla.yolo.<name>``, the path of
checkpoints saved before the blocks moved into ``fla.yolo.blocks``. ``register`` (``fla.yolo.registry``)
calls ``guard_checkpoints``.
"""
from __future__ import annotations

import copy
import copyreg
import importlib
import importlib.metadata
import operator
import pickle

from torch import nn

__all__ = ["DISTRIBUTION", "REPOSITORY", "MISSING", "guard_checkpoints", "modules_of"]

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


def modules_of(module) -> list[type]:
    """The nn.Module classes defined in ``module`` (not those it imports)."""
    return [c for c in vars(module).values() if isinstance(c, type) and issubclass(c, nn.Module) and c.__module__ == module.__name__]


def guard_checkpoints() -> None:
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

    ours = modules_of(blocks)
    for cls in ours:
        cls.__reduce_ex__, cls.__deepcopy__, cls.__copy__ = _reduce_ex, _deepcopy, _copy
    torch.serialization.add_safe_globals(
        [*ours, *modules_of(attention), operator.getitem, operator.is_, copyreg._reconstructor, object,
         importlib.metadata.version]  # the requirement of checkpoints saved by fla-teach 0.2.0
    )
    if hasattr(torch.serialization, "get_unsafe_globals_in_checkpoint"):  # torch >= 2.6 takes (object, name) pairs
        torch.serialization.add_safe_globals([*[(cls, f"{LEGACY_MODULE}.{cls.__qualname__}") for cls in ours],
                                              (_locate_fla_yolo, "pydoc.locate")])
