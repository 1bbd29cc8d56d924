"""The hand's volume as simple primitives: tapered capsules and ellipsoids.

Fingers are chains of tapered capsules whose axes run exactly through the
joints (so every joint is inside the flesh); the palm is the union of four
metacarpal capsules (the knuckle row), a flat palm ellipsoid, a thenar bulge
that follows the thumb, a hypothenar pad and a wrist; an optional forearm
leaves the picture. Each primitive carries a part label (:data:`PART_NAMES`),
its palmar direction (to tell palm from back by skin tone) and whether it
bears a nail (the distal phalanges, on the dorsal side).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from handzoo.data.synthetic.skeleton import HandShape, rot_x, rot_z

PART_NAMES: tuple[str, ...] = (
    "background",
    "palm",
    "thumb",
    "index",
    "middle",
    "ring",
    "little",
    "forearm",
    "occluder",
)
"""Values of the part-label map: 0 background, 1 palm, 2-6 thumb..little, 7 forearm, 8 occluder."""
PALM, FOREARM, OCCLUDER = 1, 7, 8
FINGER_LABELS = (2, 3, 4, 5, 6)
HAND_LABELS = (1, 2, 3, 4, 5, 6, 7)


def hand_mask(parts: np.ndarray) -> np.ndarray:
    """(S,S) uint8 mask, 255 where a part-label map (S,S) uint8 shows the hand or the
    forearm (labels 1..7), else 0."""
    # parts - 1 wraps background (0) around to 255.
    return np.where(parts - np.uint8(1) < np.uint8(max(HAND_LABELS)), np.uint8(255), np.uint8(0))


# The fingertip joint sits on the skin: the last capsule stops this many tip
# radii short of it, so the joint is inside the rounded end, near its surface.
TIP_INSET = 0.5


@dataclass
class Primitives:
    """Capsules (N) and ellipsoids (M) in one frame (metres).

    Capsules: ``cap_a``/``cap_b`` (N,3) axis end points, ``cap_ra``/``cap_rb`` (N,)
    radii at each end, ``cap_label`` (N,) part labels, ``cap_palmar`` (N,3)
    unit palmar directions, ``cap_axis_x`` (N,3) unit flexion axes, ``cap_nail``
    (N,) whether the capsule bears a nail near ``cap_b``, ``cap_crease`` (N,)
    whether it shows a flexion crease near ``cap_a``.

    Ellipsoids: ``ell_centre`` (M,3), ``ell_rot`` (M,3,3) columns = axes,
    ``ell_axes`` (M,3) semi-axis lengths, ``ell_label`` (M,), ``ell_palmar`` (M,3).
    """

    cap_a: np.ndarray
    cap_b: np.ndarray
    cap_ra: np.ndarray
    cap_rb: np.ndarray
    cap_label: np.ndarray
    cap_palmar: np.ndarray
    cap_axis_x: np.ndarray
    cap_nail: np.ndarray
    cap_crease: np.ndarray
    ell_centre: np.ndarray
    ell_rot: np.ndarray
    ell_axes: np.ndarray
    ell_label: np.ndarray
    ell_palmar: np.ndarray

    def transformed(self, rotation: np.ndarray, translation: np.ndarray) -> Primitives:
        """The primitives moved by ``x -> rotation @ x + translation`` (e.g. hand -> camera)."""
        R, t = np.asarray(rotation), np.asarray(translation)
        return Primitives(
            cap_a=self.cap_a @ R.T + t,
            cap_b=self.cap_b @ R.T + t,
            cap_ra=self.cap_ra,
            cap_rb=self.cap_rb,
            cap_label=self.cap_label,
            cap_palmar=self.cap_palmar @ R.T,
            cap_axis_x=self.cap_axis_x @ R.T,
            cap_nail=self.cap_nail,
            cap_crease=self.cap_crease,
            ell_centre=self.ell_centre @ R.T + t,
            ell_rot=R @ self.ell_rot,
            ell_axes=self.ell_axes,
            ell_label=self.ell_label,
            ell_palmar=self.ell_palmar @ R.T,
        )

    @classmethod
    def capsules(cls, a: np.ndarray, b: np.ndarray, ra: np.ndarray, rb: np.ndarray,
                 label: int = OCCLUDER) -> Primitives:
        """Tapered capsules (N) from ``a`` to ``b`` (N,3) with radii ``ra``/``rb`` (N,), all of one
        part ``label``, no nails or creases (objects, sleeves); no ellipsoids."""
        a, b = np.atleast_2d(a).astype(np.float64), np.atleast_2d(b).astype(np.float64)
        n = len(a)
        axis = b - a
        axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-12)
        # Any unit vector across the axis serves as the flexion axis of an object.
        across = np.cross(axis, np.where(np.abs(axis[:, :1]) < 0.9, [[1.0, 0, 0]], [[0, 1.0, 0]]))
        across /= np.maximum(np.linalg.norm(across, axis=1, keepdims=True), 1e-12)
        return cls(a, b, np.broadcast_to(ra, (n,)).astype(np.float64),
                   np.broadcast_to(rb, (n,)).astype(np.float64), np.full(n, label, np.uint8),
                   np.cross(across, axis), across, np.zeros(n, bool), np.zeros(n, bool),
                   *_no_ellipsoids())

    @classmethod
    def ellipsoids(cls, centre: np.ndarray, rot: np.ndarray, axes: np.ndarray,
                   label: int = OCCLUDER) -> Primitives:
        """Ellipsoids (M) with centres (M,3), axes as the columns of ``rot`` (M,3,3) and
        semi-axis lengths ``axes`` (M,3), all of one part ``label``; no capsules."""
        centre = np.atleast_2d(centre).astype(np.float64)
        m = len(centre)
        rot = np.asarray(rot, dtype=np.float64).reshape(m, 3, 3)
        return cls(*_no_capsules(), centre, rot, np.asarray(axes, np.float64).reshape(m, 3),
                   np.full(m, label, np.uint8), rot[:, :, 2].copy())

    @classmethod
    def join(cls, *parts: Primitives) -> Primitives:
        """One set of primitives: the capsules of ``parts`` in order, then their ellipsoids
        (so a part's primitives keep their order, offset by those before it)."""
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def bounds_points(self, include_forearm: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Points and radii whose spheres bound the hand's silhouette (never its objects).

        Returns (P,3) points and (P,3) per-axis half-extents (x, y, z) around
        them, in the primitives' frame; the forearm is left out unless asked.
        """
        keep = self.cap_label != OCCLUDER  # objects and sleeves are not the hand
        if not include_forearm:
            keep &= self.cap_label != FOREARM
        pts = [self.cap_a[keep], self.cap_b[keep]]
        ext = [np.repeat(self.cap_ra[keep, None], 3, 1), np.repeat(self.cap_rb[keep, None], 3, 1)]
        # An ellipsoid's half-extent along axis e is sqrt(e^T R diag(s^2) R^T e).
        hand = self.ell_label != OCCLUDER
        m = np.einsum("nij,nj,nkj->nik", self.ell_rot[hand], self.ell_axes[hand] ** 2, self.ell_rot[hand])
        pts.append(self.ell_centre[hand])
        ext.append(np.sqrt(np.einsum("nii->ni", m)))
        return np.concatenate(pts), np.concatenate(ext)


def _no_capsules() -> tuple[np.ndarray, ...]:
    v3, v = np.zeros((0, 3)), np.zeros(0)
    return v3, v3, v, v, np.zeros(0, np.uint8), v3, v3, np.zeros(0, bool), np.zeros(0, bool)


def _no_ellipsoids() -> tuple[np.ndarray, ...]:
    v3 = np.zeros((0, 3))
    return v3, np.zeros((0, 3, 3)), v3, np.zeros(0, np.uint8), v3


def _frame(y: np.ndarray, z_hint: np.ndarray) -> np.ndarray:
    """(3,3) rotation with columns x, y, z: y along ``y``, z as close to ``z_hint`` as possible."""
    y = y / np.linalg.norm(y)
    z = z_hint - (z_hint @ y) * y
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


def forearm_direction(flexion: float, deviation: float) -> np.ndarray:
    """(3,3) wrist bend (hand frame) for a wrist flexion and radial deviation in radians;
    its column 1 negated is the forearm's direction away from the wrist."""
    return rot_z(np.array(deviation)) @ rot_x(np.array(-flexion))


# The palm's ellipsoids in the template hand frame (metres; scaled by the hand's palm
# scale): the palm body, the hypothenar pad on the little-finger side (it makes the
# palm asymmetric) and the wrist. The thenar pad follows the thumb (see build_hand).
_PALM_CENTRES = np.array([[0.0, 0.048, 0.004], [-0.025, 0.040, 0.006], [0.0, 0.012, 0.001]])
_PALM_SEMI_AXES = np.array([[0.036, 0.042, 0.0145], [0.013, 0.033, 0.0125], [0.026, 0.024, 0.0155]])
_PALM_ROTATIONS = np.stack([np.eye(3), rot_z(np.array(np.deg2rad(-8.0))), np.eye(3)])
_THENAR_OFFSET = np.array([-0.012, -0.004, -0.002])
_THENAR_SEMI_AXES = np.array([0.016, 0.026, 0.011])
_FOREARM_RADIUS = 0.021

# Finger capsules: 15 phalanges (thumb metacarpal included), in canonical order.
_PHALANX_START = np.array([1 + 4 * f + j for f in range(5) for j in range(3)])
_PHALANX_LABEL = np.repeat(np.array(FINGER_LABELS, dtype=np.uint8), 3)
_PHALANX_NAIL = np.tile([False, False, True], 5)
_HAND_X, _HAND_Z = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0])


