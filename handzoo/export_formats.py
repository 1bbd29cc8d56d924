"""Deployment formats: ONNX and TorchScript files with handzoo's metadata inside.

The exported graph maps ``images`` (B,3,S,S) float32, RGB, normalised as
``(pixel/255 - mean)/std`` with the model's preprocessing, to ``joints3d``
(B,21,3) metres, root-relative, canonical order (and ``vertices`` (B,778,3)
metres when the model predicts a mesh). B is dynamic; S is fixed at export.

Metadata (all strings; JSON where structured) travels in the file itself:
ONNX ``metadata_props``, and the TorchScript extra file
:data:`TORCHSCRIPT_METADATA` (``handzoo.json``). Keys: ``handzoo_version``,
``model``, ``weights``, ``format``, ``joint_order`` (names), ``joint_order_name``,
``units``, ``input_name``, ``input_size``, ``input_layout``, ``mean``, ``std``,
``outputs``, ``output_shapes`` and, for ONNX, ``opset``.

ONNX uses PyTorch's ``torch.export``-based exporter (``dynamo=True``, the
default since PyTorch 2.9; it needs ``onnxscript``). It writes opset 18 or
newer; the legacy TorchScript-based exporter is deprecated upstream and is
not used. TorchScript files are traced (``torch.jit.trace``); PyTorch
deprecates TorchScript too, but ``torch.jit.load`` and LibTorch still run
them.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from handzoo import joints
from handzoo._version import __version__
from handzoo.conventions import IMAGENET_MEAN, IMAGENET_STD
from handzoo.errors import HandzooError, UsageError

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 18
MIN_OPSET = 18  # the exporter implements opset 18+; older targets rely on a converter that fails on ResNets
TORCHSCRIPT_METADATA = "handzoo.json"
PARITY_TOLERANCE = 1e-4  # metres: exported outputs must match PyTorch this closely
PARITY_BATCHES = (1, 3)
EXTERNAL_DATA_BYTES = 1_800_000_000  # ONNX protobufs stop at 2 GB: bigger weights go to FILE.data
INPUT_NAME = "images"
OUTPUT_SHAPES = {"joints3d": ["B", 21, 3], "vertices": ["B", 778, 3]}


class ExportedModel(nn.Module):
    """A handzoo model with plain tensor outputs: images (B,3,S,S) -> joints3d (B,21,3)
    or (joints3d, vertices (B,778,3)) when ``with_vertices``."""

    def __init__(self, model: nn.Module, with_vertices: bool) -> None:
        super().__init__()
        self.model = model
        self.with_vertices = with_vertices

    def forward(self, images: torch.Tensor):
        out = self.model(images)
        if self.with_vertices:
            return out.joints3d, out.vertices
        return out.joints3d


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and how closely it matches PyTorch."""

    path: Path
    format: str
    outputs: list[str]
    input_size: tuple[int, int, int]
    metadata: dict[str, str]
    max_abs_diff: float | None = None  # metres, over PARITY_BATCHES; None when not checked
    checked_batches: tuple[int, ...] = ()
    extra_files: list[Path] = field(default_factory=list)


def export_metadata(
    model: nn.Module,
    name: str,
    weights: str | Path | None,
    input_size: tuple[int, int, int],
    outputs: list[str],
    fmt: str,
) -> dict[str, str]:
    """The string metadata written into an exported file (see the module docstring)."""
    prep = getattr(model, "preprocessing", {}) or {}
    return {
        "handzoo_version": __version__,
        "model": name,
        "weights": Path(weights).name if weights is not None else "none (random initialisation)",
        "format": fmt,
        "joint_order": json.dumps(list(joints.CANONICAL)),
        "joint_order_name": "canonical (FreiHAND/OpenPose)",
        "units": "metres, root-relative (wrist at the origin), camera axes x right, y down, z forward",
        "input_name": INPUT_NAME,
        "input_size": json.dumps(list(input_size)),
        "input_layout": "float32 (B,3,S,S) RGB, normalised as (pixel/255 - mean)/std",
        "mean": json.dumps([float(v) for v in prep.get("mean", IMAGENET_MEAN)]),
        "std": json.dumps([float(v) for v in prep.get("std", IMAGENET_STD)]),
        "outputs": json.dumps(outputs),
        "output_shapes": json.dumps({k: OUTPUT_SHAPES[k] for k in outputs}),
    }


