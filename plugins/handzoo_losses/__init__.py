"""First-party plugin: the joint losses (``optim.loss``), registered like any third-party loss.

Every loss compares the prediction's root-relative ``joints3d`` (B,21,3),
metres, with the batch's joints3d made root-relative, and returns
``{"loss": total, ...parts}`` as scalars in metres (``l2``: square metres).

* ``l1``: mean absolute coordinate error (the seed report's loss);
* ``l2``: mean squared Euclidean joint error;
* ``smooth_l1``: Huber on coordinates with ``beta`` metres;
* ``l1_pa``: ``l1`` plus ``pa_weight`` times the L1 error after similarity
  alignment (a proper rotation, no reflection): a gradient on the articulation
  alone that global rotation errors cannot drown (PA-MPJPE measures that).

torch is imported when a loss is built, so registering costs nothing.
"""

from __future__ import annotations

from handzoo.plugin_api import hookimpl


def _l1():
    """Mean absolute error of root-relative joint coordinates (metres), the seed's loss."""
    from handzoo.plugin_api import root_relative_target

    def loss(output, batch):
        pred = output.joints3d.float()
        return {"loss": (pred - root_relative_target(batch, pred)).abs().mean()}

    return loss


def _l2():
    """Mean squared Euclidean error of root-relative joints (square metres)."""
    from handzoo.plugin_api import root_relative_target

    def loss(output, batch):
        pred = output.joints3d.float()
        return {"loss": (pred - root_relative_target(batch, pred)).pow(2).sum(-1).mean()}

    return loss


def _smooth_l1(beta: float = 0.01):
    """Huber loss on root-relative joint coordinates, quadratic below ``beta`` metres."""
    import torch

    from handzoo.plugin_api import root_relative_target

    def loss(output, batch):
        pred = output.joints3d.float()
        gt = root_relative_target(batch, pred)
        return {"loss": torch.nn.functional.smooth_l1_loss(pred, gt, beta=beta)}

    return loss


def _l1_pa(pa_weight: float = 1.0):
    """L1 plus pa_weight x L1 after Procrustes alignment (rotation + scale, no reflection)."""
    from handzoo.plugin_api import procrustes_transform, root_relative_target

    def loss(output, batch):
        pred = output.joints3d.float()
        gt = root_relative_target(batch, pred)
        plain = (pred - gt).abs().mean()
        # fixed_cost: no convergence test reads the GPU in a training step
        t, mu_pred, mu_gt = procrustes_transform(pred, gt, allow_reflection=False, fixed_cost=True)
        aligned = (pred - mu_pred.to(pred.dtype)) @ t.to(pred.dtype) + mu_gt.to(pred.dtype)
        pa = (aligned - gt).abs().mean()
        return {"loss": plain + pa_weight * pa, "joints_l1": plain, "joints_pa": pa}

    return loss


@hookimpl
def register_losses(register):
    register("l1", _l1)
    register("l2", _l2)
    register("smooth_l1", _smooth_l1)
    register("l1_pa", _l1_pa)
