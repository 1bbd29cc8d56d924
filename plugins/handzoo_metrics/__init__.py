"""First-party plugin: the official FreiHAND metrics as registry entries.

Each factory returns ``fn(pred, gt) -> (N,)`` per-sample values on pred's
device. Joint metrics take (N,21,3) joints, mesh metrics (N,778,3) vertices,
both in metres, camera frame. Errors come back in metres (reports print mm),
AUC and F-scores as fractions in [0,1]. torch is imported only when a factory
is called, so registering costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from handzoo.plugin_api import hookimpl

MetricFn = Callable[[Any, Any], Any]


def _pa_mpjpe(allow_reflection: bool = True) -> MetricFn:
    """Procrustes-aligned mean per-joint error (metres), official FreiHAND alignment."""
    from handzoo.plugin_api import metrics

    return lambda pred, gt: metrics.pa_mpjpe(pred, gt, allow_reflection=allow_reflection)


def _mpjpe(root_relative: bool = False, root: int = 0) -> MetricFn:
    """Mean per-joint error without alignment (metres); optionally wrist-relative."""
    from handzoo.plugin_api import metrics

    return lambda pred, gt: metrics.mpjpe(pred, gt, root_relative=root_relative, root=root)


def _auc_pa(max_threshold: float = 0.05, steps: int = 100) -> MetricFn:
    """Area under the aligned PCK curve on 0-50 mm (fraction), official thresholds."""
    from handzoo.plugin_api import metrics

    return lambda pred, gt: metrics.pck_auc(pred, gt, max_threshold, steps, aligned=True)


def _pa_mpvpe() -> MetricFn:
    """Procrustes-aligned mean per-vertex error (metres), alignment on the vertices."""
    from handzoo.plugin_api import metrics

    return metrics.pa_mpvpe


def _fscore(threshold: float = 0.005, aligned: bool = True) -> MetricFn:
    """F-score of the vertex sets at a distance threshold (fraction), after alignment."""
    from handzoo.plugin_api import metrics

    return lambda pred, gt: metrics.fscore(pred, gt, threshold, aligned=aligned)


@hookimpl
def register_metrics(register):
    joints = {"inputs": "joints"}  # (N,21,3) metres, root-relative
    verts = {"inputs": "vertices"}  # (N,778,3) metres
    register(
        "pa_mpjpe",
        _pa_mpjpe,
        units="m",
        higher_is_better=False,
        report_key="pa_mpjpe_mm",
        **joints,
    )
    register(
        "mpjpe",
        _mpjpe,
        units="m",
        higher_is_better=False,
        report_key="mpjpe_mm",
        **joints,
    )
    register(
        "auc_pa",
        _auc_pa,
        units="fraction",
        higher_is_better=True,
        report_key="auc_pa_0_50mm",
        **joints,
    )
    register(
        "pa_mpvpe",
        _pa_mpvpe,
        units="m",
        higher_is_better=False,
        report_key="pa_mpvpe_mm",
        **verts,
    )
    for name, threshold in (("f5", 0.005), ("f15", 0.015)):
        register(
            name,
            _fscore,
            description=f"F-score of the aligned meshes at {threshold * 1000:g} mm (fraction)",
            default_cfg={"threshold": threshold, "aligned": True},
            units="fraction",
            higher_is_better=True,
            report_key=name,
            **verts,
        )
