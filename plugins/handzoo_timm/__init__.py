"""First-party plugin: ResNet and any timm architecture as backbones, and the seed's models.

Registers
* backbones ``resnet18`` … ``resnet152`` and the template ``timm/{arch}``;
* models ``resnet18`` … ``resnet152`` (ResNet + direct 63-D regression head, the
  seed report's model) and ``timm/{arch}`` (the default head on any timm
  architecture).

timm is imported only when a backbone is built, so listing stays fast.
"""

from __future__ import annotations

from typing import Any

import handzoo

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

def _model_factory(default_backbone: str | None):
    def build(
        backbone: str | None = default_backbone,
        head: str = "direct",
        image_size: int = 128,
        backbone_pretrained: bool = False,
        backbone_weights: str | None = None,
        head_cfg: dict[str, Any] | None = None,
        feature_stride: int | None = None,
        arch: str | None = None,
    ):
        """Backbone + head, composed by handzoo.model.build_hand_model."""
        from handzoo.model import build_hand_model

        name = f"timm/{arch}" if arch is not None else backbone
        return build_hand_model(
            backbone=name,
            head=head,
            image_size=image_size,
            backbone_cfg={
                "pretrained": backbone_pretrained,
                "weights": backbone_weights,
                "feature_stride": feature_stride,
            },
            head_cfg=head_cfg,
        )

    return build


def _backbone_factory(default_arch: str | None):
    def build(
        arch: str | None = default_arch,
        pretrained: bool = False,
        weights: str | None = None,
        feature_stride: int | None = None,
    ):
        """A timm feature extractor: images (B,3,H,W) -> features (B,C,h,w)."""
        from handzoo_timm.backbone import TimmBackbone

        return TimmBackbone(arch, pretrained=pretrained, weights=weights, feature_stride=feature_stride)

    return build


@handzoo.hookimpl
def register_backbones(register):
    for arch in RESNETS:
        register(
            arch,
            _backbone_factory(arch),
            description=f"timm {arch} trunk without its classifier",
            family="resnet",
        )
    register(
        "timm/{arch}",
        _backbone_factory(None),
        description="any timm architecture as a feature extractor",
        family="timm",
    )


@handzoo.hookimpl
def register_models(register):
    for arch in RESNETS:
        register(
            arch,
            _model_factory(arch),
            description=f"{arch} + direct 63-D joint regression"
            + (" (the seed report's model)" if arch == "resnet101" else ""),
            family="resnet",
        )
    register(
        "timm/{arch}",
        _model_factory(None),
        description="any timm architecture + the default (direct) head",
        family="timm",
    )
