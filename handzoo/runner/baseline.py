"""The honest constant baseline: the Procrustes mean pose of the training set.

Under PA alignment a constant prediction is scored after its best similarity
fit to every sample, so the best constant is the generalised-Procrustes mean
shape, not the camera-frame mean (which, under random rotations, is a blurred
pose with about twice the PA error). ``baseline_pa_mpjpe_mm`` in metrics.json is
the PA-MPJPE of this constant on the validation split.
"""

from __future__ import annotations

import torch


def _align_batch(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Similarity-align every src[i] (N,J,3) onto dst[i] (orthogonal Procrustes with scale)."""
    mu_s, mu_d = src.mean(1, keepdim=True), dst.mean(1, keepdim=True)
    s, d = src - mu_s, dst - mu_d
    h = s.transpose(1, 2) @ d  # (N,3,3)
    u, sig, vt = torch.linalg.svd(h)
    rot = u @ vt
    scale = sig.sum(-1) / (s**2).sum((1, 2)).clamp_min(1e-12)
    return scale[:, None, None] * (s @ rot) + mu_d


def procrustes_mean(joints: torch.Tensor, iterations: int = 30, tol: float = 1e-9) -> torch.Tensor:
    """Generalised Procrustes analysis: the mean shape of (N,J,3) poses, (J,3), centred, unit norm.

    Iterates: align every pose to the current mean with a similarity
    transform, average, re-normalise, until the mean stops changing.
    """
    x = joints.double()
    x = x - x.mean(1, keepdim=True)
    x = x / x.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
    mean = x[0].clone()
    for _ in range(iterations):
        aligned = _align_batch(x, mean.expand_as(x))
        new = aligned.mean(0)
        new = new - new.mean(0)
        new = new / new.norm().clamp_min(1e-12)
        # Keep the orientation of the running estimate so the iteration converges.
        new = _align_batch(new[None], mean[None])[0]
        new = new / new.norm().clamp_min(1e-12)
        if (new - mean).norm() < tol:
            mean = new
            break
        mean = new
    return mean.to(joints.dtype)
