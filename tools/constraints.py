"""Write constraints.txt: the version of every package that fla-teach and its extras pull in, as installed in
this environment (the one the tests passed in). `make constraints` runs it; `make` installs with
`pip install -c constraints.txt`, so a newcomer gets the tested set, while pyproject.toml keeps ranges.

    python tools/constraints.py > constraints.txt
"""
from __future__ import annotations

import importlib.metadata as md
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parents[1]


def closure(requirements: list[str]) -> dict[str, str]:
    """name -> installed version of each requirement and, transitively, of what it requires (markers evaluated)."""
    found, todo = {}, [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker and not req.marker.evaluate({"extra": extra}):
            continue
        name = re.sub(r"[-_.]+", "-", req.name).lower()
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # an optional dependency for another platform
        if name not in found:
            found[name] = dist.version
            todo += [(Requirement(r), "") for r in dist.requires or []]
        for e in req.extras:
            todo += [(Requirement(r), e) for r in dist.requires or []]
    return found


def main() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = project["project"]["dependencies"] + [r for extra in project["project"]["optional-dependencies"].values()
                                                 for r in extra] + project["build-system"]["requires"]
    pins = closure(reqs)
    print("# The versions the tests passed with (Python %d.%d, Linux): `python tools/constraints.py > constraints.txt`."
          % sys.version_info[:2])
    print("# Used as `pip install -c constraints.txt -e '.[...]'` by the Makefile; pyproject.toml keeps the ranges.")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
