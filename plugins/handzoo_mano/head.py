"""``ManoHead``: backbone features -> MANO pose and shape -> hand layer -> ``HandOutput``."""

from __future__ import annotations

import logging

import torch
from torch import nn

from handzoo.plugin_api import (
    HandOutput,
    UsageError,
    matrix_to_axis_angle,
    merge_loss_weights,
    rot6d_to_matrix,
)
from handzoo_mano.hand_layer import create_hand_layer
from handzoo_mano.losses import DEFAULT_WEIGHTS, mano_terms

logger = logging.getLogger("handzoo")

POSE_REPRS = ("rot6d", "axis_angle", "pca")
NUM_BETAS = 10


class ManoHead(nn.Module):
    """features (B,C,h,w) -> global pool -> MLP -> (orientation, pose, betas) -> hand layer.

    Args:
        in_features: C.
        pose_repr: 'rot6d' (6 numbers per joint, the default: continuous, regresses
            best), 'axis_angle' (3 per joint) or 'pca' (``ncomps`` coefficients of
            MANO's pose PCA for the 15 finger joints; needs the real MANO model).
            The global orientation is 6D for 'rot6d', axis-angle otherwise.
        ncomps: PCA components when ``pose_repr='pca'``.
        hidden: width of the MLP's hidden layer.
        dropout: dropout on the hidden layer.
        hand_model: 'auto' (MANO when its files are found, else the kinematic
            hand), 'mano' or 'kinematic'.
        mano_dir: folder holding ``MANO_RIGHT.pkl`` (default: ``HANDZOO_MANO_DIR``).
        side: 'right' or 'left'.
        flat_hand_mean: MANO only, axis-angle and PCA poses: False adds MANO's mean
            pose, so a zero output is a relaxed hand.
        loss_weights: overrides of :data:`handzoo_mano.losses.DEFAULT_WEIGHTS`.

    Returns from ``forward``: :class:`handzoo.HandOutput` with ``joints3d``
    (B,21,3) metres, root-relative, canonical order; ``mano_pose`` (B,48)
    axis-angle applied (global first); ``mano_shape`` (B,10); ``vertices``
    (B,778,3) root-relative (real MANO only).

    Attributes:
        hand_model_kind: 'mano' or 'kinematic' (also in ``handzoo_metadata``).
    """

    def __init__(
        self,
        in_features: int,
        pose_repr: str = "rot6d",
        ncomps: int = 12,
        hidden: int = 512,
        dropout: float = 0.0,
        hand_model: str = "auto",
        mano_dir: str | None = None,
        side: str = "right",
        flat_hand_mean: bool = False,
        loss_weights: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        if pose_repr not in POSE_REPRS:
            raise UsageError(f"pose_repr={pose_repr!r} is unknown; use one of {', '.join(POSE_REPRS)}")
        options = {"flat_hand_mean": flat_hand_mean} if pose_repr != "rot6d" else {}
        if pose_repr == "pca":
            options.update(use_pca=True, ncomps=ncomps)
        self.layer = create_hand_layer(hand_model, mano_dir=mano_dir, side=side, **options)
        self.pose_repr = pose_repr
        self.hand_model_kind = self.layer.model_kind
        self.handzoo_metadata = {"hand_model": self.hand_model_kind, "pose_repr": pose_repr}
        self.loss_weights = merge_loss_weights(DEFAULT_WEIGHTS, loss_weights, "the MANO head")

        self.orient_dim = 6 if pose_repr == "rot6d" else 3
        self.pose_dim = {"rot6d": 15 * 6, "axis_angle": 45, "pca": ncomps}[pose_repr]
        out_dim = self.orient_dim + self.pose_dim + NUM_BETAS
        self.mlp = nn.Sequential(
            nn.Linear(in_features, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout) if dropout > 0 else nn.Identity(),
            nn.Linear(hidden, out_dim),
        )
        # Start at the rest hand: tiny weights, and a bias that is the identity rotation.
        last = self.mlp[-1]
        nn.init.normal_(last.weight, std=1e-3)
        bias = torch.zeros(out_dim)
        if pose_repr == "rot6d":
            bias[: self.orient_dim + self.pose_dim] = torch.tensor([1.0, 0, 0, 0, 1.0, 0]).repeat(16)
        with torch.no_grad():
            last.bias.copy_(bias)
        logger.info("MANO head: %s hand model, %s pose", self.hand_model_kind, pose_repr)

    def forward(self, features: torch.Tensor) -> HandOutput:
        params = self.mlp(features.mean(dim=(2, 3)))
        # The hand model runs in float32 even under mixed precision: rotations composed along a
        # finger chain and 778 blended vertices lose millimetres in float16.
        with torch.autocast(device_type=params.device.type, enabled=False):
            return self._hand(params.float())

    def _hand(self, params: torch.Tensor) -> HandOutput:
        orient, pose, betas = params.split([self.orient_dim, self.pose_dim, NUM_BETAS], dim=1)
        if self.pose_repr == "rot6d":
            rotmats = rot6d_to_matrix(torch.cat([orient, pose], dim=1).view(-1, 16, 6))
            out = self.layer.forward_rotmats(rotmats, betas)
            mano_pose = matrix_to_axis_angle(rotmats).reshape(-1, 48)
        else:
            out = self.layer(orient, pose, betas)
            mano_pose = out.full_pose
        # Root-relative: the wrist is the origin of joints and mesh alike.
        root = out.joints[:, :1]
        return HandOutput(
            joints3d=out.joints - root,
            vertices=None if out.vertices is None else out.vertices - root,
            mano_pose=mano_pose,
            mano_shape=betas,
        )

    def extra_loss_weights(self) -> dict[str, float]:
        """The head's loss terms and weights (see :mod:`handzoo_mano.losses`), added to the joint loss."""
        return dict(self.loss_weights)

    def extra_losses(self, output: HandOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Unweighted terms; the MANO parameters supervise only the real MANO layer's output."""
        return mano_terms(output, batch, use_mano_params=self.hand_model_kind == "mano")
