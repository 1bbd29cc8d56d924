"""A FreiHAND-like pinhole camera and the placement that centres the hand in the picture."""

from __future__ import annotations

import numpy as np

from handzoo.data.synthetic.primitives import Primitives
from handzoo.data.synthetic.raster import NEAR

REFERENCE_SIZE = 224  # FreiHAND's image side; focal lengths below are for this size
FOCAL_RANGE = (400.0, 800.0)  # pixels at 224 px
MIN_DISTANCE = 0.25  # metres from the camera to the hand's centre


def sample_intrinsics(rng: np.random.Generator, size: int) -> np.ndarray:
    """(3,3) intrinsics: focal U(400, 800) px at 224 px (scaled to ``size``), square pixels,
    principal point within a few pixels of the image centre."""
    scale = size / REFERENCE_SIZE
    f = rng.uniform(*FOCAL_RANGE) * scale
    c = size / 2.0 + np.clip(rng.normal(0.0, 2.0, 2), -5.0, 5.0) * scale
    return np.array([[f, 0.0, c[0]], [0.0, f, c[1]], [0.0, 0.0, 1.0]])


def _box(pts: np.ndarray, ext: np.ndarray, K: np.ndarray) -> np.ndarray:
    z = np.maximum(pts[:, 2], NEAR)
    u = K[0, 0] * pts[:, 0] / z + K[0, 2]
    v = K[1, 1] * pts[:, 1] / z + K[1, 2]
    ru, rv = K[0, 0] * ext[:, 0] / z, K[1, 1] * ext[:, 1] / z
    return np.array([(u - ru).min(), (v - rv).min(), (u + ru).max(), (v + rv).max()])


def silhouette_box(prims: Primitives, K: np.ndarray) -> np.ndarray:
    """Approximate (u0, v0, u1, v1) pixel box of the hand without its forearm.

    ``prims`` are in the camera frame; the box bounds the projected spheres and
    ellipsoid extents (a slight over-estimate for ellipsoids seen obliquely).
    """
    return _box(*prims.bounds_points(), K)


def place_hand(
    prims: Primitives, K: np.ndarray, size: int, fill: float, centre: np.ndarray, iterations: int = 3
) -> np.ndarray:
    """Translation (3,) metres that puts the hand's box centre on ``centre`` (u, v pixels)
    with its longer side ``fill`` × ``size`` pixels.

    Args:
        prims: the hand's primitives, already rotated into camera axes, not yet translated.
        K: (3,3) intrinsics.
        size: image side in pixels.
        fill: wanted longer side of the hand's box as a fraction of ``size``.
        centre: (2,) wanted box centre in pixels.
    """
    f = K[0, 0]
    pts, ext = prims.bounds_points()
    mid = 0.5 * (pts.min(0) + pts.max(0))
    span = float(np.max((pts + ext).max(0)[:2] - (pts - ext).min(0)[:2]))
    depth = max(f * span / (fill * size), MIN_DISTANCE * 0.5)
    t = np.array([(centre[0] - K[0, 2]) / f * depth, (centre[1] - K[1, 2]) / f * depth, depth]) - mid
    for _ in range(iterations):
        box = _box(pts + t, ext, K)
        side = max(box[2] - box[0], box[3] - box[1])
        z = t[2] + mid[2]
        # Projected size goes as 1/distance: move along the ray through the centre.
        t = (t + mid) * (side / (fill * size)) - mid
        box = _box(pts + t, ext, K)
        z = t[2] + mid[2]
        t[0] += (centre[0] - 0.5 * (box[0] + box[2])) * z / f
        t[1] += (centre[1] - 0.5 * (box[1] + box[3])) * z / K[1, 1]
    return t
