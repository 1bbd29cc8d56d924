"""The embedded synthetic hands: skeleton, pose prior, renderer and FreiHAND-layout writer.

References are independent of the code under test: bone angles and lengths
recomputed from joint positions, projections from ``handzoo.geometry.project``,
2D capsule overlaps computed pixel by pixel, files read back with json + PIL.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from handzoo.data import freihand_layout as layout
from handzoo.data.synthetic import (
    GENERATOR_VERSION,
    GENERATORS,
    PART_NAMES,
    ensure_synthetic,
    generate_freihand,
    sample_hand,
)
from handzoo.data.synthetic import generator as generator_module
from handzoo.data.synthetic.pose_prior import (
    PALM_TO_CAMERA,
    sample_pose,
    sample_rotation,
    within_limits,
)
from handzoo.data.synthetic.skeleton import (
    FAN_DEG,
    JOINT_LIMITS,
    forward_kinematics,
    mean_shape,
    rot_x,
    rot_y,
    rot_z,
    sample_shape,
)
from handzoo.errors import UsageError
from handzoo.geometry import project
from handzoo.joints import BONES, CANONICAL, FINGERS

LABEL = {name: i for i, name in enumerate(PART_NAMES)}
VERSIONS = tuple(GENERATORS)
# What keeps a version's picture free of things in front of the hand.
CLEAR = {"synth2": {"occluder_prob": 0.0}, "synth3": {"occluder_prob": 0.0, "object_prob": 0.0}}
PALM_VIEW = PALM_TO_CAMERA
BACK_VIEW = PALM_TO_CAMERA @ rot_y(np.array(np.pi))


def _pixel(uv: np.ndarray) -> tuple[int, int]:
    """(row, col) of the pixel containing the point uv (pixel edges at integers)."""
    return int(np.floor(uv[1])), int(np.floor(uv[0]))


def _straight_pose() -> np.ndarray:
    angles = np.zeros((5, 3, 3))
    angles[0, 0, 1] = np.deg2rad(-20.0)  # thumb away from the palm's centre
    return angles


# --- determinism ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_same_seed_gives_identical_sample_and_other_seed_differs(version):
    a = sample_hand(np.random.default_rng(7), 64, version=version)
    b = sample_hand(np.random.default_rng(7), 64, version=version)
    c = sample_hand(np.random.default_rng(8), 64, version=version)
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    assert not np.array_equal(a["image"], c["image"])
    assert np.abs(a["joints3d"] - c["joints3d"]).max() > 1e-3


@pytest.mark.parametrize("version", VERSIONS)
def test_sample_types_and_shapes(version):
    s = sample_hand(np.random.default_rng(0), 48, version=version)
    assert s["image"].shape == (48, 48, 3) and s["image"].dtype == np.uint8
    assert s["mask"].shape == (48, 48) and s["mask"].dtype == np.uint8
    assert set(np.unique(s["mask"])) <= {0, 255}
    assert s["joints3d"].shape == (21, 3) and s["joints3d"].dtype == np.float32
    assert s["K"].shape == (3, 3) and s["K"].dtype == np.float32
    np.testing.assert_allclose(s["joints2d"], project(s["joints3d"], s["K"]), atol=1e-3)
    # FreiHAND-like camera: focal 400-800 px at 224 (scaled), centre near the middle.
    focal = np.array([sample_hand(np.random.default_rng(i), 48, version=version)["K"][0, 0]
                      for i in range(20)])
    assert np.all((focal * 224 / 48 >= 399.9) & (focal * 224 / 48 <= 800.1))
    assert abs(s["K"][0, 2] - 24) < 2 and abs(s["K"][1, 2] - 24) < 2


# --- geometry on the image -----------------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("seed", range(6))
def test_joints_and_bones_project_onto_the_hand_mask(seed, version):
    size = 128
    s = sample_hand(np.random.default_rng(100 + seed), size, version=version, **CLEAR[version])
    uv = project(s["joints3d"].astype(np.float64), s["K"].astype(np.float64))
    assert np.all(uv >= 0) and np.all(uv < size), "a joint projects outside the image"
    for j, p in enumerate(uv):
        assert s["mask"][_pixel(p)] == 255, f"joint {CANONICAL[j]} is off the mask"
    # Every bone is drawn: its mid-point is on the hand.
    mids = np.array([(s["joints3d"][a] + s["joints3d"][b]) / 2 for a, b in BONES], np.float64)
    for (a, b), p in zip(BONES, project(mids, s["K"].astype(np.float64)), strict=True):
        assert s["mask"][_pixel(p)] == 255, f"bone {CANONICAL[a]}-{CANONICAL[b]} is not drawn"


@pytest.mark.parametrize(("version", "lo", "hi"), [("synth2", 0.55, 0.85), ("synth3", 0.42, 0.76)])
def test_hand_fills_most_of_the_picture(version, lo, hi):
    # The box of palm and fingers spans the version's fill range (synth2 0.65-0.82,
    # synth3 0.5-0.72 of the side; the bounds include the spheres' slack).
    hand = [LABEL["palm"]] + [LABEL[f] for f in FINGERS]
    for seed in range(12):
        s = sample_hand(np.random.default_rng(200 + seed), 64, version=version, **CLEAR[version])
        rows, cols = np.nonzero(np.isin(s["parts"], hand))
        extent = max(np.ptp(rows) + 1, np.ptp(cols) + 1) / 64
        assert lo <= extent <= hi, f"seed {seed}: hand spans {extent:.2f} of the image"
        # Centred: the hand's box centre within 15% of the image centre.
        centre = np.array([(rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2])
        assert np.all(np.abs(centre - 32) < 0.15 * 64)


def _finger_cover(size, K, xyz, finger, radius):
    """Slow reference for one finger: which pixels its (shrunk) phalanges cover, and the
    depth of the nearest phalanx axis there (inf elsewhere)."""
    v, u = np.mgrid[0:size, 0:size] + 0.5
    depth = np.full((size, size), np.inf)
    for j in range(3):
        a, b = xyz[1 + 4 * finger + j], xyz[2 + 4 * finger + j]
        (ua, va), (ub, vb) = project(np.stack([a, b]), K)
        d = np.array([ub - ua, vb - va])
        t = np.clip(((u - ua) * d[0] + (v - va) * d[1]) / (d @ d), 0, 1)
        dist = np.hypot(u - ua - t * d[0], v - va - t * d[1])
        rho = K[0, 0] * radius / (a[2] + t * (b[2] - a[2]))
        z = np.where(dist < rho, a[2] + t * (b[2] - a[2]), np.inf)
        depth = np.minimum(depth, z)
    return depth


@pytest.mark.parametrize("version", VERSIONS)
def test_depth_order_nearer_finger_wins_where_fingers_overlap(version):
    # The index finger crosses over the middle finger, bent slightly toward the palm: seen
    # from the palm it is in front of the middle finger, seen from the back it is behind.
    angles = _straight_pose()
    angles[1, 0, 0] = np.deg2rad(35.0)
    angles[1, 0, 1] = np.deg2rad(-20.0)
    angles[2, 0, 1] = np.deg2rad(20.0)
    size = 96
    winners = {}
    for view, rotation in (("palm", PALM_VIEW), ("back", BACK_VIEW)):
        s = sample_hand(np.random.default_rng(0), size, angles=angles, rotation=rotation, version=version,
                        shape=mean_shape(), occluder_prob=0.0, forearm_prob=0.0, fill=0.8)
        xyz, K = s["joints3d"].astype(np.float64), s["K"].astype(np.float64)
        index, middle = _finger_cover(size, K, xyz, 1, 0.005), _finger_cover(size, K, xyz, 2, 0.005)
        both = np.isfinite(index) & np.isfinite(middle)
        assert both.sum() >= 5, f"{view} view: the fingers do not overlap in the picture"
        expected = np.where(index < middle, LABEL["index"], LABEL["middle"])[both]
        np.testing.assert_array_equal(s["parts"][both], expected, err_msg=f"{view} view")
        winners[view] = set(expected.tolist())
    assert winners == {"palm": {LABEL["index"]}, "back": {LABEL["middle"]}}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("view", ["palm", "back", "tilted"])
def test_each_visible_fingertip_is_labelled_with_its_finger(view, version):
    rotation = {"palm": PALM_VIEW, "back": BACK_VIEW,
                "tilted": rot_z(np.array(0.4)) @ rot_x(np.array(0.5)) @ PALM_VIEW}
    s = sample_hand(np.random.default_rng(1), 96, angles=_straight_pose(), rotation=rotation[view],
                    version=version, occluder_prob=0.0)
    uv = project(s["joints3d"].astype(np.float64), s["K"].astype(np.float64))
    for f, finger in enumerate(FINGERS):
        tip = 4 + 4 * f
        dip_tip_mid = (uv[tip] + uv[tip - 1]) / 2
        assert s["parts"][_pixel(uv[tip])] == LABEL[finger], f"{finger} tip"
        assert s["parts"][_pixel(dip_tip_mid)] == LABEL[finger], f"{finger} distal phalanx"


@pytest.mark.parametrize("version", VERSIONS)
def test_random_poses_show_most_fingertips_with_their_own_label(version):
    hits = total = 0
    for seed in range(10):
        s = sample_hand(np.random.default_rng(300 + seed), 96, version=version, **CLEAR[version])
        uv = project(s["joints3d"].astype(np.float64), s["K"].astype(np.float64))
        for f, finger in enumerate(FINGERS):
            total += 1
            hits += s["parts"][_pixel(uv[4 + 4 * f])] == LABEL[finger]
    assert hits / total >= 0.6, f"only {hits}/{total} fingertips carry their finger's label"


@pytest.mark.parametrize(("version", "least"), [("synth2", 6.0), ("synth3", 4.0)])
@pytest.mark.parametrize("seed", range(3))
def test_palm_and_back_look_different(seed, version, least):
    # Palm skin is lighter and pinker than the back of the hand (lighter still for dark
    # skin): the two sides of one hand, lit the same way, must differ in colour. synth3
    # keeps light skin's palm closer to its back, as real hands are.
    means = {}
    for view, rotation in (("palm", PALM_VIEW), ("back", BACK_VIEW)):
        s = sample_hand(np.random.default_rng(seed), 96, angles=_straight_pose(), version=version,
                        rotation=rotation, occluder_prob=0.0, forearm_prob=0.0)
        palm_pixels = s["parts"] == LABEL["palm"]
        means[view] = s["image"][palm_pixels].astype(float).mean(0)
    assert np.linalg.norm(means["palm"] - means["back"]) > least, means


# --- skeleton and pose prior ---------------------------------------------------------------


def _angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
    return np.arccos(np.clip(cos, -1, 1))


def test_sampled_poses_respect_joint_limits_and_geometry_matches_angles():
    rng = np.random.default_rng(0)
    shape = mean_shape()
    pip, dip = [], []
    for _ in range(400):
        angles = sample_pose(rng)
        assert within_limits(angles)
        assert np.all(angles >= JOINT_LIMITS[..., 0] - 1e-12)
        assert np.all(angles <= JOINT_LIMITS[..., 1] + 1e-12)
        joints, _ = forward_kinematics(angles, shape)
        for f in range(1, 5):
            mcp, pj, dj, tip = joints[1 + 4 * f : 5 + 4 * f]
            # Hinges: the angle between consecutive bones is the flexion.
            np.testing.assert_allclose(_angle(pj - mcp, dj - pj), angles[f, 1, 0], atol=1e-6)
            np.testing.assert_allclose(_angle(dj - pj, tip - dj), angles[f, 2, 0], atol=1e-6)
            # MCP: flexion lifts the bone out of the palm plane; abduction turns it in the plane.
            bone = (pj - mcp) / np.linalg.norm(pj - mcp)
            np.testing.assert_allclose(np.arcsin(bone[2]), angles[f, 0, 0], atol=1e-6)
            if np.cos(angles[f, 0, 0]) > 0.1:  # the in-plane direction of a bone pointing
                in_plane = np.arctan2(bone[0], bone[1])  # straight out of the palm is undefined
                expected = np.deg2rad(FAN_DEG[f]) + angles[f, 0, 1]
                np.testing.assert_allclose(in_plane, expected, atol=1e-6)
            pip.append(angles[f, 1, 0])
            dip.append(angles[f, 2, 0])
    limits = np.rad2deg(JOINT_LIMITS[1:, :, 0])  # (4 fingers, 3 joints, low/high) flexion
    np.testing.assert_allclose(limits, np.broadcast_to([[-15, 90], [0, 110], [0, 80]], limits.shape))
    # DIP follows PIP (coupled tendons) and the prior spans most of each range.
    assert np.corrcoef(pip, dip)[0, 1] > 0.85
    assert np.rad2deg(max(pip)) > 100 and np.rad2deg(min(pip)) < 5


def test_finger_curls_are_correlated_but_not_identical():
    rng = np.random.default_rng(1)
    curls = np.array([sample_pose(rng)[1:, 1, 0] for _ in range(600)])  # PIP flexion per finger
    corr = np.corrcoef(curls.T)[np.triu_indices(4, 1)]
    assert corr.min() > 0.3, "fingers should curl together (shared grasp)"
    assert corr.max() < 0.95, "fingers should also move on their own"
    # A continuum, not a few gestures: many distinct curl levels.
    assert len(np.unique(np.round(np.rad2deg(curls[:, 1]), 0))) > 80


def test_bone_lengths_and_hand_sizes_are_anatomical():
    rng = np.random.default_rng(2)
    lengths = []
    for _ in range(200):
        shape = sample_shape(rng)
        joints, _ = forward_kinematics(np.zeros((5, 3, 3)), shape)
        wrist_to_middle_tip = np.linalg.norm(joints[12] - joints[0])
        assert 0.15 <= wrist_to_middle_tip <= 0.23  # adult hand length, metres
        scale = np.linalg.norm(joints[9] - joints[10])  # FreiHAND's bone scale
        assert 0.035 <= scale <= 0.056
        lengths.append([np.linalg.norm(joints[b] - joints[a]) for a, b in BONES])
    lengths = np.array(lengths)
    finger_bones = [i for i, (a, _) in enumerate(BONES) if a != 0]
    assert lengths[:, finger_bones].min() > 0.014 and lengths[:, finger_bones].max() < 0.06
    # Middle finger is the longest, the little finger the shortest (proximal phalanges).
    proximal = {f: lengths[:, 4 * i + 1].mean() for i, f in enumerate(FINGERS)}
    assert proximal["middle"] > proximal["ring"] > proximal["index"] > proximal["little"]
    assert lengths.std(0).min() > 0.0005, "bone lengths vary from hand to hand"


def test_rotation_prior_covers_the_sphere():
    rng = np.random.default_rng(3)
    rotations = np.array([sample_rotation(rng) for _ in range(800)])
    identity = np.broadcast_to(np.eye(3), rotations.shape)
    np.testing.assert_allclose(rotations @ rotations.transpose(0, 2, 1), identity, atol=1e-9)
    np.testing.assert_allclose(np.linalg.det(rotations), 1.0, atol=1e-9)
    palm_normal = rotations[:, :, 2]  # hand z (palmar) in camera axes
    assert (palm_normal[:, 2] < -0.5).mean() > 0.15  # palm toward the camera
    assert (palm_normal[:, 2] > 0.5).mean() > 0.15  # back toward the camera
    fingers = rotations[:, :, 1]  # hand y (distal) in camera axes
    assert (fingers[:, 1] > 0.3).mean() > 0.04  # some hands upside down


# --- FreiHAND layout -----------------------------------------------------------------------


def _read_json(path):
    with open(path) as f:
        return json.load(f)


def test_written_layout_matches_the_samples(tmp_path):
    root = generate_freihand(tmp_path / "hands", num=5, seed=11, num_eval=3, workers=1,
                             progress=False, image_size=64)
    assert root == tmp_path / "hands"
    for split, n in (("training", 5), ("evaluation", 3)):
        xyz = np.array(_read_json(layout.annotation_path(root, split, "xyz")))
        K = np.array(_read_json(layout.annotation_path(root, split, "K")))
        scale = np.array(_read_json(layout.annotation_path(root, split, "scale")))
        assert xyz.shape == (n, 21, 3) and K.shape == (n, 3, 3) and scale.shape == (n,)
        np.testing.assert_allclose(scale, np.linalg.norm(xyz[:, 9] - xyz[:, 10], axis=-1), rtol=1e-6)
        for i in range(n):
            sample = sample_hand(generator_module.sample_rng(11, split, i), 64)
            np.testing.assert_array_equal(xyz[i].astype(np.float32), sample["joints3d"])
            np.testing.assert_array_equal(K[i].astype(np.float32), sample["K"])
            image = Image.open(layout.rgb_path(root, split, i))
            assert image.mode == "RGB" and image.size == (64, 64)
            # JPEG keeps luminance at full resolution (colour is subsampled 2x2).
            luma = np.asarray(image.convert("L"), dtype=float)
            expected = np.asarray(Image.fromarray(sample["image"]).convert("L"), dtype=float)
            assert np.abs(luma - expected).mean() < 4.0
            mask_file = layout.mask_path(root, split, i)
            if split == "training":
                mask = np.asarray(Image.open(mask_file).convert("L")) > 127
                assert (mask != (sample["mask"] > 127)).mean() < 0.01
            else:
                assert not mask_file.exists()
        assert not layout.rgb_path(root, split, n).exists()
    meta = _read_json(root / "synthetic.json")
    assert meta["version"] == GENERATOR_VERSION and meta["num"] == 5 and meta["seed"] == 11
    assert not list(tmp_path.glob(".hands*")), "temporary folder left behind"


def _tree_bytes(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_generation_is_identical_whatever_the_number_of_workers(tmp_path):
    one = generate_freihand(tmp_path / "one", num=4, seed=3, num_eval=1, workers=1,
                            progress=False, image_size=32)
    two = generate_freihand(tmp_path / "two", num=4, seed=3, num_eval=1, workers=2,
                            progress=False, image_size=32)
    assert _tree_bytes(one) == _tree_bytes(two)
    other = generate_freihand(tmp_path / "other", num=4, seed=4, workers=1, progress=False,
                              image_size=32)
    assert _tree_bytes(other)[layout.rgb_path(".", "training", 0)] != _tree_bytes(one)[
        layout.rgb_path(".", "training", 0)]


def test_interrupted_generation_leaves_nothing(tmp_path, monkeypatch):
    calls = []
    original = generator_module.GENERATORS[GENERATOR_VERSION]

    def failing(rng, size):
        calls.append(1)
        if len(calls) == 3:  # after two samples were written
            raise KeyboardInterrupt
        return original(rng, size)

    monkeypatch.setitem(generator_module.GENERATORS, GENERATOR_VERSION, failing)
    with pytest.raises(KeyboardInterrupt):
        generate_freihand(tmp_path / "hands", num=5, workers=1, progress=False, image_size=32)
    assert list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    out = tmp_path / "hands"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        generate_freihand(out, num=1, progress=False, image_size=32)
    assert (out / "keep.txt").read_text() == "mine"
    with pytest.raises(UsageError, match="num"):
        generate_freihand(tmp_path / "none", num=0, progress=False)


def test_ensure_synthetic_generates_once_under_handzoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HANDZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    root = ensure_synthetic(num=3, seed=2, num_eval=1, progress=False)
    assert root.parent == tmp_path / "home" / "synthetic"
    assert root.name == f"{GENERATOR_VERSION}-n3-s2-e1"
    assert len(_read_json(root / "training_xyz.json")) == 3

    def must_not_run(*args, **kwargs):
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(generator_module, "generate_freihand", must_not_run)
    assert ensure_synthetic(num=3, seed=2, num_eval=1, progress=False) == root


def test_first_use_says_what_it_generates_and_where(tmp_path, capsys):
    from handzoo.data.synthetic import ensure_synthetic

    root = ensure_synthetic(num=4, num_eval=2, home=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert f"generating the synthetic set ({GENERATOR_VERSION}) once (4 training + 2 evaluation images" in err
    assert str(root) in err
    assert ensure_synthetic(num=4, num_eval=2, home=tmp_path, progress=True) == root
    assert "generating" not in capsys.readouterr().err  # generated once, then reused silently
