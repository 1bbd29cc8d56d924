"""``TimmBackbone``: a timm model without its classifier, as a (B,C,h,w) feature extractor."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from handzoo.plugin_api import IMAGENET_MEAN, IMAGENET_STD, UnknownNameError, UsageError


def _create_timm(arch: str, pretrained: bool, weights: str | None, **kwargs) -> nn.Module:
    import timm

    if not timm.is_model(arch):
        close = timm.list_models(f"*{arch.split('.')[0][:6]}*")[:5]
        raise UnknownNameError("timm architecture", arch, close, len(timm.list_models()))
    kwargs = kwargs or {"num_classes": 0}
    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise UsageError(
                f"backbone weights file {path} does not exist; pass the path of a local "
                f"{arch} ImageNet checkpoint (.pth or .safetensors), or drop backbone_weights"
            )
        # timm reads a local file through pretrained_cfg's `file`: no network involved.
        return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, **kwargs)
    if pretrained:
        try:
            return timm.create_model(arch, pretrained=True, **kwargs)
        except Exception as exc:  # network or hub errors surface as many types
            raise UsageError(
                f"could not download ImageNet weights for {arch} ({type(exc).__name__}: {exc}); "
                "offline, download the checkpoint elsewhere and pass backbone_weights=PATH"
            ) from exc
    return timm.create_model(arch, pretrained=False, **kwargs)


class TimmBackbone(nn.Module):
    """Images (B,3,H,W), normalised with ``preprocessing`` -> features (B,C,h,w).

    CNNs return their last feature map (stride 32), or with ``feature_stride``
    (8, 16, ...) the map of the stage with that stride, through timm's feature
    extraction: heads that need finer maps work on any timm CNN. Token models (ViTs) return their
    pooled embedding as (B,C,1,1), pooled the way the architecture's own head
    pools (class token or mean), so every head can treat the output alike.

    Attributes:
        num_features: C.
        preprocessing: ``mean`` and ``std`` (RGB, 0..1 scale) the trunk expects.
    """

    def __init__(
        self,
        arch: str,
        pretrained: bool = False,
        weights: str | None = None,
        feature_stride: int | None = None,
    ) -> None:
        super().__init__()
        self.arch = arch
        self.feature_stride = feature_stride
        if feature_stride is None:
            self.trunk = _create_timm(arch, pretrained, weights)
            self.num_features = int(self.trunk.num_features)
        else:
            # timm's feature extraction: the map of the stage whose reduction is feature_stride.
            probe = _create_timm(arch, False, None, features_only=True)
            strides = list(probe.feature_info.reduction())
            if feature_stride not in strides:
                raise UsageError(
                    f"backbone {arch}: feature_stride={feature_stride} is not one of its stages' "
                    f"strides ({', '.join(map(str, strides))})"
                )
            index = strides.index(feature_stride)
            self.trunk = _create_timm(arch, pretrained, weights, features_only=True, out_indices=(index,))
            self.num_features = int(self.trunk.feature_info.channels()[0])
        self.handzoo_metadata = {"feature_stride": feature_stride} if feature_stride else {}
        cfg = getattr(self.trunk, "pretrained_cfg", {}) or {}
        self.preprocessing = {
            "mean": tuple(cfg.get("mean", IMAGENET_MEAN)),
            "std": tuple(cfg.get("std", IMAGENET_STD)),
        }

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.feature_stride is not None:
            return self.trunk(images)[0]
        feats = self.trunk.forward_features(images)
        if feats.ndim == 4:
            return feats
        pooled = self.trunk.forward_head(feats, pre_logits=True)
        return pooled[:, :, None, None]
