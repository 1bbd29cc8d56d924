"""The generic backbone + head composition that most registered models use.

Contract of the parts (see :mod:`handzoo.hookspecs`):

* a backbone maps normalised images (B,3,H,W) to features (B,C,h,w) and has
  ``num_features`` (C) and ``preprocessing`` (``mean``, ``std``: 3-tuples on
  the 0..1 scale);
* a head is built as ``factory(in_features, **cfg)`` and maps (B,C,h,w)
  features to :class:`handzoo.HandOutput`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from handzoo.builder import create_backbone, create_head
from handzoo.output import HandOutput

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class HandModel(nn.Module):
    """``head(backbone(images))``.

    Attributes:
        preprocessing: dict with ``mean`` and ``std`` (RGB, 0..1 scale) and
            ``input_size`` (3,S,S) the model was configured for.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, image_size: int = 128) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        prep = dict(getattr(backbone, "preprocessing", {}))
        self.preprocessing = {
            "mean": tuple(prep.get("mean", IMAGENET_MEAN)),
            "std": tuple(prep.get("std", IMAGENET_STD)),
            "input_size": (3, image_size, image_size),
        }
        # A head with its own loss (e.g. the MANO head's priors) trains with it.
        if hasattr(head, "compute_loss"):
            self.compute_loss = head.compute_loss

    def forward(self, images: torch.Tensor) -> HandOutput:
        """images (B,3,H,W) normalised -> HandOutput with joints3d (B,21,3) metres.

        Under autocast only the backbone runs in reduced precision: the head
        gets float32 features and runs in float32, because bf16 keeps about
        three significant digits (~0.4 mm on a 10 cm coordinate) and the MANO
        layer's blend shapes need more.
        """
        features = self.backbone(images)
        with torch.autocast(device_type=features.device.type, enabled=False):
            return self.head(features.float())


def build_hand_model(
    backbone: str,
    head: str = "direct",
    image_size: int = 128,
    backbone_cfg: dict[str, Any] | None = None,
    head_cfg: dict[str, Any] | None = None,
) -> HandModel:
    """Compose registered parts: ``backbone`` and ``head`` are registry names."""
    bb = create_backbone(backbone, **(backbone_cfg or {}))
    hd = create_head(head, bb.num_features, **(head_cfg or {}))
    return HandModel(bb, hd, image_size=image_size)
