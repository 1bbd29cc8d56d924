"""``ge-realworld``: Ge et al.'s real-world test set read in the authors' layout (handzoo.data.realworld).

The tests write their own folder in that layout (``params.mat``, ``pose_gt.mat``
with ``scipy.io.savemat``, 256x256 JPEGs with a white square drawn on the pixel
where the wrist projects) and check the loader against numbers written out by
hand: the crop intrinsics, centimetres to metres, the mirror (joint x negated,
the square's pixels mirrored, ``project(joints3d, K)`` landing on the square's
centre), the rows without images left out, and one-line errors. ``handzoo eval``
and the leaderboard are checked end to end against an independent computation
(:mod:`tests.reference_eval`), including the constant pose, which comes from the
synthetic set's training labels and never from this set's own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.io
import torch

import handzoo
from handzoo.data.realworld import GeRealWorldDataset
from handzoo.errors import ConfigError, DataError
from handzoo.geometry import project
from tests.conftest import export_random_weights
from tests.reference_eval import OfficialAccumulator, align_w_scale, pa_errors
from tests.test_publish import cli

ROWS = 6  # rows of the .mat files; images exist for PRESENT only
PRESENT = (0, 2, 3, 5)
CAM = (1000.0, 1010.0, 640.0, 360.0)  # fx, fy, u0, v0 of the full frame, the same for every row
# bbox (x, y, w, h) of each row's crop in the full frame
BBOX = {
    0: (512, 232, 512, 512),
    1: (400, 200, 320, 320),
    2: (492, 242, 512, 512),
    3: (544, 264, 256, 256),
    4: (512, 232, 512, 512),
    5: (532, 212, 512, 512),
}
# the wrist in centimetres, chosen so that it projects onto a pixel centre of the authors' crop
WRIST_CM = {
    0: (4.0, 8.0, 40.0),
    1: (4.0, 8.0, 40.0),
    2: (4.0, 8.0, 40.0),
    3: (-2.0, 5.0, 50.0),
    4: (4.0, 8.0, 40.0),
    5: (4.0, 8.0, 40.0),
}
# The authors' crop intrinsics (s = 256 / w; cx = (u0 - x)·s, cy = (v0 - y)·s), worked out by hand:
# row 0: s = 256/512 = 0.5, fx = 500, fy = 505, cx = (640 - 512)·0.5 = 64, cy = (360 - 232)·0.5 = 64
# row 2: s = 0.5, cx = (640 - 492)·0.5 = 74, cy = (360 - 242)·0.5 = 59
# row 3: s = 256/256 = 1, fx = 1000, fy = 1010, cx = 640 - 544 = 96, cy = 360 - 264 = 96
# row 5: s = 0.5, cx = (640 - 532)·0.5 = 54, cy = (360 - 212)·0.5 = 74
AUTHORS_K = {
    0: [[500.0, 0.0, 64.0], [0.0, 505.0, 64.0], [0.0, 0.0, 1.0]],
    2: [[500.0, 0.0, 74.0], [0.0, 505.0, 59.0], [0.0, 0.0, 1.0]],
    3: [[1000.0, 0.0, 96.0], [0.0, 1010.0, 96.0], [0.0, 0.0, 1.0]],
    5: [[500.0, 0.0, 54.0], [0.0, 505.0, 74.0], [0.0, 0.0, 1.0]],
}
# The wrist's pixel in the authors' crop (column, row; centres on integers): u = fx·x/z + cx,
# v = fy·y/z + cy. Rows 0, 2, 5: x/z = 0.1, y/z = 0.2 -> (50 + cx, 101 + cy);
# row 3: x/z = -0.04, y/z = 0.1 -> (-40 + 96, 101 + 96).
WRIST_PIXEL = {0: (114, 165), 2: (124, 160), 3: (56, 197), 5: (104, 175)}
BACKGROUND, MARKER, HALF = 40, 250, 4  # grey levels; the square is 2·HALF + 1 pixels wide


def hand_cm(wrist: tuple[float, float, float], row: int) -> np.ndarray:
    """(21,3) centimetres: the wrist, then five fingers fanned upwards, base to tip (a little per row)."""
    out = [np.array(wrist)]
    for f, (dx, dy) in enumerate([(-2.2, -1.0), (-1.0, -2.1), (0.0, -2.3), (1.0, -2.1), (2.0, -1.7)]):
        for k in range(1, 5):
            out.append(np.array(wrist) + [dx * k, dy * k + 0.1 * row, 0.4 * k - 0.3 * f])
    return np.stack(out)


def write_layout(folder: Path, rows: int = ROWS, present=PRESENT, pose_cm: np.ndarray | None = None) -> Path:
    """The authors' layout under ``folder/data/real_world_testset``; returns that folder."""
    root = folder / "data" / "real_world_testset"
    (root / "images").mkdir(parents=True)
    pose = np.stack([hand_cm(WRIST_CM[i], i) for i in range(rows)]) if pose_cm is None else pose_cm
    scipy.io.savemat(
        root / "params.mat",
        {
            "image_path": np.array([f"images/{i:05d}.jpg" for i in range(rows)]),
            "cam_param": np.tile(np.array(CAM), (rows, 1)),
            "bbox": np.array([BBOX[i] for i in range(rows)], dtype=np.int32),
            "pose_root": pose[:, 9].astype(np.float32),
            "pose_scale": np.full((1, rows), 5, np.uint8),
        },
    )
    scipy.io.savemat(root / "pose_gt.mat", {"pose_gt": pose.astype(np.float32)})
    for i in present:
        image = np.full((256, 256, 3), BACKGROUND, np.uint8)
        u, v = WRIST_PIXEL[i]
        image[v - HALF : v + HALF + 1, u - HALF : u + HALF + 1] = MARKER
        assert cv2.imwrite(str(root / "images" / f"{i:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 98])
    return root


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parent folder (as the authors' repository holds it); the data sit in data/real_world_testset."""
    parent = tmp_path_factory.mktemp("ge") / "hand-graph-cnn"
    write_layout(parent)
    return parent


@pytest.fixture
def damaged(layout: Path, tmp_path: Path) -> Path:
    """A private copy of the layout folder (data/real_world_testset) that a test may break."""
    root = tmp_path / "copy"
    shutil.copytree(layout / "data" / "real_world_testset", root)
    return root


def pose_cm(row: int) -> np.ndarray:
    return hand_cm(WRIST_CM[row], row).astype(np.float32).astype(np.float64)


def marker_centre(image: np.ndarray) -> np.ndarray:
    """(u, v) of the bright square in handzoo's convention: the weighted mean of pixel centres i + 0.5."""
    w = np.clip(image.astype(np.float64).mean(-1) - BACKGROUND - 20, 0, None)
    rows, cols = np.indices(w.shape)
    return np.array([((cols + 0.5) * w).sum(), ((rows + 0.5) * w).sum()]) / w.sum()


# -- reading the layout ------------------------------------------------------------------
def test_only_rows_with_images_are_read_and_index_keys_the_original_set(layout: Path) -> None:
    ds = handzoo.create_dataset("ge-realworld", root=layout, split="eval", image_size=64)
    same = handzoo.create_dataset(
        "ge-realworld", root=layout / "data" / "real_world_testset", split="test", image_size=64
    )
    assert isinstance(ds, GeRealWorldDataset) and len(ds) == len(same) == len(PRESENT)
    assert [ds[k]["index"] for k in range(len(ds))] == list(PRESENT) == same.indices.tolist()
    assert ds.num_rows == ROWS and ds.root == same.root
    sample = ds[1]
    assert sample["image"].shape == (3, 64, 64) and sample["image"].dtype == torch.float32
    assert sample["joints3d"].shape == (21, 3) and sample["joints2d"].shape == (21, 2)
    assert sample["K"].shape == (3, 3) and sample["scale"].shape == ()
    picked = GeRealWorldDataset(layout, indices=[5, 0], image_size=64)
    assert [picked[k]["index"] for k in range(2)] == [5, 0]


def test_crop_intrinsics_follow_the_authors_formula_in_handzoo_pixels(layout: Path) -> None:
    """At 256 px: the authors' K plus half a pixel; at 128 px: halved; mirrored: cx -> S - cx."""
    at256 = GeRealWorldDataset(layout, image_size=256, mirror=False, return_raw=True)
    at128 = GeRealWorldDataset(layout, image_size=128, mirror=True, return_raw=True)
    for k, row in enumerate(PRESENT):
        handzoo_K = np.array(AUTHORS_K[row])
        handzoo_K[:2, 2] += 0.5  # pixel centres: the authors' i, handzoo's i + 0.5
        np.testing.assert_allclose(at256[k]["K"], handzoo_K, rtol=0, atol=1e-9)
        half = handzoo_K.copy()
        half[:2] *= 0.5
        half[0, 2] = 128 - half[0, 2]
        np.testing.assert_allclose(at128[k]["K"], half, rtol=0, atol=1e-9)
    # row 0 written out completely: fx = 250, fy = 252.5, cx = 128 - 64.5/2 = 95.75, cy = 64.5/2 = 32.25
    np.testing.assert_allclose(at128[0]["K"], [[250, 0, 95.75], [0, 252.5, 32.25], [0, 0, 1]], atol=1e-9)


def test_centimetres_become_metres_and_the_mirror_negates_x(layout: Path) -> None:
    left = GeRealWorldDataset(layout, image_size=64, mirror=False, return_raw=True)
    right = GeRealWorldDataset(layout, image_size=64, return_raw=True)
    for k, row in enumerate(PRESENT):
        metres = pose_cm(row) / 100.0
        np.testing.assert_allclose(left[k]["joints3d"], metres, rtol=0, atol=1e-12)
        np.testing.assert_allclose(right[k]["joints3d"], metres * [-1, 1, 1], rtol=0, atol=1e-12)
        assert right[k]["scale"] == pytest.approx(np.linalg.norm(metres[9] - metres[10]))
        np.testing.assert_array_equal(right[k]["image"], left[k]["image"][:, ::-1])  # the pixels mirrored
    # the tensors: float32 labels, the image normalised with the given mean/std
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    tensors = GeRealWorldDataset(layout, image_size=64, mean=mean, std=std)[2]
    raw = right[2]
    expected = (raw["image"].astype(np.float64) / 255 - mean) / std
    np.testing.assert_allclose(tensors["image"].numpy(), expected.transpose(2, 0, 1), atol=1e-5)
    np.testing.assert_allclose(tensors["joints3d"].numpy(), raw["joints3d"], atol=1e-7)
    np.testing.assert_allclose(tensors["joints2d"].numpy(), project(raw["joints3d"], raw["K"]), atol=1e-4)


@pytest.mark.parametrize("size", [256, 128, 224])
@pytest.mark.parametrize("mirror", [True, False])
def test_the_wrist_projects_onto_its_drawn_square(layout: Path, size: int, mirror: bool) -> None:
    """joints2d = project(joints3d, K) is where the pixels are, to a tenth of a pixel, mirrored or not."""
    ds = GeRealWorldDataset(layout, image_size=size, mirror=mirror, return_raw=True)
    for k, row in enumerate(PRESENT):
        s = ds[k]
        np.testing.assert_allclose(s["joints2d"], project(s["joints3d"], s["K"]), atol=1e-9)
        u, v = WRIST_PIXEL[row]
        r = size / 256
        # by hand: the authors' pixel u spans [u, u+1) in handzoo's convention (centre u + 0.5);
        # mirrored, column u of 256 becomes column 255 - u, centre 255.5 - u = 256 - (u + 0.5)
        expected = np.array([256 - (u + 0.5) if mirror else u + 0.5, v + 0.5]) * r
        np.testing.assert_allclose(s["joints2d"][0], expected, atol=1e-9)
        np.testing.assert_allclose(marker_centre(s["image"]), expected, atol=0.1)


# -- one-line errors ---------------------------------------------------------------------
def one_line(exc: pytest.ExceptionInfo, *words: str) -> None:
    message = str(exc.value)
    assert "\n" not in message, message
    for word in words:
        assert word in message, message


def test_missing_files_wrong_shapes_and_absent_images_are_one_line_errors(
    damaged: Path, tmp_path: Path
) -> None:
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged, indices=[0, 1])
    one_line(exc, "00001.jpg", "index 1", "leave the index out")
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged, indices=[7])
    one_line(exc, "index 7", "6 rows")
    with pytest.raises(ConfigError) as exc:
        GeRealWorldDataset(damaged, split="train")
    one_line(exc, "evaluation set", "'train'")
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(tmp_path / "nowhere")
    one_line(exc, "does not exist", "params.mat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(tmp_path / "empty")
    one_line(exc, "neither params.mat nor data/real_world_testset", "3d-hand-shape/hand-graph-cnn")

    shutil.copy(damaged / "images" / "00000.jpg", damaged / "images" / "00009.jpg")
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "00009.jpg", "index 9", "no row")
    (damaged / "images" / "00009.jpg").unlink()

    cv2.imwrite(str(damaged / "images" / "00003.jpg"), np.zeros((200, 300, 3), np.uint8))
    ds = GeRealWorldDataset(damaged)
    with pytest.raises(DataError) as exc:
        ds[2]
    one_line(exc, "00003.jpg", "index 3", "300x200", "256x256")
    (damaged / "images" / "00003.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataError) as exc:
        ds[2]
    one_line(exc, "00003.jpg", "index 3")

    pose = np.stack([pose_cm(i) for i in range(ROWS)])
    scipy.io.savemat(damaged / "pose_gt.mat", {"pose_gt": pose[:, :20]})
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "pose_gt.mat", "6×20×3", "N×21×3")
    scipy.io.savemat(damaged / "pose_gt.mat", {"pose_gt": pose[:5]})
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "params.mat", "6 rows", "pose_gt.mat has 5")
    scipy.io.savemat(damaged / "pose_gt.mat", {"pose_gt": pose / 100})  # metres instead of centimetres
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "pose_gt.mat", "index 0", "centimetres")
    scipy.io.savemat(damaged / "pose_gt.mat", {"joints": pose})
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "pose_gt.mat", "no variable 'pose_gt'")
    (damaged / "pose_gt.mat").unlink()
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "pose_gt.mat is missing", "3d-hand-shape/hand-graph-cnn")

    (damaged / "params.mat").write_bytes(b"garbage")
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "params.mat", "not a readable MATLAB file")
    scipy.io.savemat(damaged / "params.mat", {"cam_param": np.zeros((ROWS, 3)), "bbox": np.zeros((ROWS, 4))})
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "params.mat", "cam_param", "6×3", "N×4")
    (damaged / "params.mat").unlink()
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "params.mat is missing")

    with pytest.raises(ConfigError) as exc:
        handzoo.create_dataset("ge-realworld", root=damaged, augment=["flip"])
    one_line(exc, "without augmentation")
    with pytest.raises(ConfigError) as exc:  # what a training run asks for
        handzoo.create_dataset("ge-realworld", root=damaged, split="train", augment=["rotate"])
    one_line(exc, "evaluation set", "never train on it")
    with pytest.raises(ConfigError) as exc:
        handzoo.create_dataset("ge-realworld")
    one_line(exc, "root=PATH", "--data-root")


