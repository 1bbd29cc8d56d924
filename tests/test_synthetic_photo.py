"""The photo-like generator (synth3) and the generator versions.

References are independent of the renderer: ray-sphere intersections solved
by hand, luminance read along the projected finger axes, files written by the
other version compared byte for byte, and a digest of synth2's labels
recorded before synth3 existed.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from handzoo.data.synthetic import (
    GENERATOR_VERSION,
    GENERATORS,
    generate_freihand,
    sample_hand,
    sampler,
    synthetic_root,
)
from handzoo.data.synthetic.background import sample_background
from handzoo.data.synthetic.generator import MB_PER_SAMPLE
from handzoo.data.synthetic.pose_prior import PALM_TO_CAMERA, grip_pose, sample_view
from handzoo.data.synthetic.primitives import HAND_LABELS, OCCLUDER, Primitives, build_hand
from handzoo.data.synthetic.raster import part_labels, rasterize
from handzoo.data.synthetic.rooms import sample_room
from handzoo.data.synthetic.skeleton import forward_kinematics, mean_shape, rot_y
from handzoo.errors import UsageError
from handzoo.geometry import project

BACK_VIEW = PALM_TO_CAMERA @ rot_y(np.array(np.pi))
NO_PROPS = {"occluder_prob": 0.0, "object_prob": 0.0}


def _straight_pose() -> np.ndarray:
    angles = np.zeros((5, 3, 3))
    angles[0, 0, 1] = np.deg2rad(-20.0)
    return angles


# --- versions --------------------------------------------------------------------------------


def _label_digest(version: str) -> str:
    """Digest of three samples' labels (rounded to the micrometre) and part maps."""
    digest = hashlib.sha256()
    for i in range(3):
        s = sample_hand(np.random.default_rng([5, 0, i]), 64, version=version)
        for key in ("joints3d", "K", "angles", "rotation"):
            digest.update(np.round(s[key].astype(np.float64), 6).tobytes())
        digest.update(s["parts"].tobytes())
    return digest.hexdigest()[:16]


def _image_means(version: str) -> np.ndarray:
    """(3,3) per-channel means of the same three samples' images."""
    return np.array(
        [
            sample_hand(np.random.default_rng([5, 0, i]), 64, version=version)["image"].reshape(-1, 3).mean(0)
            for i in range(3)
        ]
    )


# Recorded when each version was released: a version's output never changes. (The label
# digests are the same under numpy 1.26 and 2.x; image means are compared to 0.5 levels,
# which survives rounding differences between library versions.)
RELEASED = {
    "synth2": ("04d7666d41d3ba8a", [[93.82, 59.12, 112.71], [137.87, 82.09, 131.53], [87.38, 132.88, 78.84]]),
    "synth3": (
        "041b0241d16036f3",
        [[182.12, 164.74, 161.55], [103.47, 79.76, 80.97], [113.67, 104.34, 73.92]],
    ),
}


@pytest.mark.parametrize("version", sorted(RELEASED))
def test_every_version_stays_reproducible_by_name(version):
    digest, means = RELEASED[version]
    assert _label_digest(version) == digest
    np.testing.assert_allclose(_image_means(version), np.array(means), atol=0.5)


def test_synth3_is_the_default_and_differs_from_synth2():
    assert GENERATOR_VERSION == "synth3"
    assert set(RELEASED) == set(GENERATORS) == set(MB_PER_SAMPLE)
    two = sample_hand(np.random.default_rng(1), 64, version="synth2")
    three = sample_hand(np.random.default_rng(1), 64)
    assert not np.array_equal(two["image"], three["image"])


def test_an_unknown_version_is_a_one_line_error(tmp_path):
    with pytest.raises(
        UsageError, match=r"unknown synthetic generator version 'synth9'; choose one of synth2, synth3"
    ):
        sampler("synth9")
    with pytest.raises(UsageError, match="synth9"):
        generate_freihand(tmp_path / "x", num=1, version="synth9", progress=False)
    assert not (tmp_path / "x").exists()


def test_each_version_writes_its_own_dataset(tmp_path):
    roots = {}
    for version in ("synth2", "synth3"):
        roots[version] = generate_freihand(
            tmp_path / version, num=2, seed=4, workers=1, progress=False, image_size=32, version=version
        )
        meta = (roots[version] / "synthetic.json").read_text()
        assert f'"version": "{version}"' in meta
    first = {v: (root / "training" / "rgb" / "00000000.jpg").read_bytes() for v, root in roots.items()}
    assert first["synth2"] != first["synth3"]
    # The same version and seed give the same bytes.
    for version, data in first.items():
        again = generate_freihand(
            tmp_path / f"again-{version}",
            num=2,
            seed=4,
            workers=1,
            progress=False,
            image_size=32,
            version=version,
        )
        assert (again / "training" / "rgb" / "00000000.jpg").read_bytes() == data
    assert synthetic_root(5, version="synth2", home=tmp_path).name == "synth2-n5-s0"
    assert synthetic_root(5, home=tmp_path).name == "synth3-n5-s0"


