"""The honest constant baseline: the Procrustes mean pose of the training set.

Under PA alignment a constant prediction is scored after its best similarity
fit to every sample, so the best constant is the generalised-Procrustes mean
shape, not the camera-frame mean (which, under random rotations, is a blurred
pose with about twice the PA error). ``baseline_pa_mpjpe_mm`` in metrics.json is
the PA-MPJPE of this constant on the validation split.
"""

from __future__ import annotations

import torch

from handzoo.metrics import procrustes_align


def procrustes_mean(joints: torch.Tensor, iterations: int = 30, tol: float = 1e-9) -> torch.Tensor:
    """Generalised Procrustes analysis: the mean shape of (N,J,3) poses, (J,3), centred, unit norm.

    Iterates: align every pose to the current mean with a similarity
    transform (the metrics' official alignment, :func:`handzoo.metrics.procrustes_align`),
    average, re-normalise, until the mean stops changing.
    """
    x = joints.double()
    x = x - x.mean(1, keepdim=True)
    x = x / x.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
    mean = x[0].clone()
    for _ in range(iterations):
        aligned = procrustes_align(x, mean.expand_as(x))
        new = aligned.mean(0)
        new = new - new.mean(0)
        new = new / new.norm().clamp_min(1e-12)
        # Keep the orientation of the running estimate so the iteration converges.
        new = procrustes_align(new[None], mean[None])[0]
        new = new / new.norm().clamp_min(1e-12)
        if (new - mean).norm() < tol:
            mean = new
            break
        mean = new
    return mean.to(joints.dtype)
