"""Blending a fine-tuned model with the weights it started from (``model.init_blend``).

Fine-tuning a pretrained network on one domain (handzoo's synthetic hands)
teaches that domain and costs some of what the network knew about others
(real photographs). Interpolating the weights, ``θ = θ₀ + s · (θ_ft − θ₀)``
with ``s`` the fine-tuned share, keeps much of both: the weight-space
ensembles of Wortsman et al., "Robust fine-tuning of zero-shot models"
(WiSE-FT, CVPR 2022). ``s = 1`` is the fine-tuned model, ``s = 0`` the start.

The start is the model as the run built it (its pretrained weights, then
``model.init``), kept on the CPU from the run's beginning; a resumed run
rebuilds it from the configuration before it trains and checks its digest
(:func:`state_digest`) against the checkpoint's, so it blends exactly as an
uninterrupted run would. Tensors the start did not provide (a new head under
``model.init_head_swap``) keep their fine-tuned values, and integer buffers are
never blended.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

import torch


def state_digest(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, dtypes, shapes and values: which start a run blends toward."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().to("cpu").contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def blend_toward(
    model: torch.nn.Module, start: Mapping[str, torch.Tensor], share: float, skip: Iterable[str] = ()
) -> list[str]:
    """Set every floating tensor of ``model`` to ``start + share · (tensor − start)``, in place.

    Args:
        model: the fine-tuned model (its parameters and buffers are changed).
        start: the state dict the run started from (same names and shapes).
        share: the fine-tuned share, 0 < share ≤ 1.
        skip: names to leave as fine-tuned (tensors the start did not provide).

    Returns the names that were blended.

    Raises:
        ValueError: ``share`` outside (0, 1], or a tensor of ``model`` whose shape differs from the start's.
    """
    if not 0.0 < share <= 1.0:
        raise ValueError(f"the fine-tuned share must be in (0, 1], got {share}")
    skipped = set(skip)
    blended, seen = [], set()
    with torch.no_grad():
        # keep_vars: the live parameters and buffers themselves, written in place.
        for name, tensor in model.state_dict(keep_vars=True).items():
            if name in skipped or name not in start or not tensor.is_floating_point():
                continue
            if tensor.data_ptr() in seen:  # a tensor shared under two names is blended once
                continue
            seen.add(tensor.data_ptr())
            # At least float32 whatever the model's dtype, then back: no half-precision rounding of the step.
            work = torch.promote_types(tensor.dtype, torch.float32)
            origin = start[name].to(device=tensor.device, dtype=work)
            if origin.shape != tensor.shape:
                raise ValueError(
                    f"{name}: the starting weights have shape {tuple(origin.shape)}, "
                    f"the model {tuple(tensor.shape)}"
                )
            mixed = origin + share * (tensor.to(work) - origin)
            tensor.copy_(mixed.to(tensor.dtype))
            blended.append(name)
    return blended
