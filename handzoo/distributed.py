"""torchrun integration: process-group set-up, rank helpers and exact gathering.

Launch with the standard launcher, e.g.
``torchrun --standalone --nproc-per-node 2 -m handzoo run resnet18 --device cpu``
(gloo on the CPU, NCCL on GPUs). Only rank 0 writes outputs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(device_type: str) -> DistInfo:
    """Join the process group torchrun describes in the environment (no-op when not launched by it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def broadcast_object(info: DistInfo, obj):
    """Rank 0's ``obj`` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather_rows(info: DistInfo, rows: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | None:
    """Concatenate per-rank tensors (same keys, any first-dimension length) on rank 0.

    Returns None on other ranks. Shards of uneven length are supported, so a
    validation set split without padding is gathered exactly once per sample.
    """
    if not info.enabled:
        return rows
    cpu_rows = {k: v.detach().cpu() for k, v in rows.items()}
    gathered: list[dict[str, torch.Tensor] | None] = [None] * info.world_size
    dist.gather_object(cpu_rows, gathered if info.is_main else None, dst=0)
    if not info.is_main:
        return None
    return {k: torch.cat([g[k] for g in gathered if g is not None]) for k in rows}


def all_reduce_mean(info: DistInfo, value: float) -> float:
    if not info.enabled:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item() / info.world_size)
