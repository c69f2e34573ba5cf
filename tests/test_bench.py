"""fla.experiments.bench: the implementations it times compute what they claim, and the command's outputs."""
from __future__ import annotations

import csv

import pytest
import torch

from fla import FocusedLinearAttention, measure
from fla.experiments import bench
from helpers import cli, run_fla
from fla.reference import dense_reference


def _positive_qk(ours: FocusedLinearAttention) -> None:
    """Keep every q and k channel well above 0. Where a head's channels are all negative, the
    blog's x**p of ReLU + 1e-6 underflows (1e-18 against its +1e-6 in the normaliser) and that
    head's output collapses to 0: the blog's defect, not a difference of formulation."""
    with torch.no_grad():
        ours.to_q.bias.fill_(2.0)
        ours.to_k.bias.fill_(2.0)


@pytest.mark.parametrize("side", [1, 4, 8, 20])
@pytest.mark.parametrize("order", ["auto", "kv", "qk"])
def test_blog_formulation_computes_our_output_and_gradients(side, order):
    mods = bench.build(("fla", "blog"), dim=32, num_heads=4, pos_encoding=False, order=order)
    ours, blog = mods["fla"], mods["blog"]
    assert {id(p) for p in blog.parameters()} <= {id(p) for p in ours.parameters()}  # shared, not copied
    _positive_qk(ours)
    x = torch.randn(2, 32, side, side)
    xs = [x.clone().requires_grad_() for _ in range(2)]
    ys = [m(t) for m, t in zip((ours, blog), xs)]
    torch.testing.assert_close(ys[1], ys[0], atol=1e-5, rtol=1e-5)
    g = torch.randn_like(ys[0])
    for y, t in zip(ys, xs):
        y.backward(g)
    torch.testing.assert_close(xs[1].grad, xs[0].grad, atol=1e-5, rtol=1e-4)


def test_blog_formulation_differs_where_its_focus_underflows():
    """The check above can fail: with default biases some heads hit the blog's underflow."""
    torch.manual_seed(0)
    mods = bench.build(("fla", "blog"), dim=32, num_heads=4, pos_encoding=False)
    x = torch.randn(1, 32, 1, 1)
    with torch.no_grad():
        assert not torch.allclose(mods["blog"](x), mods["fla"](x), atol=1e-3)


@pytest.mark.parametrize("impl", bench.IMPLS)
def test_every_benchmarked_module_computes_its_definition(impl):
    """Each timed module equals its dense reference: fla's and the blog's is our FLA with N×N matrices."""
    mods = bench.build(bench.IMPLS, dim=32, num_heads=4, pos_encoding=False)
    _positive_qk(mods["fla"])
    reference = mods["fla"] if impl == "blog" else mods[impl]
    x = torch.randn(1, 32, 12, 12)
    with torch.no_grad():
        torch.testing.assert_close(mods[impl](x), dense_reference(reference, x), atol=1e-5, rtol=1e-5)


def test_blog_formulation_limits():
    ours = FocusedLinearAttention(16, num_heads=2, pos_encoding=False)
    with pytest.raises(ValueError, match="square map"):
        bench.BlogFormulation(ours)(torch.randn(1, 16, 4, 6))
    with pytest.raises(ValueError, match="sr_ratio=1 only"):
        bench.BlogFormulation(FocusedLinearAttention(16, num_heads=2, sr_ratio=2))
    with pytest.raises(ValueError, match="unknown implementation"):
        bench.build(("fla", "flash"))


def test_run_benchmark_rows_skips_and_csv(tmp_path):
    torch.set_num_threads(2)
    rows = bench.run_benchmark(sizes=(4, "4x6"), dim=16, num_heads=2, repeats=1, warmup=0, softmax_max_n=20,
                               progress=False)
    assert [(r["impl"], r["H"], r["W"]) for r in rows] == [(i, 4, w) for w in (4, 6) for i in bench.IMPLS]
    done = {(r["impl"], r["W"]): r for r in rows}
    for impl in bench.IMPLS:
        r = done[impl, 4]
        assert r["N"] == 16 and r["device"] == "cpu" and r["dtype"] == "fp32" and not r["note"]
        assert r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 and r["peak_mb"] > 0
    assert done["blog", 6]["fwd_ms"] is None and "square maps only" in done["blog", 6]["note"]
    assert done["softmax", 6]["fwd_ms"] is None and "N=24 > 20" in done["softmax", 6]["note"]
    assert done["fla", 6]["fwd_ms"] > 0

    path = bench.write_rows(rows, tmp_path / "out" / "bench.csv")
    with open(path) as f:
        read = list(csv.DictReader(f))
    assert tuple(read[0]) == bench.CSV_COLUMNS == ("impl", "device", "dtype", "H", "W", "N", "fwd_ms", "fwdbwd_ms", "peak_mb")
    assert len(read) == 6  # the two skipped cases are notes, not rows
    assert all(float(r["fwdbwd_ms"]) > 0 and int(r["N"]) == int(r["H"]) * int(r["W"]) for r in read)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_run_benchmark_in_half_precision(dtype):
    """The documented GPU command's dtypes, on the CPU: every implementation runs (the blog's fp32 positional
    encoding once stopped bf16 at its first size) and the blog still computes fla's output."""
    torch.set_num_threads(2)
    rows = bench.run_benchmark(sizes=(4,), dim=16, num_heads=2, dtype=dtype, repeats=1, warmup=0, progress=False)
    assert [r["impl"] for r in rows] == list(bench.IMPLS)
    assert all(r["dtype"] == dtype and not r["note"] and r["fwdbwd_ms"] > 0 for r in rows), rows
    modules = {name: m.to(bench.DTYPES[dtype]) for name, m in bench.build(("fla", "blog"), 16, 2, pos_encoding=False).items()}
    x = torch.randn(1, 16, 4, 4, dtype=bench.DTYPES[dtype])
    with torch.no_grad():
        ours, blog = modules["fla"](x), modules["blog"](x)
    assert ours.dtype == blog.dtype == bench.DTYPES[dtype]
    assert ((ours.double() - blog.double()).norm() / ours.double().norm()) < 0.05


