"""The fastest way handzoo runs MediaPipe's landmark network for inference on the CPU.

Measured in ``benchmarks/blaze_speed.py`` (see benchmarks/README.md). Two things pay:

* **The stride-2 padding folded into the convolution.** TF "SAME" pads a
  stride-2 k×k convolution of an even-sized map by ``(k-2)//2`` before and
  ``k//2`` after, which PyTorch's symmetric ``padding`` cannot say, so
  :class:`handzoo_blaze.layers.TfConv2d` pads explicitly. On a channels-last
  tensor that ``F.pad`` returns a contiguous (NCHW) copy, and every such layer
  then pays two layout reorders around the convolution. A (k+1)×(k+1) kernel
  whose first row and column are zero, with symmetric padding ``k//2``, reads
  exactly the pixels of TF's window with the same weights (the zero taps add
  exact zeros), so the pad op goes away (:func:`fold_same_padding`). The
  padding depends on the parity of the map's size: the folded network is
  only used at the size it was checked for (even maps at every stride-2 layer,
  224 px).
* **Frozen TorchScript on channels-last.** ``torch.jit.freeze`` +
  ``optimize_for_inference`` hands the convolutions to oneDNN with prepacked
  weights and fused ReLU6, in a fraction of a second
  (``torch.compile`` reaches about the same speed after ~20 s of compiling,
  which a ``handzoo predict`` call does not win back).

:func:`landmark_runner` is that path for a ``mediapipe-hand-*`` model (a
:class:`handzoo.model.HandModel` with the blazehand trunk): a callable
``(images, K=None) -> HandOutput`` that equals the model's own forward.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable

import torch
from torch import nn

from handzoo_blaze.layers import TfConv2d, same_padding

INPUT_SIZE = 224


def _foldable(layer: TfConv2d, size: int) -> bool:
    """Whether ``layer``'s TF padding of a ``size``-pixel map is the folded kernel's ((k-2)//2, k//2)."""
    k, s = layer.kernel_size[0], layer.stride[0]
    square = layer.kernel_size[0] == layer.kernel_size[1] and k % 2 == 1
    return s == 2 and square and same_padding(size, k, s) == ((k - 2) // 2, k // 2)


def fold_same_padding(module: nn.Module, size: int = INPUT_SIZE) -> nn.Module:
    """A copy of ``module`` whose stride-2 TF-padded convolutions pad inside the convolution.

    Each such k×k layer becomes (k+1)×(k+1) with a zero first row and column
    and symmetric padding ``k//2``: output pixel i reads input rows
    ``2i - k//2 .. 2i + k//2 + 1`` with the first at weight zero, which are
    TF's rows ``2i - (k-2)//2 .. 2i + k//2`` (TF's ``(before, after)`` padding of
    an even map). Only valid for an input of ``size`` pixels, whose maps are
    checked here to be even at each stride-2 layer (ValueError otherwise).
    """
    module = copy.deepcopy(module)
    size_at: dict[TfConv2d, int] = {}
    hooks = [
        layer.register_forward_pre_hook(lambda mod, args: size_at.__setitem__(mod, args[0].shape[-1]))
        for layer in module.modules()
        if isinstance(layer, TfConv2d) and layer.pad_outside
    ]
    try:
        with torch.no_grad():  # one pass on a dummy image records each layer's input size
            param = next(module.parameters())
            module(torch.zeros(1, 3, size, size, dtype=param.dtype, device=param.device))
    finally:
        for hook in hooks:
            hook.remove()
    for layer, at in size_at.items():
        if not _foldable(layer, at):
            raise ValueError(f"TF padding of a {at}-pixel map is not the folded kernel's")
        k = layer.kernel_size[0]
        weight = layer.weight.detach()
        folded = weight.new_zeros(weight.shape[0], weight.shape[1], k + 1, k + 1)
        folded[:, :, 1:, 1:] = weight
        layer.weight = nn.Parameter(folded, requires_grad=False)
        layer.kernel_size, layer.padding = (k + 1, k + 1), (k // 2, k // 2)
        layer.pad_outside = False
    return module


def frozen_channels_last(module: nn.Module, example: torch.Tensor) -> Callable[[torch.Tensor], object]:
    """``module`` traced on ``example``, frozen and optimised for inference, run channels-last."""
    module = copy.deepcopy(module).eval().to(memory_format=torch.channels_last)
    example = example.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript's deprecation notices
        traced = torch.jit.trace(module, example, check_trace=False)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(traced.eval()))
    return lambda images: frozen(images.contiguous(memory_format=torch.channels_last))


def onnxruntime_session(module: nn.Module, example: torch.Tensor, threads: int | None = None):
    """``module`` exported to ONNX in memory and opened in ONNX Runtime (all graph optimisations,
    the NCHWc layout transformer included), ``threads`` intra-op threads (torch's by default);
    a callable on a torch tensor returning torch tensors as ``module`` does (a tuple of them or one)."""
    import io

    import onnxruntime as ort

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer notices
        torch.onnx.export(
            module,
            (example,),
            buffer,
            input_names=["images"],
            dynamic_axes={"images": {0: "batch"}},
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: between calls the CPU goes to the rest of the pipeline
    # (decoding, the palm detector in torch), which spinning threads would slow down.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    single = len(session.get_outputs()) == 1

    def run(images: torch.Tensor):
        outputs = [torch.from_numpy(o) for o in session.run(None, {"images": images.contiguous().numpy()})]
        return outputs[0] if single else tuple(outputs)

    return run


def fast_landmarks(
    module: nn.Module, size: int = INPUT_SIZE, backend: str = "auto"
) -> Callable[[torch.Tensor], object]:
    """``module`` (BlazeHand, its trunk, or any module of TfConv2d layers) as the fast CPU callable.

    ``backend``: ``"onnxruntime"`` (the folded network in ONNX Runtime, the
    fastest where it is installed: the ``export`` extra), ``"torchscript"``
    (frozen, channels-last: base install) or ``"auto"`` (the first available).
    The returned callable takes (B,3,size,size) float32 images on the CPU and
    returns what ``module`` returns; any other input goes through ``module``
    itself.
    """
    module = module.eval()
    folded = fold_same_padding(module, size)
    example = torch.zeros(1, 3, size, size)
    fast = None
    if backend in ("auto", "onnxruntime"):
        try:
            fast = onnxruntime_session(folded, example)
        except ImportError:
            if backend == "onnxruntime":
                raise
    if fast is None:
        fast = frozen_channels_last(folded, example)

    def run(images: torch.Tensor):
        if images.shape[1:] != (3, size, size) or images.dtype != torch.float32 or images.is_cuda:
            return module(images)
        with torch.no_grad():
            return fast(images)

    return run


def landmark_runner(model: nn.Module) -> Callable[..., object]:
    """A ``mediapipe-hand-*`` model's forward ``(images, K=None) -> HandOutput`` on the fast trunk.

    The trunk runs through :func:`fast_landmarks`; the head (MediaPipe's
    fully connected outputs, or any other) runs through the model's own
    :meth:`handzoo.model.HandModel.decode`, so the outputs are the model's.
    """
    trunk = fast_landmarks(model.backbone, model.preprocessing["input_size"][-1])

    def run(images: torch.Tensor, K: torch.Tensor | None = None):
        return model.decode(trunk(images), tuple(images.shape[-2:]), K)

    return run
