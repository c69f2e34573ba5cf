"""pyproject.toml's ranges and constraints.txt, the versions the tests passed with: every requirement (core, each
extra, the build's) has its tested version there, inside its range; every install of the Makefile uses them."""
from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from conftest import REPO, load_tool

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    extras = [r for extra in project["project"]["optional-dependencies"].values() for r in extra]
    return [Requirement(r) for r in project["project"]["dependencies"] + extras + project["build-system"]["requires"]]


def _tested() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_canonical(name)] = Version(version.strip())
    return pins


def test_every_requirement_has_a_tested_version_inside_its_range():
    tested = _tested()
    for req in _requirements():
        assert _canonical(req.name) in tested, f"{req.name}: not in constraints.txt (`make constraints`)"
        assert tested[_canonical(req.name)] in req.specifier, f"{req}: tested {tested[_canonical(req.name)]}"


def test_floors_are_the_ones_the_code_needs():
    """The floors the code has a reason for (pyproject.toml says which)."""
    floors = {_canonical(r.name): [s.version for s in r.specifier if s.operator == ">="] for r in _requirements()}
    assert Version(floors["torch"][0]) >= Version("2.4")  # torch.serialization.add_safe_globals
    assert Version(floors["setuptools"][0]) >= Version("77")  # license = "MIT", PEP 639
    assert Version(floors["ipywidgets"][0]) <= Version("7.7.1")  # Colab's preinstalled version must satisfy it


def test_ipywidgets_is_for_the_notebooks_only():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert not any(Requirement(r).name == "ipywidgets" for r in project["dependencies"])
    assert any(Requirement(r).name == "ipywidgets" for r in project["optional-dependencies"]["notebooks"])


def test_the_makefile_and_environment_yml_install_the_tested_versions():
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and " -e " in line]
    assert installs and all("$(PIN)" in line for line in installs), installs
    assert "PIN     = $$($(BIN)/python tools/constraints.py --pip-args)" in makefile
    assert "-c constraints.txt" in (REPO / "environment.yml").read_text()


def test_the_pins_apply_to_the_python_they_were_made_with_and_its_later_fixes():
    tool = load_tool("constraints")
    made = tool.made_with((REPO / "constraints.txt").read_text())
    assert made is not None and len(made) == 3, "constraints.txt's header names the Python it was made with"
    assert tool.made_with(tool.HEADER.format("3.12.1") + "\nx==1\n") == (3, 12, 1)
    assert tool.applies((3, 11, 7), (3, 11, 7)) and tool.applies((3, 11, 7), (3, 11, 9))
    assert not tool.applies((3, 11, 7), (3, 11, 2))  # Debian 12's Python: soupsieve's pin needs 3.11.5
    assert not tool.applies((3, 11, 7), (3, 12, 0)) and not tool.applies((3, 11, 7), (3, 10, 14))
    assert tool.applies((3, 11), (3, 11, 0)) and not tool.applies(None, (3, 11, 7))


def test_pip_args_name_the_file_where_the_pins_hold_and_say_why_not_elsewhere(tmp_path, capsys):
    tool = load_tool("constraints")
    pins = tmp_path / "constraints.txt"
    pins.write_text(tool.HEADER.format("3.11.7") + "\nsoupsieve==4.1.4\n")
    assert tool.pip_args(pins, (3, 11, 8)) == "-c constraints.txt" and capsys.readouterr().err == ""
    assert tool.pip_args(pins, (3, 11, 2)) == ""
    assert "made with Python 3.11.7; this is 3.11.2" in capsys.readouterr().err


@pytest.mark.slow
def test_the_wheel_carries_the_shipped_runs_and_the_yaml(tmp_path):
    """A pip install (Colab) has fla/results: notebooks 04 and 06 read the shipped full runs from the package."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
                    str(REPO)], check=True, capture_output=True)
    names = set(zipfile.ZipFile(next(tmp_path.glob("*.whl"))).namelist())
    shipped = [p.relative_to(REPO).as_posix() for p in (REPO / "fla" / "results").rglob("*") if p.is_file()]
    assert "fla/results/ablation/ablation.csv" in shipped
    assert "fla/results/kernelfit/kernelfit.csv" in shipped  # notebook 02 reads the kernel fit
    assert "fla/results/helmet-cpu60/results.csv" in shipped  # and each run's test detections, for the bootstrap
    assert sum(name.endswith("/test_detections.npz") for name in shipped) == 9
    assert set(shipped) <= names, set(shipped) - names
    assert "fla/yolo/cfg/yolov8-base.yaml" in names
