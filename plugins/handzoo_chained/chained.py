"""The seed report's "Pipelining ResNets" (§2.2): encoders in sequence, trained end to end on one loss.

The report chains 2×ResNet50 + ResNet34, "a dimensionality reduction
architecture of three ResNets to reduce after each layer the dimensions of the
embedding", the last one giving the 21×3 joints. It does not say how an
embedding enters the next ResNet. handzoo's reading:

* stage 1 is a backbone on the image (B,3,S,S);
* after stage k < n, its features are pooled to an embedding (B,C_k), mapped by
  a linear layer to 3·s_k² values and reshaped to an image-like tensor
  (B,3,s_k,s_k), batch-normalised, which stage k+1 takes as its input;
* the sides shrink, s_1 > s_2 > ... (default S/2, S/4, ...), so the embedding
  handed on does shrink: 3·64² = 12288, then 3·32² = 3072 values at S = 128;
* the last stage's features go to a head (``direct`` by default: 63 joint
  coordinates, the report's output; any registered head works).

Why the pooled embedding and not the last feature map itself (a 1×1 conv to 3
channels): a ResNet's last map has stride 32, so at 128 px it is 4×4, i.e. 48
numbers after the projection, fewer than the 63 outputs; the pooled embedding
keeps all C_k channels and the linear map learns the layout the next stage sees.

The loss is the run's joint loss (``optim.loss``; L1 in the seed's recipe) plus
any terms of the head, backpropagated through every stage, as in the report.
Gradients reach every stage; nothing is frozen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from handzoo.plugin_api import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    HandOutput,
    head_extra_loss_weights,
    head_extra_losses,
    part_metadata,
)


def default_embed_sizes(image_size: int, num_stages: int) -> list[int]:
    """Sides of the image-like embeddings between stages: S/2, S/4, ... (at least 8 px)."""
    return [max(8, image_size // 2 ** (k + 1)) for k in range(num_stages - 1)]


class StageBridge(nn.Module):
    """features (B,C,h,w) -> pooled (B,C) -> linear -> (B,3,s,s), batch-normalised."""

    def __init__(self, in_features: int, side: int) -> None:
        super().__init__()
        self.side = side
        self.project = nn.Linear(in_features, 3 * side * side)
        self.norm = nn.BatchNorm2d(3)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        embedding = self.project(features.mean(dim=(2, 3)))
        return self.norm(embedding.view(-1, 3, self.side, self.side))


class ChainedEncoder(nn.Module):
    """Backbones in sequence, each handing a smaller image-like embedding to the next, then a head.

    Args:
        stages: the backbones, already built (each maps (B,3,s,s) to (B,C,h,w) and
            has ``num_features``).
        head: maps the last stage's features to :class:`handzoo.HandOutput`.
        embed_sizes: side s_k of the embedding after each stage but the last
            (``len(stages) - 1`` values).
        image_size: S, the input size the model is configured for.

    Attributes:
        preprocessing: ``mean``/``std`` of the first stage and ``input_size`` (3,S,S).
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        head: nn.Module,
        embed_sizes: Sequence[int],
        image_size: int = 128,
    ) -> None:
        super().__init__()
        if len(embed_sizes) != len(stages) - 1:
            raise ValueError(
                f"{len(stages)} stages need {len(stages) - 1} embed_sizes, got {list(embed_sizes)}"
            )
        self.stages = nn.ModuleList(stages)
        self.bridges = nn.ModuleList(
            StageBridge(s.num_features, side) for s, side in zip(stages[:-1], embed_sizes, strict=True)
        )
        self.head = head
        prep = dict(getattr(stages[0], "preprocessing", {}))
        self.preprocessing = {
            "mean": tuple(prep.get("mean", IMAGENET_MEAN)),
            "std": tuple(prep.get("std", IMAGENET_STD)),
            "input_size": (3, image_size, image_size),
        }
        self.handzoo_metadata = {"stages": [getattr(s, "arch", type(s).__name__) for s in stages]}
        self.handzoo_metadata.update(part_metadata(head))

    def forward(self, images: torch.Tensor) -> HandOutput:
        """images (B,3,H,W) normalised -> HandOutput with joints3d (B,21,3) metres, root-relative."""
        x = images
        for stage, bridge in zip(self.stages[:-1], self.bridges, strict=True):
            x = bridge(stage(x))
        return self.head(self.stages[-1](x))

    def extra_loss_weights(self) -> dict[str, float]:
        """The head's own loss terms; the run's joint loss trains every stage through it."""
        return head_extra_loss_weights(self.head)

    def extra_losses(self, output: HandOutput, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        return head_extra_losses(self.head, output, batch)


def build_chained(
    stages: Sequence[str] = ("resnet50", "resnet50", "resnet34"),
    embed_sizes: Sequence[int] | None = None,
    image_size: int = 128,
    head: str = "direct",
    head_cfg: dict[str, Any] | None = None,
    backbone_pretrained: bool = False,
) -> ChainedEncoder:
    """Build a :class:`ChainedEncoder` from registered backbone and head names."""
    from handzoo.plugin_api import ConfigError, create_backbone, create_head

    stages = list(stages)
    if len(stages) < 2:
        raise ConfigError(f"a chained encoder needs at least 2 stages, got {stages}")
    sizes = list(embed_sizes) if embed_sizes is not None else default_embed_sizes(image_size, len(stages))
    if len(sizes) != len(stages) - 1 or any(int(s) < 1 for s in sizes):
        raise ConfigError(
            f"embed_sizes {sizes} must hold {len(stages) - 1} positive sides, one per stage but the last"
        )
    # Only the first stage sees photographs, so only it may start from ImageNet weights.
    built = [create_backbone(stages[0], pretrained=backbone_pretrained)]
    built += [create_backbone(name) for name in stages[1:]]
    hd = create_head(head, built[-1].num_features, **(head_cfg or {}))
    return ChainedEncoder(built, hd, [int(s) for s in sizes], image_size=image_size)
