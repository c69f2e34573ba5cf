"""ultralytics without the network: the offline switches the tests and CI run under (``offline_ultralytics``).

Never run on import: for the tests and CI (``tests/conftest.py``), or for a user who asks for them, before
the first ``import ultralytics``.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["config_dir", "offline_ultralytics"]


def config_dir() -> Path:
    """Where ultralytics keeps settings and fonts for us: $YOLO_CONFIG_DIR, else ~/.cache/fla/yolo."""
    return Path(os.environ.get("YOLO_CONFIG_DIR") or Path.home() / ".cache" / "fla" / "yolo")


def offline_ultralytics() -> Path:
    """Set ultralytics' offline switches for this whole process (unless the user set them) and place a local font:
    what the tests and CI run under. Call it before the first ``import ultralytics``; ``import fla.yolo`` never
    calls it, so a user's own ultralytics code and ``yolo settings`` stay as they were.

    ultralytics draws labels with Arial.ttf and downloads it when missing; matplotlib ships
    DejaVuSans, which we copy under that name, so plotting never touches the network.
    Returns the config dir.
    """
    os.environ.setdefault("YOLO_OFFLINE", "true")
    os.environ.setdefault("YOLO_AUTOINSTALL", "0")
    cfg = config_dir()
    os.environ["YOLO_CONFIG_DIR"] = str(cfg)
    fonts = cfg / "Ultralytics"
    fonts.mkdir(parents=True, exist_ok=True)
    import matplotlib

    dejavu = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    for name in ("Arial.ttf", "Arial.Unicode.ttf"):
        if not (fonts / name).exists():
            tmp = fonts / f".{name}.tmp"
            shutil.copyfile(dejavu, tmp)
            os.replace(tmp, fonts / name)
    return cfg