# --- props: exact labels in the hand's z-buffer ---------------------------------------------


def _hand_in_camera(rotation: np.ndarray) -> tuple[Primitives, np.ndarray, np.ndarray]:
    joints, frames = forward_kinematics(_straight_pose(), mean_shape())
    hand = build_hand(joints, frames, mean_shape())
    t = np.array([0.0, 0.09, 0.5])  # the palm's centre on the optical axis, 0.5 m away
    K = np.array([[200.0, 0.0, 48.0], [0.0, 200.0, 48.0], [0.0, 0.0, 1.0]])
    return hand.transformed(rotation, t), joints @ rotation.T + t, K


def test_a_ball_in_front_hides_exactly_what_it_covers_and_is_not_hand():
    size = 96
    hand, joints3d, K = _hand_in_camera(PALM_TO_CAMERA)
    centre, radius = joints3d[9] + np.array([0.004, 0.003, -0.02]), 0.018  # in front of the palm
    ball = Primitives.ellipsoids(centre, np.eye(3), np.full(3, radius))
    both = Primitives.join(hand, ball)
    parts = part_labels(both, rasterize(both, K, size))
    hand_depth = rasterize(hand, K, size).depth
    # Reference: the ray through each pixel centre meets the sphere at the smaller root of
    # |t d - c|^2 = r^2 (t is the depth, d = (x, y, 1)).
    v, u = np.mgrid[0:size, 0:size] + 0.5
    d = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    a, b, c = (d * d).sum(-1), (d @ centre), centre @ centre - radius**2
    disc = b * b - a * c
    hit = disc > 0
    depth = np.where(hit, (b - np.sqrt(np.maximum(disc, 0.0))) / a, np.inf)
    ball_wins = hit & (depth < hand_depth)
    with np.errstate(invalid="ignore"):  # inf - inf where neither is hit
        clear = ~(np.abs(depth - hand_depth) <= 1e-4)  # not on the (float32) tie between the two
    np.testing.assert_array_equal((parts == OCCLUDER)[clear], ball_wins[clear])
    assert ball_wins.sum() > 50 and (ball_wins & np.isfinite(hand_depth)).sum() > 50
    # Behind the ball the hand is hidden; elsewhere it is labelled as without the ball.
    alone = part_labels(hand, rasterize(hand, K, size))
    np.testing.assert_array_equal(parts[~ball_wins & clear], alone[~ball_wins & clear])


@pytest.mark.parametrize("seed", range(4))
def test_held_objects_are_in_the_hand_and_out_of_the_mask(seed):
    # object_prob=1 and no forearm (so no sleeve): every occluder pixel is the held object.
    # It is there, it touches the hand (held, not floating), the mask is the visible hand
    # (labels 1-7) without it, and joints2d stays the projection of joints3d.
    s = sample_hand(
        np.random.default_rng(40 + seed), 96, object_prob=1.0, occluder_prob=0.0, forearm_prob=0.0
    )
    hand = np.isin(s["parts"], HAND_LABELS)
    held = s["parts"] == OCCLUDER
    np.testing.assert_array_equal(s["mask"] == 255, hand)
    assert held.sum() > 30
    grown = held.copy()
    grown[1:] |= held[:-1]
    grown[:-1] |= held[1:]
    grown[:, 1:] |= held[:, :-1]
    grown[:, :-1] |= held[:, 1:]
    assert (grown & hand).sum() > 5, "the object does not touch the hand"
    np.testing.assert_allclose(s["joints2d"], project(s["joints3d"], s["K"]), atol=1e-3)


def test_grip_poses_close_around_the_object():
    rng = np.random.default_rng(0)
    curls = {
        g: np.mean([grip_pose(rng, g)[1:, :2, 0].mean() for _ in range(50)]) for g in ("cylinder", "sphere")
    }
    assert curls["cylinder"] > curls["sphere"] > np.deg2rad(25)
    with pytest.raises(ValueError, match="unknown grip"):
        grip_pose(rng, "cube")


