"""``.tflite`` weights -> a PyTorch state dict, assigned layer by layer in graph order, every shape checked.

A module that can be converted lists its weight layers in the order the
TFLite file stores their operators (``tflite_layers()`` yielding
``(state-dict prefix, layer)``; each layer says its ``tflite_kind``) and the
operators it may contain (``tflite_ops``). The converter walks the file's
operators, pairs each weight-carrying one (convolutions, fully connected,
PReLU) with the next layer, checks kind, shape, stride, padding and fused
activation, and re-orders the weights from TFLite's layouts:

* ``CONV_2D`` (O, kh, kw, I) -> (O, I, kh, kw);
* ``DEPTHWISE_CONV_2D`` (1, kh, kw, C) -> (C, 1, kh, kw);
* ``FULLY_CONNECTED`` (O, I) as is;
* ``PRELU`` (1, 1, C) -> (C,).

fp16 weights are widened to float32 exactly (:mod:`handzoo_blaze.tflite_graph`).
Anything unexpected is a one-line :class:`~handzoo.errors.DataError` naming
the file and the operator.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handzoo.plugin_api import DataError
from handzoo_blaze.tflite_graph import Graph, Operator, read_graph

WEIGHT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "PRELU")


def _layout(op: Operator, array: np.ndarray) -> np.ndarray:
    if op.kind == "CONV_2D":
        return array.transpose(0, 3, 1, 2)
    if op.kind == "DEPTHWISE_CONV_2D":
        return array.transpose(3, 0, 1, 2)
    if op.kind == "PRELU":
        return array.reshape(-1)
    return array


def _describe(graph: Graph, op: Operator) -> str:
    return f"{graph.source}: operator {op.index} {op.kind}"


def _check_options(graph: Graph, op: Operator, prefix: str, layer: nn.Module, arch: str) -> None:
    if op.kind not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
        return
    expected: dict[str, object] = {"activation": getattr(layer, "activation", None)}
    if op.kind != "FULLY_CONNECTED":
        kernel = layer.kernel_size[0]
        expected.update(stride=tuple(layer.stride), dilation=(1, 1))
        # A 1x1 convolution pads nothing, so SAME and VALID are the same operation.
        if kernel > 1:
            expected["padding"] = layer.tf_padding
        if op.kind == "DEPTHWISE_CONV_2D":
            expected["depth_multiplier"] = 1
    for key, want in expected.items():
        found = op.options.get(key)
        if found != want:
            raise DataError(f"{_describe(graph, op)} has {key} {found}; {arch} expects {want} at {prefix}")


# The options the modules implement for the operators without weights (anything else is refused).
FIXED_OPTIONS = {
    "ADD": {"activation": None},
    "CONCATENATION": {"activation": None},
    # 2x2 stride 2: SAME and VALID pad nothing on the even maps these networks pool (checked below).
    "MAX_POOL_2D": {"kernel": (2, 2), "stride": (2, 2), "activation": None},
    "RESIZE_BILINEAR": {"align_corners": False, "half_pixel_centers": True},
    "MEAN": {"keep_dims": False},
}


def convert(module: nn.Module, path: str | Path, arch: str | None = None) -> dict[str, torch.Tensor]:
    """The state dict of ``module`` read from the TFLite file ``path`` (float32, all keys).

    Args:
        module: a module with ``tflite_layers()``, ``tflite_ops`` and ``input_size``
            (e.g. :class:`handzoo_blaze.blazehand.BlazeHand`).
        arch: the architecture's name for messages (default: the module's class name).

    Raises:
        DataError: an operator the module does not expect, a weight of another
            shape, stride, padding or activation, too many or too few weight
            operators, or an input of another size.
    """
    arch = arch or type(module).__name__
    graph = read_graph(path)
    for op in graph.operators:
        if op.kind not in module.tflite_ops:
            raise DataError(
                f"{_describe(graph, op)} is not an operator {arch} expects "
                f"({', '.join(sorted(module.tflite_ops))}); is this the right .tflite file?"
            )
        for key, want in FIXED_OPTIONS.get(op.kind, {}).items():
            if op.options.get(key) != want:
                raise DataError(
                    f"{_describe(graph, op)} has {key} {op.options.get(key)}; {arch} implements {want}"
                )
    size = module.input_size
    if [t.shape for t in graph.inputs] != [(1, size, size, 3)]:
        found = ", ".join(str(t.shape) for t in graph.inputs)
        raise DataError(f"{graph.source}: input {found}; {arch} expects (1, {size}, {size}, 3)")

    layers = list(module.tflite_layers())
    weight_ops = [op for op in graph.operators if op.kind in WEIGHT_OPS]
    state: dict[str, torch.Tensor] = {}
    for n, op in enumerate(weight_ops):
        if n >= len(layers):
            raise DataError(
                f"{_describe(graph, op)} is weight operator {n + 1}; {arch} has only {len(layers)}"
            )
        prefix, layer = layers[n]
        if op.kind != layer.tflite_kind:
            raise DataError(f"{_describe(graph, op)}: {arch} expects {layer.tflite_kind} at {prefix}")
        weight_tensor = op.inputs[1]
        hint = getattr(layer, "tflite_name", None)
        if hint and hint not in weight_tensor.name:
            raise DataError(
                f"{_describe(graph, op)} holds {weight_tensor.name!r}; {arch} expects {hint} at {prefix}"
            )
        _check_options(graph, op, prefix, layer, arch)
        params = [("weight", op.inputs[1])] + ([("bias", op.inputs[2])] if len(op.inputs) > 2 else [])
        for key, tensor in params:
            target = getattr(layer, key, None)
            if tensor is None or tensor.data is None or target is None:
                raise DataError(f"{_describe(graph, op)}: no constant {key} for {prefix}.{key}")
            array = _layout(op, tensor.data.astype(np.float32)) if key == "weight" else tensor.data
            if tuple(array.shape) != tuple(target.shape):
                raise DataError(
                    f"{_describe(graph, op)}: {key} {tensor.name!r} has shape {tuple(array.shape)} in "
                    f"PyTorch layout; {arch} expects {tuple(target.shape)} at {prefix}.{key}"
                )
            state[f"{prefix}.{key}"] = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    if len(weight_ops) != len(layers):
        raise DataError(
            f"{graph.source}: {len(weight_ops)} weight operators; {arch} has {len(layers)} layers "
            f"(first missing: {layers[len(weight_ops)][0]})"
        )
    missing = set(module.state_dict()) - set(state)
    if missing:  # a layer not listed by tflite_layers(): a bug of the module, not of the file
        raise DataError(f"{graph.source}: {arch} has parameters no operator fills: {sorted(missing)[:3]}")
    return state


def load_tflite(module: nn.Module, path: str | Path, arch: str | None = None) -> nn.Module:
    """``module`` with its weights read from ``path`` (see :func:`convert`); returns the module."""
    module.load_state_dict(convert(module, path, arch), strict=True)
    return module


def graph_outputs(path: str | Path) -> Iterable[str]:
    """The names of the file's outputs, in order (for matching a runtime's outputs to a module's)."""
    return [t.name for t in read_graph(path).outputs]
