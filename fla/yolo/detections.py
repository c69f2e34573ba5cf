"""Detections of several trained variants on the same images, side by side (notebook 06).

From checkpoints (``show_detections``): predicted boxes are solid and coloured by class with their confidence;
ground-truth boxes from the YOLO label file are dashed white, so a miss, a duplicate or a wrong class shows at a
glance. From the kept test predictions of runs without checkpoints (``show_found``, the shipped runs): which
predictions matched a label is all they keep, not where their boxes were, so the photos carry the labelled boxes
and each model's count of labels found and of false boxes.
"""
from __future__ import annotations

from pathlib import Path

from ..figures import PAGE_WIDTH
from .datasets import images_in, label_path, read_data, split_images

__all__ = ["val_images", "images_with_heads", "ground_truth", "split_summary", "show_detections", "found",
           "show_found"]

COLOURS = {0: "tab:green", 1: "tab:red"}  # helmet, head


def val_images(data_yaml, n: int = 4, min_heads: int = 1) -> list[Path]:
    """The first ``n`` validation images (sorted by name) with at least ``min_heads`` boxes of class 1 (head):
    the interesting ones, since most boxes are helmets."""
    return images_with_heads(data_yaml, "val", n, min_heads)


def images_with_heads(data_yaml, split: str, n: int = 4, min_heads: int = 1) -> list[Path]:
    """The first ``n`` images of ``split`` (sorted by name) with at least ``min_heads`` boxes of class 1 (head)."""
    picked = []
    for image in split_images(data_yaml, split):
        if sum(c == 1 for c, _ in ground_truth(image)) >= min_heads:
            picked.append(image)
        if len(picked) == n:
            break
    return picked


def ground_truth(image) -> list[tuple[int, tuple[float, float, float, float]]]:
    """``[(class, (cx, cy, w, h)), ...]`` normalised, from the label file ultralytics reads for ``image``
    (``img2label_paths``: the last ``images`` folder of the path becomes ``labels``)."""
    label = label_path(image)
    rows = [line.split() for line in label.read_text().splitlines() if line.strip()] if label.is_file() else []
    return [(int(r[0]), tuple(map(float, r[1:5]))) for r in rows]


def split_summary(data_yaml) -> list[dict]:
    """Per split of ``data_yaml`` (train, val, test): images, boxes per class and images with at least one box
    of each class — how much evidence a score on that split rests on (notebook 06)."""
    data = read_data(data_yaml)
    rows = []
    for split in ("train", "val", "test"):
        if not data.get(split):
            continue
        labels = [[c for c, _ in ground_truth(image)] for image in images_in(data[split])]
        row = {"split": split, "images": len(labels)}
        for k, name in data["names"].items():
            row[f"{name} boxes"] = sum(classes.count(k) for classes in labels)
            row[f"images with {name}"] = sum(k in classes for classes in labels)
        rows.append(row)
    return rows


