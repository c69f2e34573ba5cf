"""Importing fla, fla.yolo, and loading one of our checkpoints, leave the process as they found it: no environment
variable and no ultralytics setting changed (a user's own ultralytics code keeps its downloads and its
``yolo settings``). Checked in a fresh process whose ultralytics settings live in a folder of the test's own."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent("""
    import json, os, sys
    diff = lambda a, b: {k: (a.get(k), b.get(k)) for k in set(a) | set(b) if a.get(k) != b.get(k)}
    env = dict(os.environ)
    import fla
    report = {"import fla": diff(env, dict(os.environ))}
    import ultralytics  # sets thread counts and log levels of its own: the baseline for what follows
    from ultralytics.utils import SETTINGS
    env, settings, text = dict(os.environ), dict(SETTINGS), SETTINGS.file.read_text()
    if sys.argv[1] == "import":
        import fla.yolo
    else:  # unpickling imports fla.yolo itself
        assert "fla.yolo" not in sys.modules
        from ultralytics import YOLO
        YOLO(sys.argv[1])
        assert "fla.yolo" in sys.modules
    report["then " + ("import fla.yolo" if sys.argv[1] == "import" else "load a checkpoint")] = diff(env, dict(os.environ))
    report["settings"] = diff(settings, dict(SETTINGS))
    report["settings.json"] = SETTINGS.file.read_text() == text
    print(json.dumps(report))
""")


@pytest.mark.slow
@pytest.mark.parametrize("how", ["import", "checkpoint"])
def test_import_and_checkpoint_load_change_no_environment_and_no_setting(how, tmp_path):
    if how == "checkpoint":
        from ultralytics import YOLO

        import fla.yolo as Y

        how = tmp_path / "c2f_fla.pt"
        YOLO(Y.model_yaml("c2f_fla")).save(how)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "ULTRALYTICS_"))}
    env["YOLO_CONFIG_DIR"] = str(tmp_path / "user-settings")  # the user's ultralytics settings, in a folder of ours
    out = subprocess.run([sys.executable, "-c", CHILD, str(how)], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report.pop("settings.json") is True, report
    assert all(not changed for changed in report.values()), report
