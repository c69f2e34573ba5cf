"""The helmet data the data and training tests read, and ``make data``, which fetches it once.

The tests read ``$FLA_SHARED/data/helmet`` (the prepared subset) and ``.../helmet-source`` (the
raw files as the carrier repository holds them, which test_data.py serves on 127.0.0.1 to test the
download). ``$FLA_SHARED`` defaults to ``../shared`` beside the clone when it exists, else to a
folder in the user cache that ``make data`` fills:

    python tests/shared_data.py [--base-url URL] [--timeout S]

It downloads the raw files listed in fla's manifests (about 11 MB), checks each against its
sha256, then builds the prepared subset from them with ``fla.data.get_data(source=...)``. Offline
it gives up within ``--timeout`` seconds, says how to get the data, and exits 0: the tests that
need it skip with the same message (conftest.py), and everything else runs.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import socket
import sys
import threading
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BESIDE = REPO.parent / "shared"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fla" / "test-shared"
SHARED = Path(os.environ["FLA_SHARED"]) if os.environ.get("FLA_SHARED") else BESIDE if BESIDE.is_dir() else CACHE

HOW_TO = (f"get the helmet data with `make data` (downloads it once, ~11 MB, into {SHARED}), "
          "or set FLA_SHARED to a folder holding data/helmet and data/helmet-source")


#: the skip reason of every test that needs the data and finds none (conftest.py's ``needs_data`` marker)
NO_DATA = f"no helmet data under {SHARED}/data: {HOW_TO}"


def present(shared: Path = SHARED) -> bool:
    """Whether ``shared`` holds the helmet data: the one test of it that every data test goes by."""
    return (shared / "data" / "helmet" / "data.yaml").is_file() and (shared / "data" / "helmet-source").is_dir()


def private_helmet(dest: Path, shared: Path = SHARED) -> Path | None:
    """The prepared subset copied to ``dest`` (once), writable and without label caches: ultralytics writes
    ``labels/*.cache`` beside the labels, and the shared copy must stay untouched. Its data.yaml, or None when
    there is no shared subset."""
    helmet = shared / "data" / "helmet"
    if not (helmet / "data.yaml").is_file():
        return None
    if not (dest / "data.yaml").is_file():
        import shutil

        shutil.copytree(helmet, dest, ignore=shutil.ignore_patterns("*.cache"), dirs_exist_ok=True)
        for path in [dest, *dest.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)
    return dest / "data.yaml"


def reachable(url: str, timeout: float) -> str | None:
    """None when a TCP connection to the URL's host opens within ``timeout`` s (DNS included), else why not."""
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result: list[str | None] = ["timed out"]

    def probe():
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            result[0] = None
        except OSError as e:
            result[0] = str(e) or type(e).__name__

    thread = threading.Thread(target=probe, daemon=True)  # getaddrinfo has no timeout of its own
    thread.start()
    thread.join(timeout)
    return result[0]


def fetch(shared: Path, base_url: str, timeout: float = 30) -> Path:
    """Download the raw files into ``shared/data/helmet-source`` (verified), build ``shared/data/helmet``."""
    from fla.data import SPLITS, get_data, manifest

    source = shared / "data" / "helmet-source"
    wanted = {(e[path_key], e[sha_key]) for split in SPLITS for e in manifest(split)
              for path_key, sha_key in (("source", "sha256"), ("label_source", "sha256_label_src"))}

    def get(item: tuple[str, str]) -> None:
        path, sha = item
        dest = source / path
        if dest.is_file() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha:
            return  # a rerun fetches only what is missing
        with urllib.request.urlopen(f"{base_url.rstrip('/')}/{urllib.parse.quote(path)}", timeout=timeout) as r:
            data = r.read()
        if hashlib.sha256(data).hexdigest() != sha:
            raise RuntimeError(f"{path}: sha256 does not match fla's manifest")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.part")
        tmp.write_bytes(data)
        os.replace(tmp, dest)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(get, sorted(wanted)))
    yaml_path = get_data(out=shared / "data" / "helmet", source=source, progress=False)
    # like ../shared's: no `path:`, so ultralytics resolves the splits next to the file and the
    # tests' private copies of the folder train on the copy
    yaml_path.write_text(re.sub(r"^path: .*\n", "", yaml_path.read_text(), flags=re.M))
    return yaml_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", help="raw-file host and commit (default: fla.data's)")
    parser.add_argument("--timeout", type=float, default=5, help="seconds to wait for the host before giving up")
    args = parser.parse_args(argv)
    if present():  # the usual case: answered before importing fla (and torch), so `make test` pays nothing
        print(f"helmet data: {SHARED}/data")
        return 0
    if args.base_url is None:
        from fla.data import DEFAULT_BASE_URL

        args.base_url = DEFAULT_BASE_URL
    why = reachable(args.base_url, args.timeout)
    if why is not None:
        print(f"helmet data: {urllib.parse.urlsplit(args.base_url).hostname} not reachable ({why}); "
              f"the data and training tests will skip.\n  To run them later, {HOW_TO}.")
        return 0
    print(f"helmet data: downloading into {SHARED}/data ...", flush=True)
    try:
        print(f"helmet data: {fetch(SHARED, args.base_url).parent}")
    except Exception as e:  # noqa: BLE001 - a failed fetch must not stop `make test`: the tests skip instead
        print(f"helmet data: download failed ({e}); the data and training tests will skip.\n"
              "  Run `make data` again to resume.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
