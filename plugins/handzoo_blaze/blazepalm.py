"""BlazePalm: MediaPipe's palm detector network as a PyTorch module (``blazepalm`` detector).

A single-shot detector read from MediaPipe's ``palm_detection_{full,lite}.tflite``
by :mod:`handzoo_blaze.convert`: a BlazeNet backbone down to 6 px, a small
feature pyramid back up to 12 and 24 px, and at each of those two maps a
1x1 classifier (one logit per anchor) and a 1x1 regressor (18 numbers per
anchor). :mod:`handzoo_blaze.palm` turns the outputs into palms and hand boxes.

Input: (B,3,192,192) RGB in [0, 1] (no mean/std), the whole image letterboxed
to a square (:func:`handzoo_blaze.palm.letterbox`), as MediaPipe's
``palm_detection_cpu`` graph feeds it (``output_tensor_float_range`` 0..1).

Outputs (:meth:`BlazePalm.forward`), the file's ``Identity`` and ``Identity_1``:

* ``regressors`` (B,2016,18): per anchor the box (x centre, y centre, width,
  height) and 7 keypoints (x, y), in pixels of the 192-px input relative to
  the anchor's centre (see :func:`handzoo_blaze.palm.decode_boxes`);
* ``scores`` (B,2016,1): raw logits (MediaPipe clips them to ±100 and applies a sigmoid).

The 2016 anchors are those of the 24x24 map (2 per cell, 1152) followed by
those of the 12x12 map (6 per cell, 864), each map's in row-major order with
a cell's anchors innermost, the order of TFLite's NHWC reshape.

Stages (192-px input): ``stem`` 5x5 stride-2 convolution (96 px, 32 channels);
``stage1`` (96 px, 32) to ``stage5`` (6 px, 256), every stage after the first
opening with a stride-2 block; then ``up12`` / ``head12`` (12 px, 256) and
``up24`` / ``head24`` (24 px, 128): bilinear upsampling, a 1x1 convolution
with PReLU added to the backbone's map of that size, and two blocks. The full
variant has four blocks per backbone stage (after any stride-2 block), the lite one three.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from handzoo_blaze.layers import TfConv2d, TfPReLU, depthwise, pointwise

INPUT_SIZE = 192
NUM_ANCHORS = 2016
NUM_COORDS = 18
# Channels of the backbone stages stage1..stage5 (96, 48, 24, 12 and 6 px).
STAGE_WIDTHS = (32, 64, 128, 256, 256)
# Blocks per stage of each variant, read off the operator lists of the two files.
BLOCKS = {"full": 4, "lite": 3}
HEAD_BLOCKS = 2
ANCHORS_PER_CELL = {24: 2, 12: 6}


class BlazeBlock(nn.Module):
    """depthwise 5x5 (stride 1 or 2) -> pointwise 1x1 -> + shortcut -> PReLU.

    At stride 2 the shortcut is the input max-pooled 2x2 and, when the block
    widens, zero-padded in channels (TFLite's ``MAX_POOL_2D`` and ``PAD`` on
    the channel axis); at stride 1 it is the input itself.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        if stride == 1 and in_channels != out_channels:
            raise ValueError("a stride-1 BlazeBlock keeps its width")
        self.stride = stride
        self.extra_channels = out_channels - in_channels
        self.depthwise = depthwise(in_channels, 5, stride)
        self.pointwise = pointwise(in_channels, out_channels)
        self.act = TfPReLU(out_channels)

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield "depthwise", self.depthwise
        yield "pointwise", self.pointwise
        yield "act", self.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pointwise(self.depthwise(x))
        if self.stride == 2:
            x = F.max_pool2d(x, 2, 2)  # TF "VALID" 2x2 pooling
            if self.extra_channels:
                x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(x + y)


class Stem(nn.Module):
    """5x5 stride-2 convolution (TF "SAME") and PReLU: (B,3,192,192) -> (B,32,96,96)."""

    def __init__(self, out_channels: int) -> None:
        super().__init__()
        self.conv = TfConv2d(3, out_channels, 5, stride=2)
        self.act = TfPReLU(out_channels)

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield "conv", self.conv
        yield "act", self.act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv(x))


