"""The FreiHAND loader reads the official layout exactly and refuses bad data (handzoo.data.freihand)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import handzoo
from handzoo.data import annotations
from handzoo.data import freihand_layout as layout
from handzoo.data.freihand import BadImageWarning, FreiHANDDataset
from handzoo.errors import ConfigError, DataError
from handzoo.geometry import project
from tests.freihand_fixture import VERSION_COLORS, Fixture, hand_color, write_freihand_fixture

N, V, SIZE = 6, 4, 64


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return write_freihand_fixture(tmp_path_factory.mktemp("freihand") / "root", N, V, SIZE)


@pytest.fixture
def fixture(pristine: Fixture, tmp_path: Path) -> Fixture:
    """A private copy that a test may damage."""
    root = tmp_path / "root"
    shutil.copytree(pristine.root, root)
    pristine_copy = Fixture(**{**pristine.__dict__, "root": root})
    return pristine_copy


def dataset(root: Path, **kwargs) -> FreiHANDDataset:
    kwargs.setdefault("image_size", 32)
    return FreiHANDDataset(root, **kwargs)


# -- reading the layout -------------------------------------------------------------------
def test_samples_give_back_their_annotations(pristine: Fixture) -> None:
    ds = dataset(pristine.root, split="train", val_fraction=0.0, load_verts=True)
    assert len(ds) == N * V and ds.num_versions == V and ds.num_unique == N
    for i in range(len(ds)):
        s = ds[i]
        a = i % N  # no val ids: item i is image i
        assert s["sample_id"] == a and s["version"] == i // N and s["index"] == i
        np.testing.assert_allclose(s["joints3d"], pristine.xyz[a], atol=1e-7)
        K = pristine.K[a].copy()
        K[:2] *= 32 / SIZE
        np.testing.assert_allclose(s["K"], K, rtol=1e-6)
        np.testing.assert_allclose(s["joints2d"], project(pristine.xyz[a], K), atol=1e-3)
        assert s["scale"].item() == pytest.approx(np.linalg.norm(pristine.xyz[a, 9] - pristine.xyz[a, 10]))
        np.testing.assert_allclose(s["mano"], pristine.mano[a], atol=1e-6)
        np.testing.assert_allclose(s["verts"], pristine.verts[a], atol=1e-6)
        # the mask is the drawn silhouette at half resolution
        expected = pristine.masks[a].reshape(32, 2, 32, 2).mean(axis=(1, 3)) > 0.5
        assert (s["mask"].numpy().astype(bool) == expected).mean() > 0.97
        assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32


def test_image_i_shows_annotation_i_mod_n(pristine: Fixture) -> None:
    ds = dataset(pristine.root, image_size=SIZE, val_fraction=0.0, return_raw=True)
    for i in range(len(ds)):
        s = ds[i]
        a, v = i % N, i // N
        assert ds._rgb_file(i) == str(layout.rgb_path(pristine.root, "training", i))
        hand = pristine.masks[a] > 0
        inner = hand & np.roll(hand, 2, 0) & np.roll(hand, -2, 0) & np.roll(hand, 2, 1) & np.roll(hand, -2, 1)
        outer = (
            ~hand
            & ~np.roll(hand, 3, 0)
            & ~np.roll(hand, -3, 0)
            & ~np.roll(hand, 3, 1)
            & ~np.roll(hand, -3, 1)
        )
        np.testing.assert_allclose(s["image"][inner].mean(0), hand_color(a), atol=6)
        np.testing.assert_allclose(s["image"][outer].mean(0), VERSION_COLORS[v], atol=6)


def test_pixels_match_file_through_normalisation(pristine: Fixture) -> None:
    raw = dataset(pristine.root, image_size=SIZE, val_fraction=0.0, return_raw=True)[7]
    tensor = dataset(pristine.root, image_size=SIZE, val_fraction=0.0)[7]["image"]
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (raw["image"] / 255.0 - mean) / std
    np.testing.assert_allclose(tensor.permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_versions_select_images(pristine: Fixture) -> None:
    gs = dataset(pristine.root, versions=["gs"], val_fraction=0.0)
    assert len(gs) == N and {gs[i]["version"] for i in range(len(gs))} == {0}
    two = dataset(pristine.root, versions=[1, 3], val_fraction=0.0)
    assert sorted({two[i]["version"] for i in range(len(two))}) == [1, 3]
    with pytest.raises(ConfigError, match="versions: 7 is not one of"):
        dataset(pristine.root, versions=[7])


def test_val_split_shares_no_unique_id_with_train(pristine: Fixture) -> None:
    train = dataset(pristine.root, split="train", val_fraction=0.34, val_seed=3)
    val = dataset(pristine.root, split="val", val_fraction=0.34, val_seed=3)
    train_ids = {train[i]["sample_id"] for i in range(len(train))}
    val_ids = {val[i]["sample_id"] for i in range(len(val))}
    assert not train_ids & val_ids and train_ids | val_ids == set(range(N))
    assert len(val_ids) == 2 and len(val) == 2 * V  # every version of the held-out ids
    assert {val[i]["version"] for i in range(len(val))} == set(range(V))
    again = dataset(pristine.root, split="val", val_fraction=0.34, val_seed=3)
    np.testing.assert_array_equal(again.sample_ids, val.sample_ids)
    other = {
        tuple(dataset(pristine.root, split="val", val_fraction=0.34, val_seed=s).sample_ids) for s in range(6)
    }
    assert len(other) > 1


def test_eval_split_with_and_without_joints(pristine: Fixture, tmp_path: Path) -> None:
    ev = dataset(pristine.root, split="eval")
    assert len(ev) == 3
    s = ev[1]
    np.testing.assert_allclose(s["joints3d"], pristine.eval_xyz[1], atol=1e-7)
    assert "mask" not in s
    root = tmp_path / "pred_only"
    write_freihand_fixture(root, 2, 1, 32, num_eval=2, eval_xyz=False, with_verts=False)
    s = dataset(root, split="eval")[0]
    assert set(s) == {"image", "K", "index", "sample_id", "version", "scale"}


def test_augmented_loader_labels_match_the_image(fixture: Fixture) -> None:
    """A red dot at joint 9's projection in image 0 is found at the augmented joints2d."""
    from tests.test_augment import find_marker

    a, j = 0, 9
    image = np.zeros((SIZE, SIZE, 3), np.uint8)
    u, v = project(fixture.xyz[a], fixture.K[a])[j]
    image[int(v) - 1 : int(v) + 2, int(u) - 1 : int(u) + 2] = (255, 0, 0)
    layout.write_image(layout.rgb_path(fixture.root, "training", 0), image, quality=100)
    marker = np.array([int(u) + 0.5, int(v) + 0.5])  # the 3×3 block's centre, pixel-edge coordinates
    ds = dataset(
        fixture.root,
        image_size=SIZE,
        val_fraction=0.0,
        return_raw=True,
        augment=["rotate", "flip", "scale"],
        augment_cfg={"rotate": {"p": 1.0}, "flip": {"p": 1.0}, "scale": {"p": 1.0, "translate": 0.02}},
    )
    for epoch in range(5):
        ds.seed, ds.epoch = 0, epoch
        s = ds[0]
        # where the block's centre went: the label's motion plus the block's offset from the joint
        target = project(s["joints3d"], s["K"])[j]
        peak, _ = find_marker(s["image"])
        offset = np.linalg.norm(marker - (u, v)) * 1.25  # rotation keeps it, zoom scales it
        assert np.linalg.norm(peak - target) <= offset + 1.0, (epoch, peak, target)


