"""The honest constant baseline: the Procrustes mean pose of the training set.

Under PA alignment a constant prediction is scored after its best similarity
fit to every sample, so the best constant is the generalised-Procrustes mean
shape, not the camera-frame mean (which, under random rotations, is a blurred
pose with about twice the PA error). ``baseline_pa_mpjpe_mm`` in metrics.json is
the PA-MPJPE of this constant on the validation split.
"""

from __future__ import annotations

import numpy as np
import torch

from handzoo.metrics import pa_mpjpe, procrustes_align


def training_labels(dataset) -> np.ndarray:
    """(N,21,3) joints of a split in metres; without decoding images when the dataset gives labels.

    A :class:`handzoo.interfaces.LabelledDataset` (FreiHAND, synthetic) returns
    its split's own rows, so validation labels never leak into the baseline;
    any other dataset is read sample by sample (at most 2,000, evenly spread).
    """
    # A Protocol isinstance check only sees that an attribute exists: a dataset
    # may well hold a ``labels`` array, so the method must be callable.
    if callable(getattr(dataset, "labels", None)):
        return np.asarray(dataset.labels(), dtype=np.float64)
    idx = np.linspace(0, len(dataset) - 1, num=min(len(dataset), 2000)).astype(int)
    return np.stack([np.asarray(dataset[int(i)]["joints3d"], dtype=np.float64) for i in idx])


def constant_pose_errors(shape: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """(N,) PA-MPJPE in metres of predicting the constant ``shape`` (J,3) for every pose of ``gt`` (N,J,3)."""
    gt = gt.double()
    return pa_mpjpe(shape.to(gt.device, torch.float64).expand_as(gt), gt)


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
