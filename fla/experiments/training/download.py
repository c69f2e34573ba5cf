"""ultralytics' pretrained checkpoints, fetched with a bounded download (notebook 06, ``fla train --weights``)."""
from __future__ import annotations

from pathlib import Path

from ...files import write_atomic

__all__ = ["PRETRAINED_URL", "pretrained", "NotACheckpointName"]


class NotACheckpointName(ValueError):
    """The name is not one of ultralytics' checkpoint names."""


#: ultralytics 8.4's release of its pretrained checkpoints (``attempt_download_asset``'s default)
PRETRAINED_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0"
PRETRAINED_TIMEOUT_S = 15  # per connect and per read: offline, the attempt ends in seconds, never hangs


def pretrained(name: str = "yolov8n.pt", *, base_url: str | None = None, folder=None,
               timeout: float = PRETRAINED_TIMEOUT_S, log=print) -> Path | None:
    """ultralytics' pretrained checkpoint ``name`` (yolov8n.pt, yolo11n.pt, ...): the local copy (current folder,
    or ``folder``: default ultralytics' weights folder), else downloaded from ``base_url`` (default
    ``PRETRAINED_URL``) into ``folder``. None when it cannot be had (offline, HTTP error): ``log`` says why, and
    the caller trains from scratch (notebook 06).

    Our own bounded download rather than ultralytics' (30 s connect timeouts, four tries, curl): the
    notebooks must not wait on an absent network."""
    import urllib.error
    import urllib.request

    from ultralytics.utils import SETTINGS
    from ultralytics.utils.downloads import GITHUB_ASSETS_NAMES

    if name not in GITHUB_ASSETS_NAMES:
        raise NotACheckpointName(f"{name}: not an ultralytics checkpoint name (e.g. yolov8n.pt, yolo11n.pt)")
    home = Path(folder or SETTINGS["weights_dir"])
    for local in (Path(name), home / name):
        if local.is_file():
            return local
    url = f"{(base_url or PRETRAINED_URL).rstrip('/')}/{name}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as e:  # HTTPError is a URLError
        log(f"{name}: not available ({getattr(e, 'reason', e)} from {url})")
        return None
    if len(data) < 100_000:  # an error page or a truncated file, not a checkpoint (yolov8n.pt is 6 MB)
        log(f"{name}: {url} sent {len(data)} bytes, not a checkpoint")
        return None
    home.mkdir(parents=True, exist_ok=True)
    write_atomic(home / name, data)
    log(f"{name}: downloaded {len(data) / 2**20:.1f} MiB from {url} into {home}")
    return home / name


