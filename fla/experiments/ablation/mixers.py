"""The ablation's network and one training run: small models that differ only in their token mixer (notebook 04).

Every linear kind is one module, ``FocusedLinearAttention`` (ReLU features over a learned per-channel
scale, a learned positional encoding on K, optional DWC), so that each contrast changes one argument:

==============  ==================================================================  ====  ====
variant         token mixer                                                         p     k
==============  ==================================================================  ====  ====
none            no token mixing (the block is its MLP): the attention-free control  –     –
softmax         ``SoftmaxAttention(dim, heads)``                                    –     –
linear          ``FocusedLinearAttention(focusing_factor=1, kernel_size=0)``        1     0
linear+focus    ``FocusedLinearAttention(focusing_factor=p, kernel_size=0)``        p     0
linear+dwc      ``FocusedLinearAttention(focusing_factor=1, kernel_size=k)``        1     k
fla             ``FocusedLinearAttention(focusing_factor=p, kernel_size=k)``        p     k
==============  ==================================================================  ====  ====

f_1 is the identity, so ``linear`` is ReLU linear attention with the module's scale and positional
encoding; "focusing" is p = 1 → p > 1 with everything else equal. ``focus_over="heads"`` focuses each
head's d channels instead of a token's whole C-channel vector (the module's argument of that name).

Network: stem → ``depth`` × [x + mixer(LN(x)), x + MLP(LN(x))] → LN → 1×1 classifier per token.
One run: seeded init and data, AdamW with warm-up and cosine decay, a fixed number of steps, the
task's metric measured along the way (``steps90``: the first checkpoint at 90 % of the final value),
then the metric and the probes (``probes.readout``).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...attention import FocusedLinearAttention, SoftmaxAttention
from ...runtime import pick_device, torch_threads
from .probes import readout

__all__ = ["VARIANTS", "P_DEFAULT", "K_DEFAULT", "Mixer", "BASE", "Training", "mixer_args", "token_mixer", "NoMixing",
           "MixerNet", "train_run"]

VARIANTS = ("none", "softmax", "linear", "linear+focus", "linear+dwc", "fla")
P_DEFAULT, K_DEFAULT = 3, 5


@dataclass(frozen=True)
class Mixer:
    """One token mixer: ``p`` the focusing power (1: none; 0 for softmax and none), ``kernel_size`` the DWC
    (0: none), ``focus_over``: the vector f_p normalises ("channels": all C, "heads": each head's d)."""

    variant: str
    p: float = 0
    kernel_size: int = 0
    focus_over: str = "channels"

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}: choose from {', '.join(VARIANTS)}")
        if self.variant in ("none", "softmax") and (self.p or self.kernel_size):
            raise ValueError(f"{self.variant} has no focusing power or DWC, got p={self.p}, kernel_size={self.kernel_size}")
        if self.variant not in ("none", "softmax") and not self.p >= 1:
            raise ValueError(f"{self.variant} needs a focusing power p >= 1 (1: no focusing), got p={self.p}")
        if self.focus_over not in ("channels", "heads"):
            raise ValueError(f"focus_over must be 'channels' or 'heads', got {self.focus_over!r}")

    @property
    def label(self) -> str:
        base = BASE.get(self.variant)
        if base is not None and (self.p, self.kernel_size) == (base.p, base.kernel_size):
            extra = [f"p={self.p:g}"] * (self.p > 1) + [f"k={self.kernel_size}"] * bool(self.kernel_size)
        else:
            extra = [f"p={self.p:g}"] * bool(self.p) + [f"k={self.kernel_size}"] * bool(self.kernel_size)
        extra += ["per head"] * (self.focus_over == "heads")
        return self.variant + (f" ({', '.join(extra)})" if extra else "")


BASE = {
    "none": Mixer("none"),
    "softmax": Mixer("softmax"),
    "linear": Mixer("linear", 1, 0),
    "linear+focus": Mixer("linear+focus", P_DEFAULT, 0),
    "linear+dwc": Mixer("linear+dwc", 1, K_DEFAULT),
    "fla": Mixer("fla", P_DEFAULT, K_DEFAULT),
}


@dataclass(frozen=True)
class Training:
    """The model and optimisation of one run besides its mixer, seed and learning rate."""

    dim: int
    heads: int
    depth: int
    steps: int
    batch: int
    checkpoints: int = 10  # the metric on the first 64 test items this often during training (``steps90``)


class NoMixing(nn.Module):
    """The attention-free control: mixes no tokens (adds 0), so each block is its MLP on every token alone."""

    def forward(self, x):
        return torch.zeros_like(x)


def mixer_args(mixer: Mixer, grid: tuple[int, int]) -> tuple[type, dict]:
    """The class and keyword arguments of ``mixer``'s module (besides dim and heads): what the contrasts compare."""
    if mixer.variant == "none":
        return NoMixing, {}
    if mixer.variant == "softmax":
        return SoftmaxAttention, {}
    return FocusedLinearAttention, {"focusing_factor": float(mixer.p), "kernel_size": int(mixer.kernel_size),
                                    "pos_encoding": True, "pos_size": tuple(grid), "focus_over": mixer.focus_over}


