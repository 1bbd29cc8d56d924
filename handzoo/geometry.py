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