def build_hand(
    joints: np.ndarray,
    frames: np.ndarray,
    shape: HandShape,
    forearm: tuple[float, float, float] | None = None,
) -> Primitives:
    """The hand's primitives in the hand frame.

    Args:
        joints: (21,3) metres, hand frame, canonical order (from forward kinematics).
        frames: (5,3,3,3) bone frames from forward kinematics.
        shape: the anatomy (radii, palm scale).
        forearm: None for no forearm, else (length m, wrist flexion rad,
            wrist deviation rad) of a forearm leaving the wrist.

    Returns:
        The :class:`Primitives` of the hand, hand frame: 15 phalanges, 4
        metacarpals and the optional forearm as capsules; palm, thenar,
        hypothenar and wrist as ellipsoids.
    """
    scale = shape.palm_scale
    bone_frames = frames.reshape(15, 3, 3)
    # Phalanges: the last one stops short of the fingertip joint, which then lies
    # inside its rounded end.
    a = joints[_PHALANX_START]
    b = joints[_PHALANX_START + 1].copy()
    b[2::3] -= TIP_INSET * shape.radii[:, 3, None] * bone_frames[2::3, :, 1]
    ra, rb = shape.radii[:, :3].ravel(), shape.radii[:, 1:].ravel()
    palmar = bone_frames[:, :, 2].copy()
    palmar[0] = _HAND_Z  # the thumb metacarpal lies under palm skin: it takes the palm's tone
    axis_x = bone_frames[:, :, 0]

    # Metacarpals: from the carpus to each finger's MCP, thin at the carpus (inside the palm
    # volume) and thicker than the proximal phalanx at the knuckle, so the knuckles show.
    mcp = joints[5::4]
    carpal = np.stack([mcp[:, 0] * 0.55, np.full(4, 0.024 * scale[1]),
                       mcp[:, 2] * 0.5 + 0.002 * scale[2]], axis=1)
    knuckle = shape.radii[1:, 0] * 1.2
    parts = [(a, b, ra, rb, _PHALANX_LABEL, palmar, axis_x, _PHALANX_NAIL, np.ones(15, bool)),
             (carpal, mcp, knuckle * 0.75, knuckle, np.full(4, PALM, np.uint8),
              np.tile(_HAND_Z, (4, 1)), np.tile(_HAND_X, (4, 1)), np.zeros(4, bool),
              np.zeros(4, bool))]
    if forearm is not None:
        length, flexion, deviation = forearm
        bend = forearm_direction(flexion, deviation)
        r = _FOREARM_RADIUS * scale[0]
        parts.append((np.zeros((1, 3)), -bend[None, :, 1] * length, np.array([r]),
                      np.array([r * (1.0 + 0.6 * min(length, 0.25))]),
                      np.array([FOREARM], np.uint8), (bend @ _HAND_Z)[None], (bend @ _HAND_X)[None],
                      np.zeros(1, bool), np.zeros(1, bool)))
    columns = [np.concatenate(c) for c in zip(*parts, strict=True)]

    # Thenar eminence: the ball of the thumb, between the thumb metacarpal and the palm.
    cmc, thumb_mcp = joints[1], joints[2]
    thenar = 0.6 * cmc + 0.4 * thumb_mcp + _THENAR_OFFSET * scale
    return Primitives(
        *columns,
        ell_centre=np.vstack([_PALM_CENTRES[:1] * scale, thenar, _PALM_CENTRES[1:] * scale]),
        ell_rot=np.stack([_PALM_ROTATIONS[0], _frame(thumb_mcp - cmc, _HAND_Z), *_PALM_ROTATIONS[1:]]),
        ell_axes=np.vstack([_PALM_SEMI_AXES[:1], _THENAR_SEMI_AXES, _PALM_SEMI_AXES[1:]]) * scale,
        ell_label=np.full(4, PALM, np.uint8),
        ell_palmar=np.tile(_HAND_Z, (4, 1)),
    )
