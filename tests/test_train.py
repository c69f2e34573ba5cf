"""``fla train`` end to end on the real helmet subset: tiny CPU runs (1 epoch, small images)."""
from __future__ import annotations

import csv
import math
import shutil
import subprocess
import sys
import textwrap

import pytest

import fla.train as T
from fla import FocusedLinearAttention
from fla.__main__ import main

from conftest import REPO, SHARED

HELMET = SHARED / "data" / "helmet"
QUICK = (T.QUICK["epochs"], T.QUICK["imgsz"])
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (HELMET / "data.yaml").is_file(), reason=f"helmet subset not at {HELMET}"),
]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A private, writable copy: ultralytics writes label caches next to the labels."""
    root = tmp_path_factory.mktemp("helmet") / "helmet"
    shutil.copytree(HELMET, root)
    for p in [root, *root.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return root / "data.yaml"


def _package_files():
    return sorted(p for p in (REPO / "fla").rglob("*") if "__pycache__" not in p.parts)


@pytest.fixture(scope="module")
def quick_run(data, tmp_path_factory):
    """``fla train --quick`` of all three variants; returns its output folder."""
    out = tmp_path_factory.mktemp("quick")
    before = _package_files()
    assert main(["train", "--quick", "--data", str(data), "--out", str(out)]) == 0
    assert _package_files() == before, "training wrote into the package"
    return out


def _csv(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        return reader.fieldnames, list(reader)


def test_quick_cli_writes_table_markdown_and_curves(quick_run):
    header, rows = _csv(quick_run / "results.csv")
    assert header == T.COLUMNS
    assert [r["variant"] for r in rows] == ["base", "c2f_fla", "neck_fla"]
    for r in rows:
        assert (int(r["epochs"]), int(r["imgsz"]), r["device"]) == (*QUICK, "cpu")
        for col in ("map50", "map50_95", "precision", "recall", "gflops", "s_per_epoch"):
            assert math.isfinite(float(r[col])), (r["variant"], col)
        assert 0 <= float(r["map50_95"]) <= float(r["map50"]) <= 1
        assert float(r["s_per_epoch"]) > 0
        assert (T.run_dir(quick_run, r["variant"], 0, *QUICK) / "weights" / "best.pt").is_file()
    params = {r["variant"]: int(r["params"]) for r in rows}
    gflops = {r["variant"]: float(r["gflops"]) for r in rows}
    for v in ("c2f_fla", "neck_fla"):
        assert params["base"] < params[v] and gflops["base"] < gflops[v]
    md = (quick_run / "results.md").read_text()
    assert all(f"| {v} |" in md for v in params) and "±" in md and "time vs base" in md
    assert (quick_run / "curves.png").stat().st_size > 10_000


def test_rerun_skips_finished_runs_and_trains_missing_ones(quick_run, data, capsys):
    rows = T.read_results(quick_run)
    weights = T.run_dir(quick_run, "base", 0, *QUICK) / "weights" / "best.pt"
    stamp = weights.stat().st_mtime_ns
    T.write_results([r for r in rows if r["variant"] != "neck_fla"], quick_run)  # as if stopped before neck_fla
    capsys.readouterr()
    assert main(["train", "--quick", "--data", str(data), "--out", str(quick_run)]) == 0
    log = capsys.readouterr().out
    assert "[1/3] base seed 0 (1 epochs, imgsz 160): done before, skipped" in log
    assert "[2/3] c2f_fla seed 0 (1 epochs, imgsz 160): done before, skipped" in log
    assert "[3/3] neck_fla seed 0 (1 epochs, imgsz 160): training" in log
    assert weights.stat().st_mtime_ns == stamp, "a finished run was trained again"
    assert [r["variant"] for r in T.read_results(quick_run)] == ["base", "c2f_fla", "neck_fla"]


def test_interrupted_sweep_keeps_finished_rows(data, tmp_path, monkeypatch):
    real, calls = T.train_one, []

    def stop_on_second(*args, **kwargs):
        calls.append(args[:2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T, "train_one", stop_on_second)
    with pytest.raises(KeyboardInterrupt):
        T.train_all(["neck_fla"], [0, 1], data, tmp_path, epochs=1, imgsz=96, quick=True)
    assert [(r["variant"], r["seed"]) for r in T.read_results(tmp_path)] == [("neck_fla", 0)]


@pytest.fixture(scope="module")
def seeded_runs(data, tmp_path_factory):
    """c2f_fla trained with seeds 0, 0, 1 at imgsz 128; records the (H, W) every attention layer saw in eval mode."""
    seen, forward = set(), FocusedLinearAttention.forward

    def recording(self, x):
        if not self.training:
            seen.add(tuple(x.shape[-2:]))
        return forward(self, x)

    FocusedLinearAttention.forward = recording
    try:
        runs = []
        for k, seed in enumerate([0, 0, 1]):
            out = tmp_path_factory.mktemp(f"seed{k}")
            row = T.train_one("c2f_fla", seed, data, out, epochs=1, imgsz=128, quick=True)
            _, log = _csv(T.run_dir(out, "c2f_fla", seed, 1, 128) / "results.csv")
            runs.append((row, log))
    finally:
        FocusedLinearAttention.forward = forward
    return runs, seen


def _losses(log):
    return [{k: v for k, v in epoch.items() if "loss" in k} for epoch in log]


def test_same_seed_on_cpu_gives_identical_metrics(seeded_runs):
    (a, log_a), (b, log_b), (c, log_c) = seeded_runs[0]
    metrics = [k for k in T.COLUMNS if k != "s_per_epoch"]
    assert {k: a[k] for k in metrics} == {k: b[k] for k in metrics}
    assert _losses(log_a) == _losses(log_b)  # the mAPs of one epoch may all be 0; the losses never are
    assert _losses(log_a) != _losses(log_c), "a different seed must change the run"


def test_fla_validates_on_rectangular_batches(seeded_runs):
    _, seen = seeded_runs
    assert any(h != w for h, w in seen), f"validation never gave the attention a non-square map: {sorted(seen)}"


def test_best_checkpoint_reloads_and_predicts_in_a_fresh_process(quick_run):
    best = T.run_dir(quick_run, "c2f_fla", 0, *QUICK) / "weights" / "best.pt"
    image = next((HELMET / "images" / "val").glob("*.jpg"))
    code = textwrap.dedent(f"""
        import fla
        from ultralytics import YOLO
        model = YOLO({str(best)!r})
        kinds = {{type(m).__name__ for m in model.model.modules()}}
        assert {{"C2f_FLA", "FocusedLinearAttention"}} <= kinds, kinds
        result = model.predict({str(image)!r}, imgsz=160, conf=0.0, device="cpu", verbose=False)[0]
        print("boxes", len(result.boxes), "names", result.names)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=quick_run)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "names {0: 'helmet', 1: 'head'}" in out.stdout
    assert int(out.stdout.split()[1]) > 0


