"""handzoo.metrics against the slow official-formula reference in tests/reference_eval.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from handzoo import metrics
from tests import reference_eval as ref

F64_TOL = 1e-6  # metres: float64 must match the official formulas
F32_TOL = 2e-5  # metres: float32 inputs against the float64 reference
# The official alignment adds 1e-8 to both norms, so a perfect prediction keeps an
# error of a few nanometres; "zero" means below this.
ZERO_TOL = 1e-8


def _hands(n: int, seed: int, noise: float = 0.008, points: int = 21):
    """gt (N,P,3) hand-sized clouds ~0.6 m in front of the camera; pred = rotated,
    scaled, shifted gt plus noise, so the alignment has real work to do."""
    rng = np.random.default_rng(seed)
    gt = rng.normal(size=(n, points, 3)) * 0.035 + np.array([0.02, -0.01, 0.6])
    rot = Rotation.random(n, random_state=seed).as_matrix()
    scale = rng.uniform(0.7, 1.4, size=(n, 1, 1))
    shift = rng.normal(size=(n, 1, 3)) * 0.1
    pred = np.einsum("nij,npj->npi", rot, gt) * scale + shift
    pred += rng.normal(size=pred.shape) * noise
    return pred, gt


def _t(x: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.tensor(x, dtype=dtype)


# ------------------------------------------------------------------- vs reference


@pytest.mark.parametrize("allow_reflection", [True, False])
def test_alignment_and_errors_match_reference_float64(allow_reflection):
    pred, gt = _hands(64, seed=1)
    want_aligned = np.stack(
        [ref.align_w_scale(g, p, allow_reflection) for p, g in zip(pred, gt, strict=True)]
    )
    got_aligned = metrics.procrustes_align(_t(pred), _t(gt), allow_reflection=allow_reflection)
    assert got_aligned.dtype == torch.float64
    assert np.abs(got_aligned.numpy() - want_aligned).max() <= F64_TOL

    want = ref.pa_errors(pred, gt, allow_reflection)
    got = metrics.per_joint_pa_error(_t(pred), _t(gt), allow_reflection=allow_reflection)
    assert got.shape == (64, 21)
    assert np.abs(got.numpy() - want).max() <= 1e-9
    pa = metrics.pa_mpjpe(_t(pred), _t(gt), allow_reflection=allow_reflection).numpy()
    assert np.abs(pa - want.mean(axis=1)).max() <= 1e-9


def test_float32_within_tolerance_and_keeps_dtype():
    pred, gt = _hands(64, seed=2)
    want = ref.pa_errors(pred, gt)
    p32, g32 = _t(pred, torch.float32), _t(gt, torch.float32)
    got = metrics.per_joint_pa_error(p32, g32)
    assert got.dtype == torch.float32 and got.device == p32.device
    assert np.abs(got.double().numpy() - want).max() <= F32_TOL
    aligned = metrics.procrustes_align(p32, g32)
    assert aligned.dtype == torch.float32
    want_aligned = np.stack([ref.align_w_scale(g, p) for p, g in zip(pred, gt, strict=True)])
    assert np.abs(aligned.double().numpy() - want_aligned).max() <= F32_TOL


def test_full_evaluation_set_size_matches_official_aggregation():
    """3960 samples (the size of FreiHAND's evaluation set), aggregated the official way."""
    pred, gt = _hands(3960, seed=3, noise=0.012)
    official = ref.evaluate(gt, pred)
    per_sample = metrics.per_sample_metrics(_t(pred), _t(gt), root_relative_mpjpe=False)
    report = metrics.summarize(per_sample)
    assert report["pa_mpjpe_mm"] == pytest.approx(official["xyz_al_mean3d"] * 10.0, abs=1e-9)
    assert report["mpjpe_mm"] == pytest.approx(official["xyz_mean3d"] * 10.0, abs=1e-9)
    # The mean of per-sample AUCs is the official (per-joint) AUC.
    assert report["auc_pa_0_50mm"] == pytest.approx(official["xyz_al_auc3d"], abs=1e-12)
    raw_auc = metrics.pck_auc(_t(pred), _t(gt), aligned=False).mean().item()
    assert raw_auc == pytest.approx(official["xyz_auc3d"], abs=1e-12)
    # float32 inputs give the same report within tolerance
    report32 = metrics.summarize(
        metrics.per_sample_metrics(_t(pred, torch.float32), _t(gt, torch.float32))
    )
    assert abs(report32["pa_mpjpe_mm"] - report["pa_mpjpe_mm"]) <= F32_TOL * 1000


def test_pck_curve_mean_is_official_curve():
    pred, gt = _hands(40, seed=4, noise=0.015)
    acc = ref.OfficialAccumulator()
    for p, g in zip(pred, gt, strict=True):
        acc.feed(g, ref.align_w_scale(g, p))
    _, auc, curve, thresholds = acc.measures()
    thr, pck = metrics.pck_curve(_t(pred), _t(gt))
    assert pck.shape == (40, 100)
    np.testing.assert_array_equal(thr.numpy(), thresholds)  # bit-identical linspace
    np.testing.assert_allclose(pck.mean(0).numpy(), curve, atol=1e-12)
    assert metrics.auc_from_curve(thr, pck).mean().item() == pytest.approx(auc, abs=1e-12)
    # a different range and step count follow numpy.linspace too
    thr2 = metrics.pck_thresholds(0.03, 31)
    np.testing.assert_array_equal(thr2.numpy(), np.linspace(0, 0.03, 31))


def test_pck_ties_use_less_or_equal():
    gt = torch.zeros(1, 4, 3, dtype=torch.float64)
    thr = metrics.pck_thresholds()
    pred = gt.clone()
    pred[0, :, 0] = thr[50]  # every error sits exactly on threshold 50
    _, pck = metrics.pck_curve(pred, gt, aligned=False)
    assert pck[0, 49].item() == 0.0 and pck[0, 50].item() == 1.0


# ---------------------------------------------------------------- degenerate input


def test_identical_and_similarity_transform_give_zero_pa_error():
    pred, gt = _hands(8, seed=5, noise=0.0)  # pred is an exact similarity transform of gt
    assert metrics.pa_mpjpe(_t(gt), _t(gt)).abs().max().item() <= ZERO_TOL
    assert metrics.pa_mpjpe(_t(pred), _t(gt)).abs().max().item() <= ZERO_TOL
    # Hand-computed: PCK is 0 at t = 0 (nanometre errors are not <= 0) and 1 at every
    # later threshold, so the trapezoid AUC is 1 - (1/2)/99 for 100 thresholds.
    auc = metrics.pck_auc(_t(pred), _t(gt))
    np.testing.assert_allclose(auc.numpy(), 1.0 - 0.5 / 99, atol=1e-12)


def test_constant_offset_gives_offset_norm():
    _, gt = _hands(5, seed=6)
    offset = np.array([0.003, -0.004, 0.012])  # norm 13 mm
    pred = gt + offset
    got = metrics.mpjpe(_t(pred), _t(gt))
    np.testing.assert_allclose(got.numpy(), np.linalg.norm(offset), atol=1e-12)
    assert metrics.mpjpe(_t(pred), _t(gt), root_relative=True).abs().max().item() <= 1e-12
    assert metrics.pa_mpjpe(_t(pred), _t(gt)).abs().max().item() <= ZERO_TOL


def test_degenerate_sets_are_finite_and_match_reference():
    _, gt = _hands(1, seed=7)
    line = np.linspace(0, 1, 21)[:, None] * np.array([0.01, 0.05, -0.02]) + [0.0, 0.0, 0.5]
    flat = gt[0] * np.array([1.0, 1.0, 0.0]) + [0.0, 0.0, 0.5]  # all joints in one plane
    cases = {
        "all_zero_pred": (np.zeros((21, 3)), gt[0]),
        "all_zero_both": (np.zeros((21, 3)), np.zeros((21, 3))),
        "single_point_pred": (np.tile([0.1, 0.2, 0.7], (21, 1)), gt[0]),
        "collinear_pred": (line, gt[0]),
        "collinear_both": (line * 1.3 + 0.01, line),
        "identical": (gt[0], gt[0]),
        "planar_both": (flat * 0.9 + 0.02, flat),
        "nearly_planar_gt": (gt[0], flat + np.random.default_rng(1).normal(size=(21, 3)) * 1e-9),
        "mirrored_planar": (flat * np.array([-1.0, 1.0, 1.0]), flat),
    }
    for name, (p, g) in cases.items():
        want = ref.align_w_scale(g, p)
        got = metrics.procrustes_align(_t(p[None]), _t(g[None]))[0].numpy()
        assert np.isfinite(got).all(), name
        assert np.abs(got - want).max() <= F64_TOL, name
        for allow in (True, False):
            err = metrics.pa_mpjpe(_t(p[None]), _t(g[None]), allow_reflection=allow)
            assert torch.isfinite(err).all(), name
    # a prediction collapsed to one point maps onto the gt centroid
    got = metrics.procrustes_align(_t(np.zeros((1, 21, 3))), _t(gt))[0].numpy()
    np.testing.assert_allclose(got, np.broadcast_to(gt[0].mean(0), (21, 3)), atol=1e-12)


def test_mirrored_prediction_reflection_behaviour():
    """Official alignment (reflections allowed) forgives a mirrored hand; proper rotations do not."""
    _, gt = _hands(6, seed=8)
    mirror = np.diag([-1.0, 1.0, 1.0])
    rot = Rotation.random(6, random_state=9).as_matrix()
    pred = np.einsum("nij,jk,npk->npi", rot, mirror, gt) + 0.05
    official = metrics.pa_mpjpe(_t(pred), _t(gt))
    assert official.max().item() <= ZERO_TOL
    proper = metrics.pa_mpjpe(_t(pred), _t(gt), allow_reflection=False)
    assert proper.min().item() > 0.005  # a mirrored hand is centimetres off
    want = ref.pa_errors(pred, gt, allow_reflection=False).mean(axis=1)
    np.testing.assert_allclose(proper.numpy(), want, atol=1e-9)
    # The proper alignment is a rotation (det +1): aligned = R @ pred-centred * s + t.
    aligned = metrics.procrustes_align(_t(pred), _t(gt), allow_reflection=False).numpy()
    for a, p in zip(aligned, pred, strict=True):
        x = p - p.mean(0)
        y = a - a.mean(0)
        m, *_ = np.linalg.lstsq(x, y, rcond=None)  # y = x @ m, m = s * R^T
        assert np.linalg.det(m) > 0


# --------------------------------------------------------------------------- mesh


def test_mesh_metrics_match_reference_kdtree():
    pred, gt = _hands(4, seed=10, noise=0.004, points=778)
    official = ref.evaluate(gt[:, :21], pred[:, :21], gt, pred)
    got = metrics.summarize(metrics.mesh_metrics(_t(pred), _t(gt)))
    assert got["pa_mpvpe_mm"] == pytest.approx(official["mesh_al_mean3d"] * 10.0, abs=1e-9)
    assert got["f5"] == pytest.approx(official["f_al_score_5"], abs=1e-12)
    assert got["f15"] == pytest.approx(official["f_al_score_15"], abs=1e-12)
    assert 0.05 < got["f5"] < 0.95  # the test exercises both sides of the threshold
    both = metrics.fscore(_t(pred), _t(gt), metrics.FSCORE_THRESHOLDS)
    assert both.shape == (4, 2)
    one = metrics.fscore(_t(pred), _t(gt), 0.005)
    np.testing.assert_array_equal(one.numpy(), both[:, 0].numpy())
    raw = metrics.fscore(_t(pred), _t(gt), 0.015, aligned=False).mean().item()
    assert raw == pytest.approx(official["f_score_15"], abs=1e-12)
    pa = metrics.pa_mpvpe(_t(pred), _t(gt)).mean().item() * 100.0
    assert pa == pytest.approx(official["mesh_al_mean3d"], abs=1e-10)
    # float32 meshes: same F within one vertex in 778 and PA-MPVPE within tolerance
    got32 = metrics.mesh_metrics(_t(pred, torch.float32), _t(gt, torch.float32))
    assert got32["f5"].dtype == torch.float32
    assert abs(got32["f5"].double().mean().item() - got["f5"]) <= 1.0 / 778
    assert abs(got32["pa_mpvpe"].double().mean().item() * 1000 - got["pa_mpvpe_mm"]) <= 2e-2


def test_nearest_neighbours_chunked_equal_kdtree():
    rng = np.random.default_rng(11)
    a = rng.normal(size=(7, 50, 3)) * 0.05 + 0.5
    b = rng.normal(size=(7, 64, 3)) * 0.05 + 0.5
    tiny_budget = 1e-3  # MB: forces one sample per chunk
    d_ab, d_ba = metrics.nearest_neighbour_distances(_t(a), _t(b), memory_budget_mb=tiny_budget)
    assert d_ab.shape == (7, 50) and d_ba.shape == (7, 64)
    for i in range(7):
        np.testing.assert_allclose(d_ab[i].numpy(), cKDTree(b[i]).query(a[i])[0], atol=1e-9)
        np.testing.assert_allclose(d_ba[i].numpy(), cKDTree(a[i]).query(b[i])[0], atol=1e-9)
    full = metrics.nearest_neighbour_distances(_t(a), _t(b))
    np.testing.assert_allclose(full[0].numpy(), d_ab.numpy(), atol=1e-12)


def test_fscore_edge_cases():
    _, gt = _hands(2, seed=12, points=30)
    assert metrics.fscore(_t(gt), _t(gt), 0.001).tolist() == [1.0, 1.0]
    far = gt + 1.0  # nothing within 1 mm: P = R = 0 gives F = 0 (not NaN)
    assert metrics.fscore(_t(far), _t(gt), 0.001, aligned=False).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="positive"):
        metrics.fscore(_t(gt), _t(gt), 0.0)


