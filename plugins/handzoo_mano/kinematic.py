"""``KinematicHand``: a licence-free stand-in for MANO that gives joints only.

It takes MANO's pose parameterisation (16 joint rotations in MANO's joint
order: wrist, index, middle, little, ring, thumb, three joints each; 48
axis-angle values) and poses an anatomical skeleton of a right hand, so a
MANO head trains out of the box when the licensed MANO files are absent.

Template frame (metres, a flat right hand, like
``handzoo.data.synthetic.skeleton``): origin at the wrist, +x radial (toward
the thumb), +y distal (toward the fingertips), +z palmar. It is not MANO's
frame, so MANO poses do not transfer between the two models.

Shape: the 10 ``betas`` are log-scales of bone groups, ``scale = exp(0.05·β)``
(β = ±1 changes lengths by about ±5 %):

====  =====================================================
β     scales
====  =====================================================
0     the whole hand
1     palm length (distal part of wrist -> finger base)
2     palm width (radial part of wrist -> finger base)
3-7   the thumb, index, middle, ring, little finger
8     proximal segments (base joint -> second joint)
9     distal segments (second joint -> third -> tip)
====  =====================================================
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from handzoo.plugin_api import FINGERS, axis_angle_to_matrix, joint_names
from handzoo_mano.chain import HandLayerOutput, KinematicTree, mano_to_canonical_index

NUM_BETAS = 10
BETA_LOG_SCALE = 0.05

# Finger base joint (thumb CMC / finger MCP) relative to the wrist, thumb -> little.
_BASE = np.array(
    [
        [0.020, 0.025, 0.005],
        [0.025, 0.086, 0.004],
        [0.004, 0.090, 0.000],
        [-0.015, 0.084, 0.002],
        [-0.031, 0.074, 0.006],
    ]
)
# Base -> 2nd joint, 2nd -> 3rd, 3rd -> tip, thumb -> little.
_LENGTHS = np.array(
    [
        [0.042, 0.032, 0.028],
        [0.040, 0.024, 0.021],
        [0.045, 0.028, 0.023],
        [0.042, 0.027, 0.023],
        [0.033, 0.020, 0.020],
    ]
)
# Fingers fan out at rest (degrees toward the thumb); the thumb leaves the palm
# 45° radially and 30° toward the palm side.
_FAN_DEG = (0.0, 6.0, 0.0, -6.0, -12.0)
_THUMB_DIR = np.array([np.sin(np.pi / 4) * np.cos(np.pi / 6), np.cos(np.pi / 4) * np.cos(np.pi / 6), 0.5])


def template_joints() -> np.ndarray:
    """(21,3) rest joints of the template hand in MANO order (16 joints + tips thumb->little), metres."""
    names = joint_names("mano")
    out = np.zeros((21, 3))
    for f, finger in enumerate(FINGERS):
        if finger == "thumb":
            direction = _THUMB_DIR / np.linalg.norm(_THUMB_DIR)
        else:
            a = np.deg2rad(_FAN_DEG[f])
            direction = np.array([np.sin(a), np.cos(a), 0.0])
        point = _BASE[f].copy()
        for s, segment in enumerate(("mcp", "pip", "dip", "tip")):
            out[names.index(f"{finger}_{segment}")] = point
            if s < 3:
                point = point + _LENGTHS[f, s] * direction
    return out


def mano_parents() -> list[int]:
    """Parent of each of the 21 joints in MANO order (tips hang off each finger's third joint)."""
    names = joint_names("mano")
    parents = [-1]
    chain = ("mcp", "pip", "dip", "tip")
    for name in names[1:]:
        finger, segment = name.split("_")
        s = chain.index(segment)
        parents.append(0 if s == 0 else names.index(f"{finger}_{chain[s - 1]}"))
    return parents


def _scale_design(parents: list[int]) -> np.ndarray:
    """(21,3,10) 0/1 matrix: which β scales which axis of which parent->joint offset."""
    names = joint_names("mano")
    design = np.zeros((21, 3, NUM_BETAS))
    for j, name in enumerate(names):
        if parents[j] < 0:
            continue
        finger, segment = name.split("_")
        design[j, :, 0] = 1
        if segment == "mcp":  # wrist -> finger base: the palm
            design[j, 1, 1] = 1
            design[j, 0, 2] = 1
        else:
            design[j, :, 3 + FINGERS.index(finger)] = 1
            design[j, :, 8 if segment == "pip" else 9] = 1
    return design


class KinematicHand(nn.Module):
    """Pose (B,48 axis-angle) and bone-length shape (B,10) -> joints (B,21,3) metres, canonical order.

    Same call as :class:`~handzoo_mano.ManoLayer` (no PCA, no vertices).

    Args:
        side: 'right', or 'left' for the template mirrored across the x = 0 plane.

    Attributes:
        model_kind: 'kinematic'.
    """

    model_kind = "kinematic"
    use_pca = False
    ncomps = 45

    def __init__(self, side: str = "right") -> None:
        super().__init__()
        if side not in ("right", "left"):
            raise ValueError(f"side must be 'right' or 'left', got {side!r}")
        self.side = side
        parents = mano_parents()
        rest = template_joints()
        if side == "left":
            rest[:, 0] *= -1
        offsets = rest - rest[np.maximum(parents, 0)]
        offsets[0] = rest[0]
        # ancestors[j, k] = 1 when k is j or above it: rest joints = ancestors @ offsets.
        ancestors = np.zeros((21, 21))
        for j in range(21):
            k = j
            while k >= 0:
                ancestors[j, k] = 1
                k = parents[k]
        for name, value in (
            ("offsets", offsets),
            ("design", _scale_design(parents)),
            ("ancestors", ancestors),
        ):
            self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32), persistent=False)
        self.register_buffer("to_canonical", torch.tensor(mano_to_canonical_index()), persistent=False)
        self.register_buffer("eye", torch.eye(3), persistent=False)
        self.tree = KinematicTree(parents)

    def rest_joints(self, betas: torch.Tensor) -> torch.Tensor:
        """(B,10) -> (B,21,3) rest joints in MANO order, metres."""
        scale = torch.exp(BETA_LOG_SCALE * (betas[:, None, None, :] * self.design).sum(-1))
        return self.ancestors @ (self.offsets * scale)

    def forward(
        self,
        global_orient: torch.Tensor,
        hand_pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> HandLayerOutput:
        """Pose the skeleton.

        Args:
            global_orient: (B,3) axis-angle of the wrist, radians.
            hand_pose: (B,45) axis-angle of the 15 finger joints in MANO order.
            betas: (B,10) bone-group log-scales (None: the template).
            transl: (B,3) metres added to every joint.

        Returns:
            :class:`~handzoo_mano.chain.HandLayerOutput` with ``joints`` (B,21,3)
            canonical order and ``vertices`` None.
        """
        if hand_pose.shape[-1] != 45:
            raise ValueError(f"hand_pose has {hand_pose.shape[-1]} values; the kinematic hand takes 45")
        pose = torch.cat([global_orient, hand_pose], dim=-1)
        out = self.forward_rotmats(axis_angle_to_matrix(pose.view(-1, 16, 3)), betas, transl)
        return out._replace(full_pose=pose)

    def forward_rotmats(
        self, rotmats: torch.Tensor, betas: torch.Tensor | None = None, transl: torch.Tensor | None = None
    ) -> HandLayerOutput:
        """Like :meth:`forward` with the 16 rotations given as matrices (B,16,3,3)."""
        batch = rotmats.shape[0]
        if betas is None:
            betas = rotmats.new_zeros(batch, NUM_BETAS)
        # Tips carry no rotation of their own.
        all_r = torch.cat([rotmats, self.eye.expand(batch, 5, 3, 3)], dim=1)
        _, joints = self.tree(all_r, self.rest_joints(betas))
        joints = joints[:, self.to_canonical]
        if transl is not None:
            joints = joints + transl[:, None]
        return HandLayerOutput(joints=joints, vertices=None, full_pose=None, rotmats=rotmats)
