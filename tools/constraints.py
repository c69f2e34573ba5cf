"""Write constraints.txt: the version of every package that fla-teach and its extras pull in, as installed in
this environment (the one the tests passed in). `make constraints` runs it; `make` installs with
`pip install -c constraints.txt`, so a newcomer gets the tested set, while pyproject.toml keeps ranges.

    python tools/constraints.py > constraints.txt

The pins hold for the Python they were made with, which the header records, and its later bug-fix releases (a pin
may need a newer micro release: soupsieve 4.1.4 needs 3.11.5). `python tools/constraints.py --pip-args` prints
`-c constraints.txt` where they hold and nothing elsewhere (saying so on stderr), so the Makefile installs the tested
set where it applies and pyproject.toml's ranges where it does not, instead of stopping in pip.
"""
from __future__ import annotations

import importlib.metadata as md
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = REPO / "constraints.txt"
HEADER = "# The versions the tests passed with (Python {}, Linux): `python tools/constraints.py > constraints.txt`."


def made_with(text: str) -> tuple[int, ...] | None:
    """The Python version a constraints file's header names, e.g. (3, 11, 7); None when it names none."""
    found = re.search(r"\(Python (\d+)\.(\d+)(?:\.(\d+))?", text.split("\n", 1)[0])
    return tuple(int(g) for g in found.groups() if g is not None) if found else None


def applies(made: tuple[int, ...] | None, running: tuple[int, ...]) -> bool:
    """Whether pins made on Python ``made`` hold on ``running``: the same minor version, and a micro release at least
    the one they were made on (a header without a micro release matches any)."""
    return made is not None and tuple(running[:2]) == made[:2] and tuple(running[:len(made)]) >= made


def pip_args(path: Path = CONSTRAINTS, running: tuple[int, ...] = tuple(sys.version_info[:3])) -> str:
    """``-c constraints.txt`` when its pins hold on this Python, else ``""`` (and a line on stderr saying why)."""
    made = made_with(path.read_text())
    if applies(made, running):
        return f"-c {path.name}"
    print(f"{path.name} was made with Python {'.'.join(map(str, made or ())) or '(not recorded)'}; this is "
          f"{'.'.join(map(str, running))}: installing from pyproject.toml's ranges instead of the tested pins",
          file=sys.stderr)
    return ""


def closure(requirements: list[str]) -> dict[str, str]:
    """name -> installed version of each requirement and, transitively, of what it requires (markers evaluated)."""
    from packaging.requirements import Requirement

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
    if sys.argv[1:] == ["--pip-args"]:
        print(pip_args())
        return
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    reqs = project["project"]["dependencies"] + [r for extra in project["project"]["optional-dependencies"].values()
                                                 for r in extra] + project["build-system"]["requires"]
    pins = closure(reqs)
    print(HEADER.format("%d.%d.%d" % sys.version_info[:3]))
    print("# Used as `pip install -c constraints.txt -e '.[...]'` by the Makefile; pyproject.toml keeps the ranges.")
    for name in sorted(pins):
        print(f"{name}=={pins[name]}")


if __name__ == "__main__":
    main()
