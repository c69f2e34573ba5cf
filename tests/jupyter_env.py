"""An isolated Jupyter environment for the notebook and browser tests.

Every JUPYTER_* directory points into a temp folder, so the tests neither read the user's
config nor leave files behind, and the "python3" kernelspec found first is one that runs
this interpreter (the project venv), whatever other kernels the machine has. Kernels started
there refuse non-loopback connections, like the test process itself (conftest.py).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

KERNEL = "python3"
#: what a kernel manager in the test process reads to find the kernelspec (the kernel itself gets the whole env)
MANAGER_KEYS = ("JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_PLATFORM_DIRS")

#: IPython startup file for the test kernels: the offline rule of conftest.py, inside the kernel.
LOOPBACK_ONLY = """\
import ipaddress, socket

def _fla_loopback_only(connect):
    def guarded(sock, address):
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            host = address[0]
            try:
                ok = host == "localhost" or ipaddress.ip_address(host).is_loopback
            except ValueError:
                ok = False
            if not ok:
                raise ConnectionRefusedError(f"test kernel: non-loopback connection to {address!r} refused (tests run offline)")
        return connect(sock, address)
    return guarded

socket.socket.connect = _fla_loopback_only(socket.socket.connect)
socket.socket.connect_ex = _fla_loopback_only(socket.socket.connect_ex)
del _fla_loopback_only
"""


def isolated_jupyter_env(root: Path, quick: bool = True) -> dict:
    """Environment variables for a Jupyter server or kernel under ``root``; writes the kernelspec."""
    dirs = {name: root / name for name in ("config", "data", "runtime", "path", "ipython", "settings", "workspaces")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    spec = dirs["path"] / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (fla venv)",
                "language": "python",
            }
        )
    )
    startup = dirs["ipython"] / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    (startup / "00-loopback-only.py").write_text(LOOPBACK_ONLY)
    # JupyterLab shows a news/update toast over the notebook unless told not to (and must not fetch news).
    notification = dirs["settings"] / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True, exist_ok=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = dict(os.environ)
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_PATH=str(dirs["path"]),
        JUPYTER_PLATFORM_DIRS="1",
        IPYTHONDIR=str(dirs["ipython"]),
        JUPYTERLAB_SETTINGS_DIR=str(dirs["settings"]),
        JUPYTERLAB_WORKSPACES_DIR=str(dirs["workspaces"]),
        FLA_QUICK="1" if quick else "0",
        PYTHONPATH=os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")])),
    )
    return env


def use_in_this_process(env: dict, monkeypatch, extra: tuple[str, ...] = ()) -> None:
    """Point the kernel manager of this process at ``env``'s kernelspec (``MANAGER_KEYS``, and ``extra``), undone
    with ``monkeypatch``."""
    for key in (*MANAGER_KEYS, *extra):
        monkeypatch.setenv(key, env[key])
