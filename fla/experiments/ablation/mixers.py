"""The ablation's network and one training run: small models that differ only in their token mixer (notebook 04).

Every linear kind is one module, ``FocusedLinearAttention`` (ReLU features over a learned per-channel
scale, a learned positional encoding on K, optional DWC), so that each contrast changes one argument:

==============  =====================================================  ====  ====
variant         token mixer                                            p     k
==============  =====================================================  ====  ====
softmax         ``SoftmaxAttention(dim, heads)``                       –     –
linear          ``FocusedLinearAttention(focusing_factor=1, kernel_size=0)``  1     0
linear+focus    ``FocusedLinearAttention(focusing_factor=p, kernel_size=0)``  p     0
linear+dwc      ``FocusedLinearAttention(focusing_factor=1, kernel_size=k)``  1     k
fla             ``FocusedLinearAttention(focusing_factor=p, kernel_size=k)``  p     k
==============  =====================================================  ====  ====

f_1 is the identity, so ``linear`` is ReLU linear attention with the module's scale and positional
encoding; "focusing" is p = 1 → p > 1 with everything else equal. ``per_head=True`` focuses each
head's d channels instead of a token's whole C-channel vector (the authors' code, and ``fla``'s
module, focus over all C channels, which couples the heads): :class:`PerHeadFocus`.

Network: stem → ``depth`` × [x + mixer(LN(x)), x + MLP(LN(x))] → LN → 1×1 classifier per token.
One run: seeded init and data, AdamW with warm-up and cosine decay, a fixed number of steps, the
task's metric measured along the way (``steps90``: the first checkpoint at 90 % of the final value),
then the metric and the task's probes.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from ... import functional as Fn
from ... import kernels
from ...attention import FocusedLinearAttention, SoftmaxAttention
from ...runtime import pick_device, torch_threads

__all__ = ["VARIANTS", "P_DEFAULT", "K_DEFAULT", "P_SWEEP", "Config", "BASE", "configs", "mixer_args", "token_mixer",
           "PerHeadFocus", "MixerNet", "train_run"]

VARIANTS = ("softmax", "linear", "linear+focus", "linear+dwc", "fla")
P_DEFAULT, K_DEFAULT = 3, 5
P_SWEEP = (1, 2, 3, 8)  # focusing alone (k = 0): p = 1 is the "linear" row


@dataclass(frozen=True)
class Config:
    """One token mixer: ``p`` the focusing power (1: none; 0 for softmax), ``kernel_size`` the DWC (0: none),
    ``per_head``: focus each head's channels rather than all C."""

    variant: str
    p: float = 0
    kernel_size: int = 0
    per_head: bool = False

    @property
    def label(self) -> str:
        base = BASE.get(self.variant)
        if base is not None and (self.p, self.kernel_size, self.per_head) == (base.p, base.kernel_size, base.per_head):
            extra = [f"p={self.p:g}"] * (self.p > 1) + [f"k={self.kernel_size}"] * bool(self.kernel_size)
        else:
            extra = [f"p={self.p:g}"] * bool(self.p) + [f"k={self.kernel_size}"] * bool(self.kernel_size)
        extra += ["per head"] * self.per_head
        return self.variant + (f" ({', '.join(extra)})" if extra else "")


BASE = {
    "softmax": Config("softmax"),
    "linear": Config("linear", 1, 0),
    "linear+focus": Config("linear+focus", P_DEFAULT, 0),
    "linear+dwc": Config("linear+dwc", 1, K_DEFAULT),
    "fla": Config("fla", P_DEFAULT, K_DEFAULT),
}


def configs(variants=VARIANTS, sweeps: bool = True) -> list[Config]:
    """The five variants (those in ``variants``); with ``sweeps`` and linear+focus in, its p sweep at k = 0
    and the same module focusing per head."""
    out = [BASE[v] for v in VARIANTS if v in variants]
    if sweeps and "linear+focus" in variants:
        out += [Config("linear+focus", p, 0) for p in P_SWEEP if p > 1]
        out.append(Config("linear+focus", P_DEFAULT, 0, per_head=True))
    return list(dict.fromkeys(out))  # the sweep's p = 3 point is the linear+focus row itself


def mixer_args(cfg: Config, grid: tuple[int, int]) -> tuple[type, dict]:
    """The class and keyword arguments of ``cfg``'s token mixer (besides dim and heads): what the contrasts compare."""
    if cfg.variant == "softmax":
        return SoftmaxAttention, {}
    if cfg.variant not in VARIANTS:
        raise ValueError(f"unknown variant {cfg.variant!r}: choose from {', '.join(VARIANTS)}")
    if not cfg.p >= 1:
        raise ValueError(f"{cfg.variant} needs a focusing power p >= 1 (1: no focusing), got p={cfg.p}")
    return (PerHeadFocus if cfg.per_head else FocusedLinearAttention), {
        "focusing_factor": float(cfg.p), "kernel_size": int(cfg.kernel_size), "pos_encoding": True, "pos_size": tuple(grid)}


