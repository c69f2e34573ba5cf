"""The tasks of the ablation (``fla ablate``, notebook 04): their data, their stems, their metric.

All put tokens on a 2-D grid, so every token mixer sees a feature map (B, C, H, W):

- **recall**: multi-query associative recall (MQAR, Zoology, Arora et al. 2023) on a grid.
  ``pairs`` cells hold a key *and* its value; ``queries`` other cells hold one of those keys and
  must answer the value bound to it; the rest are blank. Cells are shuffled, so where a pair sits
  tells nothing: a query must find the one cell with its key among all N, which is what sharp
  attention does and what a rank-d linear attention state struggles with once there are many
  more pairs than head channels. Synthetic: fresh batches from a seeded generator, a fixed test set.
- **needle**: a few recall pairs (far fewer than head channels) among N − 2·pairs distractor cells,
  each a fresh random vector with the norm of a normalised token (``needle_batch``): capacity is
  ample, and what binds is how sharply a query's weights pick its one cell out of N.
- **helmet**: per-patch labels background / helmet / head on a 20 × 20 grid of the helmet photos
  (``fla.data``). The stem is fixed and cached (each 8 × 8 pixel patch of the 160 × 160 resized
  photo, standardised per colour channel); a trained linear patch embedding follows, as in ViT.
  A patch is labelled with the class of the smallest box that covers its centre, or whose own
  centre falls in it, so every box marks at least one patch. Metric: mean IoU over the three
  classes on the val split.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from ...figures import panels as page_panels

__all__ = ["IGNORE", "RecallBatch", "recall_batch", "NeedleBatch", "needle_batch", "RecallTask", "NeedleTask", "HelmetTask", "HelmetPatches", "helmet_patches", "plot_patches", "patch_labels",
           "confusion", "mean_iou", "HELMET_CLASSES"]

#: target value of cells that carry no answer (``F.cross_entropy``'s default ``ignore_index``).
IGNORE = -100
BLANK, PAIR, QUERY = 0, 1, 2  # the role of a recall cell
HELMET_CLASSES = ("background", "helmet", "head")


@dataclass
class RecallBatch:
    """One batch of the recall task, every field (B, H, W) long.

    ``role``: 0 blank, 1 pair, 2 query. ``key``: 1..keys on pair and query cells, 0 elsewhere.
    ``value``: 1..values on pair cells, 0 elsewhere (a query does not see its answer).
    ``target``: value - 1 on query cells (a class in [0, values)), ``IGNORE`` elsewhere.
    """

    role: torch.Tensor
    key: torch.Tensor
    value: torch.Tensor
    target: torch.Tensor

    def to(self, device) -> "RecallBatch":
        return type(self)(*(t.to(device) for t in vars(self).values()))

    def take(self, start: int, stop: int) -> "RecallBatch":
        """Grids ``start:stop`` of the batch."""
        return type(self)(*(t[start:stop] for t in vars(self).values()))

    def __len__(self) -> int:
        return self.role.shape[0]


@dataclass
class NeedleBatch(RecallBatch):
    """A needle batch: a recall batch whose every other cell is a distractor (role 0) showing ``noise``.

    ``noise``: (B, H, W, width) float, on distractor cells a fresh Gaussian vector scaled to norm
    sqrt(width) (RMS 1, as a token after a LayerNorm), 0 on pair and query cells.
    """

    noise: torch.Tensor = None


def recall_batch(batch: int, grid: tuple[int, int] = (8, 8), pairs: int = 16, queries: int = 16, keys: int = 64,
                 values: int = 64, generator: torch.Generator | None = None) -> RecallBatch:
    """``batch`` random recall grids (see the module docstring); deterministic for a seeded ``generator``.

    Each grid: ``pairs`` distinct keys with random values, ``queries`` of those keys asked once
    each, all on random cells. The knob: ``pairs`` against the head dim of the model.
    """
    h, w = grid
    n = h * w
    if not 0 < queries <= pairs <= keys:
        raise ValueError(f"need 0 < queries <= pairs <= keys, got queries={queries}, pairs={pairs}, keys={keys}")
    if pairs + queries > n:
        raise ValueError(f"{pairs} pairs + {queries} queries do not fit on a {h}x{w} grid ({n} cells)")
    g = generator
    key_ids = torch.rand(batch, keys, generator=g).argsort(dim=1)[:, :pairs] + 1  # distinct keys per grid
    value_ids = torch.randint(1, values + 1, (batch, pairs), generator=g)
    asked = torch.rand(batch, pairs, generator=g).argsort(dim=1)[:, :queries]  # which pairs are queried
    cells = torch.rand(batch, n, generator=g).argsort(dim=1)[:, :pairs + queries]
    pair_cells, query_cells = cells[:, :pairs], cells[:, pairs:]

    role = torch.zeros(batch, n, dtype=torch.long)
    key, value = torch.zeros_like(role), torch.zeros_like(role)
    target = torch.full_like(role, IGNORE)
    role.scatter_(1, pair_cells, PAIR)
    role.scatter_(1, query_cells, QUERY)
    key.scatter_(1, pair_cells, key_ids)
    key.scatter_(1, query_cells, key_ids.gather(1, asked))
    value.scatter_(1, pair_cells, value_ids)
    target.scatter_(1, query_cells, value_ids.gather(1, asked) - 1)
    return RecallBatch(*(rearrange(t, "b (h w) -> b h w", h=h) for t in (role, key, value, target)))


def needle_batch(batch: int, grid: tuple[int, int] = (16, 16), pairs: int = 4, keys: int = 64, values: int = 16,
                 width: int = 64, generator: torch.Generator | None = None) -> NeedleBatch:
    """``batch`` needle grids: ``pairs`` key–value cells, each key asked once by a query cell, and every
    other cell a distractor: a random vector of norm sqrt(``width``), fresh per grid (notebook 04).

    Nothing marks a distractor but its random direction (no role or key embedding the model could
    learn to mute), and its norm is that of any token after the pre-norm, so it cannot be scaled
    away: a query's attention must pick its key's one cell among N − 2·pairs such vectors.
    """
    b = recall_batch(batch, grid, pairs, pairs, keys, values, generator)
    h, w = grid
    noise = torch.randn(batch, h, w, width, generator=generator)
    noise = noise / noise.norm(dim=-1, keepdim=True) * width ** 0.5
    noise = noise * (b.role == BLANK)[..., None]
    return NeedleBatch(b.role, b.key, b.value, b.target, noise)


# ---------------------------------------------------------------------------------------------- helmet


@dataclass
class HelmetPatches:
    """One split of the helmet photos, resized to ``grid * patch`` pixels square (aspect not kept).

    ``images``: (n, 3, S, S) float, standardised per colour channel with the *train* split's
    statistics; ``labels``: (n, grid, grid) long in {0 background, 1 helmet, 2 head}.
    """

    images: torch.Tensor
    labels: torch.Tensor
    names: list[str]
    patch: int
    mean: torch.Tensor  # (1, 3, 1, 1) what was subtracted, for pictures
    std: torch.Tensor

    def __len__(self) -> int:
        return len(self.names)

    def photo(self, index: int) -> np.ndarray:
        """(S, S, 3) RGB in [0, 1] of image ``index``, as the model saw it (resized, standardisation undone)."""
        x = self.images[index:index + 1] * self.std + self.mean
        return rearrange(x[0], "c h w -> h w c").clamp(0, 1).numpy()


def plot_patches(patches: HelmetPatches, index: int, predictions: dict | None = None):
    """Photo ``index`` with its patch labels, and next to it each model's predicted labels (notebook 04).

    ``predictions``: title -> (grid, grid) predicted classes. Helmet patches orange, head patches red.
    """
    from matplotlib.colors import ListedColormap

    panels = {"labels": patches.labels[index], **(predictions or {})}
    cmap = ListedColormap([(0, 0, 0, 0), (1.0, 0.6, 0.0, 0.55), (0.9, 0.0, 0.0, 0.6)])
    fig, axes = page_panels(len(panels), per_row=3, panel_height=2.9)  # rows of three: legible at the page's width
    size = patches.images.shape[-1]
    for ax, (title, grid) in zip(axes, panels.items()):
        ax.imshow(patches.photo(index))
        ax.imshow(np.asarray(grid), cmap=cmap, vmin=0, vmax=2, extent=(0, size, size, 0), interpolation="nearest")
        ax.set(title=title, xticks=[], yticks=[])
    fig.suptitle(f"{patches.names[index]} · orange: {HELMET_CLASSES[1]}, red: {HELMET_CLASSES[2]}", fontsize=9)
    fig.tight_layout()
    return fig


def patch_labels(boxes: np.ndarray, grid: int) -> np.ndarray:
    """(grid, grid) labels from YOLO boxes ``(k, 5)``: class (0 helmet, 1 head), x, y, w, h in [0, 1].

    A patch gets the class (+1) of the smallest box that covers its centre or whose centre lies
    in the patch; 0 (background) if none.
    """
    labels = np.zeros((grid, grid), dtype=np.int64)
    centres = (np.arange(grid) + 0.5) / grid
    for cls, x, y, w, h in sorted(boxes.tolist(), key=lambda b: -b[3] * b[4]):  # largest first: small ones win
        cols = (centres >= x - w / 2) & (centres <= x + w / 2)
        rows = (centres >= y - h / 2) & (centres <= y + h / 2)
        labels[np.ix_(rows, cols)] = int(cls) + 1
        labels[min(int(y * grid), grid - 1), min(int(x * grid), grid - 1)] = int(cls) + 1
    return labels


@lru_cache(maxsize=8)
def _load_split(data_yaml: str, split: str, size: int, grid: int):
    from PIL import Image

    from ...yolo.datasets import label_path, split_images

    paths = split_images(data_yaml, split)
    pixels, labels = [], []
    for p in paths:
        img = Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)
        pixels.append(np.asarray(img, dtype=np.float32) / 255.0)
        txt = label_path(p)
        rows = [line.split() for line in txt.read_text().splitlines() if line.strip()] if txt.is_file() else []
        labels.append(patch_labels(np.array(rows, dtype=np.float64).reshape(-1, 5), grid))
    images = torch.from_numpy(rearrange(np.stack(pixels), "n h w c -> n c h w").copy())
    return images, torch.from_numpy(np.stack(labels)), [p.name for p in paths]


def helmet_patches(data_yaml, split: str, grid: int = 20, patch: int = 8) -> HelmetPatches:
    """The ``split`` ("train", "val", "test") of the helmet subset at ``data_yaml`` as patch-labelled images.

    Loaded once per process (cached): the photos are decoded and resized a single time for all
    variants and seeds. Pixels are standardised with the train split's per-channel mean and std.
    """
    key = str(Path(data_yaml).resolve())
    images, labels, names = _load_split(key, split, grid * patch, grid)
    train = images if split == "train" else _load_split(key, "train", grid * patch, grid)[0]
    mean, std = train.mean(dim=(0, 2, 3), keepdim=True), train.std(dim=(0, 2, 3), keepdim=True)
    return HelmetPatches((images - mean) / std, labels, names, patch, mean, std)


def confusion(pred: torch.Tensor, target: torch.Tensor, classes: int) -> torch.Tensor:
    """(classes, classes) counts, rows = target, columns = prediction; ``IGNORE`` targets skipped."""
    keep = target != IGNORE
    idx = target[keep] * classes + pred[keep]
    return torch.bincount(idx, minlength=classes * classes).reshape(classes, classes)


def mean_iou(conf: torch.Tensor) -> float:
    """Mean over classes of TP / (TP + FP + FN); a class absent from both target and prediction is left out."""
    conf = conf.double()
    tp = conf.diag()
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    return float((tp[present] / union[present]).mean())


# ---------------------------------------------------------------------------------------------- the tasks


class RecallTask:
    """MQAR on a ``grid`` (see :func:`recall_batch`): stem = role + key + value embeddings summed per cell.

    Training batches are fresh grids from the run's seeded generator; the test set is one fixed
    draw (``test_seed``), the same for every variant and seed. Metric: accuracy over query cells.
    """

    name, metric = "recall", "accuracy"
    class_weights = None  # every query counts the same

    def __init__(self, grid=(8, 8), pairs: int = 16, queries: int = 16, keys: int = 64, values: int = 64,
                 test_size: int = 512, test_seed: int = 2**31 - 1):
        self.grid, self.pairs, self.queries, self.keys, self.values = tuple(grid), pairs, queries, keys, values
        self.classes = values
        self.test = self._draw(test_size, torch.Generator().manual_seed(test_seed))

    @property
    def setting(self) -> str:
        """What tells this task's runs apart from another size of it in the CSV."""
        return f"pairs={self.pairs}"

    def _draw(self, size, generator):
        return recall_batch(size, self.grid, self.pairs, self.queries, self.keys, self.values, generator)

    def describe(self) -> str:
        h, w = self.grid
        return f"recall: {h}x{w} grid, {self.pairs} pairs, {self.queries} queries, {self.keys} keys, {self.values} values"

    def stem(self, dim: int) -> torch.nn.Module:
        return RecallEmbedding(dim, self.keys, self.values)

    def batch(self, size: int, generator: torch.Generator, device) -> tuple[RecallBatch, torch.Tensor]:
        b = self._draw(size, generator).to(device)
        return b, b.target

    @torch.no_grad()
    def probe(self, model: torch.nn.Module, device, size: int = 32) -> dict:
        """Answer mass, row entropy and the focused keys' directions on the first ``size`` test grids (``probes.recall_probe``)."""
        from .probes import recall_probe

        return recall_probe(model, self.test.take(0, size).to(device))

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, device, batch: int = 128, limit: int | None = None) -> float:
        hits = total = 0
        n = len(self.test) if limit is None else min(limit, len(self.test))
        for i in range(0, n, batch):
            b = self.test.take(i, min(i + batch, n)).to(device)
            asked = b.target != IGNORE
            hits += int((model(b).argmax(dim=1)[asked] == b.target[asked]).sum())
            total += int(asked.sum())
        return hits / total


