"""Shipping a training folder (fla.experiments.training.shipped): only what the analysis reads, with its provenance;
the analysis of the shipped copy gives what it gave on the original; notebook 06 prints the shipped numbers.

The runs here are made up with known answers (helpers.detections: how many boxes each model finds per image),
laid out as ``fla train`` writes them: no training, so these tests take seconds, not minutes."""
from __future__ import annotations

import json

import numpy as np
import pytest

import fla.experiments.training as T
from fla.experiments.training import shipped as S
from fla.files import read_csv, write_csv

from conftest import REPO
from helpers import detections
from helpers import read_csv as read_raw

EPOCHS, IMGSZ = 3, 160
LOG = ["epoch", "time", "train/box_loss", "metrics/mAP50(B)", "val/box_loss"]


def fake_runs(out, seeds=(0, 1)):
    """base and c2f_fla × ``seeds``: results.csv rows, per-run epoch logs and test detections (c2f_fla finds more)."""
    rng = np.random.default_rng(0)
    rows = []
    for variant, extra in (("base", 0), ("c2f_fla", 1)):
        for seed in seeds:
            run = T.run_dir(out, variant, seed, EPOCHS, IMGSZ)
            run.mkdir(parents=True)
            hits = np.clip(rng.integers(0, 3, 40) + extra * (rng.random(40) < 0.3), 0, 3)
            d = detections(hits, seed=seed)
            d.save(run / T.DETECTIONS)
            test = d.metrics()
            write_csv(run / "results.csv", LOG, (dict(zip(LOG, [e, 10.0 * e, 3 - 0.5 * e - 0.1 * extra, 0.1 * e, 2 - 0.3 * e]))
                                                 for e in range(1, EPOCHS + 1)))
            rows.append({"variant": variant, "seed": seed, "epochs": EPOCHS, "imgsz": IMGSZ, "device": "cpu",
                         "map50": test["map50"] - 0.05, "map50_95": test["map50_95"] - 0.03, "precision": 0.5,
                         "recall": 0.4, "params": 3_011_238 + extra, "gflops": 8.19, "s_per_epoch": 11.37 + seed + 0.5 * extra,
                         **{f"test_{k}": v for k, v in test.items()}})
    write_csv(out / "results.csv", list(T.COLUMNS), rows)
    (out / "settings.json").write_text(json.dumps({"start": "scratch"}))
    T.write_comparisons(T.compare(T.read_results(out), out, n_boot=50), out)
    return out


def test_ship_copies_what_the_analysis_reads_and_no_checkpoint(tmp_path, monkeypatch):
    out = fake_runs(tmp_path / "out")
    (T.run_dir(out, "base", 0, EPOCHS, IMGSZ) / "weights").mkdir()
    (T.run_dir(out, "base", 0, EPOCHS, IMGSZ) / "weights" / "best.pt").write_bytes(b"0" * 1000)
    dest = S.ship(out, tmp_path / "shipped", planned=9)
    files = sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())
    assert {"results.csv", "paired.csv", "settings.json", "provenance.json"} <= set(files)
    assert not any(f.endswith(".pt") for f in files)
    for variant in ("base", "c2f_fla"):
        for seed in (0, 1):
            run = T.run_dir(dest, variant, seed, EPOCHS, IMGSZ)
            assert (run / T.DETECTIONS).is_file() and (run / "results.csv").is_file()

    p = S.provenance(dest)
    assert p["runs"] == 4 and p["planned"] == 9 and p["complete"] is False and p["commit"] and "cores" in p["machine"]
    assert S.describe(dest).startswith("shipped runs (PARTIAL: 4 of 9 runs)")
    assert S.provenance(S.ship(out, tmp_path / "all", planned=4))["complete"] is True

    # the bootstrap over the shipped detections gives the numbers computed on the original folder
    again = T.compare(T.read_results(dest), dest, n_boot=50)
    kept = T.read_comparisons(dest)
    assert [(c["variant"], c["metric"], round(c["diff"], 6), round(c["low"], 6)) for c in again] == \
           [(c["variant"], c["metric"], round(c["diff"], 6), round(c["low"], 6)) for c in kept]
    assert kept[0]["diff"] > 0  # c2f_fla was made to find more boxes

    monkeypatch.setenv("FLA_SHIPPED", str(dest))
    assert S.shipped_folder() == dest
    monkeypatch.setenv("FLA_SHIPPED", str(tmp_path / "nothing"))
    assert S.shipped_folder() is None


def test_the_docs_tables_of_a_training_folder(tmp_path):
    out = fake_runs(tmp_path / "out")
    rows = T.read_results(out)
    lines = T.run_table(out, rows).splitlines()
    assert len(lines) == 2 + len(rows)
    first = rows[0]
    assert lines[2] == (f"| base | 0 | {first['map50']:.3f} | {first['test_map50']:.3f} | {first['test_map50_95']:.3f} | "
                        f"{first['test_precision']:.3f} | {first['test_recall']:.3f} | 11.4 | {10 * EPOCHS} |")  # whole run: the log's time at the last epoch
    (T.run_dir(out, "base", 1, EPOCHS, IMGSZ) / "results.csv").unlink()
    assert T.run_table(out, rows).splitlines()[3].endswith("| – |")  # no log: no whole-run time

    (c50,) = [c for c in T.read_comparisons(out) if c["metric"] == "map50"]
    paired = T.paired_table(T.read_comparisons(out)).splitlines()
    assert len(paired) == 4 and paired[2].startswith(f"| c2f_fla − base | map50 | 2 | {c50['diff']:+.3f} | "
                                                     f"[{c50['low']:+.3f}, {c50['high']:+.3f}] | {c50['se']:.3f} | ")
    assert paired[2].endswith(f"| {c50['per_seed'][0]:+.3f}, {c50['per_seed'][1]:+.3f} | {c50['seed_sd']:.3f} |")


