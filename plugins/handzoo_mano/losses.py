"""The loss terms a MANO head adds to the run's joint loss (see :mod:`handzoo.losses`).

The joint loss itself is the run's configured one (``optim.loss``); these are
the head's own terms. Every term is a mean, so weights do not depend on the
batch size. Lengths are metres, rotations radians. Terms:

* ``verts``: L1 between vertices, root-relative like the joints, when the batch
  has ``verts`` and the model gives vertices (real MANO only);
* ``pose_prior``: mean squared axis-angle of the 15 finger joints (keeps poses small);
* ``shape_prior``: mean squared ``betas``;
* ``mano_pose`` / ``mano_shape``: supervision from FreiHAND's ``training_mano.json``
  (``mano`` in the batch: 48 pose values incl. the global orientation, 10 shape,
  2 uv root, 1 scale). The pose is compared as rotation matrices (L1), which has
  no 2π ambiguity; the shape as L1. Only with the real MANO model: the
  kinematic hand's rest frame and betas mean something else.
"""

from __future__ import annotations

import torch

from handzoo.plugin_api import HandOutput, axis_angle_to_matrix

DEFAULT_WEIGHTS: dict[str, float] = {
    "verts": 1.0,
    "pose_prior": 1e-4,
    "shape_prior": 1e-4,
    "mano_pose": 1e-2,
    "mano_shape": 1e-3,
}
MANO_PARAMS = 61  # FreiHAND: 48 pose + 10 shape + 2 uv root + 1 scale


def mano_terms(
    output: HandOutput, batch: dict[str, torch.Tensor], use_mano_params: bool = True
) -> dict[str, torch.Tensor]:
    """The unweighted terms for this batch (weights: :data:`DEFAULT_WEIGHTS`, overridable per head).

    Args:
        output: the model's prediction; ``joints3d`` (B,21,3) root-relative metres,
            optional ``vertices`` (B,778,3), ``mano_pose`` (B,48), ``mano_shape`` (B,10).
        batch: ``joints3d`` (B,21,3) metres, camera frame (made root-relative
            here); optional ``verts`` (B,778,3) same frame, ``mano`` (B,61) or (B,1,61)
            and ``mano_valid`` (B,) bool (False: leave the sample out of the parameter terms).
        use_mano_params: whether ``mano`` in the batch supervises the parameters.

    Returns:
        ``{<term>: unweighted scalar, ...}`` for the terms this batch supports.
    """
    gt_joints = batch["joints3d"].to(output.joints3d.dtype)
    root = gt_joints[:, :1]
    terms: dict[str, torch.Tensor] = {}
    if output.vertices is not None and batch.get("verts") is not None:
        gt_verts = batch["verts"].to(output.vertices.dtype) - root
        terms["verts"] = (output.vertices - gt_verts).abs().mean()
    if output.mano_pose is not None:
        terms["pose_prior"] = output.mano_pose[:, 3:].pow(2).mean()
    if output.mano_shape is not None:
        terms["shape_prior"] = output.mano_shape.pow(2).mean()
    mano = batch.get("mano")
    if use_mano_params and mano is not None and output.mano_pose is not None:
        mano = mano.reshape(mano.shape[0], -1).to(output.mano_pose.dtype)
        if mano.shape[1] != MANO_PARAMS:
            raise ValueError(f"batch['mano'] has {mano.shape[1]} values per sample, expected {MANO_PARAMS}")
        # Samples without a MANO fit (NaN rows) or whose fit an augmentation invalidated
        # (``mano_valid`` False: a mirrored, now left, hand) are left out of these two terms.
        valid = torch.isfinite(mano).all(dim=1)
        flags = batch.get("mano_valid")
        if flags is not None:
            valid = valid & torch.as_tensor(flags, device=valid.device).reshape(-1).bool()
        # Masked means, not `if valid.any()` and boolean indexing: both wait for the GPU.
        weight = valid.to(output.mano_pose.dtype)
        count = weight.sum().clamp(min=1.0)
        target = torch.where(valid[:, None], mano, torch.zeros_like(mano))  # NaN rows out of the graph
        n = mano.shape[0]
        pred_r = axis_angle_to_matrix(output.mano_pose.reshape(n, 16, 3))
        gt_r = axis_angle_to_matrix(target[:, :48].reshape(n, 16, 3))
        terms["mano_pose"] = ((pred_r - gt_r).abs().mean(dim=(1, 2, 3)) * weight).sum() / count
        if output.mano_shape is not None:
            shape_error = (output.mano_shape - target[:, 48:58]).abs().mean(dim=1)
            terms["mano_shape"] = (shape_error * weight).sum() / count
    return terms