class RecallEmbedding(torch.nn.Module):
    """A recall grid -> (B, dim, H, W): the sum of a role, a key and a value embedding per cell."""

    def __init__(self, dim: int, keys: int, values: int):
        super().__init__()
        self.role = torch.nn.Embedding(3, dim)
        self.key = torch.nn.Embedding(keys + 1, dim)
        self.value = torch.nn.Embedding(values + 1, dim)

    def forward(self, b: RecallBatch) -> torch.Tensor:
        return rearrange(self.role(b.role) + self.key(b.key) + self.value(b.value), "b h w c -> b c h w")


#: the needle models are also scored on these grid sides (N = 64, 256, 1024 tokens)
EVAL_SIDES = (8, 16, 32)


class NeedleTask(RecallTask):
    """A few pairs among many distractors (see :func:`needle_batch`): sharpness, not state capacity, binds.

    ``pairs`` (4) is far below the head dim, so a linear-attention state has room for every pair;
    what grows with N = H·W is the number of distractors each query's weights must be spread over.
    Stem: the recall embeddings on pair and query cells, the distractor's own vector elsewhere
    (so ``width`` must equal the model dim). Metric: accuracy over query cells.
    """

    name = "needle"

    def __init__(self, grid=(16, 16), pairs: int = 4, keys: int = 64, values: int = 16, width: int = 64,
                 test_size: int = 128, test_seed: int = 2**31 - 1, eval_sides: tuple[int, ...] = EVAL_SIDES):
        self.width, self.eval_sides, self._other = width, tuple(eval_sides), {}
        super().__init__(grid, pairs, pairs, keys, values, test_size, test_seed)

    def at(self, side: int) -> "NeedleTask":
        """The same task on a side × side grid (its own fixed test set): where a model trained here is also scored."""
        if (side, side) == self.grid:
            return self
        if side not in self._other:
            self._other[side] = NeedleTask((side, side), self.pairs, self.keys, self.values, self.width, 64,
                                           eval_sides=())
        return self._other[side]

    @torch.no_grad()
    def probe(self, model, device, size: int = 32) -> dict:
        """The recall probes here, plus accuracy and answer mass of the same model on the other grid sizes
        (``acc_N``, ``mass_N`` for N = side²): how its weights dilute as distractors are added."""
        from .probes import recall_probe

        out = super().probe(model, device, size)
        for side in self.eval_sides:
            other = self.at(side)
            n = side * side
            out[f"acc_{n}"] = other.evaluate(model, device, limit=64)
            out[f"mass_{n}"] = recall_probe(model, other.test.take(0, size).to(device))["mass"]
        return out

    @property
    def setting(self) -> str:
        return f"N={self.grid[0] * self.grid[1]}"

    def _draw(self, size, generator):
        return needle_batch(size, self.grid, self.pairs, self.keys, self.values, self.width, generator)

    def describe(self) -> str:
        h, w = self.grid
        return (f"needle: {h}x{w} grid (N = {h * w}), {self.pairs} pairs asked once each, "
                f"{h * w - 2 * self.pairs} distractors, {self.keys} keys, {self.values} values")

    def stem(self, dim: int) -> torch.nn.Module:
        if dim != self.width:
            raise ValueError(f"needle distractors are {self.width}-vectors: the model dim must be {self.width}, got {dim}")
        return NeedleEmbedding(dim, self.keys, self.values)


