"""``HandOutput``: what every handzoo model returns."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import torch


@dataclass
class HandOutput:
    """The prediction of a hand model for a batch of B images.

    Attributes:
        joints3d: (B,21,3) metres, root-relative (joint 0, the wrist, at the
            origin), camera axes, canonical FreiHAND/OpenPose order
            (see ``handzoo.joints.CANONICAL``).
        vertices: optional (B,778,3) MANO mesh vertices, metres, same frame.
        mano_pose: optional (B,48) axis-angle MANO pose (global orientation first).
        mano_shape: optional (B,10) MANO shape coefficients.
        joints2d: optional (B,21,2) pixels in the input image.
        extras: optional head-specific tensors its own loss terms need (heatmaps,
            relative depths, ...); not part of the exported outputs.
    """

    joints3d: torch.Tensor
    vertices: Optional[torch.Tensor] = None  # noqa: UP045 (dataclass fields read at runtime)
    mano_pose: Optional[torch.Tensor] = None  # noqa: UP045
    mano_shape: Optional[torch.Tensor] = None  # noqa: UP045
    joints2d: Optional[torch.Tensor] = None  # noqa: UP045
    extras: Optional[dict] = None  # noqa: UP045

    def to_dict(self) -> dict[str, torch.Tensor]:
        """The tensor fields that are set, by name (handy for export and logging); ``extras`` left out."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name != "extras" and getattr(self, f.name) is not None
        }
