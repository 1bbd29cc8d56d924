"""Checks of point-set pairs and the official Procrustes alignment (FreiHAND's ``align_w_scale``), batched.

See :mod:`handzoo.scoring` for the conventions (shapes, units, dtypes) and what "official" means.
"""

from __future__ import annotations

from typing import Any

import torch

_NORM_EPS = 1e-8  # official align_w_scale adds this to both Frobenius norms
# Newton polar iteration: below this |det m| / |m|_F^3 (condition number beyond ~1e11,
# i.e. collinear or planar point sets) the SVD takes over.
_POLAR_MIN_RELATIVE_DET = 1e-12
_POLAR_MAX_STEPS = 40

# --------------------------------------------------------------------------- checks


def validate_pair(
    pred: Any,
    gt: Any,
    name: str = "points",
    num_points: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a prediction/ground-truth pair and return both as floating tensors.

    Args:
        pred, gt: (N,P,3) tensors (numpy arrays are accepted and converted).
        name: what the points are ("joints", "vertices"), used in messages.
        num_points: the required P, or None to accept any P >= 1.

    Raises:
        ValueError: wrong type, ndim, trailing size, mismatched shapes or
            devices, or NaN/Inf values; the message says what was expected.
    """
    pred = _as_tensor(pred, f"pred {name}")
    gt = _as_tensor(gt, f"gt {name}")
    expected_p = str(num_points) if num_points is not None else "P"
    for role, x in (("pred", pred), ("gt", gt)):
        if x.ndim != 3 or x.shape[-1] != 3:
            hint = " (add the batch dimension with x[None])" if x.ndim == 2 else ""
            raise ValueError(
                f"{role} {name}: expected shape (N,{expected_p},3), got {tuple(x.shape)}{hint}"
            )
        if num_points is not None and x.shape[1] != num_points:
            raise ValueError(
                f"{role} {name}: expected {num_points} points per sample, got {x.shape[1]} "
                f"(shape {tuple(x.shape)})"
            )
        if x.shape[1] == 0:
            raise ValueError(f"{role} {name}: expected at least one point per sample")
    if pred.shape != gt.shape:
        raise ValueError(
            f"{name}: pred shape {tuple(pred.shape)} does not match gt shape {tuple(gt.shape)}"
        )
    if pred.device != gt.device:
        raise ValueError(f"{name}: pred is on {pred.device} but gt is on {gt.device}; move one")
    for role, x in (("pred", pred), ("gt", gt)):
        # One reduction is enough when the sum is finite; only then look for the culprits.
        if bool(torch.isfinite(x.sum())):
            continue
        finite = torch.isfinite(x).all(dim=(1, 2))
        if not bool(finite.all()):
            bad = torch.nonzero(~finite).flatten()[:5].tolist()
            raise ValueError(
                f"{role} {name}: NaN or Inf in sample(s) {bad}; expected finite values"
            )
    return pred, gt


def _as_tensor(x: Any, what: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise ValueError(f"{what}: expected a (N,P,3) tensor, got {type(x).__name__}") from exc
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{what}: expected real floating values, got dtype {x.dtype}")
    if not x.is_floating_point():
        x = x.to(torch.float64)
    return x


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float32 if device.type == "mps" else torch.float64


def _cofactors(x: torch.Tensor) -> torch.Tensor:
    """Cofactor matrices of (N,3,3) ``x``: ``x^-T = cof(x) / det(x)``, rows from cross products."""
    r0, r1, r2 = x[:, 0], x[:, 1], x[:, 2]
    return torch.stack(
        [torch.linalg.cross(r1, r2), torch.linalg.cross(r2, r0), torch.linalg.cross(r0, r1)], dim=1
    )


def _polar_newton(m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal polar factor of (N,3,3) ``m`` by scaled Newton iteration, and a success mask.

    ``X <- (g X + (g X)^-T) / 2`` with ``g = |det X|^(-1/3)`` converges
    quadratically to ``U Vh`` of ``m = U W Vh`` (a reflection when det m < 0),
    the very matrix scipy's ``orthogonal_procrustes`` returns, in about eight
    steps of elementwise arithmetic: several times faster than a batched
    LAPACK SVD of many 3x3 matrices. Nearly singular matrices (degenerate
    point sets) are flagged in the mask for the SVD instead.
    """
    fro = torch.linalg.vector_norm(m, dim=(1, 2))
    cof = _cofactors(m)
    det = (m[:, 0] * cof[:, 0]).sum(-1)
    ok = det.abs() > _POLAR_MIN_RELATIVE_DET * fro**3
    # Unit scale for the flagged ones only keeps their (unused) iterates finite.
    x = torch.where(ok[:, None, None], m, torch.eye(3, dtype=m.dtype, device=m.device))
    converged_once = False
    for _ in range(_POLAR_MAX_STEPS):
        cof = _cofactors(x)
        det = (x[:, 0] * cof[:, 0]).sum(-1)
        g = det.abs().pow(-1.0 / 3.0)[:, None, None]
        x_next = 0.5 * (g * x + cof / (g * det[:, None, None]))
        step = (x_next - x).abs().amax(dim=(1, 2))
        x = x_next
        if converged_once:
            break  # one more step after reaching 1e-9 lands at rounding level (quadratic rate)
        converged_once = bool((step[ok] < 1e-9).all()) if bool(ok.any()) else True
    else:
        ok = ok & (step < 1e-12)
    return x, ok


def _procrustes_factors(
    m: torch.Tensor, allow_reflection: bool, fixed_cost: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """Orthogonal factor (N,3,3) and sum of singular values (N,) of orthogonal Procrustes.

    As ``scipy.linalg.orthogonal_procrustes``: ``U, W, Vh = svd(m)``, ``R = U Vh``,
    scale = sum(W) = trace(R^T m). Without reflections the last singular
    direction is flipped when ``det(U Vh) < 0`` (Kabsch/Umeyama), and its
    singular value subtracted. ``R`` comes from a Newton polar iteration where
    that is safe (see :func:`_polar_newton`) and from an SVD elsewhere; both
    run in float64, on the CPU for devices without float64. ``fixed_cost``
    takes the SVD for every sample: no convergence test reads the device, so
    a training step on a GPU never waits for it.
    """
    m64 = m if m.dtype == torch.float64 else m.detach().cpu().to(torch.float64)
    if fixed_cost:  # one batched SVD, no data-dependent branch: no host synchronisation
        u, w, vh = torch.linalg.svd(m64)
        if not allow_reflection:
            sign = torch.where(torch.linalg.det(u) * torch.linalg.det(vh) < 0, -1.0, 1.0).to(w)
            u = torch.cat([u[..., :2], u[..., 2:] * sign[:, None, None]], dim=-1)
        rot = u @ vh
        return rot.to(m), (rot * m64).sum(dim=(1, 2)).to(m)
    rot, ok = _polar_newton(m64)
    if not allow_reflection:
        ok = ok & (torch.linalg.det(m64) > 0)  # there the polar factor is already a rotation
    if not bool(ok.all()):
        idx = torch.nonzero(~ok).flatten()
        u, w, vh = torch.linalg.svd(m64[idx])
        if not allow_reflection:
            sign = torch.where(torch.linalg.det(u) * torch.linalg.det(vh) < 0, -1.0, 1.0).to(w)
            u = torch.cat([u[..., :2], u[..., 2:] * sign[:, None, None]], dim=-1)
        rot = rot.index_copy(0, idx, u @ vh)
    scale = (rot * m64).sum(dim=(1, 2))  # trace(R^T m)
    return rot.to(m), scale.to(m)


# ------------------------------------------------------------------------ alignment


def _similarity(
    pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True, fixed_cost: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Official align_w_scale, factored: ``aligned = pred_c @ T + mu_gt``.

    Inputs are validated (N,P,3) tensors in the working dtype. Returns
    ``(pred_c, T, gt_c, mu_gt)``: both sets centred, the (N,3,3) map
    ``T = R^T * s * |gt_c| / |pred_c|`` and gt's centroid (N,1,3).

    The official code divides each centred set by its Frobenius norm (+1e-8)
    before the SVD; scaling a matrix scales its singular values and leaves the
    singular vectors alone, so the division is folded into T instead of
    touching every point twice.
    """
    mu_gt = gt.mean(dim=1, keepdim=True)
    gt_c = gt - mu_gt
    pred_c = pred - pred.mean(dim=1, keepdim=True)
    s_gt = torch.linalg.vector_norm(gt_c, dim=(1, 2)) + _NORM_EPS
    s_pred = torch.linalg.vector_norm(pred_c, dim=(1, 2)) + _NORM_EPS
    # scipy.linalg.orthogonal_procrustes(gt_n, pred_n): R = U Vh from svd(gt_n^T pred_n)
    rot, w_sum = _procrustes_factors(gt_c.transpose(1, 2) @ pred_c, allow_reflection, fixed_cost)
    scale = w_sum / (s_gt * s_pred)  # sum of singular values of gt_n^T pred_n
    factor = scale * s_gt / s_pred
    return pred_c, rot.transpose(1, 2) * factor[:, None, None], gt_c, mu_gt


def _align(pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True) -> torch.Tensor:
    """(N,P,3) prediction aligned onto gt (official align_w_scale), working dtype."""
    pred_c, t, _, mu_gt = _similarity(pred, gt, allow_reflection)
    return torch.baddbmm(mu_gt, pred_c, t)


def _aligned_errors(
    pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True
) -> torch.Tensor:
    """(N,P) distances between the aligned prediction and gt, working dtype."""
    pred_c, t, gt_c, _ = _similarity(pred, gt, allow_reflection)
    # aligned - gt = pred_c @ T + mu_gt - gt = pred_c @ T - gt_c
    return torch.linalg.vector_norm(torch.baddbmm(gt_c, pred_c, t, beta=-1), dim=-1)


def procrustes_transform(
    pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True, fixed_cost: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The similarity map of official alignment, as tensors: ``aligned = (pred - mu_pred) @ T + mu_gt``.

    Args:
        pred, gt: (N,P,3), same units, same point order.
        allow_reflection: as in :func:`procrustes_align`.
        fixed_cost: one batched SVD for every sample instead of the Newton
            iteration's convergence tests, so nothing waits for the device (a
            training loss on a GPU); the same map to rounding.

    Returns:
        ``T`` (N,3,3) (rotation times scale), ``mu_pred`` and ``mu_gt`` (N,1,3),
        in the working dtype (float64) on pred's device. Computed without
        gradient tracking: a training loss applies it to ``pred`` with
        gradient (at the optimum the map's own derivative does not change
        the aligned error to first order, so no SVD is differentiated).
    """
    with torch.no_grad():
        pred, gt = validate_pair(pred.detach(), gt.detach())
        work = _work_dtype(pred.device)
        p, g = pred.to(work), gt.to(work)
        _, t, _, mu_gt = _similarity(p, g, allow_reflection, fixed_cost)
        return t, p.mean(dim=1, keepdim=True), mu_gt


def procrustes_align(
    pred: torch.Tensor, gt: torch.Tensor, allow_reflection: bool = True
) -> torch.Tensor:
    """Similarity-align each predicted point set onto its ground truth, like official FreiHAND.

    Args:
        pred, gt: (N,P,3), same units (metres), same point order.
        allow_reflection: True (the default, official behaviour) lets the
            orthogonal factor be a reflection, so a mirrored hand aligns
            perfectly; False restricts it to proper rotations (det +1).

    Returns:
        (N,P,3) aligned prediction in gt's frame, on pred's device, pred's dtype.
        Degenerate sets (all points equal, collinear, all zero) give finite
        results: an all-equal prediction maps to the gt centroid.
    """
    pred, gt = validate_pair(pred, gt)
    work = _work_dtype(pred.device)
    return _align(pred.to(work), gt.to(work), allow_reflection).to(pred.dtype)
