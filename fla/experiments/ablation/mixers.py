"""The ablation's network and one training run: small models that differ only in their token mixer (notebook 04).

==============  ================================================================  =========
variant         token mixer                                                       p, k
==============  ================================================================  =========
softmax         ``SoftmaxAttention(dim, heads)``                                  0, 0
linear          ``LinearAttention(dim, heads)`` (ReLU)                            0, 0
linear+focus    ``FocusedLinearAttention(dim, heads, focusing_factor=p, kernel_size=0)``  p, 0
linear+dwc      ``LinearAttention(dim, heads, kernel_size=k)``                    0, k
fla             ``FocusedLinearAttention(dim, heads, focusing_factor=p, kernel_size=k)``  p, k
==============  ================================================================  =========

p = 0 means no focusing and kernel_size = 0 no DWC. The focused modules keep their learned
positional encoding on K (part of the paper's module); the others get none, and nothing else differs.

Network: stem → ``depth`` × [x + mixer(LN(x)), x + MLP(LN(x))] → LN → 1×1 classifier per token.
One run: seeded init and data, AdamW with warm-up and cosine decay, a fixed number of steps, then
the task's metric.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ...attention import FocusedLinearAttention, LinearAttention, SoftmaxAttention
from ...runtime import pick_device, torch_threads

__all__ = ["VARIANTS", "P_DEFAULT", "K_DEFAULT", "P_SWEEP", "K_SWEEP", "Config", "BASE", "configs", "token_mixer",
           "MixerNet", "train_run"]

VARIANTS = ("softmax", "linear", "linear+focus", "linear+dwc", "fla")
P_DEFAULT, K_DEFAULT = 3, 5
P_SWEEP, K_SWEEP = (1, 2, 3, 4, 8), (3, 5, 7)


@dataclass(frozen=True)
class Config:
    """One token mixer: ``p`` = 0 means no focusing, ``kernel_size`` = 0 no DWC."""

    variant: str
    p: float = 0
    kernel_size: int = 0

    @property
    def label(self) -> str:
        extra = [f"p={self.p:g}"] * bool(self.p) + [f"k={self.kernel_size}"] * bool(self.kernel_size)
        return self.variant + (f" ({', '.join(extra)})" if extra else "")


BASE = {
    "softmax": Config("softmax"),
    "linear": Config("linear"),
    "linear+focus": Config("linear+focus", P_DEFAULT, 0),
    "linear+dwc": Config("linear+dwc", 0, K_DEFAULT),
    "fla": Config("fla", P_DEFAULT, K_DEFAULT),
}


def configs(variants=VARIANTS, sweeps: bool = True) -> list[Config]:
    """The five variants (those in ``variants``), then ``fla``'s p and kernel-size sweeps when ``fla`` is in."""
    out = [BASE[v] for v in VARIANTS if v in variants]
    if sweeps and "fla" in variants:
        out += [Config("fla", p, K_DEFAULT) for p in P_SWEEP]
        out += [Config("fla", P_DEFAULT, k) for k in K_SWEEP]
    return list(dict.fromkeys(out))  # the sweeps' p=3, k=5 point is the fla row itself


def token_mixer(cfg: Config, dim: int, heads: int, grid: tuple[int, int]) -> nn.Module:
    """The attention module of ``cfg`` (see the table in the module docstring)."""
    if cfg.variant == "softmax":
        return SoftmaxAttention(dim, heads)
    if cfg.variant in ("linear", "linear+dwc"):
        return LinearAttention(dim, heads, kernel_size=cfg.kernel_size)
    if cfg.variant in ("linear+focus", "fla"):
        return FocusedLinearAttention(dim, heads, focusing_factor=cfg.p, kernel_size=cfg.kernel_size, pos_size=grid)
    raise ValueError(f"unknown variant {cfg.variant!r}: choose from {', '.join(VARIANTS)}")


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
    """stem → ``depth`` blocks with the token mixer of ``cfg`` → per-token class logits (B, classes, H, W)."""

    def __init__(self, stem: nn.Module, cfg: Config, dim: int, heads: int, depth: int, classes: int,
                 grid: tuple[int, int]):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*(Block(token_mixer(cfg, dim, heads, grid), dim) for _ in range(depth)))
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


def train_run(task, cfg: Config, seed: int, *, dim: int, heads: int, depth: int, steps: int, batch: int, lr: float,
              device=None, **_) -> tuple[dict, MixerNet]:
    """Train one model and score it: (CSV row, trained model in eval mode).

    Seeded: the initial weights by ``torch.manual_seed(seed)``, the training batches by a
    generator of their own; on the CPU the same call returns the same numbers.
    """
    device = pick_device(device)
    # on the CPU one thread: the same numbers in a worker, in this process and in the notebook (the order of
    # float sums depends on the thread count), and no two threads waiting on each other on a busy machine
    with torch_threads(1 if device.type == "cpu" else None):
        return _train(task, cfg, seed, dim, heads, depth, steps, batch, lr, device)


def _train(task, cfg, seed, dim, heads, depth, steps, batch, lr, device):
    torch.manual_seed(seed)
    model = MixerNet(task.stem(dim), cfg, dim, heads, depth, task.classes, task.grid).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=lr)
    data = torch.Generator().manual_seed(seed)
    weight = None if task.class_weights is None else task.class_weights.to(device)
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step, steps, lr)
        inputs, target = task.batch(batch, data, device)
        loss = F.cross_entropy(model(inputs), target, weight=weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    train_s = time.perf_counter() - t0
    model.eval()
    value = task.evaluate(model, device)
    row = {"task": task.name, "variant": cfg.variant, "p": cfg.p, "kernel_size": cfg.kernel_size, "seed": seed,
           "metric": task.metric, "value": value, "params": sum(p.numel() for p in model.parameters()),
           "train_s": train_s}
    return row, model


