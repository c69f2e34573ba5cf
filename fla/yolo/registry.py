"""The YAML names ``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` in ultralytics' model parser, without a fork.

``ultralytics.nn.tasks.parse_model`` decides channel inference and depth/width scaling by *identity*
membership in frozensets local to it, so no subclass or global name can join them. ``register`` wraps it:
the wrapper hands parse_model a copy of the YAML in which each of our names reads as its stand-in
(``STAND_INS``: ``C2f_FLA`` reads ``C2f``; ``C3k2_FLA`` reads ``C3k2``, so it also gets C3k2's forced
``c3k`` at m/l/x and ``legacy=False``; ``C2PSA_FLA`` reads ``C2PSA``; ``FLABlock`` reads
``AIFI``, whose rule passes the input channels before the YAML's args). ultralytics infers and scales the arguments
of every layer as it does for its own, and where it would construct a stand-in for one of our layers,
our block is constructed instead, from those same arguments (each of our blocks takes its stand-in's
signature). Nothing is built twice and nothing is read back from built modules. The YAML the model keeps
still names our blocks, so ``Model.train()`` (which rebuilds from the YAML) builds them again.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import sys

__all__ = ["STAND_INS", "register"]

#: YAML name -> the ultralytics layer whose channel rule it borrows. AIFI's rule passes the input channels
#: and then the YAML's args, and keeps the previous layer's channel count as the output's (FLABlock's from is -1).
STAND_INS = {"C2f_FLA": "C2f", "C3k2_FLA": "C3k2", "C2PSA_FLA": "C2PSA", "FLABlock": "AIFI"}


def _layer_index(parse_code) -> int | None:
    """The layer parse_model is building: its loop index ``i``, read from its frame (None outside it)."""
    frame = sys._getframe(2)
    while frame is not None and frame.f_code is not parse_code:
        frame = frame.f_back
    return None if frame is None else frame.f_locals.get("i")


@contextlib.contextmanager
def _ours_where_parse_builds(parse_code, ours: dict[int, str]):
    """While parse_model runs, each stand-in it names is a subclass of the stand-in whose construction builds, for
    layer i in ``ours``, our block ``ours[i]`` from the arguments parse_model computed (the layer's YAML args after
    ultralytics' rules), and the stand-in itself for every other layer.

    parse_model builds its rule sets from the names in ``ultralytics.nn.tasks`` on each call, so the subclass gets
    the stand-in's rules; a ``__new__`` that returns an object of another class skips the subclass's ``__init__``.
    ultralytics' own classes are not touched, and the names are restored when parse_model returns."""
    from ultralytics.nn import tasks

    from . import blocks

    def stand_in(real: type) -> type:
        def new(cls, *args, **kwargs):
            i = _layer_index(parse_code)
            return getattr(blocks, ours[i])(*args, **kwargs) if i in ours else real(*args, **kwargs)

        return type(real.__name__, (real,), {"__new__": new, "__module__": real.__module__, "__qualname__": real.__qualname__})

    saved = {name: getattr(tasks, name) for name in {STAND_INS[n] for n in ours.values()}}
    for name, real in saved.items():
        setattr(tasks, name, stand_in(real))
    try:
        yield
    finally:
        for name, real in saved.items():
            setattr(tasks, name, real)


def _with_fla(parse_model):
    from ultralytics.utils import LOGGER

    @functools.wraps(parse_model)
    def parse(d, ch, verbose=True):
        d = copy.deepcopy(d)
        ours = {}
        for i, layer in enumerate(d["backbone"] + d["head"]):
            f, n, name, _ = layer
            if name not in STAND_INS:
                continue
            if name == "FLABlock" and (f != -1 or n != 1):
                raise ValueError(f"layer {i}: FLABlock takes the previous layer's output once (from=-1, number=1), "
                                 f"got from={f}, number={n}")
            layer[2] = STAND_INS[name]
            ours[i] = name
        with _ours_where_parse_builds(inspect.unwrap(parse_model).__code__, ours):
            model, save = parse_model(d, ch, verbose)
        for i, name in ours.items():
            model[i].type = f"fla.yolo.{name}"
            if verbose:
                LOGGER.info(f"fla: layer {i} is {name} ({model[i].np} params; built on ultralytics' "
                            f"{STAND_INS[name]} channel rule)")
        return model, save

    parse._fla_registered = True
    return parse


def register() -> None:
    """Make ``C2f_FLA``, ``C3k2_FLA``, ``C2PSA_FLA`` and ``FLABlock`` usable in model YAMLs and our checkpoints
    loadable (idempotent; run on ``import fla.yolo``)."""
    from ultralytics.nn import tasks

    from . import blocks
    from .checkpoints import guard_checkpoints, modules_of

    if not getattr(tasks.parse_model, "_fla_registered", False):
        tasks.parse_model = _with_fla(tasks.parse_model)
    for cls in modules_of(blocks):  # also resolvable by name, like ultralytics' own blocks
        setattr(tasks, cls.__name__, cls)
    guard_checkpoints()
