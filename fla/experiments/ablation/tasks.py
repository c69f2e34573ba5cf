"""The tasks of the ablation (``fla ablate``, notebook 04): their data, their stems, their metric.

All put tokens on a 2-D grid, so every token mixer sees a feature map (B, C, H, W). Each task is a
frozen dataclass of its settings (its test set drawn on first use), so a plan can name a task's runs
without building it.

- **recall**: multi-query associative recall (MQAR, Zoology, Arora et al. 2023) on a grid.
  ``pairs`` cells hold a key *and* its value; ``queries`` other cells hold one of those keys and
  must answer the value bound to it; the rest are blank. Cells are shuffled, so where a pair sits
  tells nothing: a query must find the one cell with its key among all N, which is what sharp
  attention does and what a rank-d linear attention state struggles with once there are many
  more pairs than head channels. Synthetic: fresh batches from a seeded generator, a fixed test set.
- **retrieval**: where dilution reaches the answer. Every cell but the queries holds a key *vector*
  drawn from one distribution (a random unit direction, scaled) and a value from a few classes; a
  query holds a copy of one cell's key. No threshold on a key tells the answer's cell from the
  others, and the values vote coherently: the weight a query leaks to other cells votes for their
  classes, against the answer. The full preset trains at N = 64 and scores at N = 64, 144, 256, 1024.
  :func:`sharp_reader_accuracy` is the task read by softmax(β q·k) on the raw keys: β → ∞ scores 1.
- **helmet**: per-patch labels background / helmet / head on a 20 × 20 grid of the helmet photos
  (``fla.data``). The stem is fixed and cached (each 8 × 8 pixel patch of the 160 × 160 resized
  photo, standardised per colour channel); a trained linear patch embedding follows, as in ViT.
  A patch is labelled with the class of the smallest box that covers its centre, or whose own
  centre falls in it, so every box marks at least one patch. Metric: mean IoU over the three
  classes on the val split; predicting background everywhere scores :meth:`HelmetTask.floor`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from ...figures import panels as page_panels

__all__ = ["IGNORE", "RecallBatch", "recall_batch", "RetrievalBatch", "retrieval_batch", "sharp_reader_accuracy",
           "RecallTask", "RetrievalTask", "HelmetTask", "TASK_TYPES", "HelmetPatches", "helmet_patches", "plot_patches",
           "patch_labels", "confusion", "mean_iou", "HELMET_CLASSES"]

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

    def answer_cells(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For every query cell: (grid index, query cell, the cell holding its key), flat cell indices."""
        role, key = self.role.flatten(1), self.key.flatten(1)
        bi, qi = torch.nonzero(role == QUERY, as_tuple=True)
        same = (key[bi] == key[bi, qi][:, None]) & (role[bi] == PAIR)  # (Q, N): the pair cell with the query's key
        return bi, qi, same.float().argmax(dim=1)


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


@dataclass
class RetrievalBatch(RecallBatch):
    """A retrieval batch: every non-query cell is a pair (role 1) whose key is a vector, ``vectors`` (B, H, W, key_dim).

    ``key``: an id per grid (1..N − queries on pair cells, the asked pair's id on a query), used only to find the
    answer cell; the model sees ``vectors`` (a query's is a copy of its pair's), ``value`` (1..values on pair
    cells, 0 on queries) and ``role``.
    """

    vectors: torch.Tensor = None


