"""MANO layer against smplx, the chumpy-free loader, the kinematic hand, the MANO head and its training.

The MANO files are written by ``tests/mano_fixture.py`` (random numbers, MANO's
structure); the real, licensed files are never needed.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from handzoo_mano import KinematicHand, ManoLayer, load_mano_file
from handzoo_mano.kinematic import BETA_LOG_SCALE, mano_parents, template_joints
from scipy.spatial.transform import Rotation

import handzoo
from handzoo.errors import ConfigError, DataError, UsageError
from handzoo.joints import BONES, convert
from handzoo.losses import build_training_loss
from handzoo.rotations import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rot6d,
    rot6d_to_matrix,
)
from tests.mano_fixture import FREIHAND_TIPS, MANOPTH_TIPS, write_mano_files

TOL = 1e-5  # metres


@pytest.fixture(scope="module")
def mano_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("mano")
    return {style: write_mano_files(root / style, style=style) for style in ("plain", "chumpy")}


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors gain nothing from threads, and OpenMP spin-waiting on shared, busy cores made
    these tests 10-50x slower (measured on 2 cores); one thread keeps them fast and deterministic."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def no_mano_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HANDZOO_MANO_DIR", raising=False)


def _random_params(batch: int, ncomps: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "global_orient": torch.randn(batch, 3, generator=g) * 0.8,
        "hand_pose": torch.randn(batch, ncomps, generator=g) * 0.5,
        "betas": torch.randn(batch, 10, generator=g),
        "transl": torch.randn(batch, 3, generator=g) * 0.1,
    }


# --------------------------------------------------------------------------- rotations


def test_axis_angle_to_matrix_matches_scipy_including_tiny_and_zero_angles():
    rng = np.random.default_rng(0)
    aa = np.concatenate([rng.normal(size=(50, 3)), rng.normal(size=(5, 3)) * 1e-6, np.zeros((1, 3))])
    ours = axis_angle_to_matrix(torch.from_numpy(aa)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(aa).as_matrix(), atol=1e-12)


def test_matrix_to_axis_angle_inverts_rodrigues_up_to_nearly_pi():
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(40, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([rng.uniform(0, 3.1, 36), [1e-7, 1e-3, 3.13, 3.14]])
    aa = torch.from_numpy(axes * angles[:, None])
    back = matrix_to_axis_angle(axis_angle_to_matrix(aa))
    np.testing.assert_allclose(back.numpy(), aa.numpy(), atol=1e-7)


def test_rot6d_round_trip_and_gradients_at_zero_rotation():
    rot = torch.from_numpy(Rotation.random(10, random_state=2).as_matrix())
    torch.testing.assert_close(rot6d_to_matrix(matrix_to_rot6d(rot)), rot)
    aa = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (aa,))
    assert torch.autograd.gradcheck(lambda r: matrix_to_axis_angle(axis_angle_to_matrix(r)), (aa + 0.3,))


# --------------------------------------------------------------------------- loading


def test_chumpy_style_file_loads_like_the_plain_one_without_chumpy(mano_dirs):
    plain = load_mano_file(mano_dirs["plain"] / "MANO_RIGHT.pkl")
    old = load_mano_file(mano_dirs["chumpy"] / "MANO_RIGHT.pkl")
    assert "chumpy" not in sys.modules
    if importlib.util.find_spec("chumpy") is None:  # the point: it is not even installed
        assert not any(name.startswith("chumpy") for name in sys.modules)
    for key in ("v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f", "J"):
        assert isinstance(old[key], np.ndarray), key
        np.testing.assert_array_equal(old[key], plain[key], err_msg=key)
    assert old["J_regressor"].shape == (16, 778)
    np.testing.assert_allclose(old["J_regressor"].sum(axis=1), 1.0, atol=1e-12)
    assert old["bs_style"] == "lbs"


def test_loader_refuses_foreign_code(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "MANO_RIGHT.pkl"
    bad.write_bytes(pickle.dumps({"v_template": Payload()}, protocol=2))
    with pytest.raises(DataError, match=r"MANO_RIGHT\.pkl: refuses to load (posix|nt)\.system"):
        load_mano_file(bad)
    assert not marker.exists()


def test_loader_names_missing_keys_and_bad_shapes(tmp_path, mano_dirs):
    data = pickle.loads((mano_dirs["plain"] / "MANO_RIGHT.pkl").read_bytes())
    path = tmp_path / "MANO_RIGHT.pkl"
    path.write_bytes(pickle.dumps({k: v for k, v in data.items() if k != "posedirs"}))
    with pytest.raises(DataError, match="key 'posedirs' is missing"):
        load_mano_file(path)
    path.write_bytes(pickle.dumps({**data, "weights": data["weights"][:, :15]}))
    with pytest.raises(DataError, match=r"key 'weights' has shape \(778, 15\), expected \(778, 16\)"):
        load_mano_file(path)


def test_missing_model_says_where_to_get_it_and_where_to_put_it(tmp_path, no_mano_env):
    for call in (lambda: ManoLayer(), lambda: ManoLayer(tmp_path)):
        with pytest.raises(UsageError) as info:
            call()
        message = str(info.value)
        assert "https://mano.is.tue.mpg.de" in message
        assert "HANDZOO_MANO_DIR" in message and "MANO_RIGHT.pkl" in message


# --------------------------------------------------------------------------- MANO layer vs smplx


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("use_pca", [False, True])
@pytest.mark.parametrize("flat_hand_mean", [True, False])
def test_mano_layer_matches_smplx(mano_dirs, side, use_pca, flat_hand_mean):
    smplx = pytest.importorskip("smplx")
    ncomps = 12 if use_pca else 45
    folder = str(mano_dirs["plain"])
    ours = ManoLayer(folder, side=side, use_pca=use_pca, ncomps=ncomps, flat_hand_mean=flat_hand_mean)
    ref = smplx.MANO(
        folder,
        is_rhand=side == "right",
        use_pca=use_pca,
        num_pca_comps=ncomps,
        flat_hand_mean=flat_hand_mean,
        batch_size=6,
    )
    p = _random_params(6, ncomps, seed=3)
    out = ours(p["global_orient"], p["hand_pose"], p["betas"], p["transl"])
    want = ref(**p)
    assert out.vertices.shape == (6, 778, 3) and out.joints.shape == (6, 21, 3)
    assert (out.vertices - want.vertices).abs().max() <= TOL
    native = convert(out.joints, "canonical", "mano")  # 16 MANO joints, then tips thumb->little
    assert (native[:, :16] - want.joints).abs().max() <= TOL
    assert (native[:, 16:] - want.vertices[:, list(FREIHAND_TIPS)]).abs().max() <= TOL
    # The pose the layer reports is the one smplx applied (mean and PCA included).
    if not use_pca:
        full = torch.cat([p["global_orient"], p["hand_pose"]], 1)
        torch.testing.assert_close(out.full_pose, full + ref.pose_mean)


def test_chumpy_style_and_plain_files_give_the_same_hand(mano_dirs):
    p = _random_params(4, 45, seed=4)
    a = ManoLayer(mano_dirs["plain"], flat_hand_mean=False)(**p)
    b = ManoLayer(mano_dirs["chumpy"] / "MANO_RIGHT.pkl", flat_hand_mean=False)(**p)
    torch.testing.assert_close(a.vertices, b.vertices, rtol=0, atol=0)


def test_manopth_tips_canonical_order_and_metres(mano_dirs):
    layer = ManoLayer(mano_dirs["plain"], tip_vertices="manopth")
    p = _random_params(3, 45, seed=5)
    out = layer(**p)
    tips = out.joints[:, [4, 8, 12, 16, 20]]  # canonical thumb, index, middle, ring, little tips
    torch.testing.assert_close(tips, out.vertices[:, list(MANOPTH_TIPS)])
    # Wrist to middle fingertip of the fixture hand is about 0.19 m in any pose (rigid finger chain,
    # small blend shapes): a unit slip (mm, cm) would be off by orders of magnitude.
    span = (out.joints[:, 12] - out.joints[:, 0]).norm(dim=-1)
    assert ((span > 0.08) & (span < 0.3)).all()


def test_layer_is_differentiable_at_the_flat_hand_and_keeps_mano_out_of_state_dict(mano_dirs):
    layer = ManoLayer(mano_dirs["plain"])
    assert layer.state_dict() == {}  # licensed model data never reach a checkpoint
    pose = torch.zeros(2, 45, requires_grad=True)
    orient = torch.zeros(2, 3, requires_grad=True)
    betas = torch.zeros(2, 10, requires_grad=True)
    out = layer(orient, pose, betas)
    (out.vertices.square().sum() + out.joints.sum()).backward()
    for t in (pose, orient, betas):
        assert torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0


# --------------------------------------------------------------------------- kinematic hand


def _reference_kinematics(global_orient, hand_pose, betas) -> np.ndarray:
    """Slow forward kinematics, one joint at a time with scipy rotations: (21,3) canonical order."""
    parents = mano_parents()
    rest = template_joints()
    # Bone-group scales as the kinematic docstring defines them.
    finger_group = {"thumb": 3, "index": 4, "middle": 5, "ring": 6, "little": 7}
    names = handzoo.joints.joint_names("mano")
    s = np.exp(BETA_LOG_SCALE * betas)
    rotations = Rotation.from_rotvec(np.concatenate([global_orient, hand_pose]).reshape(16, 3)).as_matrix()
    world_r, world_t = {}, {}
    for j in range(21):
        if parents[j] < 0:
            world_r[j], world_t[j] = rotations[0], rest[0]
            continue
        finger, segment = names[j].split("_")
        offset = (rest[j] - rest[parents[j]]) * s[0]
        if segment == "mcp":
            offset = offset * np.array([s[2], s[1], 1.0])
        else:
            offset = offset * s[finger_group[finger]] * (s[8] if segment == "pip" else s[9])
        p = parents[j]
        world_t[j] = world_r[p] @ offset + world_t[p]
        world_r[j] = world_r[p] @ (rotations[j] if j < 16 else np.eye(3))
    return convert(np.stack([world_t[j] for j in range(21)]), "mano", "canonical")


def test_kinematic_hand_matches_a_joint_by_joint_reference():
    hand = KinematicHand().double()
    p = {k: v.double() for k, v in _random_params(5, 45, seed=6).items()}
    out = hand(p["global_orient"], p["hand_pose"], p["betas"])
    assert out.vertices is None and out.joints.shape == (5, 21, 3)
    for b in range(5):
        orient, pose, betas = (p[k][b].numpy() for k in ("global_orient", "hand_pose", "betas"))
        want = _reference_kinematics(orient, pose, betas)
        # The template is stored in float32: 10 nm is its rounding, not a disagreement.
        np.testing.assert_allclose(out.joints[b].numpy(), want, rtol=0, atol=1e-8)


def test_kinematic_pose_keeps_bone_lengths_and_betas_scale_their_groups():
    hand = KinematicHand().double()

    def bones(out):
        return torch.stack([(out.joints[:, c] - out.joints[:, p]).norm(dim=-1) for p, c in BONES], 1)

    zero = torch.zeros(1, 3, dtype=torch.float64)
    rest = bones(hand(zero, torch.zeros(1, 45, dtype=torch.float64)))
    posed = bones(hand(zero + 0.7, torch.randn(1, 45, dtype=torch.float64)))
    torch.testing.assert_close(posed, rest)
    # The canonical rest pose is the template, wrist at the origin, hand about 0.19 m long.
    torch.testing.assert_close(
        hand(zero, torch.zeros(1, 45, dtype=torch.float64)).joints[0],
        torch.from_numpy(convert(template_joints(), "mano", "canonical")),
    )
    assert 0.16 < float(rest[0, 8] + rest[0, 9] + rest[0, 10] + rest[0, 11]) < 0.23  # wrist -> middle tip
    betas = torch.zeros(1, 10, dtype=torch.float64)
    betas[0, 0] = 1.0
    grown = bones(hand(zero, torch.zeros(1, 45, dtype=torch.float64), betas))
    torch.testing.assert_close(grown / rest, torch.full_like(rest, np.exp(BETA_LOG_SCALE)))
    betas = torch.zeros(1, 10, dtype=torch.float64)
    betas[0, 4] = 2.0  # index finger only: canonical bones 5..7 (index MCP->PIP->DIP->tip)
    ratio = bones(hand(zero, torch.zeros(1, 45, dtype=torch.float64), betas)) / rest
    changed = (ratio - 1).abs() > 1e-9
    assert changed[0].nonzero().flatten().tolist() == [5, 6, 7]


# --------------------------------------------------------------------------- head and models


def test_head_uses_kinematic_hand_without_mano_files(no_mano_env, caplog):
    with caplog.at_level(logging.INFO, logger="handzoo"):
        head = handzoo.create_head("mano", 16)
    assert head.hand_model_kind == "kinematic" and head.handzoo_metadata["hand_model"] == "kinematic"
    assert any("hand model: kinematic" in r.getMessage() for r in caplog.records)
    out = head(torch.randn(3, 16, 2, 2))
    assert out.vertices is None and out.mano_pose.shape == (3, 48) and out.mano_shape.shape == (3, 10)
    assert torch.equal(out.joints3d[:, 0], torch.zeros(3, 3))
    # A fresh head predicts the rest hand: tiny weights, identity rotations.
    rest = torch.from_numpy(convert(template_joints(), "mano", "canonical")).float()
    assert (out.joints3d - rest).abs().max() < 5e-3
    with pytest.raises(UsageError, match="PCA hand pose needs the licensed MANO model"):
        handzoo.create_head("mano", 16, pose_repr="pca")


def test_head_picks_mano_from_the_environment_and_reports_the_pose_it_applied(mano_dirs, monkeypatch):
    monkeypatch.setenv("HANDZOO_MANO_DIR", str(mano_dirs["chumpy"]))
    torch.manual_seed(0)
    head = handzoo.create_head("mano", 16)
    assert head.hand_model_kind == "mano"
    assert all(k.startswith("mlp.") for k in head.state_dict())
    with torch.no_grad():
        head.mlp[-1].weight.normal_(0, 0.05)
        out = head(torch.randn(2, 16, 3, 3))
    assert out.vertices.shape == (2, 778, 3) and torch.equal(out.joints3d[:, 0], torch.zeros(2, 3))
    # Feeding the reported axis-angle pose to a plain MANO layer rebuilds the same hand.
    plain = ManoLayer(mano_dirs["plain"], flat_hand_mean=True)
    again = plain(out.mano_pose[:, :3], out.mano_pose[:, 3:], out.mano_shape)
    root = again.joints[:, :1]
    assert (again.joints - root - out.joints3d).abs().max() < TOL
    assert (again.vertices - root - out.vertices).abs().max() < TOL


@pytest.mark.parametrize("pose_repr", ["axis_angle", "pca"])
def test_head_axis_angle_and_pca_poses_with_mano(mano_dirs, monkeypatch, pose_repr):
    monkeypatch.setenv("HANDZOO_MANO_DIR", str(mano_dirs["plain"]))
    head = handzoo.create_head("mano", 8, pose_repr=pose_repr, ncomps=6)
    assert head.mlp[-1].out_features == 3 + (45 if pose_repr == "axis_angle" else 6) + 10
    out = head(torch.randn(2, 8, 1, 1))
    # flat_hand_mean=False: a fresh head sits at MANO's mean pose.
    mean = torch.from_numpy(load_mano_file(mano_dirs["plain"] / "MANO_RIGHT.pkl")["hands_mean"]).float()
    assert (out.mano_pose[:, 3:] - mean).abs().max() < 0.05


def test_explicit_mano_dir_must_hold_the_file_but_an_empty_env_dir_falls_back(tmp_path, monkeypatch, caplog):
    with pytest.raises(UsageError, match="mano.is.tue.mpg.de"):
        handzoo.create_head("mano", 8, mano_dir=str(tmp_path))
    monkeypatch.setenv("HANDZOO_MANO_DIR", str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="handzoo"):
        head = handzoo.create_head("mano", 8)
    assert head.hand_model_kind == "kinematic"
    assert any("holds no MANO_RIGHT.pkl" in r.getMessage() for r in caplog.records)


def test_training_loss_terms_and_weighted_total(mano_dirs, monkeypatch):
    """The run's joint loss (l1) plus the head's own terms, each weighted as the head declares."""
    from handzoo.losses import build_training_loss

    monkeypatch.setenv("HANDZOO_MANO_DIR", str(mano_dirs["plain"]))
    head = handzoo.create_head("mano", 8, loss_weights={"pose_prior": 0.5})
    out = head(torch.randn(3, 8, 1, 1))
    g = torch.Generator().manual_seed(7)
    joints = torch.randn(3, 21, 3, generator=g) * 0.03 + torch.tensor([0.0, 0.0, 0.6])
    verts = torch.randn(3, 778, 3, generator=g) * 0.03 + joints[:, :1]
    mano = torch.randn(3, 1, 61, generator=g) * 0.3
    mano[1] = float("nan")  # a sample without a MANO fit
    losses = build_training_loss(head, "l1")(out, {"joints3d": joints, "verts": verts, "mano": mano})
    manual = (out.joints3d - (joints - joints[:, :1])).abs().mean()
    torch.testing.assert_close(losses["joints"], manual)
    torch.testing.assert_close(losses["verts"], (out.vertices - (verts - joints[:, :1])).abs().mean())
    torch.testing.assert_close(losses["pose_prior"], out.mano_pose[:, 3:].square().mean())
    keep = [0, 2]
    gt_r = axis_angle_to_matrix(mano[keep, 0, :48].reshape(-1, 16, 3))
    pred_r = axis_angle_to_matrix(out.mano_pose[keep].reshape(-1, 16, 3))
    torch.testing.assert_close(losses["mano_pose"], (pred_r - gt_r).abs().mean())
    shape_l1 = (out.mano_shape[keep] - mano[keep, 0, 48:58]).abs().mean()
    torch.testing.assert_close(losses["mano_shape"], shape_l1)
    w = {"joints": 1, "verts": 1, "pose_prior": 0.5, "shape_prior": 1e-4}
    w.update(mano_pose=1e-2, mano_shape=1e-3)
    torch.testing.assert_close(losses["loss"], sum(w[k] * losses[k] for k in w))
    with pytest.raises(ConfigError, match="the joint loss is the run's optim.loss"):
        handzoo.create_head("mano", 8, loss_weights={"joints": 2.0})


def test_any_backbone_takes_the_mano_head_and_mano_models_are_registered(no_mano_env):
    assert {"resnet50-mano", "resnet101-mano"} <= set(handzoo.list_models("*-mano"))
    model = handzoo.create_model("resnet18", head="mano")
    out = model(torch.randn(2, 3, 64, 64))
    assert out.joints3d.shape == (2, 21, 3) and model.head.hand_model_kind == "kinematic"
    mano_model = handzoo.create_model("resnet50-mano", head_cfg={"hidden": 64})
    assert mano_model.handzoo_metadata["hand_model"] == "kinematic"
    batch = {"joints3d": torch.randn(2, 21, 3) * 0.03}
    losses = build_training_loss(mano_model, "l1")(mano_model(torch.randn(2, 3, 64, 64)), batch)
    assert set(losses) == {"loss", "joints", "pose_prior", "shape_prior"}


def _synthetic_batch(n: int, size: int) -> dict[str, torch.Tensor]:
    from handzoo.data.synthetic import sample_hand

    rng = np.random.default_rng(0)
    samples = [sample_hand(rng, image_size=size) for _ in range(n)]
    images = torch.from_numpy(np.stack([s["image"] for s in samples])).permute(0, 3, 1, 2).float() / 255
    mean = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
    std = torch.tensor([0.229, 0.224, 0.225])[:, None, None]
    joints = torch.from_numpy(np.stack([s["joints3d"] for s in samples]))
    return {"image": (images - mean) / std, "joints3d": joints}


def test_mano_head_model_trains_with_the_kinematic_hand(no_mano_env):
    torch.manual_seed(0)
    model = handzoo.create_model("resnet18", head="mano", image_size=32)
    batch = _synthetic_batch(8, 32)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    history = []
    loss_fn = build_training_loss(model, "l1")
    for _ in range(20):
        losses = loss_fn(model(batch["image"]), batch)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        history.append(losses["joints"].item())
    assert all(np.isfinite(history))
    assert np.mean(history[-3:]) < 0.7 * history[0], history
