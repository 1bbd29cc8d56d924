"""Forward kinematics over a joint tree, batched level by level, and the hand layers' output type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from handzoo.plugin_api import gather_index


class HandLayerOutput(NamedTuple):
    """What :class:`~handzoo_mano.ManoLayer` and :class:`~handzoo_mano.KinematicHand` return.

    Attributes:
        joints: (B,21,3) metres, canonical order (handzoo.joints.CANONICAL),
            in the model's frame plus ``transl`` (not root-relative).
        vertices: (B,778,3) metres, same frame; None for the kinematic model.
        full_pose: (B,48) axis-angle actually applied (global orientation first,
            hands_mean included); None when the layer was called with rotation matrices.
        rotmats: (B,16,3,3) the same rotations as matrices.
    """

    joints: torch.Tensor
    vertices: torch.Tensor | None
    full_pose: torch.Tensor | None
    rotmats: torch.Tensor


def mano_to_canonical_index() -> list[int]:
    """Indices ``i`` with ``canonical = mano[..., i, :]`` (MANO's 16 joints + 5 tips thumb->little)."""
    return gather_index("mano", "canonical")


class KinematicTree(nn.Module):
    """Rigid forward kinematics for a tree of joints given by ``parents``.

    Joints of equal depth are composed in one batched matmul, so the Python
    loop runs once per tree level (4 for a hand) instead of once per joint.

    Args:
        parents: parent index of every joint, -1 for roots.
    """

    def __init__(self, parents: Sequence[int]) -> None:
        super().__init__()
        parents = [int(p) for p in parents]
        depth = [-1] * len(parents)

        def depth_of(j: int, seen: int = 0) -> int:
            if seen > len(parents):
                raise ValueError(f"joint parents {parents} contain a cycle")
            if depth[j] < 0:
                depth[j] = 0 if parents[j] < 0 else depth_of(parents[j], seen + 1) + 1
            return depth[j]

        for j in range(len(parents)):
            depth_of(j)
        levels = [[j for j in range(len(parents)) if depth[j] == d] for d in range(max(depth) + 1)]
        self.parents = parents
        self.num_levels = len(levels)
        order = [j for level in levels for j in level]
        for d, level in enumerate(levels):
            self.register_buffer(f"level{d}", torch.tensor(level), persistent=False)
            parent = torch.tensor([max(parents[j], 0) for j in level])
            self.register_buffer(f"parent{d}", parent, persistent=False)
            if d > 0:
                slot = {j: i for i, j in enumerate(levels[d - 1])}
                self.register_buffer(
                    f"slot{d}", torch.tensor([slot[parents[j]] for j in level]), persistent=False
                )
        self.register_buffer("unorder", torch.argsort(torch.tensor(order)), persistent=False)

    def forward(self, rotmats: torch.Tensor, rest: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pose the tree.

        Args:
            rotmats: (B,J,3,3) local rotation of every joint (about the joint).
            rest: (B,J,3) or (J,3) joint positions in the rest pose.

        Returns:
            ``(R, t)``: (B,J,3,3) world rotations and (B,J,3) posed joint positions.
        """
        if rest.ndim == 2:
            rest = rest.expand(rotmats.shape[0], -1, -1)
        level = self.level0
        r_prev = rotmats[:, level]
        t_prev = rest[:, level]
        rs, ts = [r_prev], [t_prev]
        for d in range(1, self.num_levels):
            level, parent = getattr(self, f"level{d}"), getattr(self, f"parent{d}")
            slot = getattr(self, f"slot{d}")
            r_parent = r_prev[:, slot]
            offset = rest[:, level] - rest[:, parent]
            t_prev = (r_parent @ offset[..., None]).squeeze(-1) + t_prev[:, slot]
            r_prev = r_parent @ rotmats[:, level]
            rs.append(r_prev)
            ts.append(t_prev)
        return torch.cat(rs, 1)[:, self.unorder], torch.cat(ts, 1)[:, self.unorder]