def test_a_square_bbox_and_a_camera_in_front_are_required(damaged: Path) -> None:
    bbox = np.array([BBOX[i] for i in range(ROWS)], dtype=np.int32)
    bbox[2, 3] = 300
    scipy.io.savemat(damaged / "params.mat", {"cam_param": np.tile(np.array(CAM), (ROWS, 1)), "bbox": bbox})
    with pytest.raises(DataError) as exc:
        GeRealWorldDataset(damaged)
    one_line(exc, "params.mat", "bbox of index 2", "square")
    GeRealWorldDataset(damaged, indices=[0, 3])  # the bad row only matters when it is read


# -- models see the crop's camera --------------------------------------------------------
class CameraProbe(torch.nn.Module):
    """A model with an image-space head's signature: it records the K it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.preprocessing = {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "input_size": (3, 64, 64)}
        self.seen: list[torch.Tensor] = []
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, images: torch.Tensor, K: torch.Tensor | None = None):
        self.seen.append(K.clone())
        return handzoo.HandOutput(joints3d=torch.zeros(len(images), 21, 3) + self.anchor)


def test_models_that_take_K_get_the_crops_K(layout: Path) -> None:
    from handzoo.evaluation import predict

    ds = GeRealWorldDataset(layout, image_size=64)
    probe = CameraProbe()
    predict(probe, ds, torch.device("cpu"), batch_size=3)
    seen = torch.cat(probe.seen)
    assert len(seen) == len(PRESENT)
    for k, row in enumerate(PRESENT):
        np.testing.assert_allclose(seen[k].numpy(), ds.intrinsics(row), atol=1e-4)


# -- handzoo eval and the leaderboard ----------------------------------------------------
TINY_SYNTHETIC = ("synthetic", {"num": 24, "num_eval": 2})


@pytest.fixture(scope="module")
def synthetic_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One HANDZOO_HOME for this module, so the tiny synthetic set is generated once."""
    return tmp_path_factory.mktemp("home")


