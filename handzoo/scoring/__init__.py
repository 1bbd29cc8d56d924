"""Scoring: 3D hand metrics that reproduce the official FreiHAND evaluation, batched in torch, and the
constant-pose baseline every figure is compared with.

Modules: :mod:`.alignment` (pair checks, Procrustes), :mod:`.joint_errors`
(PA-MPJPE, MPJPE, PCK/AUC), :mod:`.mesh` (PA-MPVPE, F-scores),
:mod:`.report` (per-sample metrics and their summary), :mod:`.baseline` (the
Procrustes mean of the training labels). ``handzoo.metrics`` re-exports the
metric functions (``from handzoo import metrics``).

Every function takes point sets as torch tensors of shape (N,P,3): N samples
of P points (21 joints in canonical FreiHAND/OpenPose order, or 778 MANO
vertices), in metres, camera frame. Results are per sample, shape (N,), in the
input units (metres) or as fractions in [0, 1]; they stay on the input device
and have the prediction's dtype. Average them over samples to get the numbers
the official ``eval.py`` of the FreiHAND toolkit prints (it prints cm; handzoo
reports mm through :func:`summarize`).

What "official" means, formula by formula:

* Procrustes alignment (``align_w_scale``): centre both sets, divide each by
  its Frobenius norm plus 1e-8, solve orthogonal Procrustes (``R = U Vh`` from
  the SVD of ``gt_n^T @ pred_n``) with *no* reflection correction, scale = sum
  of the singular values, then map the prediction into the ground truth's
  frame. ``R`` is the orthogonal polar factor of that 3x3 matrix; handzoo gets
  it by a batched Newton iteration (several times faster than thousands of
  tiny LAPACK SVDs) and falls back to the SVD for nearly singular matrices;
  both agree with scipy to ~1e-13.
* Joint errors: mean Euclidean distance over joints (the official per-joint
  means over samples average to the same number, since every joint is valid).
* AUC: PCK at ``linspace(0, 0.05, 100)`` with ``dist <= t``, integrated by the
  trapezoid rule and divided by the integral of ones. The official script
  averages per-joint curves over samples; the per-sample AUC here averages to
  exactly the same value because the whole computation is linear in the
  indicator counts.
* Mesh error: the alignment is estimated on the vertices themselves.
* F-score: nearest-neighbour distances gt->pred and pred->gt after mesh
  alignment, ``d < threshold`` (strict), F = 2PR/(P+R), 0 when P+R = 0;
  FreiHAND reports thresholds 5 mm and 15 mm.

The arithmetic runs in float64 whatever the input dtype, so float32 inputs
lose nothing beyond their own rounding (well under the 1e-5 m the leaderboard
resolves). Apple's MPS device has no float64: there the points stay float32 and
the 3x3 factorisation alone moves to the CPU.
"""

from __future__ import annotations

from handzoo.scoring.alignment import procrustes_align, procrustes_transform, validate_pair
from handzoo.scoring.joint_errors import (
    AUC_MAX_THRESHOLD,
    AUC_STEPS,
    auc_from_curve,
    mpjpe,
    pa_mpjpe,
    pck_auc,
    pck_curve,
    pck_thresholds,
    per_joint_pa_error,
)
from handzoo.scoring.mesh import (
    FSCORE_THRESHOLDS,
    fscore,
    mesh_metrics,
    nearest_neighbour_distances,
    pa_mpvpe,
)
from handzoo.scoring.report import REPORT_KEYS, per_sample_metrics, summarize

__all__ = [
    "AUC_MAX_THRESHOLD",
    "AUC_STEPS",
    "FSCORE_THRESHOLDS",
    "REPORT_KEYS",
    "auc_from_curve",
    "fscore",
    "mesh_metrics",
    "mpjpe",
    "nearest_neighbour_distances",
    "pa_mpjpe",
    "pa_mpvpe",
    "pck_auc",
    "pck_curve",
    "pck_thresholds",
    "per_joint_pa_error",
    "per_sample_metrics",
    "procrustes_align",
    "procrustes_transform",
    "summarize",
    "validate_pair",
]
