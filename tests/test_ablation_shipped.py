"""The shipped full ablation (fla/results/ablation/): complete for the tasks it ran, documented from its own rows,
analysed by notebook 04, and bit-identical when one of its cells is rerun on a machine like the one that made it."""
from __future__ import annotations

import platform
import re
from pathlib import Path

import pytest
import torch

import fla.experiments.ablation as A

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "ablation.md"


@pytest.fixture(scope="module")
def shipped():
    rows, settings = A.shipped()
    presets = {t: A.Preset.from_json(settings[t]) for t in A.TASKS if t in settings}
    return rows, settings, presets


def test_the_shipped_run_is_complete_and_says_where_it_ran(shipped):
    rows, settings, presets = shipped
    run = settings["run"]
    assert {"machine", "date", "commit", "torch", "cpu_capability", "runs", "cpu_min", "wall_min", "load"} <= set(run)
    assert run["runs"] == len(rows) and re.fullmatch(r"[0-9a-f]{7,40}", run["commit"])
    assert presets, "at least one task"
    for task, p in presets.items():
        assert p == A.PRESETS["full"][task], f"{task}: the shipped preset is the code's full preset"
        tuned = A.tuned_lrs(rows, p)
        for mixer in p.mixers:  # every mixer on its seeds at one rate, chosen strictly inside the grid tried
            mine = [r for r in A.reported(rows, presets) if r["task"] == task and A.mixer_of(r) == mixer]
            assert sorted(r["seed"] for r in mine) == list(p.seeds), (task, mixer)
            assert {r["lr"] for r in mine} == {tuned[mixer]["lr"]} and tuned[mixer]["inside"], (task, mixer)
        for mixer in p.long_mixers:
            long = [r for r in rows if r["task"] == task and A.mixer_of(r) == mixer and r["steps"] == 2 * p.training.steps]
            assert sorted(r["seed"] for r in long) == list(p.long_seeds)


def test_the_docs_tables_are_generated_from_the_shipped_rows(shipped):
    rows, settings, presets = shipped
    text = DOCS.read_text()
    block = text.split(A.report.BEGIN, 1)[1].split(A.report.END, 1)[0]
    assert block.strip() == A.docs_tables(rows, presets).strip(), \
        "regenerate: A.write_docs_tables('docs/ablation.md', *shipped rows and presets)"
    assert settings["run"]["commit"] in text


def _same_machine(run) -> str | None:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?") \
        if Path("/proc/cpuinfo").is_file() else platform.processor()
    if torch.__version__ != run["torch"] or torch.backends.cpu.get_cpu_capability() != run["cpu_capability"] \
            or not run["machine"].startswith(cpu):
        return f"made on {run['machine']} with torch {run['torch']} ({run['cpu_capability']}); here {cpu}, torch " \
               f"{torch.__version__} ({torch.backends.cpu.get_cpu_capability()}): floats may round differently"
    return None


@pytest.mark.slow
def test_a_shipped_cell_reruns_bit_identically_on_a_machine_like_its_own(shipped):
    """Same CPU model, torch build and vector unit: the same numbers, exactly (one thread per run, seeded data);
    elsewhere the rounding differs and chaotic training carries it into the accuracy."""
    rows, settings, presets = shipped
    why = _same_machine(settings["run"])
    if why:
        pytest.skip(why)
    task = next(iter(presets))
    row = next(r for r in A.reported(rows, presets) if r["task"] == task and A.mixer_of(r) == A.BASE["linear"]
               and r["seed"] == 0)
    again, _ = A.train_one(presets[task], "linear", 0, row["lr"], device="cpu")
    for column in ("value", "steps90", "mass", "entropy"):
        assert again[column] == row[column], column


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_notebook_04_reads_the_shipped_run_by_default(tmp_path, monkeypatch):
    """Quick mode, RETRAIN = False: the notebook prints the shipped run's table; one number checked against the CSV."""
    import nbformat
    from jupyter_env import KERNEL, isolated_jupyter_env, use_in_this_process
    from nbclient import NotebookClient

    env = isolated_jupyter_env(tmp_path / "jupyter")
    use_in_this_process(env, monkeypatch)
    path = REPO / "notebooks" / "04-ablation.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert sum("RETRAIN = False" in c.source for c in nb.cells if c.cell_type == "code") == 1, "one visible switch"
    NotebookClient(nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}}).execute(env=env)
    printed = "".join(o.get("text", "") + o.get("data", {}).get("text/markdown", "")
                      for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    rows, settings = A.shipped()
    presets = {t: A.Preset.from_json(settings[t]) for t in A.TASKS if t in settings}
    assert f"the shipped full run: {settings['run']['machine']}" in printed
    linear = [r["value"] for r in A.reported(rows, presets) if r["task"] == "retrieval" and A.mixer_of(r) == A.BASE["linear"]]
    setting = presets["retrieval"].setting
    assert f"| retrieval | {setting} | linear | {sum(linear) / len(linear):.3f} | " in printed
