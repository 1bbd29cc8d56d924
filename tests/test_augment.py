"""Augmenters keep pixels, 3D joints and intrinsics consistent (handzoo.data.augment)."""

from __future__ import annotations

import numpy as np
import pytest
from handzoo_data.augment_params import PARAMS
from handzoo_data.augmenters import BUILTIN, Flip, Rotate, Scale

from handzoo.data.augment import DEFAULT_TRAIN_AUGMENT, Pipeline, build_pipeline
from handzoo.errors import ConfigError, UnknownNameError
from handzoo.geometry import project, rotation_z
from tests.freihand_fixture import draw_hand, random_hands

SIZE = 64
GEOMETRIC = ["rotate", "flip", "scale"]
COMPOSITIONS = [
    ["rotate", "flip"],
    ["scale", "rotate", "flip", "scale"],
    list(DEFAULT_TRAIN_AUGMENT),
    ["flip", "color", "rotate", "occlude", "scale", "background"],
]


def make_sample(seed: int = 0, size: int = SIZE, marker_joint: int | None = None) -> dict:
    """A raw sample: dark noisy image, hand mask, joints3d, K with fx != fy and an off-centre principal point.

    With ``marker_joint``, a red Gaussian spot (sigma 1 px) is rendered centred exactly
    on that joint's projection (sub-pixel), on a black 11×11 patch.
    """
    rng = np.random.default_rng(seed)
    xyz, K = random_hands(rng, 1, size)
    uv = project(xyz[0], K[0])
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    mask = draw_hand(uv, size, 3)
    image[mask > 0] = (40, 90, 40)
    if marker_joint is not None:
        u, v = uv[marker_joint]
        col, row = int(u), int(v)
        window = (slice(max(row - 5, 0), row + 6), slice(max(col - 5, 0), col + 6))
        image[window] = 0
        rows, cols = np.mgrid[window]
        weight = np.exp(-((cols + 0.5 - u) ** 2 + (rows + 0.5 - v) ** 2) / 2.0)
        image[window + (0,)] = np.round(255 * weight).astype(np.uint8)
    return {
        "image": image,
        "mask": mask,
        "joints3d": xyz[0],
        "joints2d": uv,
        "K": K[0],
        "verts": xyz[0, :1] + rng.uniform(-0.05, 0.05, (778, 3)),
        "mano": np.zeros(61, np.float32),
        "mano_valid": True,
    }