def token_mixer(cfg: Config, dim: int, heads: int, grid: tuple[int, int]) -> nn.Module:
    """The attention module of ``cfg`` (see the table in the module docstring)."""
    cls, kwargs = mixer_args(cfg, grid)
    return cls(dim, heads, **kwargs)


class PerHeadFocus(FocusedLinearAttention):
    """``FocusedLinearAttention`` with f_p over each head's d channels instead of a token's C channels.

    Over all C channels (the paper's code), one head's large channels can shrink the other heads'
    features after the norm is restored; per head, every head keeps its own norm. Same parameters.
    """

    def features(self, q, k, fast: bool = True):
        phi_q, phi_k = self._plain(q, k)
        scale = F.softplus(self.scale.to(phi_q.dtype)).reshape(self.num_heads, -1, 1)  # (heads, d, 1)
        out = []
        for t in (phi_q, phi_k):
            t = t.unflatten(1, (self.num_heads, -1))  # (B, heads, d, N)
            if fast:
                t = kernels.focused_kernel(t, scale, self.focusing_factor, dim=-2)
            else:
                t = Fn.focus(Fn.relu_kernel(t).transpose(-2, -1) / scale[..., 0][:, None], self.focusing_factor).transpose(-2, -1)
            out.append(t.flatten(1, 2))
        return out

    def _plain(self, q, k):
        """q, k with the positional encoding added, (B, C, N) in fp32, before any feature map."""
        q, k = q.float(), k.float()
        if self.pos is not None:
            pos = self.pos.float()
            if pos.shape[-2:] != k.shape[-2:]:
                pos = F.interpolate(pos, size=tuple(k.shape[-2:]), mode="bilinear", align_corners=False)
            k = k + pos
        return q.flatten(2), k.flatten(2)


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
              device=None, checkpoints: int = 10, **_) -> tuple[dict, MixerNet]:
    """Train one model and score it: (CSV row, trained model in eval mode).

    Seeded: the initial weights by ``torch.manual_seed(seed)``, the training batches by a
    generator of their own; on the CPU the same call returns the same numbers. The metric is
    also taken on the first 64 test items at ``checkpoints`` evenly spaced steps: ``steps90`` in
    the row is the first of them at 90 % of the final value (how early the run had learnt).
    """
    device = pick_device(device)
    # on the CPU one thread: the same numbers in a worker, in this process and in the notebook (the order of
    # float sums depends on the thread count), and no two threads waiting on each other on a busy machine
    with torch_threads(1 if device.type == "cpu" else None):
        return _train(task, cfg, seed, dim, heads, depth, steps, batch, lr, device, checkpoints)


def _train(task, cfg, seed, dim, heads, depth, steps, batch, lr, device, checkpoints):
    cpu0 = time.process_time()  # this process's CPU time: with one thread, what the run would take on an idle core
    torch.manual_seed(seed)
    model = MixerNet(task.stem(dim), cfg, dim, heads, depth, task.classes, task.grid).to(device)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "pos" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "pos" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.05}, {"params": rest, "weight_decay": 0.0}], lr=lr)
    data = torch.Generator().manual_seed(seed)
    weight = None if task.class_weights is None else task.class_weights.to(device)
    every = max(1, steps // max(1, checkpoints))
    curve, train_s = [], 0.0
    for step in range(steps):
        model.train()
        t0 = time.perf_counter()
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
        train_s += time.perf_counter() - t0
        if checkpoints and (step + 1) % every == 0 and step + 1 < steps:
            model.eval()
            curve.append((step + 1, task.evaluate(model, device, limit=64)))
    model.eval()
    value = task.evaluate(model, device)
    curve.append((steps, task.evaluate(model, device, limit=64)))
    final = curve[-1][1]
    steps90 = next(s for s, v in curve if v >= 0.9 * final)
    row = {"task": task.name, "setting": task.setting, "variant": cfg.variant, "p": cfg.p,
           "kernel_size": cfg.kernel_size, "per_head": int(cfg.per_head), "lr": lr, "seed": seed,
           "metric": task.metric, "value": value, "steps90": steps90, "steps": steps,
           **task.probe(model, device), "params": sum(p.numel() for p in model.parameters()), "train_s": train_s}
    row["cpu_s"] = time.process_time() - cpu0
    return row, model