class NeedleEmbedding(RecallEmbedding):
    """Pair and query cells as in recall; a distractor cell is its noise vector and nothing else."""

    def forward(self, b: NeedleBatch) -> torch.Tensor:
        real = (b.role != BLANK)[..., None]
        x = (self.role(b.role) + self.key(b.key) + self.value(b.value)) * real + b.noise
        return rearrange(x, "b h w c -> b c h w")


class HelmetTask:
    """Per-patch background / helmet / head on the helmet photos (see :func:`helmet_patches`).

    Stem: one trained linear embedding per ``patch`` × ``patch`` pixel patch (a strided conv, as
    ViT's). Training batches: random train images, flipped left-right at random; the loss weighs
    the rare classes up (``class_weights``). Metric: mean IoU of the three classes over all val patches.
    """

    name, metric = "helmet", "mIoU"
    classes = len(HELMET_CLASSES)

    def __init__(self, data_yaml, grid: int = 20, patch: int = 8):
        self.grid, self.patch = (grid, grid), patch
        self.train = helmet_patches(data_yaml, "train", grid, patch)
        self.val = helmet_patches(data_yaml, "val", grid, patch)
        # ~93 % of patches are background: weigh each class by sqrt(background count / its count) in the loss
        counts = torch.bincount(self.train.labels.flatten(), minlength=self.classes).double()
        self.class_weights = (counts.max() / counts.clamp_min(1)).sqrt().float()
        self._on = None  # (device, train images, train labels): moved once per device

    @property
    def setting(self) -> str:
        return f"grid={self.grid[0]}"  # not empty: the CSV reads an empty text cell as missing

    def probe(self, model, device) -> dict:
        return {}

    def describe(self) -> str:
        g, p = self.grid[0], self.patch
        return f"helmet: {len(self.train)} train / {len(self.val)} val photos at {g * p}px, {g}x{g} patches of {p}px"

    def stem(self, dim: int) -> torch.nn.Module:
        return torch.nn.Conv2d(3, dim, self.patch, stride=self.patch)

    def _device_data(self, device):
        if self._on is None or self._on[0] != device:
            self._on = (device, self.train.images.to(device), self.train.labels.to(device))
        return self._on[1:]

    def batch(self, size: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        images, labels = self._device_data(device)
        idx = torch.randint(0, len(self.train), (size,), generator=generator)
        flip = (torch.rand(size, generator=generator) < 0.5).to(device)
        idx = idx.to(device)
        x, y = images[idx], labels[idx]
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
        y = torch.where(flip[:, None, None], y.flip(-1), y)
        return x, y

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module, device, batch: int = 50, limit: int | None = None) -> float:
        conf = torch.zeros(self.classes, self.classes, dtype=torch.long)
        n = len(self.val) if limit is None else min(limit, len(self.val))
        for i in range(0, n, batch):
            j = min(i + batch, n)
            pred = model(self.val.images[i:j].to(device)).argmax(dim=1).cpu()
            conf += confusion(pred, self.val.labels[i:j], self.classes)
        return mean_iou(conf)
