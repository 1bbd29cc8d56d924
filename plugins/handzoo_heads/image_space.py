"""The 2.5D hand representation (Iqbal et al., ECCV 2018) and its exact inverse, in torch.

For joints ``X_j = (x_j, y_j, Z_j)`` (metres, camera frame) seen by a pinhole
camera ``K``, the 2.5D pose is

* ``uv_j = π(K X_j)``, pixels of the input image (FreiHAND's projection);
* ``zr_j = (Z_j - Z_root) / s``, depth relative to the wrist in units of the
  reference bone ``s = |X_a - X_b|`` (default a, b = 9, 10: the middle
  finger's MCP → PIP, FreiHAND's ``*_scale.json``);
* ``s`` itself, metres.

Inverse. With ``x̂_j = K⁻¹ (u_j, v_j, 1)ᵀ`` every joint is ``X_j = Z_j x̂_j``
and ``Z_j = Z_root + s·zr_j``. In units of ``s`` the reference bone has length
1, which fixes the root depth ``ζ = Z_root / s`` by the quadratic

    |ζ·(x̂_a - x̂_b) + (zr_a x̂_a - zr_b x̂_b)|² = 1
    ⇔ (d·d) ζ² + 2 (d·e) ζ + (e·e - 1) = 0,  d = x̂_a - x̂_b,  e = zr_a x̂_a - zr_b x̂_b

whose larger root is the hand in front of the camera:
``ζ = (-(d·e) + √((d·e)² - (d·d)(e·e - 1))) / (d·d)``. Then
``X_j = s (ζ + zr_j) x̂_j`` exactly. A predicted pose whose discriminant is
negative (no depth makes the bone unit length) takes the closest depth,
``ζ = -(d·e)/(d·d)``, and ``ζ`` is kept within [2, 500] bone lengths (a
degenerate pose, all joints on one ray, has no finite solution).
"""

from __future__ import annotations

import math

import torch

REFERENCE_BONE = (9, 10)  # middle MCP -> PIP, canonical order (FreiHAND's scale)
ROOT = 0


def default_K(height: int, width: int, fov_deg: float, like: torch.Tensor) -> torch.Tensor:
    """(3,3) pinhole camera of an input image: square pixels, centred principal point, ``fov_deg`` across."""
    f = (width / 2.0) / math.tan(math.radians(fov_deg) / 2.0)
    K = torch.zeros(3, 3, dtype=like.dtype, device=like.device)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2], K[2, 2] = f, f, width / 2.0, height / 2.0, 1.0
    return K


def inverse_3x3(m: torch.Tensor) -> torch.Tensor:
    """(B,3,3) inverses from cross products (adjugate / determinant): plain arithmetic, exports to ONNX."""
    r0, r1, r2 = m[:, 0], m[:, 1], m[:, 2]
    c0, c1, c2 = torch.linalg.cross(r1, r2), torch.linalg.cross(r2, r0), torch.linalg.cross(r0, r1)
    det = (r0 * c0).sum(-1)
    return torch.stack([c0, c1, c2], dim=-1) / det[:, None, None]


def to_25d(
    joints: torch.Tensor, K: torch.Tensor, reference: tuple[int, int] = REFERENCE_BONE
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Camera-frame joints (B,J,3) metres and K (B,3,3) -> (uv (B,J,2) px, zr (B,J), s (B,) metres)."""
    uvw = joints @ K.transpose(1, 2)
    uv = uvw[..., :2] / uvw[..., 2:3]
    a, b = reference
    s = torch.linalg.vector_norm(joints[:, a] - joints[:, b], dim=-1)
    zr = (joints[..., 2] - joints[:, ROOT : ROOT + 1, 2]) / s[:, None]
    return uv, zr, s


def from_25d(
    uv: torch.Tensor,
    zr: torch.Tensor,
    K: torch.Tensor,
    s: torch.Tensor,
    reference: tuple[int, int] = REFERENCE_BONE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The inverse of :func:`to_25d`: (camera-frame joints (B,J,3) metres, root depth Z_root (B,)).

    Args:
        uv: (B,J,2) pixels; zr: (B,J) relative depth in units of ``s``;
        K: (B,3,3) or (3,3); s: (B,) reference-bone length, metres.
    """
    if K.ndim == 2:
        K = K.expand(uv.shape[0], 3, 3)
    ones = torch.ones_like(uv[..., :1])
    rays = torch.cat([uv, ones], dim=-1) @ inverse_3x3(K).transpose(1, 2)  # x̂_j, (B,J,3), z = 1
    a, b = reference
    d = rays[:, a] - rays[:, b]
    e = zr[:, a, None] * rays[:, a] - zr[:, b, None] * rays[:, b]
    dd, de, ee = (d * d).sum(-1), (d * e).sum(-1), (e * e).sum(-1)
    disc = (de * de - dd * (ee - 1.0)).clamp_min(0.0)
    zeta = (-de + torch.sqrt(disc + 1e-12)) / dd.clamp_min(1e-12)
    # A degenerate prediction (the reference bone's joints on one ray, as at initialisation)
    # has no finite solution: keep the hand between 2 and 500 bone lengths from the camera.
    zeta = zeta.clamp(2.0, 500.0)
    joints = s[:, None, None] * (zeta[:, None, None] + zr[..., None]) * rays
    return joints, s * zeta
