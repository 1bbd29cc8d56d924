"""Rotation conversions, batched and differentiable (torch).

All functions take any leading batch shape ``...``. Axis-angle vectors are in
radians (direction = axis, norm = angle). Matrices act on column vectors.
"""

from __future__ import annotations

import torch

# Below this angle (radians) the closed forms are replaced by their Taylor
# series, which are exact to float64 precision there and have finite gradients.
_SMALL_ANGLE = 1e-4


def skew(v: torch.Tensor) -> torch.Tensor:
    """(...,3) -> (...,3,3) cross-product matrix ``[v]x`` with ``[v]x @ u = v × u``."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1).reshape(*v.shape[:-1], 3, 3)


def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula: axis-angle (...,3) radians -> rotation matrices (...,3,3).

    ``R = I + sin θ/θ [r]x + (1 - cos θ)/θ² [r]x²`` with θ = |r|; gradients are
    finite at r = 0 (the zero rotation is common: flat hands, fresh heads).
    """
    theta2 = (aa * aa).sum(-1, keepdim=True)
    small = theta2 < _SMALL_ANGLE**2
    # A safe θ² keeps sqrt, sin and the divisions away from 0 on the branch not taken.
    safe2 = torch.where(small, torch.ones_like(theta2), theta2)
    theta = safe2.sqrt()
    a = torch.where(small, 1.0 - theta2 / 6.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24.0, (1.0 - torch.cos(theta)) / safe2)
    k = skew(aa)
    eye = torch.eye(3, dtype=aa.dtype, device=aa.device)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def _sqrt_positive(x: torch.Tensor) -> torch.Tensor:
    """sqrt(max(x, 0)) whose gradient is 0, not inf, where x <= 0 (no host sync on GPUs)."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (...,3,3) -> unit quaternions (...,4) as (w, x, y, z), w >= 0.

    Of the four algebraically equal formulas, each sample uses the one with the
    largest divisor, so the result stays accurate near 180° rotations too.
    """
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    q_abs = _sqrt_positive(
        torch.stack(
            [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], dim=-1
        )
    )  # 2|w|, 2|x|, 2|y|, 2|z|
    candidates = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], dim=-1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], dim=-1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], dim=-1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], dim=-1),
        ],
        dim=-2,
    )
    # The largest of the four is >= 1 (their squares sum to 4), so the clamp never bites it.
    candidates = candidates / (2.0 * q_abs[..., None].clamp(min=0.1))
    best = q_abs.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """Quaternions (...,4) as (w, x, y, z), w >= 0 -> axis-angle (...,3), angle in [0, π]."""
    w, v = q[..., :1], q[..., 1:]
    sin_half2 = (v * v).sum(-1, keepdim=True)
    small = sin_half2 < _SMALL_ANGLE**2
    sin_half = torch.where(small, torch.ones_like(sin_half2), sin_half2).sqrt()
    half = torch.atan2(sin_half, w)
    # angle / |v| -> 2 / w as |v| -> 0 (first order; the error is below 1e-8 there)
    factor = torch.where(small, 2.0 / w, 2.0 * half / sin_half)
    return v * factor


def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (...,3,3) -> axis-angle (...,3), angle in [0, π]."""
    return quaternion_to_axis_angle(matrix_to_quaternion(m))


def rot6d_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """6D representation (...,6) -> rotation matrices (...,3,3) by Gram-Schmidt.

    The 6 numbers are the first two columns of the matrix before
    orthonormalisation (Zhou et al., "On the Continuity of Rotation
    Representations in Neural Networks", CVPR 2019): a continuous
    representation, which regresses better than axis-angle.
    """
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = torch.nn.functional.normalize(a1, dim=-1)
    b2 = torch.nn.functional.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (...,3,3) -> 6D representation (...,6): the first two columns."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)
