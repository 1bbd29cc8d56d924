"""A kinematic right-hand skeleton: anatomical template, joint limits, forward kinematics.

Hand frame (metres, right-handed): origin at the wrist joint, +x radial (toward
the thumb), +y distal (toward the fingertips), +z palmar (out of the palm).

Each finger has three joints like MANO's 15 finger joints (the wrist, the
16th rotation, is the global orientation applied later). Angles are stored
as ``angles[finger, joint, dof]`` in radians, shape (5,3,3):

* finger: thumb, index, middle, ring, little (``handzoo.joints.FINGERS``);
* joint: 0 = MCP (thumb: CMC), 1 = PIP (thumb: MCP), 2 = DIP (thumb: IP);
* dof: 0 = flexion (positive bends toward the palm / the thumb's pad),
  1 = abduction (positive toward the thumb side), 2 = axial twist.

A joint's local rotation is ``Rz(-abduction) @ Rx(flexion) @ Ry(twist)`` in the
frame of its parent bone (columns: flexion axis x, bone axis y, palmar axis z),
so a PIP flexion of θ is exactly the angle between the two bones it joins.

Joints come out in the canonical order (``handzoo.joints.CANONICAL``):
wrist, then per finger its base joint (thumb CMC / finger MCP), the next two
joints and the fingertip, which lies on the skin at the end of the finger.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from handzoo.joints import FINGERS, NUM_JOINTS

NUM_FINGERS = len(FINGERS)
FLEX, ABD, TWIST = 0, 1, 2


def _deg(values: object) -> np.ndarray:
    return np.deg2rad(np.asarray(values, dtype=np.float64))


# Base joint of each finger relative to the wrist (thumb: the CMC joint, which
# FreiHAND names thumb "mcp"). The MCP row arches: middle and ring sit dorsal.
_BASE = np.array(
    [
        [0.021, 0.026, 0.004],  # thumb CMC
        [0.026, 0.087, 0.004],  # index MCP
        [0.004, 0.091, 0.000],  # middle MCP
        [-0.015, 0.085, 0.002],  # ring MCP
        [-0.031, 0.075, 0.006],  # little MCP
    ]
)
# Joint-to-joint lengths (base->2nd, 2nd->3rd, 3rd->tip); middle finger is the longest,
# the hand is ~0.19 m from wrist to the middle fingertip.
_LENGTHS = np.array(
    [
        [0.041, 0.031, 0.029],  # thumb: metacarpal, proximal, distal
        [0.040, 0.024, 0.022],
        [0.045, 0.028, 0.024],
        [0.042, 0.027, 0.024],
        [0.033, 0.020, 0.021],
    ]
)
# Flesh radius at the base joint, the 2nd, the 3rd joint and the tip: the thumb is the
# thickest finger, the little finger the thinnest.
_RADII = np.array(
    [
        [0.0130, 0.0108, 0.0098, 0.0088],
        [0.0096, 0.0086, 0.0077, 0.0069],
        [0.0100, 0.0089, 0.0080, 0.0071],
        [0.0094, 0.0083, 0.0075, 0.0067],
        [0.0083, 0.0074, 0.0067, 0.0060],
    ]
)
# Fingers fan out slightly at rest (degrees toward the thumb side).
FAN_DEG = np.array([0.0, 7.0, 0.0, -6.0, -13.0])
# Thumb at rest: metacarpal direction (azimuth from distal toward radial, elevation
# toward palmar) and how far its pad is turned from the palm toward the fingers.
_THUMB_AZIMUTH_DEG = 42.0
_THUMB_ELEVATION_DEG = 25.0
_THUMB_PAD_TURN_DEG = 60.0

# Joint limits in degrees, [finger, joint, dof, (low, high)].
_FINGER_LIMITS = [
    [[-15, 90], [-20, 20], [-8, 8]],  # MCP: flexion, abduction, twist
    [[0, 110], [0, 0], [0, 0]],  # PIP: a hinge
    [[0, 80], [0, 0], [0, 0]],  # DIP: a hinge, coupled to PIP by the pose prior
]
_THUMB_LIMITS = [
    [[-20, 50], [-25, 30], [-10, 30]],  # CMC: flexion across the palm, abduction, opposition
    [[-10, 60], [-8, 8], [0, 0]],  # MCP
    [[-15, 80], [0, 0], [0, 0]],  # IP
]
JOINT_LIMITS: np.ndarray = _deg([_THUMB_LIMITS] + [_FINGER_LIMITS] * 4)
"""(5,3,3,2) radians: low/high of every [finger, joint, dof]."""


def rot_x(a: np.ndarray) -> np.ndarray:
    """(...,3,3) rotations about +x by angles ``a`` (...,) radians."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([o, z, z, z, c, -s, z, s, c], -1).reshape(*np.shape(a), 3, 3)