def retrieval_batch(batch: int, grid: tuple[int, int] = (16, 16), queries: int = 8, values: int = 4, key_dim: int = 8,
                    generator: torch.Generator | None = None) -> RetrievalBatch:
    """``batch`` retrieval grids (see the module docstring); deterministic for a seeded ``generator``.

    Keys: independent random directions in ``key_dim`` dimensions scaled to norm sqrt(key_dim), so the
    answer's key and every other key come from one distribution. Values: uniform over ``values`` classes.
    """
    h, w = grid
    n = h * w
    pairs = n - queries
    if not 0 < queries < n:
        raise ValueError(f"need 0 < queries < N = {n}, got queries={queries}")
    g = generator
    vectors = torch.randn(batch, pairs, key_dim, generator=g)
    vectors = vectors / vectors.norm(dim=-1, keepdim=True) * key_dim ** 0.5
    value_ids = torch.randint(1, values + 1, (batch, pairs), generator=g)
    asked = torch.rand(batch, pairs, generator=g).argsort(dim=1)[:, :queries]
    cells = torch.rand(batch, n, generator=g).argsort(dim=1)
    pair_cells, query_cells = cells[:, :pairs], cells[:, pairs:]

    role = torch.full((batch, n), PAIR, dtype=torch.long)
    role.scatter_(1, query_cells, QUERY)
    ids = torch.arange(1, pairs + 1).expand(batch, pairs)
    key, value = torch.zeros_like(role), torch.zeros_like(role)
    target = torch.full_like(role, IGNORE)
    key.scatter_(1, pair_cells, ids)
    key.scatter_(1, query_cells, asked + 1)
    value.scatter_(1, pair_cells, value_ids)
    target.scatter_(1, query_cells, value_ids.gather(1, asked) - 1)
    vec = torch.zeros(batch, n, key_dim)
    vec.scatter_(1, pair_cells[..., None].expand(-1, -1, key_dim), vectors)
    vec.scatter_(1, query_cells[..., None].expand(-1, -1, key_dim), vectors.gather(1, asked[..., None].expand(-1, -1, key_dim)))
    flat = (rearrange(t, "b (h w) -> b h w", h=h) for t in (role, key, value, target))
    return RetrievalBatch(*flat, rearrange(vec, "b (h w) c -> b h w c", h=h))


def sharp_reader_accuracy(b: RetrievalBatch, beta: float = math.inf) -> float:
    """Accuracy of the reader that attends with softmax(β q·k) over the pair cells' raw keys and answers the
    class with the most weight: β = ∞ (argmax) finds every answer (1.0); β = 0 votes with all cells alike."""
    bi, qi, _ = b.answer_cells()
    vec, role = b.vectors.flatten(1, 2).double(), b.role.flatten(1)
    scores = torch.einsum("qc,qnc->qn", vec[bi, qi], vec[bi])
    scores = scores.masked_fill(role[bi] != PAIR, -math.inf)
    if math.isinf(beta):
        weights = (scores == scores.amax(dim=1, keepdim=True)).double()
    else:
        weights = torch.softmax(beta * scores, dim=1)
    classes = int(b.value.max())
    votes = torch.zeros(len(bi), classes + 1, dtype=torch.float64).scatter_add_(1, b.value.flatten(1)[bi], weights)
    answer = votes[:, 1:].argmax(dim=1)
    return float((answer == b.target.flatten(1)[bi, qi]).double().mean())


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
    draw (``test_seed``), the same for every mixer and seed. Metric: accuracy over query cells.
    """

    name, metric = "recall", "accuracy"
    class_weights = None  # every query counts the same

    def __init__(self, grid=(8, 8), pairs: int = 16, queries: int = 16, keys: int = 64, values: int = 64,
                 test_size: int = 512, test_seed: int = 2**31 - 1):
        self.grid, self.pairs, self.queries, self.keys, self.values = tuple(grid), pairs, queries, keys, values
        self.test_size, self.test_seed = test_size, test_seed
        self.classes = values
        recall_batch(1, self.grid, pairs, queries, keys, values)  # the sizes are checked here, not at the first test

    def settings(self) -> dict:
        """The constructor's arguments: what ``settings.json`` records (``make_task`` builds the task again from them)."""
        return {"grid": list(self.grid), "pairs": self.pairs, "queries": self.queries, "keys": self.keys,
                "values": self.values, "test_size": self.test_size}

    @property
    def setting(self) -> str:
        """What tells this task's runs apart from another size of it in the CSV."""
        return f"pairs={self.pairs}"

    @property
    def chance(self) -> float:
        """The accuracy of guessing a class (every value equally likely)."""
        return 1 / self.values

    @cached_property
    def test(self):
        return self._draw(self.test_size, torch.Generator().manual_seed(self.test_seed))

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

    def probe_batch(self, size: int = 32) -> RecallBatch:
        """The first ``size`` test grids: where the probes read the trained attention."""
        return self.test.take(0, size)

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


