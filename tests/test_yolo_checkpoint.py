"""Checkpoints of our blocks where fla-teach is missing, and under ULTRALYTICS_SAFE_LOAD.

ultralytics loads a .pt with torch.load; for a missing module (any ``ModuleNotFoundError``) its AutoInstall
runs ``pip install <name>``, and ``fla`` on PyPI is someone else's package. Our blocks pickle behind a
check that ``fla.yolo`` imports (``fla.yolo.checkpoints._Requirement``), which stops the load with an error
that is not a ``ModuleNotFoundError``. The "fresh process" here is this venv's Python with fla-teach
hidden as if uninstalled: its import hook removed, its metadata not found by importlib.metadata's
discovery; ultralytics' pip calls and AutoInstall calls are recorded and refused.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from ultralytics import YOLO

import fla.yolo as Y

CHILD = """
import importlib.metadata as md, subprocess, sys
sys.meta_path = [f for f in sys.meta_path if "fla_teach" not in str(f)]  # the editable install's hooks
sys.path_hooks = [h for h in sys.path_hooks if "fla_teach" not in str(h)]
find = md.MetadataPathFinder.find_distributions
md.MetadataPathFinder.find_distributions = staticmethod(
    lambda *a, **k: (d for d in find(*a, **k) if d.metadata["Name"] != "fla-teach"))
pip = []

def spy(cmd, *args, **kwargs):  # ultralytics' AutoInstall runs pip (or uv) through check_output
    pip.append(" ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else str(cmd))
    raise subprocess.CalledProcessError(1, cmd, output="blocked by the test")

subprocess.check_output = spy
import importlib.util, os
if os.environ.get("PYTHONPATH_CHILD"):
    sys.path.insert(0, os.environ["PYTHONPATH_CHILD"])
    assert importlib.util.find_spec("fla.yolo") is None, "fla.yolo is importable in the child"
else:
    assert importlib.util.find_spec("fla") is None, "fla is importable in the child"
try:
    md.version("fla-teach")
    raise SystemExit("fla-teach metadata still visible")
except md.PackageNotFoundError:
    pass
import ultralytics.utils.checks as checks
checks.ONLINE = True  # offline, AutoInstall would skip pip anyway and the test could not see it try
import ultralytics.nn.tasks as tasks
real_check = tasks.check_requirements

def autoinstall(name, *args, **kwargs):  # the AutoInstall branch of torch_safe_load, whatever the name
    pip.append(f"AutoInstall {{name}}")
    return real_check(name, *args, **kwargs)

tasks.check_requirements = autoinstall
from ultralytics import YOLO
try:
    YOLO({ckpt!r})
    print("LOADED")
except BaseException as e:
    print("ERROR", type(e).__name__, e)
print("PIP", pip)
"""


def _load_without_fla(ckpt: Path, tmp_path: Path, **env) -> str:
    code = CHILD.format(ckpt=str(ckpt))
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("YOLO_", "ULTRALYTICS_", "PYTHON"))}
    environ.update(YOLO_CONFIG_DIR=os.environ["YOLO_CONFIG_DIR"], **env)  # fonts; AutoInstall left at its default (on)
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True, timeout=300,
                         cwd=tmp_path, env=environ)
    assert "PIP" in out.stdout, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "c2f_fla.pt"
    YOLO(Y.model_yaml("c2f_fla")).save(path)  # as ultralytics saves best.pt
    return path


@pytest.mark.slow
@pytest.mark.parametrize("other_fla", [False, True], ids=["no-fla", "another-fla"])
def test_missing_fla_teach_says_how_to_install_it_and_never_runs_pip(checkpoint, tmp_path, other_fla):
    """Without fla, and with another package's ``fla`` (as flash-linear-attention's) in its place."""
    if other_fla:
        (tmp_path / "other" / "fla").mkdir(parents=True)
        (tmp_path / "other" / "fla" / "__init__.py").write_text("")
    out = _load_without_fla(checkpoint, tmp_path, **({"PYTHONPATH_CHILD": str(tmp_path / "other")} if other_fla else {}))
    error = out.split("ERROR", 1)[1].split("\nPIP")[0]
    assert error.startswith(" KeyError") and Y.checkpoints.MISSING in error, out
    assert f"pip install '{Y.DISTRIBUTION} @ git+" in error
    assert out.rstrip().endswith("PIP []"), out  # neither AutoInstall nor pip, whatever the name


@pytest.mark.slow
def test_without_the_requirement_ultralytics_would_install_fla(checkpoint, tmp_path, monkeypatch):
    """The control: a plain pickle of the same model makes ultralytics run ``pip install fla``."""
    for cls in Y.checkpoints.modules_of(Y.blocks):
        monkeypatch.setattr(cls, "__reduce_ex__", object.__reduce_ex__)
    plain = tmp_path / "plain.pt"
    YOLO(checkpoint).save(plain)
    out = _load_without_fla(plain, tmp_path)
    pip = eval(out.split("PIP", 1)[1])
    assert any(cmd.split()[-1] == "fla" for cmd in pip), out  # pip install fla: someone else's package


@pytest.mark.slow
def test_safe_load_refuses_our_blocks_without_fla_and_installs_nothing(checkpoint, tmp_path):
    out = _load_without_fla(checkpoint, tmp_path, ULTRALYTICS_SAFE_LOAD="1")
    assert "TypeError" in out and "outside the supported Ultralytics checkpoint format" in out
    assert out.rstrip().endswith("PIP []")


@pytest.mark.slow
def test_safe_load_rebuilds_our_blocks_once_fla_yolo_is_imported(checkpoint, tmp_path):
    """ULTRALYTICS_SAFE_LOAD=1 (torch.load(weights_only=True) against an allow-list) in a fresh process."""
    code = textwrap.dedent(f"""
        import fla.yolo
        from ultralytics import YOLO
        from ultralytics.utils import SAFE_LOAD
        assert SAFE_LOAD
        m = YOLO({str(checkpoint)!r})
        print(sorted({{type(x).__name__ for x in m.model.modules() if type(x).__module__.startswith("fla.")}}))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "ULTRALYTICS_SAFE_LOAD": "1"})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "['Bottleneck_FLA', 'C2f_FLA', 'FocusedLinearAttention']" in out.stdout


