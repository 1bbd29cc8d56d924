"""``handzoo eval`` and ``handzoo run`` on FreiHAND-format folders, as a user runs them.

The fixture is written by tests/freihand_fixture.py in the official layout;
metrics are checked against the independent per-sample reference of
tests/reference_eval.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

import handzoo
from tests.conftest import export_random_weights
from tests.freihand_fixture import write_freihand_fixture
from tests.reference_eval import align_w_scale


@pytest.fixture(scope="module")
def fixture_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("freihand")
    write_freihand_fixture(root, num_unique=10, num_versions=2, size=64, num_eval=6, seed=3)
    return root


def _cli(*args, cwd=None, check=True):
    res = subprocess.run(
        [sys.executable, "-m", "handzoo", *args], capture_output=True, text=True, timeout=600, cwd=cwd
    )
    if check:
        assert res.returncode == 0, res.stderr[-3000:]
    return res


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """A randomly initialised resnet18 at 32 px, exported the way `handzoo run` exports."""
    return export_random_weights(tmp_path_factory.mktemp("weights"), "resnet18", 32)


def _reference_pa_mm(weights, root, split):
    """Predictions of the exported model, scored by the independent per-sample reference."""

    model = handzoo.create_model(weights=weights).eval()
    ds = handzoo.create_dataset(
        "freihand",
        root=str(root),
        split=split,
        image_size=32,
        mean=model.preprocessing["mean"],
        std=model.preprocessing["std"],
    )
    errors = []
    with torch.no_grad():
        for i in range(len(ds)):
            s = ds[i]
            pred = model(s["image"][None]).joints3d[0].double().numpy()
            gt = s["joints3d"].double().numpy()
            aligned = align_w_scale(gt - gt[:1], pred)
            errors.append(np.linalg.norm(aligned - (gt - gt[:1]), axis=1).mean())
    return 1000 * float(np.mean(errors)), len(ds)


def test_eval_scores_a_freihand_fixture_like_the_reference(fixture_root, weights, tmp_path):
    out = tmp_path / "metrics.json"
    res = _cli(
        "eval",
        "--weights",
        str(weights),
        "--data",
        "freihand",
        "--data-root",
        str(fixture_root),
        "--split",
        "eval",
        "--out",
        str(out),
        "--per-joint",
        "--device",
        "cpu",
        "--workers",
        "0",
    )
    metrics = json.loads(out.read_text())
    expected, n = _reference_pa_mm(weights, fixture_root, "eval")
    assert metrics["num_samples"] == n == 6
    assert metrics["pa_mpjpe_mm"] == pytest.approx(expected, rel=1e-6)
    assert {"mpjpe_mm", "auc_pa_0_50mm"} <= set(metrics)
    assert "thumb_tip" in res.stdout and "PA error per joint" in res.stdout


def test_submission_round_trip_keeps_the_pa_numbers(fixture_root, weights, tmp_path):
    zipped = tmp_path / "pred.zip"
    _cli(
        "eval",
        "--weights",
        str(weights),
        "--data",
        "freihand",
        "--data-root",
        str(fixture_root),
        "--split",
        "eval",
        "--out",
        str(tmp_path / "m.json"),
        "--write-submission",
        str(zipped),
        "--device",
        "cpu",
        "--workers",
        "0",
    )
    scored = tmp_path / "scores.json"
    _cli("eval", "--submission", str(zipped), "--data-root", str(fixture_root), "--out", str(scored))
    scores = json.loads(scored.read_text())
    direct = json.loads((tmp_path / "m.json").read_text())
    # Procrustes-aligned numbers do not depend on where the submission placed the hands.
    assert scores["pa_mpjpe_mm"] == pytest.approx(direct["pa_mpjpe_mm"], rel=1e-5)
    assert scores["xyz_al_mean3d"] == pytest.approx(direct["pa_mpjpe_mm"] / 10, rel=1e-5)  # cm


def test_eval_bad_usage_is_one_line(fixture_root, weights):
    res = _cli("eval", "--weights", str(weights), "--data", "freihand", "--split", "eval", check=False)
    assert res.returncode == 2 and "root" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = _cli("eval", "--submission", "nope.zip", check=False)
    assert res.returncode == 2 and "--data-root" in res.stderr


@pytest.mark.parametrize(
    ("model", "extra"),
    [
        ("resnet18", []),
        ("timm/resnet10t", []),
        ("resnet18", ["--set", "model.options.head=mano"]),
        ("chained-r50-r50-r34", ["--set", "model.options.stages=[resnet18,resnet18]"]),
        ("resnet18", ["--set", "model.options.head=heatmap25d", "--set", "optim.loss=l1_pa"]),
        ("timm/resnet10t", ["--set", "model.options.head=integral"]),
        ("resnet18", ["--set", "model.options.head_cfg={target: 2.5d}"]),
    ],
    ids=["resnet", "timm", "mano-head", "chained", "heatmap25d", "integral-timm", "direct-2.5d"],
)
def test_short_run_of_every_family_on_a_freihand_fixture(fixture_root, tmp_path, model, extra):
    out = tmp_path / "run"
    _cli(
        "run",
        model,
        "--data",
        "freihand",
        "--data-root",
        str(fixture_root),
        "--max-steps",
        "2",
        "--batch-size",
        "4",
        "--image-size",
        "32",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--out",
        str(out),
        *extra,
    )
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_samples"] == 2  # 1 held-out unique id x 2 versions
    assert np.isfinite(metrics["pa_mpjpe_mm"]) and metrics["baseline_pa_mpjpe_mm"] > 0
    assert (out / "model.safetensors").stat().st_size > 0
    # the exported weights rebuild their model (head included) and evaluate
    scored = tmp_path / "eval.json"
    _cli("eval", "--weights", str(out / "model.safetensors"), "--data", "freihand", "--data-root",
         str(fixture_root), "--split", "val", "--device", "cpu", "--workers", "0", "--out", str(scored))
    assert json.loads(scored.read_text())["num_samples"] == 2


def test_missing_files_are_listed(tmp_path):
    (tmp_path / "training" / "rgb").mkdir(parents=True)
    res = _cli(
        "run",
        "resnet18",
        "--data",
        "freihand",
        "--data-root",
        str(tmp_path),
        "--max-steps",
        "1",
        "--out",
        str(tmp_path / "run"),
        check=False,
    )
    assert res.returncode != 0
    line = res.stderr.strip().splitlines()[-1]
    assert "training_xyz.json" in line
    assert not (tmp_path / "run").exists()  # a failed run leaves no empty folder behind
