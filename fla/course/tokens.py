"""A real photograph as a 14×14 grid of tokens, with no pretrained weights (notebooks 02, 03).

The attention pictures need queries and keys that mean something, yet a notebook must need
nothing that cannot be installed. So the features are fixed and explainable:

1. the image is resized and centre-cropped to ``grid * patch`` pixels square and cut into
   ``grid × grid`` patches of ``patch × patch × 3`` values (ViT's patchify: 14 × 14 = 196
   tokens of 16 × 16 pixels, as in DeiT at 224²);
2. each flattened patch is multiplied by one fixed random Gaussian matrix (seeded) into
   ``dim`` numbers. A random projection keeps dot products and distances roughly
   (Johnson–Lindenstrauss), so patches that look alike get similar vectors;
3. each of the ``dim`` features is standardised over the tokens (mean 0, variance 1), the
   scale a trained ViT's LayerNorm gives its tokens.

With queries = keys = these tokens, attention is "look at the patches that look like me"
(``fla.course.views`` builds those attention matrices from the paper's equations).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

__all__ = ["default_image_path", "load_image", "image_tokens"]


def default_image_path() -> Path:
    """A real photo that needs no download (notebooks 02, 03).

    The first validation image of the helmet subset when ``$FLA_DATA`` points at it (a folder
    with ``images/val/*.jpg``), else ultralytics' ``bus.jpg``, which ships inside the
    ultralytics package this project depends on.
    """
    data = os.environ.get("FLA_DATA")
    if data:
        images = sorted((Path(data) / "images" / "val").glob("*.jpg"))
        if images:
            return images[0]
    from ultralytics.utils import ASSETS

    return Path(ASSETS) / "bus.jpg"


def load_image(path: str | Path | None = None, size: int = 224) -> np.ndarray:
    """(size, size, 3) float RGB in [0, 1]: shorter side resized to ``size`` (bicubic), centre crop (notebook 02)."""
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    img = Image.open(path or default_image_path()).convert("RGB")
    img = TF.center_crop(TF.resize(img, size, interpolation=InterpolationMode.BICUBIC), size)
    return np.asarray(img, dtype=np.float32) / 255.0


def image_tokens(image: np.ndarray, grid: int = 14, dim: int = 64, seed: int = 0) -> torch.Tensor:
    """(1, dim, grid, grid) feature map of an image: patchify, fixed random projection, standardise (notebook 02).

    Deterministic for a given image, grid, dim and seed (see the module docstring for why
    these features are good enough to look at attention).
    """
    x = torch.as_tensor(image, dtype=torch.float32)
    if x.shape[0] != x.shape[1] or x.shape[0] % grid:
        raise ValueError(f"image must be square with a side divisible by grid={grid}, got shape {tuple(x.shape)}")
    patches = rearrange(x, "(h p1) (w p2) c -> (h w) (p1 p2 c)", h=grid, w=grid)
    patches = patches - patches.mean(dim=0)  # what is special about a patch, not the average photo
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(patches.shape[1], dim, generator=g) / patches.shape[1] ** 0.5
    feats = patches @ proj
    feats = (feats - feats.mean(dim=0)) / feats.std(dim=0).clamp_min(1e-6)
    return rearrange(feats, "(h w) d -> 1 d h w", h=grid)
