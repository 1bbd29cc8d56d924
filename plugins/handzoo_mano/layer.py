"""``ManoLayer``: the MANO hand model (Romero et al. 2017) as a batched torch module.

Linear blend skinning with shape and pose blend shapes:

1. ``v_shaped = v_template + shapedirs · betas``; rest joints ``J = J_regressor · v_shaped``;
2. ``v_posed = v_shaped + posedirs · (R_1..15 - I)`` (pose blend shapes);
3. the kinematic chain (``kintree_table``) gives every joint's world transform;
4. each vertex moves by the ``weights``-blend of its joints' transforms.

All of it is differentiable and runs on any device. The model data (the
user's licensed ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``) live in non-persistent
buffers: they never enter a ``state_dict``, so published weights never carry them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from handzoo.plugin_api import DataError, UsageError, axis_angle_to_matrix
from handzoo_mano.chain import HandLayerOutput, KinematicTree, mano_to_canonical_index
from handzoo_mano.loading import NUM_BETAS, NUM_JOINTS, find_mano_file, load_mano_file

logger = logging.getLogger("handzoo")

# Fingertip vertices thumb -> little: FreiHAND's choice, and manopth's.
TIP_VERTICES = {
    "freihand": (744, 320, 443, 555, 672),
    "manopth": (745, 317, 444, 556, 673),
}
NUM_HAND_POSE = 3 * (NUM_JOINTS - 1)  # 45


def _tips(tip_vertices: str | Sequence[int]) -> list[int]:
    if isinstance(tip_vertices, str):
        if tip_vertices not in TIP_VERTICES:
            raise UsageError(
                f"tip_vertices={tip_vertices!r} is unknown; use one of {', '.join(TIP_VERTICES)} "
                "or five vertex ids (thumb -> little)"
            )
        return list(TIP_VERTICES[tip_vertices])
    ids = [int(i) for i in tip_vertices]
    if len(ids) != 5:
        raise UsageError(f"tip_vertices needs 5 vertex ids (thumb -> little), got {len(ids)}")
    return ids


class ManoLayer(nn.Module):
    """MANO: pose (B,48 axis-angle) and shape (B,10) -> mesh (B,778,3) and joints (B,21,3), metres.

    Args:
        model_path: ``MANO_RIGHT.pkl`` / ``MANO_LEFT.pkl``, or the folder holding
            them; None reads the folder from ``HANDZOO_MANO_DIR``.
        side: 'right' or 'left'.
        use_pca: ``hand_pose`` holds ``ncomps`` PCA coefficients instead of 45
            axis-angle values.
        ncomps: PCA components used (1..45) when ``use_pca``.
        flat_hand_mean: True: a zero pose is the flat hand. False: ``hands_mean``
            (the mean grasp of MANO's scans) is added to the 45 finger values.
        tip_vertices: 'freihand' (744, 320, 443, 555, 672), 'manopth'
            (745, 317, 444, 556, 673) or five vertex ids, thumb -> little.

    Attributes:
        model_kind: 'mano'.
        faces: (F,3) int64 triangle vertex indices.
    """

    model_kind = "mano"

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        side: str = "right",
        use_pca: bool = False,
        ncomps: int = 45,
        flat_hand_mean: bool = True,
        tip_vertices: str | Sequence[int] = "freihand",
    ) -> None:
        super().__init__()
        path = find_mano_file(model_path, side)
        data = load_mano_file(path)
        self.side = side
        self.use_pca = use_pca
        self.flat_hand_mean = flat_hand_mean
        self.source = str(path)

        def buffer(name: str, value: np.ndarray, dtype: torch.dtype = torch.float32) -> None:
            tensor = torch.as_tensor(np.ascontiguousarray(value), dtype=dtype)
            self.register_buffer(name, tensor, persistent=False)

        v_template = data["v_template"]
        num_vertices = v_template.shape[0]
        shapedirs = data["shapedirs"][:, :, :NUM_BETAS]
        regressor = data["J_regressor"]
        # Vertex data are stored coordinate-major, (3,V) and (K,3V) with index c*V+v: the skinning
        # below then multiplies long contiguous rows instead of 778 tiny 3x3 matrices per sample
        # (measured 2x faster on CPU than the vertex-major layout).
        buffer("v_template", v_template.T)
        buffer("shapedirs", shapedirs.transpose(2, 1, 0).reshape(NUM_BETAS, -1))
        posedirs = data["posedirs"]
        buffer("posedirs", posedirs.transpose(2, 1, 0).reshape(posedirs.shape[-1], -1))
        # J = R (v + S b) = R v + (R S) b: regressing through the shape basis once at load time
        # spares a (16 x 778) product per sample.
        buffer("j_template", regressor @ v_template)
        buffer("j_shapedirs", np.einsum("jv,vcb->bjc", regressor, shapedirs).reshape(NUM_BETAS, -1))
        buffer("lbs_weights_t", data["weights"].T)  # (16,V)
        buffer("faces", data["f"], torch.int64)

        parents = data["kintree_table"][0].copy()
        parents[0] = -1
        if any(not 0 <= p < j for j, p in enumerate(parents[1:], start=1)):
            raise DataError(
                f"{path}: kintree_table row 0 {parents.tolist()} is not a tree listing parents first"
            )
        self.tree = KinematicTree(parents.tolist())

        self.ncomps = ncomps if use_pca else NUM_HAND_POSE
        if use_pca:
            if "hands_components" not in data:
                raise DataError(f"{path}: has no 'hands_components'; use use_pca=False")
            available = data["hands_components"].shape[0]
            if not 1 <= ncomps <= available:
                raise UsageError(f"ncomps must be in 1..{available}, got {ncomps}")
            buffer("hands_components", data["hands_components"][:ncomps])
        mean = data.get("hands_mean", np.zeros(NUM_HAND_POSE))
        buffer("hands_mean", np.zeros(NUM_HAND_POSE) if flat_hand_mean else mean)

        tips = _tips(tip_vertices)
        if max(tips) >= num_vertices:
            raise UsageError(f"tip vertex {max(tips)} is out of range for {num_vertices} vertices")
        buffer("tip_ids", np.asarray(tips), torch.int64)
        buffer("to_canonical", np.asarray(mano_to_canonical_index()), torch.int64)
        buffer("eye", np.eye(3))
        logger.info("MANO layer: %s hand from %s", side, path)

    @property
    def num_vertices(self) -> int:
        return int(self.v_template.shape[1])

    def extra_repr(self) -> str:
        pose = f"pca ncomps={self.ncomps}" if self.use_pca else "axis-angle"
        return f"side={self.side}, pose={pose}, flat_hand_mean={self.flat_hand_mean}, source={self.source}"

    def full_pose(self, global_orient: torch.Tensor, hand_pose: torch.Tensor) -> torch.Tensor:
        """(B,3) + (B,ncomps or 45) -> (B,48) axis-angle: PCA expanded, hands_mean added."""
        if hand_pose.shape[-1] != self.ncomps:
            raise UsageError(
                f"hand_pose has {hand_pose.shape[-1]} values, this layer expects {self.ncomps} "
                f"({'PCA coefficients' if self.use_pca else 'axis-angle values of 15 joints'})"
            )
        if self.use_pca:
            hand_pose = hand_pose @ self.hands_components
        return torch.cat([global_orient, hand_pose + self.hands_mean], dim=-1)

    def forward(
        self,
        global_orient: torch.Tensor,
        hand_pose: torch.Tensor,
        betas: torch.Tensor | None = None,
        transl: torch.Tensor | None = None,
    ) -> HandLayerOutput:
        """Pose and shape the hand.

        Args:
            global_orient: (B,3) axis-angle of the wrist, radians.
            hand_pose: (B,45) axis-angle of the 15 finger joints in MANO order
                (index, middle, little, ring, thumb; 3 joints each), or (B,ncomps)
                PCA coefficients when ``use_pca``.
            betas: (B,10) shape coefficients (None: the mean shape).
            transl: (B,3) metres added to every output point.

        Returns:
            :class:`HandLayerOutput`: ``vertices`` (B,778,3) and ``joints`` (B,21,3)
            in metres, joints in canonical order (MANO's 16 joints + 5 tip vertices).
        """
        pose = self.full_pose(global_orient, hand_pose)
        out = self.forward_rotmats(axis_angle_to_matrix(pose.view(-1, NUM_JOINTS, 3)), betas, transl)
        return out._replace(full_pose=pose)

    def forward_rotmats(
        self, rotmats: torch.Tensor, betas: torch.Tensor | None = None, transl: torch.Tensor | None = None
    ) -> HandLayerOutput:
        """Like :meth:`forward` with the 16 joint rotations given as matrices (B,16,3,3).

        ``hands_mean`` and PCA do not apply: the matrices are the rotations used.
        """
        batch = rotmats.shape[0]
        if betas is None:
            betas = rotmats.new_zeros(batch, NUM_BETAS)
        pose_feature = (rotmats[:, 1:] - self.eye).reshape(batch, -1)
        # (B,3,V): rest vertices with shape and pose blend shapes.
        v_posed = self.v_template + (betas @ self.shapedirs + pose_feature @ self.posedirs).view(batch, 3, -1)
        rest_joints = self.j_template + (betas @ self.j_shapedirs).view(batch, -1, 3)

        world_r, posed_joints = self.tree(rotmats, rest_joints)
        # Each joint's skinning transform maps rest-pose points to posed ones: x -> R x + (t - R J).
        skin_t = posed_joints - (world_r @ rest_joints[..., None]).squeeze(-1)
        transforms = torch.cat([world_r.reshape(batch, NUM_JOINTS, 9), skin_t], dim=-1)  # (B,16,12)
        blended = transforms.transpose(1, 2) @ self.lbs_weights_t  # (B,12,V): 9 rotation rows, 3 shifts
        rot, shift = blended.split([9, 3], dim=1)
        vertices = (rot.view(batch, 3, 3, -1) * v_posed[:, None]).sum(2) + shift  # (B,3,V)
        vertices = vertices.transpose(1, 2)

        joints = torch.cat([posed_joints, vertices[:, self.tip_ids]], dim=1)[:, self.to_canonical]
        if transl is not None:
            joints = joints + transl[:, None]
            vertices = vertices + transl[:, None]
        return HandLayerOutput(joints=joints, vertices=vertices, full_pose=None, rotmats=rotmats)
