"""Joint errors: PA-MPJPE, MPJPE, per-joint errors, PCK curves and their AUC (FreiHAND's definitions).

See :mod:`handzoo.scoring` for the conventions (shapes, units, dtypes) and what "official" means.
"""

from __future__ import annotations

import torch

from handzoo.scoring.alignment import _aligned_errors, _work_dtype, validate_pair

AUC_MAX_THRESHOLD = 0.05  # metres: FreiHAND's PCK curve runs from 0 to 50 mm
AUC_STEPS = 100

# --------------------------------------------------------------------- joint errors


def per_joint_pa_error(
    pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True
) -> torch.Tensor:
    """Euclidean error of each point after Procrustes alignment: (N,P), input units.

    Args:
        pred, gt: (N,P,3); for joints P=21 in canonical order (column j is joint j).
    """
    pred, gt = validate_pair(pred, gt)
    work = _work_dtype(pred.device)
    return _aligned_errors(pred.to(work), gt.to(work), allow_reflection).to(pred.dtype)


def pa_mpjpe(pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True) -> torch.Tensor:
    """Procrustes-aligned mean per-joint position error, (N,), input units (metres).

    Averaged over samples this is FreiHAND's ``xyz_al_mean3d`` (printed in cm).
    """
    return per_joint_pa_error(pred, gt, allow_reflection).mean(dim=-1)


def mpjpe(
    pred: torch.Tensor, gt: torch.Tensor, root_relative: bool = False, root: int = 0
) -> torch.Tensor:
    """Mean per-joint position error without alignment, (N,), input units (metres).

    Args:
        pred, gt: (N,J,3).
        root_relative: subtract joint ``root`` (0 = wrist) from both sets first,
            which is what a root-relative model can be judged on. With False it
            is FreiHAND's unaligned ``xyz_mean3d`` (absolute camera frame).
        root: index of the root joint.
    """
    pred, gt = validate_pair(pred, gt)
    if not -pred.shape[1] <= root < pred.shape[1]:
        raise ValueError(f"root={root} is out of range for {pred.shape[1]} joints")
    work = _work_dtype(pred.device)
    p, g = pred.to(work), gt.to(work)
    if root_relative:
        p = p - p[:, root : root + 1]
        g = g - g[:, root : root + 1]
    return torch.linalg.vector_norm(p - g, dim=-1).mean(dim=-1).to(pred.dtype)


# ------------------------------------------------------------------------- PCK, AUC


def pck_thresholds(
    max_threshold: float = AUC_MAX_THRESHOLD,
    steps: int = AUC_STEPS,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """The official thresholds ``numpy.linspace(0, max_threshold, steps)``, (steps,) metres.

    Built with numpy's own formula (i * step, last value exactly the end) so
    that ``dist <= t`` ties break as in the official script.
    """
    if steps < 2:
        raise ValueError(f"steps must be >= 2 for a trapezoid integral, got {steps}")
    if not max_threshold > 0:
        raise ValueError(f"max_threshold must be positive, got {max_threshold}")
    step = max_threshold / (steps - 1)
    t = torch.arange(steps, dtype=torch.float64) * step
    t[-1] = max_threshold
    return t.to(device=device, dtype=dtype)


def _distances(pred: torch.Tensor, gt: torch.Tensor, aligned: bool) -> torch.Tensor:
    """(N,P) point errors in the working dtype."""
    work = _work_dtype(pred.device)
    p, g = pred.to(work), gt.to(work)
    return _aligned_errors(p, g) if aligned else torch.linalg.vector_norm(p - g, dim=-1)


def pck_curve(
    pred: torch.Tensor,
    gt: torch.Tensor,
    max_threshold: float = AUC_MAX_THRESHOLD,
    steps: int = AUC_STEPS,
    aligned: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample PCK curves.

    Args:
        pred, gt: (N,P,3) metres.
        aligned: Procrustes-align first (official "ALIGNED" numbers).

    Returns:
        ``(thresholds (T,), pck (N,T))``: pck[n, i] is the fraction of points of
        sample n with error ``<= thresholds[i]``. ``pck.mean(0)`` is the official
        curve (``pck_xyz_al`` for aligned joints).
    """
    pred, gt = validate_pair(pred, gt)
    dist = _distances(pred, gt, aligned)
    thr = pck_thresholds(max_threshold, steps, device=dist.device, dtype=dist.dtype)
    # (N,P,1) <= (T,) -> (N,P,T); the mean over points is the per-sample PCK
    pck = (dist[..., None] <= thr).to(dist.dtype).mean(dim=1)
    return thr.to(pred.dtype), pck.to(pred.dtype)


def auc_from_curve(thresholds: torch.Tensor, pck: torch.Tensor) -> torch.Tensor:
    """Normalised area under PCK curve(s), ``trapz(pck, t) / trapz(ones, t)``: (...,T) -> (...)."""
    norm = torch.trapezoid(torch.ones_like(thresholds), thresholds)
    return torch.trapezoid(pck, thresholds, dim=-1) / norm


def pck_auc(
    pred: torch.Tensor,
    gt: torch.Tensor,
    max_threshold: float = AUC_MAX_THRESHOLD,
    steps: int = AUC_STEPS,
    aligned: bool = True,
) -> torch.Tensor:
    """Per-sample area under the PCK curve on [0, max_threshold], (N,) fractions in [0,1].

    The mean over samples equals the official AUC (``xyz_al_auc3d`` with
    ``aligned=True``, ``xyz_auc3d`` with ``aligned=False``).
    """
    pred, gt = validate_pair(pred, gt)
    dist = _distances(pred, gt, aligned)
    thr = pck_thresholds(max_threshold, steps, device=dist.device, dtype=dist.dtype)
    pck = (dist[..., None] <= thr).to(dist.dtype).mean(dim=1)
    return auc_from_curve(thr, pck).to(pred.dtype)
