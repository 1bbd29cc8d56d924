"""TensorFlow-equivalent layers: convolutions with TF's "SAME" padding and TFLite's fused activations.

TF pads "SAME" convolutions so that the output has ``ceil(in / stride)`` rows,
putting the odd pixel of padding after (bottom/right), not before as a
symmetric PyTorch padding would. At stride 1 with an odd kernel the padding
is symmetric and goes inside the convolution (no extra op); at stride 2 the
extra row and column are padded explicitly. Each layer also says which TFLite
operator it stands for (``tflite_kind``), so the converter can check the file
against the module.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = (None, "relu6")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TF "SAME" along one axis of ``size`` pixels."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TfConv2d(nn.Conv2d):
    """A (depthwise when ``groups == in == out``) convolution with TF padding and a fused activation.

    Args:
        padding_mode_tf: ``"SAME"`` or ``"VALID"`` as in the TFLite file.
        activation: None or ``"relu6"`` (TFLite's fused activation).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        activation: str | None = None,
        padding_mode_tf: str = "SAME",
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        inner = (kernel_size - 1) // 2 if (stride == 1 and padding_mode_tf == "SAME") else 0
        super().__init__(in_channels, out_channels, kernel_size, stride, padding=inner, groups=groups)
        self.tf_padding = padding_mode_tf
        self.activation = activation
        self.pad_outside = stride > 1 and padding_mode_tf == "SAME" and kernel_size > 1

    @property
    def tflite_kind(self) -> str:
        depthwise = self.groups > 1 and self.groups == self.in_channels == self.out_channels
        return "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pad_outside:
            k, s = self.kernel_size[0], self.stride[0]
            top, bottom = same_padding(x.shape[-2], k, s)
            left, right = same_padding(x.shape[-1], k, s)
            x = F.pad(x, (left, right, top, bottom))
        x = self._conv_forward(x, self.weight, self.bias)
        if self.activation == "relu6":
            x = F.relu6(x)
        return x


def depthwise(channels: int, kernel_size: int, stride: int = 1, activation: str | None = None) -> TfConv2d:
    """A depthwise ``kernel_size`` convolution (TFLite ``DEPTHWISE_CONV_2D``, multiplier 1)."""
    return TfConv2d(channels, channels, kernel_size, stride, groups=channels, activation=activation)


def pointwise(in_channels: int, out_channels: int, activation: str | None = None) -> TfConv2d:
    """A 1x1 convolution (TFLite ``CONV_2D``)."""
    return TfConv2d(in_channels, out_channels, 1, activation=activation)


class TfLinear(nn.Linear):
    """TFLite ``FULLY_CONNECTED`` (weights (out, in), as PyTorch's)."""

    tflite_kind = "FULLY_CONNECTED"
    activation = None


class TfPReLU(nn.PReLU):
    """TFLite ``PRELU`` with one slope per channel (alpha stored (1,1,C) in the file)."""

    tflite_kind = "PRELU"
