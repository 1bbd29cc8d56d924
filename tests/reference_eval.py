"""A slow, obvious re-statement of the official FreiHAND evaluation (numpy + scipy).

Used only as the independent reference that ``handzoo.metrics`` and
``handzoo.submission`` are tested against: one sample at a time, the official
formulas spelled out, and the official way of aggregating (per-joint lists of
distances, mean over joints of the per-joint means and AUCs). It shares no code
with handzoo.

Inputs are numpy arrays in metres: joints (N,21,3), vertices (N,778,3).
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import orthogonal_procrustes
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

F_THRESHOLDS = (0.005, 0.015)


def align_w_scale(gt: np.ndarray, pred: np.ndarray, allow_reflection: bool = True) -> np.ndarray:
    """Align one (P,3) prediction onto its ground truth (the official ``align_w_scale``).

    With ``allow_reflection=False`` the rotation comes from scipy's Kabsch solver
    (``Rotation.align_vectors``) instead, and the scale is the least-squares one
    for that rotation, the same quantity as the sum of singular values above.
    """
    gt = np.array(gt, dtype=np.float64)
    pred = np.array(pred, dtype=np.float64)
    t_gt, t_pred = gt.mean(0), pred.mean(0)
    a, b = gt - t_gt, pred - t_pred
    s_gt = np.linalg.norm(a) + 1e-8
    s_pred = np.linalg.norm(b) + 1e-8
    a, b = a / s_gt, b / s_pred
    if allow_reflection:
        rot, s = orthogonal_procrustes(a, b)
        b_rot = b @ rot.T
    else:
        rotation, _ = Rotation.align_vectors(a, b)  # a_i ~ C b_i
        b_rot = b @ rotation.as_matrix().T
        s = float(np.sum(a * b_rot))
    return b_rot * s * s_gt + t_gt


class OfficialAccumulator:
    """The official ``EvalUtil``: one list of distances per keypoint, then per-keypoint stats."""

    def __init__(self, num_kp: int = 21):
        self.data: list[list[float]] = [[] for _ in range(num_kp)]

    def feed(self, gt: np.ndarray, pred: np.ndarray) -> None:
        dist = np.sqrt(np.sum((gt - pred) ** 2, axis=1))
        for k, d in enumerate(dist):
            self.data[k].append(float(d))

    def measures(self, val_min: float = 0.0, val_max: float = 0.05, steps: int = 100):
        """(mean error, AUC, mean PCK curve (T,), thresholds (T,)) like ``get_measures``."""
        thresholds = np.linspace(val_min, val_max, steps)
        norm = np.trapezoid(np.ones_like(thresholds), thresholds)
        means, aucs, curves = [], [], []
        for kp in self.data:
            d = np.array(kp)
            means.append(d.mean())
            curve = np.array([np.mean((d <= t).astype(float)) for t in thresholds])
            curves.append(curve)
            aucs.append(np.trapezoid(curve, thresholds) / norm)
        return float(np.mean(means)), float(np.mean(aucs)), np.mean(curves, axis=0), thresholds


def fscore(gt: np.ndarray, pred: np.ndarray, threshold: float) -> float:
    """Official ``calculate_fscore`` with k-d trees in place of Open3D's point-cloud distance."""
    d_gt, _ = cKDTree(pred).query(gt)  # each gt point -> nearest predicted point
    d_pred, _ = cKDTree(gt).query(pred)  # each predicted point -> nearest gt point
    precision = float(np.sum(d_gt < threshold)) / len(d_gt)
    recall = float(np.sum(d_pred < threshold)) / len(d_pred)
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def pa_errors(pred: np.ndarray, gt: np.ndarray, allow_reflection: bool = True) -> np.ndarray:
    """(N,P) distances after per-sample alignment."""
    return np.stack(
        [
            np.linalg.norm(align_w_scale(g, p, allow_reflection) - g, axis=1)
            for p, g in zip(pred, gt, strict=True)
        ]
    )


def evaluate(
    xyz_gt: np.ndarray,
    xyz_pred: np.ndarray,
    verts_gt: np.ndarray | None = None,
    verts_pred: np.ndarray | None = None,
) -> dict[str, float]:
    """The numbers of the official ``scores.txt`` (errors in cm, AUC and F in [0,1]).

    Mesh keys only when both vertex arrays are given (same vertex count).
    """
    xyz, xyz_al = OfficialAccumulator(), OfficialAccumulator()
    with_mesh = verts_gt is not None and verts_pred is not None
    mesh, mesh_al = OfficialAccumulator(778), OfficialAccumulator(778)
    f_raw: list[list[float]] = []
    f_al: list[list[float]] = []
    for i in range(len(xyz_gt)):
        g, p = np.asarray(xyz_gt[i], float), np.asarray(xyz_pred[i], float)
        xyz.feed(g, p)
        xyz_al.feed(g, align_w_scale(g, p))
        if with_mesh:
            vg, vp = np.asarray(verts_gt[i], float), np.asarray(verts_pred[i], float)
            vp_al = align_w_scale(vg, vp)
            mesh.feed(vg, vp)
            mesh_al.feed(vg, vp_al)
            f_raw.append([fscore(vg, vp, t) for t in F_THRESHOLDS])
            f_al.append([fscore(vg, vp_al, t) for t in F_THRESHOLDS])
    out: dict[str, float] = {}
    mean, auc, _, _ = xyz.measures()
    out["xyz_mean3d"], out["xyz_auc3d"] = mean * 100.0, auc
    mean, auc, _, _ = xyz_al.measures()
    out["xyz_al_mean3d"], out["xyz_al_auc3d"] = mean * 100.0, auc
    if with_mesh:
        mean, auc, _, _ = mesh.measures()
        out["mesh_mean3d"], out["mesh_auc3d"] = mean * 100.0, auc
        mean, auc, _, _ = mesh_al.measures()
        out["mesh_al_mean3d"], out["mesh_al_auc3d"] = mean * 100.0, auc
        for j, t in enumerate(F_THRESHOLDS):
            mm = round(t * 1000)
            out[f"f_score_{mm}"] = float(np.mean([row[j] for row in f_raw]))
            out[f"f_al_score_{mm}"] = float(np.mean([row[j] for row in f_al]))
    return out
