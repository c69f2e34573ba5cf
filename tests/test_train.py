"""``fla train`` end to end on the real helmet subset: tiny CPU runs (1 epoch, small images); its usage errors."""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import fla.experiments.training as T
from fla import FocusedLinearAttention
from fla.cli import main
from fla.experiments.stats import Detections
from fla.runtime import cpu_threads
from fla.yolo import VARIANTS

from conftest import REPO, SHARED
from helpers import cli, detections, read_csv


HELMET = SHARED / "data" / "helmet"
QUICK = (T.QUICK["epochs"], T.QUICK["imgsz"])


@pytest.fixture(scope="module")
def data(helmet, tmp_path_factory):
    """A private, writable copy: ultralytics writes label caches next to the labels."""
    root = tmp_path_factory.mktemp("helmet") / "helmet"
    shutil.copytree(helmet, root)
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


@pytest.mark.slow
def test_quick_cli_writes_table_markdown_and_curves(quick_run):
    header, rows = read_csv(quick_run / "results.csv")
    assert header == list(T.COLUMNS)
    assert [r["variant"] for r in rows] == ["base", "c2f_fla", "neck_fla"]
    for r in rows:
        assert (int(r["epochs"]), int(r["imgsz"]), r["device"]) == (*QUICK, f"cpu ({cpu_threads()} threads)")
        for col in ("map50", "map50_95", "precision", "recall", "gflops", "s_per_epoch", *T.TEST_COLUMNS):
            assert math.isfinite(float(r[col])), (r["variant"], col)
        assert 0 <= float(r["map50_95"]) <= float(r["map50"]) <= 1
        assert 0 <= float(r["test_map50_95"]) <= float(r["test_map50"]) <= 1
        assert float(r["s_per_epoch"]) > 0
        folder = T.run_dir(quick_run, r["variant"], 0, *QUICK)
        assert (folder / "weights" / "best.pt").is_file() and (folder / T.DETECTIONS).is_file()
    params = {r["variant"]: int(r["params"]) for r in rows}
    gflops = {r["variant"]: float(r["gflops"]) for r in rows}
    for v in ("c2f_fla", "neck_fla"):
        assert params["base"] < params[v] and gflops["base"] < gflops[v]
    md = (quick_run / "results.md").read_text()
    assert all(f"| {v} |" in md for v in params) and "±" in md and "time vs base" in md and "test mAP50" in md
    paired = [line for line in md.splitlines() if line.startswith("- `")]
    assert [line.split("`")[1] for line in paired] == ["c2f_fla", "neck_fla"]
    assert all(line.count("0: ") == 2 and "1 seed, 100 test images" in line for line in paired), paired
    _, table = read_csv(quick_run / "paired.csv")
    assert [(r["variant"], r["metric"]) for r in table] == [(v, m) for v in ("c2f_fla", "neck_fla") for m in ("map50", "map50_95")]
    assert all(float(r["low"]) <= float(r["diff"]) <= float(r["high"]) and r["n_boot"] == "200" for r in table)
    assert (quick_run / "curves.png").stat().st_size > 10_000
    assert json.loads((quick_run / "settings.json").read_text()) == {"start": "scratch"}


@pytest.mark.slow
def test_test_columns_score_best_pt_on_the_test_split_only(quick_run, data):
    """The saved detections are best.pt's on the test images (none of them a validation image), and re-scoring them
    with ``fla.experiments.stats`` (the bootstrap's path) gives the test columns that ultralytics' validator wrote."""
    row = next(r for r in T.read_results(quick_run) if r["variant"] == "c2f_fla")
    saved = Detections.load(T.run_dir(quick_run, "c2f_fla", 0, *QUICK) / T.DETECTIONS)
    folder = data.parent / "images"
    assert saved.images == sorted(p.name for p in (folder / "test").glob("*.jpg"))
    assert not set(saved.images) & {p.name for p in (folder / "val").glob("*.jpg")}
    assert len(saved.target_cls) == 429  # 285 helmets + 144 heads in the test labels
    again = saved.metrics()
    assert [again[k] for k in ("map50", "map50_95", "precision", "recall")] == pytest.approx(
        [row[c] for c in T.TEST_COLUMNS], abs=1e-9)


