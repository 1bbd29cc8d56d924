"""``mediapipe-hand-lift``: the perspective lift of screen landmarks, and the published weights.

The lift is checked against its derivation (exact for landmarks made by
projecting a known 3D hand); the published file against its catalogue entry
and, where the real development photos are beside the checkout, against the
real-photo figure the catalogue states.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from handzoo_blaze.lift import default_camera, lift_screen, skeleton_length

import handzoo

REAL_PHOTOS = Path(__file__).resolve().parents[1].parent / "shared/real_hands_dev/data/real_world_testset"


def _hand(batch: int, seed: int = 0) -> torch.Tensor:
    """(B,21,3) camera-frame joints in metres: a rough hand 0.4-0.6 m in front of the camera."""
    g = torch.Generator().manual_seed(seed)
    joints = torch.randn(batch, 21, 3, generator=g, dtype=torch.float64) * 0.04
    return (
        joints
        + torch.tensor([0.02, -0.01, 0.5], dtype=torch.float64)
        + 0.1 * torch.rand(batch, 1, 3, generator=g)
    )


@pytest.mark.parametrize("depth_scale", [1.0, 3.05])
def test_the_lift_inverts_a_perspective_projection_exactly(depth_scale):
    joints = _hand(4)
    K = torch.tensor([[600.0, 0, 110], [0, 640.0, 118], [0, 0, 1]], dtype=torch.float64).expand(4, 3, 3)
    uv = torch.einsum("bij,bnj->bni", K, joints)
    uv = uv[..., :2] / uv[..., 2:]
    root_z = joints[:, :1, 2]
    # The network's relative depth: (Z - Zr) * f / Zr in pixels, divided by its depth scale.
    z = (joints[..., 2] - root_z) * K[:, 0, 0, None] / root_z / depth_scale
    screen = torch.cat([uv, z[..., None]], dim=-1)
    lifted = lift_screen(screen, K, depth_scale)
    expected = (joints - joints[:, :1]) * (K[:, 0, 0, None, None] / root_z[..., None])
    np.testing.assert_allclose(lifted.numpy(), expected.numpy(), rtol=1e-9, atol=1e-9)


def test_skeleton_length_is_the_sum_of_the_twenty_bones():
    joints = torch.zeros(1, 21, 3)
    joints[0, 1:, 0] = torch.arange(1, 21, dtype=torch.float32)  # every joint on the x axis
    from handzoo.joints import BONES

    expected = sum(abs(c - p) for p, c in BONES)
    assert float(skeleton_length(joints)) == pytest.approx(expected)


def test_the_default_camera_spans_the_default_field_of_view():
    K = default_camera(2, 224, 224, torch.zeros(1))
    assert K.shape == (2, 3, 3)
    assert math.degrees(2 * math.atan(112 / float(K[0, 0, 0]))) == pytest.approx(20.0)


def test_the_model_is_sized_as_the_world_landmarks_and_root_relative():
    model = handzoo.create_model("mediapipe-hand-lift", depth_scale=2.0).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 224, 224))
    assert torch.equal(out.joints3d[:, 0], torch.zeros(2, 3))
    np.testing.assert_allclose(
        skeleton_length(out.joints3d).numpy(),
        skeleton_length(out.extras["world_joints3d"]).numpy(),
        rtol=1e-5,
    )


def test_the_published_weights_ship_with_the_package_and_load():
    from handzoo.pull import pull

    entry, path = pull("mediapipe-hand-lift")  # beside the plugin's catalogue: no download
    assert entry.url.startswith("file://") and path.is_file() and path.parent.name == "handzoo_blaze"
    model = handzoo.create_model("mediapipe-hand-lift", pretrained=True)
    assert float(model.depth_scale) == pytest.approx(3.05)
    assert model.handzoo_weights == "mediapipe-hand-lift:synthetic-fit"


@pytest.mark.skipif(
    not REAL_PHOTOS.is_dir(), reason="the real development photos are not beside this checkout"
)
def test_the_published_model_scores_what_its_catalogue_says_on_the_real_photos(tmp_path):
    """Evaluation only: the photos are read, never trained on or written anywhere."""
    from handzoo.cli import main
    from handzoo.zoo.hub import weight_entry

    out = tmp_path / "metrics.json"
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "eval",
                "mediapipe-hand-lift",
                "--pretrained",
                "--data",
                "ge-realworld",
                "--data-root",
                str(REAL_PHOTOS),
                "--device",
                "cpu",
                "--out",
                str(out),
            ]
        )
    assert stop.value.code == 0
    import json

    found = json.loads(out.read_text())["pa_mpjpe_mm"]
    stated = weight_entry("mediapipe-hand-lift").metrics["ge-realworld"]["eval"]["pa_mpjpe_mm"]
    assert found == pytest.approx(stated, abs=0.02)
    assert found <= 10.0
