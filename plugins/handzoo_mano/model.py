"""Backbone + MANO head: the composition behind ``resnet50-mano`` and ``resnet101-mano``."""

from __future__ import annotations

import logging
from typing import Any

from handzoo.plugin_api import HandModel

logger = logging.getLogger("handzoo")


def build_mano_model(
    backbone: str,
    image_size: int = 128,
    backbone_pretrained: bool = False,
    backbone_weights: str | None = None,
    head_cfg: dict[str, Any] | None = None,
) -> HandModel:
    """A registered backbone + the ``mano`` head; the model's ``handzoo_metadata`` names the hand layer."""
    from handzoo.plugin_api import create_backbone, create_head

    bb = create_backbone(backbone, pretrained=backbone_pretrained, weights=backbone_weights)
    head = create_head("mano", bb.num_features, **(head_cfg or {}))
    model = HandModel(bb, head, image_size=image_size)
    logger.info("built %s + mano head (hand model: %s)", backbone, model.handzoo_metadata["hand_model"])
    return model