def test_the_ship_tool_records_the_note_and_prints_the_docs_tables(tmp_path, capsys):
    from conftest import load_tool

    out = fake_runs(tmp_path / "out")
    dest = tmp_path / "shipped"
    assert load_tool("ship_helmet_runs").main([str(out), "--dest", str(dest), "--n-boot", "20",
                                               "--note", "seed 0 ran twice", "--commit", "abc1234", "--docs", str(tmp_path / "docs")]) == 0
    printed = capsys.readouterr().out
    assert S.provenance(dest)["note"] == "seed 0 ran twice" and S.provenance(dest)["commit"] == "abc1234" and S.describe(dest) in printed
    rows = T.read_results(dest)
    for table in (T.run_table(dest, rows), T.variant_table(rows), T.paired_table(T.read_comparisons(dest))):
        assert table in printed
    assert T.read_comparisons(dest)[0]["n_boot"] == 20  # the tool's bootstrap, shipped
    for figure in ("training-cpu60-curves.png", "training-cpu60-paired.png"):
        assert (tmp_path / "docs" / figure).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_first_epoch_above_reads_each_runs_log(tmp_path):
    out = fake_runs(tmp_path / "out")  # every log's mAP50 is 0.1 × epoch
    rows = T.read_results(out)
    assert T.first_epoch_above(out, rows, 0.15) == [2] * len(rows)
    assert T.first_epoch_above(out, rows, 0.5) == [None] * len(rows)  # never reached in 3 epochs
    (T.run_dir(out, "base", 0, EPOCHS, IMGSZ) / "results.csv").unlink()
    assert T.first_epoch_above(out, rows, 0.0)[:2] == [None, 1]  # no log: no epoch


def test_ship_refuses_a_folder_without_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        S.ship(tmp_path, tmp_path / "dest")


def test_the_checked_in_runs_match_their_provenance():
    folder = S.shipped_folder()
    if folder is None:
        pytest.skip("no shipped runs in this checkout")
    p = S.provenance(folder)
    _, rows = read_raw(folder / "results.csv")
    assert p["runs"] == len(rows) and p["complete"] == (len(rows) >= p["planned"])
    for r in rows:
        run = T.run_dir(folder, r["variant"], int(r["seed"]), int(r["epochs"]), int(r["imgsz"]))
        assert (run / T.DETECTIONS).is_file(), run
    assert json.loads((folder / "provenance.json").read_text())["command"].startswith("python -m fla train")


def test_the_docs_tables_are_generated_from_the_shipped_runs():
    folder = S.shipped_folder()
    if folder is None:
        pytest.skip("no shipped runs in this checkout")
    text = (REPO / "docs" / "training.md").read_text()
    rows = T.read_results(folder)
    for table in (T.run_table(folder, rows), T.variant_table(rows), T.paired_table(T.read_comparisons(folder))):
        assert table in text, "paste the tables tools/ship_helmet_runs.py prints into docs/training.md"
    assert S.provenance(folder)["commit"] in text


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_notebook_06_analyses_the_shipped_runs_and_prints_their_numbers(helmet_copy, tmp_path, monkeypatch):
    """06 with EXPERIMENT = "none" reads the shipped folder only: its printed numbers are those of the CSV files."""
    import nbformat
    from nbclient import NotebookClient

    from jupyter_env import KERNEL, isolated_jupyter_env, use_in_this_process

    dest = S.ship(fake_runs(tmp_path / "out"), tmp_path / "shipped")
    path = REPO / "notebooks" / "06-helmet-training.ipynb"
    nb = nbformat.read(path, as_version=4)
    (switch,) = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith('EXPERIMENT = "mini"')]
    switch.source = switch.source.replace('EXPERIMENT = "mini"', 'EXPERIMENT = "none"', 1)
    env = isolated_jupyter_env(tmp_path / "jupyter")
    env.update(FLA_SHIPPED=str(dest), FLA_DATA=str(helmet_copy))
    use_in_this_process(env, monkeypatch)
    NotebookClient(nb, timeout=300, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    printed = "\n".join(o.get("text", "") or o.get("data", {}).get("text/markdown", "")
                        for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "shipped runs (PARTIAL: 4 of 9 runs)" in printed
    assert "no training: the sections below read the shipped runs" in printed
    rows = read_csv(dest / "results.csv", T.COLUMNS)
    base0 = next(r for r in rows if r["variant"] == "base" and r["seed"] == 0)
    # section 4 prints each run's val − test gap from the shipped results.csv
    assert f"base s0 {base0['map50'] - base0['test_map50']:+.3f}" in printed
    paired = T.read_comparisons(dest)[0]
    assert f"ΔmAP50 {paired['diff']:+.3f} [{paired['low']:+.3f}, {paired['high']:+.3f}]" in printed  # section 5
    assert "c2f_fla − base, seed 0 alone" in printed and "df = 1" in printed  # sections 6 and 7 (two seeds)
    power = printed.index("order of magnitude only")
    assert power < printed.index("seeds ↓ / test images →")  # the warning comes before the power table