def show_detections(weights: dict, images, imgsz: int = 640, conf: float = 0.25, device: str = "cpu"):
    """Grid of detections: one row per image, one column per entry of ``weights`` ({title: path to best.pt}).

    Returns the matplotlib figure."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from PIL import Image
    from ultralytics import YOLO

    images = [Path(p) for p in images]
    columns = max(2, len(weights))  # two models side by side fill the page's width
    fig, axes = plt.subplots(len(images), len(weights), figsize=(PAGE_WIDTH * len(weights) / columns, 2.9 * len(images)),
                             squeeze=False)
    for col, (title, path) in enumerate(weights.items()):
        model = YOLO(path)
        results = model.predict([str(p) for p in images], imgsz=imgsz, conf=conf, device=device, verbose=False)
        for row, (image, result) in enumerate(zip(images, results)):
            ax = axes[row, col]
            picture = Image.open(image)
            ax.imshow(picture)
            w, h = picture.size
            for c, (cx, cy, bw, bh) in ground_truth(image):
                ax.add_patch(Rectangle(((cx - bw / 2) * w, (cy - bh / 2) * h), bw * w, bh * h,
                                       fill=False, ec="white", ls="--", lw=1))
            for (x1, y1, x2, y2), c, p in zip(result.boxes.xyxy.tolist(), result.boxes.cls.tolist(), result.boxes.conf.tolist()):
                colour = COLOURS.get(int(c), "tab:blue")
                ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=1.5))
                ax.text(x1, y1, f"{result.names[int(c)]} {p:.2f}", color="white", fontsize=7,
                        bbox=dict(fc=colour, ec="none", pad=1))
            ax.set_axis_off()
            if row == 0:
                ax.set_title(f"{title}", fontsize=10)
            ax.text(0.01, 0.01, f"{len(result.boxes)} boxes ≥ {conf}", transform=ax.transAxes, color="white",
                    fontsize=8, va="bottom", bbox=dict(fc="black", alpha=0.5, ec="none"))
    fig.suptitle("predictions (solid: green helmet, red head) vs ground truth (dashed)", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig


def found(detections, image: str | None = None, conf: float = 0.25) -> dict:
    """What one model found on one image (``image``: its file name; None: on all of them) among its predictions of
    confidence ≥ ``conf``: per class the labels matched at IoU 0.5 and the labels there are
    (``{class: (found, labelled)}``), and the predictions that matched none (``"false"``). Read from
    ``fla.experiments.stats.Detections`` (ultralytics' validator matched each prediction to at most one label)."""
    if image is None:
        kept, labels = detections.conf >= conf, detections.target_cls
    else:
        i = detections.images.index(image)
        kept = (detections.pred_image == i) & (detections.conf >= conf)
        labels = detections.target_cls[detections.target_image == i]
    counts = {int(c): (int((detections.tp[kept, 0] & (detections.pred_cls[kept] == c)).sum()), int((labels == c).sum()))
              for c in COLOURS}
    return {**counts, "false": int((~detections.tp[kept, 0]).sum())}


def show_found(detections: dict, data_yaml, split: str = "test", n: int = 4, conf: float = 0.25,
               names: dict | None = None, per_row: int = 2):
    """The first ``n`` photos of ``split`` with a bare head that every model of ``detections`` ({title: Detections
    on that split}) was scored on, with their labelled boxes (green helmet, red head), and under each photo, per
    model, the labels it found and its false boxes at confidence ≥ ``conf`` (``found``). For runs that kept their
    matched test predictions but no checkpoints. Returns the figure, or None when no photo is in every model's."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from PIL import Image

    from ..figures import panels

    names = names or {0: "helmet", 1: "head"}
    scored = set.intersection(*(set(d.images) for d in detections.values()))
    images = [p for p in images_with_heads(data_yaml, split, n=10**6) if p.name in scored][:n]
    if not images:
        return None
    fig, axes = panels(len(images), per_row=per_row, panel_height=2.9 + 0.25 * len(detections))
    for ax, image in zip(axes, images):
        picture = Image.open(image)
        ax.imshow(picture)
        w, h = picture.size
        for c, (cx, cy, bw, bh) in ground_truth(image):
            ax.add_patch(Rectangle(((cx - bw / 2) * w, (cy - bh / 2) * h), bw * w, bh * h, fill=False,
                                   ec=COLOURS.get(c, "tab:blue"), lw=1.5))
        ax.set_xticks([])
        ax.set_yticks([])
        lines = []
        for title, d in detections.items():
            f = found(d, image.name, conf)
            lines.append(f"{title}: " + ", ".join(f"{names[c]}s {f[c][0]}/{f[c][1]}" for c in COLOURS)
                         + f", {f['false']} false")
        ax.set_xlabel("\n".join(lines), fontsize=9.5, loc="left")  # read as numbers: as large as the page's labels
    fig.suptitle(f"labelled boxes (green helmet, red head); found: labels matched at IoU 0.5, conf ≥ {conf}", fontsize=10)
    fig.tight_layout()
    plt.close(fig)
    return fig
