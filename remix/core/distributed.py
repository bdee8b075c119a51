"""One process or several under `torchrun`: device choice, process group, and summing across ranks.

Re-Mix's DRO update only needs per-domain sums, so multi-GPU support is: every rank draws its own
batch, the sums are all-reduced, and every rank applies the identical alpha update (see dro.py).
`torchrun --nproc_per_node=N -m remix.core.cli ...` sets RANK/WORLD_SIZE/LOCAL_RANK; without them
this is a single process. CPU runs use the gloo backend, CUDA runs NCCL.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from remix.common.errors import ConfigError


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str, local_rank: int = 0, world_size: int = 1) -> torch.device:
    """'auto' -> the local CUDA device if there is one, else CPU; 'cpu', 'cuda', 'cuda:N' force it.

    Under torchrun every rank takes the GPU of its LOCAL_RANK ('cuda' or 'auto'); one process may pick
    a GPU by index ('cuda:1').
    """
    name = str(name).strip()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if name != "cuda" and not name.startswith("cuda:"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device={name} but no CUDA GPU is visible; use device=cpu or device=auto")
    count = torch.cuda.device_count()
    if name == "cuda":
        return torch.device("cuda", local_rank % count)
    index = name.partition(":")[2]
    if not index.isdigit() or int(index) >= count:
        raise ConfigError(f"device={name} is not one of the {count} visible GPUs; use cuda:0..cuda:{count - 1}")
    if world_size > 1:
        raise ConfigError(f"device={name} names one GPU, but torchrun started {world_size} ranks; use device=cuda "
                          "(each rank takes the GPU of its LOCAL_RANK)")
    return torch.device("cuda", int(index))


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the torchrun process group when launched by torchrun; otherwise a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = pick_device(device, local_rank, world_size)
    if world_size > 1 and not dist.is_initialized():
        if chosen.type == "cuda":
            torch.cuda.set_device(chosen)
        dist.init_process_group(backend="nccl" if chosen.type == "cuda" else "gloo")
    return DistInfo(rank, world_size, chosen)


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum a tensor over ranks (returns a new tensor; identity for one process)."""
    if not is_distributed():
        return tensor
    out = tensor.clone()
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