@pytest.fixture
def tiny_baseline(synthetic_home: Path, monkeypatch: pytest.MonkeyPatch) -> np.ndarray:
    """The constant of a 24-image synthetic set in place of the full one; returns that constant (21,3)."""
    from handzoo.scoring.baseline import procrustes_mean

    monkeypatch.setenv("HANDZOO_HOME", str(synthetic_home))
    monkeypatch.setattr(GeRealWorldDataset, "baseline_data", TINY_SYNTHETIC)
    train = handzoo.create_dataset("synthetic", split="train", image_size=32, augment=[], **TINY_SYNTHETIC[1])
    return procrustes_mean(torch.as_tensor(train.labels())).numpy()


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_random_weights(tmp_path_factory.mktemp("resnet18"), "resnet18", 64)


def reference(layout: Path, weights: Path, constant: np.ndarray) -> dict[str, float]:
    """Metrics recomputed without handzoo's data or metric code: the labels from the .mat file, mirrored."""
    gt = scipy.io.loadmat(layout / "data" / "real_world_testset" / "pose_gt.mat")["pose_gt"][list(PRESENT)]
    gt = gt.astype(np.float64) / 100.0 * [-1, 1, 1]
    gt = gt - gt[:, :1]
    model = handzoo.create_model(weights=weights).eval()
    prep = model.preprocessing
    ds = GeRealWorldDataset(layout, image_size=64, mean=prep["mean"], std=prep["std"])
    with torch.no_grad():
        pred = model(torch.stack([ds[k]["image"] for k in range(len(ds))])).joints3d.double().numpy()
    aligned = OfficialAccumulator()
    for p, g in zip(pred, gt, strict=True):
        aligned.feed(g, align_w_scale(g, p))
    base = pa_errors(np.broadcast_to(constant, gt.shape), gt).mean() * 1000
    pa = pa_errors(pred, gt).mean() * 1000
    return {
        "pa_mpjpe_mm": pa,
        "mpjpe_mm": np.linalg.norm(pred - gt, axis=-1).mean() * 1000,
        "auc_pa_0_50mm": aligned.measures()[1],
        "baseline_pa_mpjpe_mm": base,
        "vs_baseline": pa / base,
        "own_constant_mm": pa_errors(np.broadcast_to(own_constant(gt), gt.shape), gt).mean() * 1000,
    }


