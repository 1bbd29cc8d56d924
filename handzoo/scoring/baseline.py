"""The honest constant baseline: the Procrustes mean pose of the training set.

Under PA alignment a constant prediction is scored after its best similarity
fit to every sample, so the best constant is the generalised-Procrustes mean
shape, not the camera-frame mean (which, under random rotations, is a blurred
pose with about twice the PA error). ``baseline_pa_mpjpe_mm`` in metrics.json is
the PA-MPJPE of this constant on the validation split.

A set without training labels of its own (the real photos of ``ge-realworld``)
is compared with the constant of the embedded synthetic set's training labels,
the one a run on synthetic data computes (:func:`constant_baseline`); the
labels of the set being scored never build the constant.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from handzoo.scoring.alignment import procrustes_align
from handzoo.scoring.joint_errors import pa_mpjpe


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


def baseline_source(data: str, dataset: Any = None) -> tuple[str, dict[str, Any]]:
    """(dataset name, options) whose ``train`` split gives the constant pose for scoring ``data``.

    ``data`` itself with its own root, unless ``dataset`` (an instance of it)
    names another in its ``baseline_data`` attribute: an evaluation-only set
    without training labels (``ge-realworld``) takes the embedded synthetic
    set's, so its own labels never build the number it is compared against.
    Returns ``(data, {})`` for the dataset's own training split.
    """
    inner = getattr(dataset, "dataset", dataset)  # a torch Subset of it
    declared = getattr(inner, "baseline_data", None)
    if declared is None:
        return data, {}
    name, options = declared
    return name, dict(options)


def constant_baseline(
    data: str, dataset: Any = None, root: str | None = None, image_size: int = 64
) -> tuple[torch.Tensor, str]:
    """The constant pose for scoring ``data``: ((J,3) float64 Procrustes mean, where its labels came from).

    The labels are the ``train`` split of :func:`baseline_source`'s dataset
    (``root`` is passed only to ``data`` itself), read as a run reads them
    (:func:`training_labels`). The second value is ``""`` for ``data``'s own
    training labels, else the other dataset's name (e.g. ``"synthetic"``).

    Raises:
        HandzooError, OSError, ValueError, TypeError: when those labels cannot be read.
    """
    import handzoo

    name, options = baseline_source(data, dataset)
    kwargs: dict[str, Any] = {"split": "train", "image_size": image_size or 64, "augment": [], **options}
    if name == data and root is not None:
        kwargs["root"] = root
    labels = training_labels(handzoo.create_dataset(name, **kwargs))
    return procrustes_mean(torch.as_tensor(labels, dtype=torch.float64)), "" if name == data else name