def export_model(
    model: nn.Module,
    path: str | Path,
    fmt: str,
    *,
    name: str | None = None,
    weights: str | Path | None = None,
    image_size: int | None = None,
    opset: int | None = None,
    verify: bool = True,
) -> ExportReport:
    """Write ``model`` as ONNX or TorchScript with a dynamic batch size.

    Args:
        model: a handzoo model, images (B,3,S,S) -> ``HandOutput``; it is moved to
            the CPU and put in eval mode.
        path: the file to write (``.onnx`` / ``.pt``).
        fmt: ``onnx`` or ``torchscript``.
        name: the model's registered name (default ``model.handzoo_name``).
        weights: the weights file it was loaded from (recorded by name).
        image_size: S (default: the model's ``preprocessing['input_size']``).
        opset: ONNX opset (default :data:`DEFAULT_OPSET`, at least :data:`MIN_OPSET`).
        verify: run the file on batches of 1 and 3 and compare with PyTorch
            (ONNX needs ``onnxruntime``; without it the check is skipped).

    Returns:
        :class:`ExportReport`; ``max_abs_diff`` is the largest difference in metres.

    Raises:
        UsageError: an unknown format or a bad opset/image size.
        HandzooError: the exported file differs from PyTorch by more than
            :data:`PARITY_TOLERANCE`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if fmt != "onnx" and opset is not None:
        raise UsageError("--opset applies to --format onnx only")
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if fmt == "onnx" and opset < MIN_OPSET:
        raise UsageError(
            f"--opset {opset}: the ONNX exporter writes opset {MIN_OPSET} or newer "
            f"(onnxruntime >= 1.14 runs it); pass --opset {MIN_OPSET} or higher"
        )
    prep = getattr(model, "preprocessing", {}) or {}
    size = int(image_size if image_size is not None else prep.get("input_size", (3, 0, 0))[-1])
    if size < 16:
        raise UsageError(f"image size {size}: expected at least 16 pixels (pass --image-size)")
    name = name or str(getattr(model, "handzoo_name", type(model).__name__))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)

    model = model.cpu().eval()
    example = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        probe = model(example)
    outputs = ["joints3d"] + (["vertices"] if getattr(probe, "vertices", None) is not None else [])
    wrapper = ExportedModel(model, with_vertices="vertices" in outputs).eval()
    metadata = export_metadata(model, name, weights, (3, size, size), outputs, fmt)

    extra: list[Path] = []
    if fmt == "onnx":
        metadata["opset"] = str(opset)
        extra = _export_onnx(wrapper, example, path, outputs, opset, metadata)
    else:
        _export_torchscript(wrapper, example, path, metadata)

    report = ExportReport(path, fmt, outputs, (3, size, size), metadata, extra_files=extra)
    if verify:
        _verify(report, wrapper)
    return report


def _export_onnx(
    wrapper: nn.Module, example: torch.Tensor, path: Path, outputs: list[str], opset: int, metadata: dict
) -> list[Path]:
    try:
        import onnxscript  # noqa: F401  (the exporter's dependency: fail early with a clear message)
    except ImportError:
        raise UsageError(
            "ONNX export needs the onnx and onnxscript packages: pip install onnx onnxscript "
            "(and onnxruntime to check and run the file)"
        ) from None
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the exporter's internal deprecation chatter is not for users
        program = torch.onnx.export(
            wrapper,
            (example,),
            None,
            dynamo=True,
            verbose=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_shapes=({0: batch},),
        )
    assert program is not None
    program.model.metadata_props.update(metadata)
    big = sum(p.numel() * p.element_size() for p in wrapper.parameters()) > EXTERNAL_DATA_BYTES
    program.save(str(path), external_data=big)
    written = _onnx_opset(path)
    if written != opset:
        raise HandzooError(f"{path}: the exporter wrote opset {written}, not {opset}; pass --opset {written}")
    data = path.with_name(path.name + ".data")
    return [data] if big and data.exists() else []


def _onnx_opset(path: Path) -> int:
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def _export_torchscript(wrapper: nn.Module, example: torch.Tensor, path: Path, metadata: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated upstream, still loadable
        with torch.no_grad():
            traced = torch.jit.trace(wrapper, (example,), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={TORCHSCRIPT_METADATA: json.dumps(metadata)})


def read_export_metadata(path: str | Path) -> dict[str, str]:
    """The handzoo metadata of an exported ``.onnx`` or TorchScript file (without running it)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    if zipfile.is_zipfile(path):  # TorchScript archives are zip files
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if member.endswith(f"/extra/{TORCHSCRIPT_METADATA}"):
                    return json.loads(zf.read(member))
        raise HandzooError(f"{path}: TorchScript file without {TORCHSCRIPT_METADATA}; not written by handzoo")
    import onnx

    proto = onnx.load(str(path), load_external_data=False)
    return {p.key: p.value for p in proto.metadata_props}


