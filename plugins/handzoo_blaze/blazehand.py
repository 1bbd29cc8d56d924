"""BlazeHand: MediaPipe's hand landmark network as a PyTorch module (``blazehand``).

An inverted-residual trunk (MobileNetV2 / EfficientNet-lite blocks, ReLU6,
batch norm folded into the convolutions) and four fully connected heads on
its globally pooled features, read from MediaPipe's
``hand_landmark_{full,lite}.tflite`` by :mod:`handzoo_blaze.convert`.

Input: (B,3,224,224) RGB in [0, 1] (no mean/std), the hand upright in the
crop (wrist below, middle finger up) as MediaPipe's palm detector rotates it.

Outputs, in the TFLite file's order (:meth:`BlazeHand.forward`):

* ``landmarks`` (B,63): 21 × (x, y, z); x, y pixels of the 224-px input,
  z a depth relative to the wrist in roughly the same pixel scale;
* ``hand_flag`` (B,1): probability that a hand is in the crop;
* ``handedness`` (B,1): probability of MediaPipe's label "Right", which
  MediaPipe assigns as if the photo were mirrored (a selfie), so on an
  ordinary photo it is the probability of a **left** hand;
* ``world_landmarks`` (B,63): 21 × (x, y, z) metres around the hand's centre,
  axes as the image's (x right, y down, z away from the camera).

The landmarks are in handzoo's canonical order (wrist; thumb, index, middle,
ring, little, each base to tip): MediaPipe's ``HandLandmark`` names (WRIST,
THUMB_CMC, THUMB_MCP, THUMB_IP, THUMB_TIP, INDEX_FINGER_MCP, ...) map one to
one onto FreiHAND's, checked by name in ``tests/test_blaze.py``.

Stages and their strides (224-px input): ``stem`` 2 (112 px), ``stage1`` 4,
``stage2`` 8 (28 px), ``stage3`` 16 (14 px), ``stage4`` 32 (7 px, ending with
the expansion and depthwise layer the heads pool).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from handzoo_blaze.layers import TfConv2d, TfLinear, depthwise, pointwise

INPUT_SIZE = 224
FEATURE_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Block:
    """One inverted residual: 1x1 expansion to ``expand`` (none when None), k×k depthwise, 1x1 projection."""

    out: int
    expand: int | None
    kernel: int
    stride: int = 1


@dataclass(frozen=True)
class BlazeHandConfig:
    """A BlazeHand variant: stem width, the four stages' blocks and the last expansion."""

    stem: int
    stem_out: int
    stages: tuple[tuple[Block, ...], ...]
    last_expand: int
    # A stride-2 block whose input and output widths agree adds a 2x2 max-pooled shortcut (lite).
    pooled_shortcut: bool


def _repeat(n: int, block: Block) -> tuple[Block, ...]:
    return (block,) * n


# Read off the operator lists of hand_landmark_full.tflite and hand_landmark_lite.tflite.
CONFIGS = {
    "full": BlazeHandConfig(
        stem=24,
        stem_out=16,
        stages=(
            (Block(24, 64, 3, 2), Block(24, 144, 3)),
            (Block(40, 144, 5, 2), Block(40, 240, 5)),
            (
                Block(80, 240, 3, 2),
                *_repeat(2, Block(80, 480, 3)),
                Block(112, 480, 5),
                *_repeat(2, Block(112, 672, 5)),
            ),
            (Block(192, 672, 5, 2), *_repeat(3, Block(192, 1152, 5))),
        ),
        last_expand=1152,
        pooled_shortcut=False,
    ),
    "lite": BlazeHandConfig(
        stem=24,
        stem_out=16,
        stages=(
            (Block(16, 64, 3, 2), Block(16, 96, 3)),
            (Block(24, 96, 5, 2), Block(24, 144, 5)),
            (
                Block(48, 144, 3, 2),
                *_repeat(2, Block(48, 288, 3)),
                Block(64, 288, 5),
                *_repeat(2, Block(64, 384, 5)),
            ),
            (Block(112, 384, 5, 2), *_repeat(3, Block(112, 672, 5))),
        ),
        last_expand=672,
        pooled_shortcut=True,
    ),
}


class InvertedResidual(nn.Module):
    """expand (1x1, ReLU6) -> depthwise (k×k, stride, ReLU6) -> project (1x1, linear) [+ shortcut]."""

    def __init__(self, in_channels: int, block: Block, pooled_shortcut: bool = False) -> None:
        super().__init__()
        hidden = block.expand or in_channels
        self.expand = pointwise(in_channels, hidden, "relu6") if block.expand else None
        self.depthwise = depthwise(hidden, block.kernel, block.stride, "relu6")
        self.project = pointwise(hidden, block.out)
        same_width = in_channels == block.out
        self.residual = same_width and block.stride == 1
        self.pooled = same_width and block.stride == 2 and pooled_shortcut

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        if self.expand is not None:
            yield "expand", self.expand
        yield "depthwise", self.depthwise
        yield "project", self.project

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.expand(x) if self.expand is not None else x
        y = self.project(self.depthwise(y))
        if self.residual:
            return y + x
        if self.pooled:  # TF "VALID" 2x2 max pool, the shortcut of a stride-2 block
            return y + F.max_pool2d(x, 2, 2)
        return y