def test_sleeves_never_cover_the_wrist():
    for seed in range(30):
        s = sample_hand(np.random.default_rng(500 + seed), 64, forearm_prob=1.0, **NO_PROPS)
        (u, v) = s["joints2d"][0]
        if 0 <= u < 64 and 0 <= v < 64:
            assert s["mask"][int(v), int(u)] == 255, f"seed {500 + seed}: the wrist is not skin"


def test_views_favour_palm_and_back_over_edge_on():
    # The palm's normal (hand +z) in the camera: toward (-z) or away from the camera
    # much more often than edge-on, unlike a uniform rotation (|cos| uniform on 0..1).
    rng = np.random.default_rng(3)
    cos = np.array([sample_view(rng)[2, 2] for _ in range(4000)])
    edge_on = np.mean(np.abs(cos) < 0.3)
    assert edge_on < 0.2, edge_on
    assert 0.35 < np.mean(cos < -0.3) < 0.55 and 0.35 < np.mean(cos > 0.3) < 0.6


# --- the look --------------------------------------------------------------------------------


def _deepest_dip(version: str, seed: int, rotation: np.ndarray) -> float:
    """Deepest local darkening along the index..little fingers' axes (MCP to DIP), over
    the profile's median: a groove between segments is a narrow dark dip."""
    extra = NO_PROPS if version == "synth3" else {"occluder_prob": 0.0}
    s = sample_hand(
        np.random.default_rng(seed),
        224,
        version=version,
        angles=_straight_pose(),
        rotation=rotation,
        shape=mean_shape(),
        forearm_prob=0.0,
        fill=0.7,
        **extra,
    )
    luma = s["image"].astype(float) @ np.array([0.299, 0.587, 0.114])
    uv = project(s["joints3d"].astype(np.float64), s["K"].astype(np.float64))
    worst = 0.0
    for f in range(1, 5):
        a, b = uv[1 + 4 * f], uv[3 + 4 * f]
        pts = a + (b - a) * np.linspace(0.1, 0.95, 40)[:, None]
        profile = np.array([luma[int(p[1]), int(p[0])] for p in pts])
        for i in range(8, len(profile) - 9):
            around = min(profile[i - 8 : i - 2].mean(), profile[i + 3 : i + 9].mean())
            worst = max(worst, (around - profile[i]) / np.median(profile))
    return worst


@pytest.mark.parametrize("seed", range(3))
def test_skin_is_continuous_across_the_finger_joints(seed):
    # synth2's palm side shows a dark groove at every joint (a third darker); synth3's
    # skin runs on with at most a shallow crease.
    for rotation in (PALM_TO_CAMERA, BACK_VIEW):
        assert _deepest_dip("synth3", seed, rotation) < 0.12
    assert _deepest_dip("synth2", seed, PALM_TO_CAMERA) > 0.2


def test_rooms_are_smoother_than_synth2_textures():
    # Mean absolute difference between neighbouring pixels of the backgrounds alone
    # (before the camera's noise): out-of-focus rooms against synth2's checkers,
    # stripes and value noise.
    def roughness(draw) -> float:
        return float(
            np.mean(
                [
                    np.abs(
                        np.diff(draw(np.random.default_rng(i), 96, np.ones(3)).astype(float).mean(-1), axis=1)
                    ).mean()
                    for i in range(30)
                ]
            )
        )

    assert roughness(sample_room) < 0.6 * roughness(sample_background)


def test_the_synthetic_dataset_takes_a_generator_version(tmp_path, monkeypatch):
    import handzoo

    monkeypatch.setenv("HANDZOO_HOME", str(tmp_path))
    ds = handzoo.create_dataset(
        "synthetic", generator="synth2", num=3, num_eval=1, image_size=32, val_fraction=0.34
    )
    assert (tmp_path / "synthetic" / "synth2-n3-s0-e1" / "synthetic.json").is_file()
    assert len(ds) == 2
    with pytest.raises(UsageError, match="synth9"):
        handzoo.create_dataset("synthetic", generator="synth9", num=3, num_eval=1)


def test_runs_on_the_embedded_set_record_the_generator_version():
    from handzoo.publish import describe_training_data
    from handzoo.runner.plan import resolve_config

    cfg, _ = resolve_config("resnet18", {}, [])
    assert cfg.data.options["generator"] == GENERATOR_VERSION
    cfg, _ = resolve_config("resnet18", {}, ["data.options.generator=synth2"])
    assert cfg.data.options["generator"] == "synth2"
    _, line = describe_training_data(cfg.model_dump(mode="json")["data"])
    assert "generator synth2, seed 0" in line