@pytest.mark.slow
def test_rerun_skips_finished_runs_and_trains_missing_ones(quick_run, data, capsys):
    rows = T.read_results(quick_run)
    weights = T.run_dir(quick_run, "base", 0, *QUICK) / "weights" / "best.pt"
    stamp = weights.stat().st_mtime_ns
    folder = T.sweep(quick_run)
    folder.rows = [r for r in rows if r["variant"] != "neck_fla"]  # as if stopped before neck_fla
    folder.write()
    capsys.readouterr()
    assert main(["train", "--quick", "--data", str(data), "--out", str(quick_run)]) == 0
    log = capsys.readouterr().out
    assert f"2 of 3 runs already in {quick_run / 'results.csv'}: skipped" in log and "[1/3]" not in log
    assert "[3/3] neck_fla seed 0 (1 epochs, imgsz 160): training" in log
    assert weights.stat().st_mtime_ns == stamp, "a finished run was trained again"
    assert [r["variant"] for r in T.read_results(quick_run)] == ["base", "c2f_fla", "neck_fla"]


def test_an_output_folder_holds_runs_of_one_start(tmp_path):
    """Rows are skipped as done and paired with each other: a sweep with another start in the same --out is refused
    before anything trains. A folder is claimed by its first row (recorded here, not trained); a sweep that
    records nothing leaves no claim."""
    yaml = tmp_path / "data.yaml"
    yaml.write_text("train: images/train\nval: images/val\nnc: 2\nnames: {0: helmet, 1: head}\n")
    first, second = tmp_path / "a" / "best.pt", tmp_path / "b" / "best.pt"
    for path, content in ((first, b"one checkpoint"), (second, b"another one")):
        path.parent.mkdir()
        path.write_bytes(content)
    sweep = dict(epochs=1, imgsz=160, quick=True, n_boot=0)
    scratch, pretrained = tmp_path / "scratch", tmp_path / "pretrained"
    assert T.train_all(["base"], [], yaml, scratch, **sweep) == []
    assert not (scratch / "settings.json").exists()  # nothing ran: no claim
    row = dict(variant="base", seed=0, epochs=1, imgsz=160, device="cpu", map50=0.1, map50_95=0.05, precision=0.1,
               recall=0.1, params=1, gflops=1.0, s_per_epoch=1.0, **dict.fromkeys(T.TEST_COLUMNS, 0.1))
    T.sweep(scratch).record(row)
    assert json.loads((scratch / "settings.json").read_text()) == {"start": "scratch"}
    with pytest.raises(T.SettingsClash, match="other settings for start"):
        T.train_all(["base"], [], yaml, scratch, weights=first, **sweep)
    T.sweep(pretrained, weights=first).record(row)
    assert json.loads((pretrained / "settings.json").read_text())["start"] == T.start_of(first)
    T.train_all(["base"], [], yaml, pretrained, weights=first, **sweep)  # the same start again: fine
    for other in (second, None):  # same file name, other bytes; or no checkpoint
        with pytest.raises(T.SettingsClash, match="give it another --out|use another --out"):
            T.train_all(["base"], [], yaml, pretrained, weights=other, **sweep)
    assert re.fullmatch(r"best.pt sha256:[0-9a-f]{12}", T.start_of(first))
    assert T.start_of(first) != T.start_of(second) and T.start_of(None) == "scratch"


@pytest.mark.slow
def test_interrupted_sweep_keeps_finished_rows(helmet_copy, tmp_path, monkeypatch):
    real, calls = T.train_detector, []

    def stop_on_second(*args, **kwargs):
        calls.append(args[:2])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(T.runs, "train_detector", stop_on_second)
    with pytest.raises(KeyboardInterrupt):
        T.train_all(["neck_fla"], [0, 1], helmet_copy, tmp_path, epochs=1, imgsz=96, quick=True)
    assert [(r["variant"], r["seed"]) for r in T.read_results(tmp_path)] == [("neck_fla", 0)]


@pytest.fixture(scope="module")
def seeded_runs(helmet_copy, tmp_path_factory):
    """c2f_fla trained with seeds 0, 0, 1 at imgsz 128 on the 8-image copy (identity needs no more); records the
    (H, W) every attention layer saw in eval mode."""
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
            row = T.train_detector("c2f_fla", seed, helmet_copy, out, epochs=1, imgsz=128, quick=True)
            _, log = read_csv(T.run_dir(out, "c2f_fla", seed, 1, 128) / "results.csv")
            runs.append((row, log))
    finally:
        FocusedLinearAttention.forward = forward
    return runs, seen


def _losses(log):
    return [{k: v for k, v in epoch.items() if "loss" in k} for epoch in log]


@pytest.mark.slow
def test_same_seed_on_cpu_gives_identical_metrics(seeded_runs):
    (a, log_a), (b, log_b), (c, log_c) = seeded_runs[0]
    metrics = [k for k in T.COLUMNS if k != "s_per_epoch"]
    assert {k: a[k] for k in metrics} == {k: b[k] for k in metrics}
    assert _losses(log_a) == _losses(log_b)  # the mAPs of one epoch may all be 0; the losses never are
    assert _losses(log_a) != _losses(log_c), "a different seed must change the run"


