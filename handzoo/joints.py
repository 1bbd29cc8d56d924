"""Joint orders, names and bones, and conversions between orders by name.

The canonical order (FreiHAND / OpenPose), used everywhere inside handzoo::

    0 wrist
    1-4   thumb   (cmc, mcp, ip, tip in anatomy; named *_mcp, *_pip, *_dip, *_tip here)
    5-8   index   mcp, pip, dip, tip
    9-12  middle
    13-16 ring
    17-20 little

Other orders are converted at the edges with :func:`convert`, which looks the
joints up by name, so no index table is written twice:

* ``mano``: MANO's 16 kinematic joints (wrist, index×3, middle×3, little×3,
  ring×3, thumb×3) followed by the five fingertips thumb→little (16..20).
* ``ait``: wrist, the five MCPs, the five PIPs, the five DIPs, the five tips,
  each group thumb→little (the seed report's order).
* ``mediapipe``: MediaPipe Hands' 21 landmarks in its own order, named as
  MediaPipe names them (:data:`MEDIAPIPE_LANDMARKS`: ``WRIST``, ``THUMB_CMC``,
  ..., ``PINKY_TIP``) and mapped onto ours by anatomy (:data:`MEDIAPIPE_TO_CANONICAL`).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np

FINGERS = ("thumb", "index", "middle", "ring", "little")
SEGMENTS = ("mcp", "pip", "dip", "tip")

CANONICAL: tuple[str, ...] = ("wrist",) + tuple(f"{f}_{s}" for f in FINGERS for s in SEGMENTS)

_MANO_KINEMATIC_FINGERS = ("index", "middle", "little", "ring", "thumb")
MANO: tuple[str, ...] = (
    ("wrist",)
    + tuple(f"{f}_{s}" for f in _MANO_KINEMATIC_FINGERS for s in SEGMENTS[:3])
    + tuple(f"{f}_tip" for f in FINGERS)
)

AIT: tuple[str, ...] = ("wrist",) + tuple(f"{f}_{s}" for s in SEGMENTS for f in FINGERS)

# MediaPipe's HandLandmark enumeration, in its order (index = landmark number).
MEDIAPIPE_LANDMARKS: tuple[str, ...] = ("WRIST", "THUMB_CMC", "THUMB_MCP", "THUMB_IP", "THUMB_TIP") + tuple(
    f"{finger}_{joint}"
    for finger in ("INDEX_FINGER", "MIDDLE_FINGER", "RING_FINGER", "PINKY")
    for joint in ("MCP", "PIP", "DIP", "TIP")
)
# By anatomy: the thumb's CMC, MCP and IP joints are the first three thumb joints, which the
# canonical names call mcp, pip and dip like the other fingers'; MediaPipe's pinky is our little finger.
_MEDIAPIPE_FINGER = {
    "THUMB": "thumb",
    "INDEX_FINGER": "index",
    "MIDDLE_FINGER": "middle",
    "RING_FINGER": "ring",
    "PINKY": "little",
}
_MEDIAPIPE_THUMB_JOINT = {"CMC": "mcp", "MCP": "pip", "IP": "dip", "TIP": "tip"}


def _mediapipe_to_canonical(name: str) -> str:
    if name == "WRIST":
        return "wrist"
    finger, joint = name.rsplit("_", 1)
    segment = _MEDIAPIPE_THUMB_JOINT[joint] if finger == "THUMB" else joint.lower()
    return f"{_MEDIAPIPE_FINGER[finger]}_{segment}"


MEDIAPIPE_TO_CANONICAL: dict[str, str] = {n: _mediapipe_to_canonical(n) for n in MEDIAPIPE_LANDMARKS}
MEDIAPIPE: tuple[str, ...] = tuple(MEDIAPIPE_TO_CANONICAL[n] for n in MEDIAPIPE_LANDMARKS)

ORDERS: dict[str, tuple[str, ...]] = {
    "canonical": CANONICAL,
    "mano": MANO,
    "ait": AIT,
    "mediapipe": MEDIAPIPE,
}

NUM_JOINTS = 21
ROOT = CANONICAL.index("wrist")

# (parent, child) pairs in canonical indices: wrist to each MCP, then along each finger.
BONES: tuple[tuple[int, int], ...] = tuple(
    (0 if s == 0 else 1 + 4 * fi + s - 1, 1 + 4 * fi + s) for fi in range(5) for s in range(4)
)

# Parent of every canonical joint (-1 for the wrist): the kinematic tree.
PARENTS: tuple[int, ...] = (-1,) + tuple(p for p, _ in BONES)

# One colour per finger (RGB 0..1) for pictures; the wrist is grey.
FINGER_COLORS = {
    "thumb": (0.89, 0.10, 0.11),
    "index": (1.00, 0.50, 0.00),
    "middle": (0.20, 0.63, 0.17),
    "ring": (0.12, 0.47, 0.71),
    "little": (0.42, 0.24, 0.60),
}

T = TypeVar("T")


def joint_names(order: str = "canonical") -> tuple[str, ...]:
    """The 21 joint names of ``order`` ('canonical', 'mano', 'ait' or 'mediapipe')."""
    try:
        return ORDERS[order]
    except KeyError:
        raise ValueError(f"unknown joint order {order!r}; expected one of {', '.join(ORDERS)}") from None


def finger_of(joint: int | str) -> str | None:
    """The finger a canonical joint (index or name) belongs to; None for the wrist."""
    name = CANONICAL[joint] if isinstance(joint, int) else joint
    return None if name == "wrist" else name.split("_")[0]


def gather_index(src: str, dst: str) -> list[int]:
    """Indices ``idx`` such that ``x_dst = x_src[..., idx, :]``, matched by joint name."""
    src_names, dst_names = joint_names(src), joint_names(dst)
    position = {n: i for i, n in enumerate(src_names)}
    return [position[n] for n in dst_names]


def convert(joints: T, src: str, dst: str, axis: int = -2) -> T:
    """Reorder joints from order ``src`` to order ``dst``.

    Args:
        joints: numpy array or torch tensor with 21 joints along ``axis``
            (default -2, i.e. (...,21,D)).
        src, dst: 'canonical', 'mano', 'ait' or 'mediapipe'.
    """
    idx = gather_index(src, dst)
    if joints.shape[axis] != NUM_JOINTS:
        raise ValueError(f"expected {NUM_JOINTS} joints on axis {axis}, got shape {tuple(joints.shape)}")
    if isinstance(joints, np.ndarray):
        return np.take(joints, idx, axis=axis)
    import torch

    return torch.index_select(joints, axis % joints.ndim, torch.as_tensor(idx, device=joints.device))