def load_exported(path: str | Path) -> Callable[[np.ndarray], list[np.ndarray]]:
    """Open an exported file once; the returned function maps images (B,3,S,S) float32 to the
    file's outputs in order (numpy, CPU): onnxruntime for ONNX, ``torch.jit.load`` for TorchScript."""
    path = Path(path)
    if zipfile.is_zipfile(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location="cpu")

        def run_torchscript(images: np.ndarray) -> list[np.ndarray]:
            with torch.inference_mode():
                out = module(torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)))
            return [t.numpy() for t in (out if isinstance(out, (tuple, list)) else (out,))]

        return run_torchscript
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    def run_onnx(images: np.ndarray) -> list[np.ndarray]:
        return list(session.run(None, {name: np.ascontiguousarray(images, dtype=np.float32)}))

    return run_onnx


def run_exported(path: str | Path, images: np.ndarray) -> list[np.ndarray]:
    """Run an exported file on images (B,3,S,S) float32; returns its outputs in order (CPU)."""
    return load_exported(path)(images)


def _verify(report: ExportReport, wrapper: nn.Module) -> None:
    if report.format == "onnx":
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return  # checked by the caller's message: max_abs_diff stays None
    worst = 0.0
    run = load_exported(report.path)
    gen = torch.Generator().manual_seed(1)
    for batch in PARITY_BATCHES:
        x = torch.randn(batch, *report.input_size, generator=gen)
        with torch.inference_mode():
            ref = wrapper(x)
        ref = [t.numpy() for t in (ref if isinstance(ref, tuple) else (ref,))]
        got = run(x.numpy())
        if len(got) != len(ref):
            raise HandzooError(f"{report.path}: {len(got)} outputs, expected {len(ref)} ({report.outputs})")
        for name, r, g in zip(report.outputs, ref, got, strict=True):
            if g.shape != r.shape:
                raise HandzooError(
                    f"{report.path}: output {name} has shape {g.shape} for batch {batch}, expected {r.shape}"
                )
            diff = float(np.abs(g - r).max())
            worst = max(worst, diff)
            if diff > PARITY_TOLERANCE:
                raise HandzooError(
                    f"{report.path}: output {name} differs from PyTorch by {diff:.2e} m on batch {batch} "
                    f"(tolerance {PARITY_TOLERANCE:g}); the model may use an operation the "
                    f"{report.format} export does not reproduce"
                )
    report.max_abs_diff = worst
    report.checked_batches = PARITY_BATCHES
