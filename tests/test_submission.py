"""FreiHAND submissions: write -> read -> score, against tests/reference_eval.py."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from handzoo import metrics
from handzoo.data.freihand_layout import write_annotations
from handzoo.errors import DataError
from handzoo.submission import (
    load_submission,
    place_root_relative,
    score_submission,
    write_submission,
)
from tests import reference_eval as ref

N = 12


def _scene(seed: int = 0):
    """gt joints/verts ~0.6 m in front of a 224 px camera, and a noisy, rotated prediction."""
    rng = np.random.default_rng(seed)
    centre = np.array([0.01, -0.02, 0.6])
    xyz = rng.normal(size=(N, 21, 3)) * 0.035 + centre
    verts = rng.normal(size=(N, 778, 3)) * 0.04 + centre
    K = np.tile(np.array([[600.0, 0.0, 112.0], [0.0, 600.0, 112.0], [0.0, 0.0, 1.0]]), (N, 1, 1))
    K[:, 0, 0] += rng.uniform(-50, 50, N)
    rot = Rotation.random(N, random_state=seed).as_matrix()
    pred_xyz = np.einsum("nij,npj->npi", rot, xyz - centre) * 1.1 + centre
    pred_xyz += rng.normal(size=xyz.shape) * 0.006
    pred_verts = verts + rng.normal(size=verts.shape) * 0.004
    return xyz, verts, K, pred_xyz, pred_verts


@pytest.fixture
def root(tmp_path):
    xyz, verts, K, _, _ = _scene()
    root = tmp_path / "FreiHAND"
    write_annotations(root, "evaluation", xyz, K, verts=verts)
    return root


def test_score_matches_official_reference(root, tmp_path):
    xyz, verts, _, pred_xyz, pred_verts = _scene()
    sub = write_submission(tmp_path / "sub.zip", pred_xyz, pred_verts)
    with zipfile.ZipFile(sub) as zf:
        assert zf.namelist() == ["pred.json"]
        content = json.loads(zf.read("pred.json"))
    assert len(content) == 2 and len(content[0]) == N and len(content[1]) == N
    assert np.array(content[0]).shape == (N, 21, 3)

    got = score_submission(sub, root)
    want = ref.evaluate(xyz, pred_xyz, verts, pred_verts)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key
    assert got["pa_mpjpe_mm"] == pytest.approx(want["xyz_al_mean3d"] * 10.0, abs=1e-9)
    assert got["mpjpe_mm"] == pytest.approx(want["xyz_mean3d"] * 10.0, abs=1e-9)
    assert got["auc_pa_0_50mm"] == got["xyz_al_auc3d"]
    assert got["pa_mpvpe_mm"] == pytest.approx(want["mesh_al_mean3d"] * 10.0, abs=1e-9)
    assert (got["f5"], got["f15"]) == (got["f_al_score_5"], got["f_al_score_15"])
    assert 0.0 < got["f5"] < got["f15"] <= 1.0
    assert got["num_samples"] == N


def test_json_submission_and_roundtrip(root, tmp_path):
    _, _, _, pred_xyz, pred_verts = _scene()
    path = write_submission(tmp_path / "pred.json", torch.tensor(pred_xyz), pred_verts)
    xyz, verts = load_submission(path)
    np.testing.assert_array_equal(xyz, pred_xyz)  # full float64 precision by default
    np.testing.assert_array_equal(verts, pred_verts)
    rounded = write_submission(tmp_path / "small.zip", pred_xyz, pred_verts, decimals=6)
    xyz6, _ = load_submission(rounded)
    assert np.abs(xyz6 - pred_xyz).max() <= 5e-7
    assert score_submission(path, root)["xyz_al_mean3d"] == pytest.approx(
        score_submission(tmp_path / "small.zip", root)["xyz_al_mean3d"], abs=1e-4
    )


def test_joints_only_submission_writes_official_placeholder(root, tmp_path):
    xyz, verts, _, pred_xyz, _ = _scene()
    sub = write_submission(tmp_path / "sub.zip", pred_xyz)
    with zipfile.ZipFile(sub) as zf:
        placeholder = np.array(json.loads(zf.read("pred.json"))[1])
    assert placeholder.shape == (N, 778, 3) and not placeholder.any()
    # the official evaluation runs on it (mesh numbers meaningless but finite) ...
    official = ref.evaluate(xyz, pred_xyz, verts, placeholder)
    assert all(np.isfinite(v) for v in official.values())
    # ... while handzoo reads it as "no mesh" and reports joints only
    assert load_submission(sub)[1] is None
    got = score_submission(sub, root)
    assert "f5" not in got and "pa_mpvpe_mm" not in got
    assert got["xyz_al_mean3d"] == pytest.approx(official["xyz_al_mean3d"], abs=1e-9)


def _write_raw(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_bad_submissions_name_file_and_entry(root, tmp_path):
    _, _, _, pred_xyz, pred_verts = _scene()
    xyz = pred_xyz.tolist()
    verts = pred_verts.tolist()

    short = xyz[:-1]
    with pytest.raises(DataError, match=r"bad\.json: 11 joint entries, expected 12"):
        score_submission(_write_raw(tmp_path / "bad.json", [short, verts[:-1]]), root)

    wrong_joints = [list(e) for e in xyz]
    wrong_joints[7] = wrong_joints[7][:20]
    with pytest.raises(DataError, match=r"bad\.json: joint entry 7 has 20 points.*expected \(21, 3\)"):
        load_submission(_write_raw(tmp_path / "bad.json", [wrong_joints, verts]))

    nan_joints = [list(e) for e in xyz]
    nan_joints[3] = [[float("nan")] * 3] * 21
    with pytest.raises(DataError, match=r"joint entry 3 contains NaN or Inf"):
        load_submission(_write_raw(tmp_path / "bad.json", [nan_joints, verts]))

    with pytest.raises(DataError, match=r"12 joint entries but 11 vertex entries"):
        load_submission(_write_raw(tmp_path / "bad.json", [xyz, verts[:-1]]))

    with pytest.raises(DataError, match=r"expected \[xyz_list, verts_list\]"):
        load_submission(_write_raw(tmp_path / "bad.json", {"xyz": xyz}))

    ragged_verts = [list(v) for v in verts]
    ragged_verts[5] = ragged_verts[5][:700]
    with pytest.raises(DataError, match=r"vertex entry 5 has 700 points"):
        load_submission(_write_raw(tmp_path / "bad.json", [xyz, ragged_verts]))

    few_verts = [v[:500] for v in verts]
    with pytest.raises(DataError, match=r"500 points, expected 778"):
        score_submission(_write_raw(tmp_path / "bad.json", [xyz, few_verts]), root)

    empty_zip = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty_zip, "w") as zf:
        zf.writestr("readme.txt", "no predictions")
    with pytest.raises(DataError, match=r"empty\.zip: expected pred\.json inside the zip"):
        load_submission(empty_zip)

    with pytest.raises(DataError, match="not found"):
        load_submission(tmp_path / "missing.zip")

    with pytest.raises(DataError, match=r"evaluation_xyz\.json not found"):
        score_submission(write_submission(tmp_path / "ok.zip", pred_xyz), tmp_path / "nowhere")

    with pytest.raises(ValueError, match=r"xyz: joint entry 2 contains NaN"):
        bad = pred_xyz.copy()
        bad[2, 0, 0] = np.inf
        write_submission(tmp_path / "x.zip", bad)
    with pytest.raises(ValueError, match=r"expected shape \(N,21,3\)"):
        write_submission(tmp_path / "x.zip", pred_xyz[:, :20])


# --------------------------------------------------------------------- placement


def _project(xyz: np.ndarray, K: np.ndarray) -> np.ndarray:
    uvw = np.einsum("nij,npj->npi", K, xyz)
    return uvw[..., :2] / uvw[..., 2:]


def test_place_root_relative_recovers_true_position_from_2d():
    xyz, _, K, _, _ = _scene(seed=3)
    scale = np.linalg.norm(xyz[:, 9] - xyz[:, 10], axis=-1)  # evaluation_scale.json
    rel = (xyz - xyz[:, :1]) * 0.8  # right shape, wrong size, root-relative
    placed = place_root_relative(torch.tensor(rel), K, scale, uv=_project(xyz, K))
    assert placed.dtype == torch.float64
    np.testing.assert_allclose(placed.numpy(), xyz, atol=1e-9)
    bone = torch.linalg.vector_norm(placed[:, 9] - placed[:, 10], dim=-1).numpy()
    np.testing.assert_allclose(bone, scale, atol=1e-12)


def test_place_root_relative_depth_and_pa_invariance(root, tmp_path):
    xyz, _, K, pred_xyz, _ = _scene()
    rel = torch.tensor(pred_xyz - pred_xyz[:, :1], dtype=torch.float32)
    placed = place_root_relative(rel, K, root_depth=0.55)
    assert placed.dtype == torch.float32
    np.testing.assert_allclose(placed[:, 0].numpy(), np.tile([0.0, 0.0, 0.55], (N, 1)), atol=1e-6)
    # PA metrics do not depend on scale or placement.
    gt = torch.tensor(xyz)
    scale = np.full(N, 0.03)
    for candidate in (placed, place_root_relative(rel, K, scale, root_depth=np.linspace(0.4, 1, N))):
        np.testing.assert_allclose(
            metrics.pa_mpjpe(candidate.double(), gt).numpy(),
            metrics.pa_mpjpe(rel.double(), gt).numpy(),
            atol=1e-8,
        )
    a = score_submission(write_submission(tmp_path / "a.zip", placed), root)
    b = score_submission(write_submission(tmp_path / "b.zip", pred_xyz), root)
    assert a["xyz_al_mean3d"] == pytest.approx(b["xyz_al_mean3d"], abs=1e-5)
    assert a["xyz_mean3d"] != pytest.approx(b["xyz_mean3d"], abs=1e-3)  # unaligned does move


def test_place_root_relative_input_errors():
    rel = torch.zeros(2, 21, 3)
    K = torch.eye(3).expand(2, 3, 3)
    with pytest.raises(ValueError, match="needs uv"):
        place_root_relative(rel + 1, K)
    with pytest.raises(ValueError, match="joints 9 and 10 at the same place"):
        place_root_relative(rel, K, scale=[0.03, 0.03], root_depth=0.5)
    with pytest.raises(ValueError, match=r"K: expected shape \(2,3,3\)"):
        place_root_relative(rel, torch.eye(3), root_depth=0.5)
