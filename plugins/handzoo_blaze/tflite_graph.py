"""A ``.tflite`` file read as a list of operators with their weights (float32 numpy arrays).

Only what the converter needs: each operator's name (``CONV_2D``...), its
options (strides, padding, fused activation...), its input and output tensors
with their shapes, and the constant data behind an input. fp16 weights sit
behind ``DEQUANTIZE`` operators; they are read through them as float32 (an
exact widening), and the ``DEQUANTIZE`` operators themselves are dropped from
the list, so the list is the network's graph order as the file stores it.

The flatbuffer schema comes from the ``tflite`` package (pure Python); no
TensorFlow or TFLite runtime is involved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from handzoo.plugin_api import DataError

# TFLite's enums (schema.fbs): Padding, ActivationFunctionType, TensorType.
PADDING = {0: "SAME", 1: "VALID"}
ACTIVATION = {0: None, 1: "relu", 2: "relu_n1_to_1", 3: "relu6", 4: "tanh", 5: "sign_bit", 6: "sigmoid"}
TENSOR_DTYPE = {0: np.float32, 1: np.float16, 2: np.int32, 3: np.uint8, 4: np.int64, 9: np.int8}


@dataclass
class Tensor:
    """One tensor of the graph: ``data`` is its constant value as float32/int (None for activations)."""

    index: int
    name: str
    shape: tuple[int, ...]
    data: np.ndarray | None = None


@dataclass
class Operator:
    """One operator in graph order: ``kind`` is TFLite's builtin name, e.g. ``CONV_2D``."""

    index: int
    kind: str
    inputs: list[Tensor | None]
    outputs: list[Tensor]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Graph:
    """The main subgraph of a ``.tflite`` file."""

    source: str
    operators: list[Operator]
    inputs: list[Tensor]
    outputs: list[Tensor]


def _import_tflite():
    try:
        import tflite
    except ImportError:  # a base dependency; only a broken install lacks it
        raise DataError("reading .tflite files needs the `tflite` package: pip install tflite") from None
    return tflite


def _operator_names(tflite) -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options(tflite, op, kind: str) -> dict[str, Any]:
    """The options of the operators the converter checks, as plain values."""
    table = op.BuiltinOptions()
    if table is None:
        return {}

    def init(cls):
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        return opts

    if kind == "CONV_2D":
        o = init(tflite.Conv2DOptions)
        return {
            "stride": (o.StrideH(), o.StrideW()),
            "padding": PADDING.get(o.Padding()),
            "activation": ACTIVATION.get(o.FusedActivationFunction(), "unknown"),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
        }
    if kind == "DEPTHWISE_CONV_2D":
        o = init(tflite.DepthwiseConv2DOptions)
        return {
            "stride": (o.StrideH(), o.StrideW()),
            "padding": PADDING.get(o.Padding()),
            "activation": ACTIVATION.get(o.FusedActivationFunction(), "unknown"),
            "dilation": (o.DilationHFactor(), o.DilationWFactor()),
            "depth_multiplier": o.DepthMultiplier(),
        }
    if kind == "MAX_POOL_2D":
        o = init(tflite.Pool2DOptions)
        return {
            "stride": (o.StrideH(), o.StrideW()),
            "kernel": (o.FilterHeight(), o.FilterWidth()),
            "padding": PADDING.get(o.Padding()),
            "activation": ACTIVATION.get(o.FusedActivationFunction(), "unknown"),
        }
    if kind == "FULLY_CONNECTED":
        o = init(tflite.FullyConnectedOptions)
        return {"activation": ACTIVATION.get(o.FusedActivationFunction(), "unknown")}
    if kind == "ADD":
        o = init(tflite.AddOptions)
        return {"activation": ACTIVATION.get(o.FusedActivationFunction(), "unknown")}
    if kind == "CONCATENATION":
        o = init(tflite.ConcatenationOptions)
        return {"axis": o.Axis(), "activation": ACTIVATION.get(o.FusedActivationFunction(), "unknown")}
    if kind == "RESIZE_BILINEAR":
        o = init(tflite.ResizeBilinearOptions)
        return {"align_corners": bool(o.AlignCorners()), "half_pixel_centers": bool(o.HalfPixelCenters())}
    if kind == "MEAN":
        o = init(tflite.ReducerOptions)
        return {"keep_dims": bool(o.KeepDims())}
    return {}


