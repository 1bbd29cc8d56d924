"""Image-space heads: the 2.5D lift is exact, the soft-argmax finds peaks, and the heads train and export.

References: the round trip joints3d -> (u, v, relative depth, bone) -> joints3d
for arbitrary K (identity within 1e-6 m), hand-placed peaks in the heatmaps
(the expectation of a near-delta distribution is its cell centre), and the
exported files against PyTorch.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from handzoo_heads.image_space import default_K, from_25d, to_25d

import handzoo
from handzoo.data.synthetic import sample_hand
from handzoo.errors import ConfigError
from handzoo.losses import build_training_loss

HEADS = {
    "heatmap25d": {},
    "integral": {"depth_bins": 8},
    "direct-2.5d": {"target": "2.5d"},
}


def _hands(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    samples = [sample_hand(rng, image_size=64) for _ in range(n)]
    joints = torch.tensor(np.stack([s["joints3d"] for s in samples]), dtype=torch.float64)
    K = torch.tensor(np.stack([s["K"] for s in samples]), dtype=torch.float64)
    return joints, K


def _head(name: str):
    return ("direct" if name.startswith("direct") else name), dict(HEADS[name])


def test_the_25d_lift_is_exact_for_any_camera():
    joints, K = _hands(32)
    rng = np.random.default_rng(1)
    odd = K.clone()
    odd[:, 0, 0] *= torch.tensor(rng.uniform(0.5, 2.0, 32))
    odd[:, 1, 1] *= torch.tensor(rng.uniform(0.5, 2.0, 32))
    odd[:, 0, 1] = torch.tensor(rng.uniform(-5, 5, 32))  # skew
    odd[:, 1, 0] = torch.tensor(rng.uniform(-0.2, 0.2, 32))  # a rotated camera's K (augmentation)
    odd[:, :2, 2] += torch.tensor(rng.uniform(-20, 20, (32, 2)))
    for cam in (K, odd):
        uv, zr, s = to_25d(joints, cam)
        back, root_depth = from_25d(uv, zr, cam, s)
        assert float((back - joints).abs().max()) < 1e-6
        assert float((root_depth - joints[:, 0, 2]).abs().max()) < 1e-6
        # uv is FreiHAND's projection
        ref = np.einsum("bij,bnj->bni", cam.numpy(), joints.numpy())
        np.testing.assert_allclose(uv.numpy(), ref[..., :2] / ref[..., 2:], atol=1e-9)
    degenerate, _ = from_25d(torch.zeros(2, 21, 2), torch.zeros(2, 21), K[:2].float(), torch.full((2,), 0.04))
    assert torch.isfinite(degenerate).all()


def _identity_conv(conv: torch.nn.Conv2d) -> None:
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        for c in range(conv.out_channels):
            conv.weight[c, c, 0, 0] = 1.0


def test_heatmap_soft_argmax_and_depth_maps_read_a_placed_peak():
    from handzoo_heads.image_heads import Heatmap25DHead

    head = Heatmap25DHead(42, upsample=0)
    _identity_conv(head.maps)
    feats = torch.full((1, 42, 8, 8), -30.0)
    rows, cols = np.random.default_rng(2).integers(0, 8, (2, 21))
    for j in range(21):
        feats[0, j, rows[j], cols[j]] = 30.0  # a near-delta heatmap
        feats[0, 21 + j] = 0.1 * j  # a constant depth map
    with torch.no_grad():
        uv, zr, _ = head.predict_25d(feats, (64, 64))
    np.testing.assert_allclose(uv[0, :, 0].numpy(), (cols + 0.5) * 8, atol=1e-6)
    np.testing.assert_allclose(uv[0, :, 1].numpy(), (rows + 0.5) * 8, atol=1e-6)
    np.testing.assert_allclose(zr[0].numpy(), 0.1 * np.arange(21), atol=1e-6)


def test_integral_head_reads_a_placed_peak_in_its_volume():
    from handzoo_heads.image_heads import IntegralHead

    bins = 4
    head = IntegralHead(21 * bins, depth_bins=bins, depth_range=3.0, upsample=0)
    _identity_conv(head.volume)
    feats = torch.full((1, 21 * bins, 4, 4), -30.0)
    rng = np.random.default_rng(3)
    d, r, c = rng.integers(0, bins, 21), rng.integers(0, 4, 21), rng.integers(0, 4, 21)
    for j in range(21):
        feats[0, j * bins + d[j], r[j], c[j]] = 30.0
    with torch.no_grad():
        uv, zr, _ = head.predict_25d(feats, (32, 32))
    np.testing.assert_allclose(uv[0].numpy(), np.stack([(c + 0.5) * 8, (r + 0.5) * 8], -1), atol=1e-6)
    np.testing.assert_allclose(zr[0].numpy(), np.linspace(-3, 3, bins)[d], atol=1e-6)


@pytest.mark.parametrize("name", list(HEADS))
def test_heads_lift_exactly_train_and_fall_back_to_the_default_camera(name, caplog):
    head, cfg = _head(name)
    torch.manual_seed(0)
    model = handzoo.create_model("resnet18", head=head, head_cfg=cfg, image_size=64)
    joints, K = _hands(4, seed=5)
    images = torch.randn(4, 3, 64, 64)
    out = model(images, K=K.float())
    assert out.joints3d.shape == (4, 21, 3) and out.joints2d.shape == (4, 21, 2)
    assert torch.equal(out.joints3d[:, 0], torch.zeros(4, 3))
    # joints2d is the projection of the lifted joints: the lift is exact perspective
    camera_frame = (out.joints3d + out.extras["root"][:, None]).detach()
    uvw = camera_frame.double() @ K.transpose(1, 2)
    projected = (uvw[..., :2] / uvw[..., 2:]).numpy()
    np.testing.assert_allclose(projected, out.joints2d.detach().double().numpy(), atol=2e-3)

    batch = {"joints3d": joints.float(), "K": K.float()}
    terms = build_training_loss(model, "l1")(out, batch)
    expected = {"loss", "joints", "uv", "depth", "scale"} | ({"heatmap"} if name == "heatmap25d" else set())
    assert set(terms) == expected and all(torch.isfinite(v) for v in terms.values())
    terms["loss"].backward()
    assert model.backbone.trunk.conv1.weight.grad.abs().sum() > 0
    assert model.head.scale.weight.grad is not None

    with caplog.at_level(logging.WARNING, logger="handzoo"):
        model(images)
        model(images)
    said = [r for r in caplog.records if "no camera K given" in r.getMessage()]
    assert len(said) == 1  # said once


def test_unknown_target_and_options_are_one_line_errors():
    with pytest.raises(ConfigError, match="target='uvd' is unknown; use one of camera, 2.5d"):
        handzoo.create_head("direct", 64, target="uvd")
    with pytest.raises(ConfigError, match="has no option 'sigma'"):
        handzoo.create_head("heatmap25d", 64, sigma=2)
    with pytest.raises(ConfigError, match="this head's terms are uv, depth, scale, heatmap"):
        handzoo.create_head("heatmap25d", 64, loss_weights={"joints": 1.0})


def test_default_camera_is_the_predictors():
    from handzoo.inference.camera import default_K as predictor_K

    K = default_K(64, 64, 20.0, torch.zeros(1, dtype=torch.float64))
    np.testing.assert_allclose(K.numpy(), predictor_K((0, 0, 64, 64), 20.0), atol=1e-9)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_image_space_models_export_with_parity(tmp_path, fmt):
    from handzoo.export_formats import export_model, run_exported

    torch.manual_seed(4)
    model = handzoo.create_model("resnet18", head="heatmap25d", head_cfg={"neck_channels": 32}, image_size=64)
    model.eval()
    report = export_model(model, tmp_path / f"hm.{fmt}", fmt)
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    (joints,) = run_exported(report.path, x.numpy())
    with torch.inference_mode():
        ref = model(x).joints3d.numpy()
    np.testing.assert_allclose(joints, ref, atol=1e-4, rtol=0)


def test_predictor_draws_the_heads_own_2d_joints():
    """The Predictor passes the crop's camera and reports the head's joints2d and wrist placement."""
    from handzoo.inference.camera import default_K as predictor_K

    torch.manual_seed(6)
    model = handzoo.create_model("resnet18", head="heatmap25d", head_cfg={"neck_channels": 16}, image_size=64)
    predictor = handzoo.Predictor(model, device="cpu")
    image = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    [hand] = predictor.predict(image)
    K = torch.tensor(predictor_K((0.0, 0.0, 64.0, 64.0), predictor.fov_deg), dtype=torch.float32)[None]
    with torch.inference_mode():
        out = model.eval()(predictor.normalise(image[None]), K=K)
    np.testing.assert_allclose(hand.joints2d, out.joints2d[0].numpy(), atol=1e-3)
    np.testing.assert_allclose(hand.translation, out.extras["root"][0].numpy(), atol=1e-5)


def test_heads_work_on_any_timm_cnn_and_finer_backbone_maps():
    torch.manual_seed(7)
    model = handzoo.create_model(
        "timm/convnext_atto", head="integral", feature_stride=16, head_cfg={"upsample": 1, "depth_bins": 4}
    )
    assert model.backbone.num_features == 160 and model.handzoo_metadata["feature_stride"] == 16
    out = model(torch.randn(2, 3, 64, 64))
    assert out.joints3d.shape == (2, 21, 3) and out.extras["zr"].shape == (2, 21)
    with pytest.raises(handzoo.UsageError, match="feature_stride=12 is not one of its stages' strides"):
        handzoo.create_model("resnet18", feature_stride=12)