# ----------------------------------------------------------------- input checking


@pytest.mark.parametrize(
    ("pred", "gt", "message"),
    [
        (torch.zeros(2, 21, 3), torch.zeros(3, 21, 3), "does not match"),
        (torch.zeros(21, 3), torch.zeros(21, 3), r"expected shape \(N,P,3\).*batch dimension"),
        (torch.zeros(2, 21, 2), torch.zeros(2, 21, 2), r"expected shape \(N,P,3\)"),
        (torch.zeros(2, 0, 3), torch.zeros(2, 0, 3), "at least one point"),
        ("not numbers", torch.zeros(2, 21, 3), "expected a"),
    ],
)
def test_validate_pair_rejects_bad_shapes(pred, gt, message):
    with pytest.raises(ValueError, match=message):
        metrics.pa_mpjpe(pred, gt)


def test_validate_pair_rejects_non_finite_and_wrong_counts():
    good = torch.zeros(4, 21, 3)
    for bad_value in (float("nan"), float("inf")):
        bad = good.clone()
        bad[2, 5, 1] = bad_value
        with pytest.raises(ValueError, match=r"pred joints: NaN or Inf in sample\(s\) \[2\]"):
            metrics.validate_pair(bad, good, name="joints")
        with pytest.raises(ValueError, match=r"gt points: NaN or Inf"):
            metrics.mpjpe(good, bad)
    with pytest.raises(ValueError, match="expected 778 points per sample, got 21"):
        metrics.validate_pair(good, good, name="vertices", num_points=778)
    # numpy input is accepted; integers become float64
    p, g = metrics.validate_pair(np.zeros((1, 21, 3), dtype=int), np.zeros((1, 21, 3)))
    assert p.dtype == torch.float64 and g.dtype == torch.float64


