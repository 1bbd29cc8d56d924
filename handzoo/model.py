"""The generic backbone + head composition that most registered models use.

Contract of the parts (:mod:`handzoo.interfaces` has them as Protocols):

* a backbone maps normalised images (B,3,H,W) to features (B,C,h,w) and has
  ``num_features`` (C) and ``preprocessing`` (``mean``, ``std``: 3-tuples on
  the 0..1 scale);
* a head is built as ``factory(in_features, **cfg)`` and maps (B,C,h,w)
  float32 features to :class:`handzoo.HandOutput`; it may add loss terms
  (:class:`handzoo.losses.ExtraLosses`) and describe what it was built with
  (``handzoo_metadata``), and the model forwards both.
"""

from __future__ import annotations

import inspect
from typing import Any

import torch
from torch import nn

from handzoo.builder import create_backbone, create_head
from handzoo.conventions import IMAGENET_MEAN, IMAGENET_STD
from handzoo.interfaces import ExtraLosses, part_metadata, unwrap_model
from handzoo.output import HandOutput


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
        self.handzoo_metadata = {**part_metadata(backbone), **part_metadata(head)}
        self._head_takes_camera = takes_camera(head)

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None) -> HandOutput:
        """images (B,3,H,W) normalised -> HandOutput with joints3d (B,21,3) metres.

        Args:
            K: optional (B,3,3) intrinsics of the input crop (pixels of ``images``);
                heads that predict in image space lift to 3D with it (the default
                camera without it), the others ignore it.

        Under autocast only the backbone runs in reduced precision: the head
        gets float32 features and runs in float32, because bf16 keeps about
        three significant digits (~0.4 mm on a 10 cm coordinate) and the MANO
        layer's blend shapes need more.
        """
        return self.decode(self.backbone(images), tuple(images.shape[-2:]), K)

    def decode(
        self, features: torch.Tensor, image_hw: tuple[int, int], K: torch.Tensor | None = None
    ) -> HandOutput:
        """The head on the backbone's ``features`` of images of ``image_hw`` pixels, in float32
        (the second half of :meth:`forward`; a faster backbone path can feed it)."""
        with torch.autocast(device_type=features.device.type, enabled=False):
            if self._head_takes_camera:
                return self.head(features.float(), K=K, image_hw=image_hw)
            return self.head(features.float())

    def extra_loss_weights(self) -> dict[str, float]:
        """The head's own loss terms and weights (none for a head without them)."""
        return head_extra_loss_weights(self.head)

    def extra_losses(self, output: HandOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The head's own loss terms, unweighted (see :mod:`handzoo.losses`)."""
        return head_extra_losses(self.head, output, batch)


def takes_camera(module: Any) -> bool:
    """Whether a model's or head's forward takes the input's intrinsics ``K`` (image-space heads do)."""
    try:
        return "K" in inspect.signature(unwrap_model(module).forward).parameters
    except (TypeError, ValueError):
        return False


def forward_with_camera(model: Any, images: torch.Tensor, K: torch.Tensor | None) -> HandOutput:
    """``model(images, K=K)`` when the model takes a camera and K is known, else ``model(images)``."""
    if K is not None and takes_camera(model):
        return model(images, K=K)
    return model(images)


def head_extra_loss_weights(head: Any) -> dict[str, float]:
    """A head's own loss terms and weights ({} for a head without them)."""
    return head.extra_loss_weights() if isinstance(head, ExtraLosses) else {}


def head_extra_losses(head: Any, output: HandOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """A head's own loss terms, unweighted ({} for a head without them)."""
    return head.extra_losses(output, batch) if isinstance(head, ExtraLosses) else {}


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
