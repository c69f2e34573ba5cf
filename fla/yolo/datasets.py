"""The one reader of a data.yaml: what ultralytics itself resolves for training (notebooks 04, 06; ``fla train``).

``ultralytics.data.utils.check_det_dataset`` does the reading (never a download here), so every
path rule is the trainer's: the splits sit under ``path:`` — a relative ``path:`` is taken from the
current folder, else from ultralytics' datasets folder — or, without one, beside the data.yaml.
A label file is found from its image as ultralytics finds it (``img2label_paths``).
"""
from __future__ import annotations

from pathlib import Path

from ..data import DataError

__all__ = ["read_data", "check_data", "has_split", "images_in", "split_images", "label_path"]

SPLITS = ("train", "val", "test")


def read_data(data_yaml) -> dict:
    """``data_yaml`` as ultralytics reads it: ``names`` ({index: name}), ``nc``, ``path`` and each split's
    images folder, absolute. Raises ``DataError`` (one line: the file and what is wrong) for a file that is
    missing, not YAML, or lacks ``train``/``val``/``names``, or whose val images are not there."""
    from ultralytics.data.utils import check_det_dataset

    if not Path(data_yaml).is_file():
        raise DataError(f"{data_yaml}: no such file")
    try:
        return check_det_dataset(str(data_yaml), autodownload=False)
    except (FileNotFoundError, SyntaxError, TypeError, ValueError, AttributeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{data_yaml}: {first}") from None


def check_data(data_yaml) -> dict:
    """``read_data``, and every split it names holds images (ultralytics checks only ``val``; a missing
    ``train`` folder would fail minutes later, inside the trainer). ``DataError``, one line, otherwise."""
    from ultralytics.data.utils import IMG_FORMATS

    data = read_data(data_yaml)
    for split in SPLITS:
        for source in [data[split]] if isinstance(data.get(split), str) else data.get(split) or []:
            source = Path(source)
            if source.is_file():  # a list of image paths, one a line
                continue
            if not source.is_dir():
                raise DataError(f"{data_yaml}: its {split}: split {source} is not there")
            if not any(p.suffix[1:].lower() in IMG_FORMATS for p in source.rglob("*.*")):
                raise DataError(f"{data_yaml}: its {split}: split {source} holds no images")
    return data


def has_split(data_yaml, split: str) -> bool:
    """Whether ``data_yaml`` names ``split`` (older copies of the helmet subset have no ``test:``)."""
    return bool(read_data(data_yaml).get(split))


def images_in(folder) -> list[Path]:
    """The .jpg images of a split's folder (``read_data(...)[split]``), sorted by name."""
    return sorted(Path(folder).glob("*.jpg"))


def split_images(data_yaml, split: str) -> list[Path]:
    """The .jpg images of ``split``, sorted by name; ``DataError`` when the split is not named or holds none."""
    folder = read_data(data_yaml).get(split)
    if not folder:
        raise DataError(f"{data_yaml}: no {split}: split")
    images = images_in(folder)
    if not images:
        raise DataError(f"{data_yaml}: no .jpg images in {folder} (its {split}: split)")
    return images


def label_path(image) -> Path:
    """The YOLO label file of ``image``, where ultralytics looks for it: the last ``images`` folder of the path
    becomes ``labels``, the extension ``.txt``."""
    from ultralytics.data.utils import img2label_paths

    return Path(img2label_paths([str(image)])[0])
