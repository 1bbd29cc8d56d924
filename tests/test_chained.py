"""The chained-encoder model (the seed's pipelined ResNets): shapes, root-relative joints, gradients."""

from __future__ import annotations

import pytest
import torch

import handzoo
from handzoo.errors import ConfigError
from handzoo.losses import build_training_loss


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads; OpenMP spin-waiting on busy shared cores costs 10-50x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _stage_grads(model) -> list[float]:
    """Gradient norm of the first parameter of every stage, and of every bridge."""
    grads = [next(s.parameters()).grad for s in model.stages]
    grads += [b.project.weight.grad for b in model.bridges]
    return [float(g.norm()) if g is not None else 0.0 for g in grads]


def test_registered_r50_r50_r34_at_64px():
    torch.manual_seed(0)
    model = handzoo.create_model("chained-r50-r50-r34", image_size=64)
    assert [s.arch for s in model.stages] == ["resnet50", "resnet50", "resnet34"]
    # The embedding shrinks after every stage: 3x64x64 image -> 3x32x32 -> 3x16x16 -> 63 joints.
    assert [b.side for b in model.bridges] == [32, 16]
    assert [b.project.out_features for b in model.bridges] == [3 * 32 * 32, 3 * 16 * 16]
    assert model.preprocessing["input_size"] == (3, 64, 64)
    out = model(torch.randn(2, 3, 64, 64))
    assert out.joints3d.shape == (2, 21, 3)
    assert torch.equal(out.joints3d[:, 0], torch.zeros(2, 3))
    gt = torch.randn(2, 21, 3) * 0.03 + torch.tensor([0.0, 0.0, 0.5])
    losses = build_training_loss(model, "l1")(out, {"joints3d": gt})
    torch.testing.assert_close(losses["loss"], (out.joints3d - (gt - gt[:, :1])).abs().mean())
    losses["loss"].backward()
    assert all(g > 0 for g in _stage_grads(model)), _stage_grads(model)


def test_stages_embed_sizes_and_head_are_options():
    torch.manual_seed(0)
    stages = ["resnet18", "resnet18", "resnet18"]
    model = handzoo.create_model("chained-r50-r50-r34", stages=stages, embed_sizes=[24, 12], image_size=48)
    x = torch.randn(3, 3, 48, 48, requires_grad=True)
    out = model(x)
    assert out.joints3d.shape == (3, 21, 3) and torch.equal(out.joints3d[:, 0], torch.zeros(3, 3))
    out.joints3d.abs().sum().backward()
    # One loss reaches the input image through every stage and bridge.
    assert all(g > 0 for g in _stage_grads(model)) and x.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="embed_sizes"):
        handzoo.create_model("chained-r50-r50-r34", stages=["resnet18", "resnet18"], embed_sizes=[8, 4])
    with pytest.raises(ConfigError, match="at least 2 stages"):
        handzoo.create_model("chained-r50-r50-r34", stages=["resnet18"])


def test_chained_model_with_the_mano_head_uses_its_loss(monkeypatch):
    monkeypatch.delenv("HANDZOO_MANO_DIR", raising=False)
    stages = ["resnet18", "resnet18"]
    model = handzoo.create_model(
        "chained-r50-r50-r34", stages=stages, head="mano", head_cfg={"hidden": 32}, image_size=32
    )
    assert model.handzoo_metadata["hand_model"] == "kinematic"
    out = model(torch.randn(2, 3, 32, 32))
    losses = build_training_loss(model, "l1")(out, {"joints3d": torch.randn(2, 21, 3) * 0.03})
    assert {"joints", "pose_prior", "shape_prior"} <= set(losses)


def _aligned_l1_reference(pred: torch.Tensor, gt: torch.Tensor) -> float:
    """Mean |R s (p - mean p) + mean g - g| with the best proper rotation, one sample at a time (scipy)."""
    import numpy as np
    from scipy.linalg import orthogonal_procrustes

    total = 0.0
    for p, g in zip(pred.double().numpy(), gt.double().numpy(), strict=True):
        pc, gc = p - p.mean(0), g - g.mean(0)
        u, sig, vt = np.linalg.svd(pc.T @ gc)
        d = np.sign(np.linalg.det(u @ vt))
        rot = u @ np.diag([1, 1, d]) @ vt
        scale = (sig * [1, 1, d]).sum() / (pc**2).sum()
        r_scipy, _ = orthogonal_procrustes(pc, gc)
        if np.linalg.det(r_scipy) > 0:
            np.testing.assert_allclose(rot, r_scipy, atol=1e-9)
        total += np.abs(scale * pc @ rot + g.mean(0) - g).mean()
    return total / len(pred)


def test_configured_joint_loss_applies_to_the_chained_encoder():
    """optim.loss=l1_pa used to be ignored: the chained encoder's own L1 replaced it."""
    torch.manual_seed(0)
    model = handzoo.create_model("chained-r50-r50-r34", stages=["resnet18", "resnet18"], image_size=32)
    out = model(torch.randn(3, 3, 32, 32))
    gt = torch.randn(3, 21, 3) * 0.03 + torch.tensor([0.0, 0.0, 0.5])
    rel = gt - gt[:, :1]
    loss = build_training_loss(model, "l1_pa", {"pa_weight": 2.0})
    terms = loss(out, {"joints3d": gt})
    plain = (out.joints3d - rel).abs().mean()
    reference_pa = _aligned_l1_reference(out.joints3d.detach(), rel)
    torch.testing.assert_close(terms["joints_l1"], plain)
    assert float(terms["joints_pa"].detach()) == pytest.approx(reference_pa, rel=1e-5)
    torch.testing.assert_close(terms["loss"], plain + 2.0 * terms["joints_pa"])
    assert loss.describe() == {"joints": {"loss": "l1_pa", "pa_weight": 2.0, "weight": 1.0}}
