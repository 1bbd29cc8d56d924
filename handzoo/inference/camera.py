"""From root-relative 3D joints to 2D pixels: the camera and the placement assumed.

A handzoo model predicts joints **relative to the wrist** (metres, camera
axes): it says nothing about where the hand is or how far away. Pixels are
therefore an approximation, made under two documented assumptions:

1. **Camera.** ``K`` is given by the user (``fx, fy, cx, cy`` in pixels of
   the original image) or, by default, a pinhole camera with square pixels,
   its principal point at the crop's centre and a horizontal field of view of
   :data:`DEFAULT_FOV_DEG` degrees across the crop (close to FreiHAND's
   cameras: focal 400-800 px at 224 px, about 16-31 degrees).
2. **Placement.** The wrist is put at depth ``root_depth`` (default
   :data:`DEFAULT_ROOT_DEPTH` metres) and the hand is shifted sideways so that
   the centre of its joints' bounding box lies on the ray through the crop's
   centre: the model was trained on hand-centred crops.

The defaults (20 degrees, 0.5 m) give hands the scale they have in
FreiHAND-like training crops (focal 400-800 px at 224 px, wrist about
0.4-0.6 m away). Measured on 224-px synthetic images with exact 3D joints,
the mean joints2d error is about 5-15 px: the cost of not knowing the depth.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from handzoo.errors import UsageError
from handzoo.geometry import project
from handzoo.inference.defaults import DEFAULT_FOV_DEG, DEFAULT_ROOT_DEPTH

__all__ = [
    "DEFAULT_FOV_DEG",
    "DEFAULT_ROOT_DEPTH",
    "default_K",
    "intrinsics",
    "parse_K",
    "place_hand",
    "project_placed",
]
MIN_DEPTH = 0.01  # metres: joints closer than this to the camera plane cannot be projected sensibly


def parse_K(text: str) -> np.ndarray:
    """``"fx,fy,cx,cy"`` (pixels of the original image) -> (3,3) intrinsics.

    Raises:
        UsageError: not four numbers, a non-finite value or a focal length <= 0.
    """
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--K {text!r}: expected four numbers fx,fy,cx,cy in pixels") from None
    if len(values) != 4:
        raise UsageError(
            f"--K {text!r}: expected 4 numbers fx,fy,cx,cy in pixels of the original image, got {len(values)}"
        )
    return intrinsics(values, f"--K {text!r}")


def intrinsics(value: Iterable[float] | np.ndarray, what: str = "K") -> np.ndarray:
    """A (3,3) matrix or four values (fx, fy, cx, cy) -> checked (3,3) float64 intrinsics."""
    a = np.asarray(value, dtype=np.float64)
    if a.shape == (4,):
        fx, fy, cx, cy = a
        a = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    if a.shape != (3, 3):
        raise UsageError(f"{what}: expected a (3,3) matrix or 4 values fx,fy,cx,cy, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{what}: contains a non-finite value")
    if a[0, 0] <= 0 or a[1, 1] <= 0:
        raise UsageError(f"{what}: focal lengths must be positive pixels, got fx={a[0, 0]:g}, fy={a[1, 1]:g}")
    if not np.allclose(a[2], [0.0, 0.0, 1.0]):
        raise UsageError(f"{what}: the last row of K must be (0, 0, 1), got {a[2].tolist()}")
    return a


def default_K(box: tuple[float, float, float, float], fov_deg: float = DEFAULT_FOV_DEG) -> np.ndarray:
    """(3,3) intrinsics with a horizontal field of view of ``fov_deg`` across ``box``, centred on it."""
    if not 0.0 < fov_deg < 180.0:
        raise UsageError(f"field of view {fov_deg:g} degrees: expected a value between 0 and 180")
    x0, y0, x1, y1 = box
    f = 0.5 * (x1 - x0) / math.tan(math.radians(fov_deg) / 2)
    return np.array([[f, 0.0, 0.5 * (x0 + x1)], [0.0, f, 0.5 * (y0 + y1)], [0.0, 0.0, 1.0]])


def place_hand(
    joints3d: np.ndarray, K: np.ndarray, boxes: np.ndarray, root_depth: float = DEFAULT_ROOT_DEPTH
) -> np.ndarray:
    """Translations that put root-relative hands in front of the camera (see the module docstring).

    Args:
        joints3d: (N,21,3) metres, root-relative, canonical order.
        K: (N,3,3) intrinsics in pixels of the original images.
        boxes: (N,4) crop boxes (x0, y0, x1, y1) in the same pixels.
        root_depth: z of the wrist in metres.

    Returns:
        (N,3) metres: ``joints3d + t`` are camera-frame joints with the wrist at
        ``z = root_depth`` and the joints' bounding-box centre on the ray
        through the box centre.
    """
    if not root_depth > 0:
        raise UsageError(f"root depth {root_depth:g} m: expected a positive distance in metres")
    j = np.asarray(joints3d, dtype=np.float64)
    mid = 0.5 * (j.min(axis=1) + j.max(axis=1))  # (N,3)
    centre_uv = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)
    # Ray through the box centre: (x, y) = z * K^-1 (u, v, 1) for any upper-triangular K.
    uv1 = np.concatenate([centre_uv, np.ones((len(j), 1))], axis=1)
    ray = np.einsum("nij,nj->ni", np.linalg.inv(K), uv1)
    z_mid = mid[:, 2] + root_depth
    t = np.empty((len(j), 3))
    t[:, 2] = root_depth
    t[:, :2] = ray[:, :2] / ray[:, 2:3] * z_mid[:, None] - mid[:, :2]
    return t


def project_placed(joints3d: np.ndarray, translation: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(N,21,3) root-relative joints + (N,3) translations -> (N,21,2) pixels through (N,3,3) K."""
    camera = np.asarray(joints3d, dtype=np.float64) + translation[:, None, :]
    z = camera[..., 2]
    if np.any(z < MIN_DEPTH):
        worst = int(np.argmin(z.min(axis=1)))
        raise UsageError(
            f"image {worst}: a joint is {z[worst].min():.3f} m from the camera plane after placing the wrist "
            f"at {translation[worst, 2]:.3f} m; pass a larger root depth"
        )
    return project(camera, K)