@pytest.mark.slow
def test_fla_validates_on_rectangular_batches(seeded_runs):
    _, seen = seeded_runs
    assert any(h != w for h, w in seen), f"validation never gave the attention a non-square map: {sorted(seen)}"


@pytest.mark.slow
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


def _row(variant, seed, map50, s, test=math.nan, epochs=T.report.TIMED_EPOCHS):
    return dict(variant=variant, seed=seed, epochs=epochs, imgsz=160, device="cpu", map50=map50, map50_95=map50 / 2,
                precision=0.5, recall=0.5, params=1_000_000, gflops=8.0, s_per_epoch=s, test_map50=test,
                test_map50_95=test / 2, test_precision=0.4, test_recall=0.4)


def test_summary_gives_mean_spread_and_time_vs_the_base_of_the_same_scale():
    rows = [_row("base", 0, 0.2, 10.0, 0.1), _row("base", 1, 0.4, 12.0, 0.3), _row("c2f_fla", 0, 0.3, 11.0, 0.2),
            _row("c2f_fla", 1, 0.3, 11.0, 0.2), _row("base@s", 0, 0.5, 20.0), _row("c2f_fla@s", 0, 0.6, 30.0)]
    lines = {line.split(" | ")[0].strip("| "): line for line in T.variant_table(rows).splitlines()[2:]}
    assert "| 2 |" in lines["base"] and "| 0.300 ± 0.141 | 0.150 ± 0.071 |" in lines["base"] and "11.00" in lines["base"]
    assert "| 0.200 ± 0.141 | 0.100 ± 0.071 |" in lines["base"]  # test mAP50, mAP50-95
    assert "0.300 ± 0.000" in lines["c2f_fla"] and lines["c2f_fla"].endswith("| 1.00× |")
    assert lines["c2f_fla@s"].endswith("| 1.50× |") and "0.600 ± 0.000" in lines["c2f_fla@s"]
    assert "| – | – |" in lines["c2f_fla@s"]  # no test split scored: no test columns, not "nan"


def test_no_time_ratio_from_runs_too_short_to_time():
    short = T.report.TIMED_EPOCHS - 1
    rows = [_row("base", 0, 0.2, 10.0, epochs=short), _row("c2f_fla", 0, 0.3, 30.0, epochs=short)]
    lines = T.variant_table(rows).splitlines()[2:]
    assert all(line.endswith("| – |") for line in lines) and "30.00" in lines[1]


def test_old_results_csv_reads_with_empty_test_columns(tmp_path):
    old = ["variant", "seed", "epochs", "imgsz", "device", "map50", "map50_95", "precision", "recall", "params", "gflops",
           "s_per_epoch"]
    (tmp_path / "results.csv").write_text(",".join(old) + "\nbase,0,30,320,cpu,0.127,0.046,0.194,0.199,3011238,8.19,5.42\n")
    (row,) = T.read_results(tmp_path)
    assert (row["variant"], row["epochs"], row["map50"]) == ("base", 30, 0.127)
    assert list(row) == list(T.COLUMNS) and all(math.isnan(row[c]) for c in T.TEST_COLUMNS)