def find_marker(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The red spot: (argmax pixel centre, sub-pixel centroid), pixel-edge coordinates (u, v)."""
    redness = image[..., 0].astype(float) - (image[..., 1].astype(float) + image[..., 2]) / 2
    row, col = np.unravel_index(np.argmax(redness), redness.shape)
    peak = np.array([col + 0.5, row + 0.5])
    window = (slice(max(row - 4, 0), row + 5), slice(max(col - 4, 0), col + 5))
    weight = np.clip(redness[window] - 60, 0, None)  # the noise stays below 40
    rows, cols = np.mgrid[window]
    centroid = np.array([(weight * (cols + 0.5)).sum(), (weight * (rows + 0.5)).sum()]) / weight.sum()
    return peak, centroid


def reprojection_error(sample: dict) -> float:
    """Max distance (px) between project(joints3d, K) and the 2D track moved by the pixel affines."""
    return float(np.abs(project(sample["joints3d"], sample["K"]) - sample["joints2d"]).max())


# -- the projection invariant -------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_each_augmenter_keeps_projection(name: str) -> None:
    aug = BUILTIN[name](p=1.0)
    for seed in range(5):
        sample = make_sample(seed)
        out = aug(sample, np.random.default_rng(seed))
        assert reprojection_error(out) < 0.5
        assert out["image"].shape == (SIZE, SIZE, 3) and out["image"].dtype == np.uint8
        assert out["mask"].shape == (SIZE, SIZE) and set(np.unique(out["mask"])) <= {0, 1}


@pytest.mark.parametrize("names", COMPOSITIONS, ids=lambda n: "+".join(n))
@pytest.mark.parametrize("fuse", [True, False])
def test_compositions_keep_projection(names: list[str], fuse: bool) -> None:
    pipe = build_pipeline(names, {n: {"p": 1.0} for n in set(names)}, fuse=fuse)
    for seed in range(4):
        out = pipe(make_sample(seed), np.random.default_rng(seed), size=(48, 48))
        assert out["image"].shape == (48, 48, 3)
        assert reprojection_error(out) < 0.5
        # verts move with the joints: the wrist-to-vertex offsets keep their lengths
        before = np.linalg.norm(make_sample(seed)["verts"] - make_sample(seed)["joints3d"][0], axis=1)
        after = np.linalg.norm(out["verts"] - out["joints3d"][0], axis=1)
        np.testing.assert_allclose(after, before, atol=1e-12)


# -- the image moves with the labels ------------------------------------------------------
@pytest.mark.parametrize(
    "names", [["rotate"], ["flip"], ["scale"], ["rotate", "flip", "scale"]], ids=lambda n: "+".join(n)
)
@pytest.mark.parametrize("fuse", [True, False])
def test_marker_follows_joint(names: list[str], fuse: bool) -> None:
    cfg = {
        "rotate": {"p": 1.0},
        "flip": {"p": 1.0},
        "scale": {"p": 1.0, "scale": (0.8, 1.25), "translate": 0.05},
    }
    pipe = build_pipeline(names, {n: cfg[n] for n in names}, fuse=fuse)
    checked = 0
    for seed in range(8):
        joint = 4 + seed % 17
        sample = make_sample(seed, marker_joint=joint)
        for out_size in (SIZE, 48):
            out = pipe(sample, np.random.default_rng(100 + seed), size=(out_size, out_size))
            target = project(out["joints3d"], out["K"])[joint]
            if not (target >= 5).all() or not (target <= out_size - 5).all():
                continue  # the marker left the image: nothing to find
            peak, centroid = find_marker(out["image"])
            assert np.abs(peak - target).max() <= 1.0, (seed, out_size, peak, target)
            # sub-pixel: catches half-pixel convention errors (e.g. cx -> W - 1 - cx)
            assert np.abs(centroid - target).max() <= 0.25, (seed, out_size, centroid, target)
            checked += 1
    assert checked >= 10


# -- identities and closed forms ----------------------------------------------------------
def test_flip_twice_is_identity() -> None:
    sample = make_sample(1)
    flip = Flip(p=1.0)
    rng = np.random.default_rng(0)
    twice = flip(flip(sample, rng), rng)
    np.testing.assert_array_equal(twice["image"], sample["image"])
    np.testing.assert_array_equal(twice["mask"], sample["mask"])
    np.testing.assert_allclose(twice["K"], sample["K"], atol=1e-12)
    np.testing.assert_allclose(twice["joints3d"], sample["joints3d"], atol=1e-15)


def test_flip_closed_form() -> None:
    sample = make_sample(2)
    out = Flip(p=1.0)(sample, np.random.default_rng(0))
    K, K2 = sample["K"], out["K"]
    assert K2[0, 2] == pytest.approx(SIZE - K[0, 2]) and K2[0, 0] == pytest.approx(K[0, 0])
    np.testing.assert_allclose(out["joints3d"][:, 0], -sample["joints3d"][:, 0])
    # the mirrored pixel of column c is column W-1-c
    np.testing.assert_array_equal(out["image"], sample["image"][:, ::-1])
    assert out["mano_valid"] is False


def test_rotate_by_zero_is_identity() -> None:
    sample = make_sample(3)
    out = Rotate(p=1.0, degrees=0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"], sample["image"])
    np.testing.assert_array_equal(out["mask"], sample["mask"])
    np.testing.assert_allclose(out["K"], sample["K"], atol=1e-12)
    np.testing.assert_allclose(out["joints3d"], sample["joints3d"], atol=1e-15)


def test_rotate_closed_form() -> None:
    """About the principal point with fx == fy, K is unchanged; with fx != fy, K's block is R·F·Rᵀ."""
    sample = make_sample(4)
    sample["K"] = sample["K"].copy()
    sample["K"][1, 1] = sample["K"][0, 0]
    sample["joints2d"] = project(sample["joints3d"], sample["K"])
    out = Rotate(p=1.0, center="principal_point")(sample, np.random.default_rng(5))
    np.testing.assert_allclose(out["K"], sample["K"], atol=1e-9)
    # recover the angle from the 3D rotation and check it is a rotation about z
    x0, x1 = sample["joints3d"][5], out["joints3d"][5]
    angle = np.arctan2(x1[1], x1[0]) - np.arctan2(x0[1], x0[0])
    np.testing.assert_allclose(out["joints3d"], sample["joints3d"] @ rotation_z(angle).T, atol=1e-12)
    assert abs(angle) > 1e-3

    skewed = make_sample(4)  # fx != fy
    out = Rotate(p=1.0, center="image")(skewed, np.random.default_rng(5))
    R = rotation_z(angle)[:2, :2]
    F = np.diag([skewed["K"][0, 0], skewed["K"][1, 1]])
    np.testing.assert_allclose(out["K"][:2, :2], R @ F @ R.T, atol=1e-9)
    assert reprojection_error(out) < 1e-9


def test_scale_keeps_3d_and_scales_focal_length() -> None:
    sample = make_sample(5)
    out = Scale(p=1.0, scale=(1.5, 1.5), translate=0.0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["joints3d"], sample["joints3d"])
    np.testing.assert_allclose(out["K"][0, 0], 1.5 * sample["K"][0, 0])
    # zoom about the image centre: c -> 1.5 (c - W/2) + W/2
    np.testing.assert_allclose(out["K"][0, 2], 1.5 * (sample["K"][0, 2] - SIZE / 2) + SIZE / 2)
    assert out["mano_valid"] is True


def test_scale_keeps_labels_that_leave_the_image() -> None:
    sample = make_sample(6)
    out = Scale(p=1.0, scale=(4.0, 4.0), translate=0.5)(sample, np.random.default_rng(1))
    uv = project(out["joints3d"], out["K"])
    assert ((uv < 0) | (uv > SIZE)).any()  # some joints are outside
    assert out["joints3d"].shape == (21, 3) and reprojection_error(out) < 1e-9


def test_fused_and_step_by_step_give_the_same_labels() -> None:
    names = ["rotate", "flip", "scale"]
    cfg = {n: {"p": 1.0} for n in names}
    for seed in range(3):
        sample = make_sample(seed)
        fused = build_pipeline(names, cfg, fuse=True)(sample, np.random.default_rng(seed))
        steps = build_pipeline(names, cfg, fuse=False)(sample, np.random.default_rng(seed))
        np.testing.assert_allclose(fused["K"], steps["K"], atol=1e-9)
        np.testing.assert_allclose(fused["joints3d"], steps["joints3d"], atol=1e-12)
        # one interpolation instead of three: close, not equal
        assert np.abs(fused["image"].astype(int) - steps["image"]).mean() < 12


def test_pipeline_resizes_without_augmenters() -> None:
    sample = make_sample(7)
    out = Pipeline([])(sample, np.random.default_rng(0), size=(32, 32))
    np.testing.assert_allclose(out["K"][:2], sample["K"][:2] / 2)
    np.testing.assert_allclose(out["joints2d"], sample["joints2d"] / 2)
    assert out["image"].shape == (32, 32, 3)


def test_same_seed_same_output() -> None:
    pipe = build_pipeline("default")
    a = pipe(make_sample(8), np.random.default_rng(42))
    b = pipe(make_sample(8), np.random.default_rng(42))
    np.testing.assert_array_equal(a["image"], b["image"])
    np.testing.assert_array_equal(a["K"], b["K"])


def test_inputs_are_not_modified() -> None:
    sample = make_sample(9)
    copy = {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in sample.items()}
    build_pipeline("default", {n: {"p": 1.0} for n in DEFAULT_TRAIN_AUGMENT})(
        sample, np.random.default_rng(0)
    )
    for key, value in copy.items():
        np.testing.assert_array_equal(sample[key], value)


# -- pixel augmenters ---------------------------------------------------------------------
def test_background_replaces_only_outside_the_mask(tmp_path) -> None:
    from PIL import Image

    colors = [(250, 10, 10), (10, 10, 250)]
    for i, color in enumerate(colors):
        Image.new("RGB", (90, 70), color).save(tmp_path / f"bg{i}.png")
    sample = make_sample(10)
    hand = sample["mask"] > 0
    aug = BUILTIN["background"](p=1.0, folder=str(tmp_path), folder_fraction=1.0)
    seen = set()
    for seed in range(6):
        out = aug(sample, np.random.default_rng(seed))
        np.testing.assert_array_equal(out["image"][hand], sample["image"][hand])
        outside = out["image"][~hand]
        assert len(np.unique(outside, axis=0)) == 1  # a flat folder image
        seen.add(tuple(int(c) for c in outside[0]))
    assert seen == set(colors)
    # procedural textures vary and also keep the hand
    out = BUILTIN["background"](p=1.0)(sample, np.random.default_rng(0))
    np.testing.assert_array_equal(out["image"][hand], sample["image"][hand])
    assert not np.array_equal(out["image"][~hand], sample["image"][~hand])


def test_background_fills_corners_uncovered_by_rotation() -> None:
    pipe = build_pipeline(
        ["background", "rotate"], {"background": {"p": 1.0}, "rotate": {"p": 1.0, "degrees": 45}}
    )
    out = pipe(make_sample(11), np.random.default_rng(3))
    # without a background, a 45-degree turn leaves the constant fill colour in the corners
    bare = build_pipeline(["rotate"], {"rotate": {"p": 1.0, "degrees": 45}})(
        make_sample(11), np.random.default_rng(3)
    )
    assert (bare["image"][0, 0] == (124, 116, 104)).all()
    assert not (out["image"][0, 0] == (124, 116, 104)).all()


def test_occlude_draws_and_clears_the_mask() -> None:
    sample = make_sample(12)
    out = BUILTIN["occlude"](p=1.0, max_shapes=4, size=(0.3, 0.5))(sample, np.random.default_rng(0))
    changed = (out["image"] != sample["image"]).any(axis=2)
    assert changed.mean() > 0.05
    assert (out["mask"] <= sample["mask"]).all()
    assert not out["mask"][changed & (sample["mask"] > 0)].any()
    np.testing.assert_array_equal(out["K"], sample["K"])


def test_color_brightness_is_a_gain_and_grey_stays_grey() -> None:
    rng = np.random.default_rng(0)
    grey = np.repeat(rng.integers(20, 180, (SIZE, SIZE, 1), dtype=np.uint8), 3, axis=2)
    sample = {**make_sample(13), "image": grey}
    out = BUILTIN["color"](p=1.0, brightness=0.3, contrast=0.0, saturation=0.0, hue=0.0)(
        sample, np.random.default_rng(1)
    )
    gain = out["image"].astype(float).sum() / grey.astype(float).sum()
    assert 0.7 <= gain <= 1.3 and abs(gain - 1) > 1e-3
    np.testing.assert_allclose(out["image"], np.clip(grey * gain, 0, 255), atol=1.01)
    jittered = BUILTIN["color"](p=1.0, saturation=0.5, hue=0.5)(sample, np.random.default_rng(2))
    spread = jittered["image"].max(axis=2).astype(int) - jittered["image"].min(axis=2)
    assert spread.max() <= 2  # saturation and hue cannot colour a grey image


def test_probability_zero_is_a_no_op() -> None:
    sample = make_sample(14)
    for name in BUILTIN:
        assert BUILTIN[name](p=0.0)(sample, np.random.default_rng(0)) is sample


# -- configuration ------------------------------------------------------------------------
def test_invalid_options_name_augmenter_and_allowed_values() -> None:
    with pytest.raises(ConfigError, match=r"augmenter 'rotate'.*degrees=500.*0\.0\.\.180\.0"):
        build_pipeline(["rotate"], {"rotate": {"degrees": 500}})
    with pytest.raises(ConfigError, match=r"augmenter 'flip' has no option 'angle'.*p=0\.5"):
        build_pipeline(["flip"], {"flip": {"angle": 3}})
    with pytest.raises(ConfigError, match=r"'constant' \| 'reflect' \| 'replicate'"):
        build_pipeline(["scale"], {"scale": {"border": "wrap"}})
    with pytest.raises(ConfigError, match="size must satisfy"):
        build_pipeline(["occlude"], {"occlude": {"size": (0.5, 0.1)}})
    with pytest.raises(ConfigError, match="'colour'.*not in the pipeline"):
        build_pipeline(["color"], {"colour": {"p": 1}})
    with pytest.raises(UnknownNameError, match="rotate"):
        build_pipeline(["rotat"])


def test_registry_lists_builtin_augmenters_with_their_defaults() -> None:
    import handzoo

    assert set(handzoo.list_augmenters()) >= set(DEFAULT_TRAIN_AUGMENT)
    entry = handzoo.get_registry().get("augmenter", "rotate")
    assert entry.default_cfg == PARAMS["rotate"]().model_dump()
    aug = entry.build("rotate", degrees=10)
    assert isinstance(aug, Rotate) and aug.params.degrees == 10
    # a configured object goes into a pipeline as is
    pipe = build_pipeline([aug, "flip"])
    assert pipe.augmenters[0] is aug