def read_graph(path: str | Path) -> Graph:
    """The operators of ``path``'s first subgraph, in the file's order, with weights as float32.

    Raises:
        DataError: the file is missing or not a TFLite flatbuffer (one line naming the file).
    """
    tflite = _import_tflite()
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc}); pass a .tflite file") from None
    # A TFLite flatbuffer carries the identifier "TFL3" at bytes 4..8.
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise DataError(f"{path}: not a TFLite model (no 'TFL3' identifier); pass a .tflite file")
    try:
        model = tflite.Model.GetRootAsModel(buf, 0)
        if model.SubgraphsLength() < 1:
            raise DataError(f"{path}: the TFLite model has no subgraph")
        return _read(tflite, path, model, model.Subgraphs(0), _operator_names(tflite))
    except DataError:
        raise
    except Exception as exc:  # a damaged flatbuffer fails deep in the schema code
        raise DataError(f"{path}: not a readable TFLite model ({type(exc).__name__}: {exc})") from None


def _read(tflite, path: Path, model, graph, names: dict[int, str]) -> Graph:
    def raw_tensor(i: int):
        t = graph.Tensors(i)
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        quant = t.Quantization()
        if quant is not None and quant.ScaleLength() > 0:
            raise DataError(f"{path}: tensor {t.Name().decode()!r} is quantised; only float models convert")
        data = None
        buffer = model.Buffers(t.Buffer())
        if buffer is not None and buffer.DataLength() > 0:
            dtype = TENSOR_DTYPE.get(t.Type())
            if dtype is None:
                raise DataError(f"{path}: tensor {t.Name().decode()!r} has TFLite type {t.Type()}, not read")
            data = np.frombuffer(buffer.DataAsNumpy().tobytes(), dtype=dtype).reshape(shape)
        return Tensor(i, t.Name().decode(), shape, data)

    tensors = {i: raw_tensor(i) for i in range(graph.TensorsLength())}
    ops: list[Operator] = []
    for k in range(graph.OperatorsLength()):
        op = graph.Operators(k)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Files written by newer converters keep small codes in the deprecated field too.
        kind = names.get(
            max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), f"CUSTOM({code.CustomCode()})"
        )
        inputs = [tensors[op.Inputs(j)] if op.Inputs(j) >= 0 else None for j in range(op.InputsLength())]
        outputs = [tensors[op.Outputs(j)] for j in range(op.OutputsLength())]
        if kind == "DEQUANTIZE":
            src = inputs[0]
            if src is None or src.data is None:
                raise DataError(f"{path}: operator {k} DEQUANTIZE has no constant input; not a weight file")
            if src.data.dtype != np.float16:  # int8 weights would need their scale and zero point
                raise DataError(
                    f"{path}: operator {k} DEQUANTIZE reads {src.data.dtype} tensor {src.name!r}; "
                    "only fp16 weights are converted (a quantised model is not supported)"
                )
            # fp16 -> fp32 is exact; the consumer reads the widened copy.
            outputs[0].data = src.data.astype(np.float32)
            continue
        ops.append(Operator(k, kind, inputs, outputs, _options(tflite, op, kind)))
    graph_inputs = [tensors[graph.Inputs(i)] for i in range(graph.InputsLength())]
    graph_outputs = [tensors[graph.Outputs(i)] for i in range(graph.OutputsLength())]
    return Graph(str(path), ops, graph_inputs, graph_outputs)
