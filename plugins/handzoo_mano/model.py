"""``ManoHandModel``: backbone + MANO head, with the head's loss and the hand model in its metadata."""

from __future__ import annotations

import logging
from typing import Any

import torch

from handzoo.model import HandModel
from handzoo.output import HandOutput

logger = logging.getLogger("handzoo")


class ManoHandModel(HandModel):
    """``head(backbone(images))`` where the head is a :class:`~handzoo_mano.head.ManoHead`.

    Attributes:
        handzoo_metadata: ``{"hand_model": 'mano' | 'kinematic', "pose_repr": ...}``.
    """

    def __init__(self, backbone: torch.nn.Module, head: torch.nn.Module, image_size: int = 128) -> None:
        super().__init__(backbone, head, image_size=image_size)
        self.handzoo_metadata = dict(getattr(head, "handzoo_metadata", {}))

    def compute_loss(self, output: HandOutput, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The head's loss terms; ``loss`` is the weighted total (see :mod:`handzoo_mano.losses`)."""
        return self.head.compute_loss(output, batch)


def build_mano_model(
    backbone: str,
    image_size: int = 128,
    backbone_pretrained: bool = False,
    backbone_weights: str | None = None,
    head_cfg: dict[str, Any] | None = None,
) -> ManoHandModel:
    """A registered backbone + the ``mano`` head."""
    from handzoo.builder import create_backbone, create_head

    bb = create_backbone(backbone, pretrained=backbone_pretrained, weights=backbone_weights)
    head = create_head("mano", bb.num_features, **(head_cfg or {}))
    model = ManoHandModel(bb, head, image_size=image_size)
    logger.info("built %s + mano head (hand model: %s)", backbone, model.handzoo_metadata["hand_model"])
    return model