def test_amp_check_never_downloads(monkeypatch, tmp_path):
    import torch
    from ultralytics import utils

    monkeypatch.setattr(utils, "WEIGHTS_DIR", tmp_path)  # yolo26n.pt absent: the real check would download it
    calls = []
    check = T.amp_check_offline(lambda model: calls.append(model) or "real")
    on_gpu = torch.nn.Linear(1, 1, device="meta")  # any non-CPU device stands for the GPU here
    assert check(on_gpu) is True and calls == []
    assert check(torch.nn.Linear(1, 1)) == "real"  # CPU: the real check (it returns False before any download)
    (tmp_path / "yolo26n.pt").touch()
    assert check(on_gpu) == "real"


def test_summary_gives_mean_spread_and_time_vs_the_base_of_the_same_scale():
    def row(variant, seed, map50, s):
        return dict(variant=variant, seed=seed, epochs=2, imgsz=160, device="cpu", map50=map50, map50_95=map50 / 2,
                    precision=0.5, recall=0.5, params=1_000_000, gflops=8.0, s_per_epoch=s)

    rows = [row("base", 0, 0.2, 10.0), row("base", 1, 0.4, 12.0), row("c2f_fla", 0, 0.3, 11.0), row("c2f_fla", 1, 0.3, 11.0),
            row("base@s", 0, 0.5, 20.0), row("c2f_fla@s", 0, 0.6, 30.0)]
    lines = {line.split(" | ")[0].strip("| "): line for line in T.summary_table(rows).splitlines()[2:]}
    assert "| 2 |" in lines["base"] and "0.300 ± 0.141" in lines["base"] and "11.00" in lines["base"]
    assert "0.300 ± 0.000" in lines["c2f_fla"] and lines["c2f_fla"].endswith("| 1.00× |")
    assert lines["c2f_fla@s"].endswith("| 1.50× |") and "0.600 ± 0.000" in lines["c2f_fla@s"]
