"""The helmet subset: 100 train + 100 val + 100 test photos of Hard Hat Workers, classes ``0 helmet``, ``1 head``.

Used by notebook 06 (the mini-training) and ``fla train``; ``data/README.md`` tells where the
images come from and why these 300; ``test`` is held out (score only, never select on it). Three ways to get them, one function:

* ``get_data()``: download exactly the files in the manifest from the carrier repository,
  pinned to one commit, verify, remap classes, write atomically; a rerun resumes.
* ``get_data(source=DIR)``, DIR prepared like this subset: verify it and use it in place.
* ``get_data(source=DIR)``, DIR a full Roboflow YOLOv8 export (``train/ valid/``): build the subset.

``resolve_data(data)`` is what notebooks and ``fla train`` call: ``data``, else ``$FLA_DATA``,
else the download cache.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

from tqdm.auto import tqdm

from ..files import write_atomic

__all__ = ["DEFAULT_BASE_URL", "DataError", "get_data", "resolve_data", "manifest", "cache_dir", "remap_labels"]

DEFAULT_BASE_URL = (
    "https://raw.githubusercontent.com/ahamedkafeel22/helmet-safety-detection/"
    "171752144b5d067e24ebc3786b6af60854a8b7a9"
)
SPLITS = ("train", "val", "test")
NAMES = {0: "helmet", 1: "head"}
REMAP = {"0": "1", "1": "0"}  # source classes: 0 head, 1 helmet, 2 person (dropped, as Roboflow's head/helmet version does)
TIMEOUT_S = 30  # per request: offline, urlopen fails fast or after this, never hangs
WORKERS = 8  # 600 small files: latency-bound, so a few requests in flight

HOW_TO = """How to get the helmet data (100 train + 100 val + 100 test images, about 11 MB), any one of:
  python -m fla data get --out DIR                  # download from GitHub (needs internet)
  python -m fla data get --out DIR --from FOLDER    # FOLDER: a prepared copy, or the full Roboflow export
then pass --data DIR/data.yaml or set FLA_DATA=DIR. See data/README.md."""

DATA_YAML = """\
# Hard-hat (helmet) detection subset, Ultralytics YOLO format, written by fla.data.
path: {path}
train: images/train   # 100 images
val: images/val       # 100 images
test: images/test     # 100 images (held out: never used to pick a checkpoint)
nc: 2
names:
  0: helmet   # head wearing a hard hat
  1: head     # head without a hard hat
