"""3D hand metrics that reproduce the official FreiHAND evaluation, batched in torch.

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

from collections.abc import Mapping, Sequence
from typing import Any

import torch

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
    "summarize",
    "validate_pair",
]

AUC_MAX_THRESHOLD = 0.05  # metres: FreiHAND's PCK curve runs from 0 to 50 mm
AUC_STEPS = 100
FSCORE_THRESHOLDS = (0.005, 0.015)  # metres: F@5mm and F@15mm
_NORM_EPS = 1e-8  # official align_w_scale adds this to both Frobenius norms
# Newton polar iteration: below this |det m| / |m|_F^3 (condition number beyond ~1e11,
# i.e. collinear or planar point sets) the SVD takes over.
_POLAR_MIN_RELATIVE_DET = 1e-12
_POLAR_MAX_STEPS = 40
_DEFAULT_MEMORY_BUDGET_MB = 256.0
_CPU_CACHE_BLOCK_BYTES = 12 * 2**20  # a distance block that stays in a typical L3 cache


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


# --------------------------------------------------------------------- mesh metrics


def pa_mpvpe(pred_verts: torch.Tensor, gt_verts: torch.Tensor) -> torch.Tensor:
    """Procrustes-aligned mean per-vertex error, (N,), metres (official ``mesh_al_mean3d``).

    The alignment is estimated on the vertices (N,V,3), as the official script does
    when the prediction has the ground truth's vertex count (778 for MANO).
    """
    pred_verts, gt_verts = validate_pair(pred_verts, gt_verts, name="vertices")
    return pa_mpjpe(pred_verts, gt_verts)


def nearest_neighbour_distances(
    a: torch.Tensor, b: torch.Tensor, memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB
) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances from each point to the nearest point of the other set, per sample.

    Brute force: squared distances ``|x|^2 + |y|^2 - 2 x.y`` from one batched
    matrix product (coordinates shifted to b's centroid first, which keeps the
    float64 cancellation error near 1e-17 m^2), a min over each axis, and a
    square root of the minima only.

    Args:
        a: (N,P,3), b: (N,Q,3), same device and units.
        memory_budget_mb: bound on the temporary distance block. On the CPU the
            block is also kept under ~12 MB so that it stays in the last-level
            cache (the matrix is written once and read twice: cache-sized
            blocks run about 5x faster than big ones); a sample larger than the
            block is split by rows of ``a``.

    Returns:
        ``(d_ab (N,P), d_ba (N,Q))`` in a's dtype: ``d_ab[n,i] = min_j |a[n,i] - b[n,j]|``.
    """
    well_formed = a.ndim == 3 and b.ndim == 3 and a.shape[-1] == 3 and b.shape[-1] == 3
    if not well_formed or a.shape[0] != b.shape[0] or a.device != b.device:
        raise ValueError(
            f"expected a (N,P,3) and b (N,Q,3) with the same N and device, got "
            f"{tuple(a.shape)} on {a.device} and {tuple(b.shape)} on {b.device}"
        )
    work = _work_dtype(a.device)
    n, p, q = a.shape[0], a.shape[1], b.shape[1]
    itemsize = torch.finfo(work).bits // 8
    block_bytes = memory_budget_mb * 2**20
    if a.device.type == "cpu":
        block_bytes = min(block_bytes, _CPU_CACHE_BLOCK_BYTES)
    rows = min(p, max(1, int(block_bytes // max(q * itemsize, 1))))
    samples = max(1, int(block_bytes // max(p * q * itemsize, 1))) if rows == p else 1
    # Scratch allocated once: fresh pages per block cost more than the arithmetic.
    buf = torch.empty(samples * rows * q, dtype=work, device=a.device)
    a_buf = torch.empty(samples * rows * 5, dtype=work, device=a.device)
    b_buf = torch.empty(samples * 5 * q, dtype=work, device=a.device)
    d_ab = torch.empty((n, p), dtype=work, device=a.device)
    d_ba = torch.full((n, q), torch.inf, dtype=work, device=a.device)
    for start in range(0, n, samples):
        sl = slice(start, min(n, start + samples))
        c = sl.stop - sl.start
        bb = b[sl].to(work)
        centre = bb.mean(dim=1, keepdim=True)
        bc = bb - centre
        # b_aug (c,5,Q) and a_aug (c,rows,5) with [x, |x|^2, 1] @ [-2y, 1, |y|^2]^T = |x - y|^2
        b_aug = b_buf[: c * 5 * q].view(c, 5, q)
        b_aug[:, :3] = bc.transpose(1, 2) * -2
        b_aug[:, 3] = 1
        b_aug[:, 4] = (bc * bc).sum(-1)
        for r in range(0, p, rows):
            ac = a[sl, r : r + rows].to(work) - centre
            k = ac.shape[1]
            a_aug = a_buf[: c * k * 5].view(c, k, 5)
            a_aug[..., :3] = ac
            a_aug[..., 3] = (ac * ac).sum(-1)
            a_aug[..., 4] = 1
            d2 = buf[: c * k * q].view(c, k, q)
            torch.bmm(a_aug, b_aug, out=d2)
            d_ab[sl, r : r + k] = d2.amin(dim=2)
            torch.minimum(d_ba[sl], d2.amin(dim=1), out=d_ba[sl])
    # rounding can leave tiny negative squares for coincident points
    return d_ab.clamp_min_(0).sqrt_().to(a.dtype), d_ba.clamp_min_(0).sqrt_().to(a.dtype)


def _fscore_from_distances(
    d_gt_to_pred: torch.Tensor, d_pred_to_gt: torch.Tensor, thresholds: torch.Tensor
) -> torch.Tensor:
    """(N,T) F-scores from (N,V) distances, official definition (strict ``<``)."""
    precision = (d_gt_to_pred[..., None] < thresholds).to(thresholds.dtype).mean(dim=1)
    recall = (d_pred_to_gt[..., None] < thresholds).to(thresholds.dtype).mean(dim=1)
    total = precision + recall
    f = 2 * precision * recall / torch.where(total > 0, total, torch.ones_like(total))
    return torch.where(total > 0, f, torch.zeros_like(f))


def _mesh_pass(
    pred: torch.Tensor,
    gt: torch.Tensor,
    thresholds: Sequence[float],
    aligned: bool,
    memory_budget_mb: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(pa_mpvpe (N,), F (N,T)) in the working dtype, in blocks of samples.

    Blocks bound the float64 copies the alignment makes (about ten (V,3)
    arrays per sample) by the memory budget, so 3960 meshes never need
    hundreds of MB of temporaries at once.
    """
    if not thresholds or any(not float(t) > 0 for t in thresholds):
        raise ValueError(f"threshold(s) must be positive metres, got {list(thresholds)!r}")
    work = _work_dtype(pred.device)
    n, v = pred.shape[0], pred.shape[1]
    thr = torch.tensor([float(t) for t in thresholds], dtype=work, device=pred.device)
    per_sample = 16 * v * 3 * torch.finfo(work).bits // 8
    step = max(1, int(memory_budget_mb * 2**20 // 2 // per_sample))
    pa = torch.empty(n, dtype=work, device=pred.device)
    f = torch.empty((n, len(thr)), dtype=work, device=pred.device)
    for start in range(0, n, step):
        sl = slice(start, min(n, start + step))
        g = gt[sl].to(work)
        p = _align(pred[sl].to(work), g)
        pa[sl] = torch.linalg.vector_norm(p - g, dim=-1).mean(dim=-1)
        if not aligned:
            p = pred[sl].to(work)
        d_gp, d_pg = nearest_neighbour_distances(g, p, memory_budget_mb / 2)
        f[sl] = _fscore_from_distances(d_gp, d_pg, thr)
    return pa, f


def fscore(
    pred_verts: torch.Tensor,
    gt_verts: torch.Tensor,
    threshold: float | Sequence[float] = FSCORE_THRESHOLDS[0],
    aligned: bool = True,
    memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB,
) -> torch.Tensor:
    """Per-sample F-score between predicted and ground-truth vertex sets.

    Args:
        pred_verts, gt_verts: (N,V,3) metres.
        threshold: metres; a float gives (N,), a sequence gives (N,T) from one
            distance computation (``fscore(p, g, FSCORE_THRESHOLDS)`` -> F@5mm, F@15mm).
        aligned: Procrustes-align the prediction on the vertices first (the
            official ``F_aligned``, the number papers report); False gives the
            raw camera-frame F-score.
        memory_budget_mb: bound on temporaries (see :func:`nearest_neighbour_distances`).

    Returns:
        F = 2PR/(P+R) in [0,1], with precision = fraction of gt vertices whose
        nearest predicted vertex is closer than the threshold, recall = the same
        from the predicted side, and F = 0 when both are 0.
    """
    pred_verts, gt_verts = validate_pair(pred_verts, gt_verts, name="vertices")
    scalar = isinstance(threshold, (int, float))
    thresholds = [threshold] if scalar else list(threshold)
    _, f = _mesh_pass(pred_verts, gt_verts, thresholds, aligned, memory_budget_mb)
    f = f.to(pred_verts.dtype)
    return f[:, 0] if scalar else f


def mesh_metrics(
    pred_verts: torch.Tensor,
    gt_verts: torch.Tensor,
    thresholds: Sequence[float] = FSCORE_THRESHOLDS,
    memory_budget_mb: float = _DEFAULT_MEMORY_BUDGET_MB,
) -> dict[str, torch.Tensor]:
    """PA-MPVPE and aligned F-scores from one alignment and one distance computation.

    Args:
        pred_verts, gt_verts: (N,V,3) metres (V = 778 for MANO).
        thresholds: F-score thresholds in metres.
        memory_budget_mb: bound on temporaries; results do not depend on it.

    Returns:
        (N,) tensors: ``pa_mpvpe`` (metres) and ``f<mm>`` per threshold
        (``f5``, ``f15`` for the defaults), fractions.
    """
    pred_verts, gt_verts = validate_pair(pred_verts, gt_verts, name="vertices")
    pa, f = _mesh_pass(pred_verts, gt_verts, thresholds, True, memory_budget_mb)
    out = {"pa_mpvpe": pa.to(pred_verts.dtype)}
    for i, t in enumerate(thresholds):
        out[f"f{_mm_label(t)}"] = f[:, i].to(pred_verts.dtype)
    return out


def _mm_label(threshold_m: float) -> str:
    mm = threshold_m * 1000.0
    return str(round(mm)) if abs(mm - round(mm)) < 1e-9 else f"{mm:g}".replace(".", "_")


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