def own_constant(gt: np.ndarray) -> np.ndarray:
    from handzoo.scoring.baseline import procrustes_mean

    return procrustes_mean(torch.as_tensor(gt)).numpy()


def test_handzoo_eval_scores_the_set_against_the_synthetic_constant(
    layout: Path, weights: Path, tiny_baseline: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "metrics.json"
    args = ["eval", "--weights", str(weights), "--data", "ge-realworld", "--data-root", str(layout)]
    code, stdout, err = cli(
        *args, "--device", "cpu", "--workers", "0", "--batch-size", "3", "--out", str(out)
    )
    assert code == 0, err
    metrics = json.loads(out.read_text())
    ref = reference(layout, weights, tiny_baseline)
    assert metrics["num_samples"] == len(PRESENT)
    for key in ("pa_mpjpe_mm", "mpjpe_mm", "auc_pa_0_50mm", "baseline_pa_mpjpe_mm", "vs_baseline"):
        assert metrics[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    assert metrics["baseline_from"].startswith("synthetic/train")
    # the set's own labels would give another constant: they are not the one used
    assert abs(metrics["baseline_pa_mpjpe_mm"] - ref["own_constant_mm"]) > 1e-3
    assert "synthetic/train" in stdout

    code, _, err = cli(*args, "--split", "train", "--device", "cpu")
    assert code == 2 and "evaluation set" in err and len(err.strip().splitlines()) == 1


def test_leaderboard_ranks_on_the_set_with_the_synthetic_constant(
    layout: Path, weights: Path, tiny_baseline: np.ndarray
) -> None:
    from handzoo.leaderboard import candidates_from_runs, run_leaderboard, to_markdown

    candidates = candidates_from_runs([weights.parent])
    board = run_leaderboard(
        candidates, "ge-realworld", "eval", data_root=str(layout), device="cpu", batch_size=3, bench_seconds=0
    )
    ref = reference(layout, weights, tiny_baseline)
    (row,) = board.rows
    assert board.num_samples == row.num_samples == len(PRESENT)
    assert row.pa_mpjpe_mm == pytest.approx(ref["pa_mpjpe_mm"], rel=1e-4)
    assert row.mpjpe_mm == pytest.approx(ref["mpjpe_mm"], rel=1e-4)
    assert row.auc == pytest.approx(ref["auc_pa_0_50mm"], rel=1e-4, abs=1e-6)
    assert board.baseline_pa_mpjpe_mm == pytest.approx(ref["baseline_pa_mpjpe_mm"], rel=1e-4)
    assert row.vs_baseline == pytest.approx(ref["vs_baseline"], rel=1e-4)
    assert board.baseline_from == "synthetic"
    md = to_markdown(board)
    assert "| - | constant pose (baseline) | Procrustes mean of the synthetic training labels |" in md
    assert "ge-realworld has no training split" in md