def test_compare_pairs_seeds_and_says_whether_the_interval_excludes_zero(tmp_path):
    """Detections with a known answer written where the runs keep them: c2f_fla finds one more box on every
    test image than base (with either seed), neck_fla exactly what base finds."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1):
        hits = rng.integers(0, 3, 40)
        for variant, found in (("base", hits), ("c2f_fla", hits + 1), ("neck_fla", hits)):
            folder = T.run_dir(tmp_path, variant, seed, 2, 160)
            folder.mkdir(parents=True)
            detections(found, seed=seed).save(folder / T.DETECTIONS)
            rows.append(_row(variant, seed, 0.1, 1.0, 0.1, epochs=2))
    found = T.compare(rows, tmp_path, n_boot=100)
    assert [(c["variant"], c["metric"], c["seeds"], c["images"]) for c in found] == [
        (v, m, 2, 40) for v in ("c2f_fla", "neck_fla") for m in ("map50", "map50_95")]
    lines = T.comparison_lines(found)
    assert len(lines) == 2
    assert lines[0].startswith("- `c2f_fla` − `base` (2 epochs, 160 px, 2 seeds, 40 test images)")
    assert lines[0].count("excludes 0: variant better") == 2
    assert lines[1].count("+0.000 [+0.000, +0.000] includes 0: no difference shown") == 2
    folder = T.sweep(tmp_path)
    folder.rows = rows
    folder.write(T.markdown(rows, found))
    assert "\n".join(lines) in (tmp_path / "results.md").read_text()
    T.write_comparisons(found, tmp_path)
    again = T.read_comparisons(tmp_path)
    assert [{**c, "per_seed": pytest.approx(c["per_seed"], abs=1e-6)} for c in found] == again


@pytest.mark.parametrize("args, message", [
    (["--epochs", "-3"], "argument --epochs: must be at least 1, got -3"),
    (["--imgsz", "0"], "argument --imgsz: must be at least 32, got 0"),
    (["--batch", "0"], "argument --batch: must be at least 1, got 0"),
    (["--seeds", "0", "x"], "argument --seeds: expected an integer, got 'x'"),
    (["--variants", "base", "c2f_attention"], "argument --variants: invalid choice: 'c2f_attention'"),
    (["--data", "/nonexistent/helmet.yaml"], "/nonexistent/helmet.yaml (from --data): no such file or folder"),
])
def test_bad_arguments_are_one_line_and_exit_2(args, message, tmp_path):
    out = cli("train", *args, "--out", str(tmp_path))
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith("fla train: ") and message in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and out.stdout == ""


def test_run_folders_are_portable_and_distinct():
    folders = {T.run_dir(Path("out"), v, 0, 60, 320).name for v in VARIANTS}
    assert len(folders) == len(VARIANTS)
    assert not any(":" in f for f in folders)
    assert T.run_dir(Path("out"), "yolo11:c3k2_fla", 1, 60, 320).name == "yolo11.c3k2_fla-s1-e60-320px"


def test_a_full_run_on_the_cpu_says_what_starts_and_how_long(tmp_path, monkeypatch):
    """Without --quick on a CPU: one line before anything trains; the estimate grows with runs, epochs and image area."""
    import fla.cli.train as cli_train

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert cli_train.estimate_s(2, 60, 640) == pytest.approx(4 * cli_train.estimate_s(2, 60, 320))
    assert cli_train.estimate_s(6, 100, 320) == pytest.approx(6 * cli_train.estimate_s(1, 100, 320))
    assert cli_train.estimate_s(3, 100, 640) > 3 * 3600  # the default run: hours, and the line says so
    assert re.search(r"about [\d.]+ h on 2 cores", cli_train.announce(["base", "c2f_fla", "neck_fla"], [0], 100, 640))
    yaml = tmp_path / "data" / "data.yaml"
    for split in ("train", "val"):
        (tmp_path / "data" / "images" / split).mkdir(parents=True)
        (tmp_path / "data" / "images" / split / "0.jpg").write_bytes(b"\xff\xd8")
    yaml.write_text("train: images/train\nval: images/val\nnames: {0: helmet, 1: head}\n")
    monkeypatch.setattr(T, "train_all", lambda *a, **k: [])
    out = cli("train", "--data", yaml, "--variants", "base", "neck_fla", "--out", tmp_path / "runs")
    assert out.returncode == 0
    assert out.stderr.startswith("fla train: 2 runs (base neck_fla × seed 0) of 100 epochs at 640 px on the CPU: about ")


def test_test_split_is_scored_in_the_precision_the_val_split_was(monkeypatch, tmp_path):
    """On a GPU with AMP ultralytics' final validation reloads best.pt in fp16 (``quantize=16``): the test scoring
    asks for the same, so a val − test gap holds no change of precision; on a CPU both stay fp32."""
    import types

    import ultralytics

    from fla.experiments.training import runs

    calls = []

    class Recorded:
        def __init__(self, weights):
            self.weights = weights

        def add_callback(self, *args):
            pass

        def val(self, **kwargs):
            calls.append(kwargs)
            return types.SimpleNamespace(box=types.SimpleNamespace(map50=0.5, map=0.25, mp=0.4, mr=0.3))

    monkeypatch.setattr(ultralytics, "YOLO", Recorded)
    monkeypatch.setattr(runs, "has_split", lambda data, split: True)
    for half in (True, False):
        row = runs.score_test(tmp_path, tmp_path / "data.yaml", imgsz=160, device="0" if half else "cpu", half=half)
        assert row["test_map50"] == 0.5
    assert [c["quantize"] for c in calls] == [16, None]
    trainer = lambda quantize: types.SimpleNamespace(validator=types.SimpleNamespace(args=types.SimpleNamespace(quantize=quantize)))
    assert runs.validated_in_fp16(trainer(16)) and not runs.validated_in_fp16(trainer(None))
