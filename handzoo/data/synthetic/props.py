"""Things around the hand in the photo-like generator: held objects, sleeves, objects in front.

Every prop is a primitive of part :data:`OCCLUDER` rasterised in the same
z-buffer as the hand, so it hides exactly what is behind it (the mask and the
part labels stay exact) and is hidden by the fingers in front of it. Each prop
carries a material index into the scene's :class:`Materials`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handzoo.data.synthetic.primitives import Primitives
from handzoo.data.synthetic.skeleton import rot_z


@dataclass
class Materials:
    """Colours of the props: ``albedo`` (K,3) sRGB 0..1, ``specular`` (K,) highlight
    strength, ``texture`` (K,) 0..1 amount of surface pattern (cloth weave, wood, print)."""

    albedo: np.ndarray
    specular: np.ndarray
    texture: np.ndarray

    @classmethod
    def empty(cls) -> Materials:
        return cls(np.zeros((0, 3)), np.zeros(0), np.zeros(0))

    def add(self, albedo: np.ndarray, specular: float, texture: float) -> int:
        """Append one material; returns its index."""
        self.albedo = np.vstack([self.albedo, np.asarray(albedo, np.float64)[None]])
        self.specular = np.append(self.specular, specular)
        self.texture = np.append(self.texture, texture)
        return len(self.specular) - 1


@dataclass
class Props:
    """Prop primitives (all of part OCCLUDER) with the material index of each capsule
    ``cap_material`` (N,) and each ellipsoid ``ell_material`` (M,)."""

    prims: Primitives
    cap_material: np.ndarray
    ell_material: np.ndarray

    @classmethod
    def none(cls) -> Props:
        return cls(_NO_PRIMITIVES, np.zeros(0, np.intp), np.zeros(0, np.intp))

    def add(self, prims: Primitives, material: int) -> None:
        self.prims = Primitives.join(self.prims, prims)
        self.cap_material = np.append(self.cap_material, np.full(len(prims.cap_a), material))
        self.ell_material = np.append(self.ell_material, np.full(len(prims.ell_centre), material))


_NO_PRIMITIVES = Primitives.capsules(np.zeros((0, 3)), np.zeros((0, 3)), 0.0, 0.0)


def object_colour(rng: np.random.Generator) -> np.ndarray:
    """An everyday object's sRGB albedo: mostly muted, sometimes a saturated plastic."""
    hue = rng.random()
    saturation = rng.uniform(0.05, 0.45) if rng.random() < 0.7 else rng.uniform(0.5, 0.9)
    value = rng.uniform(0.15, 0.95)
    rgb = np.clip(np.abs(((hue * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0) - 3.0) - 1.0, 0.0, 1.0)
    return value * (1.0 - saturation + saturation * rgb)


def cloth_colour(rng: np.random.Generator) -> np.ndarray:
    """A sleeve's sRGB albedo: greys, navy, black, white, earth tones and some colour."""
    palette = np.array(
        [
            [0.12, 0.12, 0.13],
            [0.85, 0.85, 0.83],
            [0.45, 0.46, 0.48],
            [0.12, 0.16, 0.3],
            [0.35, 0.25, 0.18],
            [0.55, 0.12, 0.12],
            [0.2, 0.35, 0.25],
            [0.6, 0.55, 0.45],
        ]
    )
    base = palette[rng.integers(len(palette))] if rng.random() < 0.7 else object_colour(rng)
    return np.clip(base * rng.normal(1.0, 0.08, 3), 0.02, 1.0)


def held_object(rng: np.random.Generator, grip: str, palm_scale: np.ndarray) -> Primitives:
    """The object a hand in :func:`..pose_prior.grip_pose` holds, in the hand frame (metres).

    'cylinder': a handle or bottle across the palm (along the hand's x axis,
    slightly tilted), radius 10-22 mm, just palmar of the palm's surface under
    the proximal phalanges; 'sphere': a ball or fruit of radius 22-34 mm in the
    cupped palm.
    """
    if grip == "cylinder":
        radius = float(rng.uniform(0.01, 0.022))
        centre = np.array(
            [
                rng.uniform(-0.01, 0.01),
                rng.uniform(0.078, 0.094) * palm_scale[1],
                0.012 * palm_scale[2] + radius,
            ]
        )
        direction = np.array([1.0, rng.normal(0.0, 0.2), rng.normal(0.0, 0.15)])
        direction /= np.linalg.norm(direction)
        half = float(rng.uniform(0.05, 0.11))
        shift = float(rng.uniform(-0.03, 0.03))
        a, b = centre + direction * (shift - half), centre + direction * (shift + half)
        return Primitives.capsules(a, b, radius, radius * rng.uniform(0.9, 1.1))
    radius = float(rng.uniform(0.022, 0.034))
    centre = np.array([0.0, 0.07 * palm_scale[1], 0.014 * palm_scale[2] + radius])
    squash = rng.uniform(0.85, 1.0, 3)
    return Primitives.ellipsoids(centre, np.eye(3), radius * squash)


def sleeve(rng: np.random.Generator, forearm: Primitives, index: int) -> Primitives:
    """A sleeve over the forearm capsule ``index`` of ``forearm``, 30-60 % thicker than the
    arm: its rounded cuff ends 2-10 cm short of the wrist (never over the hand) and it
    runs past the forearm's far end."""
    a, b = forearm.cap_a[index], forearm.cap_b[index]
    length = float(np.linalg.norm(b - a))
    r = forearm.cap_ra[index] * rng.uniform(1.3, 1.6)
    start = r + float(rng.uniform(0.02, 0.10))
    if start > length:  # a short forearm: the sleeve begins where the picture ends
        start = length + r
    direction = (b - a) / max(length, 1e-9)
    return Primitives.capsules(a + direction * start, b + direction * 0.05, r, r * 1.15)


def object_in_front(rng: np.random.Generator, joints: np.ndarray) -> Primitives:
    """An object between the camera and the hand (camera frame, metres): a stick (pen,
    strap, handle) or a round thing (cup, ball), placed 1.5-6 cm in front of a random
    joint of ``joints`` (21,3) so that it hides part of the hand."""
    target = joints[rng.integers(len(joints))]
    centre = target + np.array([*rng.normal(0.0, 0.015, 2), -rng.uniform(0.015, 0.06)])
    if rng.random() < 0.5:
        angle = rng.uniform(0.0, np.pi)
        half = float(rng.uniform(0.03, 0.1))
        direction = rot_z(np.array(angle))[:, 0] + np.array([0.0, 0.0, rng.normal(0.0, 0.2)])
        direction /= np.linalg.norm(direction)
        radius = float(rng.uniform(0.004, 0.012))
        return Primitives.capsules(centre - half * direction, centre + half * direction, radius, radius)
    axes = rng.uniform(0.01, 0.028, 3)
    return Primitives.ellipsoids(centre, rot_z(np.array(rng.uniform(0, np.pi))), axes)


__all__ = [
    "Materials",
    "Props",
    "cloth_colour",
    "held_object",
    "object_colour",
    "object_in_front",
    "sleeve",
]
