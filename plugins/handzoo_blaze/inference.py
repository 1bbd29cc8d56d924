"""The fastest way handzoo runs a converted network for inference on the CPU (benchmarks/blaze_speed.py)."""

from __future__ import annotations

import torch
from torch import nn


def fast_landmarks(module: nn.Module):
    """``module`` prepared for inference: channels-last (placeholder until measured)."""
    module = module.eval().to(memory_format=torch.channels_last)

    def run(x: torch.Tensor):
        return module(x.contiguous(memory_format=torch.channels_last))

    return run
