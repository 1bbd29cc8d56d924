"""MANO targets follow the augmentation: a rotated sample's parameters pose the rotated hand.

The reference is the hand layer itself (the real MANO layer on a fixture
model, and the licence-free kinematic hand): driven by the augmented
sample's target parameters it must reproduce the augmented joints3d.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from handzoo.data.augment import Pipeline
from handzoo.plugins import get_registry
from tests.mano_fixture import write_mano_files


def _augmenter(name: str, **params):
    return get_registry().create("augmenter", name, **params)


def _layer(kind: str, tmp_path):
    if kind == "mano":
        from handzoo_mano import ManoLayer

        return ManoLayer(write_mano_files(tmp_path / "mano"))
    from handzoo_mano import KinematicHand

    return KinematicHand()


def _posed(layer, mano: np.ndarray) -> np.ndarray:
    """Root-relative joints (21,3) of the layer driven by FreiHAND-style parameters (61,)."""
    p = torch.as_tensor(np.asarray(mano, np.float64), dtype=torch.float32)[None]
    out = layer(p[:, :3], p[:, 3:48], p[:, 48:58])
    joints = out.joints[0].double().numpy()
    return joints - joints[:1]


def _sample(layer, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    mano = np.zeros(61, np.float32)
    mano[:3] = rng.normal(0, 0.8, 3)
    mano[3:48] = rng.normal(0, 0.3, 45)
    mano[48:58] = rng.normal(0, 0.5, 10)
    mano[58:60] = (30.0, 34.0)
    mano[60] = 1.0
    joints = _posed(layer, mano) + np.array([0.01, -0.02, 0.6])
    K = np.array([[150.0, 0, 32.0], [0, 150.0, 32.0], [0, 0, 1]])
    return {
        "image": rng.integers(0, 255, (64, 64, 3), dtype=np.uint8),
        "mask": None,
        "joints3d": joints,
        "K": K,
        "mano": mano,
        "mano_valid": True,
    }


@pytest.mark.parametrize("kind", ["kinematic", "mano"])
def test_rotated_mano_parameters_pose_the_rotated_joints(kind, tmp_path):
    layer = _layer(kind, tmp_path)
    for seed in range(3):
        sample = _sample(layer, seed)
        out = _augmenter("rotate", p=1.0, degrees=180)(sample, np.random.default_rng(seed))
        assert out["mano_valid"] is True
        moved = out["joints3d"] - out["joints3d"][:1]
        assert np.abs(moved - (sample["joints3d"] - sample["joints3d"][:1])).max() > 5e-3  # it did rotate
        # float32 parameters through a float32 layer: about 1e-6 m
        np.testing.assert_allclose(_posed(layer, out["mano"]), moved, atol=2e-5)
        np.testing.assert_array_equal(out["mano"][3:58], sample["mano"][3:58])  # finger pose and shape kept


def test_fused_pipeline_rotation_and_uv_root_follow_the_image(tmp_path):
    from handzoo.geometry import project

    layer = _layer("kinematic", tmp_path)
    sample = _sample(layer, 7)
    # the uv root is the wrist's pixel: it must stay the projection of the augmented wrist
    sample["mano"][58:60] = project(sample["joints3d"][:1], sample["K"])[0]
    pipe = Pipeline([_augmenter("rotate", p=1.0), _augmenter("scale", p=1.0, scale=(1.3, 1.3))])
    out = pipe(sample, np.random.default_rng(3), (32, 32))
    moved = out["joints3d"] - out["joints3d"][:1]
    np.testing.assert_allclose(_posed(layer, out["mano"]), moved, atol=2e-5)
    np.testing.assert_allclose(out["mano"][58:60], project(out["joints3d"][:1], out["K"])[0], atol=1e-3)


def test_flip_invalidates_the_parameters_and_the_loss_leaves_them_out(tmp_path):
    from handzoo_mano.losses import mano_terms

    from handzoo.output import HandOutput

    layer = _layer("kinematic", tmp_path)
    sample = _sample(layer, 1)
    out = _augmenter("flip", p=1.0)(sample, np.random.default_rng(0))
    assert out["mano_valid"] is False

    torch.manual_seed(0)
    pred = HandOutput(
        joints3d=torch.randn(2, 21, 3) * 0.03, mano_pose=torch.randn(2, 48), mano_shape=torch.randn(2, 10)
    )
    mano = torch.randn(2, 61)
    batch = {"joints3d": torch.randn(2, 21, 3), "mano": mano, "mano_valid": torch.tensor([True, False])}
    both = mano_terms(pred, batch)
    first_only = mano_terms(
        HandOutput(joints3d=pred.joints3d[:1], mano_pose=pred.mano_pose[:1], mano_shape=pred.mano_shape[:1]),
        {"joints3d": batch["joints3d"][:1], "mano": mano[:1]},
    )
    torch.testing.assert_close(both["mano_pose"], first_only["mano_pose"])
    torch.testing.assert_close(both["mano_shape"], first_only["mano_shape"])
    none = mano_terms(pred, {**batch, "mano_valid": torch.tensor([False, False])})
    assert float(none["mano_pose"]) == 0.0 and float(none["mano_shape"]) == 0.0  # they contribute nothing
