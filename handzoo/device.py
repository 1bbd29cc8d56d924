"""One device resolver, the precision policy for every command, and small constants kept on a device."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from handzoo.distributed import DistInfo
from handzoo.environment import cpu_supports_bf16
from handzoo.errors import UsageError


def wants_cuda(spec: str | torch.device | None) -> bool:
    """Whether a device spec means a GPU (``auto`` does when one is available)."""
    spec = "auto" if spec is None else str(spec)
    return spec.startswith("cuda") or (spec == "auto" and torch.cuda.is_available())


def resolve_device(spec: str | torch.device | None = "auto", dist: DistInfo | None = None) -> torch.device:
    """'auto' (or None) -> CUDA when available (the local rank's GPU under torchrun), else CPU.

    Raises:
        UsageError: an invalid spec, or CUDA asked for where there is none.
    """
    spec = "auto" if spec is None else str(spec)
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(spec)
    except RuntimeError as exc:
        raise UsageError(f"invalid --device {spec!r}: use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UsageError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", (dist.local_rank if dist else 0))
        torch.cuda.set_device(device)
    return device


def amp_dtype_for(device: torch.device, enabled: bool) -> torch.dtype | None:
    """The autocast dtype of a run, or None for float32.

    CUDA: bf16 where the GPU supports it, else fp16 (with a grad scaler). CPU:
    bf16 where the CPU has native bf16 instructions (about 1.6-2x the float32
    throughput of ResNets there), else float32. Weights, optimiser state and
    the head stay float32 either way.
    """
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_supports_bf16():
        return torch.bfloat16
    return None


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def constant(values: Sequence[Any], device: torch.device, dtype=torch.float64) -> torch.Tensor:
    """A small constant tensor on ``device``, made once per device.

    Building it from Python numbers every step would copy from pageable host
    memory, and such a copy waits for the GPU's queue: a host sync per step.
    """
    key = (tuple(values), str(device), dtype)
    if key not in _CONSTANTS:
        _CONSTANTS[key] = torch.tensor(values, dtype=dtype, device=device)
    return _CONSTANTS[key]