class Upsample(nn.Module):
    """The pyramid's top-down step: 2x bilinear upsampling, 1x1 convolution, PReLU, + the lateral map.

    TFLite's ``RESIZE_BILINEAR`` with ``half_pixel_centers`` (no corner
    alignment) is PyTorch's bilinear interpolation with ``align_corners=False``.
    No activation follows the sum.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = pointwise(in_channels, out_channels)
        self.act = TfPReLU(out_channels)

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield "conv", self.conv
        yield "act", self.act

    def forward(self, x: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=lateral.shape[-2:], mode="bilinear", align_corners=False)
        return lateral + self.act(self.conv(x))


class DetectionHead(nn.Module):
    """Per-anchor outputs of one map: (B,C,S,S) -> logits (B,S·S·A,1), regressors (B,S·S·A,18).

    The 1x1 convolutions' channels are (anchor, value) pairs; the map is put
    in NHWC order before flattening so the anchors come out as TFLite orders them.
    """

    def __init__(self, in_channels: int, anchors: int) -> None:
        super().__init__()
        self.classifier = pointwise(in_channels, anchors)
        self.regressor = pointwise(in_channels, anchors * NUM_COORDS)

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        yield "classifier", self.classifier
        yield "regressor", self.regressor

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = x.shape[0]
        scores = self.classifier(x).permute(0, 2, 3, 1).reshape(b, -1, 1)
        boxes = self.regressor(x).permute(0, 2, 3, 1).reshape(b, -1, NUM_COORDS)
        return scores, boxes


class BlazePalm(nn.Module):
    """MediaPipe's palm detector: (B,3,192,192) RGB in [0, 1] -> (regressors (B,2016,18), logits (B,2016,1)).

    ``variant`` "full" or "lite" (MediaPipe's model complexity 1 and 0).
    """

    tflite_ops = frozenset(
        {"CONV_2D", "DEPTHWISE_CONV_2D", "PRELU", "ADD", "MAX_POOL_2D", "PAD", "RESIZE_BILINEAR",
         "RESHAPE", "CONCATENATION"}
    )
    input_size = INPUT_SIZE

    def __init__(self, variant: str = "full") -> None:
        super().__init__()
        if variant not in BLOCKS:
            raise ValueError(f"blazepalm variant must be one of {sorted(BLOCKS)}, got {variant!r}")
        self.variant = variant
        n = BLOCKS[variant]
        self.stem = Stem(STAGE_WIDTHS[0])
        self.stage1 = nn.Sequential(*(BlazeBlock(STAGE_WIDTHS[0], STAGE_WIDTHS[0]) for _ in range(n)))
        for i in range(1, len(STAGE_WIDTHS)):
            c_in, c_out = STAGE_WIDTHS[i - 1], STAGE_WIDTHS[i]
            blocks = [BlazeBlock(c_in, c_out, stride=2), *(BlazeBlock(c_out, c_out) for _ in range(n))]
            self.add_module(f"stage{i + 1}", nn.Sequential(*blocks))
        self.up12 = Upsample(256, 256)
        self.head12 = nn.Sequential(*(BlazeBlock(256, 256) for _ in range(HEAD_BLOCKS)))
        self.out12 = DetectionHead(256, ANCHORS_PER_CELL[12])
        self.up24 = Upsample(256, 128)
        self.head24 = nn.Sequential(*(BlazeBlock(128, 128) for _ in range(HEAD_BLOCKS)))
        self.out24 = DetectionHead(128, ANCHORS_PER_CELL[24])

    def tflite_layers(self) -> Iterator[tuple[str, nn.Module]]:
        """The weight layers in the file's operator order (the 12-px outputs come before the 24-px branch)."""
        order = ["stem", "stage1", "stage2", "stage3", "stage4", "stage5",
                 "up12", "head12", "out12", "up24", "head24", "out24"]
        for name in order:
            part = getattr(self, name)
            children = enumerate(part) if isinstance(part, nn.Sequential) else [(None, part)]
            for i, child in children:
                prefix = name if i is None else f"{name}.{i}"
                for sub, layer in child.tflite_layers():
                    yield f"{prefix}.{sub}", layer

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stage2(self.stage1(self.stem(images)))
        x24 = self.stage3(x)
        x12 = self.stage4(x24)
        x6 = self.stage5(x12)
        y12 = self.head12(self.up12(x6, x12))
        scores12, boxes12 = self.out12(y12)
        y24 = self.head24(self.up24(y12, x24))
        scores24, boxes24 = self.out24(y24)
        return torch.cat([boxes24, boxes12], dim=1), torch.cat([scores24, scores12], dim=1)
