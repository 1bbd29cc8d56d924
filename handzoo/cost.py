"""What a model costs: parameter count and GFLOPs (publish, the leaderboard, the catalogue drift test).

* ``params``: the number of elements of the model's parameters (buffers such
  as batch-norm statistics excluded, as torchvision's ``num_params``).
* ``gflops``: FLOPs of one forward pass of ONE image at the weights' input
  size, in units of 1e9, counted by ``torch.utils.flop_counter.FlopCounterMode``.
  Convention: **FLOPs = 2 x multiply-accumulates (MACs)**, so a ResNet18 at
  224 px counts 3.63 GFLOPs (1.82 GMACs). Catalogues that quote MACs as
  "FLOPs" (torchvision's ``_ops``, many papers) show half these numbers. Only
  convolutions and matrix products are counted; element-wise operations,
  pooling and normalisation are not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def count_params(model: torch.nn.Module) -> int:
    """Number of parameter elements (buffers excluded)."""
    return sum(p.numel() for p in model.parameters())


def measure_gflops(model: torch.nn.Module, image_size: int) -> float:
    """GFLOPs (FLOPs = 2 x MACs) of one forward pass on one (1,3,S,S) image, on the CPU.

    The model is put in eval mode for the count and restored after.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, 3, image_size, image_size, device=device))
    finally:
        model.train(was_training)
    return float(f"{counter.get_total_flops() / 1e9:.6g}")