"""


class DataError(RuntimeError):
    """The data is missing, corrupted or cannot be fetched; the message says which file and what to do."""


def manifest(split: str) -> list[dict]:
    """The shipped list for ``split``: source paths and sha256 of image, source label and our label."""
    return json.loads(resources.files(__name__).joinpath(f"manifest_{split}.json").read_text())


def cache_dir() -> Path:
    """Default home of the download: ``$XDG_CACHE_HOME/fla/helmet`` (``~/.cache/fla/helmet``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fla" / "helmet"


def remap_labels(text: str) -> str:
    """Source label file -> ours: head 0->1, helmet 1->0, person dropped; coordinates kept as written."""
    kept = []
    for line in text.splitlines():
        cls = line.split(maxsplit=1)[0] if line.strip() else None
        if cls in REMAP:
            kept.append(REMAP[cls] + line.lstrip()[len(cls):])
    return "\n".join(kept) + "\n"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Task:
    src: str  # path the reader understands
    src_sha: str
    dest: Path
    sha: str  # of what lands at dest
    remap: bool


def _tasks(out: Path, layout: str) -> list[_Task]:
    """Two files per manifest entry. ``layout``: 'source' (carrier repo), 'export' (its root), 'prepared'."""
    tasks = []
    for split in SPLITS:
        for e in manifest(split):
            image, label = Path(e["source"]).name, Path(e["label_source"]).name
            dest_image, dest_label = out / "images" / split / image, out / "labels" / split / label
            if layout == "prepared":
                tasks += [_Task(f"images/{split}/{image}", e["sha256"], dest_image, e["sha256"], False),
                          _Task(f"labels/{split}/{label}", e["sha256_label"], dest_label, e["sha256_label"], False)]
                continue
            src_image, src_label = e["source"], e["label_source"]
            if layout == "export":  # the export root is the repo's Hard-Hat-Workers-1/
                src_image, src_label = src_image.split("/", 1)[1], src_label.split("/", 1)[1]
            tasks += [_Task(src_image, e["sha256"], dest_image, e["sha256"], False),
                      _Task(src_label, e["sha256_label_src"], dest_label, e["sha256_label"], True)]
    return tasks


def _http_reader(base_url: str) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        url = f"{base_url.rstrip('/')}/{urllib.parse.quote(path)}"
        try:
            with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
                return response.read()
        except urllib.error.HTTPError as e:
            raise DataError(f"{path}: HTTP {e.code} from {url}. Run the same command again to resume.") from e
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise DataError(f"{path}: could not download {url} ({reason}).\n"
                            f"Run the same command again to resume, or get the data another way.\n{HOW_TO}") from e
    return read


def _file_reader(root: Path) -> Callable[[str], bytes]:
    def read(path: str) -> bytes:
        try:
            return (root / path).read_bytes()
        except FileNotFoundError as e:
            raise DataError(f"{root / path}: missing from the local copy. The subset's file names are those of "
                            f"the Roboflow export kafeel/hard-hat-workers-ea2v7 v1.\n{HOW_TO}") from e
    return read


def _fetch(task: _Task, read: Callable[[str], bytes]) -> None:
    """Make ``task.dest`` right: keep it if its hash matches (resume), else read, verify, convert, write."""
    if task.dest.exists():
        if _sha256(task.dest.read_bytes()) == task.sha:
            return
        task.dest.unlink()
    data = read(task.src)
    if (got := _sha256(data)) != task.src_sha:
        raise DataError(f"{task.src}: sha256 {got} does not match the manifest's {task.src_sha} "
                        "(corrupted or a different file); nothing was written for it.")
    if task.remap:
        data = remap_labels(data.decode()).encode()
        if _sha256(data) != task.sha:  # cannot happen unless remap_labels changed: guard the manifest's promise
            raise DataError(f"{task.src}: converted labels differ from the manifest's")
    write_atomic(task.dest, data)


def _build(out: Path, tasks: list[_Task], read: Callable[[str], bytes], progress: bool) -> Path:
    """Fill ``out`` with every task's file; ``data.yaml`` is written last, so it exists only when all are there."""
    (out / "data.yaml").unlink(missing_ok=True)
    for split in SPLITS:
        for sub in ("images", "labels"):
            (out / sub / split).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(WORKERS) as pool, tqdm(total=len(tasks), desc="helmet data", unit="file",
                                                   disable=not progress) as bar:
        futures = [pool.submit(_fetch, t, read) for t in tasks]
        try:
            for future in as_completed(futures):
                future.result()
                bar.update()
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    for split in SPLITS:
        write_atomic(out / f"manifest_{split}.json", json.dumps(manifest(split), indent=1).encode() + b"\n")
    write_atomic(out / "data.yaml", DATA_YAML.format(path=json.dumps(str(out))).encode())
    return out / "data.yaml"


def _verify_in_place(root: Path) -> Path:
    """Way 2 without ``out``: check every file of a prepared folder, copy nothing."""
    bad = [t.src for t in _tasks(root, "prepared")
           if not t.dest.is_file() or _sha256(t.dest.read_bytes()) != t.sha]
    if bad:
        shown = "\n  ".join(bad[:5]) + (f"\n  ... and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise DataError(f"{root}: {len(bad)} file(s) missing or not matching the manifest:\n  {shown}\n{HOW_TO}")
    if not (root / "data.yaml").is_file():
        write_atomic(root / "data.yaml", DATA_YAML.format(path=json.dumps(str(root))).encode())
    return root / "data.yaml"


def _layout(source: Path) -> tuple[str, Path]:
    """What a ``--from`` folder holds: ('prepared', dir) or ('export', dir holding train/ valid/)."""
    if not source.is_dir():
        raise DataError(f"{source}: no such folder.\n{HOW_TO}")
    if (source / "images" / "train").is_dir():
        return "prepared", source
    for root in (source, source / "Hard-Hat-Workers-1"):
        if (root / "train" / "images").is_dir() and (root / "valid" / "images").is_dir():
            return "export", root
    raise DataError(f"{source}: neither a prepared helmet folder (images/train, labels/train, ...) "
                    f"nor a Roboflow YOLOv8 export (train/images, valid/images, ...).\n{HOW_TO}")


def get_data(out: str | Path | None = None, base_url: str = DEFAULT_BASE_URL,
             source: str | Path | None = None, progress: bool = True) -> Path:
    """Get the helmet subset ready and return the path of its ``data.yaml``.

    ``source`` None downloads from ``base_url``; a prepared folder is verified and used in place
    (copied when ``out`` is given); a full Roboflow export is cut down to the subset. ``out``
    defaults to ``cache_dir()``. Files already present with the right hash are kept, so a rerun
    after an interruption fetches only what is missing. Raises ``DataError``.
    """
    out = Path(out).expanduser().resolve() if out is not None else None
    if source is None:
        layout, read = "source", _http_reader(base_url)
    else:
        layout, root = _layout(Path(source).expanduser().resolve())
        if layout == "prepared" and out in (None, root):
            return _verify_in_place(root)
        read = _file_reader(root)
    out = out or cache_dir()
    return _build(out, _tasks(out, layout), read, progress)


def resolve_data(data: str | Path | None = None) -> Path:
    """The ``data.yaml`` to train on: ``data`` (a data.yaml or a folder), else ``$FLA_DATA``, else the cache.

    A folder goes through ``get_data(source=...)``; with neither, the subset is downloaded into
    ``cache_dir()`` on first use and only verified afterwards.
    """
    origin = "--data" if data else "FLA_DATA"
    data = data or os.environ.get("FLA_DATA")
    if not data:
        return get_data(out=cache_dir())
    path = Path(data).expanduser()
    if path.is_file():
        return path.resolve()
    if not path.exists():
        raise DataError(f"{path} (from {origin}): no such file or folder.\n{HOW_TO}")
    return get_data(source=path)