def test_per_sample_metrics_and_summary_units():
    pred, gt = _hands(6, seed=13, noise=0.005)
    vp, vg = _hands(6, seed=14, noise=0.004, points=778)
    per = metrics.per_sample_metrics(_t(pred), _t(gt), _t(vp), _t(vg))
    assert set(per) == {"pa_mpjpe", "mpjpe", "auc_pa", "pa_mpvpe", "f5", "f15"}
    assert all(v.shape == (6,) for v in per.values())
    report = metrics.summarize(per)
    assert set(report) == {"pa_mpjpe_mm", "mpjpe_mm", "auc_pa_0_50mm", "pa_mpvpe_mm", "f5", "f15"}
    want_pa_mm = ref.pa_errors(pred, gt).mean() * 1000
    assert report["pa_mpjpe_mm"] == pytest.approx(want_pa_mm, abs=1e-9)
    rel = (pred - pred[:, :1]) - (gt - gt[:, :1])
    assert report["mpjpe_mm"] == pytest.approx(np.linalg.norm(rel, axis=-1).mean() * 1000)
    with pytest.raises(ValueError, match="both pred_verts and gt_verts"):
        metrics.per_sample_metrics(_t(pred), _t(gt), _t(vp))
    with pytest.raises(ValueError, match="no samples"):
        metrics.summarize({"pa_mpjpe": torch.empty(0)})


