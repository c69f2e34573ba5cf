"""Shipping a training folder (fla.experiments.training.shipped): only what the analysis reads, with its provenance,
and the analysis of the shipped copy gives what it gave on the original."""
from __future__ import annotations

import json
import os

import pytest

import fla.experiments.training as T
from fla.experiments.training import shipped as S
from fla.files import read_csv

from conftest import REPO, SHARED
from helpers import read_csv as read_raw


def trained_data(out):
    """The data.yaml the runs in ``out`` trained on (ultralytics' args.yaml of the first run)."""
    import yaml

    args = next((out / "runs").glob("*/args.yaml"))
    return yaml.safe_load(args.read_text())["data"]


@pytest.fixture(scope="module")
def trained(helmet_copy, tmp_path_factory):
    """Quick runs of base and c2f_fla, one seed, with their paired bootstrap (paired.csv)."""
    if not (SHARED / "data" / "helmet" / "data.yaml").is_file():
        pytest.skip(f"helmet subset not at {SHARED / 'data' / 'helmet'}")
    out = tmp_path_factory.mktemp("train")
    T.train_all(["base", "c2f_fla"], [0], helmet_copy, out, epochs=1, imgsz=160, quick=True, n_boot=50)
    return out


@pytest.mark.slow
def test_ship_copies_what_the_analysis_reads_and_no_checkpoint(trained, tmp_path, monkeypatch):
    dest = S.ship(trained, tmp_path / "shipped", planned=9)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert {"results.csv", "paired.csv", "provenance.json"} <= set(files)
    assert not any(f.endswith(".pt") for f in files)
    for variant in ("base", "c2f_fla"):
        run = T.run_dir(dest, variant, 0, 1, 160)
        assert (run / T.DETECTIONS).is_file() and (run / "results.csv").is_file()
    assert sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) < 1_000_000

    p = S.provenance(dest)
    assert p["runs"] == 2 and p["planned"] == 9 and p["complete"] is False and p["commit"] and "cores" in p["machine"]
    assert S.describe(dest).startswith("shipped runs (PARTIAL: 2 of 9 runs)")

    # the bootstrap over the shipped detections gives the numbers computed on the original folder
    again = T.compare(T.read_results(dest), dest, n_boot=50)
    kept = T.read_comparisons(dest)
    assert [(c["variant"], c["metric"], round(c["diff"], 6), round(c["low"], 6)) for c in again] == \
           [(c["variant"], c["metric"], round(c["diff"], 6), round(c["low"], 6)) for c in kept]

    monkeypatch.setenv("FLA_SHIPPED", str(dest))
    assert S.shipped() == dest
    monkeypatch.setenv("FLA_SHIPPED", str(tmp_path / "nothing"))
    assert S.shipped() is None


def test_ship_refuses_a_folder_without_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        S.ship(tmp_path, tmp_path / "dest")


def test_the_checked_in_runs_match_their_provenance():
    folder = S.shipped()
    if folder is None:
        pytest.skip("no shipped runs in this checkout")
    p = S.provenance(folder)
    _, rows = read_raw(folder / "results.csv")
    assert p["runs"] == len(rows) and p["complete"] == (len(rows) >= p["planned"])
    for r in rows:
        run = T.run_dir(folder, r["variant"], int(r["seed"]), int(r["epochs"]), int(r["imgsz"]))
        assert (run / T.DETECTIONS).is_file(), run
    assert json.loads((folder / "provenance.json").read_text())["command"].startswith("python -m fla train")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebook_06_analyses_the_shipped_runs_and_prints_their_numbers(trained, tmp_path):
    """06 with EXPERIMENT = "none" reads the shipped folder only: its printed numbers are those of the CSV files."""
    import nbformat
    from nbclient import NotebookClient

    from jupyter_env import KERNEL, isolated_jupyter_env

    dest = S.ship(trained, tmp_path / "shipped")
    path = REPO / "notebooks" / "06-helmet-training.ipynb"
    nb = nbformat.read(path, as_version=4)
    (switch,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith('EXPERIMENT = "mini"')]
    switch.source = switch.source.replace('EXPERIMENT = "mini"', 'EXPERIMENT = "none"', 1)
    env = isolated_jupyter_env(tmp_path / "jupyter")
    env.update(FLA_SHIPPED=str(dest), FLA_DATA=str(trained_data(trained)))
    for key in ("JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_PLATFORM_DIRS"):
        os.environ[key] = env[key]  # the kernel manager in this process reads these (restored below)
    try:
        NotebookClient(nb, timeout=300, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    finally:
        for key in ("JUPYTER_PATH", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR", "JUPYTER_PLATFORM_DIRS"):
            os.environ.pop(key, None)
    printed = "\n".join(o.get("text", "") or o.get("data", {}).get("text/markdown", "")
                        for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "shipped runs (PARTIAL: 2 of 9 runs)" in printed
    assert "no training: the sections below read the shipped runs" in printed
    rows = read_csv(dest / "results.csv", T.COLUMNS)
    base = next(r for r in rows if r["variant"] == "base")
    # section 4's table: mean s/epoch per variant, from the shipped results.csv (one seed: the value itself)
    assert f"| {base['s_per_epoch']:.2f} |" in printed, printed[-3000:]
    assert "validation below test in" in printed and "c2f_fla − base, seed 0 alone" in printed