class Stem(nn.Module):
    """3x3 stride-2 convolution (ReLU6), then a depthwise-separable block without expansion."""

    def __init__(self, width: int, out: int) -> None:
        super().__init__()
        self.conv = TfConv2d(3, width, 3, stride=2, activation="relu6")
        self.block = InvertedResidual(width, Block(out, None, 3))

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield "conv", self.conv
        for name, layer in self.block.tflite_layers():
            yield f"block.{name}", layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(self.conv(x))


class LastLayer(nn.Module):
    """The trunk's end: 1x1 expansion (ReLU6) and a 3x3 depthwise (ReLU6), no projection."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.expand = pointwise(in_channels, width, "relu6")
        self.depthwise = depthwise(width, 3, 1, "relu6")

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield "expand", self.expand
        yield "depthwise", self.depthwise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.depthwise(self.expand(x))


class BlazeHandTrunk(nn.Module):
    """Images (B,3,H,W) in [0, 1] -> the feature map of stride ``feature_stride`` (B,C,H/s,W/s).

    ``feature_stride`` 32 (default) is the map the landmark heads pool
    (1152 channels full, 672 lite); 16 and 8 are the ends of ``stage3`` and
    ``stage2`` (112/64 and 40/24 channels), for heads that want finer maps.
    Layers past the chosen map are not built.

    Attributes:
        num_features: C of the returned map.
        preprocessing: mean 0, std 1 (the network reads RGB in [0, 1]).
    """

    def __init__(self, variant: str = "full", feature_stride: int = 32) -> None:
        super().__init__()
        if variant not in CONFIGS:
            raise ValueError(f"blazehand variant must be one of {sorted(CONFIGS)}, got {variant!r}")
        if feature_stride not in FEATURE_STRIDES:
            raise ValueError(
                f"blazehand feature_stride must be one of {FEATURE_STRIDES}, got {feature_stride}"
            )
        cfg = CONFIGS[variant]
        self.variant, self.feature_stride = variant, feature_stride
        self.stem = Stem(cfg.stem, cfg.stem_out)
        width = cfg.stem_out
        n_stages = {8: 2, 16: 3, 32: 4}[feature_stride]
        for i, blocks in enumerate(cfg.stages[:n_stages], start=1):
            layers = []
            for block in blocks:
                layers.append(InvertedResidual(width, block, cfg.pooled_shortcut))
                width = block.out
            self.add_module(f"stage{i}", nn.Sequential(*layers))
        self.stages = [f"stage{i}" for i in range(1, n_stages + 1)]
        self.last = LastLayer(width, cfg.last_expand) if feature_stride == 32 else None
        self.num_features = cfg.last_expand if self.last is not None else width
        self.preprocessing = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0)}
        self.handzoo_metadata = {"blazehand": variant, "feature_stride": feature_stride}

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        for name, layer in self.stem.tflite_layers():
            yield f"stem.{name}", layer
        for stage in self.stages:
            for i, block in enumerate(getattr(self, stage)):
                for name, layer in block.tflite_layers():
                    yield f"{stage}.{i}.{name}", layer
        if self.last is not None:
            for name, layer in self.last.tflite_layers():
                yield f"last.{name}", layer

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.stem(images)
        for stage in self.stages:
            x = getattr(self, stage)(x)
        return self.last(x) if self.last is not None else x


class LandmarkHeads(nn.Module):
    """Global mean of the stride-32 map, then the four fully connected outputs (see the module doc)."""

    OUTPUTS = ("handedness", "hand_flag", "landmarks", "world_landmarks")  # the file's order of these layers

    def __init__(self, in_features: int) -> None:
        super().__init__()
        self.handedness = TfLinear(in_features, 1)
        self.hand_flag = TfLinear(in_features, 1)
        self.landmarks = TfLinear(in_features, 63)
        self.world_landmarks = TfLinear(in_features, 63)
        # The four layers have two shapes between them; the file's tensor names tell them apart.
        for name in self.OUTPUTS:
            getattr(self, name).tflite_name = "conv_" + name.replace("hand_flag", "handflag")

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        for name in self.OUTPUTS:
            yield name, getattr(self, name)

    def forward(
        self, features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(landmarks (B,63), hand_flag (B,1) probability, handedness (B,1) probability, world (B,63))."""
        pooled = features.mean(dim=(2, 3))
        return (
            self.landmarks(pooled),
            torch.sigmoid(self.hand_flag(pooled)),
            torch.sigmoid(self.handedness(pooled)),
            self.world_landmarks(pooled),
        )


class BlazeHand(nn.Module):
    """The whole landmark network: (B,3,224,224) in [0, 1] -> the four outputs of the TFLite file.

    Its state dict has the same keys (``backbone.*``, ``head.*``) as the
    handzoo model ``mediapipe-hand-{full,lite}``, which composes the same parts.
    """

    tflite_ops = frozenset(
        {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "LOGISTIC"}
    )
    input_size = INPUT_SIZE

    def __init__(self, variant: str = "full") -> None:
        super().__init__()
        self.variant = variant
        self.backbone = BlazeHandTrunk(variant)
        self.head = LandmarkHeads(self.backbone.num_features)

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        for name, layer in self.backbone.tflite_layers():
            yield f"backbone.{name}", layer
        for name, layer in self.head.tflite_layers():
            yield f"head.{name}", layer

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(images))
