"""The machine and software a measurement ran on, for benchmark and leaderboard records."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_supports_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def machine_info(device: Any = None) -> dict[str, Any]:
    """CPU, cores, torch threads, GPU and library versions, plus the date (UTC).

    Args:
        device: the torch device the measurement used (its GPU is named), or None.
    """
    import numpy as np
    import torch

    from handzoo._version import __version__

    try:
        import timm

        timm_version: str | None = timm.__version__
    except ImportError:
        timm_version = None
    gpu = None
    if device is not None and torch.device(device).type == "cuda":
        gpu = torch.cuda.get_device_name(torch.device(device))
    elif torch.cuda.is_available():
        gpu = f"{torch.cuda.get_device_name(0)} (not used)"
    return {
        "handzoo": __version__,
        "torch": torch.__version__,
        "timm": timm_version,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_name(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
        "device": None if device is None else str(device),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
