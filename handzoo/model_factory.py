"""The standard ``backbone + head`` model factory that plugins register (no torch at import).

Registering a factory must cost nothing (``handzoo list`` answers in a fraction
of a second), and its signature is the model's option list (the registry reads
defaults from it and refuses unknown options), so it is written once here and
imports the composition (:func:`handzoo.model.build_hand_model`) only when a
model is built.
"""

from __future__ import annotations

from typing import Any


def hand_model_factory(default_backbone: str | None, default_head: str = "direct"):
    """A registry factory for ``backbone + head`` models, with every model's standard options.

    The returned ``build(backbone, head, image_size, backbone_pretrained,
    backbone_weights, head_cfg, feature_stride, arch)`` composes registered
    parts by name; ``arch`` binds a ``timm/{arch}`` template. Plugins register
    it once per default pair (``resnet101`` + ``direct``, ``resnet50`` +
    ``heatmap25d``, ...), so the options are written in one place.
    """

    def build(
        backbone: str | None = default_backbone,
        head: str = default_head,
        image_size: int = 128,
        backbone_pretrained: bool = False,
        backbone_weights: str | None = None,
        head_cfg: dict[str, Any] | None = None,
        feature_stride: int | None = None,
        arch: str | None = None,
    ):
        """Backbone + head, composed by handzoo.model.build_hand_model."""
        backbone_cfg: dict[str, Any] = {"pretrained": backbone_pretrained, "weights": backbone_weights}
        if feature_stride is not None:
            backbone_cfg["feature_stride"] = feature_stride
        from handzoo.model import build_hand_model

        name = f"timm/{arch}" if arch is not None else backbone
        if name is None:
            from handzoo.errors import ConfigError

            raise ConfigError("this model needs a backbone: pass backbone=NAME (`handzoo list backbones`)")
        return build_hand_model(name, head, image_size, backbone_cfg=backbone_cfg, head_cfg=head_cfg)

    return build
