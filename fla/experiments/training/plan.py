"""How much training fits the hardware at hand (notebook 06, section 2): facts about the machine in, a plan out.

``plan_for(hardware, experiment)`` is a pure function: variants, seeds, epochs and image size, and the estimated
minutes with how they were derived. ``hardware()`` reads the facts of this machine.

Where the per-epoch costs come from (docs/training.md, "Measured"):

- **CPU, measured.** A whole run of YOLOv8n at 320 px on the 100 training images (training pass plus
  validation on 100 images every epoch), alone on a 2-core AMD EPYC VM: 972–1094 s for 60 epochs (the shipped
  runs, on a 2-core Intel Xeon VM, took 343–436 s). The slowest, 1094 s / 60 = 18.2 s per epoch, is the figure
  used, so that the budget holds on the slower machine; it scales with the pixels, (imgsz / 320)², and with the
  cores, 2 / cores (no credit past 8 cores: the data loader and NMS do not scale that far).
- **GPU, an estimate, not measured here** (no GPU was at hand when this was written): a T4-class GPU with
  AMP, batch 16, 640 px, taken as 5 s per epoch including validation; most of it is the CPU side of a Colab
  runtime (2 cores decoding and augmenting images), not the GPU. Faster GPUs finish sooner.
- Per run, a fixed overhead for building the model, the first epoch's warm-up and scoring ``best.pt`` on the
  test split: 20 s on a CPU, 60 s on a GPU (ultralytics' AMP check, plots).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["Hardware", "Plan", "hardware", "plan_for", "CPU_S_PER_EPOCH_320", "GPU_S_PER_EPOCH_640", "BUDGET_MIN"]

CPU_S_PER_EPOCH_320 = 1094 / 60  # measured: the slowest whole 60-epoch run at 320 px on 2 cores, per epoch
CPU_CORES_MEASURED = 2
GPU_S_PER_EPOCH_640 = 5.0  # an estimate for a T4-class GPU (see the module's docstring)
OVERHEAD_S = {"cpu": 20.0, "cuda": 60.0}
#: what the default ("mini") run must fit in, minutes
BUDGET_MIN = {"cpu": 10, "cuda": 20}
SAFETY = 0.8  # plan for 80% of the budget: the per-epoch figures are one machine's, the estimate is rough


@dataclass(frozen=True)
class Hardware:
    """What the plan needs to know: ``device`` "cpu" or "cuda", the CPU cores, the GPU's name (None on a CPU)."""

    device: str
    cores: int
    gpu: str | None = None


@dataclass(frozen=True)
class Plan:
    """Which runs to train and how long they should take: ``minutes`` (estimated) and ``how`` (its derivation)."""

    experiment: str
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    epochs: int
    imgsz: int
    minutes: float
    how: str

    @property
    def runs(self) -> list[tuple[str, int]]:
        """(variant, seed) in training order: seed by seed, so that each finished seed is a complete paired set."""
        return [(v, s) for s in self.seeds for v in self.variants]


def hardware() -> Hardware:
    """The facts of this machine: a GPU when torch sees one, and the CPU cores."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return Hardware("cuda" if gpu else "cpu", os.cpu_count() or 1, gpu)


def seconds_per_epoch(hw: Hardware, imgsz: int) -> tuple[float, str]:
    """Estimated seconds per epoch (training and validation, 100 images each) at ``imgsz``, and where it comes from."""
    pixels = (imgsz / (320 if hw.device == "cpu" else 640)) ** 2
    if hw.device == "cpu":
        speedup = min(hw.cores, 8) / CPU_CORES_MEASURED
        s = CPU_S_PER_EPOCH_320 * pixels / speedup
        return s, (f"{CPU_S_PER_EPOCH_320:.1f} s/epoch measured at 320 px on {CPU_CORES_MEASURED} cores "
                   f"(docs/training.md) × (imgsz/320)² {pixels:.2f} × {CPU_CORES_MEASURED}/{min(hw.cores, 8)} cores")
    s = GPU_S_PER_EPOCH_640 * pixels
    return s, (f"{GPU_S_PER_EPOCH_640:.1f} s/epoch at 640 px assumed for a T4-class GPU (an estimate, not a "
               f"measurement) × (imgsz/640)² {pixels:.2f}")


def plan_for(hw: Hardware, experiment: str = "mini", quick: bool = False) -> Plan:
    """The runs for ``experiment`` on ``hw``:

    - ``"mini"``: base vs c2f_fla, one seed; 320 px on a CPU, 640 px on a GPU; as many epochs as fit in 80% of
      10 minutes (CPU) or 20 minutes (GPU), at most 60 (CPU) or 100 (GPU, the blog post's schedule);
    - ``"full"``: base, c2f_fla, neck_fla × seeds 0 1 2; 60 epochs at 320 px on a CPU (the shipped experiment),
      100 epochs at 640 px on a GPU;
    - ``quick=True`` (CI): base and c2f_fla, seeds 0 and 1, one epoch at 160 px, whatever was asked.
    """
    if experiment not in ("mini", "full"):
        raise ValueError(f"experiment must be 'mini' or 'full', not {experiment!r}")
    if hw.device not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu' or 'cuda', not {hw.device!r}")
    gpu = hw.device == "cuda"
    if quick:
        variants, seeds, imgsz, epochs = ("base", "c2f_fla"), (0, 1), 160, 1
    elif experiment == "full":
        variants, seeds, imgsz, epochs = ("base", "c2f_fla", "neck_fla"), (0, 1, 2), (640 if gpu else 320), (100 if gpu else 60)
    else:
        variants, seeds, imgsz = ("base", "c2f_fla"), (0,), (640 if gpu else 320)
        per_epoch, _ = seconds_per_epoch(hw, imgsz)
        per_run = SAFETY * BUDGET_MIN[hw.device] * 60 / (len(variants) * len(seeds)) - OVERHEAD_S[hw.device]
        epochs = max(1, min(100 if gpu else 60, math.floor(per_run / per_epoch)))
    per_epoch, source = seconds_per_epoch(hw, imgsz)
    n = len(variants) * len(seeds)
    seconds = n * (epochs * per_epoch + OVERHEAD_S[hw.device])
    where = hw.gpu if gpu else f"CPU, {hw.cores} cores"
    how = (f"{n} runs × ({epochs} epochs × {per_epoch:.1f} s + {OVERHEAD_S[hw.device]:.0f} s per run) on {where}; "
           f"per epoch: {source}")
    return Plan(experiment, variants, seeds, epochs, imgsz, seconds / 60, how)
