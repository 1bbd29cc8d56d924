"""First-party plugin: the heads, and the models that pair them with ResNets.

Heads
* ``direct``: global pool -> linear -> 21x3 (the seed report's head); ``target="camera"``
  regresses camera-frame coordinates, ``target="2.5d"`` pixels + relative depth lifted to 3D;
* ``heatmap25d``: per-joint 2D heatmaps + soft-argmax, relative depth from latent depth maps;
* ``integral``: integral regression of x, y and depth (Sun et al., ECCV 2018).

Models: ``resnet50-2.5d``, ``resnet101-2.5d`` (``heatmap25d``) and
``resnet50-integral``; every head also works on any backbone
(``create_model("timm/convnext_tiny", head="integral")``). See
:mod:`handzoo_heads.image_heads` for the lift to 3D and the loss terms.
"""

from __future__ import annotations

from handzoo.plugin_api import hand_model_factory, hookimpl

TARGETS = ("camera", "2.5d")


def _direct(
    in_features: int,
    num_joints: int = 21,
    output_scale: float = 0.1,
    dropout: float = 0.0,
    target: str = "camera",
    loss_weights: dict[str, float] | None = None,
):
    """Global average pool, linear to 63, as camera-frame joints or as a 2.5D target."""
    from handzoo.plugin_api import ConfigError

    if target not in TARGETS:
        raise ConfigError(f"head 'direct': target={target!r} is unknown; use one of {', '.join(TARGETS)}")
    if target == "2.5d":
        from handzoo_heads.image_heads import Direct25DHead

        if num_joints != 21:
            raise ConfigError(
                "head 'direct' with target='2.5d' predicts the 21 canonical joints (num_joints=21)"
            )
        return Direct25DHead(in_features, dropout=dropout, loss_weights=loss_weights)
    if loss_weights:
        raise ConfigError("head 'direct' with target='camera' has no loss terms of its own (loss_weights)")
    from handzoo_heads.direct import DirectRegressionHead

    return DirectRegressionHead(
        in_features, num_joints=num_joints, output_scale=output_scale, dropout=dropout
    )


def _heatmap25d(
    in_features: int,
    upsample: int = 2,
    neck_channels: int = 256,
    loss_weights: dict[str, float] | None = None,
):
    """2D heatmaps + soft-argmax, relative depth from depth maps; lifted to 3D with the crop's K."""
    from handzoo_heads.image_heads import Heatmap25DHead

    return Heatmap25DHead(
        in_features, upsample=upsample, neck_channels=neck_channels, loss_weights=loss_weights
    )


def _integral(
    in_features: int,
    depth_bins: int = 32,
    depth_range: float = 5.0,
    upsample: int = 2,
    neck_channels: int = 256,
    loss_weights: dict[str, float] | None = None,
):
    """Integral regression: a 3D heatmap per joint; x, y, depth as its expectation."""
    from handzoo_heads.image_heads import IntegralHead

    return IntegralHead(
        in_features,
        depth_bins=depth_bins,
        depth_range=depth_range,
        upsample=upsample,
        neck_channels=neck_channels,
        loss_weights=loss_weights,
    )


@hookimpl
def register_heads(register):
    register("direct", _direct, outputs=["joints3d", "joints2d (target 2.5d)"])
    register("heatmap25d", _heatmap25d, outputs=["joints3d", "joints2d"])
    register("integral", _integral, outputs=["joints3d", "joints2d"])


@hookimpl
def register_models(register):
    for backbone, head, name, what in (
        ("resnet50", "heatmap25d", "resnet50-2.5d", "2.5D heatmaps (soft-argmax + depth maps)"),
        ("resnet101", "heatmap25d", "resnet101-2.5d", "2.5D heatmaps (soft-argmax + depth maps)"),
        ("resnet50", "integral", "resnet50-integral", "integral regression of x, y, depth"),
    ):
        register(
            name, hand_model_factory(backbone, head), description=f"{backbone} + {what}", family="image-space"
        )