# ------------------------------------------------------------------------- plugin


def test_registered_metrics_are_the_library_functions():
    import handzoo
    from handzoo.plugins import get_registry

    assert {"pa_mpjpe", "mpjpe", "auc_pa", "pa_mpvpe", "f5", "f15"} <= set(handzoo.list_metrics())
    registry = get_registry()
    pred, gt = _hands(5, seed=15)
    vp, vg = _hands(5, seed=16, noise=0.004, points=778)
    p, g, pv, gv = _t(pred), _t(gt), _t(vp), _t(vg)
    expected = {
        "pa_mpjpe": metrics.pa_mpjpe(p, g),
        "mpjpe": metrics.mpjpe(p, g),
        "auc_pa": metrics.pck_auc(p, g),
    }
    mesh = metrics.mesh_metrics(pv, gv)
    for name, want in expected.items():
        got = registry.create("metric", name)(p, g)
        np.testing.assert_array_equal(got.numpy(), want.numpy(), err_msg=name)
    for name in ("pa_mpvpe", "f5", "f15"):
        got = registry.create("metric", name)(pv, gv)
        np.testing.assert_allclose(got.numpy(), mesh[name].numpy(), atol=1e-12, err_msg=name)
    root_rel = registry.create("metric", "mpjpe", root_relative=True)(p, g)
    np.testing.assert_array_equal(root_rel.numpy(), metrics.mpjpe(p, g, True).numpy())
    entry = registry.get("metric", "f15")
    assert entry.default_cfg["threshold"] == 0.015 and entry.metadata["units"] == "fraction"


@pytest.mark.parametrize("allow_reflection", [True, False])
def test_fixed_cost_transform_equals_the_default_one(allow_reflection):
    """The training loss's SVD-only route (no host sync) gives the metrics' own map."""
    g = torch.Generator().manual_seed(11)
    pred = torch.randn(40, 21, 3, generator=g, dtype=torch.float64)
    gt = torch.randn(40, 21, 3, generator=g, dtype=torch.float64)
    pred[3] = gt[3] * torch.tensor([-1.0, 1.0, 1.0])  # a mirrored set: the reflection case
    ref = metrics.procrustes_transform(pred, gt, allow_reflection)
    got = metrics.procrustes_transform(pred, gt, allow_reflection, fixed_cost=True)
    for a, b in zip(ref, got, strict=True):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=0)
    t, mu_p, mu_g = ref
    aligned = (pred - mu_p) @ t + mu_g
    expected = metrics.procrustes_align(pred, gt, allow_reflection)
    torch.testing.assert_close(aligned, expected, atol=1e-12, rtol=0)
