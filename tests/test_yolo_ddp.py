"""Multi-GPU training with our blocks, tested on the CPU.

ultralytics' DDP launch (8.4.190) pickles the trainer class, its arguments and the model with
cloudpickle and starts one worker per GPU from a generated script that never imports fla: the
worker must rebuild our blocks from the pickle alone. Then a real 2-process torch DDP step (gloo)
of every FLA variant: no unused-parameter error, the same gradients on both ranks.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP
from ultralytics.nn.tasks import DetectionModel

import fla.yolo as Y

from helpers import attention_modules, fake_batch, fla_variants, small_helmet, with_loss_args


@pytest.mark.slow
@pytest.mark.needs_data
def test_ddp_worker_rebuilds_our_blocks_without_importing_fla(tmp_path):
    from ultralytics.utils.dist import generate_ddp_file

    data = small_helmet(tmp_path / "helmet", per_split=2)
    trainer = Y.TransferTrainer(overrides=dict(model=Y.model_yaml("neck_fla"), data=str(data), imgsz=64, device="cpu",
                                               project=str(tmp_path), name="ddp", epochs=1, workers=0))
    trainer.model = trainer.get_model(cfg=Y.model_yaml("neck_fla"), verbose=False)
    for a in attention_modules(trainer.model):  # as after some training: the branch is live
        torch.nn.init.normal_(a.proj.weight, std=0.05)
    x = torch.rand(1, 3, 96, 64)
    with torch.no_grad():
        torch.save((x, trainer.model.eval()(x)[0]), tmp_path / "io.pt")
    script = generate_ddp_file(trainer)
    try:
        code = open(script).read()
        assert "import fla" not in code and "fla.yolo" not in code  # the worker script never imports fla
        # the worker's own code up to trainer.train(); then check what it rebuilt
        code = code.replace("    trainer.train()", textwrap.indent(textwrap.dedent(f"""
            assert type(trainer).__name__ == "TransferTrainer"
            x, expected = torch_load({str(tmp_path / 'io.pt')!r})
            import torch
            with torch.no_grad():
                y = trainer.model.eval()(x)[0]
            kinds = sorted({{type(m).__module__ + "." + type(m).__name__ for m in trainer.model.modules()}})
            print("fla blocks:", [k for k in kinds if k.startswith("fla.")])
            print("max abs diff:", (y - expected).abs().max().item())
            """), "    "))
        code = code.replace("    from ultralytics.utils import DEFAULT_CFG_DICT",
                            "    assert not any(m == 'fla' or m.startswith('fla.') for m in sys.modules)\n"
                            "    from ultralytics.utils import DEFAULT_CFG_DICT")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    finally:
        for f in (script, script.replace(".py", ".pt")):
            __import__("pathlib").Path(f).unlink(missing_ok=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "fla.yolo.blocks.FLABlock" in out.stdout and "fla.attention.FocusedLinearAttention" in out.stdout
    assert float(out.stdout.split("max abs diff:")[1]) == 0.0


def _ddp_worker(rank: int, store: str, out: str, variants: list[str]) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    report = {}
    for variant in variants:
        torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
        net = with_loss_args(DetectionModel(Y.model_yaml(variant), nc=2, verbose=False)).train()
        model = DDP(net, find_unused_parameters=False)  # a parameter without gradient fails the next step
        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        gen = torch.Generator().manual_seed(100 + rank)  # each rank its own images
        spread, live = [], True
        for _ in range(2):
            loss, _ = model(fake_batch(torch.rand(2, 3, 64, 64, generator=gen)))
            loss.sum().backward()
            grads = torch.cat([p.grad.flatten() for p in net.parameters() if p.requires_grad])  # not DFL's fixed conv
            both = [torch.empty_like(grads) for _ in range(2)]
            dist.all_gather(both, grads)
            spread.append((both[0] - both[1]).abs().max().item())
            opt.step()
            opt.zero_grad()
        loss, _ = model(fake_batch(torch.rand(2, 3, 64, 64, generator=gen)))
        loss.sum().backward()  # step 3: after two steps every attention parameter has a gradient
        live = all(p.grad.abs().sum() > 0 for a in attention_modules(net) for p in a.parameters())
        report[variant] = {"grad_spread": spread, "loss": loss.sum().item(), "attention_live": bool(live)}
    with open(f"{out}.{rank}.json", "w") as f:
        json.dump(report, f)
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_process_ddp_training_steps_on_cpu(tmp_path):
    variants = fla_variants()
    mp.spawn(_ddp_worker, args=(str(tmp_path / "store"), str(tmp_path / "report"), variants), nprocs=2, join=True)
    reports = [json.loads((tmp_path / f"report.{r}.json").read_text()) for r in range(2)]
    for variant in variants:
        r0, r1 = reports[0][variant], reports[1][variant]
        print(f"DDP {variant}: gradient spread across ranks {r0['grad_spread']}, loss rank0 {r0['loss']:.3f} rank1 {r1['loss']:.3f}")
        assert r0["grad_spread"] == [0.0, 0.0] and r1["grad_spread"] == [0.0, 0.0]
        assert r0["attention_live"] and r1["attention_live"]