def test_copies_skip_the_requirement_and_keep_the_weights():
    import copy

    torch.manual_seed(0)
    block = Y.C2f_FLA(32, 32, 1, True)
    for clone in (copy.deepcopy(block), copy.copy(block)):
        assert type(clone) is Y.C2f_FLA
        x = torch.rand(1, 32, 8, 6)
        torch.testing.assert_close(clone.eval()(x), block.eval()(x))
    assert copy.deepcopy(block).cv1.conv.weight is not block.cv1.conv.weight
    assert copy.copy(block).cv1 is block.cv1


FIXTURES = Path(__file__).parent / "fixtures"
#: saved with ``YOLO(...).save`` at commit a404f1e, before fla's modules moved into subpackages (fixtures/README.md)
OLD_CHECKPOINT = FIXTURES / "tiny-fla-a404f1e.pt"


@pytest.mark.slow
@pytest.mark.parametrize("safe_load", ["0", "1"])
def test_a_checkpoint_saved_before_the_layout_changed_still_loads_and_computes_the_same(safe_load):
    """Every block of ours in one tiny detector, pickled under the module paths of its day: loaded in a fresh
    process (plain torch.load, and ULTRALYTICS_SAFE_LOAD's allow-list), it gives the output it gave then."""
    code = textwrap.dedent(f"""
        import torch, fla.yolo
        from ultralytics import YOLO
        io = torch.load({str(FIXTURES / "tiny-fla-a404f1e.io.pt")!r})
        net = YOLO({str(OLD_CHECKPOINT)!r}).model.float().eval()
        with torch.no_grad():
            torch.testing.assert_close(net(io["input"])[0], io["output"])
        print(sorted({{type(x).__name__ for x in net.modules() if type(x).__module__.startswith("fla.")}}))
        """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "ULTRALYTICS_SAFE_LOAD": safe_load})
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[-2] == str(sorted(["Bottleneck_FLA", "C2f_FLA", "C3k2_FLA", "PSABlock_FLA",
                                                     "C2PSA_FLA", "FLABlock", "FocusedLinearAttention"]))
