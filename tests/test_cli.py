"""The command line's front door, in this process (``helpers.cli``): ``python -m fla`` itself runs as a subprocess
in test_bench and test_ablate."""
import pytest
from helpers import cli


def test_help_lists_the_verbs():
    out = cli("--help")
    assert out.returncode == 0
    for verb in ("data", "train", "bench", "ablate", "models"):
        assert verb in out.stdout


def test_verb_usage_errors_are_one_line():
    out = cli("bench", "--frobnicate")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["fla bench: error: unrecognized arguments: --frobnicate (see fla bench --help)"]


def test_at_least():
    import argparse

    from fla.cli import at_least

    assert at_least(1)("3") == 3 and at_least(0, float)("0.5") == 0.5
    for bad in ("0", "x", "1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            at_least(1)(bad)


def test_missing_or_unknown_verb_is_a_usage_error():
    for args in ((), ("fly",)):
        out = cli(*args)
        assert out.returncode == 2
        assert "usage: fla" in out.stderr