def rot_y(a: np.ndarray) -> np.ndarray:
    """(...,3,3) rotations about +y by angles ``a`` (...,) radians."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, z, s, z, o, z, -s, z, c], -1).reshape(*np.shape(a), 3, 3)


def rot_z(a: np.ndarray) -> np.ndarray:
    """(...,3,3) rotations about +z by angles ``a`` (...,) radians."""
    c, s = np.cos(a), np.sin(a)
    o, z = np.ones_like(a), np.zeros_like(a)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(*np.shape(a), 3, 3)


def _thumb_base_frame() -> np.ndarray:
    az, el = np.deg2rad(_THUMB_AZIMUTH_DEG), np.deg2rad(_THUMB_ELEVATION_DEG)
    y = np.array([np.sin(az) * np.cos(el), np.cos(az) * np.cos(el), np.sin(el)])
    turn = np.deg2rad(_THUMB_PAD_TURN_DEG)
    pad = np.array([-np.sin(turn), 0.0, np.cos(turn)])  # palmar, turned toward the fingers
    z = pad - pad @ y * y
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)


def _base_frames() -> np.ndarray:
    frames = rot_z(-np.deg2rad(FAN_DEG))
    frames[0] = _thumb_base_frame()
    frames.setflags(write=False)
    return frames


_BASE_FRAMES = _base_frames()


@dataclass(frozen=True)
class HandShape:
    """The per-hand anatomy (metres, hand frame).

    Attributes:
        base: (5,3) base joint of each finger (thumb CMC, finger MCPs).
        base_frames: (5,3,3) rest orientation of each finger's first bone,
            columns = flexion axis, bone axis, palmar axis.
        lengths: (5,3) bone lengths, base->2nd->3rd->tip.
        radii: (5,4) flesh radius at the base, 2nd and 3rd joints and the tip.
        palm_scale: (3,) scale of the palm volume along x, y, z (1 = template).
    """

    base: np.ndarray
    base_frames: np.ndarray
    lengths: np.ndarray
    radii: np.ndarray
    palm_scale: np.ndarray

    @property
    def hand_length(self) -> float:
        """Wrist to the middle fingertip along the straight finger (metres)."""
        return float(np.linalg.norm(self.base[2]) + self.lengths[2].sum())


def mean_shape() -> HandShape:
    """The template hand (~0.19 m from the wrist to the middle fingertip)."""
    return HandShape(
        base=_BASE.copy(),
        base_frames=_BASE_FRAMES,
        lengths=_LENGTHS.copy(),
        radii=_RADII.copy(),
        palm_scale=np.ones(3),
    )


def sample_shape(rng: np.random.Generator) -> HandShape:
    """A random adult hand: global size (sd 6%), per-finger and per-bone length noise, girth.

    Hand lengths (wrist to middle tip) fall between ~0.16 and ~0.22 m (0.19 on average).
    """
    size = float(np.clip(rng.normal(1.0, 0.06), 0.87, 1.13))
    finger = np.clip(rng.normal(1.0, 0.03, size=(5, 1)), 0.95, 1.05)
    bone = np.clip(rng.normal(1.0, 0.035, size=(5, 3)), 0.92, 1.08)
    girth = size * float(np.clip(rng.normal(1.0, 0.07), 0.85, 1.18))
    palm = size * np.clip(rng.normal(1.0, 0.04, size=3), 0.9, 1.1)
    base = _BASE * palm
    return HandShape(
        base=base,
        base_frames=_BASE_FRAMES,
        lengths=_LENGTHS * size * finger * bone,
        radii=_RADII * girth,
        palm_scale=palm,
    )


def joint_rotations(angles: np.ndarray) -> np.ndarray:
    """Local rotation of each finger joint (5,3,3,3) from ``angles`` (5,3,3) radians."""
    a = np.asarray(angles, dtype=np.float64)
    return rot_z(-a[..., ABD]) @ rot_x(a[..., FLEX]) @ rot_y(a[..., TWIST])


def forward_kinematics(angles: np.ndarray, shape: HandShape) -> tuple[np.ndarray, np.ndarray]:
    """Joint positions and bone frames in the hand frame.

    Args:
        angles: (5,3,3) radians, [finger, joint, (flexion, abduction, twist)].
        shape: the hand's anatomy.

    Returns:
        joints: (21,3) metres, hand frame, canonical order (wrist at the origin).
        frames: (5,3,3,3) world orientation of each finger's three bones
            (columns: flexion axis, bone axis, palmar axis).
    """
    local = joint_rotations(angles)
    joints = np.zeros((NUM_JOINTS, 3))
    frames = np.empty((NUM_FINGERS, 3, 3, 3))
    rotation = shape.base_frames
    position = shape.base.copy()
    joints[1::4] = position
    for j in range(3):
        rotation = rotation @ local[:, j]
        frames[:, j] = rotation
        position = position + rotation[:, :, 1] * shape.lengths[:, j, None]
        joints[2 + j :: 4] = position
    return joints, frames


def clip_to_limits(angles: np.ndarray) -> np.ndarray:
    """``angles`` (5,3,3) clipped into :data:`JOINT_LIMITS`."""
    return np.clip(angles, JOINT_LIMITS[..., 0], JOINT_LIMITS[..., 1])
