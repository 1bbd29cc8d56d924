"""The first-party augmenters: rotate, flip and scale (geometric, fused into one warp) and
background, occlude and color (pixel augmenters that commute with the warp).

Each follows :class:`handzoo.interfaces.Augmenter`; see :mod:`handzoo.data.augment`
for the sample dict and how geometric steps keep ``K' = A·K·M⁻¹`` exact.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from handzoo.plugin_api import Augmenter, GeometricAugmenter, Sample, Transform, rotation_z
from handzoo_data import augment_params as ap
from handzoo_data.backgrounds import FolderBackgrounds, texture

_I3 = np.eye(3)
_MIRROR_X = np.diag([-1.0, 1.0, 1.0])


class _HasBatched:
    """First-party augmenters have a batched twin in :mod:`handzoo_data.batched` (torch, any device)."""

    name: str
    params: Any

    def batched(self):
        from handzoo_data.batched import BATCHED

        return BATCHED[self.name](self.params)


class Rotate(_HasBatched, GeometricAugmenter):
    """In-plane rotation by an angle in [-degrees, degrees] about the image centre or principal point.

    joints3d rotate about the camera z axis by the same angle (image y points down).
    """

    name = "rotate"
    Params = ap.RotateParams

    def draw(self, size: tuple[int, int], K: np.ndarray, rng: np.random.Generator) -> Transform:
        deg = self.params.degrees
        angle = math.radians(rng.uniform(-deg, deg)) if deg > 0 else 0.0
        w, h = size
        cx, cy = (w / 2.0, h / 2.0) if self.params.center == "image" else (float(K[0, 2]), float(K[1, 2]))
        R = rotation_z(angle)
        # T(c)·R·T(-c), written out: the same matrix without three 3×3 products
        c, s = R[0, 0], R[1, 0]
        A = np.array([[c, -s, cx - c * cx + s * cy], [s, c, cy - s * cx - c * cy], [0.0, 0.0, 1.0]])
        return Transform(A=A, M=R, M_inv=R.T)


class Flip(_HasBatched, GeometricAugmenter):
    """Horizontal mirror: u -> W - u, x -> -x, K' = F·K·diag(-1,1,1) (cx -> W - cx).

    A right hand becomes a left hand; joint labels keep the canonical order.
    """

    name = "flip"
    Params = ap.FlipParams

    def draw(self, size: tuple[int, int], K: np.ndarray, rng: np.random.Generator) -> Transform:
        A = np.array([[-1.0, 0.0, size[0]], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
        return Transform(A=A, M=_MIRROR_X, M_inv=_MIRROR_X)


class Scale(_HasBatched, GeometricAugmenter):
    """Zoom about the image centre (log-uniform in ``scale``) plus a shift: a random crop.

    3D joints are unchanged; only K changes. Joints may leave the image: labels are kept.
    """

    name = "scale"
    Params = ap.ScaleParams

    def draw(self, size: tuple[int, int], K: np.ndarray, rng: np.random.Generator) -> Transform:
        lo, hi = self.params.scale
        s = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        w, h = size
        t = self.params.translate
        tx, ty = rng.uniform(-t, t) * w, rng.uniform(-t, t) * h
        # T(centre + t)·diag(s, s, 1)·T(-centre), written out
        A = np.array([[s, 0.0, (1 - s) * w / 2 + tx], [0.0, s, (1 - s) * h / 2 + ty], [0.0, 0.0, 1.0]])
        return Transform(A=A, M=_I3, M_inv=_I3)


class Background(_HasBatched, Augmenter):
    """Replace the pixels outside the hand mask by a folder image or a procedural texture.

    A sample without a mask is returned unchanged.
    """

    name = "background"
    Params = ap.BackgroundParams
    commutes_with_geometry = True

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        self.folder = (
            FolderBackgrounds(self.params.folder, self.params.cache_size) if self.params.folder else None
        )

    def batched(self):
        # Folder images are decoded on the CPU; the batched twin draws textures only.
        return None if self.folder is not None else super().batched()

    @property
    def unbatched_reason(self) -> str | None:
        return "background images from a folder are read on the CPU" if self.folder is not None else None

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        mask = sample.get("mask")
        if mask is None:
            return sample
        image = sample["image"]
        size = (image.shape[1], image.shape[0])
        if self.folder is not None and rng.random() < self.params.folder_fraction:
            bg = self.folder.sample(size, rng)
        else:
            kinds = self.params.textures
            bg = texture(kinds[int(rng.integers(len(kinds)))], size, rng)
        cv2.copyTo(image, mask, bg)  # hand pixels over the new background, in place in `bg`
        out = dict(sample)
        out["image"] = bg
        return out


_CIRCLE = np.linspace(0, 2 * np.pi, 24, endpoint=False)
_CIRCLE_COS, _CIRCLE_SIN = np.cos(_CIRCLE), np.sin(_CIRCLE)


class Occlude(_HasBatched, Augmenter):
    """Draw 1..max_shapes random filled shapes; the hand mask is cleared under them."""

    name = "occlude"
    Params = ap.OccludeParams
    commutes_with_geometry = True

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        image = sample["image"].copy()
        h, w = image.shape[:2]
        lo, hi = self.params.size
        n = int(rng.integers(1, self.params.max_shapes + 1))
        kinds = rng.integers(len(self.params.shapes), size=n)
        sides = rng.uniform(lo, hi, n) * min(w, h)
        centers = rng.uniform((0.0, 0.0), (w, h), (n, 2))
        colors = rng.integers(0, 256, (n, 3))
        angles = rng.uniform(0.0, np.pi, n)
        aspects = rng.uniform(0.2, 1.0, n)
        polygons = []
        for i in range(n):
            kind, half = self.params.shapes[kinds[i]], sides[i] / 2
            if kind == "polygon":
                theta = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
                radius = half * rng.uniform(0.4, 1.0, len(theta))
            elif kind == "ellipse":
                theta = _CIRCLE
                radius = half * aspects[i] / np.hypot(aspects[i] * _CIRCLE_COS, _CIRCLE_SIN)
            else:  # rectangle: the corners of a (side × aspect·side) box
                theta = np.array([0.0, np.pi, np.pi, 2 * np.pi]) + np.array([1, -1, 1, -1]) * np.arctan(
                    aspects[i]
                )
                radius = np.full(4, half * np.hypot(1.0, aspects[i]))
            phi = theta + angles[i]
            pts = centers[i] + radius[:, None] * np.stack([np.cos(phi), np.sin(phi)], 1) - 0.5
            polygons.append(np.round(pts).astype(np.int32))
            cv2.fillPoly(image, polygons[-1][None], tuple(int(c) for c in colors[i]))
        out = dict(sample)
        out["image"] = image
        if sample.get("mask") is not None:
            mask = sample["mask"].copy()
            cv2.fillPoly(mask, polygons, 0)
            out["mask"] = mask
        return out


_GREY_AXIS = np.full(3, 1 / np.sqrt(3))
_GREY_CROSS = np.array(
    [
        [0, -_GREY_AXIS[2], _GREY_AXIS[1]],
        [_GREY_AXIS[2], 0, -_GREY_AXIS[0]],
        [-_GREY_AXIS[1], _GREY_AXIS[0], 0],
    ]
)
_GREY_OUTER = np.outer(_GREY_AXIS, _GREY_AXIS)


def hue_rotation(turns: float) -> np.ndarray:
    """(3,3) rotation of RGB about the grey axis (1,1,1)/√3 by ``turns``·360° (Rodrigues).

    A linear hue shift: greys stay grey, saturation is kept, and a third of a
    turn maps red to green (the axes are permuted).
    """
    c, s = np.cos(2 * np.pi * turns), np.sin(2 * np.pi * turns)
    return c * _I3 + s * _GREY_CROSS + (1 - c) * _GREY_OUTER


class Color(_HasBatched, Augmenter):
    """Colour jitter: brightness, saturation, contrast (torchvision-like factors) and a hue rotation.

    All four are linear in RGB, so they fold into one 3×4 matrix applied in a
    single saturating pass: with luma weights w, factors b, s, c and mean
    image luma m, ``x' = H·c·b·(s·I + (1-s)·1wᵀ)·x + (1-c)·b·m``.
    """

    name = "color"
    Params = ap.ColorParams
    commutes_with_geometry = True
    _LUMA = np.array([0.299, 0.587, 0.114])
    _TO_GREY = np.outer(np.ones(3), _LUMA)  # x -> (w·x, w·x, w·x)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        p = self.params
        spread = np.array([p.brightness, p.contrast, p.saturation])
        b, c, s = rng.uniform(1 - spread, 1 + spread)
        hue = rng.uniform(-p.hue, p.hue)
        image = sample["image"]
        mean = cv2.mean(image)
        mean_luma = 0.299 * mean[0] + 0.587 * mean[1] + 0.114 * mean[2]
        matrix = np.empty((3, 4))
        matrix[:, :3] = (c * b) * (hue_rotation(hue) @ (s * _I3 + (1 - s) * self._TO_GREY))
        matrix[:, 3] = (1 - c) * b * mean_luma
        out = dict(sample)
        out["image"] = cv2.transform(image, matrix)
        return out


BUILTIN: dict[str, type[Augmenter]] = {
    cls.name: cls for cls in (Background, Rotate, Flip, Occlude, Color, Scale)
}
