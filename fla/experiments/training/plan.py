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

Every per-epoch figure here is a whole epoch, training pass *and* validation, as a run spends it; the
``s_per_epoch`` column of ``results.csv`` is the training pass alone (the cost of the model), so the two are
not compared. After the first run, ``replan`` reads that run's whole epochs from ultralytics' log
(``epoch_seconds``) and, where they took longer than estimated, fits the epochs to the budget again: the
GPU figure above is an assumption, and a shared Colab runtime may be slower than a T4 alone.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["Hardware", "Plan", "hardware", "plan_for", "replan", "epoch_seconds", "CPU_S_PER_EPOCH_320",
           "GPU_S_PER_EPOCH_640", "BUDGET_MIN"]

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
        epochs = _epochs_in_budget(hw, len(variants) * len(seeds), seconds_per_epoch(hw, imgsz)[0])
    return _priced(Plan(experiment, variants, seeds, epochs, imgsz, 0.0, ""), hw, *seconds_per_epoch(hw, imgsz))


def _epochs_in_budget(hw: Hardware, runs: int, per_epoch: float) -> int:
    """As many epochs as fit ``runs`` runs in SAFETY of the budget, at most 100 (GPU) or 60 (CPU), at least 1."""
    per_run = SAFETY * BUDGET_MIN[hw.device] * 60 / runs - OVERHEAD_S[hw.device]
    return max(1, min(100 if hw.device == "cuda" else 60, math.floor(per_run / per_epoch)))


def _priced(p: Plan, hw: Hardware, per_epoch: float, source: str) -> Plan:
    """``p`` with its minutes and their derivation at ``per_epoch`` seconds per whole epoch."""
    n = len(p.runs)
    seconds = n * (p.epochs * per_epoch + OVERHEAD_S[hw.device])
    where = hw.gpu if hw.device == "cuda" else f"CPU, {hw.cores} cores"
    how = (f"{n} runs × ({p.epochs} epochs × {per_epoch:.1f} s + {OVERHEAD_S[hw.device]:.0f} s per run) on {where}; "
           f"per epoch: {source}")
    return Plan(p.experiment, p.variants, p.seeds, p.epochs, p.imgsz, seconds / 60, how)


def epoch_seconds(run_log: list[dict]) -> float:
    """Seconds per whole epoch (training and validation) of a finished run, from ultralytics' log of it
    (``report.read_epochs``): its ``time`` column is the seconds elapsed at the end of each epoch."""
    if not run_log:
        raise ValueError("the run has no epoch log (results.csv in its folder)")
    return run_log[-1]["time"] / len(run_log)


def replan(p: Plan, hw: Hardware, measured: float) -> Plan:
    """``p`` again after its first run, which took ``measured`` seconds per whole epoch (``epoch_seconds``).

    Where that is no more than the estimate, ``p`` is kept. Else the estimate becomes the measurement, and a
    "mini" plan gets the epochs that fit its budget at that pace (never more than before; the runs of a paired
    set train alike, so a first run of other epochs is trained again). The "full" experiment's epochs are its
    protocol: only its estimate changes."""
    estimate, _ = seconds_per_epoch(hw, p.imgsz)
    if measured <= estimate:
        return p
    epochs = p.epochs
    if p.experiment == "mini":
        epochs = min(p.epochs, _epochs_in_budget(hw, len(p.runs), measured))
    source = f"{measured:.1f} s/epoch measured on this machine's first run (the estimate was {estimate:.1f} s)"
    return _priced(Plan(p.experiment, p.variants, p.seeds, epochs, p.imgsz, 0.0, ""), hw, measured, source)
