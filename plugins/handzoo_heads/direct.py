"""The seed report's head: regress the 63 joint coordinates directly."""

from __future__ import annotations

import torch
from torch import nn

from handzoo.plugin_api import HandOutput


class DirectRegressionHead(nn.Module):
    """features (B,C,h,w) -> HandOutput(joints3d (B,21,3) metres, root-relative, canonical order).

    Args:
        in_features: C.
        num_joints: 21.
        output_scale: metres per unit of the linear layer's output. 0.1 (10 cm)
            keeps freshly initialised predictions hand-sized, so the first
            steps are not spent shrinking them.
        dropout: dropout on the pooled features.
    """

    def __init__(
        self, in_features: int, num_joints: int = 21, output_scale: float = 0.1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.num_joints = num_joints
        self.output_scale = output_scale
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_features, num_joints * 3)

    def forward(self, features: torch.Tensor) -> HandOutput:
        pooled = features.mean(dim=(2, 3))
        joints = self.fc(self.dropout(pooled)).view(-1, self.num_joints, 3) * self.output_scale
        # Root-relative by construction: the wrist is the origin of every prediction.
        return HandOutput(joints3d=joints - joints[:, :1])
