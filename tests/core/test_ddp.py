"""DDP: two gloo ranks on CPU apply identical alpha updates, equal to one process on the whole batches."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from remix.core.distributed import DistInfo, init_distributed, shutdown
from remix.core.dro import DROConfig, GroupDRO
from remix.core.model import DiscretePolicy, OptimConfig, PolicyConfig
from remix.core.train import DROTrainer, StageConfig

K, STEPS, BATCH, STATE, ACTION, BINS = 3, 6, 24, 5, 3, 8
CONFIG = PolicyConfig(
    action_dim=ACTION, n_bins=BINS, n_obs=1, state_dim=STATE, hidden_dims=(32,), state_hidden=16
)
STAGE = StageConfig(steps=STEPS, batch_size=BATCH, log_every=2, optim=OptimConfig(lr=1e-2, warmup_steps=2))


def _batches() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(7)
    out = []
    for _ in range(STEPS):
        out.append(
            {
                "state": torch.randn(BATCH, 1, STATE, generator=g),
                "goal/state": torch.randn(BATCH, STATE, generator=g),
                "bins": torch.randint(0, BINS, (BATCH, 1, ACTION), generator=g),
                "valid": torch.ones(BATCH, 1, dtype=torch.bool),
                # domain 2 is absent from the first half of each batch: ranks see different domain sets
                "domain": torch.cat(
                    [
                        torch.randint(0, 2, (BATCH // 2,), generator=g),
                        torch.randint(0, 3, (BATCH // 2,), generator=g),
                    ]
                ),
                "index": torch.arange(BATCH),
            }
        )
    return out


def _run(rank: int, world: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    reference = DiscretePolicy(CONFIG)
    torch.manual_seed(1)
    proxy = DiscretePolicy(CONFIG)
    dro = GroupDRO([0.5, 0.3, 0.2], DROConfig(eta=1.0, smoothing=0.05, scoring="all"))
    trainer = DROTrainer(
        proxy, dro, ["a", "b", "c"], STAGE, DistInfo(rank, world, torch.device("cpu")), reference=reference
    )
    per_rank = BATCH // world
    shards = [{k: v[rank * per_rank : (rank + 1) * per_rank] for k, v in b.items()} for b in _batches()]
    result = trainer.run(shards, STEPS)
    params = torch.cat([p.detach().flatten() for p in proxy.parameters()])
    return {
        "alpha": dro.alpha,
        "average": dro.average,
        "params": params,
        "log_alpha": torch.tensor([r["alpha/a"] for r in result.log]),
    }


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    # the environment torchrun sets; init_distributed joins the gloo group from it
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_RANK=str(rank),
    )
    torch.set_num_threads(1)
    info = init_distributed("cpu")
    assert (info.rank, info.world_size, dist.get_backend()) == (rank, world, "gloo")
    try:
        torch.save(_run(rank, world), Path(out_dir) / f"rank{rank}.pt")
    finally:
        shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_gloo_ranks_match_each_other_and_single_process(tmp_path: Path) -> None:
    mp.start_processes(
        _worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True, start_method="spawn"
    )
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    single = _run(0, 1)
    torch.testing.assert_close(r0["alpha"], r1["alpha"], rtol=0, atol=0)  # bit-identical across ranks
    torch.testing.assert_close(r0["average"], r1["average"], rtol=0, atol=0)
    # equal to one process up to float32 summation order in the per-sample NLLs
    torch.testing.assert_close(r0["alpha"], single["alpha"], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(r0["average"], single["average"], rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(r0["log_alpha"], single["log_alpha"], rtol=1e-6, atol=1e-9)
    # the proxy trained under DDP matches the single-process proxy on the whole batches
    torch.testing.assert_close(r0["params"], single["params"], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(r0["params"], r1["params"], rtol=0, atol=0)
    assert not torch.allclose(single["alpha"], torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64))
