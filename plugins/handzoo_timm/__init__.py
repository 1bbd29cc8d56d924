"""First-party plugin: ResNet and any timm architecture as backbones, and the seed's models.

Registers
* backbones ``resnet18`` … ``resnet152`` and the template ``timm/{arch}``;
* models ``resnet18`` … ``resnet152`` (ResNet + direct 63-D regression head, the
  seed report's model) and ``timm/{arch}`` (the default head on any timm
  architecture).

timm is imported only when a backbone is built, so listing stays fast.
"""

from __future__ import annotations

from handzoo.plugin_api import hand_model_factory, hookimpl

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")

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


@hookimpl
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


@hookimpl
def register_models(register):
    for arch in RESNETS:
        register(
            arch,
            hand_model_factory(arch),
            description=f"{arch} + direct 63-D joint regression"
            + (" (the seed report's model)" if arch == "resnet101" else ""),
            family="resnet",
        )
    register(
        "timm/{arch}",
        hand_model_factory(None),
        description="any timm architecture + the default (direct) head",
        family="timm",
    )
