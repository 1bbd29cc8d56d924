"""Camera geometry shared by datasets, augmenters and pictures.

Conventions: points are metres in the camera frame (x right, y down, z forward);
K is the 3×3 pinhole intrinsic matrix; pixels are as in FreiHAND's own
projection ``uv = (K @ xyz.T).T; uv = uv[:, :2] / uv[:, 2:]`` (a resize by a
factor s scales u, v and the first two rows of K by s).
"""

from __future__ import annotations

import numpy as np


def project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Perspective projection.

    Args:
        points: (...,J,3) metres, camera frame, z > 0.
        K: (...,3,3) intrinsics (broadcast against ``points``' leading dims).

    Returns:
        (...,J,2) pixels.
    """
    uvw = np.einsum("...ij,...nj->...ni", K, points)
    return uvw[..., :2] / uvw[..., 2:3]


def affine_to_homography(A: np.ndarray) -> np.ndarray:
    """A (2,3) image affine as a (3,3) matrix."""
    H = np.eye(3, dtype=np.float64)
    H[:2] = A
    return H


def transform_K(K: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Intrinsics after warping the image by the pixel affine ``A`` (2×3 or 3×3).

    Exact when ``A`` is a similarity applied in the image plane and the 3D
    points are rotated the matching way (see :func:`rotation_z`), or when
    ``A`` is a scale/translation (crop, resize) and points are unchanged.
    """
    H = A if A.shape == (3, 3) else affine_to_homography(A)
    return (H @ K).astype(K.dtype)


def crop_resize_K(K: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    """Intrinsics after cropping ``box`` = (x0, y0, x1, y1) pixels and resizing it to ``size``².

    The box's corner maps to (0,0) and its far corner to (size,size).
    """
    x0, y0, x1, y1 = box
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    A = np.array([[sx, 0.0, -sx * x0], [0.0, sy, -sy * y0]])
    return transform_K(K, A)


def rotation_z(angle_rad: float) -> np.ndarray:
    """(3,3) rotation about the camera's optical axis by ``angle_rad`` (image-plane, y down)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def rotated_crop_affine(box: tuple[float, float, float, float], angle: float, size: int) -> np.ndarray:
    """(3,3) pixel map ``A`` from an image to its rotated square crop resized to ``size``².

    The crop is the square of side ``L = max(x1 - x0, y1 - y0)`` centred on the
    box's centre ``c``, turned clockwise on screen (x right, y down) by
    ``angle`` radians. With ``R = rotation_z(angle)[:2, :2]`` (clockwise on
    screen for a positive angle, since y points down), the crop point ``q`` in
    [0, size]² is the image point ``u = c + (L/size)·R·(q - size/2)``, so

    ``A: u -> q = size/2 + (size/L)·Rᵀ·(u - c)``.

    Continuous pixel coordinates (pixel (0,0) covers [0,1)²); for ``angle = 0``
    this is :func:`crop_resize_K`'s crop-and-resize map of a square box.
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    side = max(x1 - x0, y1 - y0)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    linear = (size / side) * rotation_z(angle)[:2, :2].T
    A = np.eye(3)
    A[:2, :2] = linear
    A[:2, 2] = size / 2 - linear @ centre
    return A


def rotated_crop_K(
    K: np.ndarray, box: tuple[float, float, float, float], angle: float, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The camera of a rotated crop: ``(K_crop, Rz, A)`` with ``A·K = K_crop·Rz`` exactly.

    Args:
        K: (3,3) intrinsics of the image, pixels (last row (0, 0, 1)).
        box: (x0, y0, x1, y1) pixels of the image; the crop is its square
            around its centre, turned by ``angle`` (:func:`rotated_crop_affine`).
        angle: radians, the crop turned clockwise on screen (x right, y down).
        size: the crop's side S in pixels after resizing.

    Returns:
        ``K_crop`` (3,3) upper-triangular intrinsics of the crop (pixels of the
        S×S crop); ``Rz`` (3,3) a rotation about the optical axis (z); ``A``
        (3,3) the pixel map image -> crop.

    Why it is exact: a camera-frame point ``X`` (metres) is seen at pixel
    ``K·X`` of the image (up to the depth) and so at ``A·K·X`` of the crop.
    ``A`` is a similarity (scale ``S/L`` times the rotation ``Rᵀ``) plus a
    shift, so its upper-left 2×2 block times K's is ``s·Rᵀ·[[fx, k], [0, fy]]``;
    an RQ factorisation splits it into an upper-triangular ``U`` (positive
    diagonal) and a rotation ``Q``. Then ``A·K = K_crop·Rz`` with ``K_crop =
    [[U, t], [0, 1]]`` (``t`` the last column of ``A·K``) and ``Rz = [[Q, 0],
    [0, 1]]``: the crop is exactly the picture of an upright pinhole camera
    ``K_crop`` turned about its optical axis, a point ``X`` of the image's
    camera frame being ``Rz·X`` in the crop's. With square pixels (``fx = fy``,
    no skew), ``Q = Rᵀ``, ``Rz = rotation_z(-angle)`` and ``K_crop`` has
    ``fx = fy = (S/L)·f`` and no skew; otherwise ``K_crop`` gets a small skew
    and ``Rz`` differs slightly from ``rotation_z(-angle)``, still exactly.

    So a model fed the crop with ``K_crop`` predicts in the crop's frame, and
    back in the image's: 3D points and translations ``X = Rzᵀ·X_crop``
    (row vectors: ``x_crop @ Rz``), pixels ``u = A⁻¹·q``.
    """
    A = rotated_crop_affine(box, angle, size)
    M = A @ np.asarray(K, dtype=np.float64)
    (m00, m01), (m10, m11) = M[:2, :2]
    d = float(np.hypot(m10, m11))
    sin, cos = m10 / d, m11 / d  # the second row of U·Q is d·(sin, cos)
    Rz = np.array([[cos, -sin, 0.0], [sin, cos, 0.0], [0.0, 0.0, 1.0]])
    K_crop = np.array(
        [
            [m00 * cos - m01 * sin, m00 * sin + m01 * cos, M[0, 2]],
            [0.0, d, M[1, 2]],
            [0.0, 0.0, 1.0],
        ]
    )
    return K_crop, Rz, A


def axis_angle_to_matrix(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (...,3) axis-angle vectors (radians) -> (...,3,3) rotation matrices."""
    v = np.asarray(axis_angle, dtype=np.float64)
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = v / np.where(angle > 1e-12, angle, 1.0)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    cross = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*v.shape[:-1], 3, 3)
    c, s = np.cos(angle)[..., None], np.sin(angle)[..., None]
    outer = axis[..., :, None] * axis[..., None, :]
    return c * np.eye(3) + s * cross + (1.0 - c) * outer


def matrix_to_axis_angle(rotation: np.ndarray) -> np.ndarray:
    """(...,3,3) rotation matrices -> (...,3) axis-angle vectors, angle in [0, π].

    Near π the axis comes from the symmetric part ``(R + Rᵀ)/2 = cos·I + (1-cos)·aaᵀ``
    (the skew part vanishes there), with its sign taken from the skew part.
    """
    r = np.asarray(rotation, dtype=np.float64)
    skew = np.stack(
        [r[..., 2, 1] - r[..., 1, 2], r[..., 0, 2] - r[..., 2, 0], r[..., 1, 0] - r[..., 0, 1]], -1
    )
    cos = np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0)
    angle = np.arccos(cos)
    sin = np.sqrt(np.maximum(1.0 - cos**2, 0.0))
    out = np.empty(r.shape[:-1], dtype=np.float64)
    small = sin > 1e-6
    out[small] = (skew[small] / (2.0 * sin[small, None])) * angle[small, None]
    rest = ~small
    if rest.any():
        sym = (r[rest] + np.swapaxes(r[rest], -1, -2)) / 2.0
        outer = (sym - cos[rest, None, None] * np.eye(3)) / np.maximum(1.0 - cos[rest], 1e-12)[:, None, None]
        column = np.argmax(np.diagonal(outer, axis1=-2, axis2=-1), axis=-1)
        axis = outer[np.arange(len(column)), :, column]
        axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
        sign = np.where((axis * skew[rest]).sum(-1) < 0, -1.0, 1.0)
        # angle ~ 0: the identity, whatever axis was found
        out[rest] = np.where(angle[rest, None] < 1e-6, 0.0, axis * sign[:, None] * angle[rest, None])
    return out
