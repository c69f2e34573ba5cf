"""What the tests share, in one place.

- The command line in a subprocess (``run_fla``), a CSV read back as written (``read_csv``).
- Loopback hosts for the download tests (``serve``, ``closed_port``, ``free_port``): nothing leaves the machine.
- Fake detections with known answers for the statistics (``detections``).
- For the YOLO transfer / export / DDP / AMP / checkpoint tests: the FLA variants fla.yolo exposes, their
  family's base, a real helmet photo, a small writable helmet copy, the detection loss on a fake batch.
"""
from __future__ import annotations

import contextlib
import csv
import functools
import http.server
import shutil
import socket
import subprocess
import sys
import threading

import numpy as np
import torch

import fla.yolo as Y
from fla import FocusedLinearAttention
from fla.experiments.stats import Detections

from conftest import SHARED

HELMET = SHARED / "data" / "helmet"


def run_fla(*args, env=None, cwd=None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m fla ARGS`` in a fresh process, as a user types it; output captured as text."""
    return subprocess.run([sys.executable, "-m", "fla", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)


def read_csv(path) -> tuple[list[str], list[dict]]:
    """(header, rows as dicts of strings) of a CSV file."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port() -> str:
    """The URL of a loopback port nothing listens on: a connection there is refused at once."""
    return f"http://127.0.0.1:{free_port()}"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; records each requested path in ``server.requests``; logs nothing."""

    def do_GET(self):
        with self.server.lock:
            self.server.requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(directory, handler: type = QuietHandler):
    """A threaded HTTP server for ``directory`` on 127.0.0.1: yields it with ``.url`` and ``.requests``."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(directory)))
    server.lock, server.requests = threading.Lock(), []
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def fla_variants() -> list[str]:
    """Every variant whose YAML uses one of our blocks (new ones are covered as fla.yolo adds them)."""
    ours = [name for name in Y.patches.STAND_INS]
    return [v for v in Y.VARIANTS if any(name in (Y.CFG_DIR / Y.VARIANTS[v]).read_text() for name in ours)]


def base_of(variant: str) -> str:
    """The stock model of the variant's family: ``base`` for YOLOv8, ``yolo11:base`` for ``yolo11:...``."""
    family, sep, _ = variant.partition(":")
    return f"{family}:base" if sep else "base"


def attention_modules(net) -> list[FocusedLinearAttention]:
    return [m for m in net.modules() if isinstance(m, FocusedLinearAttention)]


def photo(hw: tuple[int, int]) -> torch.Tensor:
    """A real helmet test photo letterboxed to (H, W) as YOLO's predictor does: (1, 3, H, W) in [0, 1]."""
    import cv2
    from ultralytics.data.augment import LetterBox

    path = sorted((HELMET / "images" / "test").iterdir())[0]
    image = LetterBox(hw, auto=False)(image=cv2.imread(str(path)))
    return torch.from_numpy(np.ascontiguousarray(image[..., ::-1].transpose(2, 0, 1))).float()[None] / 255


def small_helmet(root, per_split: int = 8):
    """A writable helmet copy with ``per_split`` images per split (ultralytics writes label caches); its data.yaml."""
    for split in ("train", "val", "test"):
        images = sorted((HELMET / "images" / split).iterdir())[:per_split]
        for sub, files in (("images", images), ("labels", [HELMET / "labels" / split / f"{p.stem}.txt" for p in images])):
            (root / sub / split).mkdir(parents=True, exist_ok=True)
            for f in files:
                if f.is_file():
                    shutil.copy(f, root / sub / split / f.name)
    yaml = root / "data.yaml"
    yaml.write_text("train: images/train\nval: images/val\ntest: images/test\nnc: 2\nnames:\n  0: helmet\n  1: head\n")
    return yaml


def fake_batch(images: torch.Tensor) -> dict:
    """A training batch for ultralytics' detection loss: one box per image."""
    b = images.shape[0]
    return {
        "img": images,
        "batch_idx": torch.arange(b, dtype=torch.float32),
        "cls": torch.zeros(b, 1),
        "bboxes": torch.tensor([[0.5, 0.5, 0.3, 0.4]]).repeat(b, 1),
    }


def with_loss_args(net):
    """The hyperparameters ultralytics' loss reads (the trainer sets them): the defaults."""
    from ultralytics.cfg import get_cfg

    if not hasattr(net, "args") or isinstance(net.args, dict):
        net.args = get_cfg()
    return net


def detection_loss(net, images: torch.Tensor) -> torch.Tensor:
    """ultralytics' training loss (box + cls + dfl, summed) of ``net`` in train mode on one box per image."""
    loss, _ = with_loss_args(net).loss(fake_batch(images))
    return loss.sum()


def detections(hits_per_image, n_images=40, seed=0, labels=3):
    """``n_images`` images with ``labels`` boxes each (classes 0/1 alternating); on image ``i`` the model finds
    ``hits_per_image[i]`` of them (true positives at every IoU threshold, high confidence) and adds two false
    positives of low confidence."""
    rng = np.random.default_rng(seed)
    per_image = []
    for i in range(n_images):
        target = np.arange(labels) % 2
        hits = int(hits_per_image[i])
        tp = np.zeros((hits + 2, 10), bool)
        tp[:hits] = True
        conf = np.concatenate([rng.uniform(0.6, 0.9, hits), rng.uniform(0.01, 0.5, 2)])
        per_image.append(dict(tp=tp, conf=conf, pred_cls=np.concatenate([target[:hits], [0, 1]]), target_cls=target,
                              im_name=f"{i:03d}.jpg"))
    return Detections.from_images(per_image)


def cli(*args) -> subprocess.CompletedProcess:
    """``fla ARGS`` in this process (``fla.cli.main``), its exit status and what it printed: as ``run_fla`` sees a
    command, without the seconds a fresh process spends importing torch. For usage errors and other quick exits."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from fla.cli import main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main([str(a) for a in args])
        except SystemExit as e:  # argparse's usage errors
            code = e.code
    return subprocess.CompletedProcess(["fla", *map(str, args)], code, out.getvalue(), err.getvalue())
