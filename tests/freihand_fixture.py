"""A small FreiHAND-layout folder with real JPEGs, written by the tests themselves.

Each unique sample ``a`` has a hand silhouette (discs on the projected joints
and thick bones) filled with a colour that encodes ``a``
(:func:`hand_color`); each version ``v`` has its own background (version 0 is
green screen, like FreiHAND's 'gs'), so a test can tell which annotation and
which version an image shows from its pixels alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from handzoo.data import freihand_layout as layout
from handzoo.geometry import project
from handzoo.joints import BONES

VERSION_COLORS = ((0, 200, 0), (40, 40, 160), (170, 60, 60), (90, 90, 90))


def hand_color(sample_id: int) -> tuple[int, int, int]:
    """The flat RGB colour of unique sample ``sample_id``'s hand pixels."""
    return (230 - 25 * (sample_id % 8), 180, 40 + 25 * (sample_id // 8 % 8))


@dataclass
class Fixture:
    """What was written (arrays are exactly what the JSON files hold)."""

    root: Path
    size: int
    num_unique: int
    num_versions: int
    xyz: np.ndarray  # (N,21,3) m
    K: np.ndarray  # (N,3,3)
    scale: np.ndarray  # (N,)
    mano: np.ndarray | None  # (N,61)
    verts: np.ndarray | None  # (N,778,3)
    masks: np.ndarray  # (N,size,size) uint8 {0,1}, as drawn before JPEG
    eval_xyz: np.ndarray | None = None
    eval_K: np.ndarray | None = None
    images: dict[int, np.ndarray] = field(default_factory=dict)  # file index -> RGB before JPEG


def random_hands(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(n,21,3) metres in front of the camera and (n,3,3) intrinsics that keep them in view.

    fx and fy differ by a few per cent and the principal point is off-centre,
    so conventions that only hold for the ideal camera are caught.
    """
    xyz = np.empty((n, 21, 3))
    K = np.zeros((n, 3, 3))
    for i in range(n):
        root = np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), rng.uniform(0.5, 0.7)])
        offsets = rng.uniform([-0.06, -0.06, -0.03], [0.06, 0.06, 0.03], (21, 3))
        offsets[0] = 0
        xyz[i] = root + offsets
        f = size * rng.uniform(2.6, 3.0)
        K[i] = [
            [f, 0, size / 2 + rng.uniform(-3, 3)],
            [0, f * rng.uniform(1.0, 1.05), size / 2 + rng.uniform(-3, 3)],
            [0, 0, 1],
        ]
    return xyz, K


def draw_hand(uv: np.ndarray, size: int, thickness: float) -> np.ndarray:
    """(size,size) uint8 {0,1} silhouette: discs on joints and thick bones (pixel-edge ``uv``)."""
    mask = np.zeros((size, size), np.uint8)
    pts = np.round(uv - 0.5).astype(int)  # edge convention -> OpenCV pixel centres
    r = max(1, int(thickness))
    for a, b in BONES:
        cv2.line(mask, tuple(pts[a]), tuple(pts[b]), 1, 2 * r)
    for p in pts:
        cv2.circle(mask, tuple(p), r + 1, 1, -1)
    return mask


def background(rng: np.random.Generator, version: int, size: int, texture: bool) -> np.ndarray:
    base = np.empty((size, size, 3), np.float32)
    base[:] = VERSION_COLORS[version % len(VERSION_COLORS)]
    if texture and version > 0:  # natural-ish content so JPEG decoding costs what a photo costs
        low = rng.uniform(-60, 60, (6, 6, 3)).astype(np.float32)
        base += cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
        base += rng.normal(0, 10, (size, size, 3)).astype(np.float32)
    return np.clip(base, 0, 255).astype(np.uint8)


def write_freihand_fixture(
    root: str | Path,
    num_unique: int = 6,
    num_versions: int = 4,
    size: int = 64,
    num_eval: int = 3,
    eval_xyz: bool = True,
    with_mano: bool = True,
    with_verts: bool = True,
    texture: bool = False,
    keep_images: bool = False,
    seed: int = 0,
) -> Fixture:
    """Write ``root`` in the official layout and return what was written.

    Args:
        num_unique: N annotated samples; ``num_versions`` × N training images.
        size: image side in pixels (FreiHAND: 224).
        num_eval: evaluation images (0: no evaluation split).
        eval_xyz: also write evaluation_xyz.json (else prediction-only).
        texture: textured backgrounds (realistic JPEG size) instead of flat colours.
        keep_images: return the RGB arrays written (before JPEG) in ``images``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    xyz, K = random_hands(rng, num_unique, size)
    mano = rng.normal(0, 0.5, (num_unique, 61)) if with_mano else None
    verts = xyz[:, :1] + rng.uniform(-0.05, 0.05, (num_unique, 778, 3)) if with_verts else None
    layout.write_annotations(root, "training", xyz, K, mano=mano, verts=verts)
    masks = np.stack([draw_hand(project(xyz[a], K[a]), size, size / 24) for a in range(num_unique)])
    fixture = Fixture(
        root, size, num_unique, num_versions, xyz, K, layout.bone_scale(xyz), mano, verts, masks
    )
    for a in range(num_unique):
        layout.write_image(layout.mask_path(root, "training", a), masks[a] * np.uint8(255))
    for v in range(num_versions):
        for a in range(num_unique):
            image = background(rng, v, size, texture)
            image[masks[a] > 0] = hand_color(a)
            fi = v * num_unique + a
            layout.write_image(layout.rgb_path(root, "training", fi), image)
            if keep_images:
                fixture.images[fi] = image
    if num_eval:
        exyz, eK = random_hands(rng, num_eval, size)
        layout.write_annotations(
            root, "evaluation", exyz if eval_xyz else None, eK, scale=layout.bone_scale(exyz)
        )
        for i in range(num_eval):
            image = background(rng, 1, size, texture)
            image[draw_hand(project(exyz[i], eK[i]), size, size / 24) > 0] = hand_color(i)
            layout.write_image(layout.rgb_path(root, "evaluation", i), image)
        fixture.eval_xyz, fixture.eval_K = (exyz if eval_xyz else None), eK
    return fixture
