"""Every registered model at 64 px: output contract, finite values, gradients to the first layer."""

from __future__ import annotations

import pytest
import torch

import handzoo
from handzoo.errors import ConfigError, UnknownNameError, UsageError

# Concrete models, plus one instance of every template.
# Trainable models of the base install; models behind an optional extra (MediaPipe Hands: no
# torch weights, its own tests) are left out.
MODELS = [
    n
    for n in handzoo.list_models()
    if "{" not in n and not handzoo.get_registry().get("model", n).metadata.get("extra")
] + ["timm/resnet10t"]


def _first_parameter(model: torch.nn.Module) -> torch.nn.Parameter:
    return next(p for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", MODELS)
def test_model_contract_at_64px(name):
    torch.manual_seed(0)
    model = handzoo.create_model(name)
    images = torch.randn(2, 3, 64, 64)
    out = model(images)
    assert isinstance(out, handzoo.HandOutput)
    assert out.joints3d.shape == (2, 21, 3)
    assert out.joints3d.dtype == torch.float32
    assert torch.isfinite(out.joints3d).all()
    # Root-relative: the wrist is exactly at the origin.
    assert torch.equal(out.joints3d[:, 0], torch.zeros(2, 3))
    # Hand-sized at initialisation (metres): well under a metre.
    assert out.joints3d.abs().max() < 1.0
    out.joints3d.abs().sum().backward()
    grad = _first_parameter(model).grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
    from handzoo.plugins import get_registry

    size = get_registry().get("model", name).default_cfg.get("image_size", 128)  # 224 for MediaPipe's
    assert model.preprocessing["input_size"] == (3, size, size)
    assert len(model.preprocessing["mean"]) == 3


def test_resnet_family_is_registered_in_natural_order():
    plain = [n for n in handzoo.list_models("resnet*") if "-" not in n]
    assert plain == ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
    assert handzoo.list_backbones("resnet1*") == ["resnet18", "resnet101", "resnet152"]
    assert "direct" in handzoo.list_heads()


def test_models_are_the_named_timm_trunks():
    import timm

    for name in ("resnet18", "resnet50"):
        ours = handzoo.create_model(name).backbone.trunk
        ref = timm.create_model(name, num_classes=0)
        assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in ref.parameters())


def test_direct_head_is_pool_linear_reshape_root_relative():
    torch.manual_seed(0)
    head = handzoo.create_head("direct", 8, output_scale=1.0)
    feats = torch.randn(3, 8, 2, 2)
    out = head(feats).joints3d
    # Independent reference: the same computation written out by hand.
    flat = feats.mean(dim=(2, 3)) @ head.fc.weight.T + head.fc.bias
    ref = flat.view(3, 21, 3)
    torch.testing.assert_close(out, ref - ref[:, :1])


def test_backbone_loads_imagenet_weights_from_a_local_file(tmp_path):
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(1)
    ref = timm.create_model("resnet18", num_classes=1000)
    path = tmp_path / "resnet18_imagenet.safetensors"
    save_file(ref.state_dict(), str(path))
    model = handzoo.create_model("resnet18", backbone_weights=str(path))
    trunk = model.backbone.trunk.state_dict()
    for key, value in trunk.items():
        torch.testing.assert_close(value, ref.state_dict()[key], rtol=0, atol=0)
    with pytest.raises(UsageError, match="does not exist"):
        handzoo.create_model("resnet18", backbone_weights=str(tmp_path / "missing.pth"))


def test_bad_names_and_options_give_clear_errors():
    with pytest.raises(UnknownNameError, match="did you mean 'resnet101'"):
        handzoo.create_model("resnet1011")
    with pytest.raises(ConfigError, match="has no option 'depth'; its options are: backbone, head"):
        handzoo.create_model("resnet18", depth=3)
    with pytest.raises(UnknownNameError, match="unknown timm architecture 'resnet_nope'"):
        handzoo.create_model("timm/resnet_nope")
    with pytest.raises(UsageError, match="no published handzoo weights"):
        handzoo.create_model("resnet18", pretrained=True)


def test_any_registered_backbone_combines_with_a_head():
    model = handzoo.create_model("resnet18", backbone="resnet34")
    assert model.backbone.arch == "resnet34"


@pytest.mark.parametrize("name", ["resnet18", "resnet50-mano"])
def test_head_runs_in_float32_under_bf16_autocast(name):
    """Only the backbone is autocast: the head sees float32 features and gives float32 joints
    equal to running it by hand on those features (bf16 would round 10 cm to ~0.4 mm steps)."""
    torch.manual_seed(0)
    model = handzoo.create_model(name).eval()
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        features = model.backbone(images)
        out = model(images)
    assert features.dtype == torch.bfloat16
    assert out.joints3d.dtype == torch.float32
    with torch.no_grad():
        expected = model.head(features.float()).joints3d
    torch.testing.assert_close(out.joints3d, expected, rtol=0, atol=0)
