import subprocess
import sys


def _fla(*args):
    return subprocess.run([sys.executable, "-m", "fla", *args], capture_output=True, text=True, timeout=120)


def test_help_lists_the_verbs():
    out = _fla("--help")
    assert out.returncode == 0
    for verb in ("data", "train", "bench"):
        assert verb in out.stdout


def test_missing_or_unknown_verb_is_a_usage_error():
    for args in ((), ("fly",)):
        out = _fla(*args)
        assert out.returncode == 2
        assert "usage: fla" in out.stderr