def token_mixer(mixer: Mixer, dim: int, heads: int, grid: tuple[int, int]) -> nn.Module:
    """The attention module of ``mixer`` (see the table in the module docstring)."""
    cls, kwargs = mixer_args(mixer, grid)
    return cls() if cls is NoMixing else cls(dim, heads, **kwargs)


class TokenNorm(nn.Module):
    """LayerNorm over the channels of every token of a (B, C, H, W) map."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x):
        return rearrange(self.norm(rearrange(x, "b c h w -> b h w c")), "b h w c -> b c h w")


class Block(nn.Module):
    """Pre-norm transformer block on a feature map: x + mixer(LN x), then x + MLP(LN x)."""

    def __init__(self, mixer: nn.Module, dim: int, mlp_ratio: int = 2):
        super().__init__()
        self.norm1, self.mixer, self.norm2 = TokenNorm(dim), mixer, TokenNorm(dim)
        self.mlp = nn.Sequential(nn.Conv2d(dim, mlp_ratio * dim, 1), nn.GELU(), nn.Conv2d(mlp_ratio * dim, dim, 1))

    def forward(self, x):
        x = x + self.mixer(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class MixerNet(nn.Module):
    """stem → ``depth`` blocks with the token mixer ``mixer`` → per-token class logits (B, classes, H, W)."""

    def __init__(self, stem: nn.Module, mixer: Mixer, dim: int, heads: int, depth: int, classes: int,
                 grid: tuple[int, int]):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*(Block(token_mixer(mixer, dim, heads, grid), dim) for _ in range(depth)))
        self.norm = TokenNorm(dim)
        self.head = nn.Conv2d(dim, classes, 1)

    def features(self, inputs) -> list[torch.Tensor]:
        """The input of every block's mixer (LN'd map), for attention pictures (notebook 04)."""
        x, seen = self.stem(inputs), []
        for block in self.blocks:
            seen.append(block.norm1(x))
            x = block(x)
        return seen

    def forward(self, inputs):
        return self.head(self.norm(self.blocks(self.stem(inputs))))


def _lr_at(step: int, steps: int, lr: float, warmup: float = 0.1) -> float:
    """Linear warm-up over the first ``warmup`` fraction, then cosine decay to 0."""
    w = max(1, int(warmup * steps))
    return lr * (step + 1) / w if step < w else lr * 0.5 * (1 + math.cos(math.pi * (step - w) / max(1, steps - w)))


def train_run(task, mixer: Mixer, seed: int, training: Training, lr: float, device=None) -> tuple[dict, MixerNet]:
    """Train one model and score it: (CSV row, trained model in eval mode).

    Seeded: the initial weights by ``torch.manual_seed(seed)``, the training batches by a
    generator of their own; on the CPU the same call returns the same numbers. The metric is
    also taken on the first 64 test items at ``training.checkpoints`` evenly spaced steps: ``steps90`` in
    the row is the first of them at 90 % of the final value (how early the run had learnt).
    """
    device = pick_device(device)
    # on the CPU one thread: the same numbers in a worker, in this process and in the notebook (the order of
    # float sums depends on the thread count), and no two threads waiting on each other on a busy machine
    with torch_threads(1 if device.type == "cpu" else None):
        return _train(task, mixer, seed, training, lr, device)


def _train(task, mixer: Mixer, seed: int, training: Training, lr: float, device):
    cpu0 = time.process_time()  # this process's CPU time: with one thread, what the run would take on an idle core
    steps = training.steps
    torch.manual_seed(seed)
    model = MixerNet(task.stem(training.dim), mixer, training.dim, training.heads, training.depth, task.classes,
                     task.grid).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=lr)
    data = torch.Generator().manual_seed(seed)
    weight = None if task.class_weights is None else task.class_weights.to(device)
    every = max(1, steps // max(1, training.checkpoints))
    curve, train_s = [], 0.0
    for step in range(steps):
        model.train()
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        inputs, target = task.batch(training.batch, data, device)
        loss = F.cross_entropy(model(inputs), target, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        train_s += time.perf_counter() - t0
        if training.checkpoints and (step + 1) % every == 0 and step + 1 < steps:
            model.eval()
            curve.append((step + 1, task.evaluate(model, device, limit=64)))
    model.eval()
    value = task.evaluate(model, device)
    curve.append((steps, task.evaluate(model, device, limit=64)))
    final = curve[-1][1]
    steps90 = next(s for s, v in curve if v >= 0.9 * final)
    row = {"task": task.name, "setting": task.setting, "variant": mixer.variant, "p": float(mixer.p),
           "kernel_size": mixer.kernel_size, "focus_over": mixer.focus_over, "lr": lr, "seed": seed, "steps": steps,
           "metric": task.metric, "value": value, "steps90": steps90, **readout(task, model, device),
           "params": sum(p.numel() for p in model.parameters()), "train_s": train_s}
    row["cpu_s"] = time.process_time() - cpu0
    return row, model


def mixer_of(row: dict) -> Mixer:
    """The mixer a result row was trained with."""
    return Mixer(row["variant"], float(row["p"]), int(row["kernel_size"]), row.get("focus_over") or "channels")