def test_run_benchmark_skips_what_runs_out_of_gpu_memory(monkeypatch):
    real = bench.step

    def step(module, *args):
        if isinstance(module, bench.SoftmaxAttention):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(module, *args)

    monkeypatch.setattr(bench, "step", step)
    rows = bench.run_benchmark(sizes=(4,), dim=16, num_heads=2, repeats=1, warmup=0, progress=False, memory=False)
    done = {r["impl"]: r for r in rows}
    assert done["softmax"]["fwd_ms"] is None and done["softmax"]["note"] == "softmax: out of memory at 4x4, skipped"
    assert all(done[i]["fwdbwd_ms"] > 0 for i in ("fla", "blog", "linear"))


def test_time_impls_changes_turns_so_each_module_follows_every_other():
    calls = []

    class Recorder(torch.nn.Module):
        def __init__(self, name):
            super().__init__()
            self.name, self.w = name, torch.nn.Parameter(torch.ones(()))

        def forward(self, x):
            calls.append(self.name)
            return x * self.w

    names = ["a", "b", "c"]
    times = measure.time_impls({n: Recorder(n) for n in names}, torch.randn(1, 2, 3, 3), repeats=6, warmup=0)
    assert set(times) == set(names) and all(t > 0 for t in times.values())
    assert len(calls) == 18
    assert all(calls.count(n) == 6 for n in names)
    # within rounds, each ordered pair (x then y) occurs equally often
    pairs = [(calls[i], calls[i + 1]) for i in range(len(calls) - 1) if (i + 1) % 3]
    counts = {p: pairs.count(p) for p in set(pairs)}
    assert len(counts) == 6 and len(set(counts.values())) == 1, counts


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 6])
def test_turn_orders_balance_who_follows_whom(n):
    orders = measure.turn_orders(n)
    assert all(sorted(row) == list(range(n)) for row in orders)
    pairs = [(row[i], row[i + 1]) for row in orders for i in range(n - 1)]
    assert len(set(pairs)) == n * (n - 1) and len(set(pairs.count(p) for p in set(pairs))) <= 1


def test_peak_memory_of_fla_grows_linearly_with_tokens():
    m = bench.build(("fla",), dim=32, num_heads=4)["fla"]
    small, large = (measure.peak_memory_mb(m, torch.randn(1, 32, s, s)) for s in (32, 64))
    assert 3.0 < large / small < 5.0  # 4x the tokens


def _fla_bench(*args, cwd=None):
    return run_fla("bench", *args, cwd=cwd)


@pytest.mark.slow
def test_cli_tiny_run_writes_table_csv_and_plot(tmp_path):
    out = _fla_bench("--sizes", "4,8", "--repeats", "1", "--warmup", "0", "--csv", str(tmp_path / "b.csv"))
    assert out.returncode == 0, out.stderr
    assert "torch.set_num_threads(2)" in out.stdout and "torch.profiler" in out.stdout
    assert "profiler_start" not in out.stderr and "gpuGetDeviceCount" not in out.stderr  # the profiler's C++ chatter
    for impl in bench.IMPLS:
        assert impl in out.stdout
    with open(tmp_path / "b.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8 and {r["impl"] for r in rows} == set(bench.IMPLS)
    assert (tmp_path / "b.png").stat().st_size > 1000


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without a GPU")
@pytest.mark.parametrize("args, message", [
    (("--device", "cuda"), "--device cuda needs a CUDA GPU"),
    (("--dtype", "bf16"), "--dtype bf16 is benchmarked on a GPU only"),
    (("--dtype", "fp16"), "--dtype fp16 is benchmarked on a GPU only"),
])
def test_gpu_options_fail_clearly_without_a_gpu(args, message):
    out = cli("bench", *args, "--sizes", "4")
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("args, message", [
    (("--impl", "fla,flash"), "choose from fla,blog,linear,softmax"),
    (("--sizes", "big"), "expected comma-separated sides or HxW"),
    (("--sizes", "0"), "map sides must be at least 1, got '0'"),
    (("--sizes", "20,-40"), "map sides must be at least 1, got '-40'"),
    (("--sizes", "2.5"), "expected comma-separated sides or HxW"),
    (("--sizes", "8x0"), "map sides must be at least 1, got '8x0'"),
    (("--repeats", "0"), "argument --repeats: must be at least 1, got 0"),
    (("--dim", "30"), "--dim 30 must be a multiple of --heads 8"),
    (("--budget-s", "nan"), "argument --budget-s: must be at least 0, got nan"),
])
def test_bad_arguments_are_one_line_usage_errors(args, message):
    out = cli("bench", *args)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_run_benchmark_rejects_empty_maps():
    with pytest.raises(ValueError, match="at least 1"):
        bench.run_benchmark(sizes=(0,), progress=False)
