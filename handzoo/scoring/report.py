"""Per-sample metrics of a prediction set and their summary in report units (mm, fractions).

See :mod:`handzoo.scoring` for the conventions (shapes, units, dtypes).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from handzoo.scoring.alignment import _aligned_errors, _work_dtype, validate_pair
from handzoo.scoring.joint_errors import auc_from_curve, mpjpe, pck_thresholds
from handzoo.scoring.mesh import mesh_metrics

# ----------------------------------------------------------------------- reporting


def per_sample_metrics(
    pred_joints: torch.Tensor,
    gt_joints: torch.Tensor,
    pred_verts: torch.Tensor | None = None,
    gt_verts: torch.Tensor | None = None,
    root_relative_mpjpe: bool = True,
) -> dict[str, torch.Tensor]:
    """All per-sample metrics a report needs, (N,) tensors keyed by metric name.

    Args:
        pred_joints, gt_joints: (N,21,3) metres, canonical order.
        pred_verts, gt_verts: optional (N,V,3) metres; mesh metrics when both given.
        root_relative_mpjpe: ``mpjpe`` after subtracting the wrist from both sets
            (models predict root-relative joints). False gives the absolute
            camera-frame error of the official unaligned numbers.

    Returns:
        ``pa_mpjpe``, ``mpjpe`` (metres), ``auc_pa`` (fraction, 0-50 mm), and with
        vertices ``pa_mpvpe`` (metres), ``f5``, ``f15`` (fractions).
    """
    pred_joints, gt_joints = validate_pair(pred_joints, gt_joints, name="joints")
    work = _work_dtype(pred_joints.device)
    dist = _aligned_errors(pred_joints.to(work), gt_joints.to(work))
    thr = pck_thresholds(device=dist.device, dtype=dist.dtype)
    out = {
        "pa_mpjpe": dist.mean(dim=-1).to(pred_joints.dtype),
        "mpjpe": mpjpe(pred_joints, gt_joints, root_relative=root_relative_mpjpe),
        "auc_pa": auc_from_curve(thr, (dist[..., None] <= thr).to(work).mean(dim=1)).to(
            pred_joints.dtype
        ),
    }
    if (pred_verts is None) != (gt_verts is None):
        raise ValueError("mesh metrics need both pred_verts and gt_verts (or neither)")
    if pred_verts is not None:
        if len(pred_verts) != len(pred_joints):
            raise ValueError(
                f"{len(pred_verts)} vertex samples for {len(pred_joints)} joint samples"
            )
        out.update(mesh_metrics(pred_verts, gt_verts))
    return out


# metric name -> (report key, factor applied to the mean)
REPORT_KEYS: dict[str, tuple[str, float]] = {
    "pa_mpjpe": ("pa_mpjpe_mm", 1000.0),
    "mpjpe": ("mpjpe_mm", 1000.0),
    "auc_pa": ("auc_pa_0_50mm", 1.0),
    "pa_mpvpe": ("pa_mpvpe_mm", 1000.0),
    "f5": ("f5", 1.0),
    "f15": ("f15", 1.0),
}


def summarize(per_sample: Mapping[str, torch.Tensor]) -> dict[str, float]:
    """Means over samples, in report units: ``*_mm`` keys in millimetres, AUC and F in [0,1].

    Args:
        per_sample: output of :func:`per_sample_metrics` (or any subset of its keys),
            each an (N,) tensor in metres or fractions.

    Returns:
        e.g. ``{"pa_mpjpe_mm": 7.1, "mpjpe_mm": 15.3, "auc_pa_0_50mm": 0.86,
        "pa_mpvpe_mm": 7.4, "f5": 0.70, "f15": 0.98}``; unknown keys keep their
        name and plain mean.
    """
    report: dict[str, float] = {}
    for name, values in per_sample.items():
        v = torch.as_tensor(values)
        if v.numel() == 0:
            raise ValueError(f"{name}: no samples to summarise")
        key, factor = REPORT_KEYS.get(name, (name, 1.0))
        report[key] = float(v.to(torch.float64).mean()) * factor
    return report