class RetrievalTask(RecallTask):
    """Find the one cell whose key vector equals the query's among N − queries cells of the same distribution,
    answer its class (see :func:`retrieval_batch`). Metric: accuracy over query cells.

    Stem: a linear map of the key vector + a value embedding + a role embedding. ``eval_sides``: the grid
    sides at which every trained model is also scored (accuracy, answer mass, row entropy: ``at``).
    """

    name = "retrieval"

    def __init__(self, grid=(16, 16), queries: int = 16, values: int = 4, key_dim: int = 16, test_size: int = 128,
                 test_seed: int = 2**31 - 1, eval_sides: tuple[int, ...] = (8, 16, 32), train_sides: tuple[int, ...] = ()):
        self.grid, self.queries, self.values, self.key_dim = tuple(grid), queries, values, key_dim
        self.train_sides = tuple(train_sides)
        self.pairs, self.keys = self.grid[0] * self.grid[1] - queries, 0
        self.test_size, self.test_seed, self.eval_sides = test_size, test_seed, tuple(eval_sides)
        self.classes = values
        retrieval_batch(1, self.grid, queries, values, key_dim)

    def settings(self) -> dict:
        return {"grid": list(self.grid), "queries": self.queries, "values": self.values, "key_dim": self.key_dim,
                "test_size": self.test_size, "eval_sides": list(self.eval_sides), "train_sides": list(self.train_sides)}

    @property
    def setting(self) -> str:
        return f"N={self.grid[0] * self.grid[1]}"

    def at(self, side: int) -> "RetrievalTask":
        """The same task on a side × side grid with its own fixed test set: where a trained model is also scored."""
        if (side, side) == self.grid:
            return self
        return _retrieval_at(self, side)

    def _draw(self, size, generator, side: int | None = None):
        grid = self.grid if side is None else (side, side)
        return retrieval_batch(size, grid, self.queries, self.values, self.key_dim, generator)

    def batch(self, size: int, generator: torch.Generator, device) -> tuple[RetrievalBatch, torch.Tensor]:
        """A training batch on the task's grid, or, with ``train_sides``, on a side drawn from them (a grid per
        batch): from scratch, a query's gradient towards its one cell shrinks like 1/N, and smaller grids start it."""
        side = None
        if self.train_sides:
            side = self.train_sides[int(torch.randint(len(self.train_sides), (1,), generator=generator))]
        b = self._draw(size, generator, side).to(device)
        return b, b.target

    def describe(self) -> str:
        h, w = self.grid
        return (f"retrieval: {h}x{w} grid (N = {h * w}), {self.queries} queries, {self.pairs} keyed cells, "
                f"{self.key_dim}-d keys, {self.values} classes")

    def stem(self, dim: int) -> torch.nn.Module:
        return RetrievalEmbedding(dim, self.key_dim, self.values)


@lru_cache(maxsize=16)
def _retrieval_at(task: RetrievalTask, side: int) -> RetrievalTask:
    return RetrievalTask((side, side), task.queries, task.values, task.key_dim, 64, task.test_seed, eval_sides=())


class RetrievalEmbedding(torch.nn.Module):
    """A retrieval grid -> (B, dim, H, W): a linear map of the key vector + a value and a role embedding."""

    def __init__(self, dim: int, key_dim: int, values: int):
        super().__init__()
        self.key = torch.nn.Linear(key_dim, dim, bias=False)
        self.value = torch.nn.Embedding(values + 1, dim)
        self.role = torch.nn.Embedding(3, dim)

    def forward(self, b: RetrievalBatch) -> torch.Tensor:
        return rearrange(self.key(b.vectors) + self.value(b.value) + self.role(b.role), "b h w c -> b c h w")


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

    @staticmethod
    def setting_of(grid: int) -> str:
        return f"grid={grid}"  # not empty: the CSV reads an empty text cell as missing

    @property
    def setting(self) -> str:
        return self.setting_of(self.grid[0])

    @property
    def floor(self) -> float:
        """The mIoU of predicting background on every val patch: what a model that learnt nothing scores."""
        return mean_iou(confusion(torch.zeros_like(self.val.labels), self.val.labels, self.classes))

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


#: the tasks by name
TASK_TYPES = {"recall": RecallTask, "retrieval": RetrievalTask, "helmet": HelmetTask}