# -- annotation cache ---------------------------------------------------------------------
def test_annotation_cache_skips_json_and_invalidates_on_touch(
    fixture: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = annotations.parse_annotation

    def counting(path: Path, key: str) -> np.ndarray:
        calls.append(path.name)
        return real(path, key)

    monkeypatch.setattr(annotations, "parse_annotation", counting)
    dataset(fixture.root)
    assert sorted(calls) == [
        "training_K.json",
        "training_mano.json",
        "training_scale.json",
        "training_xyz.json",
    ]
    cached = sorted(p.name for p in annotations.cache_dir().glob("*.npy"))
    assert len(cached) == 4 and not list(annotations.cache_dir().glob("*.tmp"))

    calls.clear()
    dataset(fixture.root)
    assert calls == []  # every array came from .npy

    xyz_path = layout.annotation_path(fixture.root, "training", "xyz")
    st = xyz_path.stat()
    os.utime(xyz_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    ds = dataset(fixture.root)
    assert calls == ["training_xyz.json"]
    assert len(list(annotations.cache_dir().glob("training_xyz-*.npy"))) == 1  # the stale one is gone
    np.testing.assert_allclose(ds.xyz, fixture.xyz)


def test_changed_annotation_content_is_reread(fixture: Fixture) -> None:
    dataset(fixture.root)
    xyz = fixture.xyz.copy()
    xyz[2] += 0.01
    layout.write_annotations(fixture.root, "training", xyz, fixture.K)
    np.testing.assert_allclose(dataset(fixture.root).xyz, xyz)


# -- bad inputs ---------------------------------------------------------------------------
def _rewrite(root: Path, key: str, edit) -> None:
    path = layout.annotation_path(root, "training", key)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def test_wrong_joint_count_names_file_and_entry(fixture: Fixture) -> None:
    _rewrite(fixture.root, "xyz", lambda d: d[4].pop())
    with pytest.raises(DataError, match=r"training_xyz\.json: entry 4 has 20 joints, expected 21"):
        dataset(fixture.root)


def test_wrong_coordinate_count_and_non_numbers(fixture: Fixture) -> None:
    _rewrite(fixture.root, "xyz", lambda d: d[2][7].append(0.3))
    with pytest.raises(
        DataError, match=r"training_xyz\.json: entry 2, joint 7 has 4 coordinates, expected 3"
    ):
        dataset(fixture.root)
    _rewrite(fixture.root, "xyz", lambda d: (d[2][7].pop(), d[3][1].__setitem__(0, "x")))
    with pytest.raises(DataError, match=r"entry 3, joint 1, coordinate 0 is 'x', expected a number"):
        dataset(fixture.root)


def test_nan_is_refused(fixture: Fixture) -> None:
    _rewrite(fixture.root, "K", lambda d: d[1][0].__setitem__(2, float("nan")))
    with pytest.raises(DataError, match=r"training_K\.json: entry 1 holds NaN"):
        dataset(fixture.root)


def test_millimetres_are_refused(fixture: Fixture) -> None:
    layout.write_annotations(fixture.root, "training", fixture.xyz * 1000, fixture.K)
    with pytest.raises(DataError, match="looks like millimetres"):
        dataset(fixture.root)


def test_length_mismatch_names_both_files(fixture: Fixture) -> None:
    _rewrite(fixture.root, "K", lambda d: d.pop())
    with pytest.raises(DataError, match=r"training_K\.json has 5 entries but training_xyz\.json has 6"):
        dataset(fixture.root)


def test_missing_files_are_listed(fixture: Fixture) -> None:
    layout.annotation_path(fixture.root, "training", "K").unlink()
    shutil.rmtree(fixture.root / "training" / "rgb")
    with pytest.raises(DataError, match=r"missing training_K\.json, training/rgb/"):
        dataset(fixture.root)
    with pytest.raises(DataError, match="does not exist"):
        dataset(fixture.root / "nope")


def test_image_count_must_be_a_multiple_and_contiguous(fixture: Fixture) -> None:
    last = layout.rgb_path(fixture.root, "training", N * V - 1)
    last.unlink()
    with pytest.raises(DataError, match=r"holds 23 images, not a multiple of the 6 samples"):
        dataset(fixture.root)
    layout.rgb_path(fixture.root, "training", 5).rename(last)
    with pytest.raises(DataError, match=r"00000005\.jpg is missing"):
        dataset(fixture.root)


def _truncate(root: Path, index: int) -> Path:
    path = layout.rgb_path(root, "training", index)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_jpeg_raises_naming_the_file(fixture: Fixture) -> None:
    path = _truncate(fixture.root, 3)
    ds = dataset(fixture.root, val_fraction=0.0)
    with pytest.raises(DataError, match=str(path.name)):
        ds[3]
    ds[4]  # the others still load


@pytest.mark.parametrize("image_cache", [False, True])
def test_truncated_jpeg_skip_replaces_with_a_counted_warning(fixture: Fixture, image_cache: bool) -> None:
    path = _truncate(fixture.root, 3)
    if image_cache:
        with pytest.warns(UserWarning, match="1 unreadable images left out"):
            ds = dataset(fixture.root, val_fraction=0.0, on_bad_image="skip", image_cache=True)
    else:
        ds = dataset(fixture.root, val_fraction=0.0, on_bad_image="skip")
    with pytest.warns(
        BadImageWarning, match=rf"{path.name}.*returning sample 4 in place of 3 \(1 unreadable"
    ):
        s = ds[3]
    assert s["index"] == 4 and s["sample_id"] == 4 % N  # the label belongs to the image returned
    np.testing.assert_allclose(s["joints3d"], fixture.xyz[4 % N], atol=1e-7)
    assert len(ds.bad_images) == 1
    with pytest.warns(BadImageWarning, match=r"\(1 unreadable"):
        again = ds[3]
    assert again["index"] == 4  # deterministic


# -- image cache, workers, registry ----------------------------------------------------------
def test_image_cache_matches_decoding_and_is_reused(
    pristine: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from handzoo.data import image_cache

    plain = dataset(pristine.root, val_fraction=0.0, return_raw=True)
    cached = dataset(pristine.root, val_fraction=0.0, return_raw=True, image_cache=True)
    for i in (0, 7, 23):
        a, b = plain[i], cached[i]
        np.testing.assert_allclose(a["K"], b["K"], atol=1e-9)
        assert np.abs(a["image"].astype(int) - b["image"]).max() <= 2
        assert (a["mask"] == b["mask"]).mean() > 0.98

    def no_build(*args, **kwargs):
        raise AssertionError("the cache was rebuilt")

    monkeypatch.setattr(image_cache, "_build", no_build)
    again = dataset(pristine.root, split="val", return_raw=True, image_cache=True)
    assert again[0]["image"].shape == (32, 32, 3)


def test_dataset_pickles_and_loads_in_workers(pristine: Fixture) -> None:
    ds = dataset(pristine.root, load_verts=True, augment="default", seed=0)
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[2]["image"], ds[2]["image"])
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)
    batch = next(iter(loader))
    assert batch["image"].shape == (4, 3, 32, 32) and batch["joints3d"].shape == (4, 21, 3)
    assert batch["verts"].shape == (4, 778, 3) and batch["mano_valid"].dtype == torch.bool
    err = project(batch["joints3d"].double().numpy(), batch["K"].double().numpy()) - batch["joints2d"].numpy()
    assert np.abs(err).max() < 1e-3


def test_create_dataset_through_the_registry(pristine: Fixture) -> None:
    ds = handzoo.create_dataset(
        "freihand", root=pristine.root, split="val", image_size=32, augment=["rotate"]
    )
    assert isinstance(ds, FreiHANDDataset) and ds.split == "val"
    with pytest.raises(ConfigError, match="has no option 'size'"):
        handzoo.create_dataset("freihand", root=pristine.root, size=32)
    with pytest.raises(ConfigError, match="needs root=PATH"):
        handzoo.create_dataset("freihand")


def test_synthetic_builds_freihand_on_the_generated_folder(
    pristine: Fixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import handzoo.data.synthetic as synthetic

    calls = []

    def fake_ensure(**kwargs):
        calls.append(kwargs)
        return pristine.root

    monkeypatch.setattr(synthetic, "ensure_synthetic", fake_ensure, raising=False)
    ds = handzoo.create_dataset("synthetic", num=24, generator_seed=5, split="eval", image_size=32)
    assert calls == [{"num": 24, "seed": 5}]
    assert ds.split == "eval" and len(ds) == 3
