"""``handzoo export``: ONNX and TorchScript files equal PyTorch (dynamic batch) and carry handzoo's metadata.

The ONNX file is run with onnxruntime and the TorchScript file with
``torch.jit.load``, both independent of the code that wrote them; the
reference is the PyTorch model rebuilt from the same safetensors weights.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import handzoo
from handzoo.cli import main
from handzoo.export_formats import export_model, read_export_metadata
from handzoo.joints import CANONICAL
from handzoo.output import HandOutput
from tests.conftest import export_random_weights

SIZE = 64


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return export_random_weights(tmp_path_factory.mktemp("run"), "resnet18", SIZE)


@pytest.fixture(scope="module")
def reference(weights) -> nn.Module:
    return handzoo.create_model(weights=weights).eval()


def _cli(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out = capsys.readouterr()
    return int(exit_info.value.code or 0), out.out, out.err


def _batches(seed: int = 123) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(b, 3, SIZE, SIZE, generator=gen) for b in (1, 3)]


def _check_metadata(meta: dict[str, str], model: nn.Module, fmt: str, outputs: list[str]) -> None:
    assert meta["model"] == "resnet18" and meta["handzoo_version"] == handzoo.__version__
    assert meta["format"] == fmt and meta["weights"] == "model.safetensors"
    assert json.loads(meta["joint_order"]) == list(CANONICAL)
    assert "metres" in meta["units"] and "root-relative" in meta["units"]
    assert json.loads(meta["input_size"]) == [3, SIZE, SIZE]
    np.testing.assert_allclose(json.loads(meta["mean"]), model.preprocessing["mean"])
    np.testing.assert_allclose(json.loads(meta["std"]), model.preprocessing["std"])
    assert json.loads(meta["outputs"]) == outputs


def test_onnx_equals_pytorch_with_a_dynamic_batch(tmp_path, weights, reference, capsys):
    import onnx
    import onnxruntime as ort

    out = tmp_path / "hand.onnx"
    code, stdout, stderr = _cli(
        capsys, "export", "resnet18", "--weights", str(weights), "--format", "onnx", "--out", str(out)
    )
    assert code == 0, stderr
    assert "opset 18" in stdout and "matches PyTorch" in stdout
    proto = onnx.load(str(out))
    assert [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")] == [18]
    batch_dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch_dim.dim_param and not batch_dim.dim_value  # symbolic: any batch size
    meta = {p.key: p.value for p in proto.metadata_props}
    _check_metadata(meta, reference, "onnx", ["joints3d"])
    assert meta["opset"] == "18" and read_export_metadata(out) == meta

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["images"]
    assert [o.name for o in session.get_outputs()] == ["joints3d"]
    for x in _batches():
        (got,) = session.run(None, {"images": x.numpy()})
        with torch.inference_mode():
            expected = reference(x).joints3d.numpy()
        assert got.shape == (x.shape[0], 21, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


def test_torchscript_equals_pytorch_with_a_dynamic_batch(tmp_path, weights, reference, capsys):
    out = tmp_path / "hand.pt"
    code, stdout, stderr = _cli(
        capsys, "export", "resnet18", "--weights", str(weights), "--format", "torchscript", "--out", str(out)
    )
    assert code == 0, stderr
    assert "matches PyTorch" in stdout
    extra = {"handzoo.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(out), _extra_files=extra)
    meta = json.loads(extra["handzoo.json"])
    _check_metadata(meta, reference, "torchscript", ["joints3d"])
    assert read_export_metadata(out) == meta
    for x in _batches(seed=7):
        with torch.inference_mode():
            got, expected = module(x).numpy(), reference(x).joints3d.numpy()
        assert got.shape == (x.shape[0], 21, 3)
        np.testing.assert_allclose(got, expected, atol=1e-4, rtol=0)


class MeshModel(nn.Module):
    """A small model that also predicts vertices (B,778,3), like a MANO head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=4)
        self.joints = nn.Linear(8, 63)
        self.verts = nn.Linear(8, 778 * 3)
        self.preprocessing = {"mean": (0.5, 0.5, 0.5), "std": (0.25, 0.25, 0.25), "input_size": (3, 32, 32)}
        self.handzoo_name = "toy_mesh"

    def forward(self, images: torch.Tensor) -> HandOutput:
        f = self.conv(images).relu().mean(dim=(2, 3))
        j = self.joints(f).view(-1, 21, 3) * 0.05
        return HandOutput(joints3d=j - j[:, :1], vertices=self.verts(f).view(-1, 778, 3) * 0.05)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_vertices_are_exported_when_the_model_gives_them(tmp_path, fmt):
    from handzoo.export_formats import run_exported

    torch.manual_seed(1)
    model = MeshModel().eval()
    report = export_model(model, tmp_path / f"mesh.{fmt}", fmt)
    assert report.outputs == ["joints3d", "vertices"] and report.max_abs_diff is not None
    meta = read_export_metadata(report.path)
    assert json.loads(meta["outputs"]) == ["joints3d", "vertices"] and meta["model"] == "toy_mesh"
    assert json.loads(meta["mean"]) == [0.5, 0.5, 0.5] and json.loads(meta["input_size"]) == [3, 32, 32]
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    joints, verts = run_exported(report.path, x.numpy())
    with torch.inference_mode():
        ref = model(x)
    np.testing.assert_allclose(joints, ref.joints3d.numpy(), atol=1e-4, rtol=0)
    np.testing.assert_allclose(verts, ref.vertices.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--format", "tflite"], "expected one of onnx, torchscript"),
        (["--format", "onnx", "--opset", "17"], "opset 18 or newer"),
        (["--format", "torchscript", "--opset", "18"], "--opset applies to --format onnx only"),
    ],
)
def test_export_usage_errors(tmp_path, weights, capsys, args, needle):
    code, _, stderr = _cli(
        capsys, "export", "resnet18", "--weights", str(weights), "--out", str(tmp_path / "x"), *args
    )
    assert code == 2 and needle in stderr
    assert not (tmp_path / "x").exists()


def test_export_needs_weights(tmp_path, capsys):
    code, _, stderr = _cli(capsys, "export", "resnet18", "--out", str(tmp_path / "x.onnx"))
    assert code == 2 and "--weights" in stderr
